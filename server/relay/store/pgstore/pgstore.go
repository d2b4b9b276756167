// Package pgstore is the relay's queue store on PostgreSQL, for one relay
// address served by several relay processes (behind a TCP load balancer)
// that share one database. It implements store.Backend with the bbolt
// store's semantics (the same conformance suite, package storetest, runs
// against both) and store.Shared, through which the processes tell each
// other what changed with LISTEN/NOTIFY.
//
//	s, err := pgstore.Open(ctx, "postgres://wisp@db.internal/wisp", store.Options{MaxBytes: 8 << 30})
//	defer s.Close()
//	id, err := s.Identity(newKey) // the relay identity all processes share
//	srv, err := relay.New(relay.Config{Identity: id, Store: s, ...})
//
// Open creates the tables when they are missing (SPEC.md in this folder
// lists them). As in the bbolt store, queues are addressed by hashes of
// their IDs, so the database never holds a queue ID in clear, and
// nothing about a client's network address is stored. Message bodies are
// stored uncompressed (they are ciphertext).
//
// Every change that another process may need to act on (a message
// stored, a message acknowledged, a queue subscribed or deleted) sends a
// notification on the channel "wisp_relay" inside the same transaction,
// so it is delivered when, and only if, the change commits.
package pgstore

import (
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"math/big"
	"slices"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/wisp-chat/wisp/server/relay/store"
	"github.com/wisp-chat/wisp/server/wire"
)

// Channel is the LISTEN/NOTIFY channel of the relay processes.
const Channel = "wisp_relay"

// shards is the number of usage counter rows: each transaction updates
// one, at random, so that writers do not queue on one row lock.
const shards = 16

// opTimeout bounds one store operation, so that a database outage turns
// into errors (INTERNAL for the client) rather than hung commands.
const opTimeout = 10 * time.Second

// schemaLock is the advisory lock key that serialises schema creation
// between processes starting at once ("wisp" in ASCII).
const schemaLock = 0x77697370

