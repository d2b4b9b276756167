package files

import (
	"bytes"
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"
	"time"

	"github.com/wisp-chat/wisp/server/wire"
	bolt "go.etcd.io/bbolt"
	berrors "go.etcd.io/bbolt/errors"
)

// Errors the store returns; the server maps them to wire error codes.
var (
	ErrNotFound = errors.New("files: no such chunk")
	ErrQuota    = errors.New("files: storage quota reached")
	ErrSize     = errors.New("files: chunk does not have its class size")
	ErrUploaded = errors.New("files: chunk already uploaded with other bytes")
	ErrNotReady = errors.New("files: chunk not uploaded yet")
	ErrCorrupt  = errors.New("files: stored chunk fails its digest check")
	ErrClosed   = errors.New("files: store closed")
)

// SenderKey addresses a chunk on disk: a hash of its sender ID.
type SenderKey [32]byte

// RecipientKey addresses one recipient of a chunk: a hash of its ID.
type RecipientKey [32]byte

// SenderKeyOf hashes a sender ID; the ID itself is never stored.
func SenderKeyOf(id wire.ChunkID) SenderKey {
	return sha256.Sum256(append([]byte("wisp fsnd\x00"), id[:]...))
}

// RecipientKeyOf hashes a recipient ID; the ID itself is never stored.
func RecipientKeyOf(id wire.ChunkID) RecipientKey {
	return sha256.Sum256(append([]byte("wisp frcv\x00"), id[:]...))
}

// Chunk is a chunk's record.
type Chunk struct {
	Class      wire.ChunkClass
	SenderAuth [wire.KeySize]byte // Ed25519 key that signs FPUT and FDEL
	Created    time.Time
	Uploaded   bool
	Digest     [32]byte // SHA-256 of the stored bytes, once Uploaded
	// Remaining is the number of recipients that have not acknowledged.
	Remaining int
	// File names the file that holds the chunk's bytes in the backend's
	// directory: random, chosen by the backend (the value given to Create
	// is ignored), and read by Read. It is not derived from any ID.
	File       [16]byte
	recipients []RecipientKey
}

// Recipient is one recipient's record.
type Recipient struct {
	Chunk  SenderKey
	Auth   [wire.KeySize]byte // Ed25519 key that signs FGET and FACK
	BoxKey [32]byte           // precomputed relay↔recipient box key
}

var (
	bucketChunks     = []byte("chunks")
	bucketRecipients = []byte("recipients")
	bucketExpiry     = []byte("expiry")
	bucketUnfilled   = []byte("unfilled")
	bucketMeta       = []byte("meta")
	keyBytes         = []byte("bytes")
	keyCount         = []byte("count")
	keyAccounting    = []byte("accounting")
	// keyUsedV1 is the counter of accounting version 1, which reserved
	// the class size at FNEW; OpenStore replaces it.
	keyUsedV1 = []byte("used")
)

// Quota accounting: a chunk costs its metadata from FNEW on and its class
// size once uploaded. The record costs are fixed estimates of what bbolt
// keeps for a record (key, value, index entries, page overhead), so that
// recipients nobody uploads for still count.
const (
	// ChunkRecordCost is what a chunk record costs against the quota.
	ChunkRecordCost = 512
	// RecipientRecordCost is what each recipient record costs.
	RecipientRecordCost = 256
	accountingVersion   = 2
)

// MetadataCost is what the records of a chunk with n recipients cost
// against the quota.
func MetadataCost(n int) int64 {
	return ChunkRecordCost + int64(n)*RecipientRecordCost
}

// cost is what the chunk costs against the quota now.
func (c *Chunk) cost() int64 {
	n := MetadataCost(len(c.recipients))
	if c.Uploaded {
		n += int64(c.Class.Size())
	}
	return n
}

const (
	chunkVersion    = 1
	chunkHeaderSize = 3 + 32 + 8 + 16 + 32 + 2 + 2
	recipientSize   = 3 * 32
	flagUploaded    = 1
	lockStripes     = 64
)

