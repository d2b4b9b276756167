// Package pgfiles is the relay's file chunk store for one relay address
// served by several relay processes (behind a TCP load balancer): the
// chunk records in PostgreSQL, the chunk bytes in a directory that every
// process mounts, so that any process serves any chunk. It implements
// files.Backend with the semantics of the bbolt store (files.Store);
// package filestest runs the same conformance suite against both.
//
// # Use
//
// Every process opens the same database and the same directory with the
// same quota, and serves the file endpoint from it:
//
//	st, err := pgfiles.Open(ctx, "postgres://wisp@db.internal/wisp", "/srv/wisp-files", 10<<30)
//	if err != nil { ... }
//	fs, err := files.New(files.Config{Identity: key, Store: st, Limits: files.DefaultLimits()})
//	mux.Handle(wire.FilesPath, fs)
//	...
//	fs.Close()
//	st.Close()
//
// Open creates the tables when they are missing; processes starting at
// once may all call it. It may share a database with the queue store
// (its tables are named wisp_files_*) and its DSN, pool settings
// (pgxpool's pool_* parameters) included; each Store keeps at least 16
// connections. An operation waits for a free connection, and gives up
// (an error, ERR INTERNAL for the client) after 30 seconds without the
// database. Usage reports the bytes charged and the chunks of all the
// processes together.
//
// # The directory
//
// The directory holds chunks/00 … chunks/ff, one file per uploaded chunk
// named by 16 random bytes in hex, and tmp/, where uploads are written
// before they are renamed into place. It must be one file system with an
// atomic rename, mounted by every process (a shared volume, NFS), and
// must not be used by a files.Store (which empties tmp/ when it opens).
//
// # Tables
//
//   - wisp_files_chunks: one row per chunk, keyed by the SenderKey (a
//     hash of the sender ID). Its class, sender's auth key, creation time
//     (Unix seconds), number of recipients at creation and left, whether
//     it is uploaded, the SHA-256 of its bytes and its file name once it
//     is. Indexed by (created, sender_key) for Expire, and again for the
//     rows not uploaded for ExpireUnfilled; the file name is unique.
//   - wisp_files_recipients: one row per recipient not yet acknowledged,
//     keyed by the RecipientKey (a hash of the recipient ID), with its
//     chunk's SenderKey (deleted with the chunk), its auth key and its
//     box key. Indexed by sender_key.
//   - wisp_files_usage: 16 counter rows (bytes charged, chunks).
//
// No chunk ID is stored, only hashes, and nothing about clients
// (addresses, sessions). Errors name no key, ID or address.
//
// # Several processes
//
// What the bbolt store keeps consistent with a mutex per chunk is kept
// consistent by the database:
//
//   - Put writes its bytes to a file of its own (a new random name),
//     then claims the chunk with one conditional UPDATE (… WHERE NOT
//     uploaded) in the transaction that charges the quota. Of
//     concurrent Puts of one chunk, in any processes, exactly one claims
//     it; the others remove their file and compare digests (same bytes:
//     success; other bytes: ErrUploaded). No lock is held while a file
//     is written, and no file is ever written twice.
//   - Delete, Ack and expiry lock the chunk's row (SELECT … FOR UPDATE),
//     remove its file, then its rows, in one transaction: a Put racing
//     them finds no row to claim and removes its own file. An Ack deletes
//     its recipient's row under the chunk's lock and counts only if the
//     row was there, so concurrent Acks of one recipient count once.
//   - Create inserts with ON CONFLICT DO NOTHING, so concurrent Creates
//     of one key (which random IDs make unlikely) store one.
//
// Locks are taken in one order (chunk row, recipient rows, counter row),
// so transactions never deadlock.
//
// # Quota
//
// The bytes charged (files.MetadataCost from Create, the class size from
// Put, given back on deletion) are spread over the 16 counter rows: each
// transaction adds to one of them at random, so uploads in different
// processes rarely wait on one row lock, and the usage is their sum.
// A transaction checks the sum before it adds, so concurrent
// transactions may each see room for themselves: the quota can be passed
// by at most what the creations and uploads in flight at that moment
// charge (at most one chunk's size and records each). One at a time, it
// is exact, as in the bbolt store.
//
// # Failures
//
// A chunk file is written to tmp/, fsynced, renamed into place and its
// directory fsynced before its upload is committed, so a crash never
// leaves a torn file under a chunk's name, and a committed upload's bytes
// are on disk. A crash between the rename and the commit leaves a file
// that no row names; a crash while writing leaves one in tmp/. Such files
// are garbage: Expire removes them once they are an hour old (it looks at
// tmp/ and one of the 256 chunk directories per call, in turn). A crash
// between the removal of a chunk's file and the commit of its deletion
// leaves a row whose Read is ErrNotFound, which expiry deletes.
//
// A row that does not have the shape the store writes (a digest of the
// wrong length, an unknown class) is ErrCorruptRecord, not a panic; Expire
// skips such a row and reports it.
package pgfiles

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"io/fs"
	mrand "math/rand/v2"
	"os"
	"path/filepath"
	"sync/atomic"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/wisp-chat/wisp/server/relay/files"
	"github.com/wisp-chat/wisp/server/wire"
)

