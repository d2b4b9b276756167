package relay

import (
	"errors"
	"time"

	"github.com/wisp-chat/wisp/server/relay/store"
)

// onEvent acts on a change another relay process committed to the
// shared store (store.Shared). It runs on the store's event goroutine,
// so whatever reads the store runs on a goroutine of its own.
func (s *Server) onEvent(ev store.Event) {
	k := ev.Queue
	switch ev.Kind {
	case store.EventStored:
		if s.subscriber(k) != nil {
			s.wg.Go(func() { s.deliverIfIdle(k) })
		}
	case store.EventAcked:
		// Taken by GET and acknowledged on another process while it was
		// in flight here: it is gone, deliver the next one.
		if sub := s.subscriber(k); sub != nil {
			sub.mu.Lock()
			if sub.busy && sub.inflight == ev.Msg {
				sub.busy = false
			}
			sub.mu.Unlock()
			s.wg.Go(func() { s.deliverIfIdle(k) })
		}
	case store.EventSubscribed:
		if sub := s.subscriber(k); sub != nil && sub.epoch < ev.Epoch {
			s.endShared(k, sub)
		}
	case store.EventDeleted:
		if sub := s.subscriber(k); sub != nil {
			s.endShared(k, sub)
		}
	case store.EventResync:
		s.mu.Lock()
		subs := make([]*subscription, 0, len(s.subs))
		for _, sub := range s.subs {
			subs = append(subs, sub)
		}
		s.mu.Unlock()
		for _, sub := range subs {
			s.wg.Go(func() { s.recheck(sub) })
		}
	}
}

// recheck brings one subscription up to date after events were lost:
// it ends if the queue was subscribed elsewhere or deleted, forgets a
// message in flight that is no longer stored, and delivers.
func (s *Server) recheck(sub *subscription) {
	k := sub.key
	var e uint64
	var err error
	// The store is just back from an outage: give it a few tries.
	for wait := 100 * time.Millisecond; ; wait *= 2 {
		if e, err = s.shared.Epoch(k); err == nil || errors.Is(err, store.ErrNotFound) || wait > 5*time.Second {
			break
		}
		select {
		case <-time.After(wait):
		case <-s.ctx.Done():
			return
		}
	}
	switch {
	case errors.Is(err, store.ErrNotFound) || (err == nil && e > sub.epoch):
		s.endShared(k, sub)
		return
	case err != nil:
		s.log.Error("rechecking a subscription failed", "err", err)
		return
	}
	sub.mu.Lock()
	if sub.busy {
		m, ok, err := s.cfg.Store.Peek(k)
		if err == nil && (!ok || m.ID != sub.inflight) {
			sub.busy = false
		}
	}
	sub.mu.Unlock()
	s.deliverIfIdle(k)
}

// endShared ends a subscription of this process that another process
// took over (or whose queue it deleted): the session gets END.
func (s *Server) endShared(k store.QueueKey, sub *subscription) {
	s.mu.Lock()
	if s.subs[k] != sub {
		s.mu.Unlock()
		return
	}
	delete(s.subs, k)
	s.mu.Unlock()
	sub.end(k)
}
