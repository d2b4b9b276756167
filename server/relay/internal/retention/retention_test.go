package retention

import (
	"bytes"
	"context"
	"errors"
	"log/slog"
	"strings"
	"sync"
	"testing"
	"time"
)

// store holds n items and expires them as the relay stores do.
type store struct {
	mu     sync.Mutex
	n      int
	calls  int
	cutoff time.Time
	fail   error
}

func (s *store) expire(cutoff time.Time, limit int) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.calls++
	s.cutoff = cutoff
	if s.fail != nil {
		return 0, s.fail
	}
	k := min(limit, s.n)
	s.n -= k
	return k, nil
}

func TestSweep(t *testing.T) {
	cutoff := time.Unix(1_700_000_000, 0)
	for _, tc := range []struct{ items, batch, calls int }{{0, 10, 1}, {9, 10, 1}, {10, 10, 2}, {25, 10, 3}} {
		s := &store{n: tc.items}
		n, err := Sweep(context.Background(), s.expire, cutoff, tc.batch)
		if err != nil || n != tc.items || s.calls != tc.calls || !s.cutoff.Equal(cutoff) {
			t.Errorf("%d items in batches of %d: %d deleted in %d calls, %v", tc.items, tc.batch, n, s.calls, err)
		}
	}
	s := &store{n: 100, fail: errors.New("disk full")}
	if _, err := Sweep(context.Background(), s.expire, cutoff, 10); err == nil || s.calls != 1 {
		t.Errorf("a failing store: %v after %d calls", err, s.calls)
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	s = &store{n: 100}
	if n, _ := Sweep(ctx, s.expire, cutoff, 10); n != 10 || s.calls != 1 {
		t.Errorf("after ctx ended: %d deleted in %d calls", n, s.calls)
	}
}

// syncBuffer is a log destination safe for the loop's goroutine.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.b.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.b.String()
}

func TestLoop(t *testing.T) {
	var out syncBuffer
	log := slog.New(slog.NewTextHandler(&out, nil))
	ctx, cancel := context.WithCancel(context.Background())
	calls := make(chan struct{}, 100)
	done := make(chan struct{})
	n := 0 // only the loop's goroutine touches it
	go func() {
		defer close(done)
		Loop(ctx, time.Millisecond, log, "chunk sweep", func(time.Time) (int, error) {
			n++
			calls <- struct{}{}
			if n == 1 {
				return 0, errors.New("store closed")
			}
			return 3, nil
		})
	}()
	for range 3 {
		<-calls
	}
	cancel()
	select {
	case <-done:
	case <-time.After(5 * time.Second):
		t.Fatal("Loop did not stop when ctx ended")
	}
	if s := out.String(); !strings.Contains(s, "chunk sweep failed") || !strings.Contains(s, "expired=3") {
		t.Errorf("log: %s", s)
	}
}