const schema = `
CREATE TABLE IF NOT EXISTS wisp_queues (
	key       bytea PRIMARY KEY,
	sender    bytea NOT NULL UNIQUE,
	rcv_auth  bytea NOT NULL,
	snd_auth  bytea NOT NULL,
	box_key   bytea NOT NULL,
	secured   boolean NOT NULL,
	suspended boolean NOT NULL,
	marker    boolean NOT NULL,
	created   bigint NOT NULL,
	next_seq  bigint NOT NULL,
	count     integer NOT NULL,
	sub_epoch bigint NOT NULL
);
CREATE TABLE IF NOT EXISTS wisp_messages (
	queue bytea NOT NULL,
	seq   bigint NOT NULL,
	id    bytea NOT NULL,
	ts    bigint NOT NULL,
	quota boolean NOT NULL,
	body  bytea NOT NULL,
	PRIMARY KEY (queue, seq)
);
ALTER TABLE wisp_messages ALTER COLUMN body SET STORAGE EXTERNAL;
CREATE INDEX IF NOT EXISTS wisp_messages_ts ON wisp_messages (ts);
CREATE TABLE IF NOT EXISTS wisp_usage (
	shard    integer PRIMARY KEY,
	bytes    bigint NOT NULL,
	queues   bigint NOT NULL,
	messages bigint NOT NULL
);
INSERT INTO wisp_usage SELECT g, 0, 0, 0 FROM generate_series(0, 15) g ON CONFLICT DO NOTHING;
CREATE OR REPLACE FUNCTION wisp_put(p_key bytea, p_id bytea, p_ts bigint, p_body bytea, p_quota integer,
		p_max bigint, p_cost bigint, p_shard integer, p_channel text, p_payload text) RETURNS integer AS $$
	DECLARE
		q record;
		is_full boolean;
		size bigint;
		used bigint;
	BEGIN
		SELECT suspended, marker, count, next_seq INTO q FROM wisp_queues WHERE key = p_key FOR UPDATE;
		IF NOT FOUND THEN RETURN 1; END IF;
		IF q.suspended THEN RETURN 2; END IF;
		IF q.marker THEN RETURN 3; END IF;
		is_full := q.count >= p_quota;
		IF is_full THEN p_body := ''::bytea; END IF;
		size := p_cost + octet_length(p_body);
		IF p_max > 0 THEN
			SELECT coalesce(sum(bytes), 0) INTO used FROM wisp_usage;
			IF used + size > p_max THEN RETURN 4; END IF;
		END IF;
		INSERT INTO wisp_messages (queue, seq, id, ts, quota, body) VALUES (p_key, q.next_seq, p_id, p_ts, is_full, p_body);
		UPDATE wisp_queues SET next_seq = next_seq + 1, count = count + CASE WHEN is_full THEN 0 ELSE 1 END, marker = is_full
			WHERE key = p_key;
		UPDATE wisp_usage SET bytes = bytes + size, messages = messages + 1 WHERE shard = p_shard;
		PERFORM pg_notify(p_channel, p_payload);
		IF is_full THEN RETURN 3; END IF;
		RETURN 0;
	END
$$ LANGUAGE plpgsql;
CREATE OR REPLACE FUNCTION wisp_ack(p_key bytea, p_id bytea, p_cost bigint, p_shard integer, p_channel text, p_payload text,
		OUT res integer, OUT next_id bytea, OUT next_ts bigint, OUT next_quota boolean, OUT next_body bytea) AS $$
	DECLARE
		h record;
	BEGIN
		PERFORM 1 FROM wisp_queues WHERE key = p_key FOR UPDATE;
		IF NOT FOUND THEN res := 1; RETURN; END IF;
		SELECT seq, id, quota, octet_length(body) AS len INTO h FROM wisp_messages WHERE queue = p_key ORDER BY seq LIMIT 1;
		IF NOT FOUND OR h.id <> p_id THEN res := 5; RETURN; END IF;
		DELETE FROM wisp_messages WHERE queue = p_key AND seq = h.seq;
		UPDATE wisp_queues SET count = greatest(count - CASE WHEN h.quota THEN 0 ELSE 1 END, 0), marker = marker AND NOT h.quota
			WHERE key = p_key;
		UPDATE wisp_usage SET bytes = bytes - (p_cost + h.len), messages = messages - 1 WHERE shard = p_shard;
		PERFORM pg_notify(p_channel, p_payload);
		res := 0;
		SELECT id, ts, quota, body INTO next_id, next_ts, next_quota, next_body
			FROM wisp_messages WHERE queue = p_key ORDER BY seq LIMIT 1;
	END
$$ LANGUAGE plpgsql;
CREATE TABLE IF NOT EXISTS wisp_identity (
	one  boolean PRIMARY KEY CHECK (one),
	seed bytea NOT NULL CHECK (octet_length(seed) = 32)
);
`

// Store is the PostgreSQL queue store. It is safe for concurrent use.
type Store struct {
	pool   *pgxpool.Pool
	cfg    *pgx.ConnConfig
	opts   store.Options
	origin string // this process's tag on its notifications
	closed atomic.Bool
	ctx    context.Context
	cancel context.CancelFunc
	mu     sync.Mutex // guards listening
	listen bool
}

var (
	_ store.Backend = (*Store)(nil)
	_ store.Shared  = (*Store)(nil)
)

// ErrCorrupt is a row that does not have the shape the store writes.
var ErrCorrupt = errors.New("pgstore: corrupt row")

