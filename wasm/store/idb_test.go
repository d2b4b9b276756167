//go:build js && wasm

package store

import (
	"context"
	"fmt"
	"sync/atomic"
	"testing"

	"github.com/hack-pad/hackpadfs"
)

var dbCounter atomic.Int64

// TestIndexedDB runs the store's tests on the browser's real IndexedDB.
func TestIndexedDB(t *testing.T) {
	testStore(t, func(t *testing.T) hackpadfs.FS {
		fsys, err := OpenIndexedDB(context.Background(), fmt.Sprintf("wisp-store-test-%d", dbCounter.Add(1)))
		if err != nil {
			t.Fatal(err)
		}
		return fsys
	})
}

// benchStore opens a store on a new IndexedDB database.
func benchStore(b *testing.B) *Store {
	b.Helper()
	fsys, err := OpenIndexedDB(context.Background(), fmt.Sprintf("wisp-store-bench-%d", dbCounter.Add(1)))
	if err != nil {
		b.Fatal(err)
	}
	s, err := Open(fsys, "p", newSealer(&testing.T{}))
	if err != nil {
		b.Fatal(err)
	}
	return s
}

// BenchmarkPutIndexedDB measures one record write (one readwrite
// transaction) on the browser's IndexedDB.
func BenchmarkPutIndexedDB(b *testing.B) {
	s := benchStore(b)
	rec := make([]byte, 300)
	b.ResetTimer()
	for i := range b.N {
		if err := s.Put(Key(fmt.Sprintf("m/%d", i%50)), rec); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkGetIndexedDB measures one record read.
func BenchmarkGetIndexedDB(b *testing.B) {
	s := benchStore(b)
	if err := s.Put("m/1", make([]byte, 300)); err != nil {
		b.Fatal(err)
	}
	b.ResetTimer()
	for range b.N {
		if _, err := s.Get("m/1"); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkChunkIndexedDB compares Put and PutOnce of a 4 MiB record (a
// file chunk) on the browser's IndexedDB (the same path there).
func BenchmarkChunkIndexedDB(b *testing.B) {
	for _, bc := range []struct {
		name string
		put  func(*Store, Key, []byte) error
	}{{"Put", (*Store).Put}, {"PutOnce", (*Store).PutOnce}} {
		b.Run(bc.name, func(b *testing.B) {
			s := benchStore(b)
			rec := make([]byte, 4<<20)
			b.SetBytes(int64(len(rec)))
			for i := 0; b.Loop(); i++ {
				if err := bc.put(s, Key(fmt.Sprintf("f/c%d", i%20)), rec); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// BenchmarkBatchIndexedDB writes the five records of a sent text message
// (outbox entry, connection, contact, index, message) as five Puts and as
// one Batch.
func BenchmarkBatchIndexedDB(b *testing.B) {
	rec := make([]byte, 300)
	keys := []Key{"conn/a/out/1", "conn/a/state", "c/a/contact", "c/a/o/1", "c/a/m/1"}
	b.Run("Puts", func(b *testing.B) {
		s := benchStore(b)
		for b.Loop() {
			for _, k := range keys {
				if err := s.Put(k, rec); err != nil {
					b.Fatal(err)
				}
			}
		}
	})
	b.Run("Batch", func(b *testing.B) {
		s := benchStore(b)
		for b.Loop() {
			var batch Batch
			for _, k := range keys {
				batch.Put(k, rec)
			}
			if err := s.Apply(&batch); err != nil {
				b.Fatal(err)
			}
		}
	})
}
