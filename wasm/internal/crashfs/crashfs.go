// Package crashfs is an in-memory file system for crash tests: after a
// budget of mutations is spent, every further mutation fails, as if the
// process died at that instant. What was written before stays; nothing
// after it lands.
//
//	fsys, _ := crashfs.New()
//	fsys.SetBudget(17) // the 18th write, rename, remove or mkdir fails
//	... run until something fails, drop everything in memory ...
//	fsys.SetBudget(-1) // unlimited again: restart on what was written
package crashfs

import (
	"errors"
	"sync"

	"github.com/hack-pad/hackpadfs"
	"github.com/hack-pad/hackpadfs/mem"
)

// ErrCrashed is what a mutation after the budget returns.
var ErrCrashed = errors.New("crashfs: crashed")

// FS is a mem.FS whose mutations can be cut off.
type FS struct {
	*mem.FS
	mu     sync.Mutex
	budget int // mutations left; <0 means unlimited
}

// New returns an empty FS with an unlimited budget.
func New() (*FS, error) {
	base, err := mem.NewFS()
	if err != nil {
		return nil, err
	}
	return &FS{FS: base, budget: -1}, nil
}

// SetBudget allows n more mutations (n < 0: unlimited).
func (f *FS) SetBudget(n int) {
	f.mu.Lock()
	f.budget = n
	f.mu.Unlock()
}

func (f *FS) spend() error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.budget == 0 {
		return ErrCrashed
	}
	if f.budget > 0 {
		f.budget--
	}
	return nil
}

// OpenFile counts opening for writing as a mutation.
func (f *FS) OpenFile(name string, flag int, perm hackpadfs.FileMode) (hackpadfs.File, error) {
	if flag&(hackpadfs.FlagWriteOnly|hackpadfs.FlagReadWrite|hackpadfs.FlagCreate|hackpadfs.FlagTruncate) != 0 {
		if err := f.spend(); err != nil {
			return nil, err
		}
	}
	return f.FS.OpenFile(name, flag, perm)
}

// Rename is a mutation.
func (f *FS) Rename(a, b string) error {
	if err := f.spend(); err != nil {
		return err
	}
	return f.FS.Rename(a, b)
}

// Remove is a mutation.
func (f *FS) Remove(name string) error {
	if err := f.spend(); err != nil {
		return err
	}
	return f.FS.Remove(name)
}

// Mkdir is a mutation.
func (f *FS) Mkdir(name string, perm hackpadfs.FileMode) error {
	if err := f.spend(); err != nil {
		return err
	}
	return f.FS.Mkdir(name, perm)
}

// MkdirAll is a mutation.
func (f *FS) MkdirAll(name string, perm hackpadfs.FileMode) error {
	if err := f.spend(); err != nil {
		return err
	}
	return f.FS.MkdirAll(name, perm)
}
