package pgfiles_test

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/wisp-chat/wisp/server/internal/pgtest"
	"github.com/wisp-chat/wisp/server/relay/files"
	"github.com/wisp-chat/wisp/server/relay/files/filestest"
	"github.com/wisp-chat/wisp/server/relay/files/pgfiles"
	"github.com/wisp-chat/wisp/server/wire"
)

var pg pgtest.Env

func TestMain(m *testing.M) { os.Exit(pg.Main(m)) }

func open(t *testing.T, dsn, dir string, quota int64) *pgfiles.Store {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	s, err := pgfiles.Open(ctx, dsn, dir, quota)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = s.Close() })
	return s
}

// sql runs statements on the database directly.
func sql(t *testing.T, dsn, query string, args ...any) int64 {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	c, err := pgx.Connect(ctx, dsn)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close(ctx)
	tag, err := c.Exec(ctx, query, args...)
	if err != nil {
		t.Fatalf("%s: %v", query, err)
	}
	return tag.RowsAffected()
}

// TestConformance runs the Backend conformance suite (package
// filestest) against PostgreSQL: each directory gets its own database.
func TestConformance(t *testing.T) {
	var mu sync.Mutex
	dsns := make(map[string]string)
	filestest.Run(t, func(t *testing.T, dir string, quota int64) files.Backend {
		mu.Lock()
		dsn, ok := dsns[dir]
		mu.Unlock()
		if !ok {
			dsn = pg.Database(t)
			mu.Lock()
			dsns[dir] = dsn
			mu.Unlock()
		}
		return open(t, dsn, dir, quota)
	})
}

func randKey() (k [32]byte) {
	_, _ = rand.Read(k[:])
	return k
}

func randData(class wire.ChunkClass) []byte {
	b := make([]byte, class.Size())
	_, _ = rand.Read(b)
	return b
}

func create(t *testing.T, s *pgfiles.Store, class wire.ChunkClass, created time.Time, n int) (files.SenderKey, []files.RecipientKey) {
	t.Helper()
	k := files.SenderKey(randKey())
	rcpts := make(map[files.RecipientKey]files.Recipient)
	var rks []files.RecipientKey
	for range n {
		rk := files.RecipientKey(randKey())
		rcpts[rk] = files.Recipient{Auth: randKey(), BoxKey: randKey()}
		rks = append(rks, rk)
	}
	if err := s.Create(k, files.Chunk{Class: class, SenderAuth: randKey(), Created: created}, rcpts); err != nil {
		t.Fatal(err)
	}
	return k, rks
}

