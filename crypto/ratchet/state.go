package ratchet

import (
	"crypto/mlkem"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"math"

	"github.com/wisp-chat/wisp/crypto/internal/secret"
	"github.com/wisp-chat/wisp/crypto/pad"
	"golang.org/x/crypto/chacha20poly1305"
)

// Version is the version byte of envelopes, agreement messages and
// marshalled states.
const Version = 1

// Sizes of the envelope. See SPEC.md.
const (
	kemEKSize = mlkem.EncapsulationKeySize768 // 1184
	kemCTSize = mlkem.CiphertextSize768       // 1088
	kemSeed   = mlkem.SeedSize                // 64

	headerMaxContent = KeySize + 4 + 4 + 1 + kemEKSize + kemCTSize // 2313
	// HeaderPaddedSize is the padded size of every header plaintext.
	HeaderPaddedSize = 2320
	headerNonceSize  = chacha20poly1305.NonceSize
	tagSize          = chacha20poly1305.Overhead
	// EncryptedHeaderSize is nonce || AEAD(padded header).
	EncryptedHeaderSize = headerNonceSize + HeaderPaddedSize + tagSize // 2348
	prefixSize          = 1 + EncryptedHeaderSize

	// EnvelopeSize is the fixed size of every sealed envelope.
	EnvelopeSize = 15616
	// BodyPaddedSize is the padded size of every message body.
	BodyPaddedSize = EnvelopeSize - prefixSize - tagSize // 13251
	// MaxPlaintext is the longest plaintext one envelope carries.
	MaxPlaintext = BodyPaddedSize - pad.PrefixSize // 13249
)

// Limits on skipped message keys. See SPEC.md.
const (
	// MaxSkip is the most message keys one received message may make the
	// receiver derive and store (messages it skips over, in the current and
	// the new receiving chain together).
	MaxSkip = 1000
	// MaxSkippedTotal is the most skipped message keys stored at once.
	MaxSkippedTotal = 2000
	// MaxSkippedAge is how many receiving-chain generations (peer DH
	// ratchet steps) a skipped key survives before it is deleted.
	MaxSkippedAge = 32
)

// Errors returned by this package.
var (
	ErrMalformed      = errors.New("ratchet: malformed input")
	ErrVersion        = errors.New("ratchet: unsupported version")
	ErrLowOrder       = errors.New("ratchet: low-order or invalid public key")
	ErrTooLong        = errors.New("ratchet: plaintext too long")
	ErrNotReady       = errors.New("ratchet: cannot send before the first message is received")
	ErrDecrypt        = errors.New("ratchet: message authentication failed")
	ErrDuplicate      = errors.New("ratchet: message key already used or expired")
	ErrTooManySkipped = errors.New("ratchet: too many skipped messages")
	ErrPQ             = errors.New("ratchet: post-quantum fields missing or unexpected")
	ErrCounter        = errors.New("ratchet: message counter exhausted")
)

// skippedKey is a stored message key of a message not yet received.
type skippedKey struct {
	hk  headerKey
	n   uint32
	mk  messageKey
	gen uint32 // receiving-chain generation it belongs to
}

// State is one side of a connection. The zero value is not usable: get one
// from Join, InvitationSecret.Accept or UnmarshalBinary.
type State struct {
	_ [0]func() // not comparable

	pq bool
	ad SecurityCode
	rk rootKey

	dhs    dhPrivate
	dhsPub PublicKey // derived from dhs, not marshalled
	hasDHs bool
	dhr    PublicKey
	hasDHr bool

	cks, ckr       chainKey
	hasCKs, hasCKr bool
	hks, hkr       headerKey
	hasHKs, hasHKr bool
	nhks, nhkr     headerKey
	ns, nr, pn     uint32
	sendPending    bool // a DH ratchet send step is due before the next Seal
	gen            uint32
	skipped        []skippedKey
	kemDK          []byte // our ML-KEM-768 seed, nil until our first send step
	kemEK, kemCT   []byte // sent in every header of the current sending chain
	peerEK         []byte // the peer's latest encapsulation key
	// encapsulateHook, set only by tests, makes ML-KEM encapsulation
	// deterministic for the vectors; nil means EncapsulationKey768.Encapsulate.
	encapsulateHook func(ek *mlkem.EncapsulationKey768) (ss, ct []byte, err error)
}