// ErrCorruptRecord is a row that does not have the shape the store
// writes.
var ErrCorruptRecord = errors.New("pgfiles: corrupt record")

var (
	errChunkExists     = errors.New("pgfiles: chunk exists")
	errRecipientExists = errors.New("pgfiles: recipient exists")
)

const (
	// shards is the number of usage counter rows.
	shards = 16
	// minConns is the least pool_max_conns of a Store: the file
	// endpoint runs dozens of commands at once.
	minConns = 16
	// opTimeout bounds one operation (a Put's file included), so that a
	// database outage turns into errors rather than hung commands.
	opTimeout = 30 * time.Second
	// staleAfter is how old a file nothing records must be before Expire
	// removes it: far longer than opTimeout, within which an upload
	// records its file or gives up.
	staleAfter = time.Hour
	// schemaLock is the advisory lock key that serialises creating the
	// tables ("wispfile" in ASCII).
	schemaLock int64 = 0x7769737066696c65
)

const schema = `
CREATE TABLE IF NOT EXISTS wisp_files_chunks (
	sender_key  bytea PRIMARY KEY,
	class       smallint NOT NULL,
	sender_auth bytea NOT NULL,
	created     bigint NOT NULL,
	recipients  integer NOT NULL,
	remaining   integer NOT NULL,
	uploaded    boolean NOT NULL DEFAULT false,
	digest      bytea,
	file        bytea UNIQUE
);
CREATE INDEX IF NOT EXISTS wisp_files_chunks_expiry ON wisp_files_chunks (created, sender_key);
CREATE INDEX IF NOT EXISTS wisp_files_chunks_unfilled ON wisp_files_chunks (created, sender_key) WHERE NOT uploaded;
CREATE TABLE IF NOT EXISTS wisp_files_recipients (
	recipient_key bytea PRIMARY KEY,
	sender_key    bytea NOT NULL REFERENCES wisp_files_chunks ON DELETE CASCADE,
	auth          bytea NOT NULL,
	box_key       bytea NOT NULL
);
CREATE INDEX IF NOT EXISTS wisp_files_recipients_chunk ON wisp_files_recipients (sender_key);
CREATE TABLE IF NOT EXISTS wisp_files_usage (
	shard  integer PRIMARY KEY,
	bytes  bigint NOT NULL,
	chunks bigint NOT NULL
);
`

// Store is the PostgreSQL chunk store. It is safe for concurrent use,
// by several processes too.
type Store struct {
	dir    string
	quota  int64
	db     *pgxpool.Pool
	ctx    context.Context // cancelled by Close
	cancel context.CancelFunc
	closed atomic.Bool
	// next is the chunk directory the next sweep of unrecorded files
	// looks at.
	next atomic.Uint32
}

var _ files.Backend = (*Store)(nil)

