// Package store keeps the Wisp core's local state as small encrypted records
// over a hackpadfs.FS: IndexedDB in the browser (see OpenIndexedDB), the
// in-memory or OS file system natively.
//
// Every record is one file holding the output of a Sealer (an AEAD keyed
// from the user's passphrase or a random key; crypto/vault implements it).
// The record's full name is the associated data, so a record cannot be
// moved to another name or another profile without failing to open.
// Nothing decrypted is ever written.
//
//	s, err := store.Open(fsys, "profiles/3f9c…", sealer)
//	err = s.Put("conn/7a1b/msg/00000000000000000042", record)
//	rec, err := s.Get("conn/7a1b/msg/00000000000000000042")
//	keys, err := s.List("conn/7a1b/msg") // children, sorted
//
// A long listing is read a page at a time with ListRange, and a page's
// records with GetMany, each one readonly transaction on IndexedDB, so a
// page of a conversation costs the page, not the conversation:
//
//	keys, err := s.ListRange("conn/7a1b/msg", "00000000000000000100", "00000000000000000150")
//	recs, err := s.GetMany(keys)
//
// Records and listings read again and again are kept in memory with Cache
// (written through by every write, see cache.go), and Preload reads all
// of them under a prefix in two transactions:
//
//	s.Cache(func(k store.Key) bool { return k.Base() == "state" }, nil)
//	err = s.Preload("conn")
//
// Records are kept small (one per message, chunk or state object). Put is
// atomic: a crash leaves either the old or the new record, never a torn
// one. Writes that belong together go in one Batch:
//
//	var b store.Batch
//	b.Put("conn/7a1b/out/00000000000000000043", entry)
//	b.Put("conn/7a1b/state", state)
//	err = s.Apply(&b)
//
// On IndexedDB (OpenIndexedDB) a Put, a Delete and a whole batch are each
// one readwrite transaction: all or nothing after a crash, ~1.7 ms for a
// 300-byte record in Chromium, against ~16 ms for hackpadfs's create, write
// and rename. On other file systems a record is written to a temporary file
// and renamed over the old one, and a batch's writes are made in order, so
// a crash leaves a prefix of it: callers order a batch so that any prefix
// is a consistent state (see wasm/agent/SPEC.md).
//
// PutOnce is for large records written once (file chunks): on file
// systems other than IndexedDB it writes the record in place, without the
// temporary file. A crash in the middle leaves an empty or partial record,
// which Get reports as ErrCorrupt; the caller writes it again.
//
// What the file system still reveals to someone who can read it: the number
// of records, their sizes and names. Names are built only from random IDs
// and counters, never from names, texts or addresses.
package store

import (
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io/fs"
	"path"
	"sort"
	"strings"
	"sync"

	"github.com/hack-pad/hackpadfs"
)

// Sealer encrypts and authenticates records. name is bound as associated
// data. crypto/vault's Vault satisfies it.
type Sealer interface {
	Seal(name string, plaintext []byte) ([]byte, error)
	Open(name string, sealed []byte) ([]byte, error)
}

// Key names a record: one to MaxDepth segments separated by "/", each of 1
// to 64 characters from [A-Za-z0-9_-].
type Key string

// Limits.
const (
	MaxDepth      = 8
	maxSegment    = 64
	MaxRecordSize = 8 << 20 // plaintext bytes per record
	tmpDir        = ".tmp"
)

// Sentinel errors.
var (
	ErrNotFound = errors.New("store: record not found")
	ErrBadKey   = errors.New("store: invalid record key")
	ErrTooLarge = errors.New("store: record too large")
	// ErrCorrupt means a record exists but does not open: it was altered,
	// moved, or sealed with another key.
	ErrCorrupt = errors.New("store: record does not open")
)

// Valid reports whether k is a well-formed key.
func (k Key) Valid() bool {
	if k == "" {
		return false
	}
	segs := strings.Split(string(k), "/")
	if len(segs) > MaxDepth {
		return false
	}
	for _, s := range segs {
		if len(s) == 0 || len(s) > maxSegment {
			return false
		}
		for i := 0; i < len(s); i++ {
			c := s[i]
			if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '_' || c == '-') {
				return false
			}
		}
	}
	return true
}

// Join returns k with segments appended.
func (k Key) Join(segs ...string) Key {
	parts := append([]string{string(k)}, segs...)
	if k == "" {
		parts = parts[1:]
	}
	return Key(strings.Join(parts, "/"))
}

