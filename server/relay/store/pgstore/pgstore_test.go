package pgstore

import (
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"os"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/wisp-chat/wisp/server/internal/pgtest"
	"github.com/wisp-chat/wisp/server/relay/store"
	"github.com/wisp-chat/wisp/server/relay/store/storetest"
	"github.com/wisp-chat/wisp/server/wire"
)

var pg pgtest.Env

func TestMain(m *testing.M) { os.Exit(pg.Main(m)) }

func open(t *testing.T, dsn string, opts store.Options) (*Store, error) {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	return Open(ctx, dsn, opts)
}

// mustOpen opens a store on dsn, closed when t ends.
func mustOpen(t *testing.T, dsn string) *Store {
	t.Helper()
	s, err := open(t, dsn, store.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = s.Close() })
	return s
}

// TestConformance runs the suite the bbolt store passes (package
// storetest) against PostgreSQL.
func TestConformance(t *testing.T) {
	storetest.Run(t, func(t *testing.T, opts store.Options) storetest.Opener {
		dsn := pg.Database(t)
		return func() (store.Backend, error) { return open(t, dsn, opts) }
	})
}

func newQueue(t *testing.T, s *Store) store.QueueKey {
	t.Helper()
	var id wire.QueueID
	_, _ = rand.Read(id[:])
	k := store.RecipientKey(id)
	if err := s.Create(k, store.SenderKeyOf(id), store.Queue{}); err != nil {
		t.Fatal(err)
	}
	return k
}

// events collects one store's events.
type events struct {
	mu  sync.Mutex
	got []store.Event
	ch  chan struct{}
}

func listen(t *testing.T, s *Store) *events {
	ev := &events{ch: make(chan struct{}, 1)}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		_ = s.Events(ctx, func(e store.Event) {
			ev.mu.Lock()
			ev.got = append(ev.got, e)
			ev.mu.Unlock()
			select {
			case ev.ch <- struct{}{}:
			default:
			}
		})
	}()
	t.Cleanup(func() { cancel(); <-done })
	return ev
}

// wait waits until the events seen include want (in that order, other
// events between them allowed) and returns them.
func (ev *events) wait(t *testing.T, want ...store.Event) {
	t.Helper()
	deadline := time.After(30 * time.Second)
	for {
		ev.mu.Lock()
		i := 0
		for _, e := range ev.got {
			if i < len(want) && e == want[i] {
				i++
			}
		}
		got := slices.Clone(ev.got)
		ev.mu.Unlock()
		if i == len(want) {
			return
		}
		select {
		case <-ev.ch:
		case <-deadline:
			t.Fatalf("events %+v, want %+v among them", got, want)
		}
	}
}

// TestEventsBetweenStores: two stores on one database (two processes)
// see each other's changes, in commit order, and never their own.
func TestEventsBetweenStores(t *testing.T) {
	dsn := pg.Database(t)
	a := mustOpen(t, dsn)
	b := mustOpen(t, dsn)
	ea, eb := listen(t, a), listen(t, b)
	resync := store.Event{Kind: store.EventResync}
	ea.wait(t, resync)
	eb.wait(t, resync)

	k := newQueue(t, a)
	m := store.Message{Time: time.Now(), Body: []byte("x")}
	_, _ = rand.Read(m.ID[:])
	if err := a.Put(k, m, 10); err != nil {
		t.Fatal(err)
	}
	e1, err := b.Subscribe(k)
	if err != nil {
		t.Fatal(err)
	}
	e2, err := a.Subscribe(k)
	if err != nil || e2 <= e1 {
		t.Fatalf("epochs %d then %d: %v", e1, e2, err)
	}
	if got, err := b.Epoch(k); got != e2 || err != nil {
		t.Fatalf("epoch %d %v, want %d", got, err, e2)
	}
	if _, _, err := a.Ack(k, m.ID); err != nil {
		t.Fatal(err)
	}
	if err := a.Delete(k); err != nil {
		t.Fatal(err)
	}
	eb.wait(t, resync,
		store.Event{Kind: store.EventStored, Queue: k},
		store.Event{Kind: store.EventSubscribed, Queue: k, Epoch: e2},
		store.Event{Kind: store.EventAcked, Queue: k, Msg: m.ID},
		store.Event{Kind: store.EventDeleted, Queue: k})
	ea.wait(t, resync, store.Event{Kind: store.EventSubscribed, Queue: k, Epoch: e1})
	ea.mu.Lock()
	defer ea.mu.Unlock()
	for _, e := range ea.got {
		if e.Kind != store.EventResync && e != (store.Event{Kind: store.EventSubscribed, Queue: k, Epoch: e1}) {
			t.Fatalf("a saw %+v, one of its own changes", e)
		}
	}
	if _, err := b.Subscribe(k); !errors.Is(err, store.ErrNotFound) {
		t.Fatal("subscribe to a deleted queue:", err)
	}
}

