package agent

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"time"

	"github.com/wisp-chat/wisp/crypto/ratchet"
	"github.com/wisp-chat/wisp/server/wire"
	"github.com/wisp-chat/wisp/wasm/store"
)

// Ratchet re-synchronisation (SPEC.md, "Ratchet re-synchronisation").
//
// A profile restored from an old backup holds ratchet states the peers
// have moved past: sealing with one would use message keys again. So a
// restored connection (Options.Restored), or one whose user asks to fix it
// (Resync), runs a new key agreement before it seals anything:
//
//  1. The requester makes a fresh ratchet invitation and sends it outside
//     the ratchet, in the per-queue box (static keys, random nonce, which
//     the backup still holds), with its message counters. Its own message
//     IDs jump by ResyncGap, so a number it may have used after the backup
//     is never used again. Messages queued meanwhile wait unsealed.
//  2. The peer joins the invitation, answers in the per-queue box with the
//     confirmation and a first envelope of the new ratchet that carries
//     its counters, and replaces its ratchet. Its outbox entries sealed
//     with the old one are sealed again before they are sent.
//  3. The requester accepts, opens the envelope (so both derived the same
//     keys), replaces its ratchet and sends KindResynced under it. The
//     peer's first message opening under the new ratchet confirms it on
//     the other side.

// ResyncGap is how far a requester's message IDs jump: more than any
// number of messages sent between a backup and its restore.
const ResyncGap = 1 << 32

// badOpensFix is how many messages in a row must fail to decrypt before
// the agent suggests a re-sync (ResyncSuggested).
const badOpensFix = 3

// resyncSeenMax is how many answered request IDs a connection remembers,
// to ignore a relay replaying an old request.
const resyncSeenMax = 8

const (
	typeResyncRequest = 'S'
	typeResyncReply   = 'Y'

	resyncIDSize = 16
	// counters: next_id (8) || prev_hash (32) || rcvd_id (8).
	countersSize = 8 + sha256.Size + 8
	// 'S' || version || id || invitation || counters
	resyncRequestSize = 2 + resyncIDSize + ratchet.InvitationSize + countersSize
	// 'Y' || version || id || confirmation || envelope(id || counters)
	resyncReplySize = 2 + resyncIDSize + ratchet.ConfirmationSize + ratchet.EnvelopeSize
)

// Errors callers branch on.
var (
	// ErrResyncing: an answer to the peer's re-sync request is still to
	// be sent; a request of ours now would cross it.
	ErrResyncing = errors.New("agent: the encryption is being re-synchronised")
	// ErrSentFromOldState fails messages queued by a ratchet state older
	// than the peer's (this profile was restored from a backup without a
	// re-sync): their IDs belong to other messages on the peer's side.
	ErrSentFromOldState = errors.New("agent: not delivered: queued by an older copy of this profile; send it again")
	// ErrResyncUndeliverable (ResyncFailed): the relay refused the
	// request for good: the peer's queue is gone (a backup older than a
	// change of the peer's relay). Only a new connection helps.
	ErrResyncUndeliverable = errors.New("agent: the re-sync request could not be delivered: the contact's queue is gone")
)

// resyncState is our pending request.
type resyncState struct {
	ID      []byte    `json:"id"`
	Secret  []byte    `json:"secret"` // ratchet.InvitationSecret
	Base    uint64    `json:"base"`   // our first message ID after the re-sync
	Prev    [32]byte  `json:"prev"`   // the hash chained into message Base
	Started time.Time `json:"started"`
	Sent    bool      `json:"sent,omitempty"`
	Failed  string    `json:"failed,omitempty"` // why it could not be sent
}

// counters is one side's position, exchanged in a re-sync.
type counters struct {
	// Next is the ID of the first message the side sends under the new
	// ratchet that the other may not have; Prev is the hash chained into
	// it. Anything lower that still arrives is a late arrival.
	Next uint64
	Prev [32]byte
	// Rcvd is the last message ID the side received: the other drops its
	// outbox entries up to it (they arrived before).
	Rcvd uint64
}

func (n counters) encode(out []byte) []byte {
	out = binary.BigEndian.AppendUint64(out, n.Next)
	out = append(out, n.Prev[:]...)
	return binary.BigEndian.AppendUint64(out, n.Rcvd)
}

func decodeCounters(b []byte) (counters, error) {
	var n counters
	if len(b) != countersSize {
		return n, fmt.Errorf("%w: re-sync counters", ErrMalformed)
	}
	n.Next = binary.BigEndian.Uint64(b)
	copy(n.Prev[:], b[8:])
	n.Rcvd = binary.BigEndian.Uint64(b[8+sha256.Size:])
	if n.Next == 0 {
		return n, fmt.Errorf("%w: re-sync counters", ErrMalformed)
	}
	return n, nil
}

