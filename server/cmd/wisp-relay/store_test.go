package main

import (
	"bufio"
	"bytes"
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	mrand "math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/wisp-chat/wisp/server/relay/files"
	"github.com/wisp-chat/wisp/server/relay/store"
	"github.com/wisp-chat/wisp/server/wire"
	"github.com/wisp-chat/wisp/server/wire/client"
	bolt "go.etcd.io/bbolt"
)

// fillStores makes the data directory of a relay that has run: an
// identity and stores with enough queues, messages and chunks for every
// bucket of interest to have branch pages.
func fillStores(t *testing.T, data string) {
	t.Helper()
	if err := os.MkdirAll(filepath.Join(data, "files"), 0o700); err != nil {
		t.Fatal(err)
	}
	seed := make([]byte, 32)
	_, _ = rand.Read(seed)
	if err := os.WriteFile(filepath.Join(data, "identity.key"), seed, 0o600); err != nil {
		t.Fatal(err)
	}
	st, err := store.Open(filepath.Join(data, "queues.db"))
	if err != nil {
		t.Fatal(err)
	}
	fst, err := files.OpenStore(filepath.Join(data, "files"), 1<<30)
	if err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	sem := make(chan struct{}, 64)
	for i := range 1500 {
		sem <- struct{}{}
		wg.Go(func() {
			defer func() { <-sem }()
			var rcv, snd, msg wire.QueueID
			_, _ = rand.Read(rcv[:])
			_, _ = rand.Read(snd[:])
			_, _ = rand.Read(msg[:])
			k := store.RecipientKey(rcv)
			if err := st.Create(k, store.SenderKeyOf(snd), store.Queue{Created: time.Now()}); err != nil {
				t.Error(err)
				return
			}
			if err := st.Put(k, store.Message{ID: wire.MsgID(msg), Time: time.Now(), Body: make([]byte, 200)}, 128); err != nil {
				t.Error(err)
			}
			if i%2 == 0 {
				var cs, cr wire.ChunkID
				_, _ = rand.Read(cs[:])
				_, _ = rand.Read(cr[:])
				rcpts := map[files.RecipientKey]files.Recipient{files.RecipientKeyOf(cr): {}}
				if err := fst.Create(files.SenderKeyOf(cs), files.Chunk{Class: wire.Class64K}, rcpts); err != nil {
					t.Error(err)
				}
			}
		})
	}
	wg.Wait()
	if err := st.Close(); err != nil {
		t.Fatal(err)
	}
	if err := fst.Close(); err != nil {
		t.Fatal(err)
	}
}