// TestOutage: with the server down every operation fails with a
// wrapped error (not a panic, not a hang past the operation timeout);
// afterwards the same Store works again, and Events reports a resync
// once it listens again.
func TestOutage(t *testing.T) {
	dsn := pg.Database(t)
	s := mustOpen(t, dsn)
	ev := listen(t, s)
	resync := store.Event{Kind: store.EventResync}
	ev.wait(t, resync)
	k := newQueue(t, s)
	pg.Server.Kill()
	restarted := false
	defer func() {
		if !restarted {
			_ = pg.Server.Restart()
		}
	}()
	m := store.Message{Time: time.Now(), Body: []byte("x")}
	if err := s.Put(k, m, 10); err == nil || isLogical(err) {
		t.Fatalf("Put with the server down: %v", err)
	}
	if _, _, err := s.Peek(k); err == nil {
		t.Fatal("Peek with the server down succeeded")
	}
	if err := pg.Server.Restart(); err != nil {
		t.Fatal(err)
	}
	restarted = true
	var perr error
	for range 20 {
		if perr = s.Put(k, m, 10); perr == nil {
			break
		}
	}
	if perr != nil {
		t.Fatal("Put after the restart:", perr)
	}
	ev.wait(t, resync, resync)
}

// TestCorruptRows: rows that do not have the shape the store writes are
// ErrCorrupt, not a panic or a short key.
func TestCorruptRows(t *testing.T) {
	dsn := pg.Database(t)
	s := mustOpen(t, dsn)
	k := newQueue(t, s)
	if err := s.Put(k, store.Message{Time: time.Now(), Body: []byte("x")}, 10); err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	if _, err := s.pool.Exec(ctx, "UPDATE wisp_messages SET id = '\\x00'"); err != nil {
		t.Fatal(err)
	}
	if _, _, err := s.Peek(k); !errors.Is(err, ErrCorrupt) {
		t.Fatal("short message ID:", err)
	}
	if _, err := s.pool.Exec(ctx, "UPDATE wisp_queues SET box_key = '\\x0102'"); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Get(k); !errors.Is(err, ErrCorrupt) {
		t.Fatal("short box key:", err)
	}
	if _, err := s.pool.Exec(ctx, "INSERT INTO wisp_identity VALUES (true, decode(repeat('00', 32), 'hex'))"); err != nil {
		t.Fatal(err)
	}
	if _, err := s.pool.Exec(ctx, "ALTER TABLE wisp_identity DROP CONSTRAINT wisp_identity_seed_check; UPDATE wisp_identity SET seed = '\\x01'"); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Identity(func() (ed25519.PrivateKey, error) { return nil, errors.New("not called") }); !errors.Is(err, ErrCorrupt) {
		t.Fatal("short identity seed:", err)
	}
}

// TestIdentity: the first caller's key is every caller's key.
func TestIdentity(t *testing.T) {
	dsn := pg.Database(t)
	a := mustOpen(t, dsn)
	b := mustOpen(t, dsn)
	gen := func() (ed25519.PrivateKey, error) { _, k, err := ed25519.GenerateKey(rand.Reader); return k, err }
	ka, err := a.Identity(gen)
	if err != nil {
		t.Fatal(err)
	}
	kb, err := b.Identity(gen)
	if err != nil || !ka.Equal(kb) {
		t.Fatalf("second process got another key: %v", err)
	}
}

// TestConcurrentOpen: processes starting together on an empty database
// all get its tables.
func TestConcurrentOpen(t *testing.T) {
	dsn := pg.Database(t)
	var wg sync.WaitGroup
	for range 4 {
		wg.Go(func() {
			s, err := open(t, dsn, store.Options{})
			if err != nil {
				t.Error(err)
				return
			}
			_ = newQueue(t, s)
			_ = s.Close()
		})
	}
	wg.Wait()
}

func FuzzParse(f *testing.F) {
	s := &Store{origin: "0000000000000000"}
	k := strings.Repeat("ab", 32)
	for _, seed := range []string{
		"1111111111111111S" + k,
		"1111111111111111D" + k,
		"1111111111111111A" + k + strings.Repeat("cd", 24),
		"1111111111111111B" + k + "42",
		"0000000000000000S" + k,
		"1111111111111111B" + k + "-1",
		"1111111111111111A" + k + "cd",
		"", "1111111111111111",
	} {
		f.Add(seed)
	}
	f.Fuzz(func(t *testing.T, p string) {
		ev, ok := s.parse(p)
		if !ok {
			return
		}
		if p[:16] == s.origin {
			t.Fatal("own event accepted")
		}
		back, ok := s.parse("1111111111111111" + payload(ev))
		if !ok || back != ev {
			t.Fatalf("%q parsed to %+v, written back and parsed to %+v", p, ev, back)
		}
	})
}

// payload writes an event as its notification payload minus the origin.
func payload(ev store.Event) string {
	k := hex.EncodeToString(ev.Queue[:])
	switch ev.Kind {
	case store.EventStored:
		return "S" + k
	case store.EventDeleted:
		return "D" + k
	case store.EventAcked:
		return "A" + k + hex.EncodeToString(ev.Msg[:])
	case store.EventSubscribed:
		return "B" + k + strconv.FormatUint(ev.Epoch, 10)
	}
	return "?"
}