// Open connects to the database at dsn (a postgres:// URL or key=value
// string), creates the tables when they are missing, creates the
// directory's subdirectories, and returns the store. quota is the most
// bytes (chunk bytes and records, files.MetadataCost) the store holds;
// every process should give the same. ctx bounds Open only.
func Open(ctx context.Context, dsn string, dir string, quota int64) (*Store, error) {
	if quota <= 0 {
		return nil, errors.New("pgfiles: quota must be positive")
	}
	if dir == "" {
		return nil, errors.New("pgfiles: no directory")
	}
	cfg, err := pgxpool.ParseConfig(dsn)
	if err != nil {
		return nil, fmt.Errorf("pgfiles: %w", err)
	}
	if cfg.ConnConfig.ConnectTimeout == 0 {
		cfg.ConnConfig.ConnectTimeout = 10 * time.Second
	}
	cfg.MaxConns = max(cfg.MaxConns, minConns)
	if err := makeDirs(dir); err != nil {
		return nil, fmt.Errorf("pgfiles: %w", err)
	}
	db, err := pgxpool.NewWithConfig(ctx, cfg)
	if err != nil {
		return nil, fmt.Errorf("pgfiles: %w", err)
	}
	if err := createTables(ctx, db); err != nil {
		db.Close()
		return nil, fmt.Errorf("pgfiles: creating tables: %w", err)
	}
	sctx, cancel := context.WithCancel(context.Background())
	s := &Store{dir: dir, quota: quota, db: db, ctx: sctx, cancel: cancel}
	s.next.Store(mrand.Uint32())
	return s, nil
}

// makeDirs creates tmp/ and the 256 chunk directories, and makes their
// entries durable.
func makeDirs(dir string) error {
	chunks := filepath.Join(dir, "chunks")
	for _, d := range []string{filepath.Join(dir, "tmp"), chunks} {
		if err := os.MkdirAll(d, 0o700); err != nil {
			return err
		}
	}
	for i := range 256 {
		if err := os.Mkdir(filepath.Join(chunks, fmt.Sprintf("%02x", i)), 0o700); err != nil && !errors.Is(err, fs.ErrExist) {
			return err
		}
	}
	for _, d := range []string{chunks, dir} {
		if err := files.SyncDir(d); err != nil {
			return err
		}
	}
	return nil
}

// createTables creates the tables under a transaction-scoped advisory
// lock: CREATE TABLE IF NOT EXISTS is not safe against itself in
// concurrent transactions.
func createTables(ctx context.Context, db *pgxpool.Pool) error {
	return pgx.BeginFunc(ctx, db, func(tx pgx.Tx) error {
		if _, err := tx.Exec(ctx, "SELECT pg_advisory_xact_lock($1)", schemaLock); err != nil {
			return err
		}
		if _, err := tx.Exec(ctx, schema); err != nil {
			return err
		}
		_, err := tx.Exec(ctx, "INSERT INTO wisp_files_usage SELECT g, 0, 0 FROM generate_series(0, $1::integer - 1) g ON CONFLICT DO NOTHING", shards)
		return err
	})
}

// Close ends the operations in progress, closes the connections, and
// returns once none is in use; every method returns files.ErrClosed
// from then on. Closing again does nothing. Other processes are not
// affected.
func (s *Store) Close() error {
	if s.closed.Swap(true) {
		return nil
	}
	s.cancel()
	s.db.Close()
	return nil
}

// querier is the pool or a transaction.
type querier interface {
	QueryRow(ctx context.Context, sql string, args ...any) pgx.Row
}

// soon is the deadline of an operation that starts now.
func soon() time.Time { return time.Now().Add(opTimeout) }

// run runs fn with the context of one operation, which ends at deadline
// or at Close.
func (s *Store) run(deadline time.Time, fn func(ctx context.Context) error) error {
	if s.closed.Load() {
		return files.ErrClosed
	}
	ctx, cancel := context.WithDeadline(s.ctx, deadline)
	defer cancel()
	return s.fail(fn(ctx))
}

// tx runs fn in a transaction, committed if fn returns nil and rolled
// back otherwise.
func (s *Store) tx(deadline time.Time, fn func(ctx context.Context, tx pgx.Tx) error) error {
	return s.run(deadline, func(ctx context.Context) error {
		return pgx.BeginFunc(ctx, s.db, func(tx pgx.Tx) error { return fn(ctx, tx) })
	})
}

// fail returns the store's own errors as they are, files.ErrClosed for
// what Close interrupted, and the database's wrapped.
func (s *Store) fail(err error) error {
	switch {
	case err == nil:
		return nil
	case isLogical(err):
		return err
	case s.closed.Load():
		return files.ErrClosed
	default:
		return fmt.Errorf("pgfiles: %w", err)
	}
}