// SecurityCode returns the associated data of the connection.
func (s *State) SecurityCode() SecurityCode { return s.ad }

// PQ reports whether the ML-KEM hybrid is in use.
func (s *State) PQ() bool { return s.pq }

// Skipped returns how many skipped message keys are stored.
func (s *State) Skipped() int { return len(s.skipped) }

// String never prints the keys.
func (s State) String() string { return secret.Redacted("ratchet.State") }

// GoString never prints the keys.
func (s State) GoString() string { return s.String() }

// Format never prints the keys, whatever the verb.
func (s State) Format(f fmt.State, _ rune) { secret.Format(f, "ratchet.State") }

// Equal reports whether s and o are the same state, in constant time.
func (s *State) Equal(o *State) bool {
	a, _ := s.MarshalBinary()
	b, _ := o.MarshalBinary()
	return secret.Equal(a, b)
}

// clone returns a working copy of s. The KEM byte slices are shared: they
// are never written to, only replaced.
func (s *State) clone() *State {
	c := *s
	c.skipped = append([]skippedKey(nil), s.skipped...)
	return &c
}

func cloneBytes(b []byte) []byte {
	if b == nil {
		return nil
	}
	return append([]byte(nil), b...)
}

// commit replaces s by the successful working copy c.
func (s *State) commit(c *State) {
	for i := range s.skipped {
		s.skipped[i] = skippedKey{}
	}
	*s = *c
}

// header is the plaintext of an encrypted header.
type header struct {
	dh    PublicKey
	pn, n uint32
	ek    []byte // nil or kemEKSize
	ct    []byte // nil or kemCTSize
}

const (
	hdrFlagEK = 0x01
	hdrFlagCT = 0x02
)

func (h *header) encode() []byte {
	b := make([]byte, 0, headerMaxContent)
	b = append(b, h.dh.b[:]...)
	b = binary.BigEndian.AppendUint32(b, h.pn)
	b = binary.BigEndian.AppendUint32(b, h.n)
	var flags byte
	if h.ek != nil {
		flags |= hdrFlagEK
	}
	if h.ct != nil {
		flags |= hdrFlagCT
	}
	b = append(b, flags)
	b = append(b, h.ek...)
	return append(b, h.ct...)
}

func decodeHeader(b []byte) (header, error) {
	var h header
	if len(b) < KeySize+9 {
		return h, fmt.Errorf("%w: header of %d bytes", ErrMalformed, len(b))
	}
	copy(h.dh.b[:], b)
	h.pn = binary.BigEndian.Uint32(b[32:])
	h.n = binary.BigEndian.Uint32(b[36:])
	flags := b[40]
	rest := b[41:]
	if flags&^(hdrFlagEK|hdrFlagCT) != 0 {
		return h, fmt.Errorf("%w: header flags %#x", ErrMalformed, flags)
	}
	want := 0
	if flags&hdrFlagEK != 0 {
		want += kemEKSize
	}
	if flags&hdrFlagCT != 0 {
		want += kemCTSize
	}
	if len(rest) != want {
		return h, fmt.Errorf("%w: header KEM fields", ErrMalformed)
	}
	if flags&hdrFlagEK != 0 {
		h.ek, rest = rest[:kemEKSize], rest[kemEKSize:]
	}
	if flags&hdrFlagCT != 0 {
		h.ct = rest[:kemCTSize]
	}
	return h, nil
}

// headerAD is the associated data of header encryption.
func (s *State) headerAD() []byte { return append(append([]byte(nil), s.ad[:]...), Version) }