// resyncRequest is the requester's message, in the per-queue box.
type resyncRequest struct {
	ID         []byte
	Invitation ratchet.Invitation
	Counters   counters
}

func (r resyncRequest) encode() []byte {
	inv, _ := r.Invitation.MarshalBinary()
	out := make([]byte, 0, resyncRequestSize)
	out = append(out, typeResyncRequest, Version)
	out = append(out, r.ID...)
	out = append(out, inv...)
	return r.Counters.encode(out)
}

func decodeResyncRequest(b []byte) (resyncRequest, error) {
	var r resyncRequest
	if len(b) != resyncRequestSize || b[0] != typeResyncRequest {
		return r, fmt.Errorf("%w: %d-byte re-sync request", ErrMalformed, len(b))
	}
	if b[1] != Version {
		return r, fmt.Errorf("%w: re-sync version %d", ErrMalformed, b[1])
	}
	r.ID = b[2 : 2+resyncIDSize]
	inv, err := ratchet.ParseInvitation(b[2+resyncIDSize : 2+resyncIDSize+ratchet.InvitationSize])
	if err != nil {
		return r, fmt.Errorf("%w: re-sync invitation: %w", ErrMalformed, err)
	}
	r.Invitation = inv
	r.Counters, err = decodeCounters(b[2+resyncIDSize+ratchet.InvitationSize:])
	return r, err
}

// resyncReply is the answer, in the per-queue box: the envelope is the
// first message of the new ratchet and holds ID || counters.
type resyncReply struct {
	ID           []byte
	Confirmation ratchet.Confirmation
	Envelope     []byte
}

func (r resyncReply) encode() []byte {
	conf, _ := r.Confirmation.MarshalBinary()
	out := make([]byte, 0, resyncReplySize)
	out = append(out, typeResyncReply, Version)
	out = append(out, r.ID...)
	out = append(out, conf...)
	return append(out, r.Envelope...)
}

func decodeResyncReply(b []byte) (resyncReply, error) {
	var r resyncReply
	if len(b) != resyncReplySize || b[0] != typeResyncReply {
		return r, fmt.Errorf("%w: %d-byte re-sync answer", ErrMalformed, len(b))
	}
	if b[1] != Version {
		return r, fmt.Errorf("%w: re-sync version %d", ErrMalformed, b[1])
	}
	r.ID = b[2 : 2+resyncIDSize]
	conf, err := ratchet.ParseConfirmation(b[2+resyncIDSize : 2+resyncIDSize+ratchet.ConfirmationSize])
	if err != nil {
		return r, fmt.Errorf("%w: re-sync confirmation: %w", ErrMalformed, err)
	}
	r.Confirmation = conf
	r.Envelope = b[2+resyncIDSize+ratchet.ConfirmationSize:]
	return r, nil
}

// ResyncStatus is a step of a re-synchronisation.
type ResyncStatus int

const (
	// ResyncRequested: we asked the peer for a new key agreement (after a
	// restore, or Resync); nothing is sent until it answers.
	ResyncRequested ResyncStatus = iota + 1
	// ResyncAnswered: the peer asked and we answered; done at its next
	// message.
	ResyncAnswered
	// ResyncDone: both sides use the new ratchet. The security code
	// changed.
	ResyncDone
	// ResyncFailed: the request could not be delivered (Err says why).
	ResyncFailed
	// ResyncSuggested: several messages in a row did not decrypt: offer
	// the user to fix the connection (Resync).
	ResyncSuggested
)

// ResyncEvent reports a step of a re-synchronisation.
type ResyncEvent struct {
	Status ResyncStatus
	// UnreadFrom..UnreadTo (ResyncAnswered; zero when none): our messages
	// with these IDs left before the request and after the last one the
	// peer's restored copy has. The relay took them, but the peer may not
	// be able to read them; those without a receipt are best sent again.
	UnreadFrom, UnreadTo uint64
	Err                  error
}

// ResyncEvents is implemented by Events that follow re-synchronisations.
type ResyncEvents interface {
	Resync(conn ConnID, ev ResyncEvent)
}

func (a *Agent) resyncEvent(id ConnID, ev ResyncEvent) {
	if re, ok := a.ev.(ResyncEvents); ok {
		re.Resync(id, ev)
	}
}