// Base returns the last segment of k.
func (k Key) Base() string { return path.Base(string(k)) }

// Dir returns k without its last segment ("" for a key of one segment).
func (k Key) Dir() Key {
	d := path.Dir(string(k))
	if d == "." {
		return ""
	}
	return Key(d)
}

// Store is a set of encrypted records under one directory of a file system.
// It is safe for concurrent use.
type Store struct {
	fs     hackpadfs.FS
	dir    string
	sealer Sealer
	mu     sync.Mutex      // serialises writes, so a record's last Put wins
	dirs   map[string]bool // directories known to exist (saves a lookup per Put)
	cache  cache           // records and listings kept in memory (cache.go)
}

// Open returns the store rooted at dir (created when missing) and removes
// temporary files left by an interrupted Put.
func Open(fsys hackpadfs.FS, dir string, sealer Sealer) (*Store, error) {
	if dir != "." && !Key(dir).Valid() {
		return nil, fmt.Errorf("%w: directory %q", ErrBadKey, dir)
	}
	if sealer == nil {
		return nil, errors.New("store: nil Sealer")
	}
	s := &Store{fs: fsys, dir: dir, sealer: sealer, dirs: make(map[string]bool)}
	tmp := path.Join(dir, tmpDir)
	if err := hackpadfs.RemoveAll(fsys, tmp); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return nil, fmt.Errorf("store: removing temporary files: %w", err)
	}
	if err := hackpadfs.MkdirAll(fsys, tmp, 0o700); err != nil {
		return nil, fmt.Errorf("store: creating %s: %w", dir, err)
	}
	return s, nil
}

// name is the record's full name: its path on the FS and its associated data.
func (s *Store) name(k Key) string { return path.Join(s.dir, string(k)) }

// Put stores value under k, replacing any previous record, atomically.
func (s *Store) Put(k Key, value []byte) error {
	var b Batch
	b.Put(k, value)
	return s.Apply(&b)
}

// A Batch is a list of record writes and deletions that Store.Apply makes
// together. Values are sealed when the batch is applied; the caller must
// not change them before.
type Batch struct{ ops []batchOp }

type batchOp struct {
	k      Key
	value  []byte
	delete bool
}

// Put adds a write of value under k.
func (b *Batch) Put(k Key, value []byte) { b.ops = append(b.ops, batchOp{k: k, value: value}) }

// Delete adds the removal of the record under k (a missing one is not an
// error).
func (b *Batch) Delete(k Key) { b.ops = append(b.ops, batchOp{k: k, delete: true}) }

// Len returns the number of writes and deletions in b.
func (b *Batch) Len() int { return len(b.ops) }

// Apply makes b's writes and deletions, in order. It checks every key and
// size first, so a bad one fails the whole batch before anything is
// written. On IndexedDB (OpenIndexedDB) the batch is one transaction: after
// a crash either all of it or none of it is there. On other file systems
// each write is atomic on its own and they are made in order, so a crash
// leaves a prefix of the batch: order it as separate Puts would be ordered
// (wasm/agent/SPEC.md).
func (s *Store) Apply(b *Batch) error {
	if len(b.ops) == 0 {
		return nil
	}
	ops := make([]fileOp, len(b.ops))
	for i, o := range b.ops {
		if o.delete {
			if !o.k.Valid() {
				return fmt.Errorf("%w: %q", ErrBadKey, o.k)
			}
			ops[i] = fileOp{name: s.name(o.k), delete: true}
			continue
		}
		name, sealed, err := s.seal(o.k, o.value)
		if err != nil {
			return err
		}
		ops[i] = fileOp{name: name, data: sealed}
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, op := range ops {
		if !op.delete {
			if err := s.mkdirs(path.Dir(op.name)); err != nil {
				return err
			}
		}
	}
	if tx, ok := s.fs.(txFS); ok {
		err := tx.writeFiles(ops)
		s.cache.wrote(b.ops, err == nil)
		if err != nil {
			return fmt.Errorf("store: put: %w", err)
		}
		return nil
	}
	for _, op := range ops {
		var err error
		if op.delete {
			err = s.remove(op.name)
		} else {
			err = s.replace(op.name, op.data)
		}
		if err != nil {
			s.cache.wrote(b.ops, false)
			return err
		}
	}
	s.cache.wrote(b.ops, true)
	return nil
}

// replace writes a file atomically through a temporary file and a rename;
// s.mu is held.
func (s *Store) replace(name string, sealed []byte) error {
	var rnd [12]byte
	if _, err := rand.Read(rnd[:]); err != nil {
		return err
	}
	tmp := path.Join(s.dir, tmpDir, hex.EncodeToString(rnd[:]))
	if err := writeFile(s.fs, tmp, sealed); err != nil {
		_ = hackpadfs.Remove(s.fs, tmp)
		return fmt.Errorf("store: put: %w", err)
	}
	if err := hackpadfs.Rename(s.fs, tmp, name); err != nil {
		_ = hackpadfs.Remove(s.fs, tmp)
		return fmt.Errorf("store: put: %w", err)
	}
	return nil
}

// remove deletes a file, missing or not; s.mu is held.
func (s *Store) remove(name string) error {
	err := hackpadfs.Remove(s.fs, name)
	if err != nil && !errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("store: delete: %w", err)
	}
	return nil
}