// Seal encrypts plaintext into an envelope of exactly EnvelopeSize bytes.
// On error the state is unchanged.
func (s *State) Seal(rand io.Reader, plaintext []byte) ([]byte, error) {
	if len(plaintext) > MaxPlaintext {
		return nil, fmt.Errorf("%w: %d > %d bytes", ErrTooLong, len(plaintext), MaxPlaintext)
	}
	if !s.hasCKs && !s.sendPending {
		return nil, ErrNotReady
	}
	c := s.clone()
	if c.sendPending {
		if err := c.sendStep(rand); err != nil {
			return nil, err
		}
	}
	if c.ns == math.MaxUint32 {
		return nil, ErrCounter
	}
	var mk messageKey
	c.cks, mk = kdfChain(c.cks)
	h := header{dh: c.dhsPub, pn: c.pn, n: c.ns, ek: c.kemEK, ct: c.kemCT}
	c.ns++

	hp, err := pad.Pad(h.encode(), HeaderPaddedSize)
	if err != nil {
		panic(err) // header content is at most headerMaxContent
	}
	env := make([]byte, prefixSize, EnvelopeSize)
	env[0] = Version
	nonce := env[1 : 1+headerNonceSize]
	if _, err := io.ReadFull(rand, nonce); err != nil {
		return nil, fmt.Errorf("ratchet: reading nonce: %w", err)
	}
	headerAEAD(c.hks).Seal(env[1+headerNonceSize:1+headerNonceSize], nonce, hp, s.headerAD())

	body, err := pad.Pad(plaintext, BodyPaddedSize)
	if err != nil {
		panic(err) // length checked above
	}
	aead, bn := messageAEAD(mk)
	env = aead.Seal(env, bn, body, append(s.ad[:], env...))
	s.commit(c)
	return env, nil
}

// sendStep is the sending half of a DH ratchet step (done lazily before
// the first Seal after a receiving step).
func (s *State) sendStep(rand io.Reader) error {
	var priv dhPrivate
	if _, err := io.ReadFull(rand, priv[:]); err != nil {
		return fmt.Errorf("ratchet: generating key: %w", err)
	}
	out, err := dh(priv, s.dhr)
	if err != nil {
		return err
	}
	var kemSecret []byte
	if s.pq {
		seed := make([]byte, kemSeed)
		if _, err := io.ReadFull(rand, seed); err != nil {
			return fmt.Errorf("ratchet: generating KEM key: %w", err)
		}
		dk, err := mlkem.NewDecapsulationKey768(seed)
		if err != nil {
			return fmt.Errorf("ratchet: KEM key: %w", err)
		}
		s.kemCT = nil
		if s.peerEK != nil {
			ek, err := mlkem.NewEncapsulationKey768(s.peerEK)
			if err != nil {
				return fmt.Errorf("%w: peer KEM key: %w", ErrPQ, err)
			}
			kemSecret, s.kemCT, err = s.encapsulate(ek)
			if err != nil {
				return fmt.Errorf("ratchet: KEM encapsulation: %w", err)
			}
		}
		s.kemDK = seed
		s.kemEK = dk.EncapsulationKey().Bytes()
	}
	s.hks, s.hasHKs = s.nhks, true
	s.dhs, s.dhsPub, s.hasDHs = priv, publicOf(priv), true
	s.rk, s.cks, s.nhks = kdfRoot(s.rk, out, kemSecret)
	s.hasCKs = true
	s.pn, s.ns = s.ns, 0
	s.sendPending = false
	return nil
}

func (s *State) encapsulate(ek *mlkem.EncapsulationKey768) (ss, ct []byte, err error) {
	if s.encapsulateHook != nil {
		return s.encapsulateHook(ek)
	}
	ss, ct = ek.Encapsulate()
	return ss, ct, nil
}