func isLogical(err error) bool {
	for _, e := range []error{files.ErrNotFound, files.ErrQuota, files.ErrSize, files.ErrUploaded, files.ErrNotReady,
		files.ErrCorrupt, files.ErrClosed, ErrCorruptRecord, errChunkExists, errRecipientExists} {
		if errors.Is(err, e) {
			return true
		}
	}
	return false
}

func corrupt(format string, args ...any) error {
	return fmt.Errorf("%w: "+format, append([]any{ErrCorruptRecord}, args...)...)
}

// record is a chunk row: the chunk, and its number of recipients at
// creation, which its cost counts.
type record struct {
	files.Chunk
	recipients int
}

// cost is what the chunk costs against the quota now.
func (r *record) cost() int64 {
	n := files.MetadataCost(r.recipients)
	if r.Uploaded {
		n += int64(r.Class.Size())
	}
	return n
}

const chunkCols = "c.class, c.sender_auth, c.created, c.recipients, c.remaining, c.uploaded, c.digest, c.file"

// scanChunk scans the chunkCols of row after the extra destinations,
// checking the row's shape.
func scanChunk(row pgx.Row, extra ...any) (record, error) {
	var (
		r                     record
		class                 int16
		auth, digest, file    []byte
		created               int64
		recipients, remaining int32
	)
	dest := append(extra, &class, &auth, &created, &recipients, &remaining, &r.Uploaded, &digest, &file)
	if err := row.Scan(dest...); err != nil {
		if errors.Is(err, pgx.ErrNoRows) {
			return r, files.ErrNotFound
		}
		return r, err
	}
	switch {
	case class < 0 || class > 255 || !wire.ChunkClass(class).Valid():
		return r, corrupt("chunk class %d", class)
	case len(auth) != wire.KeySize:
		return r, corrupt("sender auth key of %d bytes", len(auth))
	case recipients < 1 || recipients > wire.MaxChunkRecipients:
		return r, corrupt("%d recipients", recipients)
	case remaining < 0 || remaining > recipients:
		return r, corrupt("%d of %d recipients left", remaining, recipients)
	case r.Uploaded && len(digest) != len(r.Digest):
		return r, corrupt("digest of %d bytes", len(digest))
	case r.Uploaded && len(file) != len(r.File):
		return r, corrupt("file name of %d bytes", len(file))
	}
	r.Class, r.Created = wire.ChunkClass(class), time.Unix(created, 0)
	r.recipients, r.Remaining = int(recipients), int(remaining)
	copy(r.SenderAuth[:], auth)
	if r.Uploaded {
		copy(r.Digest[:], digest)
		copy(r.File[:], file)
	}
	return r, nil
}

// getChunk reads a chunk's row; lock is "" or " FOR UPDATE".
func getChunk(ctx context.Context, q querier, k files.SenderKey, lock string) (record, error) {
	return scanChunk(q.QueryRow(ctx, "SELECT "+chunkCols+" FROM wisp_files_chunks c WHERE c.sender_key = $1"+lock, k[:]))
}

// usedBytes returns the bytes charged against the quota.
func usedBytes(ctx context.Context, q querier) (int64, error) {
	var used int64
	err := q.QueryRow(ctx, "SELECT coalesce(sum(bytes), 0)::bigint FROM wisp_files_usage").Scan(&used)
	return used, err
}

// fits returns files.ErrQuota unless n more bytes fit under the quota.
// Concurrent transactions check before they add (see Quota in the
// package documentation).
func (s *Store) fits(ctx context.Context, q querier, n int64) error {
	used, err := usedBytes(ctx, q)
	if err != nil {
		return err
	}
	if used+n > s.quota {
		return files.ErrQuota
	}
	return nil
}

// charge adds to the usage counters, on a random shard.
func charge(ctx context.Context, tx pgx.Tx, bytes, chunks int64) error {
	shard := mrand.IntN(shards)
	tag, err := tx.Exec(ctx, "UPDATE wisp_files_usage SET bytes = bytes + $1, chunks = chunks + $2 WHERE shard = $3", bytes, chunks, shard)
	if err != nil {
		return err
	}
	if tag.RowsAffected() != 1 {
		return corrupt("usage counter %d missing", shard)
	}
	return nil
}

