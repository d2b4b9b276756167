package store

import (
	"bytes"
	"crypto/rand"
	"errors"
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

func msg(body string, ts time.Time) Message {
	m := Message{Time: ts, Body: []byte(body)}
	_, _ = rand.Read(m.ID[:])
	return m
}

func TestQueueAndMessagesSurviveReopen(t *testing.T) {
	path := filepath.Join(t.TempDir(), "q.db")
	s := open(t, path)
	rcv, snd := newID(), newID()
	k := RecipientKey(rcv)
	q := Queue{RcvAuthKey: [32]byte{1}, BoxKey: [32]byte{2}}
	if err := s.Create(k, SenderKeyOf(snd), q); err != nil {
		t.Fatal(err)
	}
	if err := s.Create(k, SenderKeyOf(newID()), q); !errors.Is(err, ErrExists) {
		t.Fatalf("duplicate recipient ID: %v", err)
	}
	if err := s.Create(RecipientKey(newID()), SenderKeyOf(snd), q); !errors.Is(err, ErrExists) {
		t.Fatalf("duplicate sender ID: %v", err)
	}
	if err := s.Secure(k, [32]byte{3}); err != nil {
		t.Fatal(err)
	}
	if err := s.Secure(k, [32]byte{3}); err != nil {
		t.Fatal("same key again:", err)
	}
	if err := s.Secure(k, [32]byte{4}); !errors.Is(err, ErrSecured) {
		t.Fatal("other key:", err)
	}
	now := time.Now()
	m1, m2 := msg("first", now), msg("second", now)
	for _, m := range []Message{m1, m2} {
		if err := s.Put(k, m, 10); err != nil {
			t.Fatal(err)
		}
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	if err := s.Close(); !errors.Is(err, ErrClosed) {
		t.Fatal(err)
	}
	if err := s.Put(k, m1, 10); !errors.Is(err, ErrClosed) {
		t.Fatal("put after close:", err)
	}

	s = open(t, path)
	defer s.Close()
	k2, got, err := s.BySender(SenderKeyOf(snd))
	if err != nil || k2 != k || !got.Secured || got.SndAuthKey != [32]byte{3} || got.RcvAuthKey != q.RcvAuthKey || got.BoxKey != q.BoxKey || got.Count != 2 {
		t.Fatalf("after reopen: %+v %v", got, err)
	}
	head, ok, err := s.Peek(k)
	if err != nil || !ok || head.ID != m1.ID || string(head.Body) != "first" || head.Time.Unix() != now.Unix() {
		t.Fatalf("head: %+v %v %v", head, ok, err)
	}
	if _, _, err := s.Ack(k, m2.ID); !errors.Is(err, ErrNoMsg) {
		t.Fatal("ack of a message that is not the head:", err)
	}
	next, ok, err := s.Ack(k, m1.ID)
	if err != nil || !ok || next.ID != m2.ID {
		t.Fatalf("ack: %+v %v %v", next, ok, err)
	}
	if _, ok, err := s.Ack(k, m2.ID); ok || err != nil {
		t.Fatal(ok, err)
	}
	if _, ok, _ := s.Peek(k); ok {
		t.Fatal("queue not empty")
	}
	if qn, mn, err := s.Counts(); qn != 1 || mn != 0 || err != nil {
		t.Fatalf("counts %d %d %v", qn, mn, err)
	}
}

func TestQuotaMarkerAndSuspend(t *testing.T) {
	s := open(t, filepath.Join(t.TempDir(), "q.db"))
	defer s.Close()
	rcv, snd := newID(), newID()
	k := RecipientKey(rcv)
	if err := s.Create(k, SenderKeyOf(snd), Queue{}); err != nil {
		t.Fatal(err)
	}
	for i := range 2 {
		if err := s.Put(k, msg("m", time.Now()), 2); err != nil {
			t.Fatal(i, err)
		}
	}
	for range 3 {
		if err := s.Put(k, msg("over", time.Now()), 2); !errors.Is(err, ErrQuota) {
			t.Fatal(err)
		}
	}
	if _, n, _ := s.Counts(); n != 3 {
		t.Fatalf("%d messages stored, want 2 and one marker", n)
	}
	var seen []Message
	for {
		m, ok, err := s.Peek(k)
		if err != nil {
			t.Fatal(err)
		}
		if !ok {
			break
		}
		seen = append(seen, m)
		if _, _, err := s.Ack(k, m.ID); err != nil {
			t.Fatal(err)
		}
	}
	if len(seen) != 3 || seen[0].Quota || !seen[2].Quota || len(seen[2].Body) != 0 {
		t.Fatalf("drained %+v", seen)
	}
	if err := s.Put(k, msg("room", time.Now()), 2); err != nil {
		t.Fatal(err)
	}
	if err := s.Suspend(k); err != nil {
		t.Fatal(err)
	}
	if err := s.Put(k, msg("x", time.Now()), 2); !errors.Is(err, ErrSuspended) {
		t.Fatal(err)
	}
	if err := s.Secure(k, [32]byte{1}); !errors.Is(err, ErrSuspended) {
		t.Fatal(err)
	}
	// Suspended queues can still be drained and deleted.
	if _, ok, _ := s.Peek(k); !ok {
		t.Fatal("suspended queue lost its message")
	}
	if err := s.Delete(k); err != nil {
		t.Fatal(err)
	}
	for _, err := range []error{s.Delete(k), s.Suspend(k), s.Put(k, msg("x", time.Now()), 2)} {
		if !errors.Is(err, ErrNotFound) {
			t.Fatal(err)
		}
	}
	if _, _, err := s.BySender(SenderKeyOf(snd)); !errors.Is(err, ErrNotFound) {
		t.Fatal(err)
	}
	if _, err := s.Get(k); !errors.Is(err, ErrNotFound) {
		t.Fatal(err)
	}
	if qn, mn, _ := s.Counts(); qn != 0 || mn != 0 {
		t.Fatalf("counts after delete: %d %d", qn, mn)
	}
}

func TestExpireOldestFirst(t *testing.T) {
	s := open(t, filepath.Join(t.TempDir(), "q.db"))
	defer s.Close()
	base := time.Unix(1_800_000_000, 0)
	keys := make([]QueueKey, 5)
	for i := range keys {
		id := newID()
		keys[i] = RecipientKey(id)
		if err := s.Create(keys[i], SenderKeyOf(newID()), Queue{}); err != nil {
			t.Fatal(err)
		}
		// Queue i has messages at base+i hours and base+100+i hours.
		for _, h := range []int{i, 100 + i} {
			if err := s.Put(keys[i], msg("m", base.Add(time.Duration(h)*time.Hour)), 128); err != nil {
				t.Fatal(err)
			}
		}
	}
	n, err := s.Expire(base.Add(3*time.Hour), 2)
	if n != 2 || err != nil {
		t.Fatalf("limited expire: %d %v", n, err)
	}
	n, err = s.Expire(base.Add(3*time.Hour), 100)
	if n != 1 || err != nil {
		t.Fatalf("rest of the due messages: %d %v", n, err)
	}
	for i, k := range keys {
		q, _ := s.Get(k)
		want := uint32(2)
		if i < 3 {
			want = 1
		}
		if q.Count != want {
			t.Fatalf("queue %d has %d messages, want %d", i, q.Count, want)
		}
	}
	if n, _ := s.Expire(base.Add(1000*time.Hour), 100); n != 7 {
		t.Fatalf("expired %d, want 7", n)
	}
	if _, mn, _ := s.Counts(); mn != 0 {
		t.Fatalf("%d messages left", mn)
	}
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

// TestMaxBytes: the byte bound counts queues and messages, refuses what
// does not fit with ErrFull and changes nothing then; acknowledging,
// expiring and deleting give the bytes back, exactly.
func TestMaxBytes(t *testing.T) {
	if queueCost != 246 || msgCost != 121 {
		t.Fatalf("costs %d and %d differ from SPEC §8 (246, 121)", queueCost, msgCost)
	}
	const bound = queueCost + 3*(msgCost+1000)
	s, err := OpenWith(filepath.Join(t.TempDir(), "q.db"), Options{MaxBytes: bound})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	k, snd := RecipientKey(newID()), SenderKeyOf(newID())
	if err := s.Create(k, snd, Queue{}); err != nil {
		t.Fatal(err)
	}
	if err := s.Create(RecipientKey(newID()), SenderKeyOf(newID()), Queue{}); err != nil {
		t.Fatal(err) // fits: nothing else is stored yet
	}
	if err := s.Delete(RecipientKey(newID())); !errors.Is(err, ErrNotFound) {
		t.Fatal(err)
	}
	body := string(make([]byte, 1000))
	now := time.Now()
	var ids []wire.MsgID
	for {
		m := msg(body, now)
		if err := s.Put(k, m, 100); err != nil {
			if !errors.Is(err, ErrFull) {
				t.Fatal(err)
			}
			break
		}
		ids = append(ids, m.ID)
	}
	if len(ids) != 2 {
		t.Fatalf("stored %d messages, want 2 (one queue too many)", len(ids))
	}
	used, _ := s.Bytes()
	if used != 2*queueCost+2*(msgCost+1000) {
		t.Fatalf("counted %d bytes", used)
	}
	if q, _ := s.Get(k); q.Count != 2 {
		t.Fatalf("a refused Put changed the queue: count %d", q.Count)
	}
	if _, _, err := s.Ack(k, ids[0]); err != nil {
		t.Fatal(err)
	}
	if err := s.Put(k, msg(body, now), 100); err != nil {
		t.Fatalf("Put after an ACK: %v", err)
	}
	if n, err := s.Expire(now.Add(time.Hour), 10); err != nil || n != 2 {
		t.Fatalf("expired %d: %v", n, err)
	}
	if err := s.Delete(k); err != nil {
		t.Fatal(err)
	}
	if used, _ := s.Bytes(); used != queueCost {
		t.Fatalf("after deleting everything but one empty queue: %d bytes, want %d", used, queueCost)
	}
}

// TestQuotaMarkerBlocksUntilAcked: once the marker is stored, SEND is
// refused even after other messages are acknowledged, until the marker
// itself is.
func TestQuotaMarkerBlocksUntilAcked(t *testing.T) {
	s := open(t, filepath.Join(t.TempDir(), "q.db"))
	defer s.Close()
	k := RecipientKey(newID())
	if err := s.Create(k, SenderKeyOf(newID()), Queue{}); err != nil {
		t.Fatal(err)
	}
	now := time.Now()
	first := msg("a", now)
	if err := s.Put(k, first, 1); err != nil {
		t.Fatal(err)
	}
	if err := s.Put(k, msg("b", now), 1); !errors.Is(err, ErrQuota) {
		t.Fatalf("want the marker stored with ErrQuota, got %v", err)
	}
	next, ok, err := s.Ack(k, first.ID)
	if err != nil || !ok || !next.Quota {
		t.Fatalf("after the first ACK: %+v %v %v", next, ok, err)
	}
	if err := s.Put(k, msg("c", now), 1); !errors.Is(err, ErrQuota) {
		t.Fatalf("Put with the marker still queued: %v", err)
	}
	if _, _, err := s.Ack(k, next.ID); err != nil {
		t.Fatal(err)
	}
	if err := s.Put(k, msg("d", now), 1); err != nil {
		t.Fatalf("Put after the marker's ACK: %v", err)
	}
}
