// Package store is the relay's durable queue store: queue records,
// messages and a time-ordered retention index in one bbolt file.
//
// Open it once per data directory and share it between connections:
//
//	s, err := store.Open(filepath.Join(dir, "queues.db"))
//	defer s.Close()
//	key := store.RecipientKey(rcvID)
//	err = s.Create(key, store.SenderKey(sndID), store.Queue{RcvAuthKey: k, BoxKey: bk})
//	err = s.Put(key, msg, 128) // on disk (fsynced) when it returns nil
//	m, ok, err := s.Peek(key)
//
// Queues are addressed by the SHA-256 of their IDs with a domain prefix, so
// the file never holds a recipient or sender ID in clear. Nothing is loaded
// at start-up: records are read when a command needs them, so opening does
// not grow with the number of queues. Writes from all connections funnel
// through one committer goroutine that commits whatever is waiting in one
// transaction and one fsync (group commit). Expire walks the retention index
// in time order and stops at the first message that is not due, so a sweep
// never scans queues that have nothing to expire.
//
// Options.MaxBytes bounds the whole store (message bodies plus a fixed
// cost per queue and per message); Create and Put beyond it are ErrFull.
// A panic inside bbolt (a corrupt page) fails the operation with
// ErrPanic instead of ending the process.
package store

import (
	"crypto/sha256"
	"encoding/binary"
	"errors"
	"fmt"
	"time"

	"github.com/wisp-chat/wisp/server/wire"
	bolt "go.etcd.io/bbolt"
)

// Errors callers branch on.
var (
	ErrNotFound  = errors.New("store: queue not found")
	ErrExists    = errors.New("store: queue already exists")
	ErrSuspended = errors.New("store: queue suspended")
	ErrSecured   = errors.New("store: queue already secured with another key")
	ErrQuota     = errors.New("store: queue quota reached")
	ErrNoMsg     = errors.New("store: no such message at the head of the queue")
	// ErrFull: the store holds Options.MaxBytes; nothing more is stored
	// until messages are delivered or expire.
	ErrFull   = errors.New("store: relay storage full")
	ErrClosed = errors.New("store: closed")
)

// QueueKey is how a queue is addressed on disk: a hash of its recipient ID.
type QueueKey [32]byte

// SenderKey is the on-disk index key of a queue's sender ID.
type SenderKey [32]byte

// RecipientKey derives the queue key from the recipient ID.
func RecipientKey(id wire.QueueID) QueueKey {
	return sha256.Sum256(append([]byte("wisp rcv\x00"), id[:]...))
}

// SenderKeyOf derives the sender index key from the sender ID.
func SenderKeyOf(id wire.QueueID) SenderKey {
	return sha256.Sum256(append([]byte("wisp snd\x00"), id[:]...))
}

// Queue is a queue record.
type Queue struct {
	RcvAuthKey [wire.KeySize]byte // recipient's Ed25519 key
	SndAuthKey [wire.KeySize]byte // sender's Ed25519 key, once Secured
	Secured    bool
	Suspended  bool
	BoxKey     [32]byte // precomputed relay↔recipient box key
	Created    time.Time
	// Count is the number of stored messages, the quota marker excluded.
	Count  uint32
	marker bool
	sender SenderKey
	next   uint64
}

// Message is a stored message.
type Message struct {
	ID    wire.MsgID
	Time  time.Time
	Quota bool
	Body  []byte
}

var (
	bucketQueues  = []byte("queues")
	bucketSenders = []byte("senders")
	bucketMsgs    = []byte("msgs")
	bucketExpiry  = []byte("expiry")
	bucketMeta    = []byte("meta")
	keyQueueCount = []byte("queues")
	keyMsgCount   = []byte("messages")
	keyBytes      = []byte("bytes")
)

const (
	recordVersion = 1
	recordSize    = 2 + 3*32 + 32 + 8 + 8 + 4
	flagSecured   = 1
	flagSuspended = 2
	flagMarker    = 4
	msgHeader     = wire.IDSize + 8 + 1
	// maxGroup bounds how many writes share one transaction.
	maxGroup = 512
)