// Resync asks the peer for a new key agreement ("Fix connection"): for a
// connection whose messages no longer decrypt, or to repeat a request
// that got no answer. Messages sent meanwhile wait, unsealed, and go out
// after it under the new ratchet. ResyncEvents follow its progress.
func (a *Agent) Resync(_ context.Context, id ConnID) error {
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
	if c.ResyncReply != nil {
		h.mu.Unlock()
		return ErrResyncing
	}
	if err := a.markResync(c, false); err != nil {
		h.mu.Unlock()
		return err
	}
	if err := a.saveConn(c); err != nil {
		h.mu.Unlock()
		return err
	}
	h.mu.Unlock()
	a.resyncEvent(id, ResyncEvent{Status: ResyncRequested})
	h.poke()
	return nil
}

// markResync makes a new request on c (in memory). A repeated request
// keeps the first one's numbering, unless fresh: a restore jumps again,
// since the pending request in a backup may have been answered, and its
// numbering used, by the device the backup came from.
func (a *Agent) markResync(c *connRecord, fresh bool) error {
	if c.State != StateConnected || c.Ratchet == nil || c.Snd == nil {
		return ErrNotConnected
	}
	sec, _, err := ratchet.NewInvitation(a.rand, a.pq)
	if err != nil {
		return err
	}
	secret, err := sec.MarshalBinary()
	if err != nil {
		return err
	}
	id := make([]byte, resyncIDSize)
	if _, err := io.ReadFull(a.rand, id); err != nil {
		return err
	}
	r := &resyncState{ID: id, Secret: secret, Started: time.Now().UTC()}
	if c.Resync != nil && !fresh {
		r.Base, r.Prev = c.Resync.Base, c.Resync.Prev
	} else {
		r.Base, r.Prev = c.SentID+ResyncGap, c.SentHash
		c.SentID = r.Base - 1
	}
	c.Resync, c.Answered = r, false
	return nil
}

// markRestored marks every connected connection of a restored store as
// needing a re-sync, before anything is received or sent.
func (a *Agent) markRestored() error {
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
		if err != nil {
			continue // Start reports it
		}
		if c.State != StateConnected {
			continue
		}
		if err := a.markResync(c, true); err != nil {
			return err
		}
		if err := a.saveConn(c); err != nil {
			return err
		}
		a.resyncEvent(id, ResyncEvent{Status: ResyncRequested})
	}
	return nil
}

// sendResync sends our pending request or answer (outbox worker).
func (a *Agent) sendResync(id ConnID, h *connHandle, c *connRecord) (bool, error) {
	var msg []byte
	switch {
	case c.ResyncReply != nil:
		msg = c.ResyncReply
	case c.Resync != nil && !c.Resync.Sent && c.Resync.Failed == "":
		sec, err := ratchetSecret(c.Resync.Secret)
		if err != nil {
			return false, err
		}
		msg = resyncRequest{ID: c.Resync.ID, Invitation: sec.Invitation(),
			Counters: counters{Next: c.Resync.Base, Prev: c.Resync.Prev, Rcvd: c.RcvdID}}.encode()
	default:
		return false, nil // waiting for the answer
	}
	ctx, cancel := context.WithTimeout(a.ctx, 30*time.Second)
	defer cancel()
	err := a.sendRaw(ctx, c.Snd, msg)
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
	c2, lerr := a.loadConn(id)
	if lerr != nil {
		return false, nil
	}
	var failed error
	switch {
	case c2.ResyncReply != nil && bytes.Equal(c2.ResyncReply, msg):
		c2.ResyncReply = nil
		if err != nil {
			a.ev.Problem(id, fmt.Errorf("sending a re-sync answer: %w", err))
		}
	case c2.Resync != nil && bytes.Equal(c2.Resync.ID, msg[2:2+resyncIDSize]) && msg[0] == typeResyncRequest:
		c2.Resync.Sent = err == nil
		if err != nil {
			c2.Resync.Failed = err.Error()
			failed = err
		}
	default:
		return true, nil // replaced meanwhile
	}
	if err := a.saveConn(c2); err != nil {
		return false, err
	}
	if failed != nil {
		a.resyncEvent(id, ResyncEvent{Status: ResyncFailed, Err: fmt.Errorf("%w: %w", ErrResyncUndeliverable, failed)})
	}
	return true, nil
}

func ratchetSecret(b []byte) (*ratchet.InvitationSecret, error) {
	var sec ratchet.InvitationSecret
	if err := sec.UnmarshalBinary(b); err != nil {
		return nil, err
	}
	return &sec, nil
}

