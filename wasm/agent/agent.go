package agent

import (
	"context"
	"crypto/rand"
	"crypto/subtle"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	mrand "math/rand/v2"
	"sync"
	"time"

	"github.com/wisp-chat/wisp/crypto/box"
	"github.com/wisp-chat/wisp/crypto/ratchet"
	"github.com/wisp-chat/wisp/server/wire"
	"github.com/wisp-chat/wisp/wasm/store"
)

// Integrity is what the receiver learnt about a message's place in the
// sequence.
type Integrity struct {
	// Missing is the number of messages skipped before this one (a gap).
	Missing uint64 `json:"missing,omitempty"`
	// BadHash means the previous-message hash did not match: the message
	// history differs between the two sides.
	BadHash bool `json:"bad_hash,omitempty"`
}

// Received is a chat message from a peer.
type Received struct {
	ID        uint64
	Body      []byte
	Sent      time.Time // the relay's receive time
	Integrity Integrity
	// Commit, when set, lets Received write its records and the agent's
	// connection record (the message counted as received) as one store
	// batch: Received adds its records to a batch and passes it to Commit,
	// which adds the connection record after them and applies it, as the
	// last thing Received does, holding the lock that guards its records.
	// A Received that does not call it stores its records itself, and the
	// agent writes the connection record after it returns.
	Commit func(b *store.Batch) error
}

// Events receives what happens on connections. Methods are called from the
// agent's goroutines, one connection at a time. Received must persist the
// message before it returns: the agent acknowledges it to the relay only
// after that, and calls it again after a crash when it is not sure.
// Received may see the same (connection, ID) again after a crash and must
// then keep one copy.
type Events interface {
	// Connecting: the inviter received a joiner's confirmation and is
	// answering; peerInfo is the joiner's profile.
	Connecting(conn ConnID, peerInfo []byte)
	Connected(conn ConnID, peerInfo []byte)
	Received(conn ConnID, msg Received) error
	Sent(conn ConnID, id uint64)
	Delivered(conn ConnID, ids []uint64)
	Failed(conn ConnID, id uint64, err error)
	PeerDeleted(conn ConnID)
	// Problem reports a message that was dropped (tampered, malformed)
	// or a connection-level error. The connection keeps working.
	Problem(conn ConnID, err error)
}

// BatchEvents is implemented by Events whose records about sent and
// delivered messages live in the agent's store. The agent then calls
// SentWith instead of Sent and DeliveredWith instead of Delivered, with a
// commit that adds the agent's own change after the caller's records and
// applies the batch (one IndexedDB transaction): for a sent message the
// removal of its outbox entry, for a receipt the connection record that
// counts it as received. The method adds its records to a batch and calls
// commit with it as the last thing it does, holding the lock that guards
// its records. If it does not call commit, the agent writes its change
// after it returns. An error from DeliveredWith leaves the receipt
// unacknowledged (it is handled again); one from SentWith is reported as
// a Problem.
type BatchEvents interface {
	SentWith(conn ConnID, id uint64, commit func(b *store.Batch) error) error
	DeliveredWith(conn ConnID, ids []uint64, commit func(b *store.Batch) error) error
}

// Errors callers branch on.
var (
	ErrInvitationUsed = errors.New("this invitation was already used")
	ErrNoConnection   = errors.New("agent: no such connection")
	ErrNotConnected   = errors.New("agent: the connection is not established yet")
	ErrClosed         = errors.New("agent: closed")
	// ErrUndecryptable (in Events.Problem) is a message that did not
	// decrypt: a repeat (ratchet.ErrDuplicate) or one sealed with a state
	// this side no longer has. Several in a row: see ResyncSuggested.
	ErrUndecryptable = errors.New("agent: a message did not decrypt")
)

// Options configures an Agent.
type Options struct {
	Store  *store.Store
	Relays *Relays
	Events Events
	// Rotation is the schedule of automatic queue rotation.
	Rotation RotationPolicy
	// PostQuantum offers the ML-KEM hybrid in invitations and uses it when
	// joining invitations that offer it. On by default in package chat.
	PostQuantum bool
	// ReceiptDelay batches receipts: they are sent this long after the
	// last received message (default 20ms).
	ReceiptDelay time.Duration
	// Rand defaults to crypto/rand.
	Rand io.Reader
	// Restored says the store was just restored from a backup: Start
	// marks every connection as needing a ratchet re-sync before anything
	// is received or sent (see Resync).
	Restored bool
	// HoldOutbox keeps the outbox workers from sending after Start until
	// Resume is called, so the chat layer can first look at what is pending
	// (see Pending) before any of it is sent and forgotten.
	HoldOutbox bool
}

// Agent manages the connections of one profile.
type Agent struct {
	store *store.Store
	tr    *Relays
	ev    Events
	pq    bool
	rand  io.Reader
	delay time.Duration
	rot   RotationPolicy
	// restored: mark every connection for a re-sync at Start.
	restored bool

	rotWake chan struct{} // wakes the maintenance loop (rotate.go)

	ctx     context.Context
	cancel  context.CancelFunc
	wg      sync.WaitGroup
	resumed chan struct{} // closed by Resume; workers wait for it

	mu     sync.Mutex
	closed bool
	conns  map[ConnID]*connHandle
	byRcv  map[wire.QueueID]ConnID
}

// connHandle serialises work on one connection.
type connHandle struct {
	mu     sync.Mutex
	wake   chan struct{} // outbox worker
	stop   chan struct{}
	timer  *time.Timer // receipt batching
	closed bool
	// tried is the ID of the outbox entry last sent to the current queue
	// (outbox worker only): a rotation never moves an entry that may
	// already be stored on the old queue.
	tried uint64
	// held is a message on our new queue that waits, unacknowledged, for
	// the old queue to drain; lastOld is when the old (current) queue last
	// delivered; forceNext lets the held message through (rotate.go).
	held      *heldMsg
	holdTimer *time.Timer
	lastOld   time.Time
	forceNext bool
	// delay is why the outbox could not be sent last time, "" when it
	// went out (outbox worker; under mu): noteDelay reports changes.
	delay string
}

// DeliveryEvents is implemented by Events that want to know when a
// connection's messages cannot be sent for a while: err says why (a
// *client.RouteError names both relays of a private route) and the agent
// keeps retrying; a nil err says they go out again.
type DeliveryEvents interface {
	DeliveryDelayed(conn ConnID, err error)
}

