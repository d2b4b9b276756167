package ratchet

import (
	"crypto/sha256"
	"fmt"
	"io"
	"strings"

	"github.com/wisp-chat/wisp/crypto/internal/secret"
)

// KeySize is the size of an X25519 key.
const KeySize = 32

// Wire sizes of the agreement messages.
const (
	// InvitationSize is the size of a marshalled Invitation.
	InvitationSize = 2 + 2*KeySize
	// ConfirmationSize is the size of a marshalled Confirmation.
	ConfirmationSize = 2 + 2*KeySize
)

const flagPQ = 0x01

// PublicKey is an X25519 ratchet public key. It is not secret.
type PublicKey struct{ b [KeySize]byte }

// Bytes returns a copy of the key bytes.
func (k PublicKey) Bytes() []byte { return append([]byte(nil), k.b[:]...) }

// Equal reports whether k and o are the same key.
func (k PublicKey) Equal(o PublicKey) bool { return k.b == o.b }

// Invitation is the public part of an invitation: the inviter's two X25519
// keys and whether it offers the ML-KEM hybrid. KEM keys are never in it.
type Invitation struct {
	Key1, Key2 PublicKey
	PQ         bool
}

// MarshalBinary encodes inv as version (1) || flags (1) || Key1 || Key2.
func (inv Invitation) MarshalBinary() ([]byte, error) {
	return marshalAgreement(inv.Key1, inv.Key2, inv.PQ), nil
}

// ParseInvitation decodes a marshalled Invitation.
func ParseInvitation(b []byte) (Invitation, error) {
	k1, k2, pq, err := parseAgreement(b)
	return Invitation{Key1: k1, Key2: k2, PQ: pq}, err
}

// Confirmation is the joiner's answer to an Invitation: its two X25519 keys
// and whether it uses the ML-KEM hybrid.
type Confirmation struct {
	Key1, Key2 PublicKey
	PQ         bool
}

// MarshalBinary encodes c as version (1) || flags (1) || Key1 || Key2.
func (c Confirmation) MarshalBinary() ([]byte, error) {
	return marshalAgreement(c.Key1, c.Key2, c.PQ), nil
}

// ParseConfirmation decodes a marshalled Confirmation.
func ParseConfirmation(b []byte) (Confirmation, error) {
	k1, k2, pq, err := parseAgreement(b)
	return Confirmation{Key1: k1, Key2: k2, PQ: pq}, err
}

func marshalAgreement(k1, k2 PublicKey, pq bool) []byte {
	out := make([]byte, 0, InvitationSize)
	var flags byte
	if pq {
		flags = flagPQ
	}
	out = append(out, Version, flags)
	out = append(out, k1.b[:]...)
	return append(out, k2.b[:]...)
}

func parseAgreement(b []byte) (k1, k2 PublicKey, pq bool, err error) {
	if len(b) != InvitationSize {
		return k1, k2, false, fmt.Errorf("%w: agreement message of %d bytes", ErrMalformed, len(b))
	}
	if b[0] != Version {
		return k1, k2, false, fmt.Errorf("%w: %d", ErrVersion, b[0])
	}
	if b[1]&^flagPQ != 0 {
		return k1, k2, false, fmt.Errorf("%w: unknown flags %#x", ErrMalformed, b[1])
	}
	copy(k1.b[:], b[2:34])
	copy(k2.b[:], b[34:66])
	return k1, k2, b[1]&flagPQ != 0, nil
}

// SecurityCode is the associated data of a connection: a hash of both
// parties' agreement keys and PQ flags. Both sides compute the same value;
// the chat layer shows it so users can compare it out of band.
type SecurityCode [32]byte

// Digits renders the code for people to compare: six groups of five
// decimal digits, from the first 30 bytes (see SPEC.md).
func (c SecurityCode) Digits() string {
	var b strings.Builder
	for g := range 6 {
		var v uint64
		for _, x := range c[5*g : 5*g+5] {
			v = v<<8 | uint64(x)
		}
		if g > 0 {
			b.WriteByte(' ')
		}
		fmt.Fprintf(&b, "%05d", v%100000)
	}
	return b.String()
}

// InvitationSecret holds the inviter's private keys until a joiner answers.
type InvitationSecret struct {
	_          [0]func() // not comparable
	key1, key2 dhPrivate
	pq         bool
}

// NewInvitation creates the inviter's keys; pq offers the ML-KEM hybrid.
func NewInvitation(rand io.Reader, pq bool) (*InvitationSecret, Invitation, error) {
	s := &InvitationSecret{pq: pq}
	if _, err := io.ReadFull(rand, s.key1[:]); err != nil {
		return nil, Invitation{}, fmt.Errorf("ratchet: generating key: %w", err)
	}
	if _, err := io.ReadFull(rand, s.key2[:]); err != nil {
		return nil, Invitation{}, fmt.Errorf("ratchet: generating key: %w", err)
	}
	return s, s.Invitation(), nil
}

// Invitation returns the public part of s.
func (s *InvitationSecret) Invitation() Invitation {
	return Invitation{Key1: publicOf(s.key1), Key2: publicOf(s.key2), PQ: s.pq}
}

// MarshalBinary encodes s for encrypted storage: version || flags || key1 || key2.
func (s *InvitationSecret) MarshalBinary() ([]byte, error) {
	var flags byte
	if s.pq {
		flags = flagPQ
	}
	out := append([]byte{Version, flags}, s.key1[:]...)
	return append(out, s.key2[:]...), nil
}