// QueueCost and MsgCost are what a queue and a message count against
// Options.MaxBytes besides the message body (SPEC §8: 246 and 121
// bytes, the bbolt record, its keys and its index entries). Every
// backend counts the same, so one -max-store-bytes means the same.
const (
	QueueCost = recordSize + 32 + 2*32
	MsgCost   = msgHeader + 40 + 48
)

func (q *Queue) marshal() []byte {
	b := make([]byte, recordSize)
	b[0] = recordVersion
	if q.Secured {
		b[1] |= flagSecured
	}
	if q.Suspended {
		b[1] |= flagSuspended
	}
	if q.marker {
		b[1] |= flagMarker
	}
	o := 2
	o += copy(b[o:], q.RcvAuthKey[:])
	o += copy(b[o:], q.SndAuthKey[:])
	o += copy(b[o:], q.BoxKey[:])
	o += copy(b[o:], q.sender[:])
	binary.BigEndian.PutUint64(b[o:], uint64(q.Created.Unix()))
	binary.BigEndian.PutUint64(b[o+8:], q.next)
	binary.BigEndian.PutUint32(b[o+16:], q.Count)
	return b
}

func unmarshalQueue(b []byte) (Queue, error) {
	var q Queue
	if len(b) != recordSize || b[0] != recordVersion {
		return q, fmt.Errorf("store: corrupt queue record")
	}
	q.Secured = b[1]&flagSecured != 0
	q.Suspended = b[1]&flagSuspended != 0
	q.marker = b[1]&flagMarker != 0
	o := 2
	o += copy(q.RcvAuthKey[:], b[o:])
	o += copy(q.SndAuthKey[:], b[o:])
	o += copy(q.BoxKey[:], b[o:])
	o += copy(q.sender[:], b[o:])
	q.Created = time.Unix(int64(binary.BigEndian.Uint64(b[o:])), 0)
	q.next = binary.BigEndian.Uint64(b[o+8:])
	q.Count = binary.BigEndian.Uint32(b[o+16:])
	return q, nil
}

func msgKey(k QueueKey, seq uint64) []byte {
	b := make([]byte, 40)
	copy(b, k[:])
	binary.BigEndian.PutUint64(b[32:], seq)
	return b
}

func expiryKey(ts int64, mk []byte) []byte {
	b := make([]byte, 8+40)
	binary.BigEndian.PutUint64(b, uint64(ts))
	copy(b[8:], mk)
	return b
}

func marshalMsg(m *Message) []byte {
	b := make([]byte, msgHeader+len(m.Body))
	copy(b, m.ID[:])
	binary.BigEndian.PutUint64(b[wire.IDSize:], uint64(m.Time.Unix()))
	if m.Quota {
		b[wire.IDSize+8] = 1
	}
	copy(b[msgHeader:], m.Body)
	return b
}

func unmarshalMsg(b []byte) (Message, error) {
	if len(b) < msgHeader {
		return Message{}, fmt.Errorf("store: corrupt message record")
	}
	var m Message
	copy(m.ID[:], b)
	m.Time = time.Unix(int64(binary.BigEndian.Uint64(b[wire.IDSize:])), 0)
	m.Quota = b[wire.IDSize+8] == 1
	m.Body = append([]byte(nil), b[msgHeader:]...)
	return m, nil
}

// Options configure a Store.
type Options struct {
	// MaxBytes bounds what the store holds: message bodies plus a fixed
	// cost per queue and per message (QueueCost, MsgCost). Create and Put
	// beyond it return ErrFull. Zero means no bound.
	MaxBytes int64
}

// Store is the bbolt-backed queue store. It is safe for concurrent use.
type Store struct {
	opts Options
	db   *bolt.DB
	ops  chan *op
	done chan struct{}
	quit chan struct{}
}

type op struct {
	fn  func(tx *bolt.Tx) error
	err chan error
}

