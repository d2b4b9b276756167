package ratchet

import (
	"bytes"
	"encoding/binary"
	"errors"
	"testing"

	"github.com/wisp-chat/wisp/crypto/pad"
)

// TestMalformedHeaders: a header that authenticates but is malformed is
// refused with ErrMalformed (or ErrPQ) before any state change.
func TestMalformedHeaders(t *testing.T) {
	j, i, env, hk, content := headerFixture(t, "headers")
	good, _ := pad.Pad(content, HeaderPaddedSize)
	if got := open(t, restore(t, marshal(t, i)), reheader(j, hk, env, good)); string(got) != "y" {
		t.Fatal("re-encrypted header not accepted")
	}
	mutate := func(f func(c []byte) []byte) []byte {
		p, err := pad.Pad(f(bytes.Clone(content)), HeaderPaddedSize)
		if err != nil {
			t.Fatal(err)
		}
		return p
	}
	badFill := bytes.Clone(good)
	badFill[len(badFill)-1] = 1
	badLen := bytes.Clone(good)
	binary.BigEndian.PutUint16(badLen, HeaderPaddedSize)
	for name, tc := range map[string]struct {
		padded []byte
		want   error
	}{
		"fill":          {badFill, ErrMalformed},
		"length":        {badLen, ErrMalformed},
		"short":         {mutate(func(c []byte) []byte { return c[:40] }), ErrMalformed},
		"unknown flag":  {mutate(func(c []byte) []byte { c[40] |= 0x80; return c }), ErrMalformed},
		"missing EK":    {mutate(func(c []byte) []byte { return c[:len(c)-1] }), ErrMalformed},
		"extra byte":    {mutate(func(c []byte) []byte { return append(c, 0) }), ErrMalformed},
		"no KEM fields": {mutate(func(c []byte) []byte { c[40] = 0; return c[:41] }), ErrPQ},
		"no CT":         {mutate(func(c []byte) []byte { c[40] = hdrFlagEK; return c[:41+kemEKSize] }), ErrPQ},
		"bad EK": {mutate(func(c []byte) []byte {
			for k := 41; k < 41+kemEKSize; k++ {
				c[k] = 0xff // coefficients >= q are not a valid key
			}
			return c
		}), ErrPQ},
	} {
		if err := openFailsUnchanged(t, i, reheader(j, hk, env, tc.padded)); !errors.Is(err, tc.want) {
			t.Errorf("%s: %v, want %v", name, err, tc.want)
		}
	}
	open(t, i, env)
}