// sendRaw sends an agent message outside the outbox, boxed for s.
func (a *Agent) sendRaw(ctx context.Context, s *sndQueue, agentMsg []byte) error {
	relay, err := wire.ParseAddress(s.Relay)
	if err != nil {
		return err
	}
	auth, err := authKey(s.AuthSeed)
	if err != nil {
		return err
	}
	body, err := a.sendBody(s, &outboxEntry{Env: agentMsg})
	if err != nil {
		return err
	}
	return a.tr.send(ctx, relay, s.SndID, auth, body)
}

// receiveResync handles a request or an answer (h.mu held).
func (a *Agent) receiveResync(c *connRecord, h *connHandle, inner []byte) (bool, error) {
	if c.State != StateConnected || c.Ratchet == nil || c.Snd == nil {
		return true, fmt.Errorf("%w: a re-sync message on a connection that is not established", ErrMalformed)
	}
	if inner[0] == typeResyncRequest {
		req, err := decodeResyncRequest(inner)
		if err != nil {
			return true, err
		}
		return a.answerResync(c, h, req)
	}
	rep, err := decodeResyncReply(inner)
	if err != nil {
		return true, err
	}
	return a.completeResync(c, h, rep)
}

// answerResync joins the peer's new invitation.
func (a *Agent) answerResync(c *connRecord, h *connHandle, req resyncRequest) (bool, error) {
	for _, seen := range c.ResyncSeen {
		if bytes.Equal(seen, req.ID) {
			return true, nil // answered before (a crash before the ACK, or a replay)
		}
	}
	if c.Resync != nil && c.Resync.Sent && c.Resync.Failed == "" && bytes.Compare(c.Resync.ID, req.ID) > 0 {
		// Both sides asked at once: the larger ID is answered, so the peer
		// answers ours and drops its own. (One of ours the peer cannot
		// have seen, not sent yet or undeliverable, gives way.)
		return true, nil
	}
	st, conf, err := ratchet.Join(a.rand, req.Invitation, a.pq)
	if err != nil {
		return true, fmt.Errorf("%w: re-sync invitation: %w", ErrMalformed, err)
	}
	entries, err := a.loadOutbox(c.ID)
	if err != nil {
		return false, err
	}
	// Our side. Entries the peer already has are dropped (below); the
	// others keep their IDs and are sealed again. A request of ours that
	// lost the crossing keeps its numbering. If the peer has received IDs
	// past any we sent, our own state is the older one (restored without
	// a re-sync): our numbering jumps too, and entries with IDs the peer
	// has seen for other messages fail rather than be dropped as copies.
	ours := counters{Next: c.SentID + 1, Prev: c.SentHash, Rcvd: c.RcvdID}
	stale := c.Resync == nil && req.Counters.Rcvd > c.SentID
	switch {
	case c.Resync != nil:
		ours.Next, ours.Prev = c.Resync.Base, c.Resync.Prev
	case stale:
		ours.Next = req.Counters.Rcvd + ResyncGap
		c.SentID = ours.Next - 1
	}
	var delivered []*outboxEntry
	for _, e := range entries {
		switch {
		case e.Confirmation:
		case e.ID <= req.Counters.Rcvd && stale:
			// Failed by the outbox worker (StaleBelow, saved below), so
			// that a crash cannot send them under IDs the peer has.
		case e.ID <= req.Counters.Rcvd:
			delivered = append(delivered, e)
		case c.Resync == nil && e.ID < ours.Next:
			ours.Next, ours.Prev = e.ID, e.Prev
		}
	}
	pt := ours.encode(append([]byte(nil), req.ID...))
	env, err := st.Seal(a.rand, pt)
	if err != nil {
		return false, err
	}
	rs, err := st.MarshalBinary()
	if err != nil {
		return false, err
	}
	c.Ratchet, c.Epoch = rs, c.Epoch+1
	c.ResyncReply = resyncReply{ID: req.ID, Confirmation: conf, Envelope: env}.encode()
	wasPending := c.Resync
	c.Resync, c.Answered, c.BadOpens = nil, true, 0
	c.ResyncSeen = append(c.ResyncSeen, append([]byte(nil), req.ID...))
	if n := len(c.ResyncSeen); n > resyncSeenMax {
		c.ResyncSeen = c.ResyncSeen[n-resyncSeenMax:]
	}
	if req.Counters.Next-1 > c.RcvdID {
		c.RcvdID, c.RcvdHash = req.Counters.Next-1, req.Counters.Prev
	}
	if stale {
		c.StaleBelow = req.Counters.Rcvd + 1
	}
	if err := a.saveConn(c); err != nil {
		return false, err
	}
	ok := a.dropEntries(c.ID, delivered)
	ev := ResyncEvent{Status: ResyncAnswered}
	if !stale && wasPending == nil && ours.Next-1 > req.Counters.Rcvd {
		ev.UnreadFrom, ev.UnreadTo = req.Counters.Rcvd+1, ours.Next-1
	}
	a.resyncEvent(c.ID, ev)
	a.reportDelivered(c.ID, ok)
	h.poke()
	return true, nil
}

