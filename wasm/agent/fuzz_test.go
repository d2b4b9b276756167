package agent

import (
	"bytes"
	"errors"
	"testing"
)

// FuzzParseLink checks that ParseLink never panics, returns one of its
// sentinel errors on failure, and that whatever it accepts re-encodes to
// the same payload.
func FuzzParseLink(f *testing.F) {
	for _, host := range []string{"127.0.0.1", "relay.example.org", "::1"} {
		p, _ := testInvitation(host).Payload()
		f.Add(p)
		f.Add("https://wisp.example/#/invite/" + p)
	}
	f.Add("")
	f.Add("https://example.com/#/invite/AAAA")
	f.Fuzz(func(t *testing.T, s string) {
		inv, err := ParseLink(s, VersionRange{1, 255})
		if err != nil {
			if !errors.Is(err, ErrNotWispLink) && !errors.Is(err, ErrCorruptedLink) &&
				!errors.Is(err, ErrUnsupportedVersion) && !errors.Is(err, ErrLinkRelay) {
				t.Fatalf("unexpected error type: %v", err)
			}
			return
		}
		p, err := inv.Payload()
		if err != nil {
			t.Fatalf("accepted invitation does not encode: %v", err)
		}
		again, err := ParseLink(p, VersionRange{1, 255})
		if err != nil || again != inv {
			t.Fatalf("re-encoded invitation differs: %v", err)
		}
	})
}

// FuzzDecodeEnvelope feeds arbitrary bytes to every decoder of what a peer
// sends inside the encryption (agent message, integrity header, reply
// queue, receipt): they must return an error or a value, never panic, and
// what they accept must encode back to the same bytes.
func FuzzDecodeEnvelope(f *testing.F) {
	reply, _ := encodeReply(replyQueue{Relay: testInvitation("127.0.0.1").Relay}, []byte(`{"name":"x"}`))
	msg, _ := encodeMessage(header{ID: 7, Kind: KindChat}, []byte("hello"))
	for _, seed := range [][]byte{
		nil, {typeMessage}, {typeConfirmation, 1}, reply, msg, encodeReceipt([]uint64{1, 2, 3}),
		append([]byte{typeMessage}, make([]byte, 15616)...),
	} {
		f.Add(seed)
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		if typ, c, err := decodeAgentMessage(b); err == nil {
			var again []byte
			if typ == typeConfirmation {
				again = c.encode()
			} else {
				again = append([]byte{typeMessage}, c.Envelope...)
			}
			if !bytes.Equal(again, b) {
				t.Fatal("agent message does not round-trip")
			}
		}
		if h, body, err := decodeMessage(b); err == nil {
			again, err := encodeMessage(h, body)
			if err == nil && !bytes.Equal(again, b) {
				t.Fatal("message does not round-trip")
			}
		}
		if q, info, err := decodeReply(b); err == nil {
			if _, err := encodeReply(q, info); err != nil {
				t.Fatalf("accepted reply does not encode: %v", err)
			}
		}
		if ids, err := decodeReceipt(b); err == nil && !bytes.Equal(encodeReceipt(ids), b) {
			t.Fatal("receipt does not round-trip")
		}
	})
}

// TestReceiptLimit: a receipt of maxReceiptIDs fits in one message, one
// more does not.
func TestReceiptLimit(t *testing.T) {
	if n := len(encodeReceipt(make([]uint64, maxReceiptIDs))); n > MaxBody {
		t.Errorf("a full receipt is %d bytes, MaxBody is %d", n, MaxBody)
	}
	if n := len(encodeReceipt(make([]uint64, maxReceiptIDs+1))); n <= MaxBody {
		t.Errorf("a receipt past the limit still fits (%d bytes)", n)
	}
}
