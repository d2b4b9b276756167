package wire

import (
	"crypto/ecdh"
	"crypto/ed25519"
	"crypto/hkdf"
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/binary"
	"fmt"
)

// Protocol versions.
const (
	// Version1 is the only version defined by SPEC.md.
	Version1 uint16 = 1
)

// VersionRange is an inclusive range of protocol versions.
type VersionRange struct{ Min, Max uint16 }

// SupportedVersions is the range this implementation speaks.
func SupportedVersions() VersionRange { return VersionRange{Min: Version1, Max: Version1} }

// Contains reports whether v is in the range.
func (r VersionRange) Contains(v uint16) bool { return r.Min <= v && v <= r.Max }

// Handshake message layout (see SPEC.md, "Handshake").
const (
	magic             = "wisp"
	typeClientHello   = 1
	typeRelayHello    = 2
	typeClientConfirm = 3

	challengeSize = 32
	// clientHelloLen is the meaningful prefix of the client hello block.
	clientHelloLen = 4 + 1 + challengeSize + KeySize
	// relayHelloSignedLen is the part of the relay hello covered by its signature.
	relayHelloSignedLen = 4 + 1 + 2 + 2 + KeySize + KeySize
	relayHelloLen       = relayHelloSignedLen + SignatureSize
	confirmLen          = 4 + 1 + 2

	transcriptContext = "wisp relay handshake v1"
	sessionInfo       = "wisp session keys v1"
)

// Key and signature sizes.
const (
	KeySize       = 32
	SignatureSize = ed25519.SignatureSize
)

// ClientHandshake is the client's state between its hello and the relay's.
type ClientHandshake struct {
	keyHash KeyHash
	eph     *ecdh.PrivateKey
	hello   []byte
}

// NewClientHandshake starts a handshake with the relay whose identity hashes
// to keyHash, and returns the hello block to send.
func NewClientHandshake(keyHash KeyHash) (*ClientHandshake, []byte, error) {
	var challenge [challengeSize]byte
	if _, err := rand.Read(challenge[:]); err != nil {
		return nil, nil, fmt.Errorf("wire: challenge: %w", err)
	}
	eph, err := ecdh.X25519().GenerateKey(rand.Reader)
	if err != nil {
		return nil, nil, fmt.Errorf("wire: ephemeral key: %w", err)
	}
	return newClientHandshake(keyHash, challenge, eph)
}

func newClientHandshake(keyHash KeyHash, challenge [challengeSize]byte, eph *ecdh.PrivateKey) (*ClientHandshake, []byte, error) {
	b := make([]byte, BlockSize)
	copy(b, magic)
	b[4] = typeClientHello
	copy(b[5:], challenge[:])
	copy(b[5+challengeSize:], eph.PublicKey().Bytes())
	return &ClientHandshake{keyHash: keyHash, eph: eph, hello: b[:clientHelloLen]}, b, nil
}

// Finish checks the relay's hello against the expected identity, picks the
// highest common version with ours, and returns the session and the
// encrypted confirmation block to send.
func (h *ClientHandshake) Finish(relayHello []byte, ours VersionRange) (*Session, []byte, error) {
	if len(relayHello) != BlockSize {
		return nil, nil, fmt.Errorf("%w: relay hello is %d bytes", ErrBlockSize, len(relayHello))
	}
	rh, err := parseRelayHello(relayHello)
	if err != nil {
		return nil, nil, err
	}
	id := HashIdentity(rh.identity)
	if subtle.ConstantTimeCompare(id[:], h.keyHash[:]) != 1 {
		return nil, nil, ErrIdentity
	}
	signed := transcript(h.hello, relayHello[:relayHelloSignedLen])
	if !ed25519.Verify(rh.identity, signed, rh.sig) {
		return nil, nil, fmt.Errorf("%w: relay hello", ErrSignature)
	}
	v := min(ours.Max, rh.versions.Max)
	if v < ours.Min || v < rh.versions.Min || rh.versions.Min > rh.versions.Max {
		return nil, nil, fmt.Errorf("%w: relay speaks %d-%d", ErrVersion, rh.versions.Min, rh.versions.Max)
	}
	s, err := deriveSession(h.eph, rh.eph, h.hello, relayHello[:relayHelloLen], false)
	if err != nil {
		return nil, nil, err
	}
	s.Version = v
	payload := make([]byte, BlockPayloadSize)
	copy(payload, magic)
	payload[4] = typeClientConfirm
	binary.BigEndian.PutUint16(payload[5:], v)
	block, err := s.Seal(payload)
	if err != nil {
		return nil, nil, err
	}
	return s, block, nil
}

type relayHello struct {
	versions VersionRange
	identity ed25519.PublicKey
	eph      []byte
	sig      []byte
}

func parseRelayHello(b []byte) (relayHello, error) {
	var rh relayHello
	if string(b[:4]) != magic || b[4] != typeRelayHello {
		return rh, fmt.Errorf("%w: not a relay hello", ErrHandshake)
	}
	if !allZero(b[relayHelloLen:]) {
		return rh, fmt.Errorf("%w: non-zero padding", ErrHandshake)
	}
	rh.versions = VersionRange{binary.BigEndian.Uint16(b[5:]), binary.BigEndian.Uint16(b[7:])}
	rh.identity = ed25519.PublicKey(b[9 : 9+KeySize])
	rh.eph = b[9+KeySize : 9+2*KeySize]
	rh.sig = b[relayHelloSignedLen:relayHelloLen]
	return rh, nil
}

