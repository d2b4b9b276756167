package ratchet

import (
	"bytes"
	"errors"
	"fmt"
	"testing"

	"github.com/wisp-chat/wisp/crypto/internal/testkit"
)

func TestConversation(t *testing.T) {
	bothModes(t, func(t *testing.T, pq bool) {
		r := testkit.Rand("conversation")
		j, i := connect(t, r, pq)
		if j.SecurityCode() != i.SecurityCode() || j.SecurityCode().Digits() != i.SecurityCode().Digits() {
			t.Fatal("security codes differ")
		}
		if j.PQ() != pq || i.PQ() != pq {
			t.Fatalf("PQ: joiner %v inviter %v, want %v", j.PQ(), i.PQ(), pq)
		}
		for round := range 5 {
			for k := range round + 1 {
				msg := fmt.Appendf(nil, "i→j %d/%d", round, k)
				if got := open(t, j, seal(t, i, r, msg)); !bytes.Equal(got, msg) {
					t.Fatalf("got %q want %q", got, msg)
				}
			}
			msg := fmt.Appendf(nil, "j→i %d", round)
			if got := open(t, i, seal(t, j, r, msg)); !bytes.Equal(got, msg) {
				t.Fatalf("got %q want %q", got, msg)
			}
		}
		for _, n := range []int{0, 1, MaxPlaintext} {
			msg := testkit.Bytes(r, n)
			if got := open(t, i, seal(t, j, r, msg)); !bytes.Equal(got, msg) {
				t.Fatalf("%d-byte message mismatch", n)
			}
		}
	})
}

func TestSizes(t *testing.T) {
	if HeaderPaddedSize < headerMaxContent+2 {
		t.Fatal("header does not fit its padded size")
	}
	if EnvelopeSize != 1+EncryptedHeaderSize+BodyPaddedSize+tagSize {
		t.Fatal("envelope arithmetic")
	}
	if MaxPlaintext != 13249 || EncryptedHeaderSize != 2348 {
		t.Fatalf("documented sizes changed: %d %d", MaxPlaintext, EncryptedHeaderSize)
	}
	r := testkit.Rand("sizes")
	j, _ := connect(t, r, true)
	if _, err := j.Seal(r, make([]byte, MaxPlaintext+1)); !errors.Is(err, ErrTooLong) {
		t.Fatalf("one byte too long: %v", err)
	}
}

func TestSecurityCodeDigits(t *testing.T) {
	var c SecurityCode
	c[4] = 1             // group 0 = 1
	c[5], c[9] = 0xff, 7 // group 1 = 0xff00000007 mod 100000
	want := fmt.Sprintf("00001 %05d 00000 00000 00000 00000", uint64(0xff00000007)%100000)
	if got := c.Digits(); got != want {
		t.Fatalf("got %q, want %q", got, want)
	}
}

func TestPQNegotiation(t *testing.T) {
	for _, tc := range []struct{ inv, join, want bool }{
		{false, false, false}, {true, false, false}, {false, true, false}, {true, true, true},
	} {
		r := testkit.Rand("negotiation")
		sec, inv, err := NewInvitation(r, tc.inv)
		if err != nil {
			t.Fatal(err)
		}
		j, conf, err := Join(r, inv, tc.join)
		if err != nil {
			t.Fatal(err)
		}
		i, err := sec.Accept(conf)
		if err != nil {
			t.Fatal(err)
		}
		open(t, i, seal(t, j, r, []byte("x")))
		open(t, j, seal(t, i, r, []byte("y")))
		open(t, i, seal(t, j, r, []byte("z")))
		if j.PQ() != tc.want || i.PQ() != tc.want {
			t.Errorf("inv %v join %v: PQ %v/%v, want %v", tc.inv, tc.join, j.PQ(), i.PQ(), tc.want)
		}
	}
}