// storedFiles counts the regular files under the directory.
func storedFiles(t *testing.T, dir string) int {
	t.Helper()
	n := 0
	err := filepath.WalkDir(dir, func(_ string, d fs.DirEntry, err error) error {
		if err == nil && d.Type().IsRegular() {
			n++
		}
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	return n
}

func usage(t *testing.T, s *pgfiles.Store, used, chunks int64) {
	t.Helper()
	u, n, err := s.Usage()
	if err != nil || u != used || n != chunks {
		t.Fatalf("usage %d bytes, %d chunks (%v); want %d, %d", u, n, err, used, chunks)
	}
}

// TestTwoProcesses: two stores on one database and one directory, as two
// relay processes behind one address: a chunk created and uploaded
// through one is read and acknowledged through the other.
func TestTwoProcesses(t *testing.T) {
	dsn, dir := pg.Database(t), t.TempDir()
	a, b := open(t, dsn, dir, 1<<30), open(t, dsn, dir, 1<<30)
	k, rks := create(t, a, wire.Class1M, time.Time{}, 2)
	data := randData(wire.Class1M)
	if err := a.Put(k, data); err != nil {
		t.Fatal(err)
	}
	if err := b.Put(k, data); err != nil {
		t.Fatalf("the same upload again through the other: %v", err)
	}
	want := files.MetadataCost(2) + int64(wire.Class1M.Size())
	usage(t, a, want, 1)
	usage(t, b, want, 1)
	for i, rk := range rks {
		_, ch, err := b.ByRecipient(rk)
		if err != nil {
			t.Fatal(err)
		}
		got, err := b.Read(&ch)
		if err != nil || !bytes.Equal(got, data) {
			t.Fatalf("read through the other: %v", err)
		}
		if err := b.Ack(rk); err != nil {
			t.Fatal(err)
		}
		if err := a.Ack(rk); !errors.Is(err, files.ErrNotFound) {
			t.Fatalf("ack %d again through the first: %v", i, err)
		}
	}
	if _, err := a.BySender(k); !errors.Is(err, files.ErrNotFound) {
		t.Fatalf("the first still has the chunk: %v", err)
	}
	if n := storedFiles(t, dir); n != 0 {
		t.Fatalf("%d files left", n)
	}
	usage(t, a, 0, 0)

	// A delete through one is seen by the other's upload and read.
	k, rks = create(t, b, wire.Class64K, time.Time{}, 1)
	data = randData(wire.Class64K)
	if err := b.Put(k, data); err != nil {
		t.Fatal(err)
	}
	_, ch, err := a.ByRecipient(rks[0])
	if err != nil {
		t.Fatal(err)
	}
	if err := b.Delete(k); err != nil {
		t.Fatal(err)
	}
	if _, err := a.Read(&ch); !errors.Is(err, files.ErrNotFound) {
		t.Fatalf("read of a chunk the other deleted: %v", err)
	}
	if err := a.Put(k, data); !errors.Is(err, files.ErrNotFound) {
		t.Fatalf("put of a chunk the other deleted: %v", err)
	}
	usage(t, a, 0, 0)
}

// TestConcurrentPutsAcrossProcesses: concurrent uploads of one chunk
// through two stores give one stored file and one charge; of other
// bytes, one wins and the other is ErrUploaded; concurrent acks of one
// recipient count once.
func TestConcurrentPutsAcrossProcesses(t *testing.T) {
	dsn, dir := pg.Database(t), t.TempDir()
	stores := []*pgfiles.Store{open(t, dsn, dir, 1<<30), open(t, dsn, dir, 1<<30)}
	race := func(fn func(i int, s *pgfiles.Store) error) []error {
		errs := make([]error, 2*len(stores))
		start := make(chan struct{})
		var wg sync.WaitGroup
		for i := range errs {
			wg.Go(func() {
				<-start
				errs[i] = fn(i, stores[i%len(stores)])
			})
		}
		close(start)
		wg.Wait()
		return errs
	}
	const rounds = 10
	var want int64
	for range rounds {
		k, rks := create(t, stores[0], wire.Class256K, time.Time{}, 2)
		data := randData(wire.Class256K)
		for i, err := range race(func(_ int, s *pgfiles.Store) error { return s.Put(k, data) }) {
			if err != nil {
				t.Fatalf("put %d of the same bytes: %v", i, err)
			}
		}
		other, _ := create(t, stores[1], wire.Class64K, time.Time{}, 1)
		versions := [][]byte{randData(wire.Class64K), randData(wire.Class64K), randData(wire.Class64K), randData(wire.Class64K)}
		won := -1
		for i, err := range race(func(i int, s *pgfiles.Store) error { return s.Put(other, versions[i]) }) {
			switch {
			case err == nil && won < 0:
				won = i
			case err == nil:
				t.Fatalf("puts %d and %d of other bytes both stored", won, i)
			case !errors.Is(err, files.ErrUploaded):
				t.Fatalf("put %d: %v", i, err)
			}
		}
		ch, err := stores[0].BySender(other)
		if err != nil {
			t.Fatal(err)
		}
		if got, err := stores[1].Read(&ch); err != nil || !bytes.Equal(got, versions[won]) {
			t.Fatalf("read of the winner: %v", err)
		}
		acks := 0
		for i, err := range race(func(_ int, s *pgfiles.Store) error { return s.Ack(rks[0]) }) {
			switch {
			case err == nil:
				acks++
			case !errors.Is(err, files.ErrNotFound):
				t.Fatalf("ack %d: %v", i, err)
			}
		}
		if ch, err := stores[1].BySender(k); acks != 1 || err != nil || ch.Remaining != 1 {
			t.Fatalf("%d acks of one recipient counted; %v", acks, err)
		}
		want += files.MetadataCost(2) + int64(wire.Class256K.Size()) + files.MetadataCost(1) + int64(wire.Class64K.Size())
	}
	// One file per chunk, nothing left in tmp/.
	if n := storedFiles(t, dir); n != 2*rounds {
		t.Fatalf("%d files for %d chunks", n, 2*rounds)
	}
	for _, s := range stores {
		usage(t, s, want, 2*rounds)
	}
}

// TestConcurrentOpen: processes starting at once on a fresh database all
// open it, and the tables exist once.
func TestConcurrentOpen(t *testing.T) {
	dsn, dir := pg.Database(t), t.TempDir()
	const n = 8
	stores := make([]*pgfiles.Store, n)
	errs := make([]error, n)
	start := make(chan struct{})
	var wg sync.WaitGroup
	for i := range n {
		wg.Go(func() {
			<-start
			ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
			defer cancel()
			stores[i], errs[i] = pgfiles.Open(ctx, dsn, dir, 1<<30)
		})
	}
	close(start)
	wg.Wait()
	for i, err := range errs {
		if err != nil {
			t.Fatalf("open %d: %v", i, err)
		}
		t.Cleanup(func() { _ = stores[i].Close() })
	}
	if rows := sql(t, dsn, "SELECT * FROM wisp_files_usage"); rows != 16 {
		t.Fatalf("%d usage counters", rows)
	}
	k, _ := create(t, stores[0], wire.Class64K, time.Time{}, 1)
	for _, s := range stores {
		if _, err := s.BySender(k); err != nil {
			t.Fatal(err)
		}
		usage(t, s, files.MetadataCost(1), 1)
	}
	// Opening again keeps the data and the counters.
	s := open(t, dsn, dir, 1<<30)
	usage(t, s, files.MetadataCost(1), 1)
	if rows := sql(t, dsn, "SELECT * FROM wisp_files_usage"); rows != 16 {
		t.Fatalf("%d usage counters after reopening", rows)
	}
}

// TestCorruptRow: a row that the store did not write that way gives
// ErrCorruptRecord from every operation that reads it, never a panic,
// and does not stop the expiry of the other chunks.
func TestCorruptRow(t *testing.T) {
	dsn, dir := pg.Database(t), t.TempDir()
	s := open(t, dsn, dir, 1<<30)
	old := time.Unix(1_800_000_000, 0)
	for _, tc := range []struct {
		name, set string
		uploaded  bool
	}{
		{"short digest", "digest = '\\x0102'", true},
		{"long digest", "digest = digest || '\\x00'", true},
		{"no digest", "digest = NULL", true},
		{"short file name", "file = '\\x01'", true},
		{"control class", "class = 0", false},
		{"unknown class", "class = 99", false},
		{"class beyond a byte", "class = 257", false},
		{"short sender auth", "sender_auth = '\\x00'", false},
		{"no recipients", "recipients = 0", false},
		{"too many recipients", "recipients = 1000", false},
		{"negative remaining", "remaining = -1", false},
		{"remaining above recipients", "remaining = recipients + 1", false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			k, rks := create(t, s, wire.Class64K, old, 2)
			if tc.uploaded {
				if err := s.Put(k, randData(wire.Class64K)); err != nil {
					t.Fatal(err)
				}
			}
			if n := sql(t, dsn, "UPDATE wisp_files_chunks SET "+tc.set+" WHERE sender_key = $1", k[:]); n != 1 {
				t.Fatalf("%d rows updated", n)
			}
			check := func(op string, err error) {
				t.Helper()
				if !errors.Is(err, pgfiles.ErrCorruptRecord) {
					t.Fatalf("%s: %v", op, err)
				}
				if msg := err.Error(); strings.Contains(msg, hex.EncodeToString(k[:4])) {
					t.Fatalf("%s: the error names the key: %s", op, msg)
				}
			}
			_, err := s.BySender(k)
			check("by sender", err)
			_, _, err = s.ByRecipient(rks[0])
			check("by recipient", err)
			check("put", s.Put(k, randData(wire.Class64K)))
			check("ack", s.Ack(rks[0]))
			check("delete", s.Delete(k))
			// Expiry skips the row, deletes the others and reports it.
			other, _ := create(t, s, wire.Class64K, old, 1)
			n, err := s.Expire(old.Add(time.Second), 10)
			check("expire", err)
			if n != 1 {
				t.Fatalf("expire deleted %d", n)
			}
			if _, err := s.BySender(other); !errors.Is(err, files.ErrNotFound) {
				t.Fatalf("the other chunk: %v", err)
			}
			sql(t, dsn, "DELETE FROM wisp_files_chunks WHERE sender_key = $1", k[:])
		})
	}
	t.Run("recipient row", func(t *testing.T) {
		_, rks := create(t, s, wire.Class64K, time.Time{}, 1)
		sql(t, dsn, "UPDATE wisp_files_recipients SET box_key = '\\x00' WHERE recipient_key = $1", rks[0][:])
		if _, _, err := s.ByRecipient(rks[0]); !errors.Is(err, pgfiles.ErrCorruptRecord) {
			t.Fatalf("by recipient: %v", err)
		}
	})
	t.Run("no usage counters", func(t *testing.T) {
		sql(t, dsn, "DELETE FROM wisp_files_usage")
		err := s.Create(randKey(), files.Chunk{Class: wire.Class64K}, map[files.RecipientKey]files.Recipient{randKey(): {}})
		if !errors.Is(err, pgfiles.ErrCorruptRecord) {
			t.Fatalf("create: %v", err)
		}
	})
}

// TestUnrecordedFilesSwept: Expire removes the files nothing records (a
// chunk file whose upload was never committed, a temporary file of an
// upload that never finished) once they are an hour old and older than
// the cutoff, and nothing else.
func TestUnrecordedFilesSwept(t *testing.T) {
	dsn, dir := pg.Database(t), t.TempDir()
	s := open(t, dsn, dir, 1<<30)
	now := time.Now()
	old := now.Add(-2 * time.Hour)
	write := func(path string, mtime time.Time) string {
		t.Helper()
		if err := os.WriteFile(path, []byte("x"), 0o600); err != nil {
			t.Fatal(err)
		}
		if err := os.Chtimes(path, mtime, mtime); err != nil {
			t.Fatal(err)
		}
		return path
	}
	orphan := write(filepath.Join(dir, "chunks", "ab", "ab"+strings.Repeat("01", 15)), old)
	young := write(filepath.Join(dir, "chunks", "cd", "cd"+strings.Repeat("02", 15)), now)
	foreign := write(filepath.Join(dir, "chunks", "ab", ".nfs0001"), old)
	oldTmp := write(filepath.Join(dir, "tmp", "up-1"), old)
	youngTmp := write(filepath.Join(dir, "tmp", "up-2"), now)
	// A recorded chunk, however old its file, stays. (It was created in
	// the future, so that Expire(now) does not expire it.)
	k, _ := create(t, s, wire.Class64K, now.Add(time.Hour), 1)
	data := randData(wire.Class64K)
	if err := s.Put(k, data); err != nil {
		t.Fatal(err)
	}
	ch, err := s.BySender(k)
	if err != nil {
		t.Fatal(err)
	}
	name := hex.EncodeToString(ch.File[:])
	recorded := filepath.Join(dir, "chunks", name[:2], name)
	if err := os.Chtimes(recorded, old, old); err != nil {
		t.Fatal(err)
	}
	exists := func(path string) bool {
		_, err := os.Stat(path)
		return err == nil
	}
	// A cutoff before the files' time keeps them all: every chunk
	// directory is looked at within 256 calls.
	for range 256 {
		if _, err := s.Expire(old.Add(-time.Hour), 10); err != nil {
			t.Fatal(err)
		}
	}
	for _, p := range []string{orphan, young, foreign, oldTmp, youngTmp, recorded} {
		if !exists(p) {
			t.Fatalf("%s removed before its time", p)
		}
	}
	for range 256 {
		if _, err := s.Expire(now, 10); err != nil {
			t.Fatal(err)
		}
	}
	for p, want := range map[string]bool{orphan: false, young: true, foreign: true, oldTmp: false, youngTmp: true, recorded: true} {
		if exists(p) != want {
			t.Fatalf("%s: exists %v, want %v", p, !want, want)
		}
	}
	if got, err := s.Read(&ch); err != nil || !bytes.Equal(got, data) {
		t.Fatalf("the recorded chunk: %v", err)
	}
}

// TestIDsNotStored: the database holds hashes of chunk IDs, never the
// IDs.
func TestIDsNotStored(t *testing.T) {
	dsn := pg.Database(t)
	s := open(t, dsn, t.TempDir(), 1<<30)
	var snd, rcv wire.ChunkID
	_, _ = rand.Read(snd[:])
	_, _ = rand.Read(rcv[:])
	k, rk := files.SenderKeyOf(snd), files.RecipientKeyOf(rcv)
	if err := s.Create(k, files.Chunk{Class: wire.Class64K}, map[files.RecipientKey]files.Recipient{rk: {}}); err != nil {
		t.Fatal(err)
	}
	if err := s.Put(k, randData(wire.Class64K)); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	c, err := pgx.Connect(ctx, dsn)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close(ctx)
	var dump string
	err = c.QueryRow(ctx, `SELECT (SELECT string_agg(t::text, ' ') FROM wisp_files_chunks t) || ' ' ||
		(SELECT string_agg(t::text, ' ') FROM wisp_files_recipients t)`).Scan(&dump)
	if err != nil {
		t.Fatal(err)
	}
	for _, id := range [][]byte{snd[:], rcv[:]} {
		if strings.Contains(dump, hex.EncodeToString(id[:8])) {
			t.Fatal("an ID is stored in clear")
		}
	}
	for _, h := range [][]byte{k[:], rk[:]} {
		if !strings.Contains(dump, hex.EncodeToString(h)) {
			t.Fatal("the dump does not hold the keys: the test checks nothing")
		}
	}
}

// TestOpenErrors: a bad quota, directory or database is an error that
// does not repeat the DSN's password.
func TestOpenErrors(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	dir := t.TempDir()
	dsn := pg.Database(t)
	if _, err := pgfiles.Open(ctx, dsn, dir, 0); err == nil {
		t.Fatal("quota 0")
	}
	if _, err := pgfiles.Open(ctx, dsn, "", 1<<30); err == nil {
		t.Fatal("no directory")
	}
	if _, err := pgfiles.Open(ctx, "postgres://wisp:s3cretpw@127.0.0.1:1/wisp?sslmode=disable&connect_timeout=5", dir, 1<<30); err == nil ||
		strings.Contains(err.Error(), "s3cretpw") {
		t.Fatalf("unreachable database: %v", err)
	}
	if _, err := pgfiles.Open(ctx, "postgres://wisp:s3cretpw@127.0.0.1:1/wisp?sslmode=nonsense", dir, 1<<30); err == nil ||
		strings.Contains(err.Error(), "s3cretpw") {
		t.Fatalf("bad DSN: %v", err)
	}
	if _, err := pgfiles.Open(ctx, dsn+"&pool_max_conns=0", dir, 1<<30); err == nil {
		t.Fatal("pool_max_conns=0")
	}
}

// TestPoolSettings: a DSN with pgxpool's settings (one shared with the
// queue store) opens and serves concurrent operations.
func TestPoolSettings(t *testing.T) {
	dir := t.TempDir()
	s := open(t, pg.Database(t)+"&pool_max_conns=2&pool_min_conns=1&pool_max_conn_lifetime=1h", dir, 1<<30)
	k, rks := create(t, s, wire.Class64K, time.Time{}, 4)
	if err := s.Put(k, randData(wire.Class64K)); err != nil {
		t.Fatal(err)
	}
	errs := make([]error, len(rks))
	var wg sync.WaitGroup
	for i, rk := range rks {
		wg.Go(func() {
			if _, ch, err := s.ByRecipient(rk); err != nil {
				errs[i] = err
			} else if _, err := s.Read(&ch); err != nil {
				errs[i] = err
			} else {
				errs[i] = s.Ack(rk)
			}
		})
	}
	wg.Wait()
	for i, err := range errs {
		if err != nil {
			t.Fatalf("recipient %d: %v", i, err)
		}
	}
	if _, err := s.BySender(k); !errors.Is(err, files.ErrNotFound) {
		t.Fatalf("after every ack: %v", err)
	}
	old := time.Unix(1_800_000_000, 0)
	for range 3 {
		create(t, s, wire.Class64K, old, 1)
	}
	if n, err := s.ExpireUnfilled(old.Add(time.Second), 10); err != nil || n != 3 {
		t.Fatalf("expire unfilled: %d %v", n, err)
	}
	k, _ = create(t, s, wire.Class64K, old, 1)
	if err := s.Put(k, randData(wire.Class64K)); err != nil {
		t.Fatal(err)
	}
	if n, err := s.Expire(old.Add(time.Second), 10); err != nil || n != 1 {
		t.Fatalf("expire: %d %v", n, err)
	}
	usage(t, s, 0, 0)
}

// TestDatabaseRestart: after PostgreSQL restarts, the store's dropped
// connections are replaced: an operation fails at most once per
// connection the pool held, then they succeed.
func TestDatabaseRestart(t *testing.T) {
	dsn, dir := pg.Database(t), t.TempDir()
	s := open(t, dsn, dir, 1<<30)
	k, _ := create(t, s, wire.Class64K, time.Time{}, 1)
	pg.Server.Kill()
	if err := pg.Server.Restart(); err != nil {
		t.Fatal(err)
	}
	var err error
	for range 17 { // the pool's 16 connections, and one
		if _, err = s.BySender(k); err == nil {
			break
		}
	}
	if err != nil {
		t.Fatalf("after the restart: %v", err)
	}
	data := randData(wire.Class64K)
	if err := s.Put(k, data); err != nil {
		t.Fatal(err)
	}
}
