package ratchet

import (
	"bytes"
	"encoding/binary"
	"math/rand/v2"
	"testing"

	"github.com/wisp-chat/wisp/crypto/internal/testkit"
)

// flight is a message on its way.
type flight struct {
	id  uint64
	env []byte
	pt  []byte
}

// simSide is one party with its inbox.
type simSide struct {
	st        *State
	inbox     []flight // sent to this side, not yet delivered
	delivered []flight // already delivered here (candidates for duplicates)
	opened    int
}

// TestSimulation is a libsignal-style randomized two-party run: random
// sends, in-order and reordered deliveries, delays (messages held back and
// delivered later), losses and duplicates in both directions. Every first
// delivery must decrypt to what was sent; every duplicate must fail and
// leave the state unchanged.
func TestSimulation(t *testing.T) {
	pqSteps, classicSteps := 100_000, 30_000
	if heavy() {
		pqSteps, classicSteps = 10_000, 3_000
	}
	simulate(t, true, pqSteps)
	simulate(t, false, classicSteps)
}

func simulate(t *testing.T, pq bool, steps int) {
	r := testkit.Rand("simulation")
	seed := testkit.Bytes(r, 32)
	rng := rand.New(rand.NewChaCha8([32]byte(seed)))
	j, i := connect(t, r, pq)
	sides := [2]*simSide{{st: j}, {st: i}}
	var nextID uint64
	var sent, lost, dups, reordered int
	var maxSkipped int

	for step := range steps {
		from := rng.IntN(2)
		// Bursty direction: keep sending from the same side for a while.
		if step%7 < 4 {
			from = (step / 7) % 2
		}
		me, peer := sides[from], sides[1-from]
		switch x := rng.IntN(100); {
		case x < 45: // send
			pt := make([]byte, 8+rng.IntN(64))
			binary.BigEndian.PutUint64(pt, nextID)
			for k := 8; k < len(pt); k++ {
				pt[k] = byte(rng.Uint32())
			}
			env, err := me.st.Seal(r, pt)
			if err != nil {
				t.Fatalf("step %d: Seal: %v", step, err)
			}
			peer.inbox = append(peer.inbox, flight{id: nextID, env: env, pt: pt})
			nextID++
			sent++
		case x < 85: // deliver to me: mostly the oldest, sometimes one of the next few
			if len(me.inbox) == 0 {
				continue
			}
			k := 0
			if rng.IntN(10) < 3 {
				k = rng.IntN(min(len(me.inbox), 8))
				if k > 0 {
					reordered++
				}
			}
			f := me.inbox[k]
			me.inbox = append(me.inbox[:k], me.inbox[k+1:]...)
			got, err := me.st.Open(f.env)
			if err != nil {
				t.Fatalf("step %d: message %d: Open: %v", step, f.id, err)
			}
			if !bytes.Equal(got, f.pt) {
				t.Fatalf("step %d: message %d decrypted to other bytes", step, f.id)
			}
			me.opened++
			me.delivered = append(me.delivered, f)
			if len(me.delivered) > 64 {
				me.delivered = me.delivered[1:]
			}
		case x < 87: // lose a message for good (its key stays until it expires)
			if len(me.inbox) > 0 {
				k := rng.IntN(len(me.inbox))
				me.inbox = append(me.inbox[:k], me.inbox[k+1:]...)
				lost++
			}
		case x < 92: // duplicate: deliver an already delivered message again
			if len(me.delivered) == 0 {
				continue
			}
			f := me.delivered[rng.IntN(len(me.delivered))]
			var before []byte
			if step%16 == 0 { // state comparison is costly: sample it
				before = marshal(t, me.st)
			}
			if _, err := me.st.Open(f.env); err == nil {
				t.Fatalf("step %d: duplicate of message %d accepted", step, f.id)
			}
			if before != nil && !bytes.Equal(before, marshal(t, me.st)) {
				t.Fatalf("step %d: rejected duplicate changed the state", step)
			}
			dups++
		default: // delay: move a message to the back of the inbox
			if len(me.inbox) > 1 {
				f := me.inbox[0]
				me.inbox = append(me.inbox[1:], f)
				reordered++
			}
		}
		for _, s := range sides {
			maxSkipped = max(maxSkipped, s.st.Skipped())
			if s.st.Skipped() > MaxSkippedTotal {
				t.Fatalf("step %d: %d skipped keys stored", step, s.st.Skipped())
			}
		}
	}
	// Everything still in flight is delivered at the end.
	for _, s := range sides {
		for _, f := range s.inbox {
			got, err := s.st.Open(f.env)
			if err != nil || !bytes.Equal(got, f.pt) {
				t.Fatalf("final delivery of message %d: %v", f.id, err)
			}
			s.opened++
		}
	}
	t.Logf("pq=%v steps=%d sent=%d opened=%d lost=%d duplicates=%d reordered/delayed=%d max stored skipped=%d",
		pq, steps, sent, sides[0].opened+sides[1].opened, lost, dups, reordered, maxSkipped)
	if sides[0].opened == 0 || sides[1].opened == 0 || dups == 0 || lost == 0 || reordered == 0 {
		t.Fatal("the simulation did not exercise every action")
	}
}
