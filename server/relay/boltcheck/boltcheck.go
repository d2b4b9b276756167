// Package boltcheck verifies a bbolt file before a relay opens it, so that
// a damaged store is refused at start with a message naming the file,
// instead of panicking the relay at the first command that reads the
// damaged page (and again after every restart).
//
//	res, err := boltcheck.Check(filepath.Join(dir, "queues.db"))
//	if errors.Is(err, boltcheck.ErrCorrupt) { ... refuse to start ... }
//
// Check runs in two steps. First it walks the B+tree of every bucket
// itself, reading pages with ReadAt (no memory map) and checking every page
// number, page type, element count and key/value bound before using it:
// this finds the damage that makes bbolt read outside a page or the file
// (a memory fault, which recover cannot catch), loop through a cycle or
// recurse without end. Only a file that passes the walk goes to bbolt's own
// consistency check (Tx.Check: key order, free pages, unreachable pages).
// Both steps run on a goroutine that turns memory faults into panics and
// recovers them, so a panic inside bbolt is reported as a corrupt file.
//
// Problems are described by page number; keys are never printed (queue
// and chunk keys are hashes of IDs).
//
// Check reads every page: it takes about as long as reading the file. It
// opens the file read-only under bbolt's shared lock, so it fails with
// ErrInUse while a relay has the store open.
package boltcheck

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"runtime/debug"
	"strings"
	"time"

	bolt "go.etcd.io/bbolt"
	berrors "go.etcd.io/bbolt/errors"
)

// Errors callers branch on.
var (
	// ErrCorrupt: the file is not a consistent bbolt file. Returned
	// errors wrap it and name the file.
	ErrCorrupt = errors.New("store file is corrupt")
	// ErrEmpty: the file has 0 bytes (a lost store, not a new one).
	ErrEmpty = errors.New("store file is empty")
	// ErrInUse: another process holds the file's lock (a running relay).
	ErrInUse = errors.New("store file is in use by another process")
)

// MaxProblems is how many problems a CorruptError keeps.
const MaxProblems = 10

// Result describes a checked file.
type Result struct {
	Size    int64         // bytes
	Pages   int64         // pages walked (overflow pages included)
	Keys    int64         // keys and nested buckets walked
	Elapsed time.Duration // time the check took
}

// CorruptError is the error for a corrupt file; errors.Is(err, ErrCorrupt).
type CorruptError struct {
	Path     string
	Problems []string // the first MaxProblems problems found
	Total    int      // how many were found
}

func (e *CorruptError) Error() string {
	var b strings.Builder
	fmt.Fprintf(&b, "store file %s is corrupt: %s", e.Path, e.Problems[0])
	if e.Total > 1 {
		fmt.Fprintf(&b, " (and %d more)", e.Total-1)
	}
	return b.String()
}

// Is makes errors.Is(err, ErrCorrupt) hold.
func (e *CorruptError) Is(target error) bool { return target == ErrCorrupt }

// problems collects what the walk and bbolt's check find.
type problems struct {
	list  []string
	total int
}

func (p *problems) add(format string, args ...any) {
	p.total++
	if len(p.list) < MaxProblems {
		p.list = append(p.list, fmt.Sprintf(format, args...))
	}
}

func (p *problems) err(path string) error {
	if p.total == 0 {
		return nil
	}
	return &CorruptError{Path: path, Problems: p.list, Total: p.total}
}

// Check verifies the bbolt file at path: nil if it is consistent, an
// error wrapping ErrCorrupt, ErrEmpty or ErrInUse, or the error that kept
// it from being read (a missing file: fs.ErrNotExist).
func Check(path string) (Result, error) {
	start := time.Now()
	var res Result
	fi, err := os.Stat(path)
	if err != nil {
		return res, err
	}
	if !fi.Mode().IsRegular() {
		return res, fmt.Errorf("store file %s is not a regular file", path)
	}
	res.Size = fi.Size()
	if res.Size == 0 {
		return res, fmt.Errorf("%w: %s has 0 bytes", ErrEmpty, path)
	}
	done := make(chan struct{})
	go func() {
		defer close(done)
		// A damaged page can make bbolt read outside the file's memory
		// map: turn that fault into a panic, and every panic into a
		// corrupt-file error.
		debug.SetPanicOnFault(true)
		defer func() {
			if r := recover(); r != nil {
				var p problems
				p.add("reading it panicked: %s", panicText(r))
				err = p.err(path)
			}
		}()
		err = check(path, &res)
	}()
	<-done
	res.Elapsed = time.Since(start)
	return res, err
}

