package wire

import (
	"bytes"
	"crypto/ed25519"
	"crypto/sha256"
	"encoding/binary"
	"fmt"
	"strings"
	"time"

	cbox "github.com/wisp-chat/wisp/crypto/box"
	"github.com/wisp-chat/wisp/crypto/pad"
	"golang.org/x/crypto/nacl/box"
)

// Sizes of identifiers and bodies.
const (
	// IDSize is the size of queue IDs and message IDs (random, from the relay).
	IDSize = 24
	// MaxCorrIDSize bounds the client's correlation ID.
	MaxCorrIDSize = 24
	// MaxPasswordSize bounds the relay password carried by NEW.
	MaxPasswordSize = 128
	// MaxBodySize is the largest SEND body. Clients pad their end-to-end
	// envelopes to exactly this size so every message looks alike.
	MaxBodySize = 16000
	// msgHeaderSize is the timestamp and flags sealed with a delivered body.
	msgHeaderSize = 8 + 1
	// sealedPlainSize is what the relay→recipient box encrypts: the
	// timestamp, flags and body, padded (crypto/pad) to the size of the
	// largest body: 2 + 9 + 16,000 = 16,011 bytes.
	sealedPlainSize = pad.PrefixSize + msgHeaderSize + MaxBodySize
	// SealedMessageSize is the size of every sealed body in MSG (after the
	// message ID), whatever the length of the message: 16,011 + the
	// 16-byte Poly1305 tag = 16,027 bytes (SPEC.md §6).
	SealedMessageSize = sealedPlainSize + cbox.TagSize
)

// QueueID is a recipient or sender ID of a queue.
type QueueID [IDSize]byte

// MsgID is the relay's random message ID; it is also the nonce of the
// relay→recipient box.
type MsgID [IDSize]byte

// Kind is a command or answer.
type Kind uint8

// Commands (client → relay) and answers (relay → client); see SPEC.md.
const (
	CmdNEW Kind = iota + 1
	CmdSKEY
	CmdSEND
	CmdSUB
	CmdACK
	CmdGET
	CmdOFF
	CmdDEL
	CmdPING
	AnsIDS
	AnsOK
	AnsMSG
	AnsEND
	AnsPONG
	AnsERR
	// Private routing (forward.go, SPEC.md §12).
	CmdPRXY // client → proxy: open a route to a destination relay
	CmdPFWD // client → proxy: forward a sealed command on a route
	CmdRKEY // proxy → destination: ask for the session's forward key
	CmdRFWD // proxy → destination: a forwarded command
	AnsPKEY // proxy → client: route ID and the destination's signed forward key
	AnsPRES // proxy → client: the destination's sealed answer
	AnsFKEY // destination → proxy: the signed forward key
	AnsRRES // destination → proxy: the sealed answer in the proxy's layer
)

var kindNames = [...]string{"", "NEW", "SKEY", "SEND", "SUB", "ACK", "GET", "OFF", "DEL", "PING", "IDS", "OK", "MSG", "END", "PONG", "ERR",
	"PRXY", "PFWD", "RKEY", "RFWD", "PKEY", "PRES", "FKEY", "RRES"}

// String returns the wire tag.
func (k Kind) String() string {
	if k == 0 || int(k) >= len(kindNames) {
		return fmt.Sprintf("Kind(%d)", uint8(k))
	}
	return kindNames[k]
}

// FromClient reports whether clients send this kind (relays answer the rest).
func (k Kind) FromClient() bool {
	return (k >= CmdNEW && k <= CmdPING) || (k >= CmdPRXY && k <= CmdRFWD)
}

