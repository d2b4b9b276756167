package agent

import (
	"bytes"
	"crypto/rand"
	"encoding/base64"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"strings"
	"testing"

	"github.com/wisp-chat/wisp/crypto/box"
	"github.com/wisp-chat/wisp/server/wire"
)

// testAddress is an address on host with fixed IDs and a fresh key.
func testAddress(host string, tag Tag) ContactAddress {
	c := ContactAddress{Versions: VersionRange{1, 1}, Relay: wire.Address{Host: host, Port: 5223}, Tag: tag}
	for i := range c.Relay.KeyHash {
		c.Relay.KeyHash[i] = byte(i)
	}
	for i := range c.SenderID {
		c.SenderID[i] = byte(100 + i)
	}
	for i := range c.SenderSeed {
		c.SenderSeed[i] = byte(50 + i)
	}
	k, err := box.GenerateKey(rand.Reader)
	if err != nil {
		panic(err)
	}
	c.Key = [KeySize]byte(k.PublicKey().Bytes())
	return c
}

var groupTag = Tag{Type: TagGroup, Group: [GroupIDSize]byte{1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16}}

func TestAddressRoundTrip(t *testing.T) {
	for _, host := range []string{"127.0.0.1", "relay.example.org", "::1", strings.Repeat("a", 63) + ".example"} {
		for _, tag := range []Tag{{}, groupTag} {
			c := testAddress(host, tag)
			link, err := c.Link("http://127.0.0.1:8080/")
			if err != nil {
				t.Fatal(err)
			}
			if !strings.HasPrefix(link, "http://127.0.0.1:8080/#/address/") {
				t.Errorf("link %q", link)
			}
			got, err := ParseAddress(link, ourVersions)
			if err != nil {
				t.Fatalf("%s, tag %c: %v", host, tag.Type, err)
			}
			if got != c {
				t.Errorf("%s: round trip changed the address", host)
			}
			p, _ := c.Payload()
			if got, err := ParseAddress("  "+p+"\n", ourVersions); err != nil || got != c {
				t.Errorf("bare payload: %v", err)
			}
			if !IsAddressLink(link) || !IsAddressLink(p) {
				t.Errorf("%s: IsAddressLink is false", host)
			}
		}
	}
	inv, _ := testInvitation("127.0.0.1").Link("https://w.example")
	invPayload, _ := testInvitation("127.0.0.1").Payload()
	for _, s := range []string{inv, invPayload, "", "https://example.com/", "abc"} {
		if IsAddressLink(s) {
			t.Errorf("IsAddressLink(%q) is true", s)
		}
	}
}

// TestAddressLength pins the lengths stated in SPEC.md.
func TestAddressLength(t *testing.T) {
	for _, tc := range []struct {
		host      string
		tag       Tag
		bytes, ch int
	}{
		{"127.0.0.1", Tag{}, 140, 187},
		{"relay.example.org", Tag{}, 148, 198},
		{"127.0.0.1", groupTag, 156, 208},
	} {
		c := testAddress(tc.host, tc.tag)
		b, err := c.payloadBytes()
		if err != nil {
			t.Fatal(err)
		}
		p, _ := c.Payload()
		if len(b) != tc.bytes || len(p) != tc.ch {
			t.Errorf("%s tag %c: %d bytes, %d characters; SPEC.md says %d and %d", tc.host, tc.tag.Type, len(b), len(p), tc.bytes, tc.ch)
		}
	}
	link, _ := testAddress("127.0.0.1", Tag{}).Link("http://127.0.0.1:8080")
	if len(link) != 219 {
		t.Errorf("the link is %d characters, SPEC.md says 219", len(link))
	}
}