// panicText describes a recovered panic in one bounded line.
func panicText(r any) string {
	s := fmt.Sprint(r)
	if i := strings.IndexByte(s, '\n'); i >= 0 {
		s = s[:i]
	}
	const max = 200
	if len(s) > max {
		s = s[:max] + "…"
	}
	return s
}

func check(path string, res *Result) error {
	db, err := bolt.Open(path, 0o600, &bolt.Options{ReadOnly: true, Timeout: time.Second, PreLoadFreelist: true})
	switch {
	case errors.Is(err, berrors.ErrTimeout):
		return fmt.Errorf("%w: %s (stop the relay that uses it first)", ErrInUse, path)
	case err != nil:
		var pe *fs.PathError
		if errors.As(err, &pe) {
			return err
		}
		var p problems
		p.add("bbolt cannot open it: %v", err)
		return p.err(path)
	}
	defer db.Close()
	f, err := os.Open(path)
	if err != nil {
		return err
	}
	defer f.Close()
	var p problems
	err = db.View(func(tx *bolt.Tx) error {
		w := walker{
			f:        f,
			pageSize: uint64(db.Info().PageSize),
			hwm:      uint64(tx.Size()) / uint64(db.Info().PageSize),
			size:     uint64(res.Size),
			seen:     make(map[uint64]bool),
			p:        &p,
			res:      res,
		}
		w.page(uint64(tx.Cursor().Bucket().RootPage()), 0)
		if p.total > 0 {
			// bbolt's check would follow the same broken references.
			return nil
		}
		for err := range tx.Check(bolt.WithKVStringer(redacted{})) {
			p.add("%v", err)
		}
		return nil
	})
	if err != nil {
		return err
	}
	return p.err(path)
}

// redacted keeps keys and values out of bbolt's check messages.
type redacted struct{}

func (redacted) KeyToString(k []byte) string   { return fmt.Sprintf("<%d-byte key>", len(k)) }
func (redacted) ValueToString(v []byte) string { return fmt.Sprintf("<%d-byte value>", len(v)) }

// The bbolt file format (version 2), native byte order.
const (
	pageHeaderSize   = 16 // id u64, flags u16, count u16, overflow u32
	elementSize      = 16 // branch: pos, ksize u32, pgid u64; leaf: flags, pos, ksize, vsize u32
	bucketHeaderSize = 16 // root pgid u64, sequence u64
	branchPageFlag   = 0x01
	leafPageFlag     = 0x02
	bucketLeafFlag   = 0x01
	// maxNesting bounds buckets within buckets, maxDepth the height of one
	// bucket's tree; a relay's stores have one level of buckets and trees
	// a few pages high.
	maxNesting = 16
	maxDepth   = 64
	// maxPageRun bounds a page with its overflow pages: the relay's
	// values are at most a few blocks.
	maxPageRun = 256 << 20
)

var order = binary.NativeEndian

// walker checks the page tree of the root bucket and, through it, of
// every bucket, reading each page once.
type walker struct {
	f        io.ReaderAt
	pageSize uint64
	hwm      uint64 // pages in use: page IDs are below it
	size     uint64 // file size
	seen     map[uint64]bool
	p        *problems
	res      *Result
}

// page walks the tree rooted at page id of a bucket nested nesting deep.
func (w *walker) page(id uint64, nesting int) {
	w.node(id, nesting, 0)
}

func (w *walker) node(id uint64, nesting, depth int) {
	if w.p.total >= MaxProblems {
		return
	}
	if depth > maxDepth {
		w.p.add("page %d: tree deeper than %d pages (a cycle?)", id, maxDepth)
		return
	}
	buf, ok := w.read(id)
	if !ok {
		return
	}
	flags, count := order.Uint16(buf[8:]), int(order.Uint16(buf[10:]))
	if pageHeaderSize+count*elementSize > len(buf) {
		w.p.add("page %d: %d elements do not fit in the page", id, count)
		return
	}
	switch flags {
	case branchPageFlag:
		if count == 0 {
			w.p.add("page %d: empty branch page", id)
			return
		}
		for i := range count {
			e := pageHeaderSize + i*elementSize
			if _, ok := w.span(id, buf, count, e, order.Uint32(buf[e:]), order.Uint32(buf[e+4:]), 0); !ok {
				return
			}
			w.node(order.Uint64(buf[e+8:]), nesting, depth+1)
		}
	case leafPageFlag:
		w.leaf(id, buf, count, nesting)
	default:
		w.p.add("page %d: type %#x where a branch or leaf page belongs", id, flags)
	}
}

