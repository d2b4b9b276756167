package store

import (
	"bytes"
	"errors"
	"fmt"
	"io/fs"
	"path"
	"slices"
	"strings"
	"sync"
	"testing"

	"github.com/hack-pad/hackpadfs"
)

// walkBytes returns every file's contents under the FS root.
func walkBytes(t *testing.T, fsys hackpadfs.FS) map[string][]byte {
	t.Helper()
	out := map[string][]byte{}
	err := hackpadfs.WalkDir(fsys, ".", func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		b, err := hackpadfs.ReadFile(fsys, p)
		out[p] = b
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	return out
}

func testStore(t *testing.T, newFS func(t *testing.T) hackpadfs.FS) {
	t.Run("roundtrip", func(t *testing.T) {
		fsys := newFS(t)
		s, err := Open(fsys, "profile1", newSealer(t))
		if err != nil {
			t.Fatal(err)
		}
		k := Key("conn/abc/msg/0001")
		if _, err := s.Get(k); !errors.Is(err, ErrNotFound) {
			t.Errorf("Get before Put: %v, want ErrNotFound", err)
		}
		if ok, err := s.Has(k); ok || err != nil {
			t.Errorf("Has before Put = %v, %v", ok, err)
		}
		for _, v := range [][]byte{[]byte("first"), []byte("second, longer than the first"), {}} {
			if err := s.Put(k, v); err != nil {
				t.Fatal(err)
			}
			got, err := s.Get(k)
			if err != nil || !bytes.Equal(got, v) {
				t.Errorf("Get = %q, %v, want %q", got, err, v)
			}
		}
		if ok, err := s.Has(k); !ok || err != nil {
			t.Errorf("Has after Put = %v, %v", ok, err)
		}
		if err := s.Delete(k); err != nil {
			t.Fatal(err)
		}
		if err := s.Delete(k); err != nil {
			t.Errorf("deleting a missing record: %v", err)
		}
		if _, err := s.Get(k); !errors.Is(err, ErrNotFound) {
			t.Errorf("Get after Delete: %v", err)
		}
	})

	t.Run("put once", func(t *testing.T) {
		fsys := newFS(t)
		s, err := Open(fsys, "profile1", newSealer(t))
		if err != nil {
			t.Fatal(err)
		}
		k := Key("files/f1/c0001")
		big := bytes.Repeat([]byte("chunk"), 1<<18)
		for _, v := range [][]byte{big, []byte("shorter than before"), {}} {
			if err := s.PutOnce(k, v); err != nil {
				t.Fatal(err)
			}
			if got, err := s.Get(k); err != nil || !bytes.Equal(got, v) {
				t.Fatalf("Get after PutOnce of %d bytes = %d bytes, %v", len(v), len(got), err)
			}
		}
		if err := s.PutOnce("files/../x", big); !errors.Is(err, ErrBadKey) {
			t.Errorf("bad key: %v", err)
		}
		if err := s.PutOnce(k, make([]byte, MaxRecordSize+1)); !errors.Is(err, ErrTooLarge) {
			t.Errorf("oversized: %v", err)
		}
		if err := s.PutOnce(k, make([]byte, MaxRecordSize)); err != nil {
			t.Errorf("a record of MaxRecordSize: %v", err)
		}
		// A write cut short by a crash: the record no longer opens.
		name := path.Join("profile1", string(k))
		sealed, err := hackpadfs.ReadFile(fsys, name)
		if err != nil {
			t.Fatal(err)
		}
		for _, torn := range [][]byte{nil, sealed[:len(sealed)/2]} {
			if err := writeFile(fsys, name, torn); err != nil {
				t.Fatal(err)
			}
			if _, err := s.Get(k); !errors.Is(err, ErrCorrupt) {
				t.Errorf("torn record of %d bytes: %v, want ErrCorrupt", len(torn), err)
			}
		}
		if entries, err := hackpadfs.ReadDir(fsys, path.Join("profile1", tmpDir)); err != nil || len(entries) != 0 {
			t.Errorf("PutOnce left temporary files: %v, %v", entries, err)
		}
	})
	t.Run("list", func(t *testing.T) {
		s, err := Open(newFS(t), "p", newSealer(t))
		if err != nil {
			t.Fatal(err)
		}
		for _, k := range []Key{"conn/b/state", "conn/a/state", "conn/a/msg/2", "conn/a/msg/1", "profile"} {
			if err := s.Put(k, []byte(k)); err != nil {
				t.Fatal(err)
			}
		}
		for _, tc := range []struct {
			prefix Key
			dirs   bool
			want   []Key
		}{
			{"", false, []Key{"profile"}},
			{"", true, []Key{"conn"}},
			{"conn", true, []Key{"conn/a", "conn/b"}},
			{"conn/a", false, []Key{"conn/a/state"}},
			{"conn/a/msg", false, []Key{"conn/a/msg/1", "conn/a/msg/2"}},
			{"nothing/here", false, nil},
		} {
			list := s.List
			if tc.dirs {
				list = s.ListDirs
			}
			got, err := list(tc.prefix)
			if err != nil || !slices.Equal(got, tc.want) {
				t.Errorf("list(%q, dirs=%v) = %v, %v, want %v", tc.prefix, tc.dirs, got, err, tc.want)
			}
		}
		if err := s.DeleteAll("conn/a"); err != nil {
			t.Fatal(err)
		}
		if got, _ := s.ListDirs("conn"); !slices.Equal(got, []Key{"conn/b"}) {
			t.Errorf("after DeleteAll: %v", got)
		}
		if _, err := s.Get("conn/a/msg/1"); !errors.Is(err, ErrNotFound) {
			t.Errorf("record survived DeleteAll: %v", err)
		}
	})

	t.Run("list range and get many", func(t *testing.T) {
		s, err := Open(newFS(t), "p", newSealer(t))
		if err != nil {
			t.Fatal(err)
		}
		// Siblings whose names sort around the range's bounds, a deeper
		// record inside the range, and a directory beside the records.
		for _, k := range []Key{"c/a/m/01", "c/a/m/02", "c/a/m/03", "c/a/m/04", "c/a/m/02x/deep", "c/a/m0", "c/a/m-1", "c/a/n", "c/b/m/02"} {
			if err := s.Put(k, []byte("value of "+k)); err != nil {
				t.Fatal(err)
			}
		}
		for _, tc := range []struct {
			from, to string
			want     []Key
		}{
			{"", "", []Key{"c/a/m/01", "c/a/m/02", "c/a/m/03", "c/a/m/04"}},
			{"02", "04", []Key{"c/a/m/02", "c/a/m/03"}},
			{"02", "", []Key{"c/a/m/02", "c/a/m/03", "c/a/m/04"}},
			{"", "02", []Key{"c/a/m/01"}},
			{"04", "04", nil},
			{"05", "01", nil},
			{"1", "", nil},
		} {
			got, err := s.ListRange("c/a/m", tc.from, tc.to)
			if err != nil || !slices.Equal(got, tc.want) {
				t.Errorf("ListRange(c/a/m, %q, %q) = %v, %v, want %v", tc.from, tc.to, got, err, tc.want)
			}
		}
		if got, err := s.ListRange("c/z/m", "", ""); err != nil || len(got) != 0 {
			t.Errorf("ListRange of a missing directory = %v, %v", got, err)
		}
		if _, err := s.ListRange("../c", "", ""); !errors.Is(err, ErrBadKey) {
			t.Errorf("ListRange(../c): %v, want ErrBadKey", err)
		}

		keys := []Key{"c/a/m/03", "c/a/m/01", "c/b/m/02"}
		got, err := s.GetMany(keys)
		if err != nil || len(got) != len(keys) {
			t.Fatalf("GetMany = %q, %v", got, err)
		}
		for i, k := range keys {
			if string(got[i]) != "value of "+string(k) {
				t.Errorf("GetMany[%d] = %q, want the value of %s", i, got[i], k)
			}
		}
		if got, err := s.GetMany(nil); err != nil || len(got) != 0 {
			t.Errorf("GetMany(nil) = %q, %v", got, err)
		}
		if got, err := s.GetMany([]Key{"c/a/m/01", "c/a/m/09"}); err != nil || len(got) != 2 || got[0] == nil || got[1] != nil {
			t.Errorf("GetMany with a missing record = %q, %v, want it nil", got, err)
		}
		if _, err := s.GetMany([]Key{"c/a/m/01", "c//x"}); !errors.Is(err, ErrBadKey) {
			t.Errorf("GetMany with a bad key: %v, want ErrBadKey", err)
		}
	})

	t.Run("cache", func(t *testing.T) {
		fsys := newFS(t)
		sealer := newSealer(t)
		s, err := Open(fsys, "p", sealer)
		if err != nil {
			t.Fatal(err)
		}
		// Records named state and listings of directories named out are
		// kept, as the agent asks.
		s.Cache(func(k Key) bool { return k.Base() == "state" }, func(k Key) bool { return k.Base() == "out" })
		s.Cache(func(k Key) bool { return k == "profile" }, nil)
		// The truth: a second Store on the same files, without a cache.
		check := func(step string) {
			t.Helper()
			plain, err := Open(fsys, "p", sealer)
			if err != nil {
				t.Fatal(err)
			}
			for _, k := range []Key{"profile", "conn/a/state", "conn/b/state", "conn/a/other"} {
				got, gerr := s.Get(k)
				want, werr := plain.Get(k)
				if !bytes.Equal(got, want) || errors.Is(gerr, ErrNotFound) != errors.Is(werr, ErrNotFound) {
					t.Errorf("%s: Get(%s) = %q, %v; the files hold %q, %v", step, k, got, gerr, want, werr)
				}
				if many, err := s.GetMany([]Key{k}); err != nil || !bytes.Equal(many[0], want) {
					t.Errorf("%s: GetMany(%s) = %q, %v; the files hold %q", step, k, many, err, want)
				}
			}
			for _, d := range []Key{"conn/a/out", "conn/b/out", "conn/a"} {
				got, gerr := s.List(d)
				want, werr := plain.List(d)
				if !slices.Equal(got, want) || (gerr == nil) != (werr == nil) {
					t.Errorf("%s: List(%s) = %v, %v; the files list %v, %v", step, d, got, gerr, want, werr)
				}
			}
		}
		check("empty")
		steps := []struct {
			name string
			do   func() error
		}{
			{"put", func() error { return s.Put("conn/a/state", []byte("a1")) }},
			{"put outbox", func() error { return s.Put("conn/a/out/002", []byte("m2")) }},
			{"batch", func() error {
				var b Batch
				b.Put("conn/a/out/001", []byte("m1"))
				b.Put("conn/a/state", []byte("a2"))
				b.Put("conn/b/state", []byte("b1"))
				b.Put("profile", []byte("p1"))
				b.Put("conn/a/other", []byte("o1"))
				return s.Apply(&b)
			}},
			{"replace and delete", func() error {
				var b Batch
				b.Delete("conn/a/out/002")
				b.Put("conn/a/out/003", []byte("m3"))
				b.Put("conn/a/state", []byte("a3"))
				b.Delete("conn/b/state")
				return s.Apply(&b)
			}},
			{"refused batch", func() error {
				var b Batch
				b.Put("conn/a/state", []byte("never"))
				b.Put("conn/a/out/../x", []byte("bad"))
				if err := s.Apply(&b); !errors.Is(err, ErrBadKey) {
					return fmt.Errorf("a bad batch: %v", err)
				}
				return nil
			}},
			{"put once", func() error { return s.PutOnce("conn/a/out/004", []byte("m4")) }},
			{"delete", func() error { return s.Delete("conn/a/out/001") }},
			{"delete all", func() error { return s.DeleteAll("conn/a") }},
			{"again", func() error { return s.Put("conn/a/state", []byte("a4")) }},
		}
		for _, st := range steps {
			if err := st.do(); err != nil {
				t.Fatalf("%s: %v", st.name, err)
			}
			check(st.name)
		}
		// A value handed out is a copy.
		v, _ := s.Get("conn/a/state")
		v[0] = 'X'
		if again, _ := s.Get("conn/a/state"); string(again) != "a4" {
			t.Errorf("the cached record changed with a returned copy: %q", again)
		}
		// Reads are served from memory: with the record's file garbled
		// behind the store's back (which nothing may do), the cached record
		// still reads, and one that is not kept fails.
		if err := s.Put("conn/a/other", []byte("o2")); err != nil {
			t.Fatal(err)
		}
		for _, k := range []Key{"conn/a/state", "conn/a/other"} {
			if err := writeFile(fsys, path.Join("p", string(k)), []byte("garbled")); err != nil {
				t.Fatal(err)
			}
		}
		if v, err := s.Get("conn/a/state"); err != nil || string(v) != "a4" {
			t.Errorf("a cached record was read again: %q, %v", v, err)
		}
		if _, err := s.Get("conn/a/other"); !errors.Is(err, ErrCorrupt) {
			t.Errorf("a record that is not kept: %v, want ErrCorrupt", err)
		}

		if err := s.DeleteAll("conn/a"); err != nil { // the garbled files
			t.Fatal(err)
		}

		// Preload fills the records and listings under a prefix.
		if err := s.Put("conn/c/state", []byte("c1")); err != nil {
			t.Fatal(err)
		}
		if err := s.Put("conn/c/out/009", []byte("m9")); err != nil {
			t.Fatal(err)
		}
		if err := s.Put("conn/d/state", []byte("d1")); err != nil {
			t.Fatal(err)
		}
		fresh, err := Open(fsys, "p", sealer)
		if err != nil {
			t.Fatal(err)
		}
		fresh.Cache(func(k Key) bool { return k.Base() == "state" }, func(k Key) bool { return k.Base() == "out" })
		if err := fresh.Preload("conn"); err != nil {
			t.Fatal(err)
		}
		if err := fresh.Preload("nothing"); err != nil {
			t.Errorf("Preload of a missing prefix: %v", err)
		}
		for _, k := range []Key{"conn/c/state", "conn/d/state"} {
			if err := writeFile(fsys, path.Join("p", string(k)), []byte("garbled")); err != nil {
				t.Fatal(err)
			}
		}
		if v, err := fresh.GetMany([]Key{"conn/c/state", "conn/d/state"}); err != nil || string(v[0]) != "c1" || string(v[1]) != "d1" {
			t.Errorf("preloaded records: %q, %v", v, err)
		}
		if got, _ := fresh.List("conn/c/out"); !slices.Equal(got, []Key{"conn/c/out/009"}) {
			t.Errorf("preloaded listing: %v", got)
		}
		// conn/d has no outbox: known empty without a read, and a first
		// write makes its listing.
		if err := hackpadfs.MkdirAll(fsys, "p/conn/d/out", 0o700); err != nil {
			t.Fatal(err)
		}
		if err := writeFile(fsys, path.Join("p", "conn/d/out/zzz"), []byte("behind the store's back")); err != nil {
			t.Fatal(err)
		}
		if got, err := fresh.List("conn/d/out"); err != nil || len(got) != 0 {
			t.Errorf("a preloaded prefix's missing directory lists %v, %v; want nothing, unread", got, err)
		}
		if err := fresh.Put("conn/d/out/001", []byte("m1")); err != nil {
			t.Fatal(err)
		}
		if got, _ := fresh.List("conn/d/out"); !slices.Equal(got, []Key{"conn/d/out/001"}) {
			t.Errorf("after the first write to a new directory: %v", got)
		}
		if got, _ := fresh.List("conn/e/out"); len(got) != 0 {
			t.Errorf("another missing directory: %v", got)
		}
	})

	t.Run("batch", func(t *testing.T) {
		fsys := newFS(t)
		s, err := Open(fsys, "p", newSealer(t))
		if err != nil {
			t.Fatal(err)
		}
		if err := s.Put("conn/a/old", []byte("old")); err != nil {
			t.Fatal(err)
		}
		var b Batch
		if err := s.Apply(&b); err != nil {
			t.Errorf("empty batch: %v", err)
		}
		b.Put("conn/a/msg/1", []byte("one"))
		b.Put("conn/a/state", []byte("state 1"))
		b.Delete("conn/a/old")
		b.Put("conn/a/state", []byte("state 2")) // the last write of a key wins
		b.Delete("conn/a/never-written")
		if b.Len() != 5 {
			t.Errorf("Len = %d", b.Len())
		}
		if err := s.Apply(&b); err != nil {
			t.Fatal(err)
		}
		for k, want := range map[Key]string{"conn/a/msg/1": "one", "conn/a/state": "state 2"} {
			if got, err := s.Get(k); err != nil || string(got) != want {
				t.Errorf("Get(%s) = %q, %v, want %q", k, got, err, want)
			}
		}
		if _, err := s.Get("conn/a/old"); !errors.Is(err, ErrNotFound) {
			t.Errorf("deleted in the batch: %v", err)
		}
		// A bad write anywhere in a batch fails it before anything is written.
		before := walkBytes(t, fsys)
		for _, bad := range []struct {
			b    func(*Batch)
			want error
		}{
			{func(b *Batch) { b.Put("conn/a/msg/2", []byte("x")); b.Put("../x", []byte("x")) }, ErrBadKey},
			{func(b *Batch) { b.Put("conn/a/msg/2", []byte("x")); b.Delete("a//b") }, ErrBadKey},
			{func(b *Batch) { b.Delete("conn/a/msg/1"); b.Put("conn/a/big", make([]byte, MaxRecordSize+1)) }, ErrTooLarge},
		} {
			var b Batch
			bad.b(&b)
			if err := s.Apply(&b); !errors.Is(err, bad.want) {
				t.Errorf("bad batch: %v, want %v", err, bad.want)
			}
		}
		if after := walkBytes(t, fsys); len(after) != len(before) {
			t.Errorf("a refused batch changed the FS: %d files before, %d after", len(before), len(after))
		}
		if got, err := s.Get("conn/a/msg/1"); err != nil || string(got) != "one" {
			t.Errorf("a refused batch deleted a record: %q, %v", got, err)
		}
		if tx, ok := fsys.(interface{ WriteTransactions() int64 }); ok {
			n := tx.WriteTransactions()
			var b Batch
			for i := range 20 {
				b.Put(Key(fmt.Sprintf("conn/b/msg/%d", i)), []byte("x"))
			}
			if err := s.Apply(&b); err != nil {
				t.Fatal(err)
			}
			if d := tx.WriteTransactions() - n; d != 1 {
				t.Errorf("a batch of 20 took %d write transactions, want 1", d)
			}
		}
	})

	t.Run("listing while files are renamed", func(t *testing.T) {
		// A listing must not fail, nor come back empty, while another
		// writer replaces a file in the listed directory through a
		// temporary file and a rename (the profile chooser lists key
		// records while one is rewritten).
		fsys := newFS(t)
		if err := hackpadfs.MkdirAll(fsys, "meta", 0o700); err != nil {
			t.Fatal(err)
		}
		if err := hackpadfs.WriteFullFile(fsys, "meta/a.json", []byte("a"), 0o600); err != nil {
			t.Fatal(err)
		}
		stop := make(chan struct{})
		done := make(chan error, 1)
		go func() {
			for {
				select {
				case <-stop:
					done <- nil
					return
				default:
				}
				if err := hackpadfs.WriteFullFile(fsys, "meta/a.json.tmp", []byte("a"), 0o600); err != nil {
					done <- err
					return
				}
				if err := hackpadfs.Rename(fsys, "meta/a.json.tmp", "meta/a.json"); err != nil {
					done <- err
					return
				}
			}
		}()
		for range 100 {
			names, err := FileNames(fsys, "meta")
			if err != nil || !slices.Contains(names, "a.json") {
				t.Errorf("FileNames = %v, %v", names, err)
				break
			}
		}
		close(stop)
		if err := <-done; err != nil {
			t.Fatal(err)
		}
		if names, err := FileNames(fsys, "missing"); names != nil || err != nil {
			t.Errorf("a missing directory: %v, %v", names, err)
		}
	})

	t.Run("bad input changes nothing", func(t *testing.T) {
		fsys := newFS(t)
		s, err := Open(fsys, "p", newSealer(t))
		if err != nil {
			t.Fatal(err)
		}
		before := walkBytes(t, fsys)
		long := strings.Repeat("a", maxSegment+1)
		deep := Key(strings.Repeat("a/", MaxDepth) + "a")
		for _, k := range []Key{"", "/a", "a/", "a//b", "../x", ".tmp/x", "a/./b", "é", "a b", Key(long), deep} {
			if err := s.Put(k, []byte("x")); !errors.Is(err, ErrBadKey) {
				t.Errorf("Put(%q): %v, want ErrBadKey", k, err)
			}
			if _, err := s.Get(k); !errors.Is(err, ErrBadKey) {
				t.Errorf("Get(%q): %v, want ErrBadKey", k, err)
			}
			if err := s.Delete(k); !errors.Is(err, ErrBadKey) {
				t.Errorf("Delete(%q): %v, want ErrBadKey", k, err)
			}
		}
		if err := s.Put("big", make([]byte, MaxRecordSize+1)); !errors.Is(err, ErrTooLarge) {
			t.Errorf("oversized Put: %v, want ErrTooLarge", err)
		}
		if err := s.Put(Key(strings.Repeat("a", maxSegment)), make([]byte, 10)); err != nil {
			t.Errorf("a key at the segment limit was refused: %v", err)
		}
		if err := s.Delete(Key(strings.Repeat("a", maxSegment))); err != nil {
			t.Fatal(err)
		}
		after := walkBytes(t, fsys)
		if len(before) != len(after) {
			t.Errorf("bad input changed the FS: %d files before, %d after", len(before), len(after))
		}
		if _, err := Open(fsys, "../escape", newSealer(t)); !errors.Is(err, ErrBadKey) {
			t.Errorf("Open outside the FS: %v", err)
		}
	})

	t.Run("tamper", func(t *testing.T) {
		fsys := newFS(t)
		sealer := newSealer(t)
		s, err := Open(fsys, "p", sealer)
		if err != nil {
			t.Fatal(err)
		}
		if err := s.Put("a", []byte("alpha")); err != nil {
			t.Fatal(err)
		}
		if err := s.Put("b", []byte("bravo")); err != nil {
			t.Fatal(err)
		}
		orig, err := hackpadfs.ReadFile(fsys, "p/a")
		if err != nil {
			t.Fatal(err)
		}
		for i := 0; i < len(orig)*8; i += 7 {
			mod := bytes.Clone(orig)
			mod[i/8] ^= 1 << (i % 8)
			if err := hackpadfs.WriteFullFile(fsys, "p/a", mod, 0o600); err != nil {
				t.Fatal(err)
			}
			if _, err := s.Get("a"); !errors.Is(err, ErrCorrupt) {
				t.Fatalf("bit %d flipped: %v, want ErrCorrupt", i, err)
			}
		}
		for _, mod := range [][]byte{nil, orig[:len(orig)-1], append(bytes.Clone(orig), 0)} {
			if err := hackpadfs.WriteFullFile(fsys, "p/a", mod, 0o600); err != nil {
				t.Fatal(err)
			}
			if _, err := s.Get("a"); !errors.Is(err, ErrCorrupt) {
				t.Errorf("%d-byte record: %v, want ErrCorrupt", len(mod), err)
			}
		}
		// A record copied to another name, or into another profile sealed
		// with the same key, does not open.
		if err := hackpadfs.WriteFullFile(fsys, "p/b", orig, 0o600); err != nil {
			t.Fatal(err)
		}
		if _, err := s.Get("b"); !errors.Is(err, ErrCorrupt) {
			t.Errorf("swapped record: %v, want ErrCorrupt", err)
		}
		other, err := Open(fsys, "q", sealer)
		if err != nil {
			t.Fatal(err)
		}
		if err := hackpadfs.WriteFullFile(fsys, "q/a", orig, 0o600); err != nil {
			t.Fatal(err)
		}
		if _, err := other.Get("a"); !errors.Is(err, ErrCorrupt) {
			t.Errorf("record moved across profiles: %v, want ErrCorrupt", err)
		}
		// Another key does not open it either.
		s2, err := Open(fsys, "p", newSealer(t))
		if err != nil {
			t.Fatal(err)
		}
		if err := s.Put("a", []byte("alpha")); err != nil {
			t.Fatal(err)
		}
		if _, err := s2.Get("a"); !errors.Is(err, ErrCorrupt) {
			t.Errorf("wrong key: %v, want ErrCorrupt", err)
		}
	})

	t.Run("no plaintext at rest", func(t *testing.T) {
		fsys := newFS(t)
		s, err := Open(fsys, "p", newSealer(t))
		if err != nil {
			t.Fatal(err)
		}
		secret := []byte("meet me at the old mill at noon, Alice")
		for i := range 5 {
			if err := s.Put(Key(fmt.Sprintf("msg/%d", i)), secret); err != nil {
				t.Fatal(err)
			}
		}
		for name, b := range walkBytes(t, fsys) {
			if bytes.Contains(b, secret) || bytes.Contains(b, []byte("Alice")) {
				t.Errorf("%s holds plaintext", name)
			}
		}
	})

	t.Run("interrupted put is cleaned up", func(t *testing.T) {
		fsys := newFS(t)
		if _, err := Open(fsys, "p", newSealer(t)); err != nil {
			t.Fatal(err)
		}
		torn := path.Join("p", tmpDir, "0123456789ab")
		if err := hackpadfs.WriteFullFile(fsys, torn, []byte("half a rec"), 0o600); err != nil {
			t.Fatal(err)
		}
		s, err := Open(fsys, "p", newSealer(t))
		if err != nil {
			t.Fatal(err)
		}
		if _, err := hackpadfs.Stat(fsys, torn); !errors.Is(err, fs.ErrNotExist) {
			t.Errorf("temporary file survived Open: %v", err)
		}
		if keys, _ := s.List(""); len(keys) != 0 {
			t.Errorf("temporary files listed as records: %v", keys)
		}
	})

	t.Run("concurrent", func(t *testing.T) {
		s, err := Open(newFS(t), "p", newSealer(t))
		if err != nil {
			t.Fatal(err)
		}
		var wg sync.WaitGroup
		for i := range 8 {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for j := range 10 {
					if err := s.Put(Key(fmt.Sprintf("w%d/r%d", i, j)), []byte{byte(i), byte(j)}); err != nil {
						t.Error(err)
					}
					if err := s.Put("shared", []byte{byte(i)}); err != nil {
						t.Error(err)
					}
				}
			}()
		}
		wg.Wait()
		for i := range 8 {
			for j := range 10 {
				got, err := s.Get(Key(fmt.Sprintf("w%d/r%d", i, j)))
				if err != nil || !bytes.Equal(got, []byte{byte(i), byte(j)}) {
					t.Errorf("w%d/r%d = %v, %v", i, j, got, err)
				}
			}
		}
		if got, err := s.Get("shared"); err != nil || len(got) != 1 {
			t.Errorf("shared = %v, %v", got, err)
		}
	})
}
