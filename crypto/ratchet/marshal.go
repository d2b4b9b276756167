package ratchet

import (
	"crypto/mlkem"
	"encoding/binary"
	"fmt"
)

// State flags of the marshalled form (a 16-bit big-endian field).
const (
	stPQ = 1 << iota
	stDHs
	stDHr
	stCKs
	stCKr
	stHKs
	stHKr
	stSendPending
	stKemDK
	stKemEK
	stKemCT
	stPeerEK
	stAll = stPeerEK<<1 - 1
)

const skippedEntrySize = 32 + 4 + 32 + 4

// MarshalBinary encodes the state for encrypted storage (layout in
// SPEC.md). UnmarshalBinary restores it exactly.
func (s *State) MarshalBinary() ([]byte, error) {
	var flags uint16
	set := func(cond bool, f uint16) {
		if cond {
			flags |= f
		}
	}
	set(s.pq, stPQ)
	set(s.hasDHs, stDHs)
	set(s.hasDHr, stDHr)
	set(s.hasCKs, stCKs)
	set(s.hasCKr, stCKr)
	set(s.hasHKs, stHKs)
	set(s.hasHKr, stHKr)
	set(s.sendPending, stSendPending)
	set(s.kemDK != nil, stKemDK)
	set(s.kemEK != nil, stKemEK)
	set(s.kemCT != nil, stKemCT)
	set(s.peerEK != nil, stPeerEK)

	b := []byte{Version}
	b = binary.BigEndian.AppendUint16(b, flags)
	b = append(b, s.ad[:]...)
	b = append(b, s.rk[:]...)
	opt := func(cond bool, v []byte) {
		if cond {
			b = append(b, v...)
		}
	}
	opt(s.hasDHs, s.dhs[:])
	opt(s.hasDHr, s.dhr.b[:])
	opt(s.hasCKs, s.cks[:])
	opt(s.hasCKr, s.ckr[:])
	opt(s.hasHKs, s.hks[:])
	opt(s.hasHKr, s.hkr[:])
	b = append(b, s.nhks[:]...)
	b = append(b, s.nhkr[:]...)
	for _, v := range []uint32{s.ns, s.nr, s.pn, s.gen} {
		b = binary.BigEndian.AppendUint32(b, v)
	}
	b = append(b, s.kemDK...)
	b = append(b, s.kemEK...)
	b = append(b, s.kemCT...)
	b = append(b, s.peerEK...)
	b = binary.BigEndian.AppendUint32(b, uint32(len(s.skipped)))
	for _, e := range s.skipped {
		b = append(b, e.hk[:]...)
		b = binary.BigEndian.AppendUint32(b, e.n)
		b = append(b, e.mk[:]...)
		b = binary.BigEndian.AppendUint32(b, e.gen)
	}
	return b, nil
}

// reader consumes a marshalled state.
type reader struct {
	b   []byte
	err error
}

func (r *reader) next(n int) []byte {
	if r.err != nil {
		return nil
	}
	if len(r.b) < n {
		r.err = fmt.Errorf("%w: state truncated", ErrMalformed)
		return nil
	}
	v := r.b[:n:n]
	r.b = r.b[n:]
	return v
}

func (r *reader) key(dst *[32]byte, present bool) {
	if present {
		copy(dst[:], r.next(32))
	}
}

func (r *reader) uint32() uint32 {
	v := r.next(4)
	if v == nil {
		return 0
	}
	return binary.BigEndian.Uint32(v)
}

func (r *reader) bytes(n int, present bool) []byte {
	if !present {
		return nil
	}
	return cloneBytes(r.next(n))
}

