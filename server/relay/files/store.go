package files

import (
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
	"time"

	"github.com/wisp-chat/wisp/server/wire"
	bolt "go.etcd.io/bbolt"
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
	Remaining  int
	file       [16]byte
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
	bucketMeta       = []byte("meta")
	keyUsed          = []byte("used")
	keyCount         = []byte("count")
)

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
	o += copy(b[o:], c.file[:])
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
	o += copy(c.file[:], b[o:])
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
type Store struct {
	dir   string
	db    *bolt.DB
	quota int64
	locks [lockStripes]sync.Mutex
}

// OpenStore opens or creates the store in dir (chunks.db, chunks/, tmp/).
// quota is the most chunk bytes the store holds. Nothing is loaded: only
// the temporary directory of interrupted uploads is emptied.
func OpenStore(dir string, quota int64) (*Store, error) {
	if quota <= 0 {
		return nil, fmt.Errorf("files: quota must be positive")
	}
	tmp := filepath.Join(dir, "tmp")
	if err := os.RemoveAll(tmp); err != nil {
		return nil, fmt.Errorf("files: clearing %s: %w", tmp, err)
	}
	for _, d := range []string{tmp, filepath.Join(dir, "chunks")} {
		if err := os.MkdirAll(d, 0o700); err != nil {
			return nil, fmt.Errorf("files: %w", err)
		}
	}
	db, err := bolt.Open(filepath.Join(dir, "chunks.db"), 0o600, &bolt.Options{Timeout: time.Second, FreelistType: bolt.FreelistMapType})
	if err != nil {
		return nil, fmt.Errorf("files: open: %w", err)
	}
	// Group commit: concurrent writers share one transaction and fsync.
	db.MaxBatchDelay = 2 * time.Millisecond
	err = db.Update(func(tx *bolt.Tx) error {
		for _, b := range [][]byte{bucketChunks, bucketRecipients, bucketExpiry, bucketMeta} {
			if _, err := tx.CreateBucketIfNotExists(b); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		_ = db.Close()
		return nil, fmt.Errorf("files: init: %w", err)
	}
	return &Store{dir: dir, db: db, quota: quota}, nil
}

// Close closes the metadata file.
func (s *Store) Close() error { return s.db.Close() }

// lockChunk takes the lock that serialises writing and deleting the
// chunk's file, then reads its record.
func (s *Store) lockChunk(k SenderKey) (Chunk, func(), error) {
	mu := &s.locks[k[0]%lockStripes]
	mu.Lock()
	c, err := s.BySender(k)
	if err != nil {
		mu.Unlock()
		return c, nil, err
	}
	return c, mu.Unlock, nil
}

func (s *Store) path(c *Chunk) string {
	h := hex.EncodeToString(c.file[:])
	return filepath.Join(s.dir, "chunks", h[:2], h)
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

// Create stores a new chunk record and its recipients, reserving the
// chunk's size against the quota (ErrQuota when it does not fit).
func (s *Store) Create(k SenderKey, c Chunk, rcpts map[RecipientKey]Recipient) error {
	if !c.Class.Valid() || len(rcpts) == 0 {
		return fmt.Errorf("files: bad chunk record")
	}
	if _, err := rand.Read(c.file[:]); err != nil {
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
	size := int64(c.Class.Size())
	return s.db.Batch(func(tx *bolt.Tx) error {
		if counter(tx, keyUsed)+size > s.quota {
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
		if err := addCounter(tx, keyCount, 1); err != nil {
			return err
		}
		return addCounter(tx, keyUsed, size)
	})
}

// BySender returns the chunk record of a sender key.
func (s *Store) BySender(k SenderKey) (Chunk, error) {
	var c Chunk
	err := s.db.View(func(tx *bolt.Tx) error {
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
	err := s.db.View(func(tx *bolt.Tx) error {
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
// Uploaded. Putting the same bytes again succeeds (a retried upload);
// other bytes are ErrUploaded; a length other than the class size is
// ErrSize.
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
	if err := s.writeFile(s.path(&c), data); err != nil {
		return err
	}
	return s.db.Batch(func(tx *bolt.Tx) error {
		c, err := getChunk(tx, k)
		if err != nil {
			return err
		}
		c.Uploaded, c.Digest = true, digest
		return tx.Bucket(bucketChunks).Put(k[:], c.marshal())
	})
}

func (s *Store) writeFile(path string, data []byte) (err error) {
	dir := filepath.Dir(path)
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return fmt.Errorf("files: %w", err)
	}
	f, err := os.CreateTemp(filepath.Join(s.dir, "tmp"), "up-")
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
		err = syncDir(dir)
	}
	if err != nil {
		return fmt.Errorf("files: writing chunk: %w", err)
	}
	return nil
}

func syncDir(dir string) error {
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

// Ack removes one recipient; the chunk is deleted with its last one.
func (s *Store) Ack(rk RecipientKey) error {
	var k SenderKey
	var last bool
	err := s.db.Batch(func(tx *bolt.Tx) error {
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
	c, unlock, err := s.lockChunk(k)
	if err != nil {
		return err
	}
	defer unlock()
	if err := os.Remove(s.path(&c)); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("files: removing chunk: %w", err)
	}
	return s.db.Batch(func(tx *bolt.Tx) error {
		c, err := getChunk(tx, k)
		if err != nil {
			return err
		}
		for _, rk := range c.recipients {
			if err := tx.Bucket(bucketRecipients).Delete(rk[:]); err != nil {
				return err
			}
		}
		if err := tx.Bucket(bucketExpiry).Delete(expiryKey(c.Created, k)); err != nil {
			return err
		}
		if err := tx.Bucket(bucketChunks).Delete(k[:]); err != nil {
			return err
		}
		if err := addCounter(tx, keyCount, -1); err != nil {
			return err
		}
		return addCounter(tx, keyUsed, -int64(c.Class.Size()))
	})
}

// Expire deletes up to limit chunks created before cutoff, oldest first,
// and returns how many it deleted. It walks the time-ordered expiry index
// and stops at the first chunk that is not due.
func (s *Store) Expire(cutoff time.Time, limit int) (int, error) {
	var due []SenderKey
	err := s.db.View(func(tx *bolt.Tx) error {
		c := tx.Bucket(bucketExpiry).Cursor()
		for ek, _ := c.First(); ek != nil && len(due) < limit; ek, _ = c.Next() {
			if len(ek) != 40 || int64(binary.BigEndian.Uint64(ek)) >= cutoff.Unix() {
				break
			}
			due = append(due, SenderKey(ek[8:]))
		}
		return nil
	})
	n := 0
	for _, k := range due {
		if err != nil {
			break
		}
		switch err = s.Delete(k); {
		case err == nil:
			n++
		case errors.Is(err, ErrNotFound):
			err = nil // deleted meanwhile
		}
	}
	return n, err
}

// Usage returns the bytes reserved by stored chunks and their number.
func (s *Store) Usage() (bytes, chunks int64, err error) {
	err = s.db.View(func(tx *bolt.Tx) error {
		bytes, chunks = counter(tx, keyUsed), counter(tx, keyCount)
		return nil
	})
	return bytes, chunks, err
}

// Quota returns the store's quota in bytes.
func (s *Store) Quota() int64 { return s.quota }
