package agent

import (
	"crypto/ed25519"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"time"

	"github.com/wisp-chat/wisp/crypto/box"
	"github.com/wisp-chat/wisp/server/wire"
	"github.com/wisp-chat/wisp/server/wire/client"
	"github.com/wisp-chat/wisp/wasm/store"
)

// ConnID identifies a connection locally. It is random and never leaves
// the device.
type ConnID string

func newConnID() ConnID {
	var b [12]byte
	if _, err := rand.Read(b[:]); err != nil {
		panic("agent: crypto/rand failed: " + err.Error()) // unreachable on supported platforms
	}
	return ConnID(hex.EncodeToString(b[:]))
}

func (id ConnID) valid() bool { return len(id) == 24 && store.Key(id).Valid() }

// State is where a connection is in its life.
type State string

// Connection states.
const (
	// StateInvited: we made an invitation and wait for someone to join.
	StateInvited State = "invited"
	// StateJoining: we joined an invitation and wait for the inviter's hello.
	StateJoining State = "joining"
	// StateAccepting: we accepted a joiner's confirmation and are sending our hello.
	StateAccepting State = "accepting"
	// StateConnected: both directions work.
	StateConnected State = "connected"
	// StatePeerDeleted: the contact deleted the connection.
	StatePeerDeleted State = "peer-deleted"
	// StateDeleting: we are deleting the connection; nothing more is sent.
	StateDeleting State = "deleting"
)

// rcvQueue is our receiving queue.
type rcvQueue struct {
	Relay    string       `json:"relay"`
	RcvID    wire.QueueID `json:"rcv_id"`
	SndID    wire.QueueID `json:"snd_id"`
	AuthSeed []byte       `json:"auth"`      // Ed25519 seed of the recipient key
	RelayBox []byte       `json:"relay_box"` // relay↔recipient precomputed box key
	QueueKey []byte       `json:"queue_key"` // our X25519 key for the per-queue box
	PeerKey  []byte       `json:"peer_key,omitempty"`
	Created  time.Time    `json:"created,omitzero"` // when NEW made it (zero before rotation existed)
	// DeleteAfter: a retired queue is deleted on its relay from then on
	// (rotate.go).
	DeleteAfter time.Time `json:"delete_after,omitzero"`
}

// sndQueue is the peer's queue we send to.
type sndQueue struct {
	Relay    string       `json:"relay"`
	SndID    wire.QueueID `json:"snd_id"`
	AuthSeed []byte       `json:"auth"`
	Secured  bool         `json:"secured"`
	QueueKey []byte       `json:"queue_key"` // ours
	PeerKey  []byte       `json:"peer_key"`  // the recipient's
}

// connRecord is the persistent state of a connection: one record, so the
// ratchet state and the integrity counters always change together.
type connRecord struct {
	V          int       `json:"v"`
	ID         ConnID    `json:"id"`
	State      State     `json:"state"`
	Created    time.Time `json:"created"`
	Rcv        rcvQueue  `json:"rcv"`
	Snd        *sndQueue `json:"snd,omitempty"`
	Invitation []byte    `json:"invitation,omitempty"` // ratchet.InvitationSecret until accepted
	Ratchet    []byte    `json:"ratchet,omitempty"`
	SentID     uint64    `json:"sent_id"`
	SentHash   [32]byte  `json:"sent_hash"`
	RcvdID     uint64    `json:"rcvd_id"`
	RcvdHash   [32]byte  `json:"rcvd_hash"`
	Receipts   []uint64  `json:"receipts,omitempty"`
	PeerInfo   []byte    `json:"peer_info,omitempty"` // the peer's profile bytes
	Hello      []byte    `json:"hello,omitempty"`     // our info, sent when a joiner arrives

	// Queue rotation (SPEC.md, "Queue rotation").
	NextRcv  *rcvQueue  `json:"next_rcv,omitempty"`  // our new queue, announced, not yet used by the peer
	RotStart time.Time  `json:"rot_start,omitzero"`  // when NextRcv was announced
	Retired  []rcvQueue `json:"retired,omitempty"`   // old receiving queues still to delete on their relays
	NextSnd  *sndQueue  `json:"next_snd,omitempty"`  // the peer's new queue, used from the next outbox entry on
	RotDue   time.Time  `json:"rot_due,omitzero"`    // the next automatic rotation
	RotCount uint64     `json:"rot_count,omitempty"` // messages received on the current queue
	RotLimit uint64     `json:"rot_limit,omitempty"` // rotate after this many (jittered; 0: not set yet)

	// Ratchet re-synchronisation (resync.go; SPEC.md, "Ratchet
	// re-synchronisation").
	Epoch       uint32       `json:"epoch,omitempty"`        // ratchet generation; outbox entries of another are sealed again
	Resync      *resyncState `json:"resync,omitempty"`       // our request; nothing is sealed while it is set
	ResyncReply []byte       `json:"resync_reply,omitempty"` // our answer, sent before any outbox entry
	Answered    bool         `json:"answered,omitempty"`     // we answered; done at the peer's first message
	ResyncSeen  [][]byte     `json:"resync_seen,omitempty"`  // IDs of the last requests answered
	BadOpens    uint32       `json:"bad_opens,omitempty"`    // messages in a row that did not decrypt
	// StaleBelow: outbox entries with lower IDs were numbered by a state
	// older than the peer's (we answered a re-sync as the stale side);
	// the peer has other messages under those IDs, so they fail.
	StaleBelow uint64 `json:"stale_below,omitempty"`
}

const connRecordVersion = 1

