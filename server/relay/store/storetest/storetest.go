// Package storetest is the conformance suite every store.Backend
// passes: the bbolt store and the PostgreSQL store run the same tests.
//
//	func TestConformance(t *testing.T) {
//		storetest.Run(t, func(t *testing.T, opts store.Options) storetest.Opener {
//			path := filepath.Join(t.TempDir(), "q.db")
//			return func() (store.Backend, error) { return store.OpenWith(path, opts) }
//		})
//	}
package storetest

import (
	"crypto/rand"
	"errors"
	"fmt"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/wisp-chat/wisp/server/relay/store"
	"github.com/wisp-chat/wisp/server/wire"
)

// Opener opens the store under test; opened again after Close, it
// opens the same data (a restart).
type Opener func() (store.Backend, error)

// Fresh makes new, empty storage for one test, with opts.
type Fresh func(t *testing.T, opts store.Options) Opener

// Run runs every conformance test as a subtest.
func Run(t *testing.T, f Fresh) {
	for _, c := range []struct {
		name string
		fn   func(*testing.T, Fresh)
	}{
		{"QueueAndMessagesSurviveReopen", testQueueAndMessagesSurviveReopen},
		{"QuotaMarkerAndSuspend", testQuotaMarkerAndSuspend},
		{"ExpireOldestFirst", testExpireOldestFirst},
		{"MaxBytes", testMaxBytes},
		{"QuotaMarkerBlocksUntilAcked", testQuotaMarkerBlocksUntilAcked},
		{"QueuedOrder", testQueuedOrder},
		{"ConcurrentQueues", testConcurrentQueues},
		{"ZeroLengthAndLargestBody", testBodies},
	} {
		t.Run(c.name, func(t *testing.T) { c.fn(t, f) })
	}
}

func must(t *testing.T, open Opener) store.Backend {
	t.Helper()
	s, err := open()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = s.Close() })
	return s
}

func newID() wire.QueueID {
	var id wire.QueueID
	_, _ = rand.Read(id[:])
	return id
}

func msg(body string, ts time.Time) store.Message {
	m := store.Message{Time: ts, Body: []byte(body)}
	_, _ = rand.Read(m.ID[:])
	return m
}

func newQueue(t *testing.T, s store.Backend) store.QueueKey {
	t.Helper()
	k := store.RecipientKey(newID())
	if err := s.Create(k, store.SenderKeyOf(newID()), store.Queue{}); err != nil {
		t.Fatal(err)
	}
	return k
}

// testQueuedOrder: a PutQueued that starts after another's queued
// callback stores after it, although both commit together.
func testQueuedOrder(t *testing.T, f Fresh) {
	s := must(t, f(t, store.Options{}))
	k := newQueue(t, s)
	const n = 50
	var wg sync.WaitGroup
	ids := make([]wire.MsgID, n)
	prev := make(chan struct{})
	close(prev)
	for i := range n {
		m := msg(fmt.Sprint(i), time.Now())
		ids[i] = m.ID
		<-prev
		next := make(chan struct{})
		wg.Go(func() {
			if err := s.PutQueued(k, m, 128, func() { close(next) }); err != nil {
				t.Error(err)
			}
		})
		prev = next
	}
	wg.Wait()
	for i := range n {
		m, ok, err := s.Peek(k)
		if err != nil || !ok || m.ID != ids[i] || string(m.Body) != fmt.Sprint(i) {
			t.Fatalf("message %d: %q %v %v", i, m.Body, ok, err)
		}
		if _, _, err := s.Ack(k, m.ID); err != nil {
			t.Fatal(err)
		}
	}
}

// testConcurrentQueues: 20 writers on 20 queues, each putting and
// acknowledging in turn, leave every queue empty and the counters at
// zero; each queue sees exactly its own messages in order.
func testConcurrentQueues(t *testing.T, f Fresh) {
	s := must(t, f(t, store.Options{MaxBytes: 1 << 30}))
	const nq, per = 20, 25
	var wg sync.WaitGroup
	for q := range nq {
		k := newQueue(t, s)
		wg.Go(func() {
			var want []string
			for i := range per {
				body := fmt.Sprintf("%d/%d", q, i)
				want = append(want, body)
				if err := s.Put(k, msg(body, time.Now()), 128); err != nil {
					t.Error(err)
					return
				}
			}
			var got []string
			for {
				m, ok, err := s.Peek(k)
				if err != nil {
					t.Error(err)
					return
				}
				if !ok {
					break
				}
				got = append(got, string(m.Body))
				if _, _, err := s.Ack(k, m.ID); err != nil {
					t.Error(err)
					return
				}
			}
			if !slices.Equal(got, want) {
				t.Errorf("queue %d drained %q", q, got)
			}
		})
	}
	wg.Wait()
	if qn, mn, err := s.Counts(); qn != nq || mn != 0 || err != nil {
		t.Fatalf("counts %d %d %v", qn, mn, err)
	}
	if b, err := s.Bytes(); b != nq*store.QueueCost || err != nil {
		t.Fatalf("bytes %d %v", b, err)
	}
}

