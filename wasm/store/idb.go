//go:build js && wasm

package store

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"path"
	"strings"
	"sync/atomic"
	"syscall/js"
	"time"

	"github.com/hack-pad/hackpadfs"
	"github.com/hack-pad/hackpadfs/indexeddb"
)

// IndexedDB is a hackpadfs file system in an IndexedDB database (the
// layout of hackpadfs/indexeddb: object store "info" holds each path's
// {ModTime, Mode, Size, Parent}, indexed by Parent; "contents" holds each
// file's bytes as a Uint8Array), plus a second connection to the same
// database through which a Store reads and writes its records directly.
//
// Why: hackpadfs replaces a file in several IndexedDB transactions
// (create, write, rename: ~16 ms for a 300-byte record in Chromium) and
// lists a directory with one transaction per entry. A Store needs neither:
// it writes a whole batch of records, info and contents, in one readwrite
// transaction, which IndexedDB makes atomic (all or none survive a crash),
// reads a record with one get, and lists a directory with one getAll.
// Everything else (directories, profile key records, removal of a whole
// profile) goes through hackpadfs, which reads what this writes.
type IndexedDB struct {
	*indexeddb.FS
	db     js.Value // IDBDatabase
	writes atomic.Int64
}

var _ hackpadfs.FS = (*IndexedDB)(nil)

// OpenIndexedDB opens (creating when missing) the IndexedDB database name as
// a file system. Call it from a goroutine, never synchronously inside a
// js.FuncOf callback: IndexedDB answers through the event loop, which such
// a callback blocks. The same holds for every Store on it.
func OpenIndexedDB(ctx context.Context, name string) (*IndexedDB, error) {
	fsys, err := indexeddb.NewFS(ctx, name, indexeddb.Options{})
	if err != nil {
		return nil, fmt.Errorf("store: opening IndexedDB %q: %w", name, err)
	}
	// hackpadfs created the database at version 1; open it again at that
	// version (never upgrading it) for the direct path.
	req := js.Global().Get("indexedDB").Call("open", name, 1)
	res, err := await(ctx, req, "success", "error")
	if err != nil {
		return nil, fmt.Errorf("store: opening IndexedDB %q: %w", name, err)
	}
	return &IndexedDB{FS: fsys, db: res.Get("result")}, nil
}

// WriteTransactions returns the number of readwrite transactions the direct
// path has committed (one per Store.Apply, Put, PutOnce or Delete).
func (d *IndexedDB) WriteTransactions() int64 { return d.writes.Load() }

// await waits for one of two events on target, returning target on the
// first and the target's error on the second.
func await(ctx context.Context, target js.Value, ok, fail string) (js.Value, error) {
	done := make(chan error, 1)
	okFn := js.FuncOf(func(js.Value, []js.Value) any { done <- nil; return nil })
	failFn := js.FuncOf(func(js.Value, []js.Value) any {
		done <- domError(target.Get("error"), fail)
		return nil
	})
	target.Call("addEventListener", ok, okFn)
	target.Call("addEventListener", fail, failFn)
	defer func() {
		// Removed before they are released: an event after a cancelled
		// wait must not call a released function.
		target.Call("removeEventListener", ok, okFn)
		target.Call("removeEventListener", fail, failFn)
		okFn.Release()
		failFn.Release()
	}()
	select {
	case err := <-done:
		return target, err
	case <-ctx.Done():
		return target, ctx.Err()
	}
}

// domError turns a DOMException (or null) into an error.
func domError(e js.Value, event string) error {
	if e.IsNull() || e.IsUndefined() {
		return fmt.Errorf("IndexedDB: %s", event)
	}
	return fmt.Errorf("IndexedDB: %s: %s", e.Get("name").String(), e.Get("message").String())
}

var errAborted = errors.New("store: IndexedDB transaction aborted")

// transact runs one transaction over stores: issue makes its requests
// (returning those whose results the caller wants) and the results are
// returned once the transaction has completed.
func (d *IndexedDB) transact(mode string, stores []any, issue func(txn js.Value) []js.Value) ([]js.Value, error) {
	txn := d.db.Call("transaction", js.ValueOf(stores), mode)
	reqs := issue(txn)
	if _, err := await(context.Background(), txn, "complete", "abort"); err != nil {
		return nil, fmt.Errorf("%w: %w", errAborted, err)
	}
	out := make([]js.Value, len(reqs))
	for i, r := range reqs {
		out[i] = r.Get("result")
	}
	return out, nil
}

var (
	uint8Array = js.Global().Get("Uint8Array")
	object     = js.Global().Get("Object")
	keyRange   = js.Global().Get("IDBKeyRange")
)

const (
	infoStore     = "info"
	contentsStore = "contents"
	parentIndex   = "Parent"
)

// writeFiles writes and deletes whole files in one readwrite transaction.
// Every file's directory must exist.
func (d *IndexedDB) writeFiles(ops []fileOp) error {
	now := time.Now().UnixNano()
	_, err := d.transact("readwrite", []any{infoStore, contentsStore}, func(txn js.Value) []js.Value {
		infos := txn.Call("objectStore", infoStore)
		contents := txn.Call("objectStore", contentsStore)
		for _, op := range ops {
			if op.delete {
				infos.Call("delete", op.name)
				contents.Call("delete", op.name)
				continue
			}
			data := uint8Array.New(len(op.data))
			js.CopyBytesToJS(data, op.data)
			contents.Call("put", data, op.name)
			info := object.New()
			info.Set("ModTime", float64(now))
			info.Set("Mode", uint32(0o600))
			info.Set("Size", len(op.data))
			info.Set("Parent", path.Dir(op.name))
			infos.Call("put", info, op.name)
		}
		return nil
	})
	if err != nil {
		return err
	}
	d.writes.Add(1)
	return nil
}

