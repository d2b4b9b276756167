//go:build !js

package ratchet

import (
	"bytes"
	"testing"

	"github.com/wisp-chat/wisp/crypto/internal/testkit"
	"github.com/wisp-chat/wisp/crypto/pad"
)

// fuzzPair returns the marshalled inviter state of a fixed connection and
// envelopes the joiner sent to it (a new chain, then the same chain).
func fuzzPair(t testing.TB) (state []byte, envs [][]byte) {
	r := testkit.Rand("fuzz/open")
	j, i := connect(t, r, true)
	open(t, j, seal(t, i, r, []byte("x")))
	envs = [][]byte{seal(t, j, r, []byte("new chain")), seal(t, j, r, []byte("same chain"))}
	return marshal(t, i), envs
}

// FuzzOpen feeds arbitrary envelopes to a fixed state. Open must never
// panic, a failure must leave the state unchanged, and a success must
// yield a state that marshals and restores.
func FuzzOpen(f *testing.F) {
	state, envs := fuzzPair(f)
	for _, e := range envs {
		f.Add(e)
	}
	f.Add([]byte{})
	f.Add([]byte{Version})
	s := restore(f, state)
	f.Fuzz(func(t *testing.T, env []byte) {
		_, err := s.Open(env)
		after := marshal(t, s)
		if err != nil && !bytes.Equal(after, state) {
			t.Fatalf("failed Open (%v) changed the state", err)
		}
		if err == nil {
			restore(t, after)     // a state that opened something still restores
			s = restore(t, state) // start the next input from the fixed state
		}
	})
}

// FuzzOpenHeader feeds arbitrary header contents, authenticated under the
// right header key (what only the peer could send), to a fixed state: the
// header parser and the PQ rules must fail cleanly and change nothing.
func FuzzOpenHeader(f *testing.F) {
	j, i, env, hk, content := headerFixture(f, "fuzz/header")
	f.Add(content)
	f.Add(content[:41])
	f.Add([]byte{})
	state := marshal(f, i)
	s := restore(f, state)
	f.Fuzz(func(t *testing.T, content []byte) {
		p, err := pad.Pad(content, HeaderPaddedSize)
		if err != nil {
			return
		}
		_, err = s.Open(reheader(j, hk, env, p))
		if err == nil {
			s = restore(t, state)
			return
		}
		if !bytes.Equal(marshal(t, s), state) {
			t.Fatalf("failed Open (%v) changed the state", err)
		}
	})
}

// TestWriteFuzzSeeds writes the committed seed corpus (with -update).
func TestWriteFuzzSeeds(t *testing.T) {
	if !testkit.Updating() {
		t.Skip("run with -update to rewrite testdata/fuzz")
	}
	_, envs := fuzzPair(t)
	testkit.WriteFuzzSeed(t, "FuzzOpen", "new_chain", envs[0])
	testkit.WriteFuzzSeed(t, "FuzzOpen", "same_chain", envs[1])
	flipped := bytes.Clone(envs[1])
	flipped[len(flipped)-1] ^= 1
	testkit.WriteFuzzSeed(t, "FuzzOpen", "bad_tag", flipped)
	testkit.WriteFuzzSeed(t, "FuzzOpen", "short", envs[0][:100])

	_, _, _, _, c := headerFixture(t, "fuzz/header")
	testkit.WriteFuzzSeed(t, "FuzzOpenHeader", "valid", c)
	testkit.WriteFuzzSeed(t, "FuzzOpenHeader", "no_kem", append(bytes.Clone(c[:40]), 0))
	testkit.WriteFuzzSeed(t, "FuzzOpenHeader", "ek_only", append(append(bytes.Clone(c[:40]), hdrFlagEK), c[41:41+kemEKSize]...))
	testkit.WriteFuzzSeed(t, "FuzzOpenHeader", "short", c[:20])
}
