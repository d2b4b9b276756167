package agent

import (
	"crypto/sha256"
	"encoding/binary"
	"errors"
	"fmt"
	"io"

	"github.com/wisp-chat/wisp/crypto/box"
	"github.com/wisp-chat/wisp/crypto/ratchet"
	"github.com/wisp-chat/wisp/server/wire"
)

// Layer sizes (SPEC.md, "Queue messages"). Every SEND body is exactly
// wire.MaxBodySize bytes: the sender's queue key and the per-queue box.
const (
	// Version is the agent protocol version this package speaks.
	Version = 1
	// queueBoxSize is the size of the per-queue box in a SEND body.
	queueBoxSize = wire.MaxBodySize - KeySize
	// MaxBody is the largest body the agent can carry in one message, after
	// the integrity header inside the ratchet envelope.
	MaxBody = ratchet.MaxPlaintext - headerSize

	headerSize = 8 + sha256.Size + 1 // message ID, previous hash, kind

	typeConfirmation = 'C'
	typeMessage      = 'M'
)

// Versions is the range of agent protocol versions this package speaks.
var Versions = VersionRange{Min: Version, Max: Version}

// Kind is the kind of an agent message, inside the ratchet envelope.
type Kind byte

// Message kinds.
const (
	// KindReply carries the joiner's reply queue and profile (in the confirmation).
	KindReply Kind = 'R'
	// KindHello carries the inviter's profile (first message on the joiner's queue).
	KindHello Kind = 'H'
	// KindChat carries an application message (opaque to the agent).
	KindChat Kind = 'T'
	// KindReceipt acknowledges received chat messages.
	KindReceipt Kind = 'A'
	// KindDeleted tells the peer that the connection was deleted.
	KindDeleted Kind = 'D'
	// KindQueueNew announces the sender's new receiving queue (rotation):
	// the receiver of it sends there from its next outbox entry on.
	KindQueueNew Kind = 'Q'
	// KindQueueTest is the first message on a rotated queue (empty body).
	KindQueueTest Kind = 'E'
	// KindResynced is the requester's first message under the ratchet a
	// re-sync made (empty body).
	KindResynced Kind = 'Z'
)

func (k Kind) valid() bool {
	switch k {
	case KindReply, KindHello, KindChat, KindReceipt, KindDeleted, KindQueueNew, KindQueueTest, KindResynced:
		return true
	}
	return false
}

// Errors for malformed messages from peers. They are reported, the message
// is dropped (and ACKed), and the connection keeps working.
var (
	ErrMalformed = errors.New("agent: malformed message")
	ErrTooLong   = errors.New("agent: message too long")
)

// header is the integrity header of every agent message.
type header struct {
	ID       uint64
	PrevHash [sha256.Size]byte
	Kind     Kind
}

// encodeMessage builds the ratchet plaintext: header || body.
func encodeMessage(h header, body []byte) ([]byte, error) {
	if len(body) > MaxBody {
		return nil, fmt.Errorf("%w: %d bytes, the limit is %d", ErrTooLong, len(body), MaxBody)
	}
	out := make([]byte, 0, headerSize+len(body))
	out = binary.BigEndian.AppendUint64(out, h.ID)
	out = append(out, h.PrevHash[:]...)
	out = append(out, byte(h.Kind))
	return append(out, body...), nil
}

// decodeMessage splits a ratchet plaintext; the body aliases b.
func decodeMessage(b []byte) (header, []byte, error) {
	var h header
	if len(b) < headerSize {
		return h, nil, fmt.Errorf("%w: %d-byte message", ErrMalformed, len(b))
	}
	h.ID = binary.BigEndian.Uint64(b)
	copy(h.PrevHash[:], b[8:])
	h.Kind = Kind(b[8+sha256.Size])
	if h.ID == 0 || !h.Kind.valid() {
		return h, nil, fmt.Errorf("%w: bad header", ErrMalformed)
	}
	return h, b[headerSize:], nil
}

// messageHash is the hash chained into the next message's header.
func messageHash(plaintext []byte) [sha256.Size]byte { return sha256.Sum256(plaintext) }

// sealQueue builds a SEND body: our queue key || box(agent message).
func sealQueue(rand io.Reader, ours box.PublicKey, shared box.SharedKey, agentMsg []byte) ([]byte, error) {
	sealed, err := box.Seal(rand, shared, agentMsg, queueBoxSize)
	if err != nil {
		return nil, err
	}
	return append(ours.Bytes(), sealed...), nil
}