func (c *Chunk) marshal() []byte {
	b := make([]byte, chunkHeaderSize, chunkHeaderSize+32*len(c.recipients))
	b[0], b[1] = chunkVersion, byte(c.Class)
	if c.Uploaded {
		b[2] = flagUploaded
	}
	o := 3
	o += copy(b[o:], c.SenderAuth[:])
	binary.BigEndian.PutUint64(b[o:], uint64(c.Created.Unix()))
	o += 8
	o += copy(b[o:], c.File[:])
	o += copy(b[o:], c.Digest[:])
	binary.BigEndian.PutUint16(b[o:], uint16(len(c.recipients)))
	binary.BigEndian.PutUint16(b[o+2:], uint16(c.Remaining))
	for _, r := range c.recipients {
		b = append(b, r[:]...)
	}
	return b
}

func unmarshalChunk(b []byte) (Chunk, error) {
	var c Chunk
	if len(b) < chunkHeaderSize || b[0] != chunkVersion {
		return c, errors.New("files: corrupt chunk record")
	}
	c.Class, c.Uploaded = wire.ChunkClass(b[1]), b[2]&flagUploaded != 0
	o := 3
	o += copy(c.SenderAuth[:], b[o:])
	c.Created = time.Unix(int64(binary.BigEndian.Uint64(b[o:])), 0)
	o += 8
	o += copy(c.File[:], b[o:])
	o += copy(c.Digest[:], b[o:])
	n := int(binary.BigEndian.Uint16(b[o:]))
	c.Remaining = int(binary.BigEndian.Uint16(b[o+2:]))
	rest := b[chunkHeaderSize:]
	if len(rest) != 32*n || !c.Class.Valid() {
		return c, errors.New("files: corrupt chunk record")
	}
	c.recipients = make([]RecipientKey, n)
	for i := range c.recipients {
		copy(c.recipients[i][:], rest[32*i:])
	}
	return c, nil
}

func expiryKey(created time.Time, k SenderKey) []byte {
	b := binary.BigEndian.AppendUint64(make([]byte, 0, 40), uint64(created.Unix()))
	return append(b, k[:]...)
}

// Store keeps chunk bytes in one file each under its directory and their
// records in a bbolt file beside them. It is safe for concurrent use.
//
// The quota counts what is stored: every chunk's metadata (MetadataCost)
// from its creation, and its class size once its bytes are on disk. A
// chunk nobody uploads costs only its records, and is indexed by creation
// time so that ExpireUnfilled deletes it soon.
type Store struct {
	dir    string
	db     *bolt.DB
	quota  int64
	locks  [lockStripes]sync.Mutex
	closed atomic.Bool
}

var _ Backend = (*Store)(nil)

// OpenStore opens or creates the store in dir (chunks.db, chunks/, tmp/).
// quota is the most bytes (chunk bytes and metadata) the store holds.
// Nothing is loaded: only the temporary directory of interrupted uploads
// is emptied (and, once, a store of an earlier accounting version is
// recounted). Whether a missing or empty chunks.db is acceptable is the
// caller's decision (wisp-relay checks its store files first).
func OpenStore(dir string, quota int64) (*Store, error) {
	if quota <= 0 {
		return nil, fmt.Errorf("files: quota must be positive")
	}
	dbPath := filepath.Join(dir, "chunks.db")
	tmp := filepath.Join(dir, "tmp")
	if err := os.RemoveAll(tmp); err != nil {
		return nil, fmt.Errorf("files: clearing %s: %w", tmp, err)
	}
	for _, d := range []string{tmp, filepath.Join(dir, "chunks")} {
		if err := os.MkdirAll(d, 0o700); err != nil {
			return nil, fmt.Errorf("files: %w", err)
		}
	}
	db, err := bolt.Open(dbPath, 0o600, &bolt.Options{Timeout: time.Second, FreelistType: bolt.FreelistMapType})
	if err != nil {
		return nil, fmt.Errorf("files: open: %w", err)
	}
	// Group commit: concurrent writers share one transaction and fsync.
	db.MaxBatchDelay = 2 * time.Millisecond
	err = db.Update(func(tx *bolt.Tx) error {
		for _, b := range [][]byte{bucketChunks, bucketRecipients, bucketExpiry, bucketUnfilled, bucketMeta} {
			if _, err := tx.CreateBucketIfNotExists(b); err != nil {
				return err
			}
		}
		if counter(tx, keyAccounting) != accountingVersion {
			return recount(tx)
		}
		return nil
	})
	if err != nil {
		_ = db.Close()
		return nil, fmt.Errorf("files: init: %w", err)
	}
	return &Store{dir: dir, db: db, quota: quota}, nil
}

