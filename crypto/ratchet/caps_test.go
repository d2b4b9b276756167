package ratchet

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"testing"

	"github.com/wisp-chat/wisp/crypto/internal/testkit"
)

func sealN(t *testing.T, s *State, r io.Reader, n int, tag string) [][]byte {
	t.Helper()
	out := make([][]byte, n)
	for k := range out {
		out[k] = seal(t, s, r, fmt.Appendf(nil, "%s %d", tag, k))
	}
	return out
}

func expectOpen(t *testing.T, s *State, env []byte, want string) {
	t.Helper()
	if got := open(t, s, env); string(got) != want {
		t.Fatalf("got %q, want %q", got, want)
	}
}

// TestSkipCaps: the message exactly at each cap is accepted, one past it
// is rejected with the state unchanged, and the store never exceeds
// MaxSkippedTotal.
func TestSkipCaps(t *testing.T) {
	bothModes(t, func(t *testing.T, pq bool) {
		r := testkit.Rand("caps")
		j, i := connect(t, r, pq)
		envs := sealN(t, i, r, 2*MaxSkip+4, "m")

		// New chain: message n skips n keys.
		err := openFailsUnchanged(t, j, envs[MaxSkip+1])
		if !errors.Is(err, ErrTooManySkipped) {
			t.Fatalf("MaxSkip+1 skipped: %v", err)
		}
		expectOpen(t, j, envs[MaxSkip], fmt.Sprintf("m %d", MaxSkip))
		if j.Skipped() != MaxSkip {
			t.Fatalf("%d skipped keys stored, want %d", j.Skipped(), MaxSkip)
		}

		// Same chain: nr = MaxSkip+1 now.
		if err := openFailsUnchanged(t, j, envs[2*MaxSkip+2]); !errors.Is(err, ErrTooManySkipped) {
			t.Fatalf("MaxSkip+1 skipped in chain: %v", err)
		}
		// Exactly MaxSkip more fills the store to exactly MaxSkippedTotal.
		expectOpen(t, j, envs[2*MaxSkip+1], fmt.Sprintf("m %d", 2*MaxSkip+1))
		if j.Skipped() != MaxSkippedTotal {
			t.Fatalf("%d stored, want %d", j.Skipped(), MaxSkippedTotal)
		}
		// One more skipped key would exceed the total.
		if err := openFailsUnchanged(t, j, envs[2*MaxSkip+3]); !errors.Is(err, ErrTooManySkipped) {
			t.Fatalf("total cap: %v", err)
		}
		expectOpen(t, j, envs[2*MaxSkip+2], fmt.Sprintf("m %d", 2*MaxSkip+2))
		expectOpen(t, j, envs[2*MaxSkip+3], fmt.Sprintf("m %d", 2*MaxSkip+3))
		// Every skipped message is still recoverable, in any order.
		for _, k := range []int{7, 0, MaxSkip - 1, MaxSkip + 1, 2 * MaxSkip} {
			expectOpen(t, j, envs[k], fmt.Sprintf("m %d", k))
		}
		if j.Skipped() != MaxSkippedTotal-5 {
			t.Fatalf("%d stored after 5 recoveries", j.Skipped())
		}
	})
}

// TestSkipCapAcrossStep: the cap counts the rest of the previous chain
// plus the skipped part of the new chain.
func TestSkipCapAcrossStep(t *testing.T) {
	r := testkit.Rand("caps-step")
	j, i := connect(t, r, true)
	expectOpen(t, j, seal(t, i, r, []byte("a")), "a")
	const left = 400
	sealN(t, i, r, left, "lost") // never delivered
	expectOpen(t, i, seal(t, j, r, []byte("b")), "b")
	envs := sealN(t, i, r, MaxSkip-left+2, "new")
	if err := openFailsUnchanged(t, j, envs[MaxSkip-left+1]); !errors.Is(err, ErrTooManySkipped) {
		t.Fatalf("one past: %v", err)
	}
	expectOpen(t, j, envs[MaxSkip-left], fmt.Sprintf("new %d", MaxSkip-left))
	if j.Skipped() != MaxSkip {
		t.Fatalf("%d stored, want %d", j.Skipped(), MaxSkip)
	}
}

// TestSkippedKeysExpire: a skipped key survives exactly MaxSkippedAge
// receiving-chain generations.
func TestSkippedKeysExpire(t *testing.T) {
	r := testkit.Rand("expire")
	j, i := connect(t, r, false)
	late := seal(t, i, r, []byte("late"))
	expectOpen(t, j, seal(t, i, r, []byte("on time")), "on time")
	var atLimit []byte
	for k := 1; k <= MaxSkippedAge+1; k++ {
		expectOpen(t, i, seal(t, j, r, []byte("ping")), "ping")
		expectOpen(t, j, seal(t, i, r, []byte("pong")), "pong")
		want := 1
		if k == MaxSkippedAge {
			atLimit = marshal(t, j)
		}
		if k > MaxSkippedAge {
			want = 0
		}
		if j.Skipped() != want {
			t.Fatalf("after %d generations: %d stored, want %d", k, j.Skipped(), want)
		}
	}
	expectOpen(t, restore(t, atLimit), late, "late")
	if err := openFailsUnchanged(t, j, late); !errors.Is(err, ErrDecrypt) {
		t.Fatalf("expired key: %v", err)
	}
}

// TestForwardSecrecy: a copy of the state taken after messages were read
// cannot read them again.
func TestForwardSecrecy(t *testing.T) {
	bothModes(t, func(t *testing.T, pq bool) {
		r := testkit.Rand("fs")
		j, i := connect(t, r, pq)
		envs := sealN(t, i, r, 3, "old")
		envs = append(envs, seal(t, j, r, []byte("mine")))
		expectOpen(t, i, envs[3], "mine")
		envs = append(envs[:3], sealN(t, i, r, 2, "newer")...)
		for _, e := range envs {
			open(t, j, e)
		}
		stolen := marshal(t, j) // compromise at T
		for k, e := range envs {
			if _, err := restore(t, stolen).Open(e); err == nil {
				t.Fatalf("message %d opened from a state taken after it was read", k)
			}
		}
	})
}

// TestPostCompromiseSecurity: a copy of a state taken at T keeps opening
// the current chain, and stops once both sides have done a DH round trip.
func TestPostCompromiseSecurity(t *testing.T) {
	bothModes(t, func(t *testing.T, pq bool) {
		r := testkit.Rand("pcs")
		j, i := connect(t, r, pq)
		expectOpen(t, j, seal(t, i, r, []byte("before")), "before")
		eve := restore(t, marshal(t, j)) // compromise at T; Eve sees all traffic
		e := seal(t, i, r, []byte("current chain"))
		expectOpen(t, eve, e, "current chain") // the compromise is real
		expectOpen(t, j, e, "current chain")

		expectOpen(t, i, seal(t, j, r, []byte("reply")), "reply") // j's fresh key
		for k := range 3 {
			e := seal(t, i, r, fmt.Appendf(nil, "healed %d", k))
			before := marshal(t, eve)
			if _, err := eve.Open(e); err == nil {
				t.Fatalf("message %d after the round trip opened from the stolen state", k)
			}
			if !bytes.Equal(before, marshal(t, eve)) {
				t.Fatal("failed Open changed the state")
			}
			expectOpen(t, j, e, fmt.Sprintf("healed %d", k))
		}
	})
}