// testBodies: an empty body and the largest SEND body come back byte
// for byte, and an unknown queue is ErrNotFound everywhere.
func testBodies(t *testing.T, f Fresh) {
	s := must(t, f(t, store.Options{}))
	k := newQueue(t, s)
	big := make([]byte, wire.MaxBodySize)
	_, _ = rand.Read(big)
	for _, body := range [][]byte{{}, big} {
		m := store.Message{Time: time.Unix(1_900_000_000, 0), Body: body}
		_, _ = rand.Read(m.ID[:])
		if err := s.Put(k, m, 128); err != nil {
			t.Fatal(err)
		}
		got, ok, err := s.Peek(k)
		if err != nil || !ok || got.ID != m.ID || string(got.Body) != string(body) || !got.Time.Equal(m.Time) || got.Quota {
			t.Fatalf("len %d: %d bytes back, %v %v", len(body), len(got.Body), ok, err)
		}
		if _, _, err := s.Ack(k, m.ID); err != nil {
			t.Fatal(err)
		}
	}
	other := store.RecipientKey(newID())
	if _, err := s.Get(other); !errors.Is(err, store.ErrNotFound) {
		t.Fatal(err)
	}
	if _, _, err := s.Ack(other, wire.MsgID{}); !errors.Is(err, store.ErrNotFound) {
		t.Fatal("ack on a missing queue:", err)
	}
	if _, ok, err := s.Peek(other); ok || err != nil {
		t.Fatal("peek on a missing queue:", ok, err)
	}
	if err := s.Secure(other, [32]byte{1}); !errors.Is(err, store.ErrNotFound) {
		t.Fatal(err)
	}
}