// Command is one command or answer. Which fields are used depends on Kind:
//
//	NEW  AuthKey (recipient Ed25519), DHKey (recipient X25519), Password
//	IDS  RcvID, SndID, DHKey (relay X25519 for this queue)
//	SKEY AuthKey (sender Ed25519)
//	SEND Body
//	ACK  MsgID
//	MSG  MsgID, Body (sealed for the recipient, SealedMessageSize bytes: SealMessage)
//	ERR  Code
//	PRXY Relay (the destination), Password (the proxy's)
//	PKEY Route, Identity (destination's Ed25519), DHKey (forward key), KeySig
//	PFWD DHKey (client ephemeral X25519), Body (ForwardSealedSize)
//	PRES Body (AnswerSealedSize)
//	RKEY DHKey (proxy ephemeral X25519)
//	FKEY Identity, DHKey (forward key), KeySig
//	RFWD Body (ForwardLayerSize: the proxy's layer around PFWD's arguments)
//	RRES Body (AnswerLayerSize: the proxy's layer around PRES's arguments)
type Command struct {
	Kind     Kind
	AuthKey  [KeySize]byte
	DHKey    [KeySize]byte
	Password []byte
	RcvID    QueueID
	SndID    QueueID
	MsgID    MsgID
	Body     []byte
	Code     ErrCode
	Relay    Address
	Route    [RouteIDSize]byte
	Identity [KeySize]byte
	KeySig   [SignatureSize]byte
}

// Sizes of the private routing arguments.
const (
	// ForwardLayerSize is RFWD's argument: the proxy's layer around the
	// ephemeral key and the sealed command.
	ForwardLayerSize = LayerOverhead + KeySize + ForwardSealedSize
	// AnswerLayerSize is RRES's argument.
	AnswerLayerSize = LayerOverhead + AnswerSealedSize
)

func appendFixedBody(dst []byte, c *Command, n int) ([]byte, error) {
	if len(c.Body) != n {
		return nil, fmt.Errorf("%w: %s body is %d bytes, not %d", ErrCommand, c.Kind, len(c.Body), n)
	}
	return append(dst, c.Body...), nil
}

// AppendCommand appends the wire form of c.
func AppendCommand(dst []byte, c *Command) ([]byte, error) {
	if c.Kind == 0 || int(c.Kind) >= len(kindNames) {
		return nil, fmt.Errorf("%w: kind %d", ErrCommand, c.Kind)
	}
	dst = append(dst, c.Kind.String()...)
	switch c.Kind {
	case CmdNEW:
		if len(c.Password) > MaxPasswordSize {
			return nil, fmt.Errorf("%w: password", ErrTooLarge)
		}
		dst = append(dst, ' ')
		dst = append(dst, c.AuthKey[:]...)
		dst = append(dst, c.DHKey[:]...)
		dst = append(dst, byte(len(c.Password)))
		dst = append(dst, c.Password...)
	case AnsIDS:
		dst = append(dst, ' ')
		dst = append(dst, c.RcvID[:]...)
		dst = append(dst, c.SndID[:]...)
		dst = append(dst, c.DHKey[:]...)
	case CmdSKEY:
		dst = append(dst, ' ')
		dst = append(dst, c.AuthKey[:]...)
	case CmdSEND:
		if len(c.Body) > MaxBodySize {
			return nil, fmt.Errorf("%w: body is %d bytes", ErrTooLarge, len(c.Body))
		}
		dst = append(dst, ' ')
		dst = append(dst, c.Body...)
	case CmdACK:
		dst = append(dst, ' ')
		dst = append(dst, c.MsgID[:]...)
	case AnsMSG:
		if len(c.Body) != SealedMessageSize {
			return nil, fmt.Errorf("%w: sealed body is %d bytes, not %d", ErrCommand, len(c.Body), SealedMessageSize)
		}
		dst = append(dst, ' ')
		dst = append(dst, c.MsgID[:]...)
		dst = append(dst, c.Body...)
	case AnsERR:
		if _, ok := parseCode(c.Code.String()); !ok {
			return nil, fmt.Errorf("%w: error code %d", ErrCommand, c.Code)
		}
		dst = append(dst, ' ')
		dst = append(dst, c.Code.String()...)
	case CmdPRXY:
		r := c.Relay
		r.Host = strings.ToLower(r.Host)
		a := r.String()
		if len(a) > MaxAddressText || len(c.Password) > MaxPasswordSize {
			return nil, fmt.Errorf("%w: PRXY address or password", ErrTooLarge)
		}
		dst = append(dst, ' ', byte(len(a)))
		dst = append(dst, a...)
		dst = append(dst, byte(len(c.Password)))
		dst = append(dst, c.Password...)
	case AnsPKEY:
		dst = append(dst, ' ')
		dst = append(dst, c.Route[:]...)
		dst = append(dst, c.Identity[:]...)
		dst = append(dst, c.DHKey[:]...)
		dst = append(dst, c.KeySig[:]...)
	case CmdPFWD:
		dst = append(dst, ' ')
		dst = append(dst, c.DHKey[:]...)
		return appendFixedBody(dst, c, ForwardSealedSize)
	case AnsPRES:
		return appendFixedBody(append(dst, ' '), c, AnswerSealedSize)
	case CmdRKEY:
		dst = append(dst, ' ')
		dst = append(dst, c.DHKey[:]...)
	case AnsFKEY:
		dst = append(dst, ' ')
		dst = append(dst, c.Identity[:]...)
		dst = append(dst, c.DHKey[:]...)
		dst = append(dst, c.KeySig[:]...)
	case CmdRFWD:
		return appendFixedBody(append(dst, ' '), c, ForwardLayerSize)
	case AnsRRES:
		return appendFixedBody(append(dst, ' '), c, AnswerLayerSize)
	}
	return dst, nil
}