// recount sets the counters and the index of unfilled chunks from the
// chunk records: once, for a store written by an earlier version (or a
// new one, which has no records).
func recount(tx *bolt.Tx) error {
	var used, n int64
	unfilled := tx.Bucket(bucketUnfilled)
	err := tx.Bucket(bucketChunks).ForEach(func(k, v []byte) error {
		c, err := unmarshalChunk(v)
		if err != nil {
			return err
		}
		used += c.cost()
		n++
		if !c.Uploaded && len(k) == len(SenderKey{}) {
			return unfilled.Put(expiryKey(c.Created, SenderKey(k)), nil)
		}
		return nil
	})
	if err != nil {
		return err
	}
	meta := tx.Bucket(bucketMeta)
	if err := meta.Delete(keyUsedV1); err != nil {
		return err
	}
	for _, kv := range []struct {
		k []byte
		v int64
	}{{keyBytes, used}, {keyCount, n}, {keyAccounting, accountingVersion}} {
		if err := meta.Put(kv.k, binary.BigEndian.AppendUint64(nil, uint64(kv.v))); err != nil {
			return err
		}
	}
	return nil
}

// Close closes the metadata file; the store's methods return ErrClosed
// from then on. Closing again does nothing.
func (s *Store) Close() error {
	s.closed.Store(true)
	return s.db.Close()
}

// view and batch run a bbolt transaction, as db.View and db.Batch; once
// the store is closed they return ErrClosed.
func (s *Store) view(fn func(*bolt.Tx) error) error { return closedErr(s.db.View(fn)) }

func (s *Store) batch(fn func(*bolt.Tx) error) error { return closedErr(s.db.Batch(fn)) }

func closedErr(err error) error {
	if errors.Is(err, berrors.ErrDatabaseNotOpen) {
		return ErrClosed
	}
	return err
}

// lockChunk takes the lock that serialises writing and deleting the
// chunk's file, then reads its record.
// The lock is released if the read fails or panics.
func (s *Store) lockChunk(k SenderKey) (c Chunk, unlock func(), err error) {
	mu := &s.locks[k[0]%lockStripes]
	mu.Lock()
	defer func() {
		if unlock == nil {
			mu.Unlock()
		}
	}()
	if c, err = s.BySender(k); err != nil {
		return c, nil, err
	}
	return c, mu.Unlock, nil
}

func (s *Store) path(c *Chunk) string { return ChunkPath(s.dir, &c.File) }

// ChunkPath is where the chunk folder dir keeps the bytes of the chunk
// whose file name is name: chunks/<first 2 hex digits>/<32 hex digits>.
func ChunkPath(dir string, name *[16]byte) string {
	h := hex.EncodeToString(name[:])
	return filepath.Join(dir, "chunks", h[:2], h)
}

func counter(tx *bolt.Tx, key []byte) int64 {
	if v := tx.Bucket(bucketMeta).Get(key); len(v) == 8 {
		return int64(binary.BigEndian.Uint64(v))
	}
	return 0
}

func addCounter(tx *bolt.Tx, key []byte, d int64) error {
	return tx.Bucket(bucketMeta).Put(key, binary.BigEndian.AppendUint64(nil, uint64(max(counter(tx, key)+d, 0))))
}

func getChunk(tx *bolt.Tx, k SenderKey) (Chunk, error) {
	v := tx.Bucket(bucketChunks).Get(k[:])
	if v == nil {
		return Chunk{}, ErrNotFound
	}
	return unmarshalChunk(v)
}