// readFile returns a file's contents, fs.ErrNotExist when there is none.
func (d *IndexedDB) readFile(name string) ([]byte, error) {
	res, err := d.transact("readonly", []any{contentsStore}, func(txn js.Value) []js.Value {
		return []js.Value{txn.Call("objectStore", contentsStore).Call("get", name)}
	})
	if err != nil {
		return nil, err
	}
	v := res[0]
	if v.IsUndefined() || v.IsNull() {
		return nil, fs.ErrNotExist
	}
	if !v.InstanceOf(uint8Array) {
		return nil, fmt.Errorf("store: %s holds no bytes", name)
	}
	b := make([]byte, v.Length())
	js.CopyBytesToGo(b, v)
	return b, nil
}

// readFiles returns the contents of several files, read in one
// transaction; nil for a missing one.
func (d *IndexedDB) readFiles(names []string) ([][]byte, error) {
	if len(names) == 0 {
		return nil, nil
	}
	res, err := d.transact("readonly", []any{contentsStore}, func(txn js.Value) []js.Value {
		contents := txn.Call("objectStore", contentsStore)
		reqs := make([]js.Value, len(names))
		for i, name := range names {
			reqs[i] = contents.Call("get", name)
		}
		return reqs
	})
	if err != nil {
		return nil, err
	}
	out := make([][]byte, len(names))
	for i, v := range res {
		if v.IsUndefined() || v.IsNull() {
			continue
		}
		if !v.InstanceOf(uint8Array) {
			return nil, fmt.Errorf("store: %s holds no bytes", names[i])
		}
		out[i] = make([]byte, v.Length())
		js.CopyBytesToGo(out[i], v)
	}
	return out, nil
}

// readDirRange lists the entries of dir named from <= n < to (to "": no
// upper bound) in one transaction, reading only those: a range of the
// info store's keys (full paths), of which the entries deeper down are
// skipped.
func (d *IndexedDB) readDirRange(dir, from, to string) ([]dirEntry, error) {
	return d.readUnder(dir, from, to, false)
}

// readTree lists everything under dir, at any depth, in one transaction.
func (d *IndexedDB) readTree(dir string) ([]dirEntry, error) {
	return d.readUnder(dir, "", "", true)
}

// readUnder lists the paths under dir whose part after dir is in [from,
// to) (to "": no upper bound); only dir's own entries unless deep.
func (d *IndexedDB) readUnder(dir, from, to string, deep bool) ([]dirEntry, error) {
	prefix := dir + "/"
	if dir == "." || dir == "" {
		prefix = ""
	}
	upper := prefix + to
	if to == "" {
		if prefix == "" {
			if deep {
				return nil, fmt.Errorf("store: listing the whole database")
			}
			return d.readDir(dir)
		}
		// Every path that starts with prefix sorts below prefix with its
		// "/" replaced by "0", the next character.
		upper = prefix[:len(prefix)-1] + "0"
	}
	if prefix+from >= upper {
		return nil, nil
	}
	return d.listInfos(dir, false, keyRange.Call("bound", prefix+from, upper, false, true), func(key string) (string, bool) {
		name := strings.TrimPrefix(key, prefix)
		return name, deep || !strings.Contains(name, "/") // deeper down unless deep
	})
}

// readDir lists a directory's entries in one transaction: a consistent
// snapshot, so an entry renamed or removed meanwhile cannot make it fail.
// A missing directory lists nothing.
func (d *IndexedDB) readDir(dir string) ([]dirEntry, error) {
	return d.listInfos(dir, true, keyRange.Call("only", dir), func(key string) (string, bool) { return path.Base(key), true })
}

// listInfos reads, in one transaction, the paths r selects in the info
// store (by path) or its Parent index (by parent), with their infos, and
// makes an entry of each that name keeps, named as name says.
func (d *IndexedDB) listInfos(dir string, byParent bool, r js.Value, name func(path string) (string, bool)) ([]dirEntry, error) {
	res, err := d.transact("readonly", []any{infoStore}, func(txn js.Value) []js.Value {
		src := txn.Call("objectStore", infoStore)
		if byParent {
			src = src.Call("index", parentIndex)
		}
		// Both in the same order: the i-th key names the i-th value.
		return []js.Value{src.Call("getAllKeys", r), src.Call("getAll", r)}
	})
	if err != nil {
		return nil, err
	}
	keys, infos := res[0], res[1]
	n := keys.Length()
	if infos.Length() != n {
		return nil, fmt.Errorf("store: listing %s: %d names for %d entries", dir, n, infos.Length())
	}
	out := make([]dirEntry, 0, n)
	for i := range n {
		nm, keep := name(keys.Index(i).String())
		if !keep {
			continue
		}
		mode := hackpadfs.FileMode(uint32(infos.Index(i).Get("Mode").Int()))
		out = append(out, dirEntry{name: nm, dir: mode.IsDir()})
	}
	return out, nil
}
