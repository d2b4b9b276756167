package boltcheck_test

import (
	"bytes"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"io/fs"
	mrand "math/rand/v2"
	"os"
	"path/filepath"
	"runtime/debug"
	"strings"
	"testing"
	"time"

	"github.com/wisp-chat/wisp/server/relay/boltcheck"
	bolt "go.etcd.io/bbolt"
)

// keyOf is the key of record i: 32 bytes, like the relay's hashed IDs.
func keyOf(i int) []byte {
	k := make([]byte, 32)
	binary.BigEndian.PutUint64(k, uint64(i)*0x9E3779B97F4A7C15)
	copy(k[8:], "wisp boltcheck test key")
	return k
}

// layout is what the tests corrupt.
type layout struct {
	pageSize int
	hwm      int // pages in use
	root     int // root page of bucket "records": a branch page
	leaves   []int
}

// build writes a bbolt file with a bucket of records big enough for
// branch pages, a nested bucket and an inline one.
func build(t *testing.T) (string, layout) {
	t.Helper()
	path := filepath.Join(t.TempDir(), "test.db")
	db, err := bolt.Open(path, 0o600, nil)
	if err != nil {
		t.Fatal(err)
	}
	err = db.Update(func(tx *bolt.Tx) error {
		b, err := tx.CreateBucket([]byte("records"))
		if err != nil {
			return err
		}
		for i := range 4000 {
			if err := b.Put(keyOf(i), bytes.Repeat([]byte{byte(i)}, 100)); err != nil {
				return err
			}
		}
		outer, err := tx.CreateBucket([]byte("outer"))
		if err != nil {
			return err
		}
		inner, err := outer.CreateBucket([]byte("inner"))
		if err != nil {
			return err
		}
		for i := range 300 {
			if err := inner.Put(keyOf(i), make([]byte, 64)); err != nil {
				return err
			}
		}
		small, err := tx.CreateBucket([]byte("inline"))
		if err != nil {
			return err
		}
		return small.Put([]byte("k"), []byte("v"))
	})
	if err != nil {
		t.Fatal(err)
	}
	var l layout
	l.pageSize = db.Info().PageSize
	err = db.View(func(tx *bolt.Tx) error {
		l.hwm = int(tx.Size()) / l.pageSize
		l.root = int(tx.Bucket([]byte("records")).RootPage())
		for i := 2; i < l.hwm; i++ {
			if p, err := tx.Page(i); err == nil && p != nil && p.Type == "leaf" {
				l.leaves = append(l.leaves, i)
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if err := db.Close(); err != nil {
		t.Fatal(err)
	}
	return path, l
}

// patch overwrites bytes of path at off.
func patch(t *testing.T, path string, off int, b []byte) {
	t.Helper()
	f, err := os.OpenFile(path, os.O_WRONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if _, err := f.WriteAt(b, int64(off)); err != nil {
		t.Fatal(err)
	}
}

func pageHeader(t *testing.T, path string, l layout, id int) (flags, count uint16) {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	p := data[id*l.pageSize:]
	return binary.NativeEndian.Uint16(p[8:]), binary.NativeEndian.Uint16(p[10:])
}

// corrupt checks that path is reported corrupt with want in the message,
// naming the file and no key.
func corrupt(t *testing.T, path, want string) {
	t.Helper()
	_, err := boltcheck.Check(path)
	if !errors.Is(err, boltcheck.ErrCorrupt) {
		t.Fatalf("Check = %v, want ErrCorrupt", err)
	}
	msg := err.Error()
	if !strings.Contains(msg, path) || !strings.Contains(msg, want) {
		t.Fatalf("message %q lacks the file or %q", msg, want)
	}
	var ce *boltcheck.CorruptError
	if !errors.As(err, &ce) || ce.Total < 1 || len(ce.Problems) == 0 || len(ce.Problems) > boltcheck.MaxProblems {
		t.Fatalf("CorruptError %+v", ce)
	}
	for i := range 4000 {
		k := keyOf(i)
		if strings.Contains(msg, hex.EncodeToString(k)) || strings.Contains(msg, hex.EncodeToString(k[:8])) {
			t.Fatalf("message shows a key: %s", msg)
		}
		for _, p := range ce.Problems {
			if strings.Contains(p, hex.EncodeToString(k[:8])) {
				t.Fatalf("problem shows a key: %s", p)
			}
		}
	}
}

func TestCheckConsistentFile(t *testing.T) {
	path, l := build(t)
	if flags, _ := pageHeader(t, path, l, l.root); flags != 0x01 {
		t.Fatalf("bucket root %d is not a branch page (flags %#x)", l.root, flags)
	}
	res, err := boltcheck.Check(path)
	if err != nil {
		t.Fatal(err)
	}
	// 4000 records, 300 nested, 1 inline, 3 buckets and 1 nested bucket.
	if res.Keys != 4000+300+1+3+1 || res.Pages < 2 || res.Size == 0 {
		t.Fatalf("result %+v", res)
	}
}

// TestCheckRandomBranchPage: random bytes over a branch page (everything
// after its header) make bbolt panic at the first read that goes through
// it; Check reports the file corrupt instead.
func TestCheckRandomBranchPage(t *testing.T) {
	for seed := range uint64(4) {
		t.Run(fmt.Sprint(seed), func(t *testing.T) {
			path, l := build(t)
			junk := make([]byte, l.pageSize-16)
			r := mrand.New(mrand.NewPCG(seed, 11))
			for i := range junk {
				junk[i] = byte(r.Uint32())
			}
			patch(t, path, l.root*l.pageSize+16, junk)
			corrupt(t, path, "page")
		})
	}
}

// TestBboltPanicsOnCorruptBranch shows what Check prevents: a read
// through the damaged page panics inside bbolt.
func TestBboltPanicsOnCorruptBranch(t *testing.T) {
	path, l := build(t)
	// The first child's page number points at a meta page.
	patch(t, path, l.root*l.pageSize+16+8, binary.NativeEndian.AppendUint64(nil, 1))
	db, err := bolt.Open(path, 0o600, &bolt.Options{ReadOnly: true})
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	panicked := func() (p any) {
		// The damaged page leads bbolt to a page number read from a meta
		// page; whether that address is mapped depends on what else the
		// process has mapped, so a fault (turned into a panic here) is as
		// much bbolt's failure as a panic.
		defer debug.SetPanicOnFault(debug.SetPanicOnFault(true))
		defer func() { p = recover() }()
		_ = db.View(func(tx *bolt.Tx) error {
			tx.Bucket([]byte("records")).Cursor().First()
			return nil
		})
		return nil
	}()
	if panicked == nil {
		t.Fatal("bbolt did not panic on the damaged branch page")
	}
	corrupt(t, path, "page 1: out of range")
}

// TestCheckOutsideTheFile: a child page number past the end of the file,
// where bbolt would read outside its memory map (a fault, not a panic).
func TestCheckOutsideTheFile(t *testing.T) {
	path, l := build(t)
	patch(t, path, l.root*l.pageSize+16+8, binary.NativeEndian.AppendUint64(nil, uint64(l.hwm+3)))
	corrupt(t, path, "out of range")
}

// TestCheckCycle: a branch page whose child is itself.
func TestCheckCycle(t *testing.T) {
	path, l := build(t)
	patch(t, path, l.root*l.pageSize+16+8, binary.NativeEndian.AppendUint64(nil, uint64(l.root)))
	corrupt(t, path, "referenced twice")
}

// TestCheckValueOutsidePage: a leaf element whose value runs past its
// page.
func TestCheckValueOutsidePage(t *testing.T) {
	path, l := build(t)
	leaf := l.leaves[len(l.leaves)/2]
	patch(t, path, leaf*l.pageSize+16+12, binary.NativeEndian.AppendUint32(nil, 1<<30))
	corrupt(t, path, "outside the page")
}

// TestCheckWrongPageType: a branch page whose type is garbage.
func TestCheckWrongPageType(t *testing.T) {
	path, l := build(t)
	patch(t, path, l.root*l.pageSize+8, []byte{0x40, 0})
	corrupt(t, path, "type")
}

// TestCheckKeyOrder: a leaf whose first key sorts before its branch key
// is sound page by page; bbolt's own check finds it, without printing
// the key.
func TestCheckKeyOrder(t *testing.T) {
	path, l := build(t)
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	// The last leaf of "records": its first key is made the smallest
	// possible key of its length.
	leaf := l.root
	for {
		p := data[leaf*l.pageSize:]
		if flags := binary.NativeEndian.Uint16(p[8:]); flags != 0x01 {
			break
		}
		e := 16 + (int(binary.NativeEndian.Uint16(p[10:]))-1)*16
		leaf = int(binary.NativeEndian.Uint64(p[e+8:]))
	}
	p := data[leaf*l.pageSize:]
	pos := int(binary.NativeEndian.Uint32(p[16+4:]))
	ksize := int(binary.NativeEndian.Uint32(p[16+8:]))
	patch(t, path, leaf*l.pageSize+16+pos, make([]byte, ksize))
	corrupt(t, path, "key")
}

func TestCheckTruncated(t *testing.T) {
	path, l := build(t)
	if err := os.Truncate(path, int64(l.hwm/2*l.pageSize)); err != nil {
		t.Fatal(err)
	}
	corrupt(t, path, "")
}

func TestCheckNotBbolt(t *testing.T) {
	path := filepath.Join(t.TempDir(), "x.db")
	junk := make([]byte, 64<<10)
	r := mrand.New(mrand.NewPCG(1, 2))
	for i := range junk {
		junk[i] = byte(r.Uint32())
	}
	if err := os.WriteFile(path, junk, 0o600); err != nil {
		t.Fatal(err)
	}
	corrupt(t, path, "bbolt cannot open it")
}

func TestCheckEmptyMissingInUse(t *testing.T) {
	dir := t.TempDir()
	empty := filepath.Join(dir, "empty.db")
	if err := os.WriteFile(empty, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := boltcheck.Check(empty); !errors.Is(err, boltcheck.ErrEmpty) || !strings.Contains(err.Error(), empty) {
		t.Fatalf("empty file: %v", err)
	}
	if _, err := boltcheck.Check(filepath.Join(dir, "none.db")); !errors.Is(err, fs.ErrNotExist) {
		t.Fatalf("missing file: %v", err)
	}
	path, _ := build(t)
	db, err := bolt.Open(path, 0o600, &bolt.Options{Timeout: time.Second})
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	if _, err := boltcheck.Check(path); !errors.Is(err, boltcheck.ErrInUse) || errors.Is(err, boltcheck.ErrCorrupt) {
		t.Fatalf("file in use: %v", err)
	}
}