// PutOnce stores value under k by writing the record in place, without a
// temporary file. It is not atomic: a crash during PutOnce can leave a
// record that Get reports as ErrCorrupt, so use it only for records the
// caller can write again (e.g. a file chunk still on the relay). It
// replaces an existing record like Put. (On IndexedDB it is Put: one
// transaction writes the record whole.)
func (s *Store) PutOnce(k Key, value []byte) error {
	if _, ok := s.fs.(txFS); ok {
		return s.Put(k, value)
	}
	name, sealed, err := s.seal(k, value)
	if err != nil {
		return err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if err := s.mkdirs(path.Dir(name)); err != nil {
		return err
	}
	err = writeFile(s.fs, name, sealed)
	s.cache.wrote([]batchOp{{k: k, value: value}}, err == nil)
	if err != nil {
		return fmt.Errorf("store: put: %w", err)
	}
	return nil
}

// seal checks a record and encrypts it under its full name.
func (s *Store) seal(k Key, value []byte) (name string, sealed []byte, err error) {
	if !k.Valid() {
		return "", nil, fmt.Errorf("%w: %q", ErrBadKey, k)
	}
	if len(value) > MaxRecordSize {
		return "", nil, fmt.Errorf("%w: %d bytes, the limit is %d", ErrTooLarge, len(value), MaxRecordSize)
	}
	name = s.name(k)
	if sealed, err = s.sealer.Seal(name, value); err != nil {
		return "", nil, fmt.Errorf("store: sealing: %w", err)
	}
	return name, sealed, nil
}

// mkdirs creates a record's directory once per Store; s.mu is held.
func (s *Store) mkdirs(dir string) error {
	if s.dirs[dir] {
		return nil
	}
	if err := hackpadfs.MkdirAll(s.fs, dir, 0o700); err != nil {
		return fmt.Errorf("store: put: %w", err)
	}
	s.dirs[dir] = true
	return nil
}

// writeFile writes data to a new file and syncs it when the FS can.
func writeFile(fsys hackpadfs.FS, name string, data []byte) error {
	f, err := hackpadfs.OpenFile(fsys, name, hackpadfs.FlagWriteOnly|hackpadfs.FlagCreate|hackpadfs.FlagTruncate, 0o600)
	if err != nil {
		return err
	}
	if _, err := hackpadfs.WriteFile(f, data); err != nil {
		f.Close()
		return err
	}
	if err := hackpadfs.SyncFile(f); err != nil && !errors.Is(err, hackpadfs.ErrNotImplemented) {
		f.Close()
		return err
	}
	return f.Close()
}

// Get returns the record under k: ErrNotFound when there is none,
// ErrCorrupt when it does not open.
func (s *Store) Get(k Key) ([]byte, error) {
	if !k.Valid() {
		return nil, fmt.Errorf("%w: %q", ErrBadKey, k)
	}
	if v, ok := s.cache.record(k); ok {
		return v, nil
	}
	gen := s.cache.generation()
	name := s.name(k)
	var sealed []byte
	var err error
	if tx, ok := s.fs.(txFS); ok {
		sealed, err = tx.readFile(name)
	} else {
		sealed, err = hackpadfs.ReadFile(s.fs, name)
	}
	if err != nil {
		if errors.Is(err, fs.ErrNotExist) {
			return nil, fmt.Errorf("%w: %s", ErrNotFound, k)
		}
		return nil, fmt.Errorf("store: get: %w", err)
	}
	value, err := s.sealer.Open(name, sealed)
	if err != nil {
		return nil, fmt.Errorf("%w: %s: %w", ErrCorrupt, k, err)
	}
	s.cache.fillRecord(k, value, gen)
	return value, nil
}

// GetMany returns the records under keys, in the same order, nil for a
// missing one; ErrCorrupt if one does not open. On IndexedDB they are
// read in one readonly transaction (a consistent snapshot); elsewhere one
// by one.
func (s *Store) GetMany(keys []Key) ([][]byte, error) {
	for _, k := range keys {
		if !k.Valid() {
			return nil, fmt.Errorf("%w: %q", ErrBadKey, k)
		}
	}
	out := make([][]byte, len(keys))
	var missed []int // indexes of the keys the cache does not hold
	for i, k := range keys {
		if v, ok := s.cache.record(k); ok {
			out[i] = v
		} else {
			missed = append(missed, i)
		}
	}
	tx, ok := s.fs.(txFS)
	if !ok || len(missed) == 0 {
		for _, i := range missed {
			v, err := s.Get(keys[i])
			if err != nil && !errors.Is(err, ErrNotFound) {
				return nil, err
			}
			out[i] = v
		}
		return out, nil
	}
	gen := s.cache.generation()
	names := make([]string, len(missed))
	for j, i := range missed {
		names[j] = s.name(keys[i])
	}
	sealed, err := tx.readFiles(names)
	if err != nil {
		return nil, fmt.Errorf("store: get: %w", err)
	}
	for j, i := range missed {
		if sealed[j] == nil {
			continue // missing
		}
		if out[i], err = s.sealer.Open(names[j], sealed[j]); err != nil {
			return nil, fmt.Errorf("%w: %s: %w", ErrCorrupt, keys[i], err)
		}
		s.cache.fillRecord(keys[i], out[i], gen)
	}
	return out, nil
}

// Has reports whether a record exists under k, without opening it.
func (s *Store) Has(k Key) (bool, error) {
	if !k.Valid() {
		return false, fmt.Errorf("%w: %q", ErrBadKey, k)
	}
	info, err := hackpadfs.Stat(s.fs, s.name(k))
	if errors.Is(err, fs.ErrNotExist) {
		return false, nil
	}
	if err != nil {
		return false, fmt.Errorf("store: %w", err)
	}
	return !info.IsDir(), nil
}

// Delete removes the record under k. Deleting a missing record is not an error.
func (s *Store) Delete(k Key) error {
	var b Batch
	b.Delete(k)
	return s.Apply(&b)
}

// DeleteAll removes every record under prefix, and prefix itself.
func (s *Store) DeleteAll(prefix Key) error {
	if !prefix.Valid() {
		return fmt.Errorf("%w: %q", ErrBadKey, prefix)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	clear(s.dirs) // some of them are gone now
	defer s.cache.removedAll(prefix)
	if err := hackpadfs.RemoveAll(s.fs, s.name(prefix)); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("store: delete all: %w", err)
	}
	return nil
}

// List returns the keys of the records directly under prefix (not in
// sub-directories), sorted. An empty prefix lists the top level. A missing
// prefix lists nothing.
func (s *Store) List(prefix Key) ([]Key, error) {
	return s.list(prefix, false)
}

// ListRange returns the keys of the records directly under prefix whose
// names n satisfy from <= n < to (to "" is no upper bound), sorted. On
// IndexedDB it reads only the entries in that range, in one readonly
// transaction; elsewhere it lists prefix and keeps the range.
func (s *Store) ListRange(prefix Key, from, to string) ([]Key, error) {
	if !prefix.Valid() {
		return nil, fmt.Errorf("%w: %q", ErrBadKey, prefix)
	}
	dir := s.name(prefix)
	var entries []dirEntry
	var err error
	if tx, ok := s.fs.(txFS); ok {
		entries, err = tx.readDirRange(dir, from, to)
	} else {
		entries, err = readDir(s.fs, dir)
	}
	if err != nil {
		return nil, fmt.Errorf("store: list: %w", err)
	}
	var keys []Key
	for _, e := range entries {
		if e.dir || strings.HasPrefix(e.name, ".") || e.name < from || (to != "" && e.name >= to) {
			continue
		}
		if k := prefix.Join(e.name); k.Valid() {
			keys = append(keys, k)
		}
	}
	sort.Slice(keys, func(i, j int) bool { return keys[i] < keys[j] })
	return keys, nil
}

// ListDirs returns the keys of the sub-directories directly under prefix,
// sorted.
func (s *Store) ListDirs(prefix Key) ([]Key, error) {
	return s.list(prefix, true)
}

func (s *Store) list(prefix Key, dirs bool) ([]Key, error) {
	if prefix != "" && !prefix.Valid() {
		return nil, fmt.Errorf("%w: %q", ErrBadKey, prefix)
	}
	if !dirs {
		if names, ok := s.cache.list(prefix); ok {
			keys := make([]Key, len(names))
			for i, n := range names {
				keys[i] = prefix.Join(n)
			}
			return keys, nil
		}
	}
	gen := s.cache.generation()
	dir := s.dir
	if prefix != "" {
		dir = s.name(prefix)
	}
	entries, err := readDir(s.fs, dir)
	if err != nil {
		return nil, fmt.Errorf("store: list: %w", err)
	}
	var keys []Key
	for _, e := range entries {
		if e.dir != dirs || strings.HasPrefix(e.name, ".") {
			continue
		}
		k := prefix.Join(e.name)
		if k.Valid() {
			keys = append(keys, k)
		}
	}
	sort.Slice(keys, func(i, j int) bool { return keys[i] < keys[j] })
	if !dirs {
		names := make([]string, len(keys))
		for i, k := range keys {
			names[i] = k.Base()
		}
		s.cache.fillList(prefix, names, gen)
	}
	return keys, nil
}

// readTree lists everything under dir, at any depth, with names relative
// to dir: on IndexedDB in one transaction.
func readTree(fsys hackpadfs.FS, dir string) ([]dirEntry, error) {
	if tx, ok := fsys.(txFS); ok {
		return tx.readTree(dir)
	}
	var out []dirEntry
	var walk func(rel string) error
	walk = func(rel string) error {
		entries, err := readDir(fsys, path.Join(dir, rel))
		if err != nil {
			return err
		}
		for _, e := range entries {
			name := path.Join(rel, e.name)
			out = append(out, dirEntry{name: name, dir: e.dir})
			if e.dir {
				if err := walk(name); err != nil {
					return err
				}
			}
		}
		return nil
	}
	if err := walk(""); err != nil {
		return nil, fmt.Errorf("store: list: %w", err)
	}
	return out, nil
}

// FileNames returns the names of the files (not directories) directly in
// dir on fsys, sorted. A missing dir lists nothing. Unlike hackpadfs.ReadDir
// it does not fail when an entry is renamed or removed while it lists.
func FileNames(fsys hackpadfs.FS, dir string) ([]string, error) {
	entries, err := readDir(fsys, dir)
	if err != nil {
		return nil, err
	}
	var names []string
	for _, e := range entries {
		if !e.dir {
			names = append(names, e.name)
		}
	}
	sort.Strings(names)
	return names, nil
}

// fileOp is one file written whole or removed.
type fileOp struct {
	name   string
	data   []byte
	delete bool
}

type dirEntry struct {
	name string
	dir  bool
}

// txFS is a file system that writes several whole files in one atomic
// transaction and reads and lists without hackpadfs's per-entry
// transactions: IndexedDB.
type txFS interface {
	writeFiles(ops []fileOp) error
	readFile(name string) ([]byte, error)
	// readFiles returns the files' contents in order, nil for a missing one.
	readFiles(names []string) ([][]byte, error)
	readDir(dir string) ([]dirEntry, error)
	// readDirRange lists the entries of dir named from <= n < to (to ""
	// is no upper bound).
	readDirRange(dir, from, to string) ([]dirEntry, error)
	// readTree lists everything under dir, names relative to it.
	readTree(dir string) ([]dirEntry, error)
}

// readDir lists dir (nothing when it is missing). Through hackpadfs, an
// entry that vanishes between the listing and its Stat (a temporary file
// renamed) fails the listing with fs.ErrNotExist; it is then listed again.
func readDir(fsys hackpadfs.FS, dir string) ([]dirEntry, error) {
	if tx, ok := fsys.(txFS); ok {
		return tx.readDir(dir)
	}
	for attempt := 0; ; attempt++ {
		entries, err := hackpadfs.ReadDir(fsys, dir)
		if errors.Is(err, fs.ErrNotExist) {
			if _, serr := hackpadfs.Stat(fsys, dir); errors.Is(serr, fs.ErrNotExist) {
				return nil, nil
			}
			if attempt < 10 {
				continue
			}
		}
		if err != nil {
			return nil, err
		}
		out := make([]dirEntry, len(entries))
		for i, e := range entries {
			out[i] = dirEntry{name: e.Name(), dir: e.IsDir()}
		}
		return out, nil
	}
}