// Open connects to the database at dsn (a postgres:// URL or key=value
// string), creates the tables when missing, and returns the store.
func Open(ctx context.Context, dsn string, opts store.Options) (*Store, error) {
	pcfg, err := pgxpool.ParseConfig(dsn)
	if err != nil {
		return nil, fmt.Errorf("pgstore: %w", err)
	}
	if pcfg.ConnConfig.ConnectTimeout == 0 {
		pcfg.ConnConfig.ConnectTimeout = 5 * time.Second
	}
	if pcfg.MaxConns < 16 {
		pcfg.MaxConns = 16
	}
	pool, err := pgxpool.NewWithConfig(ctx, pcfg)
	if err != nil {
		return nil, fmt.Errorf("pgstore: %w", err)
	}
	err = pgx.BeginFunc(ctx, pool, func(tx pgx.Tx) error {
		if _, err := tx.Exec(ctx, "SELECT pg_advisory_xact_lock($1)", int64(schemaLock)); err != nil {
			return err
		}
		_, err := tx.Exec(ctx, schema)
		return err
	})
	if err != nil {
		pool.Close()
		return nil, fmt.Errorf("pgstore: creating tables: %w", err)
	}
	var tag [8]byte
	_, _ = rand.Read(tag[:])
	sctx, cancel := context.WithCancel(context.Background())
	return &Store{pool: pool, cfg: pcfg.ConnConfig, opts: opts, origin: hex.EncodeToString(tag[:]), ctx: sctx, cancel: cancel}, nil
}

// Close closes the connections; Events returns.
func (s *Store) Close() error {
	if s.closed.Swap(true) {
		return store.ErrClosed
	}
	s.cancel()
	s.pool.Close()
	return nil
}

// op returns a context for one operation, or ErrClosed.
func (s *Store) op() (context.Context, context.CancelFunc, error) {
	if s.closed.Load() {
		return nil, nil, store.ErrClosed
	}
	ctx, cancel := context.WithTimeout(s.ctx, opTimeout)
	return ctx, cancel, nil
}

// fail wraps a database error; after Close it is ErrClosed.
func (s *Store) fail(what string, err error) error {
	if s.closed.Load() {
		return store.ErrClosed
	}
	if lost(err) {
		// The other pooled connections died with this one (a database
		// restart, a network cut): drop them all rather than let each
		// fail one more command.
		s.pool.Reset()
	}
	return fmt.Errorf("pgstore: %s: %w", what, err)
}

// lost reports whether err is a lost connection or a server going away,
// rather than a statement that failed.
func lost(err error) bool {
	var pe *pgconn.PgError
	if errors.As(err, &pe) {
		// admin_shutdown, crash_shutdown, cannot_connect_now
		return pe.Code == "57P01" || pe.Code == "57P02" || pe.Code == "57P03"
	}
	return err != nil && !isLogical(err) && !errors.Is(err, ErrCorrupt) &&
		!errors.Is(err, context.Canceled) && !errors.Is(err, context.DeadlineExceeded)
}

// tx runs fn in a transaction, mapping errors: the store's sentinel
// errors come back as they are (the transaction rolled back), the
// database's wrapped.
func (s *Store) tx(what string, fn func(ctx context.Context, tx pgx.Tx) error) error {
	ctx, cancel, err := s.op()
	if err != nil {
		return err
	}
	defer cancel()
	// One more try when the transaction could not even begin on a
	// connection the pool still held from before an outage: nothing was
	// done, so nothing is done twice.
	for try := 0; ; try++ {
		began := false
		err = pgx.BeginFunc(ctx, s.pool, func(tx pgx.Tx) error {
			began = true
			return fn(ctx, tx)
		})
		if err == nil || isLogical(err) {
			return err
		}
		err = s.fail(what, err)
		if began || try > 0 || !lost(err) || s.closed.Load() {
			return err
		}
	}
}

func isLogical(err error) bool {
	for _, e := range []error{store.ErrNotFound, store.ErrExists, store.ErrSuspended, store.ErrSecured, store.ErrQuota, store.ErrNoMsg, store.ErrFull} {
		if err == e {
			return true
		}
	}
	return false
}

func shard() int {
	n, _ := rand.Int(rand.Reader, big.NewInt(shards))
	return int(n.Int64())
}

// notify queues a notification in tx, delivered at commit.
func (s *Store) notify(b *pgx.Batch, kind byte, k store.QueueKey, extra string) {
	b.Queue("SELECT pg_notify($1, $2)", Channel, s.origin+string(kind)+hex.EncodeToString(k[:])+extra)
}