// Open decrypts an envelope made by the peer's Seal. On error the state is
// unchanged; on success the message key is gone, so the same envelope can
// never be opened again.
func (s *State) Open(envelope []byte) ([]byte, error) {
	if len(envelope) != EnvelopeSize {
		return nil, fmt.Errorf("%w: envelope of %d bytes", ErrMalformed, len(envelope))
	}
	if envelope[0] != Version {
		return nil, fmt.Errorf("%w: %d", ErrVersion, envelope[0])
	}
	c := s.clone()
	mk, err := c.messageKeyFor(envelope)
	if err != nil {
		return nil, err
	}
	aead, bn := messageAEAD(mk)
	body, err := aead.Open(nil, bn, envelope[prefixSize:], append(s.ad[:], envelope[:prefixSize]...))
	if err != nil {
		return nil, ErrDecrypt
	}
	pt, err := pad.Unpad(body)
	if err != nil {
		return nil, fmt.Errorf("%w: body padding: %w", ErrMalformed, err)
	}
	s.commit(c)
	return pt, nil
}

// tryHeader decrypts the header of envelope with hk.
func (s *State) tryHeader(hk headerKey, envelope []byte) (header, bool, error) {
	nonce := envelope[1 : 1+headerNonceSize]
	p, err := headerAEAD(hk).Open(nil, nonce, envelope[1+headerNonceSize:prefixSize], s.headerAD())
	if err != nil {
		return header{}, false, nil
	}
	content, err := pad.Unpad(p)
	if err != nil {
		return header{}, true, fmt.Errorf("%w: header padding: %w", ErrMalformed, err)
	}
	h, err := decodeHeader(content)
	return h, true, err
}

// messageKeyFor finds (and removes or derives) the message key of envelope,
// updating s, which is a working copy. It tries the current receiving
// header key, then the next one, then those of older chains with stored
// skipped keys.
func (s *State) messageKeyFor(envelope []byte) (messageKey, error) {
	// 1. The current receiving chain.
	if s.hasHKr {
		h, ok, err := s.tryHeader(s.hkr, envelope)
		if err != nil {
			return messageKey{}, err
		}
		if ok {
			if !h.dh.Equal(s.dhr) {
				return messageKey{}, fmt.Errorf("%w: header key and ratchet key disagree", ErrMalformed)
			}
			if h.n < s.nr {
				return s.takeSkipped(s.hkr, h.n)
			}
			if h.n-s.nr > MaxSkip {
				return messageKey{}, fmt.Errorf("%w: %d in one message", ErrTooManySkipped, h.n-s.nr)
			}
			if len(s.skipped)+int(h.n-s.nr) > MaxSkippedTotal {
				return messageKey{}, fmt.Errorf("%w: %d stored", ErrTooManySkipped, len(s.skipped))
			}
			return s.advance(h.n), nil
		}
	}
	// 2. The next receiving chain: a DH ratchet step.
	h, ok, err := s.tryHeader(s.nhkr, envelope)
	if err != nil {
		return messageKey{}, err
	}
	if ok {
		if err := s.receiveStep(h); err != nil {
			return messageKey{}, err
		}
		return s.advance(h.n), nil
	}
	// 3. Older chains: try each distinct stored header key once. Keys are
	// compared in constant time.
	var tried []headerKey
	for _, e := range s.skipped {
		if s.hasHKr && e.hk.equal(s.hkr) || containsKey(tried, e.hk) {
			continue
		}
		tried = append(tried, e.hk)
		h, ok, err := s.tryHeader(e.hk, envelope)
		if err != nil {
			return messageKey{}, err
		}
		if ok {
			return s.takeSkipped(e.hk, h.n)
		}
	}
	return messageKey{}, ErrDecrypt
}

func (k headerKey) equal(o headerKey) bool { return secret.Equal(k[:], o[:]) }

func containsKey(keys []headerKey, k headerKey) bool {
	found := false
	for _, x := range keys {
		found = x.equal(k) || found
	}
	return found
}

// takeSkipped removes and returns the stored key of message n of the chain
// with header key hk.
func (s *State) takeSkipped(hk headerKey, n uint32) (messageKey, error) {
	for j, e := range s.skipped {
		if e.n == n && e.hk.equal(hk) {
			s.skipped = append(s.skipped[:j], s.skipped[j+1:]...)
			return e.mk, nil
		}
	}
	return messageKey{}, ErrDuplicate
}

