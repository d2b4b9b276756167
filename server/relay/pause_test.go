package relay_test

import (
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/wisp-chat/wisp/server/relay"
	"github.com/wisp-chat/wisp/server/relay/store"
)

// gatedStore holds every PutQueued until the gate opens: a store that
// cannot keep up (the 100,000-queue drain of issue 16).
type gatedStore struct {
	relay.Store
	gate    chan struct{}
	once    sync.Once
	waiting atomic.Int64
}

func (g *gatedStore) open() { g.once.Do(func() { close(g.gate) }) }

func (g *gatedStore) PutQueued(k store.QueueKey, m store.Message, quota uint32, queued func()) error {
	g.waiting.Add(1)
	<-g.gate
	return g.Store.PutQueued(k, m, quota, queued)
}

// TestStalledStoreKeepsConnections: while every command slot of a
// session waits on the store for many ping timeouts, the relay's read
// loop waits with them and cannot read a pong; the relay must not take
// that for a dead peer. Once the store moves, every SEND is answered OK
// on the same connection, and the session is never dropped.
func TestStalledStoreKeepsConnections(t *testing.T) {
	var g *gatedStore
	r := startRelay(t, func(cfg *relay.Config) {
		g = &gatedStore{Store: cfg.Store, gate: make(chan struct{})}
		cfg.Store = g
		cfg.Limits.PingInterval = 50 * time.Millisecond
		cfg.Limits.PingTimeout = 50 * time.Millisecond
		cfg.Limits.QueueQuota = 1000
	})
	// Registered after the relay's cleanup, so it runs first: a failed
	// test must not leave commands waiting for ever in Close.
	t.Cleanup(g.open)
	c := dial(t, r)
	q := newQueue(t, c, true)
	// More SENDs than a session runs at once (256): the rest wait for a
	// slot, and so does the read loop.
	const n = 300
	var wg sync.WaitGroup
	errs := make(chan error, n)
	ctx := ctxT(t)
	for i := range n {
		wg.Go(func() {
			if err := c.Send(ctx, q.info.SndID, q.sndKey, fmt.Appendf(nil, "m%d", i)); err != nil {
				errs <- err
			}
		})
	}
	waitFor(t, "a SEND waiting on the store", func() bool { return g.waiting.Load() > 0 })
	// Twenty ping rounds with the read loop paused.
	noEvent(t, c, 40*(50*time.Millisecond), 4 /* client.EventDisconnected */)
	g.open()
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal("SEND:", err)
	}
	_, stored, err := r.st.Counts()
	if err != nil || stored != n {
		t.Fatalf("%d messages stored, want %d: %v", stored, n, err)
	}
}