// ParseCommand parses the wire form of a command. Body and Password alias b.
func ParseCommand(b []byte) (Command, error) {
	var c Command
	tag, args, hasArgs := bytes.Cut(b, []byte{' '})
	for i := 1; i < len(kindNames); i++ {
		if string(tag) == kindNames[i] {
			c.Kind = Kind(i)
			break
		}
	}
	if c.Kind == 0 {
		return c, fmt.Errorf("%w: unknown tag", ErrCommand)
	}
	fixed := func(n int) error {
		if !hasArgs || len(args) != n {
			return fmt.Errorf("%w: %s wants %d bytes of arguments", ErrCommand, c.Kind, n)
		}
		return nil
	}
	switch c.Kind {
	case CmdNEW:
		if !hasArgs || len(args) < 2*KeySize+1 || len(args) != 2*KeySize+1+int(args[2*KeySize]) {
			return c, fmt.Errorf("%w: NEW arguments", ErrCommand)
		}
		copy(c.AuthKey[:], args)
		copy(c.DHKey[:], args[KeySize:])
		if pw := args[2*KeySize+1:]; len(pw) > 0 {
			if len(pw) > MaxPasswordSize {
				return c, fmt.Errorf("%w: password", ErrCommand)
			}
			c.Password = pw
		}
	case AnsIDS:
		if err := fixed(2*IDSize + KeySize); err != nil {
			return c, err
		}
		copy(c.RcvID[:], args)
		copy(c.SndID[:], args[IDSize:])
		copy(c.DHKey[:], args[2*IDSize:])
	case CmdSKEY:
		if err := fixed(KeySize); err != nil {
			return c, err
		}
		copy(c.AuthKey[:], args)
	case CmdSEND:
		if !hasArgs {
			return c, fmt.Errorf("%w: SEND without body separator", ErrCommand)
		}
		if len(args) > MaxBodySize {
			return c, fmt.Errorf("%w: body is %d bytes", ErrTooLarge, len(args))
		}
		c.Body = args
	case CmdACK:
		if err := fixed(IDSize); err != nil {
			return c, err
		}
		copy(c.MsgID[:], args)
	case AnsMSG:
		if err := fixed(IDSize + SealedMessageSize); err != nil {
			return c, err
		}
		copy(c.MsgID[:], args)
		c.Body = args[IDSize:]
	case AnsERR:
		code, ok := parseCode(string(args))
		if !hasArgs || !ok {
			return c, fmt.Errorf("%w: unknown error code", ErrCommand)
		}
		c.Code = code
	case CmdPRXY:
		if !hasArgs || len(args) < 2 || len(args) < 2+int(args[0]) {
			return c, fmt.Errorf("%w: PRXY arguments", ErrCommand)
		}
		n := int(args[0])
		text := string(args[1 : 1+n])
		a, err := ParseAddress(text)
		if err != nil {
			return c, fmt.Errorf("%w: PRXY address: %w", ErrCommand, err)
		}
		// One destination, one spelling: the proxy keeps one session
		// per destination, so variants (case, port spelling, base64
		// padding bits) would open several.
		if a.String() != text || strings.ToLower(a.Host) != a.Host {
			return c, fmt.Errorf("%w: PRXY address is not in canonical form", ErrCommand)
		}
		rest := args[1+n:]
		if len(rest) != 1+int(rest[0]) || int(rest[0]) > MaxPasswordSize {
			return c, fmt.Errorf("%w: PRXY password", ErrCommand)
		}
		c.Relay = a
		if len(rest) > 1 {
			c.Password = rest[1:]
		}
	case AnsPKEY:
		if err := fixed(RouteIDSize + 2*KeySize + SignatureSize); err != nil {
			return c, err
		}
		copy(c.Route[:], args)
		copy(c.Identity[:], args[RouteIDSize:])
		copy(c.DHKey[:], args[RouteIDSize+KeySize:])
		copy(c.KeySig[:], args[RouteIDSize+2*KeySize:])
	case CmdPFWD:
		if err := fixed(KeySize + ForwardSealedSize); err != nil {
			return c, err
		}
		copy(c.DHKey[:], args)
		c.Body = args[KeySize:]
	case AnsPRES:
		if err := fixed(AnswerSealedSize); err != nil {
			return c, err
		}
		c.Body = args
	case CmdRKEY:
		if err := fixed(KeySize); err != nil {
			return c, err
		}
		copy(c.DHKey[:], args)
	case AnsFKEY:
		if err := fixed(2*KeySize + SignatureSize); err != nil {
			return c, err
		}
		copy(c.Identity[:], args)
		copy(c.DHKey[:], args[KeySize:])
		copy(c.KeySig[:], args[2*KeySize:])
	case CmdRFWD:
		if err := fixed(ForwardLayerSize); err != nil {
			return c, err
		}
		c.Body = args
	case AnsRRES:
		if err := fixed(AnswerLayerSize); err != nil {
			return c, err
		}
		c.Body = args
	default:
		if hasArgs {
			return c, fmt.Errorf("%w: %s takes no arguments", ErrCommand, c.Kind)
		}
	}
	return c, nil
}