// queues lists every receiving queue of c: the current one, the one a
// rotation announced and old ones not yet deleted.
func (c *connRecord) queues() []rcvQueue {
	qs := append([]rcvQueue{c.Rcv}, c.Retired...)
	if c.NextRcv != nil {
		qs = append(qs, *c.NextRcv)
	}
	return qs
}

func connKey(id ConnID) store.Key   { return store.Key("conn").Join(string(id), "state") }
func outboxDir(id ConnID) store.Key { return store.Key("conn").Join(string(id), "out") }
func outboxKey(id ConnID, n uint64) store.Key {
	return outboxDir(id).Join(fmt.Sprintf("%020d", n))
}

// isConnKey reports whether k is a connection record's key (connKey).
func isConnKey(k store.Key) bool { return k.Base() == "state" && k.Dir().Dir() == "conn" }

// isOutboxDir reports whether k is an outbox's directory (outboxDir).
func isOutboxDir(k store.Key) bool { return k.Base() == "out" && k.Dir().Dir() == "conn" }

func (a *Agent) loadConn(id ConnID) (*connRecord, error) {
	b, err := a.store.Get(connKey(id))
	if err != nil {
		return nil, err
	}
	var c connRecord
	if err := json.Unmarshal(b, &c); err != nil {
		return nil, fmt.Errorf("agent: connection record: %w", err)
	}
	if c.V != connRecordVersion || c.ID != id {
		return nil, fmt.Errorf("agent: connection record version %d", c.V)
	}
	return &c, nil
}

func (a *Agent) saveConn(c *connRecord) error {
	var b store.Batch
	if err := addConn(&b, c); err != nil {
		return err
	}
	return a.store.Apply(&b)
}

// addConn adds the write of a connection record to b.
func addConn(b *store.Batch, c *connRecord) error {
	c.V = connRecordVersion
	rec, err := json.Marshal(c)
	if err != nil {
		return err
	}
	b.Put(connKey(c.ID), rec)
	return nil
}

// outboxEntry is a message waiting for the relay's OK. The plaintext body
// is kept so that an entry written before a crash that lost the ratchet
// update can be sealed again (see SPEC.md, "Crash safety").
type outboxEntry struct {
	ID   uint64 `json:"id"`
	Kind Kind   `json:"kind"`
	Body []byte `json:"body"`
	// Env is the agent message ('M' || ratchet envelope). The per-queue box
	// around it is made when it is sent, for the queue in use then, so a
	// queue rotation does not touch the outbox.
	Env []byte `json:"env,omitempty"`
	// Sealed is a complete SEND body: the joiner's confirmation, and
	// entries written before Env existed.
	Sealed []byte `json:"sealed,omitempty"`
	// Prev is the hash chained into the message's header, so that the
	// entry can be sealed again with the same header (re-sync).
	Prev [32]byte `json:"prev"`
	// Epoch is the connection's ratchet generation Env was sealed in; an
	// entry of another generation, or without Env, is sealed before it is
	// sent (see SPEC.md, "Ratchet re-synchronisation").
	Epoch uint32 `json:"epoch,omitempty"`
	// Confirmation marks the joiner's first message, which is not a
	// ratchet message of the connection's sequence and is not re-sealed.
	Confirmation bool `json:"confirmation,omitempty"`
}

func (a *Agent) putOutbox(id ConnID, e *outboxEntry) error {
	var b store.Batch
	if err := addOutbox(&b, id, e); err != nil {
		return err
	}
	return a.store.Apply(&b)
}

// addOutbox adds the write of an outbox entry to b.
func addOutbox(b *store.Batch, id ConnID, e *outboxEntry) error {
	rec, err := json.Marshal(e)
	if err != nil {
		return err
	}
	b.Put(outboxKey(id, e.ID), rec)
	return nil
}

func (a *Agent) loadOutbox(id ConnID) ([]*outboxEntry, error) {
	keys, err := a.store.List(outboxDir(id))
	if err != nil {
		return nil, err
	}
	out := make([]*outboxEntry, 0, len(keys))
	for _, k := range keys {
		b, err := a.store.Get(k)
		if err != nil {
			return nil, err
		}
		var e outboxEntry
		if err := json.Unmarshal(b, &e); err != nil {
			return nil, fmt.Errorf("agent: outbox record: %w", err)
		}
		out = append(out, &e)
	}
	return out, nil
}

// keys of a queue, decoded from the record.

func authKey(seed []byte) (ed25519.PrivateKey, error) {
	if len(seed) != ed25519.SeedSize {
		return nil, fmt.Errorf("agent: bad auth key")
	}
	return ed25519.NewKeyFromSeed(seed), nil
}

func newAuthKey() (ed25519.PrivateKey, []byte, error) {
	_, priv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		return nil, nil, err
	}
	return priv, priv.Seed(), nil
}

func sharedKey(ourPriv, peerPub []byte) (box.SharedKey, error) {
	priv, err := box.PrivateKeyFromBytes(ourPriv)
	if err != nil {
		return box.SharedKey{}, err
	}
	pub, err := box.ParsePublicKey(peerPub)
	if err != nil {
		return box.SharedKey{}, err
	}
	return box.Precompute(priv, pub)
}

// subscription returns the relay and the client subscription of q.
func (q rcvQueue) subscription() (wire.Address, client.Subscription, error) {
	relay, err := wire.ParseAddress(q.Relay)
	if err != nil {
		return relay, client.Subscription{}, err
	}
	auth, err := authKey(q.AuthSeed)
	if err != nil {
		return relay, client.Subscription{}, err
	}
	if len(q.RelayBox) != 32 {
		return relay, client.Subscription{}, fmt.Errorf("agent: bad relay box key")
	}
	bk := [32]byte(q.RelayBox)
	return relay, client.Subscription{RcvID: q.RcvID, Auth: auth, BoxKey: &bk}, nil
}