// ErrPanic wraps a panic inside the storage engine (a corrupt file): the
// command fails and the process goes on.
var ErrPanic = errors.New("store: storage engine panicked (corrupt file?)")

// guard turns a panic in fn into ErrPanic. bbolt rolls back the
// transaction of a panicking Update or View itself.
func guard(fn func() error) (err error) {
	defer func() {
		if r := recover(); r != nil {
			err = fmt.Errorf("%w: %v", ErrPanic, r)
		}
	}()
	return fn()
}

func (s *Store) view(fn func(tx *bolt.Tx) error) error {
	return guard(func() error { return s.db.View(fn) })
}

// errLogical marks errors an op returns without aborting the transaction.
type errLogical struct{ err error }

func (e errLogical) Error() string { return e.err.Error() }
func (e errLogical) Unwrap() error { return e.err }

// Open opens or creates the store file with no size bound.
func Open(path string) (*Store, error) {
	return OpenWith(path, Options{})
}

// OpenWith opens or creates the store file.
func OpenWith(path string, opts Options) (*Store, error) {
	db, err := bolt.Open(path, 0o600, &bolt.Options{
		Timeout:      time.Second,
		FreelistType: bolt.FreelistMapType,
	})
	if err != nil {
		return nil, fmt.Errorf("store: open: %w", err)
	}
	err = db.Update(func(tx *bolt.Tx) error {
		for _, b := range [][]byte{bucketQueues, bucketSenders, bucketMsgs, bucketExpiry, bucketMeta} {
			if _, err := tx.CreateBucketIfNotExists(b); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		_ = db.Close()
		return nil, fmt.Errorf("store: init: %w", err)
	}
	s := &Store{opts: opts, db: db, ops: make(chan *op, maxGroup), done: make(chan struct{}), quit: make(chan struct{})}
	go s.commit()
	return s, nil
}

// Close stops the committer, waiting for queued writes, and closes the file.
func (s *Store) Close() error {
	select {
	case <-s.quit:
		return ErrClosed
	default:
	}
	close(s.quit)
	<-s.done
	return s.db.Close()
}

// commit runs every write: it takes the first waiting op, then whatever
// else is already waiting (up to maxGroup), and commits them in one
// transaction, so concurrent writers share one fsync.
func (s *Store) commit() {
	defer close(s.done)
	group := make([]*op, 0, maxGroup)
	for {
		var first *op
		select {
		case first = <-s.ops:
		case <-s.quit:
			for {
				select {
				case o := <-s.ops:
					o.err <- ErrClosed
				default:
					return
				}
			}
		}
		group = append(group[:0], first)
	drain:
		for len(group) < maxGroup {
			select {
			case o := <-s.ops:
				group = append(group, o)
			default:
				break drain
			}
		}
		results := make([]error, len(group))
		err := guard(func() error {
			return s.db.Update(func(tx *bolt.Tx) error {
				for i, o := range group {
					if err := o.fn(tx); err != nil {
						var l errLogical
						if !errors.As(err, &l) {
							return err
						}
						results[i] = l.err
					}
				}
				return nil
			})
		})
		for i, o := range group {
			if err != nil {
				o.err <- fmt.Errorf("store: commit: %w", err)
			} else {
				o.err <- results[i]
			}
		}
	}
}

func (s *Store) write(fn func(tx *bolt.Tx) error) error {
	return s.writeQueued(fn, nil)
}

// writeQueued is write that calls queued (when not nil) once the op has
// its place in the committer's order: ops queued one after another are
// applied in that order, whether or not they share a commit.
func (s *Store) writeQueued(fn func(tx *bolt.Tx) error, queued func()) error {
	o := &op{fn: fn, err: make(chan error, 1)}
	select {
	case <-s.quit:
		return ErrClosed
	default:
	}
	select {
	case s.ops <- o:
		if queued != nil {
			queued()
		}
	case <-s.quit:
		return ErrClosed
	}
	select {
	case err := <-o.err:
		return err
	case <-s.done:
		// The committer has stopped; it answered o if it saw it.
		select {
		case err := <-o.err:
			return err
		default:
			return ErrClosed
		}
	}
}

func getQueue(tx *bolt.Tx, k QueueKey) (Queue, error) {
	v := tx.Bucket(bucketQueues).Get(k[:])
	if v == nil {
		return Queue{}, errLogical{ErrNotFound}
	}
	return unmarshalQueue(v)
}

func putQueue(tx *bolt.Tx, k QueueKey, q *Queue) error {
	return tx.Bucket(bucketQueues).Put(k[:], q.marshal())
}

func counter(tx *bolt.Tx, key []byte) int64 {
	if v := tx.Bucket(bucketMeta).Get(key); len(v) == 8 {
		return int64(binary.BigEndian.Uint64(v))
	}
	return 0
}

func addCounter(tx *bolt.Tx, key []byte, d int64) error {
	var out [8]byte
	binary.BigEndian.PutUint64(out[:], uint64(max(counter(tx, key)+d, 0)))
	return tx.Bucket(bucketMeta).Put(key, out[:])
}

// reserve counts n more bytes against MaxBytes, or returns ErrFull.
func (s *Store) reserve(tx *bolt.Tx, n int64) error {
	if s.opts.MaxBytes > 0 && counter(tx, keyBytes)+n > s.opts.MaxBytes {
		return errLogical{ErrFull}
	}
	return addCounter(tx, keyBytes, n)
}

// Create stores a new queue. Created is set if zero.
func (s *Store) Create(k QueueKey, snd SenderKey, q Queue) error {
	if q.Created.IsZero() {
		q.Created = time.Now()
	}
	q.sender, q.next, q.Count, q.marker = snd, 0, 0, false
	return s.write(func(tx *bolt.Tx) error {
		qs, ss := tx.Bucket(bucketQueues), tx.Bucket(bucketSenders)
		if qs.Get(k[:]) != nil || ss.Get(snd[:]) != nil {
			return errLogical{ErrExists}
		}
		if err := s.reserve(tx, QueueCost); err != nil {
			return err
		}
		if err := ss.Put(snd[:], k[:]); err != nil {
			return err
		}
		if err := putQueue(tx, k, &q); err != nil {
			return err
		}
		return addCounter(tx, keyQueueCount, 1)
	})
}

// Get returns a queue record.
func (s *Store) Get(k QueueKey) (Queue, error) {
	var q Queue
	err := s.view(func(tx *bolt.Tx) error {
		var err error
		q, err = getQueue(tx, k)
		return err
	})
	return q, unwrapLogical(err)
}

// BySender returns the queue a sender ID points to.
func (s *Store) BySender(snd SenderKey) (QueueKey, Queue, error) {
	var k QueueKey
	var q Queue
	err := s.view(func(tx *bolt.Tx) error {
		v := tx.Bucket(bucketSenders).Get(snd[:])
		if len(v) != len(k) {
			return errLogical{ErrNotFound}
		}
		copy(k[:], v)
		var err error
		q, err = getQueue(tx, k)
		return err
	})
	return k, q, unwrapLogical(err)
}

func unwrapLogical(err error) error {
	var l errLogical
	if errors.As(err, &l) {
		return l.err
	}
	return err
}

// update changes a queue record inside the group commit.
func (s *Store) update(k QueueKey, change func(q *Queue) error) error {
	return s.write(func(tx *bolt.Tx) error {
		q, err := getQueue(tx, k)
		if err != nil {
			return err
		}
		if err := change(&q); err != nil {
			return errLogical{err}
		}
		return putQueue(tx, k, &q)
	})
}

// Secure sets the sender key. Securing again with the same key succeeds
// (a retried SKEY); with another key it is ErrSecured.
func (s *Store) Secure(k QueueKey, sndAuth [wire.KeySize]byte) error {
	return s.update(k, func(q *Queue) error {
		switch {
		case q.Suspended:
			return ErrSuspended
		case q.Secured && q.SndAuthKey != sndAuth:
			return ErrSecured
		}
		q.Secured, q.SndAuthKey = true, sndAuth
		return nil
	})
}

// Suspend stops the queue from accepting messages; the recipient can still
// drain and delete it.
func (s *Store) Suspend(k QueueKey) error {
	return s.update(k, func(q *Queue) error {
		q.Suspended = true
		return nil
	})
}

// Delete removes a queue and all its messages.
func (s *Store) Delete(k QueueKey) error {
	return s.write(func(tx *bolt.Tx) error {
		q, err := getQueue(tx, k)
		if err != nil {
			return err
		}
		msgs, exp := tx.Bucket(bucketMsgs), tx.Bucket(bucketExpiry)
		c := msgs.Cursor()
		n, size := int64(0), int64(QueueCost)
		for mk, v := c.Seek(k[:]); mk != nil && [32]byte(mk[:32]) == k; mk, v = c.Seek(k[:]) {
			m, err := unmarshalMsg(v)
			if err != nil {
				return err
			}
			if err := exp.Delete(expiryKey(m.Time.Unix(), mk)); err != nil {
				return err
			}
			if err := c.Delete(); err != nil {
				return err
			}
			n++
			size += MsgCost + int64(len(m.Body))
		}
		if err := tx.Bucket(bucketSenders).Delete(q.sender[:]); err != nil {
			return err
		}
		if err := tx.Bucket(bucketQueues).Delete(k[:]); err != nil {
			return err
		}
		if err := addCounter(tx, keyMsgCount, -n); err != nil {
			return err
		}
		if err := addCounter(tx, keyBytes, -size); err != nil {
			return err
		}
		return addCounter(tx, keyQueueCount, -1)
	})
}

// Put appends a message; it is fsynced when Put returns nil. If the queue
// already holds quota messages, Put stores the quota marker (once) and
// returns ErrQuota; while the marker is stored, every Put returns
// ErrQuota, so the queue takes messages again only after the recipient
// has acknowledged the marker. A store holding Options.MaxBytes returns
// ErrFull.
func (s *Store) Put(k QueueKey, m Message, quota uint32) error {
	return s.PutQueued(k, m, quota, nil)
}

// PutQueued is Put that calls queued (when not nil) once the message has
// its place in the store's order: a Put to the same queue that starts
// after queued was called stores its message after this one.
func (s *Store) PutQueued(k QueueKey, m Message, quota uint32, queued func()) error {
	return s.writeQueued(func(tx *bolt.Tx) error {
		q, err := getQueue(tx, k)
		if err != nil {
			return err
		}
		if q.Suspended {
			return errLogical{ErrSuspended}
		}
		if q.marker {
			return errLogical{ErrQuota}
		}
		full := q.Count >= quota
		if full {
			m = Message{ID: m.ID, Time: m.Time, Quota: true}
			q.marker = true
		}
		if err := s.reserve(tx, MsgCost+int64(len(m.Body))); err != nil {
			return err
		}
		if !full {
			q.Count++
		}
		mk := msgKey(k, q.next)
		q.next++
		if err := tx.Bucket(bucketMsgs).Put(mk, marshalMsg(&m)); err != nil {
			return err
		}
		if err := tx.Bucket(bucketExpiry).Put(expiryKey(m.Time.Unix(), mk), nil); err != nil {
			return err
		}
		if err := putQueue(tx, k, &q); err != nil {
			return err
		}
		if err := addCounter(tx, keyMsgCount, 1); err != nil {
			return err
		}
		if full {
			return errLogical{ErrQuota}
		}
		return nil
	}, queued)
}

func head(tx *bolt.Tx, k QueueKey) ([]byte, []byte) {
	mk, v := tx.Bucket(bucketMsgs).Cursor().Seek(k[:])
	if mk == nil || [32]byte(mk[:32]) != k {
		return nil, nil
	}
	return mk, v
}

// Peek returns the oldest message of a queue, if any.
func (s *Store) Peek(k QueueKey) (Message, bool, error) {
	var m Message
	var ok bool
	err := s.view(func(tx *bolt.Tx) error {
		_, v := head(tx, k)
		if v == nil {
			return nil
		}
		var err error
		m, err = unmarshalMsg(v)
		ok = err == nil
		return err
	})
	return m, ok, err
}

// Ack deletes the oldest message if its ID is id, and returns the next one.
func (s *Store) Ack(k QueueKey, id wire.MsgID) (Message, bool, error) {
	var next Message
	var ok bool
	err := s.write(func(tx *bolt.Tx) error {
		q, err := getQueue(tx, k)
		if err != nil {
			return err
		}
		mk, v := head(tx, k)
		if v == nil {
			return errLogical{ErrNoMsg}
		}
		m, err := unmarshalMsg(v)
		if err != nil {
			return err
		}
		if m.ID != id {
			return errLogical{ErrNoMsg}
		}
		if err := removeMsg(tx, &q, mk, &m); err != nil {
			return err
		}
		if err := putQueue(tx, k, &q); err != nil {
			return err
		}
		if _, v := head(tx, k); v != nil {
			next, err = unmarshalMsg(v)
			ok = err == nil
			return err
		}
		return nil
	})
	return next, ok, err
}

func removeMsg(tx *bolt.Tx, q *Queue, mk []byte, m *Message) error {
	if m.Quota {
		q.marker = false
	} else if q.Count > 0 {
		q.Count--
	}
	if err := tx.Bucket(bucketExpiry).Delete(expiryKey(m.Time.Unix(), mk)); err != nil {
		return err
	}
	if err := tx.Bucket(bucketMsgs).Delete(mk); err != nil {
		return err
	}
	if err := addCounter(tx, keyBytes, -(MsgCost + int64(len(m.Body)))); err != nil {
		return err
	}
	return addCounter(tx, keyMsgCount, -1)
}

// Expire deletes up to limit messages stored before cutoff, oldest first,
// and returns how many it deleted.
func (s *Store) Expire(cutoff time.Time, limit int) (int, error) {
	n := 0
	err := s.write(func(tx *bolt.Tx) error {
		n = 0
		c := tx.Bucket(bucketExpiry).Cursor()
		for ek, _ := c.First(); ek != nil && n < limit; ek, _ = c.First() {
			if len(ek) != 48 || int64(binary.BigEndian.Uint64(ek)) >= cutoff.Unix() {
				break
			}
			mk := ek[8:]
			var k QueueKey
			copy(k[:], mk)
			v := tx.Bucket(bucketMsgs).Get(mk)
			q, qerr := getQueue(tx, k)
			if v == nil || qerr != nil {
				if err := c.Delete(); err != nil {
					return err
				}
				continue
			}
			m, err := unmarshalMsg(v)
			if err != nil {
				return err
			}
			if err := removeMsg(tx, &q, append([]byte(nil), mk...), &m); err != nil {
				return err
			}
			if err := putQueue(tx, k, &q); err != nil {
				return err
			}
			n++
		}
		return nil
	})
	return n, err
}

// Counts returns the number of queues and stored messages.
func (s *Store) Counts() (queues, messages int64, err error) {
	err = s.view(func(tx *bolt.Tx) error {
		b := tx.Bucket(bucketMeta)
		if v := b.Get(keyQueueCount); len(v) == 8 {
			queues = int64(binary.BigEndian.Uint64(v))
		}
		if v := b.Get(keyMsgCount); len(v) == 8 {
			messages = int64(binary.BigEndian.Uint64(v))
		}
		return nil
	})
	return queues, messages, err
}

// Bytes returns what the store counts against Options.MaxBytes.
func (s *Store) Bytes() (int64, error) {
	var n int64
	err := s.view(func(tx *bolt.Tx) error {
		n = counter(tx, keyBytes)
		return nil
	})
	return n, err
}