// reserve checks that n more bytes fit under MaxBytes. Concurrent
// writers check before they add, so the bound can be passed by at most
// what the transactions in flight at that moment add.
func (s *Store) reserve(ctx context.Context, tx pgx.Tx, n int64) error {
	if s.opts.MaxBytes <= 0 {
		return nil
	}
	var used int64
	if err := tx.QueryRow(ctx, "SELECT coalesce(sum(bytes), 0)::bigint FROM wisp_usage").Scan(&used); err != nil {
		return err
	}
	if used+n > s.opts.MaxBytes {
		return store.ErrFull
	}
	return nil
}

func usage(b *pgx.Batch, bytes, queues, msgs int64) {
	b.Queue("UPDATE wisp_usage SET bytes = bytes + $1, queues = queues + $2, messages = messages + $3 WHERE shard = $4", bytes, queues, msgs, shard())
}

func sendBatch(ctx context.Context, tx pgx.Tx, b *pgx.Batch) error {
	return tx.SendBatch(ctx, b).Close()
}

// Create stores a new queue. Created is set if zero.
func (s *Store) Create(k store.QueueKey, snd store.SenderKey, q store.Queue) error {
	if q.Created.IsZero() {
		q.Created = time.Now()
	}
	return s.tx("create", func(ctx context.Context, tx pgx.Tx) error {
		if err := s.reserve(ctx, tx, store.QueueCost); err != nil {
			return err
		}
		tag, err := tx.Exec(ctx, `INSERT INTO wisp_queues
			(key, sender, rcv_auth, snd_auth, box_key, secured, suspended, marker, created, next_seq, count, sub_epoch)
			VALUES ($1, $2, $3, $4, $5, $6, $7, false, $8, 0, 0, 0) ON CONFLICT DO NOTHING`,
			k[:], snd[:], q.RcvAuthKey[:], q.SndAuthKey[:], q.BoxKey[:], q.Secured, q.Suspended, q.Created.Unix())
		if err != nil {
			return err
		}
		if tag.RowsAffected() == 0 {
			return store.ErrExists
		}
		var b pgx.Batch
		usage(&b, store.QueueCost, 1, 0)
		return sendBatch(ctx, tx, &b)
	})
}

const queueCols = "key, rcv_auth, snd_auth, box_key, secured, suspended, created, count"

func scanQueue(row pgx.Row) (store.QueueKey, store.Queue, error) {
	var k, rcv, snd, box []byte
	var q store.Queue
	var created int64
	var count int32
	if err := row.Scan(&k, &rcv, &snd, &box, &q.Secured, &q.Suspended, &created, &count); err != nil {
		if errors.Is(err, pgx.ErrNoRows) {
			return store.QueueKey{}, q, store.ErrNotFound
		}
		return store.QueueKey{}, q, err
	}
	if len(k) != 32 || len(rcv) != wire.KeySize || len(snd) != wire.KeySize || len(box) != 32 || count < 0 {
		return store.QueueKey{}, q, ErrCorrupt
	}
	copy(q.RcvAuthKey[:], rcv)
	copy(q.SndAuthKey[:], snd)
	copy(q.BoxKey[:], box)
	q.Created = time.Unix(created, 0)
	q.Count = uint32(count)
	return store.QueueKey(k), q, nil
}

// read runs fn with an operation context, once more on a fresh
// connection when the first one was lost: fn must be safe to repeat (a
// read, or a write whose repetition changes nothing that matters: the
// identity's insert-if-missing, a subscription epoch).
func (s *Store) read(what string, fn func(ctx context.Context) error) error {
	ctx, cancel, err := s.op()
	if err != nil {
		return err
	}
	defer cancel()
	err = fn(ctx)
	if err != nil && lost(err) && !s.closed.Load() {
		// A read is safe to repeat: once, on a fresh connection.
		_ = s.fail(what, err)
		err = fn(ctx)
	}
	if err != nil && !isLogical(err) {
		return s.fail(what, err)
	}
	return err
}

