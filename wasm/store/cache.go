package store

import (
	"bytes"
	"fmt"
	"slices"
	"strings"
	"sync"
)

// The read cache (Store.Cache).
//
// In the browser every read is an IndexedDB transaction, and the core
// reads a few records again and again: a connection's state before each
// message it sends or receives, its outbox listing on each pass of the
// outbox worker, a contact's record for each event. Store.Cache keeps the
// records and directory listings a predicate names in memory, so that a
// second read costs no transaction. Every write goes through Apply,
// PutOnce, Delete or DeleteAll, which update the cached copies after the
// write succeeded and drop them when it failed (its outcome on the file
// system is then unknown), so a read through the cache returns what a read
// of the file system would. Nothing outside the Store may write its
// directory while it is open (one Store per profile and tab: the page's
// Web Lock).
//
// A read that missed fills the cache only if nothing wrote that record or
// directory while it read (the generations below), so a slow read cannot
// put back a value a write has replaced meanwhile.
type cache struct {
	mu      sync.Mutex
	records []func(Key) bool // which records are kept
	dirs    []func(Key) bool // which directories' listings are kept
	recs    map[Key][]byte
	lists   map[Key][]string // sorted names of the files directly under a directory
	gen     uint64           // counts writes
	touched map[Key]uint64   // the last write of each kept record and directory
	cleared uint64           // the last DeleteAll
	// complete lists the prefixes Preload read whole: a kept directory
	// under one that has no listing has no files (it did not exist).
	complete []Key
}

// Cache makes s keep, in memory, the plaintext of every record whose key
// records reports true for and the listing (List) of every directory dirs
// reports true for, once read or written. Either may be nil. Calls add to
// the earlier ones. Returned values are copies.
func (s *Store) Cache(records, dirs func(Key) bool) {
	c := &s.cache
	c.mu.Lock()
	defer c.mu.Unlock()
	if records != nil {
		c.records = append(c.records, records)
	}
	if dirs != nil {
		c.dirs = append(c.dirs, dirs)
	}
	if c.recs == nil {
		c.recs = make(map[Key][]byte)
		c.lists = make(map[Key][]string)
		c.touched = make(map[Key]uint64)
	}
}

func match(preds []func(Key) bool, k Key) bool {
	for _, p := range preds {
		if p(k) {
			return true
		}
	}
	return false
}

// generation returns the write count, to pass to fillRecord or fillList
// after a read.
func (c *cache) generation() uint64 {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.gen
}

// record returns a copy of a cached record.
func (c *cache) record(k Key) ([]byte, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	v, ok := c.recs[k]
	if !ok {
		return nil, false
	}
	return bytes.Clone(v), true
}

// fillRecord keeps a record read from the file system, unless a write
// happened since gen.
func (c *cache) fillRecord(k Key, v []byte, gen uint64) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.fresh(k, gen) && match(c.records, k) {
		c.recs[k] = bytes.Clone(v)
	}
}

// list returns a copy of a cached listing.
func (c *cache) list(dir Key) ([]string, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	names, ok := c.lists[dir]
	if !ok {
		return nil, c.knownEmpty(dir)
	}
	return slices.Clone(names), true
}

// knownEmpty reports whether dir, which has no listing in the cache, is
// a kept directory under a prefix Preload read whole, and so has no
// files; c.mu held.
func (c *cache) knownEmpty(dir Key) bool {
	if !match(c.dirs, dir) {
		return false
	}
	for _, p := range c.complete {
		if strings.HasPrefix(string(dir), string(p)+"/") {
			return true
		}
	}
	return false
}

// fillList keeps a listing read from the file system, unless a write
// happened since gen.
func (c *cache) fillList(dir Key, names []string, gen uint64) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.fresh(dir, gen) && match(c.dirs, dir) {
		c.lists[dir] = slices.Clone(names)
	}
}

// fresh reports whether a read of k that began at generation gen still
// holds: nothing wrote k, and no DeleteAll ran, since; c.mu held.
func (c *cache) fresh(k Key, gen uint64) bool {
	return c.touched != nil && c.touched[k] <= gen && c.cleared <= gen
}

// wrote updates the cache after ops were written (ok) or may have been
// written in part (!ok).
func (c *cache) wrote(ops []batchOp, ok bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.gen++
	if c.recs == nil {
		return
	}
	if !ok {
		c.complete = nil // a listing dropped below is no longer known empty
	}
	for _, o := range ops {
		dir := o.k.Dir()
		if match(c.records, o.k) {
			c.touched[o.k] = c.gen
		}
		if match(c.dirs, dir) {
			c.touched[dir] = c.gen
		}
		if !ok {
			delete(c.recs, o.k)
			delete(c.lists, dir)
			continue
		}
		if _, cached := c.lists[dir]; !cached && c.knownEmpty(dir) {
			c.lists[dir] = []string{} // the first file of a new directory
		}
		if match(c.records, o.k) {
			if o.delete {
				delete(c.recs, o.k)
			} else {
				c.recs[o.k] = bytes.Clone(o.value)
			}
		}
		if names, cached := c.lists[dir]; cached {
			name := o.k.Base()
			i, found := slices.BinarySearch(names, name)
			switch {
			case o.delete && found:
				c.lists[dir] = slices.Delete(names, i, i+1)
			case !o.delete && !found:
				c.lists[dir] = slices.Insert(names, i, name)
			}
		}
	}
}

// removedAll drops what was cached under prefix (DeleteAll).
func (c *cache) removedAll(prefix Key) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.gen++
	c.cleared = c.gen
	under := func(k Key) bool { return k == prefix || strings.HasPrefix(string(k), string(prefix)+"/") }
	for k := range c.recs {
		if under(k) {
			delete(c.recs, k)
		}
	}
	for k := range c.lists {
		if under(k) {
			delete(c.lists, k)
		}
	}
	for k := range c.touched {
		if under(k) {
			delete(c.touched, k) // c.cleared covers them
		}
	}
}

// Preload reads everything under prefix that the cache keeps (Cache): the
// listings of the directories and the records, in two transactions on
// IndexedDB whatever their number. A kept directory under prefix that does
// not exist is then known to list nothing, until a write fails. A missing
// prefix loads nothing.
func (s *Store) Preload(prefix Key) error {
	if !prefix.Valid() {
		return fmt.Errorf("%w: %q", ErrBadKey, prefix)
	}
	c := &s.cache
	gen := c.generation()
	entries, err := readTree(s.fs, s.name(prefix))
	if err != nil {
		return err
	}
	lists := map[Key][]string{}
	var keys []Key
	c.mu.Lock()
	for _, e := range entries {
		k := prefix.Join(e.name)
		if !k.Valid() {
			continue // the temporary folder and the like
		}
		if e.dir {
			if match(c.dirs, k) && lists[k] == nil {
				lists[k] = []string{}
			}
			continue
		}
		if d := k.Dir(); match(c.dirs, d) {
			lists[d] = append(lists[d], k.Base())
		}
		if match(c.records, k) {
			keys = append(keys, k)
		}
	}
	c.mu.Unlock()
	for dir, names := range lists {
		slices.Sort(names)
		c.fillList(dir, names, gen)
	}
	c.mu.Lock()
	if c.gen == gen && c.cleared <= gen { // nothing at all was written meanwhile
		c.complete = append(c.complete, prefix)
	}
	c.mu.Unlock()
	_, err = s.GetMany(keys) // fills the records
	return err
}