// splitQueue splits a received body into the sender's queue key and the box.
func splitQueue(body []byte) (box.PublicKey, []byte, error) {
	if len(body) != wire.MaxBodySize {
		return box.PublicKey{}, nil, fmt.Errorf("%w: %d-byte queue message", ErrMalformed, len(body))
	}
	k, err := box.ParsePublicKey(body[:KeySize])
	if err != nil {
		return box.PublicKey{}, nil, fmt.Errorf("%w: %w", ErrMalformed, err)
	}
	return k, body[KeySize:], nil
}

// confirmation is the joiner's first message on the inviter's queue.
type confirmation struct {
	Version  byte
	Ratchet  []byte // ratchet.ConfirmationSize
	Envelope []byte // ratchet.EnvelopeSize
}

func (c confirmation) encode() []byte {
	out := make([]byte, 0, 2+len(c.Ratchet)+len(c.Envelope))
	out = append(out, typeConfirmation, c.Version)
	out = append(out, c.Ratchet...)
	return append(out, c.Envelope...)
}

// decodeAgentMessage parses the box plaintext: a confirmation or a message
// (whose envelope is returned in c.Envelope).
func decodeAgentMessage(b []byte) (typ byte, c confirmation, err error) {
	if len(b) < 1 {
		return 0, c, fmt.Errorf("%w: empty", ErrMalformed)
	}
	switch b[0] {
	case typeConfirmation:
		if len(b) != 2+ratchet.ConfirmationSize+ratchet.EnvelopeSize {
			return 0, c, fmt.Errorf("%w: %d-byte confirmation", ErrMalformed, len(b))
		}
		c.Version = b[1]
		c.Ratchet = b[2 : 2+ratchet.ConfirmationSize]
		c.Envelope = b[2+ratchet.ConfirmationSize:]
	case typeMessage:
		if len(b) != 1+ratchet.EnvelopeSize {
			return 0, c, fmt.Errorf("%w: %d-byte message", ErrMalformed, len(b))
		}
		c.Envelope = b[1:]
	default:
		return 0, c, fmt.Errorf("%w: type %#x", ErrMalformed, b[0])
	}
	return b[0], c, nil
}

// replyQueue is the joiner's queue, sent in KindReply.
type replyQueue struct {
	Relay    wire.Address
	SenderID wire.QueueID
	QueueKey box.PublicKey
}

// encodeReply builds a KindReply body: reply queue || profile.
func encodeReply(q replyQueue, profile []byte) ([]byte, error) {
	addr := q.Relay.String()
	if len(addr) > 255 {
		return nil, fmt.Errorf("agent: relay address too long")
	}
	out := make([]byte, 0, 1+len(addr)+wire.IDSize+KeySize+len(profile))
	out = append(out, byte(len(addr)))
	out = append(out, addr...)
	out = append(out, q.SenderID[:]...)
	out = append(out, q.QueueKey.Bytes()...)
	return append(out, profile...), nil
}

func decodeReply(b []byte) (replyQueue, []byte, error) {
	var q replyQueue
	if len(b) < 1 || len(b) < 1+int(b[0])+wire.IDSize+KeySize {
		return q, nil, fmt.Errorf("%w: reply queue", ErrMalformed)
	}
	n := int(b[0])
	addr, err := wire.ParseAddress(string(b[1 : 1+n]))
	if err != nil {
		return q, nil, fmt.Errorf("%w: reply queue: %w", ErrMalformed, err)
	}
	q.Relay = addr
	copy(q.SenderID[:], b[1+n:])
	q.QueueKey, err = box.ParsePublicKey(b[1+n+wire.IDSize : 1+n+wire.IDSize+KeySize])
	if err != nil {
		return q, nil, fmt.Errorf("%w: reply queue key: %w", ErrMalformed, err)
	}
	return q, b[1+n+wire.IDSize+KeySize:], nil
}

// encodeReceipt lists received chat message IDs.
func encodeReceipt(ids []uint64) []byte {
	out := make([]byte, 0, 2+8*len(ids))
	out = binary.BigEndian.AppendUint16(out, uint16(len(ids)))
	for _, id := range ids {
		out = binary.BigEndian.AppendUint64(out, id)
	}
	return out
}

// maxReceiptIDs is how many IDs fit in one receipt.
const maxReceiptIDs = (MaxBody - 2) / 8

func decodeReceipt(b []byte) ([]uint64, error) {
	if len(b) < 2 || len(b) != 2+8*int(binary.BigEndian.Uint16(b)) {
		return nil, fmt.Errorf("%w: receipt", ErrMalformed)
	}
	ids := make([]uint64, binary.BigEndian.Uint16(b))
	for i := range ids {
		ids[i] = binary.BigEndian.Uint64(b[2+8*i:])
	}
	return ids, nil
}
