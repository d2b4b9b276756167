// Package sessions keeps a server's set of open sessions, so that a
// shutdown can end every one of them and no session starts after it.
// The queue relay and the file relay share it.
//
//	var set sessions.Set[*conn]
//	if !set.Add(c) { return } // shutting down
//	defer set.Remove(c)
//	...
//	open, first := set.Close() // on shutdown: end each of open
//	set.Wait()                 // until every session has returned
package sessions

import "sync"

// Set is a set of sessions; its zero value is ready to use.
type Set[S comparable] struct {
	mu     sync.Mutex
	open   map[S]struct{}
	closed bool
	wg     sync.WaitGroup // one per session added and not removed
}

// Add adds s; it reports false, adding nothing, once Close was called.
func (set *Set[S]) Add(s S) bool {
	set.mu.Lock()
	defer set.mu.Unlock()
	if set.closed {
		return false
	}
	if set.open == nil {
		set.open = make(map[S]struct{})
	}
	if _, ok := set.open[s]; !ok {
		set.open[s] = struct{}{}
		set.wg.Add(1)
	}
	return true
}

// Remove removes s.
func (set *Set[S]) Remove(s S) {
	set.mu.Lock()
	defer set.mu.Unlock()
	if _, ok := set.open[s]; ok {
		delete(set.open, s)
		set.wg.Done()
	}
}

// Wait waits until every session added has been removed. After Close it
// is how a shutdown waits for the sessions to finish what they started
// (their commands in progress) before the storage closes.
func (set *Set[S]) Wait() {
	set.wg.Wait()
}

// Len returns the number of open sessions.
func (set *Set[S]) Len() int {
	set.mu.Lock()
	defer set.mu.Unlock()
	return len(set.open)
}

// Close refuses every later Add and returns the sessions open now. first
// is false when Close had already been called (open is then nil).
func (set *Set[S]) Close() (open []S, first bool) {
	set.mu.Lock()
	defer set.mu.Unlock()
	if set.closed {
		return nil, false
	}
	set.closed = true
	for s := range set.open {
		open = append(open, s)
	}
	return open, true
}