// Create stores a new chunk record and its recipients, charging their
// files.MetadataCost (files.ErrQuota when it does not fit).
func (s *Store) Create(k files.SenderKey, c files.Chunk, rcpts map[files.RecipientKey]files.Recipient) error {
	if !c.Class.Valid() || len(rcpts) == 0 || len(rcpts) > wire.MaxChunkRecipients {
		return errors.New("pgfiles: bad chunk record")
	}
	if c.Created.IsZero() {
		c.Created = time.Now()
	}
	rks, auths, boxes := make([][]byte, 0, len(rcpts)), make([][]byte, 0, len(rcpts)), make([][]byte, 0, len(rcpts))
	for rk, r := range rcpts {
		rks, auths, boxes = append(rks, rk[:]), append(auths, r.Auth[:]), append(boxes, r.BoxKey[:])
	}
	cost := files.MetadataCost(len(rcpts))
	return s.tx(soon(), func(ctx context.Context, tx pgx.Tx) error {
		if err := s.fits(ctx, tx, cost); err != nil {
			return err
		}
		tag, err := tx.Exec(ctx, `INSERT INTO wisp_files_chunks (sender_key, class, sender_auth, created, recipients, remaining)
			VALUES ($1, $2, $3, $4, $5, $5) ON CONFLICT DO NOTHING`,
			k[:], int16(c.Class), c.SenderAuth[:], c.Created.Unix(), len(rcpts))
		if err != nil {
			return err
		}
		if tag.RowsAffected() == 0 {
			return errChunkExists
		}
		tag, err = tx.Exec(ctx, `INSERT INTO wisp_files_recipients (recipient_key, sender_key, auth, box_key)
			SELECT r, $1, a, b FROM unnest($2::bytea[], $3::bytea[], $4::bytea[]) AS u (r, a, b) ON CONFLICT DO NOTHING`,
			k[:], rks, auths, boxes)
		if err != nil {
			return err
		}
		if tag.RowsAffected() != int64(len(rcpts)) {
			return errRecipientExists
		}
		return charge(ctx, tx, cost, 1)
	})
}

// BySender returns the chunk record of a sender key.
func (s *Store) BySender(k files.SenderKey) (files.Chunk, error) {
	var r record
	err := s.run(soon(), func(ctx context.Context) error {
		var err error
		r, err = getChunk(ctx, s.db, k, "")
		return err
	})
	return r.Chunk, err
}

// ByRecipient returns a recipient record and its chunk, read together.
func (s *Store) ByRecipient(rk files.RecipientKey) (files.Recipient, files.Chunk, error) {
	var rc files.Recipient
	var r record
	err := s.run(soon(), func(ctx context.Context) error {
		var sk, auth, box []byte
		var err error
		r, err = scanChunk(s.db.QueryRow(ctx, `SELECT r.sender_key, r.auth, r.box_key, `+chunkCols+`
			FROM wisp_files_recipients r JOIN wisp_files_chunks c ON c.sender_key = r.sender_key
			WHERE r.recipient_key = $1`, rk[:]), &sk, &auth, &box)
		if err != nil {
			return err
		}
		if len(sk) != len(rc.Chunk) || len(auth) != len(rc.Auth) || len(box) != len(rc.BoxKey) {
			return corrupt("recipient keys of %d, %d and %d bytes", len(sk), len(auth), len(box))
		}
		copy(rc.Chunk[:], sk)
		copy(rc.Auth[:], auth)
		copy(rc.BoxKey[:], box)
		return nil
	})
	if err != nil {
		return files.Recipient{}, files.Chunk{}, err
	}
	return rc, r.Chunk, nil
}