// write runs one statement that changes data, with an operation
// context. It is repeated (once, on a fresh connection) only when the
// first try failed before anything reached the server: a write whose
// outcome is unknown is never done twice.
func (s *Store) write(what string, fn func(ctx context.Context) error) error {
	ctx, cancel, err := s.op()
	if err != nil {
		return err
	}
	defer cancel()
	err = fn(ctx)
	if err != nil && lost(err) && pgconn.SafeToRetry(err) && !s.closed.Load() {
		_ = s.fail(what, err)
		err = fn(ctx)
	}
	if err != nil && !isLogical(err) {
		return s.fail(what, err)
	}
	return err
}

// Get returns a queue record.
func (s *Store) Get(k store.QueueKey) (store.Queue, error) {
	var q store.Queue
	err := s.read("get", func(ctx context.Context) (err error) {
		_, q, err = scanQueue(s.pool.QueryRow(ctx, "SELECT "+queueCols+" FROM wisp_queues WHERE key = $1", k[:]))
		return err
	})
	return q, err
}

// BySender returns the queue a sender ID points to.
func (s *Store) BySender(snd store.SenderKey) (store.QueueKey, store.Queue, error) {
	var k store.QueueKey
	var q store.Queue
	err := s.read("by sender", func(ctx context.Context) (err error) {
		k, q, err = scanQueue(s.pool.QueryRow(ctx, "SELECT "+queueCols+" FROM wisp_queues WHERE sender = $1", snd[:]))
		return err
	})
	return k, q, err
}

// Secure sets the sender key. Securing again with the same key succeeds
// (a retried SKEY); with another key it is ErrSecured.
func (s *Store) Secure(k store.QueueKey, sndAuth [wire.KeySize]byte) error {
	return s.tx("secure", func(ctx context.Context, tx pgx.Tx) error {
		var secured, suspended bool
		var cur []byte
		err := tx.QueryRow(ctx, "SELECT secured, suspended, snd_auth FROM wisp_queues WHERE key = $1 FOR UPDATE", k[:]).Scan(&secured, &suspended, &cur)
		switch {
		case errors.Is(err, pgx.ErrNoRows):
			return store.ErrNotFound
		case err != nil:
			return err
		case suspended:
			return store.ErrSuspended
		case secured && string(cur) != string(sndAuth[:]):
			return store.ErrSecured
		}
		_, err = tx.Exec(ctx, "UPDATE wisp_queues SET secured = true, snd_auth = $2 WHERE key = $1", k[:], sndAuth[:])
		return err
	})
}

// Suspend stops the queue from accepting messages; the recipient can
// still drain and delete it.
func (s *Store) Suspend(k store.QueueKey) error {
	return s.tx("suspend", func(ctx context.Context, tx pgx.Tx) error {
		tag, err := tx.Exec(ctx, "UPDATE wisp_queues SET suspended = true WHERE key = $1", k[:])
		if err == nil && tag.RowsAffected() == 0 {
			return store.ErrNotFound
		}
		return err
	})
}

// Delete removes a queue and all its messages.
func (s *Store) Delete(k store.QueueKey) error {
	return s.tx("delete", func(ctx context.Context, tx pgx.Tx) error {
		tag, err := tx.Exec(ctx, "DELETE FROM wisp_queues WHERE key = $1", k[:])
		if err != nil {
			return err
		}
		if tag.RowsAffected() == 0 {
			return store.ErrNotFound
		}
		var n, size int64
		err = tx.QueryRow(ctx, `WITH d AS (DELETE FROM wisp_messages WHERE queue = $1 RETURNING octet_length(body) AS len)
			SELECT count(*), coalesce(sum(len), 0)::bigint FROM d`, k[:]).Scan(&n, &size)
		if err != nil {
			return err
		}
		var b pgx.Batch
		usage(&b, -(store.QueueCost + n*store.MsgCost + size), -1, -n)
		s.notify(&b, 'D', k, "")
		return sendBatch(ctx, tx, &b)
	})
}

// Put appends a message; it is durable when Put returns nil. The quota
// rules are those of store.Store.Put.
func (s *Store) Put(k store.QueueKey, m store.Message, quota uint32) error {
	return s.PutQueued(k, m, quota, nil)
}

