package agent

import (
	"bytes"
	"encoding/base64"
	"errors"
	"testing"

	"github.com/wisp-chat/wisp/crypto/box"
)

// FuzzParseAddress checks that ParseAddress never panics, returns one of
// its sentinel errors on failure, and that whatever it accepts re-encodes
// to an address that parses to the same value.
func FuzzParseAddress(f *testing.F) {
	for _, host := range []string{"127.0.0.1", "relay.example.org", "::1"} {
		for _, tag := range []Tag{{}, groupTag} {
			p, _ := testAddress(host, tag).Payload()
			f.Add(p)
			f.Add("https://wisp.example/#/address/" + p)
		}
	}
	inv, _ := testInvitation("127.0.0.1").Payload()
	f.Add(inv)
	f.Add("https://wisp.example/#/invite/" + inv)
	f.Add("")
	f.Add("https://example.com/#/address/AgAA")
	f.Fuzz(func(t *testing.T, s string) {
		c, err := ParseAddress(s, VersionRange{1, 255})
		if err != nil {
			if !errors.Is(err, ErrNotAddress) && !errors.Is(err, ErrCorruptedAddress) &&
				!errors.Is(err, ErrAddressVersion) && !errors.Is(err, ErrAddressRelay) {
				t.Fatalf("unexpected error type: %v", err)
			}
			return
		}
		p, err := c.Payload()
		if err != nil {
			t.Fatalf("accepted address does not encode: %v", err)
		}
		again, err := ParseAddress(p, VersionRange{1, 255})
		if err != nil || again != c {
			t.Fatalf("re-encoded address differs: %v", err)
		}
		if !IsAddressLink(p) {
			t.Fatal("an accepted payload is not recognised as an address")
		}
	})
}

// FuzzDecodeRequest feeds arbitrary bytes to the request decoder (what a
// requester's box holds) and to the whole opening of a SEND body: they
// must return an error or a value, never panic, and a request that
// decodes must encode back to the same bytes.
func FuzzDecodeRequest(f *testing.F) {
	invPayload, _ := testInvitation("127.0.0.1").Payload()
	inv, _ := base64.RawURLEncoding.DecodeString(invPayload)
	for _, r := range []request{
		{Version: 1, Invitation: inv, Info: []byte(`{"name":"Bob"}`)},
		{Version: 1, Invitation: inv, Tag: groupTag},
	} {
		b, _ := r.encode()
		f.Add(b)
	}
	f.Add([]byte{typeRequest})
	f.Add([]byte{typeRequest, 1, 0, 0, 0, 0, 0})
	f.Add(make([]byte, 16000))
	priv, _ := box.PrivateKeyFromBytes(bytes.Repeat([]byte{7}, KeySize))
	f.Fuzz(func(t *testing.T, b []byte) {
		if r, err := decodeRequest(b); err == nil {
			again, err := r.encode()
			if err != nil {
				t.Fatalf("accepted request does not encode: %v", err)
			}
			if !bytes.Equal(again, b) {
				t.Fatal("request does not round-trip")
			}
		}
		if _, err := openRequest(priv, b); err == nil {
			t.Fatal("an unsealed body opened")
		}
	})
}