// A joiner that announces the hybrid but sends no KEM key is refused, and
// a tampered PQ flag in the invitation breaks the agreement.
func TestPQDowngrade(t *testing.T) {
	r := testkit.Rand("downgrade")
	sec, inv, _ := NewInvitation(r, true)
	j, conf, _ := Join(r, inv, true)
	j.pq = false // a joiner lying about the hybrid
	i, err := sec.Accept(conf)
	if err != nil {
		t.Fatal(err)
	}
	if err := openFailsUnchanged(t, i, seal(t, j, r, []byte("x"))); !errors.Is(err, ErrPQ) {
		t.Fatalf("err = %v, want ErrPQ", err)
	}

	sec, inv, _ = NewInvitation(r, true)
	inv.PQ = false // stripped in transit
	j, conf, _ = Join(r, inv, true)
	i, _ = sec.Accept(conf)
	if j.SecurityCode() == i.SecurityCode() {
		t.Fatal("security codes agree despite a tampered invitation")
	}
	if err := openFailsUnchanged(t, i, seal(t, j, r, []byte("x"))); !errors.Is(err, ErrDecrypt) {
		t.Fatalf("err = %v, want ErrDecrypt", err)
	}
}

func TestNotReady(t *testing.T) {
	r := testkit.Rand("notready")
	sec, inv, _ := NewInvitation(r, true)
	_, conf, _ := Join(r, inv, true)
	i, _ := sec.Accept(conf)
	if _, err := i.Seal(r, []byte("x")); !errors.Is(err, ErrNotReady) {
		t.Fatalf("err = %v, want ErrNotReady", err)
	}
}

func TestLowOrderKeys(t *testing.T) {
	r := testkit.Rand("loworder")
	sec, inv, _ := NewInvitation(r, false)
	bad := Invitation{Key1: inv.Key1, Key2: PublicKey{}, PQ: false}
	if _, _, err := Join(r, bad, false); !errors.Is(err, ErrLowOrder) {
		t.Fatalf("Join: %v", err)
	}
	_, conf, _ := Join(r, inv, false)
	conf.Key2 = PublicKey{b: [32]byte{1}}
	if _, err := sec.Accept(conf); !errors.Is(err, ErrLowOrder) {
		t.Fatalf("Accept: %v", err)
	}
}

func TestAgreementEncoding(t *testing.T) {
	r := testkit.Rand("encoding")
	sec, inv, _ := NewInvitation(r, true)
	b, _ := inv.MarshalBinary()
	if len(b) != InvitationSize {
		t.Fatalf("invitation of %d bytes", len(b))
	}
	got, err := ParseInvitation(b)
	if err != nil || got != inv {
		t.Fatalf("ParseInvitation: %v", err)
	}
	_, conf, _ := Join(r, inv, true)
	cb, _ := conf.MarshalBinary()
	gc, err := ParseConfirmation(cb)
	if err != nil || gc != conf {
		t.Fatalf("ParseConfirmation: %v", err)
	}
	for n := range len(b) {
		if _, err := ParseInvitation(b[:n]); !errors.Is(err, ErrMalformed) {
			t.Fatalf("truncated to %d: %v", n, err)
		}
	}
	if _, err := ParseInvitation(append(bytes.Clone(b), 0)); !errors.Is(err, ErrMalformed) {
		t.Fatalf("extended: %v", err)
	}
	bad := bytes.Clone(b)
	bad[0] = 2
	if _, err := ParseInvitation(bad); !errors.Is(err, ErrVersion) {
		t.Fatalf("version: %v", err)
	}
	bad = bytes.Clone(b)
	bad[1] = 0x80
	if _, err := ParseConfirmation(bad); !errors.Is(err, ErrMalformed) {
		t.Fatalf("flags: %v", err)
	}

	sb, _ := sec.MarshalBinary()
	var sec2 InvitationSecret
	if err := sec2.UnmarshalBinary(sb); err != nil || !sec2.Equal(sec) || sec2.Invitation() != inv {
		t.Fatalf("InvitationSecret round trip: %v", err)
	}
	for _, b := range [][]byte{nil, sb[:10], append(bytes.Clone(sb), 1)} {
		if err := sec2.UnmarshalBinary(b); !errors.Is(err, ErrMalformed) {
			t.Fatalf("InvitationSecret.UnmarshalBinary(%d bytes): %v", len(b), err)
		}
	}
}

