package agent

import (
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"errors"
	"strings"
	"testing"

	"github.com/wisp-chat/wisp/crypto/ratchet"
	"github.com/wisp-chat/wisp/server/wire"
)

var ourVersions = VersionRange{Min: 1, Max: 1}

func testInvitation(host string) Invitation {
	inv := Invitation{Versions: VersionRange{1, 1}, Relay: wire.Address{Host: host, Port: 5223}}
	for i := range inv.Relay.KeyHash {
		inv.Relay.KeyHash[i] = byte(i)
	}
	for i := range inv.SenderID {
		inv.SenderID[i] = byte(100 + i)
	}
	for i := range KeySize {
		inv.QueueKey[i] = byte(200 + i)
	}
	_, rinv, err := ratchet.NewInvitation(rand.Reader, true)
	if err != nil {
		panic(err)
	}
	b, _ := rinv.MarshalBinary()
	inv.Ratchet = [ratchet.InvitationSize]byte(b)
	return inv
}

func TestLinkRoundTrip(t *testing.T) {
	for _, host := range []string{"127.0.0.1", "relay.example.org", "::1", strings.Repeat("a", 63) + ".example"} {
		inv := testInvitation(host)
		link, err := inv.Link("http://127.0.0.1:8080/")
		if err != nil {
			t.Fatal(err)
		}
		if !strings.HasPrefix(link, "http://127.0.0.1:8080/#/invite/") {
			t.Errorf("link %q", link)
		}
		got, err := ParseLink(link, ourVersions)
		if err != nil {
			t.Fatalf("%s: %v", host, err)
		}
		if got != inv {
			t.Errorf("round trip changed the invitation:\n got %+v\nwant %+v", got, inv)
		}
		// Bare payloads and surrounding spaces are accepted too.
		p, _ := inv.Payload()
		if got, err := ParseLink("  "+p+"\n", ourVersions); err != nil || got != inv {
			t.Errorf("bare payload: %v", err)
		}
	}
}

// TestLinkLength pins the link length stated in SPEC.md.
func TestLinkLength(t *testing.T) {
	inv := testInvitation("127.0.0.1")
	p, _ := inv.Payload()
	if len(p) != 231 {
		t.Errorf("payload for a 9-byte host is %d characters, SPEC.md says 231", len(p))
	}
	inv = testInvitation("relay.example.org")
	p, _ = inv.Payload()
	if len(p) != 242 {
		t.Errorf("payload for a 17-byte host is %d characters, SPEC.md says 242", len(p))
	}
}

func TestParseLinkErrors(t *testing.T) {
	inv := testInvitation("127.0.0.1")
	good, _ := inv.Payload()
	raw, _ := base64.RawURLEncoding.DecodeString(good)
	reencode := func(mutate func([]byte) []byte) string {
		b := mutate(append([]byte(nil), raw...))
		return "https://w.example/#/invite/" + base64.RawURLEncoding.EncodeToString(b)
	}
	withSum := func(mutate func([]byte) []byte) string {
		return reencode(func(b []byte) []byte {
			b = mutate(b[:len(b)-checksumSize])
			return append(b, checksum(b)...)
		})
	}
	for _, tc := range []struct {
		name, link string
		want       error
	}{
		{"empty", "", ErrNotWispLink},
		{"other app", "https://simplex.chat/invitation#/?v=2&smp=xyz", ErrNotWispLink},
		{"plain web page", "https://example.com/page", ErrNotWispLink},
		{"no payload", "https://w.example/#/invite/", ErrNotWispLink},
		{"bad base64", "https://w.example/#/invite/abc$def", ErrCorruptedLink},
		{"padded base64", "https://w.example/#/invite/" + good + "==", ErrCorruptedLink},
		{"truncated", "https://w.example/#/invite/" + good[:len(good)-10], ErrCorruptedLink},
		{"one char changed", "https://w.example/#/invite/" + flipChar(good, 50), ErrCorruptedLink},
		{"extended", reencode(func(b []byte) []byte { return append(b, 0) }), ErrCorruptedLink},
		{"two bytes", reencode(func(b []byte) []byte { return b[:2] }), ErrCorruptedLink},
		{"format 2", reencode(func(b []byte) []byte { b[0] = 2; return b }), ErrUnsupportedVersion},
		{"future versions", withSum(func(b []byte) []byte { b[1], b[2] = 5, 6; return b }), ErrUnsupportedVersion},
		{"inverted versions", withSum(func(b []byte) []byte { b[1], b[2] = 2, 1; return b }), ErrCorruptedLink},
		{"zero version", withSum(func(b []byte) []byte { b[1] = 0; return b }), ErrCorruptedLink},
		{"host length lies", withSum(func(b []byte) []byte { b[35]++; return b }), ErrCorruptedLink},
		{"bad host", withSum(func(b []byte) []byte { b[36] = '/'; return b }), ErrLinkRelay},
		{"port 0", withSum(func(b []byte) []byte { b[36+9], b[37+9] = 0, 0; return b }), ErrLinkRelay},
		{"zero key", withSum(func(b []byte) []byte {
			off := 36 + 9 + 2 + QueueIDSize
			clear(b[off : off+KeySize])
			return b
		}), ErrCorruptedLink},
		{"short key (wrong lengths)", withSum(func(b []byte) []byte { return b[:len(b)-1] }), ErrCorruptedLink},
		{"ratchet version", withSum(func(b []byte) []byte { b[36+9+2+QueueIDSize+KeySize] = 9; return b }), ErrUnsupportedVersion},
		{"ratchet flags", withSum(func(b []byte) []byte { b[36+9+2+QueueIDSize+KeySize+1] = 0x80; return b }), ErrCorruptedLink},
	} {
		_, err := ParseLink(tc.link, ourVersions)
		if !errors.Is(err, tc.want) {
			t.Errorf("%s: err = %v, want %v", tc.name, err, tc.want)
		}
	}
	// An old link: versions entirely below ours.
	if _, err := ParseLink(good, VersionRange{2, 3}); !errors.Is(err, ErrUnsupportedVersion) || !strings.Contains(err.Error(), "old app") {
		t.Errorf("old link: %v", err)
	}
}

func checksum(b []byte) []byte {
	s := sha256.Sum256(b)
	return s[:checksumSize]
}

func flipChar(s string, i int) string {
	c := byte('A')
	if s[i] == 'A' {
		c = 'B'
	}
	return s[:i] + string(c) + s[i+1:]
}