// Put stores the chunk's bytes: written to a new file (temporary,
// fsynced, renamed into place, its directory fsynced), then claimed in
// the transaction that charges the class size (files.ErrQuota when it
// does not fit). Putting the same bytes again succeeds; other bytes are
// files.ErrUploaded; a length other than the class size is files.ErrSize.
// Whatever fails, the file goes, unless the commit's outcome is unknown
// (then Expire removes it later if the commit did not happen).
//
// The whole Put, its file included, has one deadline (opTimeout): an
// upload commits within opTimeout of writing its file or never, which
// lets Expire remove older files that nothing records.
func (s *Store) Put(k files.SenderKey, data []byte) error {
	deadline := time.Now().Add(opTimeout)
	var r record
	var used int64
	err := s.run(deadline, func(ctx context.Context) error {
		var err error
		if r, err = getChunk(ctx, s.db, k, ""); err != nil {
			return err
		}
		used, err = usedBytes(ctx, s.db)
		return err
	})
	if err != nil {
		return err
	}
	if len(data) != r.Class.Size() {
		return files.ErrSize
	}
	digest := sha256.Sum256(data)
	if r.Uploaded {
		return sameBytes(&r.Chunk, &digest)
	}
	size := int64(len(data))
	// A first look spares writing a file that cannot fit; the
	// transaction decides.
	if used+size > s.quota {
		return files.ErrQuota
	}
	var name [16]byte
	_, _ = rand.Read(name[:])
	path := s.path(&name)
	if err := files.WriteChunkFile(s.dir, path, data); err != nil {
		return err
	}
	claimed := false
	err = s.tx(deadline, func(ctx context.Context, tx pgx.Tx) error {
		tag, err := tx.Exec(ctx, "UPDATE wisp_files_chunks SET uploaded = true, digest = $2, file = $3 WHERE sender_key = $1 AND NOT uploaded",
			k[:], digest[:], name[:])
		if err != nil {
			return err
		}
		if tag.RowsAffected() == 0 {
			// Deleted meanwhile, or uploaded by another Put (which the
			// UPDATE waited for).
			r, err := getChunk(ctx, tx, k, "")
			if err != nil {
				return err
			}
			return sameBytes(&r.Chunk, &digest)
		}
		if err := s.fits(ctx, tx, size); err != nil {
			return err
		}
		if err := charge(ctx, tx, size, 0); err != nil {
			return err
		}
		claimed = true
		return nil
	})
	// Unless the claim reached the commit (whose error, if any, leaves
	// its outcome unknown), nothing records this file. (If it cannot be
	// removed now, Expire removes it later.)
	if !claimed {
		_ = os.Remove(path)
	}
	return err
}

// sameBytes is nil if the uploaded chunk has digest d, else
// files.ErrUploaded.
func sameBytes(c *files.Chunk, d *[32]byte) error {
	if subtle.ConstantTimeCompare(c.Digest[:], d[:]) == 1 {
		return nil
	}
	return files.ErrUploaded
}

func (s *Store) path(name *[16]byte) string { return files.ChunkPath(s.dir, name) }

// Read returns the stored bytes of an uploaded chunk after checking them
// against the digest taken at upload: a file changed on disk is
// files.ErrCorrupt, a chunk not uploaded yet is files.ErrNotReady, one
// deleted since c was read is files.ErrNotFound. It reads only the
// shared directory.
func (s *Store) Read(c *files.Chunk) ([]byte, error) {
	if s.closed.Load() {
		return nil, files.ErrClosed
	}
	if !c.Uploaded {
		return nil, files.ErrNotReady
	}
	f, err := os.Open(s.path(&c.File))
	if errors.Is(err, fs.ErrNotExist) {
		return nil, files.ErrNotFound
	} else if err != nil {
		return nil, fmt.Errorf("pgfiles: reading chunk: %w", err)
	}
	defer f.Close()
	// One byte more than the class size tells a longer file.
	size := c.Class.Size()
	b := make([]byte, size+1)
	n, err := io.ReadFull(f, b)
	if err != nil && !errors.Is(err, io.ErrUnexpectedEOF) && !errors.Is(err, io.EOF) {
		return nil, fmt.Errorf("pgfiles: reading chunk: %w", err)
	}
	b = b[:n]
	d := sha256.Sum256(b)
	if len(b) != size || subtle.ConstantTimeCompare(d[:], c.Digest[:]) != 1 {
		return nil, files.ErrCorrupt
	}
	return b, nil
}