// Create stores a new chunk record and its recipients. It charges their
// MetadataCost against the quota (ErrQuota when it does not fit); the
// chunk's size is charged only by Put.
func (s *Store) Create(k SenderKey, c Chunk, rcpts map[RecipientKey]Recipient) error {
	if !c.Class.Valid() || len(rcpts) == 0 || len(rcpts) > wire.MaxChunkRecipients {
		return fmt.Errorf("files: bad chunk record")
	}
	if _, err := rand.Read(c.File[:]); err != nil {
		return fmt.Errorf("files: file name: %w", err)
	}
	if c.Created.IsZero() {
		c.Created = time.Now()
	}
	c.Uploaded, c.Digest, c.Remaining = false, [32]byte{}, len(rcpts)
	c.recipients = c.recipients[:0]
	for rk := range rcpts {
		c.recipients = append(c.recipients, rk)
	}
	cost := c.cost()
	return s.batch(func(tx *bolt.Tx) error {
		if counter(tx, keyBytes)+cost > s.quota {
			return ErrQuota
		}
		chunks, rs := tx.Bucket(bucketChunks), tx.Bucket(bucketRecipients)
		if chunks.Get(k[:]) != nil {
			return fmt.Errorf("files: chunk exists")
		}
		for rk, r := range rcpts {
			if rs.Get(rk[:]) != nil {
				return fmt.Errorf("files: recipient exists")
			}
			r.Chunk = k
			if err := rs.Put(rk[:], append(append(r.Chunk[:], r.Auth[:]...), r.BoxKey[:]...)); err != nil {
				return err
			}
		}
		if err := chunks.Put(k[:], c.marshal()); err != nil {
			return err
		}
		if err := tx.Bucket(bucketExpiry).Put(expiryKey(c.Created, k), nil); err != nil {
			return err
		}
		if err := tx.Bucket(bucketUnfilled).Put(expiryKey(c.Created, k), nil); err != nil {
			return err
		}
		if err := addCounter(tx, keyCount, 1); err != nil {
			return err
		}
		return addCounter(tx, keyBytes, cost)
	})
}

// BySender returns the chunk record of a sender key.
func (s *Store) BySender(k SenderKey) (Chunk, error) {
	var c Chunk
	err := s.view(func(tx *bolt.Tx) error {
		var err error
		c, err = getChunk(tx, k)
		return err
	})
	return c, err
}

// ByRecipient returns a recipient record and its chunk.
func (s *Store) ByRecipient(rk RecipientKey) (Recipient, Chunk, error) {
	var r Recipient
	var c Chunk
	err := s.view(func(tx *bolt.Tx) error {
		v := tx.Bucket(bucketRecipients).Get(rk[:])
		if len(v) != recipientSize {
			return ErrNotFound
		}
		copy(r.Chunk[:], v)
		copy(r.Auth[:], v[32:])
		copy(r.BoxKey[:], v[64:])
		var err error
		c, err = getChunk(tx, r.Chunk)
		return err
	})
	return r, c, err
}

// Put stores the chunk's bytes: written to a temporary file, fsynced and
// renamed into place (and the directory fsynced) before the record says
// Uploaded. The class size is charged against the quota in the same
// transaction (ErrQuota when it does not fit, and the file is removed).
// Putting the same bytes again succeeds (a retried upload); other bytes
// are ErrUploaded; a length other than the class size is ErrSize.
func (s *Store) Put(k SenderKey, data []byte) error {
	c, unlock, err := s.lockChunk(k)
	if err != nil {
		return err
	}
	defer unlock()
	if len(data) != c.Class.Size() {
		return ErrSize
	}
	digest := sha256.Sum256(data)
	if c.Uploaded {
		if subtle.ConstantTimeCompare(digest[:], c.Digest[:]) == 1 {
			return nil
		}
		return ErrUploaded
	}
	size := int64(c.Class.Size())
	// A first look spares writing a file that cannot fit; the
	// transaction below decides.
	if used, _, err := s.Usage(); err != nil {
		return err
	} else if used+size > s.quota {
		return ErrQuota
	}
	path := s.path(&c)
	if err := s.writeFile(path, data); err != nil {
		return err
	}
	err = s.batch(func(tx *bolt.Tx) error {
		c, err := getChunk(tx, k)
		if err != nil {
			return err
		}
		if counter(tx, keyBytes)+size > s.quota {
			return ErrQuota
		}
		c.Uploaded, c.Digest = true, digest
		if err := tx.Bucket(bucketChunks).Put(k[:], c.marshal()); err != nil {
			return err
		}
		if err := tx.Bucket(bucketUnfilled).Delete(expiryKey(c.Created, k)); err != nil {
			return err
		}
		return addCounter(tx, keyBytes, size)
	})
	if errors.Is(err, ErrQuota) {
		// Not recorded: the file goes (the chunk lock is held, so no
		// other Put of this chunk is writing it).
		_ = os.Remove(path)
	}
	return err
}