// corruptBranch overwrites everything after the header of the root page
// of bucket in the bbolt file path with random bytes (a fixed sequence),
// after checking that it is a branch page.
func corruptBranch(t *testing.T, path, bucket string) {
	t.Helper()
	db, err := bolt.Open(path, 0o600, &bolt.Options{ReadOnly: true, Timeout: time.Second})
	if err != nil {
		t.Fatal(err)
	}
	ps := db.Info().PageSize
	var root int
	err = db.View(func(tx *bolt.Tx) error {
		b := tx.Bucket([]byte(bucket))
		if b == nil {
			return errors.New("no bucket " + bucket + ": the store's layout changed")
		}
		root = int(b.RootPage())
		return nil
	})
	_ = db.Close()
	if err != nil {
		t.Fatal(err)
	}
	f, err := os.OpenFile(path, os.O_RDWR, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	head := make([]byte, 16)
	if _, err := f.ReadAt(head, int64(root*ps)); err != nil || head[8] != 0x01 {
		t.Fatalf("root page %d of %s is not a branch page (%v, flags %#x): make the store bigger", root, bucket, err, head[8])
	}
	junk := make([]byte, ps-16)
	r := mrand.New(mrand.NewPCG(5, 1))
	for i := range junk {
		junk[i] = byte(r.Uint32())
	}
	if _, err := f.WriteAt(junk, int64(root*ps+16)); err != nil {
		t.Fatal(err)
	}
}

// refused runs the relay expecting it to refuse to start: exit status 1,
// nothing on stdout, and a log that contains every one of want.
func refused(t *testing.T, bin string, want []string, args ...string) {
	t.Helper()
	cmd := exec.Command(bin, args...)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	line, _ := bufio.NewReader(out).ReadString('\n')
	if line != "" {
		// It started (as it did before the check at start): show what
		// the first read does to it.
		probe := "not probed"
		if a, err := wire.ParseAddress(strings.TrimSuffix(strings.TrimPrefix(line, "relay address: "), "\n")); err == nil {
			probe = fmt.Sprint(probeGet(a))
		}
		exited := make(chan error, 1)
		go func() { exited <- cmd.Wait() }()
		var status error
		select {
		case status = <-exited:
		case <-time.After(5 * time.Second):
			_ = cmd.Process.Kill()
			status = fmt.Errorf("still running: %v", <-exited)
		}
		log, _, _ := strings.Cut(stderr.String(), "goroutine ")
		t.Fatalf("the relay started; a GET got %q; then: %v; stderr: %s", probe, status, log)
	}
	err = cmd.Wait()
	var ee *exec.ExitError
	if !errors.As(err, &ee) || ee.ExitCode() != 1 {
		t.Fatalf("exit: %v (want status 1); stderr: %s", err, stderr.String())
	}
	for _, w := range want {
		if !strings.Contains(stderr.String(), w) {
			t.Errorf("log lacks %q: %s", w, stderr.String())
		}
	}
	if strings.Contains(stderr.String(), "panic") || strings.Contains(stderr.String(), "goroutine ") {
		t.Errorf("log shows a panic: %s", stderr.String())
	}
}

// probeGet connects and sends a GET for a random queue.
func probeGet(a wire.Address) error {
	ctx, cancel := context.WithTimeout(context.Background(), scaled(10*time.Second))
	defer cancel()
	c, err := client.Dial(ctx, a, client.Options{})
	if err != nil {
		return err
	}
	defer c.Close()
	keys, _ := client.NewRecipientKeys()
	var q client.QueueInfo
	_, _ = rand.Read(q.RcvID[:])
	_, _, err = c.Get(ctx, q.Subscription(keys))
	return err
}

// TestRelayRefusesCorruptStore: random bytes on one branch page of
// queues.db (the root of the queue records) or of chunks.db. Without the
// check at start the relay started and panicked at the first read, after
// every restart; now it refuses to start, naming the file.
func TestRelayRefusesCorruptStore(t *testing.T) {
	if testing.Short() {
		t.Skip("builds the binary")
	}
	bin := build(t)
	for _, tc := range []struct{ file, bucket string }{
		{"queues.db", "queues"},
		{filepath.Join("files", "chunks.db"), "chunks"},
	} {
		t.Run(tc.bucket, func(t *testing.T) {
			data := filepath.Join(t.TempDir(), "data")
			fillStores(t, data)
			path := filepath.Join(data, tc.file)
			corruptBranch(t, path, tc.bucket)
			want := []string{"store file " + path + " is corrupt", "refusing to start", "-check"}
			refused(t, bin, want, "-listen", "127.0.0.1:0", "-data", data)
			// Still refused on the next start: nothing was changed.
			refused(t, bin, want, "-listen", "127.0.0.1:0", "-data", data)

			// -check reports the file and exits 1.
			out, err := exec.Command(bin, "-data", data, "-check").Output()
			var ee *exec.ExitError
			if !errors.As(err, &ee) || ee.ExitCode() != 1 {
				t.Fatalf("-check: %v", err)
			}
			if !bytes.Contains(out, []byte(path+": CORRUPT")) {
				t.Fatalf("-check printed %q", out)
			}
		})
	}
}

// TestRelayRefusesLostStore: a store file that is empty or missing next
// to an existing identity.key is a lost store: the relay refuses to start
// (it used to start empty, and every queue answered AUTH) unless
// -allow-empty-store says to.
func TestRelayRefusesLostStore(t *testing.T) {
	if testing.Short() {
		t.Skip("builds the binary")
	}
	bin := build(t)
	first := filepath.Join(t.TempDir(), "data")
	p := start(t, bin, "-listen", "127.0.0.1:0", "-data", first)
	p.stop(t)
	for name, lose := range map[string]func(data string) string{
		"empty queues.db": func(data string) string {
			path := filepath.Join(data, "queues.db")
			_ = os.Truncate(path, 0)
			return path + " has 0 bytes"
		},
		"missing queues.db": func(data string) string {
			path := filepath.Join(data, "queues.db")
			_ = os.Remove(path)
			return path + " is missing"
		},
		"empty chunks.db": func(data string) string {
			path := filepath.Join(data, "files", "chunks.db")
			_ = os.Truncate(path, 0)
			return path + " has 0 bytes"
		},
		"missing chunks.db": func(data string) string {
			path := filepath.Join(data, "files", "chunks.db")
			_ = os.Remove(path)
			return path + " is missing"
		},
	} {
		t.Run(name, func(t *testing.T) {
			data := filepath.Join(t.TempDir(), "data")
			if err := os.CopyFS(data, os.DirFS(first)); err != nil {
				t.Fatal(err)
			}
			what := lose(data)
			refused(t, bin, []string{what, "identity.key exists", "-allow-empty-store"}, "-listen", "127.0.0.1:0", "-data", data)
			out, _ := exec.Command(bin, "-data", data, "-check").Output()
			if !bytes.Contains(out, []byte("LOST")) {
				t.Errorf("-check printed %q", out)
			}
			// The operator's way out, with the same identity.
			p2 := start(t, bin, "-listen", "127.0.0.1:0", "-data", data, "-allow-empty-store")
			if p2.addr.KeyHash != p.addr.KeyHash {
				t.Fatal("identity changed")
			}
			p2.stop(t)
			if !strings.Contains(p2.stderr.String(), "starting with an empty store") {
				t.Errorf("no warning in the log: %s", p2.stderr)
			}
			// Now the stores exist again: a plain start works.
			start(t, bin, "-listen", "127.0.0.1:0", "-data", data).stop(t)
		})
	}
}

// TestRelayCheckMode: -check on healthy stores, on stores in use, and the
// -check-max-size bound of the check at start.
func TestRelayCheckMode(t *testing.T) {
	if testing.Short() {
		t.Skip("builds the binary")
	}
	bin := build(t)
	data := filepath.Join(t.TempDir(), "data")
	fillStores(t, data)
	out, err := exec.Command(bin, "-data", data, "-check").Output()
	if err != nil {
		t.Fatalf("-check on healthy stores: %v: %s", err, out)
	}
	for _, f := range []string{filepath.Join(data, "queues.db"), filepath.Join(data, "files", "chunks.db")} {
		if !bytes.Contains(out, []byte(f+": ok (")) {
			t.Errorf("-check printed %q", out)
		}
	}
	if bytes.Contains(out, []byte("relay address")) {
		t.Error("-check started the relay")
	}

	p := start(t, bin, "-listen", "127.0.0.1:0", "-data", data)
	out, err = exec.Command(bin, "-data", data, "-check").Output()
	if err == nil || !bytes.Contains(out, []byte("in use")) {
		t.Errorf("-check on a running relay's stores: %v %q", err, out)
	}
	p.stop(t)
	if !strings.Contains(p.stderr.String(), "store file checked") {
		t.Errorf("no check at start: %s", p.stderr)
	}

	p = start(t, bin, "-listen", "127.0.0.1:0", "-data", data, "-check-max-size", "4096")
	p.stop(t)
	if !strings.Contains(p.stderr.String(), "not checked at start") || strings.Contains(p.stderr.String(), "store file checked") {
		t.Errorf("-check-max-size 4096: %s", p.stderr)
	}
}