func TestParseAddressErrors(t *testing.T) {
	c := testAddress("127.0.0.1", Tag{})
	good, _ := c.Payload()
	raw, _ := base64.RawURLEncoding.DecodeString(good)
	const prefix = "https://w.example/#/address/"
	reencode := func(mutate func([]byte) []byte) string {
		return prefix + base64.RawURLEncoding.EncodeToString(mutate(bytes.Clone(raw)))
	}
	withSum := func(mutate func([]byte) []byte) string {
		return reencode(func(b []byte) []byte { return appendChecksum(mutate(b[:len(b)-checksumSize])) })
	}
	keyAt := 36 + 9 + 2 + QueueIDSize + seedSize
	tagAt := keyAt + KeySize
	inv, _ := testInvitation("127.0.0.1").Link("https://w.example")
	invPayload, _ := testInvitation("127.0.0.1").Payload()
	for _, tc := range []struct {
		name, link string
		want       error
	}{
		{"empty", "", ErrNotAddress},
		{"plain web page", "https://example.com/page", ErrNotAddress},
		{"an invitation link", inv, ErrNotAddress},
		{"an invitation payload", invPayload, ErrNotAddress},
		{"no payload", prefix, ErrNotAddress},
		{"bad base64", prefix + "abc$def", ErrCorruptedAddress},
		{"padded base64", prefix + good + "==", ErrCorruptedAddress},
		{"truncated", prefix + good[:len(good)-10], ErrCorruptedAddress},
		{"one char changed", prefix + flipChar(good, 50), ErrCorruptedAddress},
		{"extended", reencode(func(b []byte) []byte { return append(b, 0) }), ErrCorruptedAddress},
		{"two bytes", reencode(func(b []byte) []byte { return b[:2] }), ErrCorruptedAddress},
		{"format 3", reencode(func(b []byte) []byte { b[0] = 3; return b }), ErrAddressVersion},
		{"unknown tag type", withSum(func(b []byte) []byte { b[tagAt] = 'Z'; return b }), ErrAddressVersion},
		{"group tag without its ID", withSum(func(b []byte) []byte { b[tagAt] = byte(TagGroup); return b }), ErrCorruptedAddress},
		{"no tag", withSum(func(b []byte) []byte { return b[:tagAt] }), ErrCorruptedAddress},
		{"future versions", withSum(func(b []byte) []byte { b[1], b[2] = 5, 6; return b }), ErrAddressVersion},
		{"inverted versions", withSum(func(b []byte) []byte { b[1], b[2] = 2, 1; return b }), ErrCorruptedAddress},
		{"zero version", withSum(func(b []byte) []byte { b[1] = 0; return b }), ErrCorruptedAddress},
		{"host length lies", withSum(func(b []byte) []byte { b[35] += 40; return b }), ErrCorruptedAddress},
		{"bad host", withSum(func(b []byte) []byte { b[36] = '/'; return b }), ErrAddressRelay},
		{"port 0", withSum(func(b []byte) []byte { b[36+9], b[37+9] = 0, 0; return b }), ErrAddressRelay},
		{"zero key", withSum(func(b []byte) []byte { clear(b[keyAt : keyAt+KeySize]); return b }), ErrCorruptedAddress},
		{"low-order key", withSum(func(b []byte) []byte {
			// A point of order 8 on Curve25519.
			lo, _ := hex.DecodeString("e0eb7a7c3b41b8ae1656e3faf19fc46ada098deb9c32b1fd866205165f49b800")
			copy(b[keyAt:], lo)
			return b
		}), ErrCorruptedAddress},
	} {
		_, err := ParseAddress(tc.link, ourVersions)
		if !errors.Is(err, tc.want) {
			t.Errorf("%s: err = %v, want %v", tc.name, err, tc.want)
		}
	}
	if _, err := ParseAddress(good, VersionRange{2, 3}); !errors.Is(err, ErrAddressVersion) || !strings.Contains(err.Error(), "old app") {
		t.Errorf("old address: %v", err)
	}
	if _, err := ParseAddress(withSum(func(b []byte) []byte { b[tagAt] = 'Z'; return b }), ourVersions); err == nil ||
		!strings.Contains(err.Error(), "kind of address this app does not know") {
		t.Errorf("unknown tag: %v", err)
	}
}