// Ack removes one recipient; the chunk is deleted with its last one, in
// the same transaction. A chunk not uploaded yet is files.ErrNotReady
// and nothing changes.
func (s *Store) Ack(rk files.RecipientKey) error {
	return s.tx(soon(), func(ctx context.Context, tx pgx.Tx) error {
		var sk []byte
		err := tx.QueryRow(ctx, "SELECT sender_key FROM wisp_files_recipients WHERE recipient_key = $1", rk[:]).Scan(&sk)
		if errors.Is(err, pgx.ErrNoRows) {
			return files.ErrNotFound
		} else if err != nil {
			return err
		}
		if len(sk) != len(files.SenderKey{}) {
			return corrupt("sender key of %d bytes", len(sk))
		}
		k := files.SenderKey(sk)
		r, err := getChunk(ctx, tx, k, " FOR UPDATE")
		if err != nil {
			return err
		}
		if !r.Uploaded {
			return files.ErrNotReady
		}
		// Under the chunk's lock: a concurrent Ack of this recipient
		// finds its row gone.
		tag, err := tx.Exec(ctx, "DELETE FROM wisp_files_recipients WHERE recipient_key = $1", rk[:])
		if err != nil {
			return err
		}
		if tag.RowsAffected() == 0 {
			return files.ErrNotFound
		}
		if r.Remaining > 1 {
			_, err := tx.Exec(ctx, "UPDATE wisp_files_chunks SET remaining = remaining - 1 WHERE sender_key = $1", k[:])
			return err
		}
		return s.deleteLocked(ctx, tx, k, &r)
	})
}

// Delete deletes a chunk: its file first, then its rows, in one
// transaction under the row's lock.
func (s *Store) Delete(k files.SenderKey) error {
	_, err := s.delete(k, false)
	return err
}

// delete deletes a chunk (only if it is not uploaded, when unfilled is
// set) and reports whether it did.
func (s *Store) delete(k files.SenderKey, unfilled bool) (bool, error) {
	deleted := false
	err := s.tx(soon(), func(ctx context.Context, tx pgx.Tx) error {
		r, err := getChunk(ctx, tx, k, " FOR UPDATE")
		if err != nil {
			return err
		}
		if unfilled && r.Uploaded {
			return nil // uploaded since it was listed
		}
		deleted = true
		return s.deleteLocked(ctx, tx, k, &r)
	})
	return deleted && err == nil, err
}

// deleteLocked removes the file of a chunk whose row tx holds locked,
// then its rows, and gives back its cost. The file goes first: if the
// transaction does not commit, the row is left (for expiry), not a file
// nobody knows.
func (s *Store) deleteLocked(ctx context.Context, tx pgx.Tx, k files.SenderKey, r *record) error {
	if r.Uploaded {
		if err := os.Remove(s.path(&r.File)); err != nil && !errors.Is(err, fs.ErrNotExist) {
			return fmt.Errorf("removing chunk: %w", err)
		}
	}
	if _, err := tx.Exec(ctx, "DELETE FROM wisp_files_chunks WHERE sender_key = $1", k[:]); err != nil {
		return err
	}
	return charge(ctx, tx, -r.cost(), -1)
}

const (
	dueQuery         = "SELECT sender_key FROM wisp_files_chunks WHERE created < $1 ORDER BY created, sender_key LIMIT $2"
	dueUnfilledQuery = "SELECT sender_key FROM wisp_files_chunks WHERE created < $1 AND NOT uploaded ORDER BY created, sender_key LIMIT $2"
)

// Expire deletes up to limit chunks created before cutoff, oldest first,
// and returns how many it deleted. It also removes files nothing records
// (see Failures in the package documentation).
func (s *Store) Expire(cutoff time.Time, limit int) (int, error) {
	n, err := s.expire(dueQuery, cutoff, limit, false)
	if err != nil {
		return n, err
	}
	return n, s.sweepFiles(cutoff)
}

// ExpireUnfilled deletes up to limit chunks created before cutoff and
// not uploaded, oldest first, and returns how many it deleted.
func (s *Store) ExpireUnfilled(cutoff time.Time, limit int) (int, error) {
	return s.expire(dueUnfilledQuery, cutoff, limit, true)
}

// expire deletes the chunks the query lists. A chunk deleted or (for
// unfilled) uploaded meanwhile is skipped, as is a corrupt row (reported
// once the others are deleted); other errors stop it.
func (s *Store) expire(query string, cutoff time.Time, limit int, unfilled bool) (int, error) {
	if s.closed.Load() {
		return 0, files.ErrClosed
	}
	if limit <= 0 {
		return 0, nil
	}
	var due [][]byte
	err := s.run(soon(), func(ctx context.Context) error {
		rows, err := s.db.Query(ctx, query, cutoff.Unix(), limit)
		if err != nil {
			return err
		}
		due, err = pgx.CollectRows(rows, pgx.RowTo[[]byte])
		return err
	})
	if err != nil {
		return 0, err
	}
	n := 0
	var bad error
	for _, sk := range due {
		if len(sk) != len(files.SenderKey{}) {
			bad = firstErr(bad, corrupt("sender key of %d bytes", len(sk)))
			continue
		}
		deleted, err := s.delete(files.SenderKey(sk), unfilled)
		switch {
		case deleted:
			n++
		case errors.Is(err, files.ErrNotFound):
		case errors.Is(err, ErrCorruptRecord):
			bad = firstErr(bad, err)
		case err != nil:
			return n, err
		}
	}
	return n, bad
}

