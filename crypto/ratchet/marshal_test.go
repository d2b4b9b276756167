package ratchet

import (
	"bytes"
	"crypto/mlkem"
	"errors"
	"testing"

	"github.com/wisp-chat/wisp/crypto/internal/testkit"
)

// TestMarshalRestoresExactly: at every stage, Unmarshal(Marshal(s)) marshals
// to the same bytes and behaves exactly like s.
func TestMarshalRestoresExactly(t *testing.T) {
	bothModes(t, func(t *testing.T, pq bool) {
		r := testkit.Rand("marshal")
		sec, inv, _ := NewInvitation(r, pq)
		j, conf, _ := Join(r, inv, pq)
		i, _ := sec.Accept(conf)
		check := func(s *State) {
			t.Helper()
			b := marshal(t, s)
			c := restore(t, b)
			if !bytes.Equal(b, marshal(t, c)) || !c.Equal(s) {
				t.Fatal("restored state differs")
			}
			// Same randomness in, same envelope out.
			if s.hasCKs || s.sendPending {
				deterministicKEM(s, testkit.Rand("kem"))
				deterministicKEM(c, testkit.Rand("kem"))
				e1, err1 := s.clone().Seal(testkit.Rand("same"), []byte("x"))
				e2, err2 := c.Seal(testkit.Rand("same"), []byte("x"))
				if err1 != nil || err2 != nil || !bytes.Equal(e1, e2) {
					t.Fatalf("restored state seals differently: %v %v", err1, err2)
				}
			}
		}
		check(j)
		check(i)
		deterministicKEM(j, r)
		deterministicKEM(i, r)
		open(t, i, seal(t, j, r, []byte("1")))
		check(i)
		lost := seal(t, i, r, []byte("lost"))
		open(t, j, seal(t, i, r, []byte("2")))
		check(j) // with a skipped key
		open(t, i, seal(t, j, r, []byte("3")))
		check(i)
		check(j)
		open(t, j, lost)
		check(j)
	})
}

func TestUnmarshalRejects(t *testing.T) {
	r := testkit.Rand("unmarshal")
	j, i := connect(t, r, true)
	seal(t, i, r, []byte("lost"))
	open(t, j, seal(t, i, r, []byte("x")))
	good := marshal(t, j)
	victim := restore(t, marshal(t, i))
	before := marshal(t, victim)
	reject := func(b []byte, want error) {
		t.Helper()
		if err := victim.UnmarshalBinary(b); !errors.Is(err, want) {
			t.Fatalf("UnmarshalBinary(%d bytes): %v, want %v", len(b), err, want)
		}
		if !bytes.Equal(before, marshal(t, victim)) {
			t.Fatal("failed UnmarshalBinary changed the state")
		}
	}
	for n := range len(good) {
		reject(good[:n], ErrMalformed)
	}
	reject(append(bytes.Clone(good), 0), ErrMalformed)
	bad := bytes.Clone(good)
	bad[0] = 9
	reject(bad, ErrVersion)
	bad = bytes.Clone(good)
	bad[1] = 0xf0
	reject(bad, ErrMalformed)
	// Invariants a valid state has: a KEM key pair that matches, no KEM
	// fields without the hybrid.
	dk, err := mlkem.NewDecapsulationKey768(bytes.Repeat([]byte{1}, kemSeed))
	if err != nil {
		t.Fatal(err)
	}
	mismatched := restore(t, good)
	mismatched.kemEK = dk.EncapsulationKey().Bytes()
	reject(marshal(t, mismatched), ErrMalformed)
	notPQ := restore(t, good)
	notPQ.pq = false
	reject(marshal(t, notPQ), ErrMalformed)
	tooMany := restore(t, good)
	tooMany.skipped = make([]skippedKey, MaxSkippedTotal+1)
	reject(marshal(t, tooMany), ErrMalformed)
}