func (s *Store) writeFile(path string, data []byte) error {
	return WriteChunkFile(s.dir, path, data)
}

// WriteChunkFile writes a chunk's bytes to path, inside the chunk folder
// dir: to a temporary file in dir/tmp first, synced, then renamed, and
// the directory synced, so that path never holds a torn chunk. Both
// backends store chunk bytes this way.
func WriteChunkFile(dir, path string, data []byte) (err error) {
	parent := filepath.Dir(path)
	if err := os.MkdirAll(parent, 0o700); err != nil {
		return fmt.Errorf("files: %w", err)
	}
	f, err := os.CreateTemp(filepath.Join(dir, "tmp"), "up-")
	if err != nil {
		return fmt.Errorf("files: %w", err)
	}
	defer func() {
		if err != nil {
			_ = os.Remove(f.Name())
		}
	}()
	_, err = f.Write(data)
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Rename(f.Name(), path)
	}
	if err == nil {
		err = SyncDir(parent)
	}
	if err != nil {
		return fmt.Errorf("files: writing chunk: %w", err)
	}
	return nil
}

// SyncDir fsyncs a directory, so that a rename or removal in it is
// durable.
func SyncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	defer d.Close()
	return d.Sync()
}

// Read returns the stored bytes of an uploaded chunk after checking them
// against the digest taken at upload: a file changed on disk is
// ErrCorrupt, a chunk not uploaded yet is ErrNotReady.
func (s *Store) Read(c *Chunk) ([]byte, error) {
	if s.closed.Load() {
		return nil, ErrClosed
	}
	if !c.Uploaded {
		return nil, ErrNotReady
	}
	b, err := os.ReadFile(s.path(c))
	if errors.Is(err, fs.ErrNotExist) {
		return nil, ErrNotFound // deleted meanwhile
	} else if err != nil {
		return nil, fmt.Errorf("files: reading chunk: %w", err)
	}
	d := sha256.Sum256(b)
	if len(b) != c.Class.Size() || subtle.ConstantTimeCompare(d[:], c.Digest[:]) != 1 {
		return nil, ErrCorrupt
	}
	return b, nil
}

// Ack removes one recipient; the chunk is deleted with its last one. A
// chunk not uploaded yet is ErrNotReady and nothing changes: a recipient
// cannot have downloaded it.
func (s *Store) Ack(rk RecipientKey) error {
	var k SenderKey
	var last bool
	err := s.batch(func(tx *bolt.Tx) error {
		rs := tx.Bucket(bucketRecipients)
		v := rs.Get(rk[:])
		if len(v) != recipientSize {
			return ErrNotFound
		}
		copy(k[:], v)
		c, err := getChunk(tx, k)
		if err != nil {
			return err
		}
		if !c.Uploaded {
			return ErrNotReady
		}
		c.Remaining--
		last = c.Remaining <= 0
		if err := rs.Delete(rk[:]); err != nil {
			return err
		}
		return tx.Bucket(bucketChunks).Put(k[:], c.marshal())
	})
	if err != nil || !last {
		return err
	}
	// A crash before this leaves a record nobody can reach, which the
	// retention sweep deletes.
	if err := s.Delete(k); err != nil && !errors.Is(err, ErrNotFound) {
		return err
	}
	return nil
}