func testQueueAndMessagesSurviveReopen(t *testing.T, f Fresh) {
	open := f(t, store.Options{})
	s := must(t, open)
	rcv, snd := newID(), newID()
	k := store.RecipientKey(rcv)
	q := store.Queue{RcvAuthKey: [32]byte{1}, BoxKey: [32]byte{2}}
	if err := s.Create(k, store.SenderKeyOf(snd), q); err != nil {
		t.Fatal(err)
	}
	if err := s.Create(k, store.SenderKeyOf(newID()), q); !errors.Is(err, store.ErrExists) {
		t.Fatalf("duplicate recipient ID: %v", err)
	}
	if err := s.Create(store.RecipientKey(newID()), store.SenderKeyOf(snd), q); !errors.Is(err, store.ErrExists) {
		t.Fatalf("duplicate sender ID: %v", err)
	}
	if err := s.Secure(k, [32]byte{3}); err != nil {
		t.Fatal(err)
	}
	if err := s.Secure(k, [32]byte{3}); err != nil {
		t.Fatal("same key again:", err)
	}
	if err := s.Secure(k, [32]byte{4}); !errors.Is(err, store.ErrSecured) {
		t.Fatal("other key:", err)
	}
	now := time.Now()
	m1, m2 := msg("first", now), msg("second", now)
	for _, m := range []store.Message{m1, m2} {
		if err := s.Put(k, m, 10); err != nil {
			t.Fatal(err)
		}
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	if err := s.Close(); !errors.Is(err, store.ErrClosed) {
		t.Fatal(err)
	}
	if err := s.Put(k, m1, 10); !errors.Is(err, store.ErrClosed) {
		t.Fatal("put after close:", err)
	}

	s = must(t, open)
	defer s.Close()
	k2, got, err := s.BySender(store.SenderKeyOf(snd))
	if err != nil || k2 != k || !got.Secured || got.SndAuthKey != [32]byte{3} || got.RcvAuthKey != q.RcvAuthKey || got.BoxKey != q.BoxKey || got.Count != 2 {
		t.Fatalf("after reopen: %+v %v", got, err)
	}
	head, ok, err := s.Peek(k)
	if err != nil || !ok || head.ID != m1.ID || string(head.Body) != "first" || head.Time.Unix() != now.Unix() {
		t.Fatalf("head: %+v %v %v", head, ok, err)
	}
	if _, _, err := s.Ack(k, m2.ID); !errors.Is(err, store.ErrNoMsg) {
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

func testQuotaMarkerAndSuspend(t *testing.T, f Fresh) {
	s := must(t, f(t, store.Options{}))
	defer s.Close()
	rcv, snd := newID(), newID()
	k := store.RecipientKey(rcv)
	if err := s.Create(k, store.SenderKeyOf(snd), store.Queue{}); err != nil {
		t.Fatal(err)
	}
	for i := range 2 {
		if err := s.Put(k, msg("m", time.Now()), 2); err != nil {
			t.Fatal(i, err)
		}
	}
	for range 3 {
		if err := s.Put(k, msg("over", time.Now()), 2); !errors.Is(err, store.ErrQuota) {
			t.Fatal(err)
		}
	}
	if _, n, _ := s.Counts(); n != 3 {
		t.Fatalf("%d messages stored, want 2 and one marker", n)
	}
	var seen []store.Message
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
	if err := s.Put(k, msg("x", time.Now()), 2); !errors.Is(err, store.ErrSuspended) {
		t.Fatal(err)
	}
	if err := s.Secure(k, [32]byte{1}); !errors.Is(err, store.ErrSuspended) {
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
		if !errors.Is(err, store.ErrNotFound) {
			t.Fatal(err)
		}
	}
	if _, _, err := s.BySender(store.SenderKeyOf(snd)); !errors.Is(err, store.ErrNotFound) {
		t.Fatal(err)
	}
	if _, err := s.Get(k); !errors.Is(err, store.ErrNotFound) {
		t.Fatal(err)
	}
	if qn, mn, _ := s.Counts(); qn != 0 || mn != 0 {
		t.Fatalf("counts after delete: %d %d", qn, mn)
	}
}

func testExpireOldestFirst(t *testing.T, f Fresh) {
	s := must(t, f(t, store.Options{}))
	defer s.Close()
	base := time.Unix(1_800_000_000, 0)
	keys := make([]store.QueueKey, 5)
	for i := range keys {
		id := newID()
		keys[i] = store.RecipientKey(id)
		if err := s.Create(keys[i], store.SenderKeyOf(newID()), store.Queue{}); err != nil {
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

// TestMaxBytes: the byte bound counts queues and messages, refuses what
// does not fit with store.ErrFull and changes nothing then; acknowledging,
// expiring and deleting give the bytes back, exactly.
func testMaxBytes(t *testing.T, f Fresh) {
	if store.QueueCost != 246 || store.MsgCost != 121 {
		t.Fatalf("costs %d and %d differ from SPEC §8 (246, 121)", store.QueueCost, store.MsgCost)
	}
	const bound = store.QueueCost + 3*(store.MsgCost+1000)
	s := must(t, f(t, store.Options{MaxBytes: bound}))
	defer s.Close()
	k, snd := store.RecipientKey(newID()), store.SenderKeyOf(newID())
	if err := s.Create(k, snd, store.Queue{}); err != nil {
		t.Fatal(err)
	}
	if err := s.Create(store.RecipientKey(newID()), store.SenderKeyOf(newID()), store.Queue{}); err != nil {
		t.Fatal(err) // fits: nothing else is stored yet
	}
	if err := s.Delete(store.RecipientKey(newID())); !errors.Is(err, store.ErrNotFound) {
		t.Fatal(err)
	}
	body := string(make([]byte, 1000))
	now := time.Now()
	var ids []wire.MsgID
	for {
		m := msg(body, now)
		if err := s.Put(k, m, 100); err != nil {
			if !errors.Is(err, store.ErrFull) {
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
	if used != 2*store.QueueCost+2*(store.MsgCost+1000) {
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
	if used, _ := s.Bytes(); used != store.QueueCost {
		t.Fatalf("after deleting everything but one empty queue: %d bytes, want %d", used, store.QueueCost)
	}
}

// TestQuotaMarkerBlocksUntilAcked: once the marker is stored, SEND is
// refused even after other messages are acknowledged, until the marker
// itself is.
// TestQuotaMarkerBlocksUntilAcked: once the marker is stored, SEND is
// refused even after other messages are acknowledged, until the marker
// itself is.
func testQuotaMarkerBlocksUntilAcked(t *testing.T, f Fresh) {
	s := must(t, f(t, store.Options{}))
	defer s.Close()
	k := store.RecipientKey(newID())
	if err := s.Create(k, store.SenderKeyOf(newID()), store.Queue{}); err != nil {
		t.Fatal(err)
	}
	now := time.Now()
	first := msg("a", now)
	if err := s.Put(k, first, 1); err != nil {
		t.Fatal(err)
	}
	if err := s.Put(k, msg("b", now), 1); !errors.Is(err, store.ErrQuota) {
		t.Fatalf("want the marker stored with store.ErrQuota, got %v", err)
	}
	next, ok, err := s.Ack(k, first.ID)
	if err != nil || !ok || !next.Quota {
		t.Fatalf("after the first ACK: %+v %v %v", next, ok, err)
	}
	if err := s.Put(k, msg("c", now), 1); !errors.Is(err, store.ErrQuota) {
		t.Fatalf("Put with the marker still queued: %v", err)
	}
	if _, _, err := s.Ack(k, next.ID); err != nil {
		t.Fatal(err)
	}
	if err := s.Put(k, msg("d", now), 1); err != nil {
		t.Fatalf("Put after the marker's ACK: %v", err)
	}
}