// Transmission is a signed (or unsigned) command with its correlation ID
// and entity ID. Relay pushes (MSG after SUB/ACK, END) have an empty CorrID.
type Transmission struct {
	Signature []byte
	CorrID    []byte
	EntityID  []byte
	Command   Command
	signed    []byte
}

func (t *Transmission) appendUnsigned(dst []byte) ([]byte, error) {
	dst, err := appendEnvelope(dst, t.CorrID, t.EntityID)
	if err != nil {
		return nil, err
	}
	return AppendCommand(dst, &t.Command)
}

// appendEnvelope appends the correlation ID and entity ID fields that start
// every transmission after its signature.
func appendEnvelope(dst, corrID, entityID []byte) ([]byte, error) {
	if len(corrID) > MaxCorrIDSize {
		return nil, fmt.Errorf("%w: correlation ID is %d bytes", ErrTransmission, len(corrID))
	}
	if len(entityID) != 0 && len(entityID) != IDSize {
		return nil, fmt.Errorf("%w: entity ID is %d bytes", ErrTransmission, len(entityID))
	}
	dst = append(dst, byte(len(corrID)))
	dst = append(dst, corrID...)
	dst = append(dst, byte(len(entityID)))
	return append(dst, entityID...), nil
}

// Marshal encodes an unsigned transmission.
func (t *Transmission) Marshal() ([]byte, error) {
	b, err := t.appendUnsigned([]byte{0})
	if err != nil {
		return nil, err
	}
	if len(b) > MaxTransmissionSize {
		return nil, fmt.Errorf("%w: transmission is %d bytes", ErrTooLarge, len(b))
	}
	return b, nil
}