// Delete deletes a chunk: its file first, then its records, so that a
// crash in between leaves a record (swept at expiry), never an orphan
// file.
func (s *Store) Delete(k SenderKey) error {
	_, err := s.delete(k, false)
	return err
}

// errUploaded stops ExpireUnfilled's deletion of a chunk uploaded since
// it was listed.
var errUploaded = errors.New("files: uploaded meanwhile")

// delete deletes a chunk (only if it is not uploaded, when unfilled is
// set) and reports whether it did.
func (s *Store) delete(k SenderKey, unfilled bool) (bool, error) {
	c, unlock, err := s.lockChunk(k)
	if err != nil {
		return false, err
	}
	defer unlock()
	if unfilled && c.Uploaded {
		return false, nil
	}
	// An unfilled chunk can still have a file: a crash between its
	// rename and its record.
	if err := os.Remove(s.path(&c)); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return false, fmt.Errorf("files: removing chunk: %w", err)
	}
	err = s.batch(func(tx *bolt.Tx) error {
		c, err := getChunk(tx, k)
		if err != nil {
			return err
		}
		if unfilled && c.Uploaded {
			return errUploaded // cannot happen under the chunk lock
		}
		for _, rk := range c.recipients {
			if err := tx.Bucket(bucketRecipients).Delete(rk[:]); err != nil {
				return err
			}
		}
		ek := expiryKey(c.Created, k)
		if err := tx.Bucket(bucketExpiry).Delete(ek); err != nil {
			return err
		}
		if err := tx.Bucket(bucketUnfilled).Delete(ek); err != nil {
			return err
		}
		if err := tx.Bucket(bucketChunks).Delete(k[:]); err != nil {
			return err
		}
		if err := addCounter(tx, keyCount, -1); err != nil {
			return err
		}
		return addCounter(tx, keyBytes, -c.cost())
	})
	if errors.Is(err, errUploaded) {
		return false, nil
	}
	return err == nil, err
}

// Expire deletes up to limit chunks created before cutoff, oldest first,
// and returns how many it deleted. It walks the time-ordered expiry index
// and stops at the first chunk that is not due.
func (s *Store) Expire(cutoff time.Time, limit int) (int, error) {
	return s.expire(bucketExpiry, cutoff, limit, false)
}

// ExpireUnfilled deletes up to limit chunks created before cutoff and not
// uploaded, oldest first, and returns how many it deleted. It walks the
// time-ordered index of unfilled chunks, which uploads leave.
func (s *Store) ExpireUnfilled(cutoff time.Time, limit int) (int, error) {
	return s.expire(bucketUnfilled, cutoff, limit, true)
}

func (s *Store) expire(index []byte, cutoff time.Time, limit int, unfilled bool) (int, error) {
	var due [][]byte
	err := s.view(func(tx *bolt.Tx) error {
		c := tx.Bucket(index).Cursor()
		for ek, _ := c.First(); ek != nil && len(due) < limit; ek, _ = c.Next() {
			if len(ek) != 40 || int64(binary.BigEndian.Uint64(ek)) >= cutoff.Unix() {
				break
			}
			due = append(due, bytes.Clone(ek))
		}
		return nil
	})
	n := 0
	for _, ek := range due {
		if err != nil {
			break
		}
		var deleted bool
		switch deleted, err = s.delete(SenderKey(ek[8:]), unfilled); {
		case deleted:
			n++
		case errors.Is(err, ErrNotFound):
			// Deleted meanwhile; an index entry left without its chunk
			// (which no write leaves) must not stop later sweeps.
			err = s.batch(func(tx *bolt.Tx) error { return tx.Bucket(index).Delete(ek) })
		}
	}
	return n, err
}

// Usage returns the bytes charged against the quota (chunk bytes stored
// and the metadata of every chunk) and the number of chunks.
func (s *Store) Usage() (used, chunks int64, err error) {
	err = s.view(func(tx *bolt.Tx) error {
		used, chunks = counter(tx, keyBytes), counter(tx, keyCount)
		return nil
	})
	return used, chunks, err
}

// Quota returns the store's quota in bytes.
func (s *Store) Quota() int64 { return s.quota }