// completeResync accepts the peer's answer to our request.
func (a *Agent) completeResync(c *connRecord, h *connHandle, rep resyncReply) (bool, error) {
	if c.Resync == nil || !bytes.Equal(c.Resync.ID, rep.ID) {
		return true, fmt.Errorf("%w: an answer to a re-sync request that is not pending", ErrMalformed)
	}
	sec, err := ratchetSecret(c.Resync.Secret)
	if err != nil {
		return false, err
	}
	st, err := sec.Accept(rep.Confirmation)
	if err != nil {
		return true, fmt.Errorf("%w: re-sync confirmation: %w", ErrMalformed, err)
	}
	pt, err := st.Open(rep.Envelope)
	if err != nil {
		return true, fmt.Errorf("%w: re-sync answer: %w", ErrMalformed, err)
	}
	if len(pt) != resyncIDSize+countersSize || !bytes.Equal(pt[:resyncIDSize], rep.ID) {
		return true, fmt.Errorf("%w: re-sync answer", ErrMalformed)
	}
	theirs, err := decodeCounters(pt[resyncIDSize:])
	if err != nil {
		return true, err
	}
	entries, err := a.loadOutbox(c.ID)
	if err != nil {
		return false, err
	}
	var drop []*outboxEntry
	for _, e := range entries {
		if !e.Confirmation && e.ID <= theirs.Rcvd {
			drop = append(drop, e)
		}
	}
	if theirs.Next-1 > c.RcvdID {
		c.RcvdID, c.RcvdHash = theirs.Next-1, theirs.Prev
	}
	rs, err := st.MarshalBinary()
	if err != nil {
		return false, err
	}
	c.Ratchet, c.Epoch = rs, c.Epoch+1
	c.Resync, c.Answered, c.BadOpens = nil, false, 0
	// Our confirmation, after what was queued meanwhile: its arrival
	// completes the re-sync on the peer's side (as any message would).
	e, err := a.seal(c, KindResynced, nil, c.SentID+1, c.SentHash)
	if err != nil {
		return false, err
	}
	if err := a.putOutbox(c.ID, e); err != nil {
		return false, err
	}
	if err := a.saveConn(c); err != nil {
		return false, err
	}
	delivered := a.dropEntries(c.ID, drop)
	a.resyncEvent(c.ID, ResyncEvent{Status: ResyncDone})
	a.reportDelivered(c.ID, delivered)
	h.poke()
	return true, nil
}

// dropEntries deletes outbox entries settled by a re-sync and returns the
// chat messages among them.
func (a *Agent) dropEntries(id ConnID, drop []*outboxEntry) []uint64 {
	var ids []uint64
	for _, e := range drop {
		if err := a.store.Delete(outboxKey(id, e.ID)); err != nil && !errors.Is(err, store.ErrNotFound) {
			continue // sent again, and kept once by the peer
		}
		if e.Kind == KindChat {
			ids = append(ids, e.ID)
		}
	}
	return ids
}

func (a *Agent) reportDelivered(id ConnID, ids []uint64) {
	if len(ids) == 0 {
		return
	}
	for _, n := range ids {
		a.ev.Sent(id, n)
	}
	a.ev.Delivered(id, ids)
}

// failStale fails the outbox entries below c.StaleBelow (h.mu held): we
// answered a re-sync as the stale side, and the peer has other messages
// under those IDs. The record is cleared after the deletions, so a crash
// in between fails the rest next time.
func (a *Agent) failStale(c *connRecord) error {
	entries, err := a.loadOutbox(c.ID)
	if err != nil {
		return err
	}
	for _, e := range entries {
		if e.Confirmation || e.ID >= c.StaleBelow {
			continue
		}
		if err := a.store.Delete(outboxKey(c.ID, e.ID)); err != nil && !errors.Is(err, store.ErrNotFound) {
			return err
		}
		if e.Kind == KindChat {
			a.ev.Failed(c.ID, e.ID, ErrSentFromOldState)
		}
	}
	c.StaleBelow = 0
	return a.saveConn(c)
}