// Sign encodes the transmission signed by key. The signature covers the
// session ID, the correlation ID, the entity ID and the command, through
// their SHA-256 digest (see SPEC.md, "Signatures").
func (t *Transmission) Sign(sessionID [32]byte, key ed25519.PrivateKey) ([]byte, error) {
	out := make([]byte, 1+SignatureSize, 1+SignatureSize+64+len(t.Command.Body)+len(t.Command.Password))
	out, err := t.appendUnsigned(out)
	if err != nil {
		return nil, err
	}
	if len(out) > MaxTransmissionSize {
		return nil, fmt.Errorf("%w: transmission is %d bytes", ErrTooLarge, len(out))
	}
	signInto(out, signContext, sessionID, key)
	return out, nil
}

// signInto fills the signature field at the start of out (1+SignatureSize
// bytes reserved) with the signature of what follows it.
func signInto(out []byte, context string, sessionID [32]byte, key ed25519.PrivateKey) {
	d := signedDigest(context, sessionID, out[1+SignatureSize:])
	out[0] = SignatureSize
	copy(out[1:], ed25519.Sign(key, d[:]))
}

// signContext separates transmission digests from any other use of a key.
const signContext = "wisp transmission v1"

// signedDigest is what a transmission's Ed25519 signature signs: hashing
// first keeps signing and verifying a 16 KB SEND cheap and copy-free.
func signedDigest(context string, sessionID [32]byte, unsigned []byte) [sha256.Size]byte {
	h := sha256.New()
	h.Write([]byte(context))
	h.Write(sessionID[:])
	h.Write(unsigned)
	var d [sha256.Size]byte
	h.Sum(d[:0])
	return d
}

// ParseTransmission parses one transmission. When the error wraps
// ErrCommand or ErrTooLarge, CorrID and EntityID are already set so the
// relay can answer that correlation ID; ErrTransmission means the framing
// itself is broken. Slices alias b.
func ParseTransmission(b []byte) (Transmission, error) {
	var t Transmission
	env, rest, err := parseEnvelope(b)
	t.Signature, t.CorrID, t.EntityID, t.signed = env.sig, env.corrID, env.entityID, env.signed
	if err != nil {
		return t, err
	}
	t.Command, err = ParseCommand(rest)
	return t, err
}

// envelope is the part of a transmission that every command set shares.
type envelope struct {
	sig, corrID, entityID []byte
	signed                []byte // everything after the signature
}

// parseEnvelope splits the signature, correlation ID and entity ID off a
// transmission and returns the command bytes after them.
func parseEnvelope(b []byte) (envelope, []byte, error) {
	var e envelope
	field := func(max int, what string) ([]byte, error) {
		if len(b) < 1 {
			return nil, fmt.Errorf("%w: truncated before %s", ErrTransmission, what)
		}
		n := int(b[0])
		if n > max || len(b) < 1+n {
			return nil, fmt.Errorf("%w: bad %s length %d", ErrTransmission, what, n)
		}
		f := b[1 : 1+n]
		b = b[1+n:]
		return f, nil
	}
	sig, err := field(SignatureSize, "signature")
	if err != nil {
		return e, nil, err
	}
	if len(sig) != 0 && len(sig) != SignatureSize {
		return e, nil, fmt.Errorf("%w: signature is %d bytes", ErrTransmission, len(sig))
	}
	e.signed = b
	if e.corrID, err = field(MaxCorrIDSize, "correlation ID"); err != nil {
		return e, nil, err
	}
	if e.entityID, err = field(IDSize, "entity ID"); err != nil {
		return e, nil, err
	}
	if len(e.entityID) != 0 && len(e.entityID) != IDSize {
		return e, nil, fmt.Errorf("%w: entity ID is %d bytes", ErrTransmission, len(e.entityID))
	}
	if len(sig) > 0 {
		e.sig = sig
	}
	return e, b, nil
}