// Results of wisp_put and wisp_ack.
var results = []error{nil, store.ErrNotFound, store.ErrSuspended, store.ErrQuota, store.ErrFull, store.ErrNoMsg}

func result(code int32) error {
	if code < 0 || int(code) >= len(results) {
		return fmt.Errorf("pgstore: unknown result %d", code)
	}
	return results[code]
}

// PutQueued is Put that calls queued (when not nil) once the message
// has its place in the queue's order. One statement (the function
// wisp_put) checks, stores and notifies in one round trip and commits,
// so queued is called when Put is done.
func (s *Store) PutQueued(k store.QueueKey, m store.Message, quota uint32, queued func()) error {
	body := m.Body
	if body == nil {
		body = []byte{}
	}
	var code int32
	err := s.write("put", func(ctx context.Context) error {
		return s.pool.QueryRow(ctx, "SELECT wisp_put($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)",
			k[:], m.ID[:], m.Time.Unix(), body, int32(min(quota, 1<<31-1)), s.opts.MaxBytes, int64(store.MsgCost), shard(),
			Channel, s.origin+"S"+hex.EncodeToString(k[:])).Scan(&code)
	})
	if err != nil {
		return err
	}
	if queued != nil {
		queued()
	}
	return result(code)
}

func scanMsg(row pgx.Row) (store.Message, bool, error) {
	var id, body []byte
	var ts int64
	var m store.Message
	if err := row.Scan(&id, &ts, &m.Quota, &body); err != nil {
		if errors.Is(err, pgx.ErrNoRows) {
			return m, false, nil
		}
		return m, false, err
	}
	if len(id) != wire.IDSize {
		return m, false, ErrCorrupt
	}
	copy(m.ID[:], id)
	m.Time = time.Unix(ts, 0)
	m.Body = body
	return m, true, nil
}

const headQuery = "SELECT id, ts, quota, body FROM wisp_messages WHERE queue = $1 ORDER BY seq LIMIT 1"

// Peek returns the oldest message of a queue, if any.
func (s *Store) Peek(k store.QueueKey) (store.Message, bool, error) {
	var m store.Message
	var ok bool
	err := s.read("peek", func(ctx context.Context) (err error) {
		m, ok, err = scanMsg(s.pool.QueryRow(ctx, headQuery, k[:]))
		return err
	})
	return m, ok, err
}

// Ack deletes the oldest message if its ID is id, and returns the next
// one: one statement (the function wisp_ack), one round trip.
func (s *Store) Ack(k store.QueueKey, id wire.MsgID) (store.Message, bool, error) {
	var code int32
	var nid, body []byte
	var ts *int64
	var quota *bool
	err := s.write("ack", func(ctx context.Context) error {
		return s.pool.QueryRow(ctx, "SELECT * FROM wisp_ack($1, $2, $3, $4, $5, $6)",
			k[:], id[:], int64(store.MsgCost), shard(), Channel, s.origin+"A"+hex.EncodeToString(k[:])+hex.EncodeToString(id[:])).
			Scan(&code, &nid, &ts, &quota, &body)
	})
	if err != nil {
		return store.Message{}, false, err
	}
	if err := result(code); err != nil {
		return store.Message{}, false, err
	}
	if nid == nil {
		return store.Message{}, false, nil
	}
	if len(nid) != wire.IDSize || ts == nil || quota == nil {
		return store.Message{}, false, ErrCorrupt
	}
	m := store.Message{Time: time.Unix(*ts, 0), Quota: *quota, Body: body}
	copy(m.ID[:], nid)
	return m, true, nil
}