// ClientHello is the parsed first block of a handshake, as the relay sees it.
type ClientHello struct {
	raw []byte
	eph *ecdh.PublicKey
}

// ParseClientHello validates the client's hello block.
func ParseClientHello(b []byte) (*ClientHello, error) {
	if len(b) != BlockSize {
		return nil, fmt.Errorf("%w: client hello is %d bytes", ErrBlockSize, len(b))
	}
	if string(b[:4]) != magic || b[4] != typeClientHello {
		return nil, fmt.Errorf("%w: not a client hello", ErrHandshake)
	}
	if !allZero(b[clientHelloLen:]) {
		return nil, fmt.Errorf("%w: non-zero padding", ErrHandshake)
	}
	eph, err := ecdh.X25519().NewPublicKey(b[5+challengeSize : clientHelloLen])
	if err != nil {
		return nil, fmt.Errorf("%w: ephemeral key: %w", ErrHandshake, err)
	}
	return &ClientHello{raw: b[:clientHelloLen], eph: eph}, nil
}

// PendingSession is the relay's state between its hello and the client's
// confirmation.
type PendingSession struct {
	session  *Session
	versions VersionRange
}

// RelayRespond answers a client hello: it signs the transcript with the
// relay's identity key and returns the pending session and the hello block
// to send. Only the relay reveals its version range.
func RelayRespond(identity ed25519.PrivateKey, versions VersionRange, hello *ClientHello) (*PendingSession, []byte, error) {
	eph, err := ecdh.X25519().GenerateKey(rand.Reader)
	if err != nil {
		return nil, nil, fmt.Errorf("wire: ephemeral key: %w", err)
	}
	return relayRespond(identity, versions, hello, eph)
}

func relayRespond(identity ed25519.PrivateKey, versions VersionRange, hello *ClientHello, eph *ecdh.PrivateKey) (*PendingSession, []byte, error) {
	b := make([]byte, BlockSize)
	copy(b, magic)
	b[4] = typeRelayHello
	binary.BigEndian.PutUint16(b[5:], versions.Min)
	binary.BigEndian.PutUint16(b[7:], versions.Max)
	copy(b[9:], identity.Public().(ed25519.PublicKey))
	copy(b[9+KeySize:], eph.PublicKey().Bytes())
	copy(b[relayHelloSignedLen:], ed25519.Sign(identity, transcript(hello.raw, b[:relayHelloSignedLen])))
	s, err := deriveSession(eph, hello.eph.Bytes(), hello.raw, b[:relayHelloLen], true)
	if err != nil {
		return nil, nil, err
	}
	return &PendingSession{session: s, versions: versions}, b, nil
}

// Confirm opens the client's confirmation block (in place, like
// Session.Open) and checks the version it chose. After it succeeds the
// session is ready.
func (p *PendingSession) Confirm(block []byte) (*Session, error) {
	payload, err := p.session.Open(block)
	if err != nil {
		return nil, err
	}
	if string(payload[:4]) != magic || payload[4] != typeClientConfirm || !allZero(payload[confirmLen:]) {
		return nil, fmt.Errorf("%w: bad confirmation", ErrHandshake)
	}
	v := binary.BigEndian.Uint16(payload[5:])
	if !p.versions.Contains(v) {
		return nil, fmt.Errorf("%w: client chose %d", ErrVersion, v)
	}
	p.session.Version = v
	return p.session, nil
}

func transcript(clientHello, relaySigned []byte) []byte {
	t := make([]byte, 0, len(transcriptContext)+len(clientHello)+len(relaySigned))
	t = append(t, transcriptContext...)
	t = append(t, clientHello...)
	return append(t, relaySigned...)
}

func deriveSession(priv *ecdh.PrivateKey, peerPub []byte, clientHello, relayHello []byte, relay bool) (*Session, error) {
	pub, err := ecdh.X25519().NewPublicKey(peerPub)
	if err != nil {
		return nil, fmt.Errorf("%w: ephemeral key: %w", ErrHandshake, err)
	}
	shared, err := priv.ECDH(pub)
	if err != nil {
		return nil, fmt.Errorf("%w: key agreement: %w", ErrHandshake, err)
	}
	salt := sha256.Sum256(append(append([]byte{}, clientHello...), relayHello...))
	k, err := hkdf.Key(sha256.New, shared, salt[:], sessionInfo, 96)
	if err != nil {
		return nil, fmt.Errorf("wire: hkdf: %w", err)
	}
	s := &Session{}
	copy(s.ID[:], k[:32])
	c2s, s2c := k[32:64], k[64:96]
	if relay {
		s.send, s.recv = newChain(s2c), newChain(c2s)
	} else {
		s.send, s.recv = newChain(c2s), newChain(s2c)
	}
	return s, nil
}

func allZero(b []byte) bool {
	var acc byte
	for _, c := range b {
		acc |= c
	}
	return acc == 0
}