// Verify checks the transmission's signature by pub in this session. It
// always does the full verification work, whatever the input, so callers
// can use it for constant-time AUTH answers.
func (t *Transmission) Verify(sessionID [32]byte, pub []byte) bool {
	return verifyEnvelope(signContext, sessionID, t.signed, t.Signature, pub)
}

// verifyEnvelope checks sig over signed; it does the full work whatever
// the input (missing signature, wrong key size).
func verifyEnvelope(context string, sessionID [32]byte, signed, sig, pub []byte) bool {
	present := len(sig) == SignatureSize
	if !present {
		sig = make([]byte, SignatureSize)
	}
	if len(pub) != ed25519.PublicKeySize {
		pub = make([]byte, ed25519.PublicKeySize)
	}
	d := signedDigest(context, sessionID, signed)
	ok := ed25519.Verify(pub, d[:], sig)
	return ok && present
}

// Message is a delivered message after the recipient opened it.
type Message struct {
	ID    MsgID
	Time  time.Time // second precision, set by the relay on SEND
	Quota bool      // the quota marker: some SENDs were refused with QUOTA
	Body  []byte
}

const flagQuota = 1

// SealMessage re-encrypts a stored body for the recipient with the
// precomputed relay↔recipient box key; the nonce is the message ID. The
// result is always SealedMessageSize bytes (SPEC.md §6):
//
//	secretbox(K, nonce = id, Pad(timestamp (8) || flags (1) || body, 16,011))
//
// which is crypto/box.SealWithNonce(K, id, timestamp || flags || body,
// SealedMessageSize), so the recipient's side learns nothing from the
// length. body is at most MaxBodySize (the relay stores only SEND bodies
// that parsed); a longer one returns nil, which no MSG encodes.
func SealMessage(shared *[32]byte, id MsgID, ts time.Time, quota bool, body []byte) []byte {
	if len(body) > MaxBodySize {
		return nil
	}
	inner := make([]byte, msgHeaderSize, msgHeaderSize+len(body))
	binary.BigEndian.PutUint64(inner, uint64(ts.Unix()))
	if quota {
		inner[8] = flagQuota
	}
	inner = append(inner, body...)
	k, _ := cbox.SharedKeyFromBytes(shared[:]) // 32 bytes: never fails
	sealed, err := cbox.SealWithNonce(k, cbox.Nonce(id), inner, SealedMessageSize)
	if err != nil {
		return nil // cannot happen: inner fits by the check above
	}
	return sealed
}

// OpenMessage opens a MSG body sealed by SealMessage. Anything but a
// SealedMessageSize box that authenticates and holds a well-formed padded
// header and body (strict padding, unknown flag bits zero) is ErrDecrypt.
func OpenMessage(shared *[32]byte, id MsgID, sealed []byte) (Message, error) {
	if len(sealed) != SealedMessageSize {
		return Message{}, fmt.Errorf("%w: sealed message is %d bytes, not %d", ErrDecrypt, len(sealed), SealedMessageSize)
	}
	k, _ := cbox.SharedKeyFromBytes(shared[:])
	inner, err := cbox.OpenWithNonce(k, cbox.Nonce(id), sealed)
	if err != nil || len(inner) < msgHeaderSize || inner[8]&^flagQuota != 0 {
		return Message{}, fmt.Errorf("%w: message", ErrDecrypt)
	}
	return Message{
		ID:    id,
		Time:  time.Unix(int64(binary.BigEndian.Uint64(inner)), 0),
		Quota: inner[8]&flagQuota != 0,
		Body:  inner[msgHeaderSize:],
	}, nil
}

// BoxKey precomputes the relay↔recipient box key from one side's X25519
// private key and the other's public key.
func BoxKey(peerPub, priv *[32]byte) *[32]byte {
	var k [32]byte
	box.Precompute(&k, peerPub, priv)
	return &k
}