// New returns an Agent. Call Start to resume stored connections.
func New(opts Options) (*Agent, error) {
	if opts.Store == nil || opts.Relays == nil || opts.Events == nil {
		return nil, errors.New("agent: Store, Relays and Events are required")
	}
	if opts.Rand == nil {
		opts.Rand = rand.Reader
	}
	if opts.ReceiptDelay == 0 {
		opts.ReceiptDelay = 20 * time.Millisecond
	}
	ctx, cancel := context.WithCancel(context.Background())
	a := &Agent{
		store: opts.Store, tr: opts.Relays, ev: opts.Events, pq: opts.PostQuantum,
		rand: opts.Rand, delay: opts.ReceiptDelay, ctx: ctx, cancel: cancel,
		rot: opts.Rotation.withDefaults(), rotWake: make(chan struct{}, 1), restored: opts.Restored,
		resumed: make(chan struct{}),
		conns:   make(map[ConnID]*connHandle), byRcv: make(map[wire.QueueID]ConnID),
	}
	if !opts.HoldOutbox {
		close(a.resumed)
	}
	// Each message sent or received reads its connection's record, and
	// each pass of an outbox worker lists its outbox: kept in memory
	// (store.Cache), they cost no storage transaction after the first.
	opts.Store.Cache(isConnKey, isOutboxDir)
	opts.Relays.setHandler(a.handleMessage)
	opts.Relays.setConnected(a.pokeAll)
	return a, nil
}

// Resume lets the outbox workers send (see Options.HoldOutbox).
func (a *Agent) Resume() {
	a.mu.Lock()
	defer a.mu.Unlock()
	select {
	case <-a.resumed:
	default:
		close(a.resumed)
	}
}

// pokeAll wakes every outbox worker, for when a relay (re)connects.
func (a *Agent) pokeAll() {
	a.mu.Lock()
	defer a.mu.Unlock()
	for _, h := range a.conns {
		h.poke()
	}
}

// Start loads every stored connection, subscribes to its queue and resumes
// its outbox. Subscription failures are not fatal: the transport retries
// after reconnecting.
func (a *Agent) Start(ctx context.Context) error {
	if a.restored {
		if err := a.markRestored(); err != nil {
			return fmt.Errorf("agent: marking restored connections: %w", err)
		}
	}
	var subs []relaySub
	// Every connection record and outbox listing, in two transactions.
	if err := a.store.Preload("conn"); err != nil {
		return err
	}
	dirs, err := a.store.ListDirs("conn")
	if err != nil {
		return err
	}
	for _, d := range dirs {
		id := ConnID(d.Base())
		if !id.valid() {
			continue
		}
		c, err := a.loadConn(id)
		if errors.Is(err, store.ErrNotFound) {
			// A connection whose creation did not finish: nothing was sent.
			_ = a.store.DeleteAll(d)
			continue
		}
		if err != nil {
			a.ev.Problem(id, err)
			continue
		}
		h, err := a.register(c)
		if err != nil {
			return err
		}
		if err := a.recoverOutbox(c, h); err != nil {
			a.ev.Problem(id, err)
		}
		if len(c.Receipts) > 0 {
			h.mu.Lock()
			a.scheduleReceipts(c.ID, h) // received before a restart, not yet acknowledged
			h.mu.Unlock()
		}
		if c.State != StatePeerDeleted {
			for _, q := range c.queues() {
				relay, sub, err := q.subscription()
				if err != nil {
					a.ev.Problem(id, err)
					continue
				}
				subs = append(subs, relaySub{relay, sub})
			}
		}
	}
	a.mu.Lock()
	if !a.closed {
		a.wg.Add(1)
		go a.maintain()
	}
	a.mu.Unlock()
	// The contact address's queue (address.go), subscribed with the rest.
	subs = a.appendAddressSub(subs)
	// One batch of SUBs per relay.
	for relay, err := range a.tr.subscribeAll(ctx, subs) {
		a.ev.Problem("", fmt.Errorf("subscribing on %s: %w", relay.Host, err))
	}
	return nil
}

// Close stops the outbox workers. It does not close the transport.
func (a *Agent) Close() {
	a.cancel()
	a.mu.Lock()
	a.closed = true
	for _, h := range a.conns {
		h.shutdown()
	}
	a.mu.Unlock()
	a.wg.Wait()
}

func (a *Agent) register(c *connRecord) (*connHandle, error) {
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.closed {
		return nil, ErrClosed
	}
	if h, ok := a.conns[c.ID]; ok {
		return h, nil
	}
	h := &connHandle{wake: make(chan struct{}, 1), stop: make(chan struct{})}
	a.conns[c.ID] = h
	for _, q := range c.queues() {
		a.byRcv[q.RcvID] = c.ID
	}
	a.wg.Add(1)
	go a.outboxWorker(c.ID, h)
	return h, nil
}

func (a *Agent) handle(id ConnID) (*connHandle, error) {
	a.mu.Lock()
	defer a.mu.Unlock()
	h, ok := a.conns[id]
	if !ok {
		return nil, fmt.Errorf("%w: %s", ErrNoConnection, id)
	}
	return h, nil
}

func (a *Agent) subscribe(ctx context.Context, c *connRecord) error {
	relay, sub, err := c.Rcv.subscription()
	if err != nil {
		return err
	}
	return a.tr.subscribe(ctx, relay, sub)
}

// newRcvQueue creates a receiving queue on relay.
func (a *Agent) newRcvQueue(ctx context.Context, relay wire.Address) (rcvQueue, error) {
	q, keys, err := a.tr.newQueue(ctx, relay)
	if err != nil {
		return rcvQueue{}, fmt.Errorf("creating a queue on the relay: %w", err)
	}
	qk, err := box.GenerateKey(a.rand)
	if err != nil {
		return rcvQueue{}, err
	}
	sub := q.Subscription(keys)
	return rcvQueue{
		Relay: relay.String(), RcvID: q.RcvID, SndID: q.SndID, AuthSeed: keys.Auth.Seed(),
		RelayBox: sub.BoxKey[:], QueueKey: qk.Bytes(), Created: time.Now().UTC(),
	}, nil
}

// CreateInvitation makes a queue on relay and returns the connection and
// its one-time invitation. info (the profile, opaque to the agent) is sent
// to whoever joins, inside the encrypted hello.
func (a *Agent) CreateInvitation(ctx context.Context, relay wire.Address, info []byte) (ConnID, Invitation, error) {
	if len(info) > MaxBody {
		return "", Invitation{}, fmt.Errorf("%w: info of %d bytes", ErrTooLong, len(info))
	}
	q, err := a.newRcvQueue(ctx, relay)
	if err != nil {
		return "", Invitation{}, err
	}
	sec, rinv, err := ratchet.NewInvitation(a.rand, a.pq)
	if err != nil {
		return "", Invitation{}, err
	}
	secBytes, err := sec.MarshalBinary()
	if err != nil {
		return "", Invitation{}, err
	}
	rinvBytes, err := rinv.MarshalBinary()
	if err != nil {
		return "", Invitation{}, err
	}
	qk, err := box.PrivateKeyFromBytes(q.QueueKey)
	if err != nil {
		return "", Invitation{}, err
	}
	c := &connRecord{ID: newConnID(), State: StateInvited, Created: time.Now().UTC(), Rcv: q, Invitation: secBytes, Hello: info}
	if err := a.saveConn(c); err != nil {
		return "", Invitation{}, err
	}
	if _, err := a.register(c); err != nil {
		return "", Invitation{}, err
	}
	if err := a.subscribe(ctx, c); err != nil {
		// Remembered by the relay pool: it subscribes when the relay is back.
		a.ev.Problem(c.ID, fmt.Errorf("subscribing: %w", err))
	}
	inv := Invitation{
		Versions: Versions, Relay: relay, SenderID: q.SndID,
		QueueKey: [KeySize]byte(qk.PublicKey().Bytes()), Ratchet: [ratchet.InvitationSize]byte(rinvBytes),
	}
	return c.ID, inv, nil
}

