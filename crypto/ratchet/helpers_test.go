package ratchet

import (
	"bytes"
	"crypto/mlkem"
	"crypto/mlkem/mlkemtest"
	"io"
	"runtime"
	"testing"

	"github.com/wisp-chat/wisp/crypto/internal/testkit"
)

// heavy reports whether exhaustive or long tests should be scaled down.
func heavy() bool { return testing.Short() || runtime.GOOS == "js" }

// deterministicKEM makes s encapsulate with randomness from r (FIPS 203
// ML-KEM.Encaps_internal), for reproducible vectors and runs.
func deterministicKEM(s *State, r io.Reader) {
	s.encapsulateHook = func(ek *mlkem.EncapsulationKey768) ([]byte, []byte, error) {
		return mlkemtest.Encapsulate768(ek, testkit.Bytes(r, 32))
	}
}

// connect runs the agreement and the joiner's first message; it returns
// the joiner's and the inviter's states, both able to Seal.
func connect(t testing.TB, r io.Reader, pq bool) (joiner, inviter *State) {
	t.Helper()
	sec, inv, err := NewInvitation(r, pq)
	if err != nil {
		t.Fatal(err)
	}
	joiner, conf, err := Join(r, inv, pq)
	if err != nil {
		t.Fatal(err)
	}
	inviter, err = sec.Accept(conf)
	if err != nil {
		t.Fatal(err)
	}
	deterministicKEM(joiner, r)
	deterministicKEM(inviter, r)
	env := seal(t, joiner, r, []byte("hello"))
	if got := open(t, inviter, env); string(got) != "hello" {
		t.Fatalf("first message: %q", got)
	}
	return joiner, inviter
}

func seal(t testing.TB, s *State, r io.Reader, pt []byte) []byte {
	t.Helper()
	env, err := s.Seal(r, pt)
	if err != nil {
		t.Fatalf("Seal: %v", err)
	}
	if len(env) != EnvelopeSize {
		t.Fatalf("envelope of %d bytes", len(env))
	}
	return env
}

func open(t testing.TB, s *State, env []byte) []byte {
	t.Helper()
	pt, err := s.Open(env)
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	return pt
}

func marshal(t testing.TB, s *State) []byte {
	t.Helper()
	b, err := s.MarshalBinary()
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func restore(t testing.TB, b []byte) *State {
	t.Helper()
	var s State
	if err := s.UnmarshalBinary(b); err != nil {
		t.Fatal(err)
	}
	return &s
}

// openFailsUnchanged asserts that Open(env) fails and leaves s unchanged.
func openFailsUnchanged(t testing.TB, s *State, env []byte) error {
	t.Helper()
	before := marshal(t, s)
	_, err := s.Open(env)
	if err == nil {
		t.Fatal("Open succeeded, want an error")
	}
	if after := marshal(t, s); !bytes.Equal(before, after) {
		t.Fatalf("failed Open (%v) changed the state", err)
	}
	return err
}

func bothModes(t *testing.T, f func(t *testing.T, pq bool)) {
	t.Run("x25519", func(t *testing.T) { f(t, false) })
	t.Run("pq", func(t *testing.T) { f(t, true) })
}

// headerFixture returns a connection in which the joiner has sealed env
// (starting a new chain) for the inviter, the header key it used, and the
// header content, for tests that forge authenticated headers.
func headerFixture(t testing.TB, label string) (j, i *State, env []byte, hk headerKey, content []byte) {
	t.Helper()
	r := testkit.Rand(label)
	j, i = connect(t, r, true)
	open(t, j, seal(t, i, r, []byte("x")))
	env = seal(t, j, r, []byte("y"))
	h, ok, err := j.tryHeader(j.hks, env)
	if !ok || err != nil {
		t.Fatalf("header: %v", err)
	}
	return j, i, env, j.hks, h.encode()
}

// reheader replaces the padded header of env with p, encrypted under hk
// with the envelope's header nonce (what only the sender could do).
func reheader(s *State, hk headerKey, env, p []byte) []byte {
	out := bytes.Clone(env[:1+headerNonceSize])
	out = headerAEAD(hk).Seal(out, env[1:1+headerNonceSize], p, s.headerAD())
	return append(out, env[prefixSize:]...)
}