// TestRequestEncoding: the request plaintext round-trips, its info limit
// is MaxBody (one byte more is refused on both sides), and what decodes
// is exactly what encodes.
func TestRequestEncoding(t *testing.T) {
	invPayload, _ := testInvitation("relay.example.org").Payload()
	inv, _ := base64.RawURLEncoding.DecodeString(invPayload)
	for _, tag := range []Tag{{}, groupTag} {
		for _, info := range [][]byte{nil, []byte(`{"name":"Bob"}`), bytes.Repeat([]byte{'x'}, MaxBody)} {
			r := request{Version: 1, Invitation: inv, Info: info, Tag: tag}
			b, err := r.encode()
			if err != nil {
				t.Fatal(err)
			}
			if len(b) > box.MaxMessagePlaintext-KeySize {
				t.Fatalf("a %d-byte request does not fit the box", len(b))
			}
			got, err := decodeRequest(b)
			if err != nil {
				t.Fatal(err)
			}
			if got.Version != 1 || !bytes.Equal(got.Invitation, inv) || !bytes.Equal(got.Info, info) || got.Tag != tag {
				t.Errorf("tag %c, %d-byte info: round trip changed it", tag.Type, len(info))
			}
			sealed, err := sealRequest(rand.Reader, testKeyPair(t).pub, b)
			if err != nil || len(sealed) != wire.MaxBodySize {
				t.Fatalf("sealed: %d bytes, %v", len(sealed), err)
			}
		}
	}
	long := request{Version: 1, Invitation: inv, Info: make([]byte, MaxBody+1)}
	if _, err := long.encode(); !errors.Is(err, ErrTooLong) {
		t.Errorf("info of MaxBody+1: %v", err)
	}
	// Hand-made: info_len MaxBody+1 is refused by the decoder.
	b, _ := request{Version: 1, Invitation: inv}.encode()
	at := 4 + len(inv)
	forged := append(binary.BigEndian.AppendUint16(bytes.Clone(b[:at]), MaxBody+1), make([]byte, MaxBody+1)...)
	forged = append(forged, 0)
	if _, err := decodeRequest(forged); !errors.Is(err, ErrMalformed) {
		t.Errorf("decoding info of MaxBody+1: %v", err)
	}
	for _, bad := range []request{
		{Version: 1, Invitation: inv[:minInvitationSize-1]},
		{Version: 1, Invitation: make([]byte, maxInvitationSize+1)},
		{Version: 1, Invitation: inv, Tag: Tag{Type: 'Z'}},
	} {
		if _, err := bad.encode(); err == nil {
			t.Errorf("encoded a bad request (%d-byte invitation, tag %#x)", len(bad.Invitation), byte(bad.Tag.Type))
		}
	}
}

type keyPair struct {
	priv box.PrivateKey
	pub  [KeySize]byte
}

func testKeyPair(t testing.TB) keyPair {
	k, err := box.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	return keyPair{k, [KeySize]byte(k.PublicKey().Bytes())}
}

// TestAddressNeverPrintsKeys: formatting an address shows no key bytes.
func TestAddressNeverPrintsKeys(t *testing.T) {
	c := testAddress("relay.example.org", Tag{})
	for _, verb := range []string{"%v", "%+v", "%#v", "%s"} {
		out := fmt.Sprintf(verb, c)
		for _, secret := range [][]byte{c.SenderSeed[:], c.Key[:]} {
			if strings.Contains(out, hex.EncodeToString(secret)) || strings.Contains(out, fmt.Sprint(secret[:4])[1:8]) {
				t.Errorf("%s prints key bytes: %s", verb, out)
			}
		}
	}
}

// TestAddressHostLimit: a host of 253 bytes (the most host_len allows
// for a DNS name) makes an address; 254 is refused before encoding.
func TestAddressHostLimit(t *testing.T) {
	host := strings.Repeat(strings.Repeat("a", 62)+".", 4) + "b" // 4×63 + 1 = 253
	c := testAddress(host, groupTag)
	p, err := c.Payload()
	if err != nil {
		t.Fatalf("a %d-byte host: %v", len(host), err)
	}
	if got, err := ParseAddress(p, ourVersions); err != nil || got != c {
		t.Fatalf("a %d-byte host does not round-trip: %v", len(host), err)
	}
	c.Relay.Host += "b"
	if _, err := c.Payload(); !errors.Is(err, ErrAddressRelay) {
		t.Errorf("a %d-byte host: %v, want ErrAddressRelay", len(c.Relay.Host), err)
	}
}