// Join connects to an invitation: it creates our queue on relay, secures
// the inviter's queue (failing with ErrInvitationUsed when someone else
// already did) and queues the confirmation carrying our reply queue and
// info (the profile, opaque to the agent). An invitation naming a relay
// the pool may not dial (CheckRelay) fails with ErrLocalRelay before
// anything is created.
func (a *Agent) Join(ctx context.Context, inv Invitation, relay wire.Address, info []byte) (ConnID, error) {
	// Before anything is created: a relay the pool may not dial.
	if err := a.tr.check(inv.Relay); err != nil {
		return "", err
	}
	rinv, err := ratchet.ParseInvitation(inv.Ratchet[:])
	if err != nil {
		return "", fmt.Errorf("%w: %w", ErrCorruptedLink, err)
	}
	peerQK, err := box.ParsePublicKey(inv.QueueKey[:])
	if err != nil {
		return "", fmt.Errorf("%w: %w", ErrCorruptedLink, err)
	}
	st, conf, err := ratchet.Join(a.rand, rinv, a.pq && rinv.PQ)
	if err != nil {
		return "", fmt.Errorf("%w: %w", ErrCorruptedLink, err)
	}
	q, err := a.newRcvQueue(ctx, relay)
	if err != nil {
		return "", err
	}
	ourRcvQK, err := box.PrivateKeyFromBytes(q.QueueKey)
	if err != nil {
		return "", err
	}
	sndAuth, sndSeed, err := newAuthKey()
	if err != nil {
		return "", err
	}
	sndQK, err := box.GenerateKey(a.rand)
	if err != nil {
		return "", err
	}
	shared, err := box.Precompute(sndQK, peerQK)
	if err != nil {
		return "", fmt.Errorf("%w: %w", ErrCorruptedLink, err)
	}
	body, err := encodeReply(replyQueue{Relay: relay, SenderID: q.SndID, QueueKey: ourRcvQK.PublicKey()}, info)
	if err != nil {
		return "", err
	}
	pt, err := encodeMessage(header{ID: 1, Kind: KindReply}, body)
	if err != nil {
		return "", err
	}
	env, err := st.Seal(a.rand, pt)
	if err != nil {
		return "", err
	}
	confBytes, err := conf.MarshalBinary()
	if err != nil {
		return "", err
	}
	sealed, err := sealQueue(a.rand, sndQK.PublicKey(), shared, confirmation{Version: Version, Ratchet: confBytes, Envelope: env}.encode())
	if err != nil {
		return "", err
	}
	rs, err := st.MarshalBinary()
	if err != nil {
		return "", err
	}
	c := &connRecord{
		ID: newConnID(), State: StateJoining, Created: time.Now().UTC(), Rcv: q, Ratchet: rs,
		Snd:    &sndQueue{Relay: inv.Relay.String(), SndID: inv.SenderID, AuthSeed: sndSeed, QueueKey: sndQK.Bytes(), PeerKey: inv.QueueKey[:]},
		SentID: 1, SentHash: messageHash(pt),
	}
	// Secure the inviter's queue now, so that a used invitation fails here
	// and nothing is stored for it.
	if err := a.tr.secure(ctx, inv.Relay, inv.SenderID, sndAuth); err != nil {
		if _, sub, serr := q.subscription(); serr == nil {
			_ = a.tr.deleteQueue(context.WithoutCancel(ctx), relay, sub)
		}
		if errors.Is(err, wire.CodeAuth) {
			return "", ErrInvitationUsed
		}
		return "", fmt.Errorf("reaching the inviter's relay: %w", err)
	}
	c.Snd.Secured = true
	if err := a.putOutbox(c.ID, &outboxEntry{ID: 1, Kind: KindReply, Sealed: sealed, Confirmation: true}); err != nil {
		return "", err
	}
	if err := a.saveConn(c); err != nil {
		return "", err
	}
	h, err := a.register(c)
	if err != nil {
		return "", err
	}
	if err := a.subscribe(ctx, c); err != nil {
		a.ev.Problem(c.ID, fmt.Errorf("subscribing: %w", err))
	}
	h.poke()
	return c.ID, nil
}

// Send queues a chat message body on a connection and returns its ID. When
// Send returns, the message is stored and will be sent, in order, also
// after a restart; Events.Sent follows when the relay accepted it.
func (a *Agent) Send(ctx context.Context, id ConnID, body []byte) (uint64, error) {
	return a.send(id, KindChat, body, nil)
}

// SendWith is Send for a caller that keeps records about each message in
// the same store: they are written in the same batch as the outbox entry
// and the connection record (on IndexedDB, one transaction). commit is
// called under the connection's lock, before anything is written, with the
// message's ID and a batch holding the outbox entry and the connection
// record; it adds its records after them and applies the batch
// (store.Store.Apply) before it returns, holding whatever lock guards its
// own records. An error from it fails the send. commit must not call the
// Agent.
func (a *Agent) SendWith(ctx context.Context, id ConnID, body []byte, commit func(id uint64, b *store.Batch) error) (uint64, error) {
	return a.send(id, KindChat, body, commit)
}