// UnmarshalBinary restores a state from MarshalBinary's output. It rejects
// any other input without modifying s.
func (s *State) UnmarshalBinary(data []byte) error {
	if len(data) < 3 {
		return fmt.Errorf("%w: state of %d bytes", ErrMalformed, len(data))
	}
	if data[0] != Version {
		return fmt.Errorf("%w: state version %d", ErrVersion, data[0])
	}
	flags := binary.BigEndian.Uint16(data[1:])
	if flags&^stAll != 0 {
		return fmt.Errorf("%w: state flags %#x", ErrMalformed, flags)
	}
	has := func(f uint16) bool { return flags&f != 0 }
	r := &reader{b: data[3:]}
	var n State
	n.pq = has(stPQ)
	n.hasDHs, n.hasDHr, n.hasCKs, n.hasCKr = has(stDHs), has(stDHr), has(stCKs), has(stCKr)
	n.hasHKs, n.hasHKr, n.sendPending = has(stHKs), has(stHKr), has(stSendPending)
	r.key((*[32]byte)(&n.ad), true)
	r.key((*[32]byte)(&n.rk), true)
	r.key((*[32]byte)(&n.dhs), n.hasDHs)
	if n.hasDHs {
		n.dhsPub = publicOf(n.dhs)
	}
	r.key(&n.dhr.b, n.hasDHr)
	r.key((*[32]byte)(&n.cks), n.hasCKs)
	r.key((*[32]byte)(&n.ckr), n.hasCKr)
	r.key((*[32]byte)(&n.hks), n.hasHKs)
	r.key((*[32]byte)(&n.hkr), n.hasHKr)
	r.key((*[32]byte)(&n.nhks), true)
	r.key((*[32]byte)(&n.nhkr), true)
	n.ns, n.nr, n.pn, n.gen = r.uint32(), r.uint32(), r.uint32(), r.uint32()
	n.kemDK = r.bytes(kemSeed, has(stKemDK))
	n.kemEK = r.bytes(kemEKSize, has(stKemEK))
	n.kemCT = r.bytes(kemCTSize, has(stKemCT))
	n.peerEK = r.bytes(kemEKSize, has(stPeerEK))
	count := r.uint32()
	if r.err != nil {
		return r.err
	}
	if count > MaxSkippedTotal || uint64(len(r.b)) != uint64(count)*skippedEntrySize {
		return fmt.Errorf("%w: %d skipped keys in %d bytes", ErrMalformed, count, len(r.b))
	}
	n.skipped = make([]skippedKey, count)
	for i := range n.skipped {
		e := &n.skipped[i]
		r.key((*[32]byte)(&e.hk), true)
		e.n = r.uint32()
		r.key((*[32]byte)(&e.mk), true)
		e.gen = r.uint32()
	}
	if err := n.validate(); err != nil {
		return err
	}
	*s = n
	return nil
}

// validate checks the invariants a state produced by this package has.
func (s *State) validate() error {
	bad := func(what string) error { return fmt.Errorf("%w: state: %s", ErrMalformed, what) }
	switch {
	case !s.hasDHs && !s.sendPending:
		return bad("no sending key")
	case s.hasCKs != s.hasHKs:
		return bad("sending chain without header key")
	case s.hasCKr != s.hasHKr || s.hasCKr && !s.hasDHr:
		return bad("receiving chain incomplete")
	case s.sendPending && !s.hasDHr:
		return bad("send step without a peer key")
	case !s.pq && (s.kemDK != nil || s.kemEK != nil || s.kemCT != nil || s.peerEK != nil):
		return bad("KEM fields without the hybrid")
	case (s.kemDK == nil) != (s.kemEK == nil):
		return bad("KEM key pair incomplete")
	}
	if s.kemDK != nil {
		dk, err := mlkem.NewDecapsulationKey768(s.kemDK)
		if err != nil {
			return bad("KEM seed")
		}
		if string(dk.EncapsulationKey().Bytes()) != string(s.kemEK) {
			return bad("KEM key pair mismatch")
		}
	}
	if s.peerEK != nil {
		if _, err := mlkem.NewEncapsulationKey768(s.peerEK); err != nil {
			return bad("peer KEM key")
		}
	}
	return nil
}