// advance stores the keys of messages nr..n-1 of the receiving chain and
// returns the key of message n. The caller has checked the caps.
func (s *State) advance(n uint32) messageKey {
	s.advanceStore(n)
	var mk messageKey
	s.ckr, mk = kdfChain(s.ckr)
	s.nr++ // n < MaxUint32: the sender never uses it and receiveStep refuses it
	return mk
}

// receiveStep is the receiving half of a DH ratchet step for header h,
// which decrypted under the next header key.
func (s *State) receiveStep(h header) error {
	if h.n == math.MaxUint32 {
		return fmt.Errorf("%w: counter", ErrMalformed)
	}
	var oldChain uint32
	if s.hasCKr {
		if h.pn < s.nr {
			return fmt.Errorf("%w: previous chain length %d < %d received", ErrMalformed, h.pn, s.nr)
		}
		oldChain = h.pn - s.nr
	}
	if uint64(oldChain)+uint64(h.n) > MaxSkip {
		return fmt.Errorf("%w: %d in one message", ErrTooManySkipped, uint64(oldChain)+uint64(h.n))
	}
	kept := 0
	for _, e := range s.skipped {
		if s.gen+1-e.gen <= MaxSkippedAge {
			kept++
		}
	}
	if kept+int(oldChain)+int(h.n) > MaxSkippedTotal {
		return fmt.Errorf("%w: %d stored", ErrTooManySkipped, kept)
	}

	var kemSecret []byte
	switch {
	case !s.pq:
		if h.ek != nil || h.ct != nil {
			return fmt.Errorf("%w: KEM fields without the hybrid", ErrPQ)
		}
	case h.ek == nil:
		return fmt.Errorf("%w: no KEM key", ErrPQ)
	case s.kemDK == nil && h.ct != nil:
		return fmt.Errorf("%w: KEM ciphertext before our KEM key", ErrPQ)
	case s.kemDK != nil && h.ct == nil:
		return fmt.Errorf("%w: no KEM ciphertext", ErrPQ)
	case s.kemDK != nil:
		dk, err := mlkem.NewDecapsulationKey768(s.kemDK)
		if err != nil {
			return fmt.Errorf("ratchet: KEM key: %w", err)
		}
		kemSecret, err = dk.Decapsulate(h.ct)
		if err != nil {
			return fmt.Errorf("%w: %w", ErrPQ, err)
		}
	}
	if h.ek != nil {
		if _, err := mlkem.NewEncapsulationKey768(h.ek); err != nil {
			return fmt.Errorf("%w: peer KEM key: %w", ErrPQ, err)
		}
	}
	if !s.hasDHs {
		return fmt.Errorf("%w: no sending key", ErrMalformed)
	}
	out, err := dh(s.dhs, h.dh)
	if err != nil {
		return err
	}

	// Store what is left of the current chain, then expire old generations.
	if s.hasCKr {
		s.advanceStore(h.pn)
	}
	s.gen++
	live := s.skipped[:0]
	for _, e := range s.skipped {
		if s.gen-e.gen <= MaxSkippedAge {
			live = append(live, e)
		}
	}
	clear(s.skipped[len(live):])
	s.skipped = live

	s.peerEK = cloneBytes(h.ek)
	s.hkr, s.hasHKr = s.nhkr, true
	s.dhr, s.hasDHr = h.dh, true
	s.rk, s.ckr, s.nhkr = kdfRoot(s.rk, out, kemSecret)
	s.hasCKr = true
	s.nr = 0
	s.sendPending = true
	return nil
}

// advanceStore stores the keys of messages nr..n-1 of the current chain.
func (s *State) advanceStore(n uint32) {
	var mk messageKey
	for s.nr < n {
		s.ckr, mk = kdfChain(s.ckr)
		s.skipped = append(s.skipped, skippedKey{hk: s.hkr, n: s.nr, mk: mk, gen: s.gen})
		s.nr++
	}
}