// UnmarshalBinary restores s from MarshalBinary's output.
func (s *InvitationSecret) UnmarshalBinary(b []byte) error {
	if len(b) != 2+2*KeySize {
		return fmt.Errorf("%w: invitation secret of %d bytes", ErrMalformed, len(b))
	}
	if b[0] != Version {
		return fmt.Errorf("%w: %d", ErrVersion, b[0])
	}
	if b[1]&^flagPQ != 0 {
		return fmt.Errorf("%w: unknown flags %#x", ErrMalformed, b[1])
	}
	s.pq = b[1]&flagPQ != 0
	copy(s.key1[:], b[2:34])
	copy(s.key2[:], b[34:66])
	return nil
}

// Equal reports whether s and o hold the same keys, in constant time.
func (s *InvitationSecret) Equal(o *InvitationSecret) bool {
	a, _ := s.MarshalBinary()
	b, _ := o.MarshalBinary()
	return secret.Equal(a, b)
}

// String never prints the keys.
func (s InvitationSecret) String() string { return secret.Redacted("ratchet.InvitationSecret") }

// GoString never prints the keys.
func (s InvitationSecret) GoString() string { return s.String() }

// Format never prints the keys, whatever the verb.
func (s InvitationSecret) Format(f fmt.State, _ rune) {
	secret.Format(f, "ratchet.InvitationSecret")
}

// agreement is what both sides derive from the four public keys.
type agreement struct {
	ad              SecurityCode
	rk              rootKey
	hkJoiner        headerKey // first header key of the joiner's sending chain
	nhkInviter      headerKey // first header key of the inviter's sending chain
	pqInviter, pqJo bool
}

func associatedData(inv Invitation, conf Confirmation) SecurityCode {
	h := sha256.New()
	h.Write([]byte(labelAD))
	i, _ := inv.MarshalBinary()
	c, _ := conf.MarshalBinary()
	h.Write(i)
	h.Write(c)
	return SecurityCode(h.Sum(nil))
}

// x3dh derives the agreement from dh1 = DH(J1, I2), dh2 = DH(J2, I1),
// dh3 = DH(J2, I2) (I = inviter, J = joiner keys) through HKDF with the
// associated data as salt.
func x3dh(inv Invitation, conf Confirmation, dh1, dh2, dh3 []byte) agreement {
	ad := associatedData(inv, conf)
	ikm := make([]byte, 0, 96)
	ikm = append(append(append(ikm, dh1...), dh2...), dh3...)
	out := hkdfKey(ikm, ad[:], labelX3DH, 96)
	clear(ikm)
	a := agreement{
		ad:         ad,
		rk:         rootKey(out[0:32]),
		hkJoiner:   headerKey(out[32:64]),
		nhkInviter: headerKey(out[64:96]),
		pqInviter:  inv.PQ,
		pqJo:       conf.PQ,
	}
	clear(out)
	return a
}

// Join answers inv: it returns the joiner's state, ready to Seal the first
// message, and the Confirmation to send with it. pq says whether the joiner
// supports the ML-KEM hybrid; it is used when the invitation offers it too.
func Join(rand io.Reader, inv Invitation, pq bool) (*State, Confirmation, error) {
	var j1, j2 dhPrivate
	if _, err := io.ReadFull(rand, j1[:]); err != nil {
		return nil, Confirmation{}, fmt.Errorf("ratchet: generating key: %w", err)
	}
	if _, err := io.ReadFull(rand, j2[:]); err != nil {
		return nil, Confirmation{}, fmt.Errorf("ratchet: generating key: %w", err)
	}
	conf := Confirmation{Key1: publicOf(j1), Key2: publicOf(j2), PQ: pq && inv.PQ}
	dh1, err := dh(j1, inv.Key2)
	if err != nil {
		return nil, Confirmation{}, err
	}
	dh2, err := dh(j2, inv.Key1)
	if err != nil {
		return nil, Confirmation{}, err
	}
	dh3, err := dh(j2, inv.Key2)
	if err != nil {
		return nil, Confirmation{}, err
	}
	a := x3dh(inv, conf, dh1, dh2, dh3)
	st := &State{
		pq:          inv.PQ && conf.PQ,
		ad:          a.ad,
		rk:          a.rk,
		dhr:         inv.Key2,
		hasDHr:      true,
		nhks:        a.hkJoiner,
		nhkr:        a.nhkInviter,
		sendPending: true,
	}
	return st, conf, nil
}

// Accept completes the agreement on the inviter's side with the joiner's
// Confirmation. The returned state must Open the joiner's first message
// before it can Seal.
func (s *InvitationSecret) Accept(conf Confirmation) (*State, error) {
	inv := s.Invitation()
	dh1, err := dh(s.key2, conf.Key1)
	if err != nil {
		return nil, err
	}
	dh2, err := dh(s.key1, conf.Key2)
	if err != nil {
		return nil, err
	}
	dh3, err := dh(s.key2, conf.Key2)
	if err != nil {
		return nil, err
	}
	a := x3dh(inv, conf, dh1, dh2, dh3)
	st := &State{
		pq:     inv.PQ && conf.PQ,
		ad:     a.ad,
		rk:     a.rk,
		dhs:    s.key2,
		dhsPub: inv.Key2,
		hasDHs: true,
		nhks:   a.nhkInviter,
		nhkr:   a.hkJoiner,
	}
	return st, nil
}