// firstErr returns the first of two errors that is not nil.
func firstErr(a, b error) error {
	if a != nil {
		return a
	}
	return b
}

// sweepFiles removes the files nothing records: temporary files left by
// uploads that did not finish, and, in one chunk directory per call (in
// turn), chunk files whose upload was never committed. Only files last
// written before cutoff and more than staleAfter ago go: a Put commits
// within opTimeout of starting (before it writes its file), or never, so
// a file that old that no row names will never be named.
func (s *Store) sweepFiles(cutoff time.Time) error {
	before := time.Now().Add(-staleAfter)
	if cutoff.Before(before) {
		before = cutoff
	}
	tmp := filepath.Join(s.dir, "tmp")
	old, err := staleFiles(tmp, before)
	if err != nil {
		return err
	}
	for _, name := range old {
		if err := os.Remove(filepath.Join(tmp, name)); err != nil && !errors.Is(err, fs.ErrNotExist) {
			return fmt.Errorf("pgfiles: removing a stale upload: %w", err)
		}
	}
	sub := filepath.Join(s.dir, "chunks", fmt.Sprintf("%02x", s.next.Add(1)%256))
	old, err = staleFiles(sub, before)
	if err != nil {
		return err
	}
	var names [][]byte
	for _, n := range old {
		if b, err := hex.DecodeString(n); err == nil && len(b) == 16 && hex.EncodeToString(b) == n {
			names = append(names, b)
		}
	}
	if len(names) == 0 {
		return nil
	}
	var recorded [][]byte
	err = s.run(soon(), func(ctx context.Context) error {
		rows, err := s.db.Query(ctx, "SELECT file FROM wisp_files_chunks WHERE file = ANY($1::bytea[])", names)
		if err != nil {
			return err
		}
		recorded, err = pgx.CollectRows(rows, pgx.RowTo[[]byte])
		return err
	})
	if err != nil {
		return err
	}
	keep := make(map[string]bool, len(recorded))
	for _, b := range recorded {
		keep[hex.EncodeToString(b)] = true
	}
	for _, b := range names {
		n := hex.EncodeToString(b)
		if keep[n] {
			continue
		}
		if err := os.Remove(filepath.Join(sub, n)); err != nil && !errors.Is(err, fs.ErrNotExist) {
			return fmt.Errorf("pgfiles: removing an unrecorded chunk file: %w", err)
		}
	}
	return nil
}

// staleFiles lists the regular files of dir last modified before t; a
// missing dir has none.
func staleFiles(dir string, t time.Time) ([]string, error) {
	entries, err := os.ReadDir(dir)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	} else if err != nil {
		return nil, fmt.Errorf("pgfiles: %w", err)
	}
	var names []string
	for _, e := range entries {
		if !e.Type().IsRegular() {
			continue
		}
		info, err := e.Info()
		if errors.Is(err, fs.ErrNotExist) {
			continue // removed meanwhile
		} else if err != nil {
			return nil, fmt.Errorf("pgfiles: %w", err)
		}
		if info.ModTime().Before(t) {
			names = append(names, e.Name())
		}
	}
	return names, nil
}

// Usage returns the bytes charged against the quota (chunk bytes stored
// and the records of every chunk) and the number of chunks, over all the
// processes.
func (s *Store) Usage() (used, chunks int64, err error) {
	err = s.run(soon(), func(ctx context.Context) error {
		return s.db.QueryRow(ctx, "SELECT greatest(coalesce(sum(bytes), 0), 0)::bigint, greatest(coalesce(sum(chunks), 0), 0)::bigint FROM wisp_files_usage").
			Scan(&used, &chunks)
	})
	return used, chunks, err
}