func (a *Agent) send(id ConnID, kind Kind, body []byte, commit func(uint64, *store.Batch) error) (uint64, error) {
	if len(body) > MaxBody {
		return 0, fmt.Errorf("%w: %d bytes, the limit is %d", ErrTooLong, len(body), MaxBody)
	}
	h, err := a.handle(id)
	if err != nil {
		return 0, err
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	c, err := a.loadConn(id)
	if err != nil {
		return 0, err
	}
	if c.Snd == nil || c.Ratchet == nil || (c.State != StateConnected && c.State != StateAccepting && c.State != StateJoining) {
		return 0, ErrNotConnected
	}
	e, err := a.seal(c, kind, body, c.SentID+1, c.SentHash)
	if err != nil {
		return 0, err
	}
	// Outbox first, then the connection record: see SPEC.md, "Crash safety".
	var b store.Batch
	if err := addOutbox(&b, id, e); err != nil {
		return 0, err
	}
	if err := addConn(&b, c); err != nil {
		return 0, err
	}
	if commit == nil {
		commit = func(_ uint64, b *store.Batch) error { return a.store.Apply(b) }
	}
	if err := commit(e.ID, &b); err != nil {
		// Undo, so that a failed Send is not sent (on a file system where
		// the batch is not one transaction, its first writes may be there).
		// If this fails too (the process is dying), Start re-seals the
		// entry: see SPEC.md.
		_ = a.store.Delete(outboxKey(id, e.ID))
		return 0, err
	}
	h.poke()
	return e.ID, nil
}

// seal builds the outbox entry of one message and advances c's counters
// in memory. It encrypts it too, advancing the ratchet, unless a re-sync
// of ours is pending: a ratchet that may be stale never seals, and the
// entry is sealed when it is sent (resync.go).
func (a *Agent) seal(c *connRecord, kind Kind, body []byte, n uint64, prev [32]byte) (*outboxEntry, error) {
	pt, err := encodeMessage(header{ID: n, PrevHash: prev, Kind: kind}, body)
	if err != nil {
		return nil, err
	}
	e := &outboxEntry{ID: n, Kind: kind, Body: body, Prev: prev}
	if c.Resync == nil {
		if err := a.sealEntry(c, e); err != nil {
			return nil, err
		}
	}
	c.SentID, c.SentHash = n, messageHash(pt)
	return e, nil
}

// sealEntry encrypts e (its header and body) with c's ratchet, which it
// advances in memory.
func (a *Agent) sealEntry(c *connRecord, e *outboxEntry) error {
	var st ratchet.State
	if err := st.UnmarshalBinary(c.Ratchet); err != nil {
		return err
	}
	pt, err := encodeMessage(header{ID: e.ID, PrevHash: e.Prev, Kind: e.Kind}, e.Body)
	if err != nil {
		return err
	}
	env, err := st.Seal(a.rand, pt)
	if err != nil {
		return err
	}
	rs, err := st.MarshalBinary()
	if err != nil {
		return err
	}
	c.Ratchet = rs
	e.Env, e.Sealed, e.Epoch = append([]byte{typeMessage}, env...), nil, c.Epoch
	return nil
}

// needsSeal: e is a ratchet message not sealed with c's current ratchet.
func needsSeal(c *connRecord, e *outboxEntry) bool {
	if e.Confirmation {
		return false
	}
	return (e.Env == nil && e.Sealed == nil) || e.Epoch != c.Epoch
}

// sendBody is the SEND body of e for the queue s: the per-queue box is
// made now, with a fresh nonce, so an entry can go to whichever queue is
// in use when it is sent (rotation). Boxing the same envelope again for
// a retry or another queue reuses no ratchet key.
func (a *Agent) sendBody(s *sndQueue, e *outboxEntry) ([]byte, error) {
	if e.Env == nil {
		return e.Sealed, nil
	}
	shared, err := sharedKey(s.QueueKey, s.PeerKey)
	if err != nil {
		return nil, err
	}
	qk, err := box.PrivateKeyFromBytes(s.QueueKey)
	if err != nil {
		return nil, err
	}
	return sealQueue(a.rand, qk.PublicKey(), shared, e.Env)
}

// recoverOutbox re-seals entries written before a crash that lost the
// matching connection update (their ID is past c.SentID).
func (a *Agent) recoverOutbox(c *connRecord, h *connHandle) error {
	h.mu.Lock()
	defer h.mu.Unlock()
	entries, err := a.loadOutbox(c.ID)
	if err != nil {
		return err
	}
	changed := false
	for _, e := range entries {
		if e.Confirmation || e.ID <= c.SentID {
			continue
		}
		if e.ID != c.SentID+1 || !a.announced(c, e) {
			// Only the newest entry can be ahead; anything else is debris.
			// So is the announcement of a new queue the record never took
			// (a crash inside Rotate): the peer would move to a queue we
			// do not receive on.
			_ = a.store.Delete(outboxKey(c.ID, e.ID))
			continue
		}
		ne, err := a.seal(c, e.Kind, e.Body, e.ID, c.SentHash)
		if err != nil {
			return err
		}
		if err := a.putOutbox(c.ID, ne); err != nil {
			return err
		}
		changed = true
	}
	if changed {
		return a.saveConn(c)
	}
	return nil
}

// shutdown stops the connection's outbox worker and receipt timer.
func (h *connHandle) shutdown() {
	h.mu.Lock()
	defer h.mu.Unlock()
	if !h.closed {
		h.closed = true
		close(h.stop)
	}
	if h.timer != nil {
		h.timer.Stop()
	}
	if h.holdTimer != nil {
		h.holdTimer.Stop()
	}
}

func (h *connHandle) poke() {
	select {
	case h.wake <- struct{}{}:
	default:
	}
}

// outboxWorker sends a connection's outbox in order, retrying with backoff.
func (a *Agent) outboxWorker(id ConnID, h *connHandle) {
	defer a.wg.Done()
	select {
	case <-a.resumed:
	case <-h.stop:
		return
	}
	backoff := 100 * time.Millisecond
	for {
		sent, err := a.sendNext(id, h)
		a.noteDelay(id, h, err)
		switch {
		case err == nil && sent:
			backoff = 100 * time.Millisecond
			continue
		case err == nil:
			select {
			case <-h.wake:
				continue
			case <-h.stop:
				return
			}
		default:
			wait := backoff/2 + mrand.N(backoff/2+1)
			if backoff < 30*time.Second {
				backoff *= 2
			}
			select {
			case <-time.After(wait):
			case <-h.wake:
				backoff = 100 * time.Millisecond
			case <-h.stop:
				return
			}
		}
	}
}

// noteDelay tells DeliveryEvents when sending starts or stops failing,
// or fails for another reason.
func (a *Agent) noteDelay(id ConnID, h *connHandle, err error) {
	why := ""
	if err != nil && !errors.Is(err, ErrClosed) && a.ctx.Err() == nil {
		why = err.Error()
	}
	h.mu.Lock()
	changed := h.delay != why
	h.delay = why
	h.mu.Unlock()
	if d, ok := a.ev.(DeliveryEvents); ok && changed {
		if why == "" {
			d.DeliveryDelayed(id, nil)
		} else {
			d.DeliveryDelayed(id, err)
		}
	}
}

// sendNext sends the oldest outbox entry. It reports whether it sent one.
func (a *Agent) sendNext(id ConnID, h *connHandle) (bool, error) {
	h.mu.Lock()
	if h.closed {
		h.mu.Unlock()
		return false, nil
	}
	c, err := a.loadConn(id)
	if err != nil {
		h.mu.Unlock()
		if errors.Is(err, store.ErrNotFound) {
			return false, nil // deleted
		}
		return false, err
	}
	if c.Snd != nil && (c.Resync != nil || c.ResyncReply != nil) {
		// A re-sync request or answer goes before any message; while our
		// request waits for its answer nothing else is sent (resync.go).
		h.mu.Unlock()
		return a.sendResync(id, h, c)
	}
	if c.StaleBelow > 0 {
		// Entries whose IDs name other messages on the peer's side.
		if err := a.failStale(c); err != nil {
			h.mu.Unlock()
			return false, err
		}
	}
	keys, err := a.store.List(outboxDir(id))
	if err != nil || len(keys) == 0 || c.Snd == nil {
		h.mu.Unlock()
		return false, err
	}
	b, err := a.store.Get(keys[0])
	if err != nil {
		h.mu.Unlock()
		return false, err
	}
	var e outboxEntry
	if err := json.Unmarshal(b, &e); err != nil {
		h.mu.Unlock()
		return false, err
	}
	if !e.Confirmation && e.ID > c.SentID {
		h.mu.Unlock()
		return false, nil // not committed yet; Send will finish it
	}
	if needsSeal(c, &e) {
		// Queued while a re-sync was pending, or sealed with the ratchet
		// a re-sync replaced. The record goes first: a crash between the
		// two writes leaves the entry to be sealed again with later keys,
		// never a key the saved ratchet would use again.
		if err := a.sealEntry(c, &e); err != nil {
			h.mu.Unlock()
			return false, err
		}
		if err := a.saveConn(c); err != nil {
			h.mu.Unlock()
			return false, err
		}
		if err := a.putOutbox(id, &e); err != nil {
			h.mu.Unlock()
			return false, err
		}
	}
	h.mu.Unlock()
	ctx, cancel := context.WithTimeout(a.ctx, 30*time.Second)
	defer cancel()
	if c.NextSnd != nil && e.Env != nil && e.ID != h.tried {
		// The peer rotated its queue: move to the new one before this
		// entry, which has not been tried on the old one (see SPEC.md).
		if c, err = a.switchQueue(ctx, id, h, c); err != nil {
			return false, err
		}
	}
	relay, err := wire.ParseAddress(c.Snd.Relay)
	if err != nil {
		return false, err
	}
	auth, err := authKey(c.Snd.AuthSeed)
	if err != nil {
		return false, err
	}
	if !c.Snd.Secured {
		if err := a.tr.secure(ctx, relay, c.Snd.SndID, auth); err != nil && !errors.Is(err, wire.CodeAuth) {
			return false, err
		}
		// AUTH: perhaps we secured it before a crash; SEND tells.
	}
	body, err := a.sendBody(c.Snd, &e)
	if err != nil {
		return false, err
	}
	h.tried = e.ID
	err = a.tr.send(ctx, relay, c.Snd.SndID, auth, body)
	var code wire.ErrCode
	permanent := errors.As(err, &code) && code != wire.CodeQuota && code != wire.CodeInternal && code != wire.CodeFull
	if err != nil && !permanent {
		return false, err
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.closed {
		return false, nil
	}
	if err == nil && !e.Confirmation && e.Env != nil {
		if now, lerr := a.loadConn(id); lerr == nil && now.Epoch != e.Epoch {
			// A re-sync replaced the ratchet while this was on its way:
			// the peer may not be able to open it, and told the peer it
			// would come (its answer counted it). Keep it: it is sealed
			// again and sent after the answer; a copy the peer did open
			// is kept once.
			return true, nil
		}
	}
	// A chat message's outbox entry goes with the chat layer's "sent"
	// record, in one batch (BatchEvents), once the rest is done.
	batchEv, batched := a.ev.(BatchEvents)
	withSent := err == nil && e.Kind == KindChat && batched
	if !withSent {
		if err := a.store.Delete(keys[0]); err != nil {
			return false, err
		}
	}
	c, lerr := a.loadConn(id)
	if lerr != nil {
		if withSent {
			if err := a.store.Delete(keys[0]); err != nil {
				return false, err
			}
		}
		return true, nil
	}
	if !c.Snd.Secured {
		c.Snd.Secured = true
		if err := a.saveConn(c); err != nil {
			return true, err
		}
	}
	if err != nil {
		if e.Kind == KindChat {
			a.ev.Failed(id, e.ID, err)
		} else {
			a.ev.Problem(id, fmt.Errorf("sending %c: %w", e.Kind, err))
		}
		return true, nil
	}
	switch e.Kind {
	case KindChat:
		if !withSent {
			a.ev.Sent(id, e.ID)
			break
		}
		committed := false
		serr := batchEv.SentWith(id, e.ID, func(b *store.Batch) error {
			b.Delete(keys[0])
			if err := a.store.Apply(b); err != nil {
				return err
			}
			committed = true
			return nil
		})
		if !committed {
			if err := a.store.Delete(keys[0]); err != nil {
				return false, err
			}
		}
		if serr != nil {
			a.ev.Problem(id, fmt.Errorf("recording a sent message: %w", serr))
		}
	case KindHello:
		if c.State == StateAccepting {
			c.State = StateConnected
			if err := a.saveConn(c); err != nil {
				return true, err
			}
			a.ev.Connected(id, c.PeerInfo)
		}
	}
	return true, nil
}

// HandleMessage processes a message delivered on one of our queues and
// reports whether it may be acknowledged. Relays calls the same handler
// for every MSG, in order per queue, and offers a message whose storage
// failed again after a pause.
func (a *Agent) HandleMessage(rcvID wire.QueueID, m wire.Message) (ack bool) {
	return a.handleMessage(rcvID, m) == dispAck
}

// disposition is what the relay pool does with a delivered message.
type disposition int

const (
	// dispAck: handled (or to be dropped): acknowledge it.
	dispAck disposition = iota
	// dispRetry: not stored (storage failed): offer it again after a
	// pause. The relay sends nothing more on the queue meanwhile, and a
	// SUB repeated on the same session would not deliver it again.
	dispRetry
	// dispKeep: leave it unacknowledged: the agent acknowledges it later
	// (a held message, rotate.go), or the next session receives it again
	// (closing).
	dispKeep
)

func (a *Agent) handleMessage(rcvID wire.QueueID, m wire.Message) disposition {
	// Contact requests arrive on the address queue (address.go).
	if ack, ok := a.handleAddressMessage(rcvID, m); ok {
		if ack {
			return dispAck
		}
		return dispRetry
	}
	a.mu.Lock()
	id, ok := a.byRcv[rcvID]
	h := a.conns[id]
	closing := a.closed
	a.mu.Unlock()
	if closing {
		// Close is under way: leave it on the relay, which delivers it
		// again to the next session. Acknowledging it here would lose it.
		return dispKeep
	}
	if !ok {
		return dispAck // a queue we no longer know: drop it
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.closed {
		a.mu.Lock()
		closing = a.closed
		a.mu.Unlock()
		if closing {
			return dispKeep // as above
		}
		return dispAck // deleted meanwhile: drop it
	}
	c, err := a.loadConn(id)
	if errors.Is(err, store.ErrNotFound) {
		return dispAck // deleted: drop it
	}
	if err != nil {
		return dispRetry // unreadable just now: keep it
	}
	if m.Quota && len(m.Body) == 0 {
		// The relay's quota marker: the queue was full and SENDs were
		// refused with QUOTA. The sender keeps those in its outbox and
		// sends them again, so nothing is lost: acknowledge it.
		return dispAck
	}
	ack, err := a.receive(c, h, rcvID, m)
	switch {
	case ack:
		if err != nil {
			a.ev.Problem(id, err)
		}
		return dispAck
	case err == nil:
		return dispKeep // held (rotate.go)
	}
	a.ev.Problem(id, err)
	return dispRetry
}

// receive decrypts and dispatches one message; see SPEC.md for the order
// of writes.
func (a *Agent) receive(c *connRecord, h *connHandle, rcvID wire.QueueID, msg wire.Message) (bool, error) {
	q, onNext := &c.Rcv, false
	switch {
	case rcvID == c.Rcv.RcvID:
		h.lastOld = time.Now()
	case c.NextRcv != nil && rcvID == c.NextRcv.RcvID:
		q, onNext = c.NextRcv, true
	default:
		// A queue we rotated away from, not yet deleted on its relay.
		// What still arrives there is opened with its keys like anything
		// else (the ratchet drops a copy).
		q = nil
		for i := range c.Retired {
			if c.Retired[i].RcvID == rcvID {
				q = &c.Retired[i]
			}
		}
		if q == nil {
			return true, nil
		}
	}
	senderKey, boxed, err := splitQueue(msg.Body)
	if err != nil {
		return true, err
	}
	if q.PeerKey != nil && subtle.ConstantTimeCompare(q.PeerKey, senderKey.Bytes()) != 1 {
		return true, fmt.Errorf("%w: unexpected sender key", ErrMalformed)
	}
	shared, err := sharedKey(q.QueueKey, senderKey.Bytes())
	if err != nil {
		return true, fmt.Errorf("%w: %w", ErrMalformed, err)
	}
	inner, err := box.Open(shared, boxed)
	if err != nil {
		return true, fmt.Errorf("%w: per-queue box: %w", ErrMalformed, err)
	}
	if len(inner) > 0 && (inner[0] == typeResyncRequest || inner[0] == typeResyncReply) {
		if q.PeerKey == nil {
			return true, fmt.Errorf("%w: a re-sync message on a queue not in use", ErrMalformed)
		}
		return a.receiveResync(c, h, inner)
	}
	typ, conf, err := decodeAgentMessage(inner)
	if err != nil {
		return true, err
	}
	if typ == typeConfirmation {
		if onNext {
			return true, fmt.Errorf("%w: a confirmation on a rotated queue", ErrMalformed)
		}
		return a.acceptConfirmation(c, h, senderKey, conf, msg.Time)
	}
	if c.Ratchet == nil {
		return true, fmt.Errorf("%w: a message before the confirmation", ErrMalformed)
	}
	var st ratchet.State
	if err := st.UnmarshalBinary(c.Ratchet); err != nil {
		return false, err
	}
	pt, err := st.Open(conf.Envelope)
	if err != nil {
		// Several in a row suggest the two ratchets no longer match (the
		// peer restored an old backup without re-syncing): the user may
		// fix the connection (resync.go).
		c.BadOpens++
		if serr := a.saveConn(c); serr != nil {
			return false, serr
		}
		if c.BadOpens == badOpensFix && c.Resync == nil && !c.Answered {
			a.resyncEvent(c.ID, ResyncEvent{Status: ResyncSuggested})
		}
		if errors.Is(err, ratchet.ErrDuplicate) {
			// Processed before a crash (normal), a replay, or a peer
			// sending with an old state (an old backup): say so.
			return true, fmt.Errorf("%w: dropped as a repeat: %w", ErrUndecryptable, err)
		}
		return true, fmt.Errorf("%w: %w", ErrUndecryptable, err)
	}
	c.BadOpens = 0
	// The first message under the ratchet we answered a re-sync with
	// completes it on our side.
	resynced := c.Answered
	c.Answered = false
	hd, body, err := decodeMessage(pt)
	if err != nil {
		return true, err
	}
	if onNext && hd.ID > c.RcvdID+1 && !h.forceNext {
		// The peer moved to our new queue, but messages it sent to the old
		// one are still on their way: keep this one unacknowledged (the
		// relay sends nothing more on this queue meanwhile) and handle it
		// when the old queue has caught up, so nothing is reordered.
		// Nothing was saved: after a restart the relay delivers it again.
		h.held = &heldMsg{relay: q.Relay, rcvID: rcvID, id: hd.ID, msg: msg}
		a.watchHeld(c.ID, h)
		return false, nil
	}
	if q.PeerKey == nil {
		q.PeerKey = senderKey.Bytes()
	}
	// The ratchet opened it, so it is not a replay: a message key opens
	// once. An ID at or below RcvdID is a late arrival (the relay may store
	// concurrent SENDs in any order) or, after a crash, one we processed but
	// did not record; Events.Received keeps one copy either way.
	var integ Integrity
	var after func() // an event to report once the new state is saved
	inOrder := hd.ID == c.RcvdID+1
	if hd.ID > c.RcvdID+1 {
		integ.Missing = hd.ID - c.RcvdID - 1
	} else if inOrder && subtle.ConstantTimeCompare(hd.PrevHash[:], c.RcvdHash[:]) != 1 {
		integ.BadHash = true
	}
	rs, err := st.MarshalBinary()
	if err != nil {
		return false, err
	}
	// Before the kinds below: one of them (KindQueueNew) seals a message
	// with this state.
	c.Ratchet = rs
	// For a chat message or a receipt (not on a new queue, whose first
	// message completes a rotation below), c is brought to what it is once
	// the message is in before the chat layer stores what it brings: the
	// chat layer then writes c with its records, as one batch, the
	// connection record last (commit). On a failure c is dropped and the
	// message comes again.
	counted, committed := false, false
	count := func() {
		if hd.ID > c.RcvdID {
			c.RcvdID, c.RcvdHash = hd.ID, messageHash(pt)
		}
		c.RotCount++
		counted = true
	}
	commit := func(b *store.Batch) error {
		if err := addConn(b, c); err != nil {
			return err
		}
		if err := a.store.Apply(b); err != nil {
			return err
		}
		committed = true
		return nil
	}
	batchEv, batched := a.ev.(BatchEvents)
	switch hd.Kind {
	case KindChat:
		m := Received{ID: hd.ID, Body: body, Sent: msg.Time, Integrity: integ}
		c.Receipts = append(c.Receipts, hd.ID)
		if !onNext {
			count()
			m.Commit = commit
		}
		if err := a.ev.Received(c.ID, m); err != nil {
			return false, fmt.Errorf("storing a received message: %w", err)
		}
	case KindHello:
		if c.State == StateJoining {
			c.State = StateConnected
			c.PeerInfo = append([]byte(nil), body...)
			after = func() { a.ev.Connected(c.ID, c.PeerInfo) }
		}
	case KindReceipt:
		ids, err := decodeReceipt(body)
		switch {
		case err != nil:
			a.ev.Problem(c.ID, err)
		case batched && !onNext:
			count()
			if err := batchEv.DeliveredWith(c.ID, ids, commit); err != nil {
				return false, fmt.Errorf("storing delivery receipts: %w", err)
			}
		default:
			after = func() { a.ev.Delivered(c.ID, ids) }
		}
	case KindDeleted:
		c.State = StatePeerDeleted
		after = func() { a.ev.PeerDeleted(c.ID) }
	case KindQueueNew:
		fatal, problem := a.peerRotated(c, body)
		if fatal != nil {
			return false, fmt.Errorf("queueing the move to the new queue: %w", fatal)
		}
		if problem != nil {
			a.ev.Problem(c.ID, problem)
		} else {
			after = h.poke // the test message, once the record is saved
		}
	case KindQueueTest, KindResynced:
		// Only its queue matters (below); KindResynced, that it opened.
	default:
		a.ev.Problem(c.ID, fmt.Errorf("%w: unexpected %c", ErrMalformed, hd.Kind))
	}
	if !counted {
		if hd.ID > c.RcvdID {
			c.RcvdID, c.RcvdHash = hd.ID, messageHash(pt)
		}
		c.RotCount++
	}
	var retired *rcvQueue
	if onNext {
		// The first message on the new queue, in order: everything sent
		// to the old one has arrived, so it is retired.
		old := c.Rcv
		retired = &old
		a.completeRotation(c, h.forceNext)
	}
	if !committed {
		if err := a.saveConn(c); err != nil {
			return false, err
		}
	}
	if retired != nil {
		a.rotationEvent(c.ID, c.Rcv.Relay, true, nil)
		a.pokeRotation() // deletes the old queue
	}
	a.release(c, h)
	if resynced {
		a.resyncEvent(c.ID, ResyncEvent{Status: ResyncDone})
	}
	if after != nil {
		after()
	}
	if c.RotLimit > 0 && c.RotCount >= c.RotLimit {
		a.pokeRotation()
	}
	if len(c.Receipts) > 0 {
		a.scheduleReceipts(c.ID, h)
	}
	return true, nil
}

// acceptConfirmation handles the joiner's first message on our invitation queue.
func (a *Agent) acceptConfirmation(c *connRecord, h *connHandle, senderKey box.PublicKey, conf confirmation, _ time.Time) (bool, error) {
	if c.State != StateInvited || c.Invitation == nil {
		return true, fmt.Errorf("%w: a second confirmation", ErrMalformed)
	}
	if conf.Version < Versions.Min || conf.Version > Versions.Max {
		return true, fmt.Errorf("%w: confirmation version %d", ErrMalformed, conf.Version)
	}
	rc, err := ratchet.ParseConfirmation(conf.Ratchet)
	if err != nil {
		return true, fmt.Errorf("%w: %w", ErrMalformed, err)
	}
	var sec ratchet.InvitationSecret
	if err := sec.UnmarshalBinary(c.Invitation); err != nil {
		return false, err
	}
	st, err := sec.Accept(rc)
	if err != nil {
		return true, fmt.Errorf("%w: %w", ErrMalformed, err)
	}
	pt, err := st.Open(conf.Envelope)
	if err != nil {
		return true, fmt.Errorf("the confirmation was rejected: %w", err)
	}
	hd, body, err := decodeMessage(pt)
	if err != nil || hd.Kind != KindReply || hd.ID != 1 {
		return true, fmt.Errorf("%w: confirmation contents", ErrMalformed)
	}
	reply, info, err := decodeReply(body)
	if err != nil {
		return true, err
	}
	if err := a.tr.check(reply.Relay); err != nil {
		return true, fmt.Errorf("the confirmation's reply queue: %w", err)
	}
	_, sndSeed, err := newAuthKey()
	if err != nil {
		return false, err
	}
	sndQK, err := box.GenerateKey(a.rand)
	if err != nil {
		return false, err
	}
	rs, err := st.MarshalBinary()
	if err != nil {
		return false, err
	}
	c.Rcv.PeerKey = senderKey.Bytes()
	c.Snd = &sndQueue{Relay: reply.Relay.String(), SndID: reply.SenderID, AuthSeed: sndSeed, QueueKey: sndQK.Bytes(), PeerKey: reply.QueueKey.Bytes()}
	c.Invitation = nil
	c.Ratchet = rs
	c.RcvdID, c.RcvdHash = 1, messageHash(pt)
	c.State = StateAccepting
	c.PeerInfo = append([]byte(nil), info...)
	hello, err := a.seal(c, KindHello, c.Hello, 1, [32]byte{})
	if err != nil {
		return false, err
	}
	c.Hello = nil
	if err := a.putOutbox(c.ID, hello); err != nil {
		return false, err
	}
	if err := a.saveConn(c); err != nil {
		return false, err
	}
	h.poke()
	a.ev.Connecting(c.ID, c.PeerInfo)
	return true, nil
}

func (a *Agent) scheduleReceipts(id ConnID, h *connHandle) {
	if h.timer != nil {
		return
	}
	h.timer = time.AfterFunc(a.delay, func() {
		h.mu.Lock()
		h.timer = nil
		h.mu.Unlock()
		a.flushReceipts(id)
	})
}

func (a *Agent) flushReceipts(id ConnID) {
	h, err := a.handle(id)
	if err != nil {
		return
	}
	h.mu.Lock()
	if h.closed {
		h.mu.Unlock()
		return
	}
	c, err := a.loadConn(id)
	if err != nil || len(c.Receipts) == 0 || c.Snd == nil || c.State == StatePeerDeleted || c.State == StateDeleting {
		h.mu.Unlock()
		return
	}
	ids := c.Receipts
	if len(ids) > maxReceiptIDs {
		ids = ids[:maxReceiptIDs]
	}
	e, err := a.seal(c, KindReceipt, encodeReceipt(ids), c.SentID+1, c.SentHash)
	if err == nil {
		c.Receipts = c.Receipts[len(ids):]
		// As in send: outbox entry, then connection record, one batch.
		var b store.Batch
		if err = addOutbox(&b, id, e); err == nil {
			if err = addConn(&b, c); err == nil {
				err = a.store.Apply(&b)
			}
		}
	}
	more := len(c.Receipts) > 0
	h.mu.Unlock()
	if err != nil {
		a.ev.Problem(id, fmt.Errorf("queueing a receipt: %w", err))
		return
	}
	h.poke()
	if more {
		a.flushReceipts(id)
	}
}

// Route is where a connection receives: what Connection says of it
// without decoding the ratchet (the security code), for passes over every
// connection.
type Route struct {
	State State
	// Relay receives the connection's messages; NextRelay, while a
	// rotation to another relay is under way.
	Relay, NextRelay string
}

// Route returns where connection id receives.
func (a *Agent) Route(id ConnID) (Route, error) {
	h, err := a.handle(id)
	if err != nil {
		return Route{}, err
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	c, err := a.loadConn(id)
	if err != nil {
		return Route{}, err
	}
	return routeOf(c), nil
}

func routeOf(c *connRecord) Route {
	r := Route{State: c.State, Relay: c.Rcv.Relay}
	if c.NextRcv != nil {
		r.NextRelay = c.NextRcv.Relay
	}
	return r
}

// Info describes a connection.
type Info struct {
	ID       ConnID
	State    State
	Created  time.Time
	PeerInfo []byte
	// SecurityCode is the same on both sides once the handshake is done;
	// nil before. Users compare it out of band to rule out a relay or a
	// link carrier in the middle.
	SecurityCode []byte
	// Relay is where we receive; NextRelay, when set, is where a queue
	// rotation is moving us.
	Relay, NextRelay string
	// Resync is where a ratchet re-sync stands: 0 (none), ResyncRequested,
	// ResyncAnswered or ResyncFailed (ResyncError says why).
	Resync      ResyncStatus
	ResyncError string
	// Undecryptable counts the messages in a row that did not decrypt.
	Undecryptable int
}

// Connection returns the current Info of a connection.
func (a *Agent) Connection(id ConnID) (Info, error) {
	h, err := a.handle(id)
	if err != nil {
		return Info{}, err
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	c, err := a.loadConn(id)
	if err != nil {
		return Info{}, err
	}
	r := routeOf(c)
	info := Info{ID: c.ID, State: r.State, Created: c.Created, PeerInfo: c.PeerInfo, Relay: r.Relay, NextRelay: r.NextRelay}
	info.Undecryptable = int(c.BadOpens)
	switch {
	case c.Resync != nil && c.Resync.Failed != "":
		info.Resync, info.ResyncError = ResyncFailed, c.Resync.Failed
	case c.Resync != nil:
		info.Resync = ResyncRequested
	case c.Answered || c.ResyncReply != nil:
		info.Resync = ResyncAnswered
	}
	if c.Ratchet != nil {
		var st ratchet.State
		if err := st.UnmarshalBinary(c.Ratchet); err != nil {
			return Info{}, err
		}
		code := st.SecurityCode()
		info.SecurityCode = code[:]
	}
	return info, nil
}

// Pending lists the chat messages queued on a connection and not yet
// accepted by the relay, oldest first. After a crash, the chat layer uses
// it to find messages whose Send never returned.
func (a *Agent) Pending(id ConnID) ([]Received, error) {
	h, err := a.handle(id)
	if err != nil {
		return nil, err
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	entries, err := a.loadOutbox(id)
	if err != nil {
		return nil, err
	}
	var out []Received
	for _, e := range entries {
		if e.Kind == KindChat {
			out = append(out, Received{ID: e.ID, Body: e.Body})
		}
	}
	return out, nil
}

// Connections lists the IDs of all connections.
func (a *Agent) Connections() []ConnID {
	a.mu.Lock()
	defer a.mu.Unlock()
	ids := make([]ConnID, 0, len(a.conns))
	for id := range a.conns {
		ids = append(ids, id)
	}
	return ids
}

// Delete deletes a connection: it tells the peer (when connected), deletes
// our receiving queue on the relay and every local record of it. An
// invitation nobody joined yet is cancelled the same way. Telling the peer
// is best effort; the queue deletion must succeed, or Delete fails and
// keeps the connection.
func (a *Agent) Delete(ctx context.Context, id ConnID) error {
	h, err := a.handle(id)
	if err != nil {
		return err
	}
	h.mu.Lock()
	c, err := a.loadConn(id)
	if err != nil {
		h.mu.Unlock()
		return err
	}
	// The notice advances the ratchet, so it is saved (as "deleting", which
	// refuses further sends) before it is sent: a failed Delete must never
	// leave a used message key to be used again.
	var notice *outboxEntry
	if c.Snd != nil && c.Ratchet != nil && c.State != StatePeerDeleted && c.State != StateInvited && c.State != StateDeleting {
		if notice, err = a.seal(c, KindDeleted, nil, c.SentID+1, c.SentHash); err != nil {
			h.mu.Unlock()
			return err
		}
	}
	c.State = StateDeleting
	if err := a.saveConn(c); err != nil {
		h.mu.Unlock()
		return err
	}
	h.mu.Unlock()
	if notice != nil && notice.Env != nil { // unsealed while a re-sync is pending: not sent
		if relay, err := wire.ParseAddress(c.Snd.Relay); err == nil {
			if auth, err := authKey(c.Snd.AuthSeed); err == nil {
				if body, err := a.sendBody(c.Snd, notice); err == nil {
					sctx, cancel := context.WithTimeout(ctx, 10*time.Second)
					_ = a.tr.send(sctx, relay, c.Snd.SndID, auth, body) // best effort
					cancel()
				}
			}
		}
	}
	relay, sub, err := c.Rcv.subscription()
	if err != nil {
		return err
	}
	if err := a.tr.deleteQueue(ctx, relay, sub); err != nil && !errors.Is(err, wire.CodeAuth) {
		return fmt.Errorf("deleting the queue on the relay: %w", err)
	}
	for _, q := range c.queues()[1:] {
		// A rotation's new queue and old ones: best effort.
		if relay, sub, err := q.subscription(); err == nil {
			_ = a.tr.deleteQueue(ctx, relay, sub)
		}
	}
	a.mu.Lock()
	delete(a.conns, id)
	for _, q := range c.queues() {
		delete(a.byRcv, q.RcvID)
	}
	a.mu.Unlock()
	h.shutdown()
	// Under the handle's lock, so that nothing still holding the handle
	// writes the connection back after it is gone.
	h.mu.Lock()
	defer h.mu.Unlock()
	return a.store.DeleteAll(store.Key("conn").Join(string(id)))
}