// Expire deletes up to limit messages stored before cutoff, oldest
// first, and returns how many it deleted. Queue rows are locked in key
// order, then their messages: the order every other writer takes locks
// in, so expiry never deadlocks with them.
func (s *Store) Expire(cutoff time.Time, limit int) (int, error) {
	total := 0
	err := s.tx("expire", func(ctx context.Context, tx pgx.Tx) error {
		total = 0
		rows, err := tx.Query(ctx, "SELECT queue, seq FROM wisp_messages WHERE ts < $1 ORDER BY ts, queue, seq LIMIT $2", cutoff.Unix(), limit)
		if err != nil {
			return err
		}
		due := map[string][]int64{}
		var keys []string
		var q []byte
		var seq int64
		_, err = pgx.ForEachRow(rows, []any{&q, &seq}, func() error {
			if _, ok := due[string(q)]; !ok {
				keys = append(keys, string(q))
			}
			due[string(q)] = append(due[string(q)], seq)
			return nil
		})
		if err != nil {
			return err
		}
		slices.Sort(keys)
		var b pgx.Batch
		var bytes, msgs int64
		for _, key := range keys {
			var exists int
			err := tx.QueryRow(ctx, "SELECT 1 FROM wisp_queues WHERE key = $1 FOR UPDATE", []byte(key)).Scan(&exists)
			if err != nil && !errors.Is(err, pgx.ErrNoRows) {
				return err
			}
			var n, counted, size int64
			var marker bool
			err = tx.QueryRow(ctx, `WITH d AS (DELETE FROM wisp_messages WHERE queue = $1 AND seq = ANY($2) AND ts < $3
				RETURNING quota, octet_length(body) AS len)
				SELECT count(*), count(*) FILTER (WHERE NOT quota), coalesce(sum(len), 0)::bigint, coalesce(bool_or(quota), false) FROM d`,
				[]byte(key), due[key], cutoff.Unix()).Scan(&n, &counted, &size, &marker)
			if err != nil {
				return err
			}
			total += int(n)
			msgs += n
			bytes += n*store.MsgCost + size
			if exists == 1 {
				b.Queue("UPDATE wisp_queues SET count = greatest(count - $2, 0), marker = marker AND NOT $3 WHERE key = $1", []byte(key), counted, marker)
			}
		}
		if msgs == 0 {
			return nil
		}
		usage(&b, -bytes, 0, -msgs)
		return sendBatch(ctx, tx, &b)
	})
	return total, err
}

// Counts returns the number of queues and stored messages.
func (s *Store) Counts() (queues, messages int64, err error) {
	err = s.read("counts", func(ctx context.Context) error {
		return s.pool.QueryRow(ctx, "SELECT coalesce(sum(queues), 0)::bigint, coalesce(sum(messages), 0)::bigint FROM wisp_usage").Scan(&queues, &messages)
	})
	return queues, messages, err
}

// Bytes returns what the store counts against Options.MaxBytes.
func (s *Store) Bytes() (int64, error) {
	var n int64
	err := s.read("bytes", func(ctx context.Context) error {
		return s.pool.QueryRow(ctx, "SELECT coalesce(sum(bytes), 0)::bigint FROM wisp_usage").Scan(&n)
	})
	return n, err
}

// Identity returns the relay identity stored in the database; the first
// process to start stores the one create returns, and every later one
// (on any machine) gets that same key, so all processes are one relay.
func (s *Store) Identity(create func() (ed25519.PrivateKey, error)) (ed25519.PrivateKey, error) {
	var seed []byte
	err := s.read("identity", func(ctx context.Context) error {
		err := s.pool.QueryRow(ctx, "SELECT seed FROM wisp_identity").Scan(&seed)
		if !errors.Is(err, pgx.ErrNoRows) {
			return err
		}
		key, err := create()
		if err != nil {
			return err
		}
		if _, err := s.pool.Exec(ctx, "INSERT INTO wisp_identity (one, seed) VALUES (true, $1) ON CONFLICT DO NOTHING", key.Seed()); err != nil {
			return err
		}
		return s.pool.QueryRow(ctx, "SELECT seed FROM wisp_identity").Scan(&seed)
	})
	if err != nil {
		return nil, err
	}
	if len(seed) != ed25519.SeedSize {
		return nil, ErrCorrupt
	}
	return ed25519.NewKeyFromSeed(seed), nil
}