// leaf checks the elements of a leaf page (or an inline bucket's page,
// buf being the bucket's value) and walks the buckets it holds.
func (w *walker) leaf(id uint64, buf []byte, count, nesting int) {
	var prev []byte
	for i := range count {
		e := pageHeaderSize + i*elementSize
		kv, ok := w.span(id, buf, count, e, order.Uint32(buf[e+4:]), order.Uint32(buf[e+8:]), order.Uint32(buf[e+12:]))
		if !ok {
			return
		}
		ksize := int(order.Uint32(buf[e+8:]))
		k, v := kv[:ksize], kv[ksize:]
		if len(k) == 0 {
			w.p.add("page %d: element %d has an empty key", id, i)
			return
		}
		if prev != nil && bytes.Compare(prev, k) >= 0 {
			w.p.add("page %d: keys out of order at element %d", id, i)
			return
		}
		prev = k
		w.res.Keys++
		if order.Uint32(buf[e:])&bucketLeafFlag == 0 {
			continue
		}
		if nesting+1 > maxNesting {
			w.p.add("page %d: buckets nested deeper than %d", id, maxNesting)
			return
		}
		if len(v) < bucketHeaderSize {
			w.p.add("page %d: element %d: bucket header of %d bytes", id, i, len(v))
			return
		}
		if root := order.Uint64(v); root != 0 {
			w.page(root, nesting+1)
			continue
		}
		// An inline bucket: a leaf page inside the value.
		in := v[bucketHeaderSize:]
		if len(in) < pageHeaderSize {
			w.p.add("page %d: element %d: inline bucket of %d bytes", id, i, len(in))
			return
		}
		n := int(order.Uint16(in[10:]))
		if f := order.Uint16(in[8:]); f != leafPageFlag || pageHeaderSize+n*elementSize > len(in) {
			w.p.add("page %d: element %d: malformed inline bucket", id, i)
			return
		}
		w.leaf(id, in, n, nesting+1)
	}
}

// span returns the key (and value) of the element at offset e of a page
// of count elements: they must lie inside buf, after the element headers.
func (w *walker) span(id uint64, buf []byte, count, e int, pos, ksize, vsize uint32) ([]byte, bool) {
	start := uint64(e) + uint64(pos)
	end := start + uint64(ksize) + uint64(vsize)
	if start < uint64(pageHeaderSize+count*elementSize) || end > uint64(len(buf)) {
		w.p.add("page %d: element at offset %d points outside the page", id, e)
		return nil, false
	}
	return buf[start:end], true
}

// read returns page id with its overflow pages, after checking its header.
func (w *walker) read(id uint64) ([]byte, bool) {
	if id < 2 || id >= w.hwm {
		w.p.add("page %d: out of range (the file has %d pages)", id, w.hwm)
		return nil, false
	}
	if (id+1)*w.pageSize > w.size {
		w.p.add("page %d: beyond the end of the file (truncated?)", id)
		return nil, false
	}
	buf := make([]byte, w.pageSize)
	if _, err := w.f.ReadAt(buf, int64(id*w.pageSize)); err != nil {
		w.p.add("page %d: %v", id, err)
		return nil, false
	}
	if got := order.Uint64(buf); got != id {
		w.p.add("page %d: header says page %d", id, got)
		return nil, false
	}
	overflow := uint64(order.Uint32(buf[12:]))
	if (overflow+1)*w.pageSize > maxPageRun {
		w.p.add("page %d: claims %d overflow pages", id, overflow)
		return nil, false
	}
	if id+overflow >= w.hwm || (id+overflow+1)*w.pageSize > w.size {
		w.p.add("page %d: %d overflow pages run past the end of the file", id, overflow)
		return nil, false
	}
	for i := id; i <= id+overflow; i++ {
		if w.seen[i] {
			w.p.add("page %d: referenced twice", i)
			return nil, false
		}
		w.seen[i] = true
	}
	w.res.Pages += int64(overflow + 1)
	if overflow > 0 {
		buf = append(buf, make([]byte, overflow*w.pageSize)...)
		if _, err := w.f.ReadAt(buf[w.pageSize:], int64((id+1)*w.pageSize)); err != nil {
			w.p.add("page %d: %v", id, err)
			return nil, false
		}
	}
	return buf, true
}
