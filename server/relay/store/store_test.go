package store

import (
	"bytes"
	"crypto/rand"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/wisp-chat/wisp/server/wire"
)

func open(t *testing.T, path string) *Store {
	t.Helper()
	s, err := Open(path)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func newID() wire.QueueID {
	var id wire.QueueID
	_, _ = rand.Read(id[:])
	return id
}

func TestOpenErrors(t *testing.T) {
	dir := t.TempDir()
	if _, err := Open(filepath.Join(dir, "missing", "q.db")); err == nil {
		t.Fatal("opened a file in a missing directory")
	}
	bad := filepath.Join(dir, "bad.db")
	if err := os.WriteFile(bad, bytes.Repeat([]byte("not a bolt file "), 1024), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := Open(bad); err == nil {
		t.Fatal("opened a corrupt file")
	}
}

// TestOpenIsLazy: opening does not read queues, so it takes about as long
// with 5,000 queues as with none.
func TestOpenIsLazy(t *testing.T) {
	if testing.Short() {
		t.Skip("creates 5,000 queues")
	}
	path := filepath.Join(t.TempDir(), "q.db")
	s := open(t, path)
	body := make([]byte, 1000)
	done := make(chan error, 5000)
	for range 5000 {
		go func() {
			id := newID()
			k := RecipientKey(id)
			if err := s.Create(k, SenderKeyOf(newID()), Queue{}); err != nil {
				done <- err
				return
			}
			done <- s.Put(k, Message{Time: time.Now(), Body: body}, 128)
		}()
	}
	for range 5000 {
		if err := <-done; err != nil {
			t.Fatal(err)
		}
	}
	_ = s.Close()
	timeOpen := func(p string) time.Duration {
		start := time.Now()
		s := open(t, p)
		d := time.Since(start)
		_ = s.Close()
		return d
	}
	empty := timeOpen(filepath.Join(t.TempDir(), "empty.db"))
	full := timeOpen(path)
	if full > 20*empty+50*time.Millisecond {
		t.Fatalf("opening 5,000 queues took %v, an empty store %v", full, empty)
	}
}