// Subscribe records that this process delivers k now and notifies the
// others; see store.Shared.
func (s *Store) Subscribe(k store.QueueKey) (uint64, error) {
	var epoch int64
	err := s.read("subscribe", func(ctx context.Context) error {
		// One statement: the update and its notification commit together.
		err := s.pool.QueryRow(ctx, `WITH u AS (UPDATE wisp_queues SET sub_epoch = sub_epoch + 1 WHERE key = $1 RETURNING sub_epoch)
			SELECT sub_epoch, pg_notify($2, $3 || sub_epoch::text) FROM u`,
			k[:], Channel, s.origin+"B"+hex.EncodeToString(k[:])).Scan(&epoch, nil)
		if errors.Is(err, pgx.ErrNoRows) {
			return store.ErrNotFound
		}
		return err
	})
	return uint64(epoch), err
}

// Epoch returns k's latest subscription epoch.
func (s *Store) Epoch(k store.QueueKey) (uint64, error) {
	var epoch int64
	err := s.read("epoch", func(ctx context.Context) error {
		err := s.pool.QueryRow(ctx, "SELECT sub_epoch FROM wisp_queues WHERE key = $1", k[:]).Scan(&epoch)
		if errors.Is(err, pgx.ErrNoRows) {
			return store.ErrNotFound
		}
		return err
	})
	return uint64(epoch), err
}

// Events listens on Channel with a connection of its own and calls fn
// for the other processes' changes; see store.Shared. It may run once
// per Store.
func (s *Store) Events(ctx context.Context, fn func(store.Event)) error {
	s.mu.Lock()
	if s.listen {
		s.mu.Unlock()
		return errors.New("pgstore: Events is already running")
	}
	s.listen = true
	s.mu.Unlock()
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	stop := context.AfterFunc(s.ctx, cancel)
	defer stop()
	backoff := 50 * time.Millisecond
	for {
		err := s.listenOnce(ctx, fn)
		if ctx.Err() != nil {
			return ctx.Err()
		}
		_ = err // the next attempt meets what is still wrong; commands report it
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(backoff):
		}
		backoff = min(2*backoff, 2*time.Second)
	}
}

// listenOnce connects, LISTENs, reports EventResync and dispatches
// until the connection fails.
func (s *Store) listenOnce(ctx context.Context, fn func(store.Event)) error {
	cctx, cancel := context.WithTimeout(ctx, opTimeout)
	conn, err := pgx.ConnectConfig(cctx, s.cfg)
	cancel()
	if err != nil {
		return err
	}
	defer conn.Close(context.Background())
	if _, err := conn.Exec(ctx, "LISTEN "+Channel); err != nil {
		return err
	}
	// Changes committed before LISTEN took effect were not notified here,
	// at the first start (the relay serves at once) as after an outage.
	fn(store.Event{Kind: store.EventResync})
	for {
		n, err := conn.WaitForNotification(ctx)
		if err != nil {
			return err
		}
		if ev, ok := s.parse(n.Payload); ok {
			fn(ev)
		}
	}
}

// parse reads a notification: origin (16 hex digits), kind, queue key
// (64 hex digits), then the message ID (A, 48 hex digits) or the epoch
// (B, decimal). Its own and malformed ones are dropped.
func (s *Store) parse(p string) (store.Event, bool) {
	const head = 16 + 1 + 64
	var ev store.Event
	if len(p) < head || p[:16] == s.origin {
		return ev, false
	}
	if _, err := hex.Decode(ev.Queue[:], []byte(p[17:head])); err != nil {
		return ev, false
	}
	rest := p[head:]
	switch p[16] {
	case 'S':
		ev.Kind = store.EventStored
	case 'D':
		ev.Kind = store.EventDeleted
	case 'A':
		ev.Kind = store.EventAcked
		if len(rest) != 2*wire.IDSize {
			return ev, false
		}
		if _, err := hex.Decode(ev.Msg[:], []byte(rest)); err != nil {
			return ev, false
		}
		return ev, true
	case 'B':
		ev.Kind = store.EventSubscribed
		e, err := strconv.ParseUint(rest, 10, 64)
		if err != nil {
			return ev, false
		}
		ev.Epoch = e
		return ev, true
	default:
		return ev, false
	}
	return ev, rest == ""
}