func TestNoSecretInFormat(t *testing.T) {
	r := testkit.Rand("format")
	sec, _, _ := NewInvitation(r, true)
	j, i := connect(t, r, true)
	testkit.CheckRedacted(t, j.rk[:], j, *j)
	testkit.CheckRedacted(t, i.cks[:], i, *i)
	testkit.CheckRedacted(t, sec.key1[:], sec, *sec)
}

func TestReplayAndFailureLeaveStateUnchanged(t *testing.T) {
	bothModes(t, func(t *testing.T, pq bool) {
		r := testkit.Rand("replay")
		j, i := connect(t, r, pq)
		e1 := seal(t, i, r, []byte("one"))
		e2 := seal(t, i, r, []byte("two"))
		open(t, j, e2) // e1 is now a stored skipped key
		open(t, j, e1)
		for _, e := range [][]byte{e1, e2} {
			if err := openFailsUnchanged(t, j, e); !errors.Is(err, ErrDuplicate) {
				t.Fatalf("replay: %v, want ErrDuplicate", err)
			}
		}
		for _, e := range [][]byte{nil, {}, make([]byte, EnvelopeSize), e1[:100]} {
			openFailsUnchanged(t, j, e)
		}
		// A message of the other direction is not ours to open.
		mine := seal(t, j, r, []byte("mine"))
		openFailsUnchanged(t, j, mine)
		open(t, i, mine)
	})
}

func TestOutOfOrderAcrossSteps(t *testing.T) {
	bothModes(t, func(t *testing.T, pq bool) {
		r := testkit.Rand("ooo")
		j, i := connect(t, r, pq)
		a1 := seal(t, i, r, []byte("a1"))
		a2 := seal(t, i, r, []byte("a2"))
		open(t, j, a1)
		b1 := seal(t, j, r, []byte("b1"))
		open(t, i, b1)
		a3 := seal(t, i, r, []byte("a3")) // new chain
		a4 := seal(t, i, r, []byte("a4"))
		for _, tc := range []struct {
			env  []byte
			want string
		}{{a4, "a4"}, {a2, "a2"}, {a3, "a3"}} {
			if got := open(t, j, tc.env); string(got) != tc.want {
				t.Fatalf("got %q want %q", got, tc.want)
			}
		}
		if j.Skipped() != 0 {
			t.Fatalf("%d skipped keys left", j.Skipped())
		}
	})
}

// TestTamper: every single-bit flip, truncation and extension of an
// envelope (header included) is rejected, leaving the state unchanged. The
// envelope in the current chain gets every bit flipped; the one starting a
// new chain (each failed try then costs a DH and a KEM decapsulation) gets
// every header bit and every bit of every 61st body byte.
func TestTamper(t *testing.T) {
	bothModes(t, func(t *testing.T, pq bool) {
		r := testkit.Rand("tamper")
		j, i := connect(t, r, pq)
		open(t, j, seal(t, i, r, []byte("x")))
		step := seal(t, j, r, []byte("step"))
		same := seal(t, j, r, []byte("same chain"))
		tamper(t, i, step, 61)
		open(t, i, step)
		stride := 1
		if heavy() {
			stride = 61
		}
		tamper(t, i, same, stride)
		open(t, i, same)
	})
}

func tamper(t *testing.T, s *State, env []byte, bodyStride int) {
	t.Helper()
	before := marshal(t, s)
	for bit := range len(env) * 8 {
		byteIdx := bit / 8
		if byteIdx >= prefixSize && byteIdx%bodyStride != 0 {
			continue
		}
		env[byteIdx] ^= 1 << (bit % 8)
		if _, err := s.Open(env); err == nil {
			t.Fatalf("bit %d flip accepted", bit)
		}
		env[byteIdx] ^= 1 << (bit % 8)
	}
	for n := range len(env) {
		if _, err := s.Open(env[:n]); !errors.Is(err, ErrMalformed) {
			t.Fatalf("truncation to %d: %v", n, err)
		}
	}
	for _, extra := range [][]byte{{0}, make([]byte, 100)} {
		if _, err := s.Open(append(bytes.Clone(env), extra...)); !errors.Is(err, ErrMalformed) {
			t.Fatalf("extension: %v", err)
		}
	}
	if !bytes.Equal(before, marshal(t, s)) {
		t.Fatal("tampered envelopes changed the state")
	}
}
