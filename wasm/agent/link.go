package agent

import (
	"bytes"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"encoding/binary"
	"errors"
	"fmt"
	"net/netip"
	"strings"

	"github.com/skip2/go-qrcode"
	"github.com/wisp-chat/wisp/crypto/ratchet"
	"github.com/wisp-chat/wisp/server/wire"
)

// Invitation link format (see SPEC.md, "Invitation link").
const (
	// LinkFormat is the version of the link payload layout.
	LinkFormat = 1
	// LinkPath precedes the payload in the URL fragment.
	LinkPath = "#/invite/"
	// QueueIDSize is the size of a relay queue ID.
	QueueIDSize = 24
	// KeySize is the size of an X25519 public key.
	KeySize = 32

	checksumSize = 4
	maxHostLen   = 253
	// fixed part of the payload: format, versions, key hash, host length,
	// port, sender ID, queue DH key, ratchet invitation, checksum.
	linkFixedSize = 1 + 2 + 32 + 1 + 2 + QueueIDSize + KeySize + ratchet.InvitationSize + checksumSize
)

// Link errors. ParseLink wraps exactly one of them, with details.
var (
	ErrNotWispLink        = errors.New("not a Wisp invitation link")
	ErrUnsupportedVersion = errors.New("this invitation needs a newer version of Wisp")
	ErrCorruptedLink      = errors.New("the invitation link is corrupted")
	ErrLinkRelay          = errors.New("the invitation's relay address is invalid")
)

// VersionRange is an inclusive range of agent protocol versions.
type VersionRange struct{ Min, Max uint8 }

// Intersects reports whether r and o share a version.
func (r VersionRange) Intersects(o VersionRange) bool { return r.Min <= o.Max && o.Min <= r.Max }

// Invitation is what a one-time link carries: where and how to reach the
// inviter's queue, and the inviter's half of the initial key agreement.
// It holds no secret of the inviter, but whoever has it can connect once:
// it is shown only to the person invited.
type Invitation struct {
	Versions VersionRange
	Relay    wire.Address
	// SenderID is the sender-side ID of the inviter's queue.
	SenderID [QueueIDSize]byte
	// QueueKey is the inviter's X25519 key for the per-queue box.
	QueueKey [KeySize]byte
	// Ratchet is the inviter's half of the X3DH-style agreement: a
	// marshalled ratchet.Invitation (version, flags, two X25519 keys).
	Ratchet [ratchet.InvitationSize]byte
}

// Payload returns the compact binary form, base64url without padding.
func (inv Invitation) Payload() (string, error) {
	b := make([]byte, 0, linkFixedSize+len(inv.Relay.Host))
	b = append(b, LinkFormat, inv.Versions.Min, inv.Versions.Max)
	b, err := appendRelay(b, inv.Relay)
	if err != nil {
		return "", fmt.Errorf("%w: %w", ErrLinkRelay, err)
	}
	b = append(b, inv.SenderID[:]...)
	b = append(b, inv.QueueKey[:]...)
	b = append(b, inv.Ratchet[:]...)
	return base64.RawURLEncoding.EncodeToString(appendChecksum(b)), nil
}

// The relay and the checksum are encoded alike in invitation links and
// contact addresses (address.go).

// appendRelay appends a relay as links carry it: key hash (32), host
// length (1), host (1..253 bytes), port (2).
func appendRelay(b []byte, r wire.Address) ([]byte, error) {
	if len(r.Host) == 0 || len(r.Host) > maxHostLen {
		return nil, fmt.Errorf("host of %d bytes", len(r.Host))
	}
	b = append(b, r.KeyHash[:]...)
	b = append(b, byte(len(r.Host)))
	b = append(b, r.Host...)
	return binary.BigEndian.AppendUint16(b, r.Port), nil
}

// readRelay reads what appendRelay wrote at the start of b, whose length
// the caller checked, and returns the bytes after it.
func readRelay(b []byte) (wire.Address, []byte) {
	var r wire.Address
	copy(r.KeyHash[:], b)
	n := int(b[32])
	r.Host = string(b[33 : 33+n])
	r.Port = binary.BigEndian.Uint16(b[33+n:])
	return r, b[35+n:]
}

// checkRelayFields checks a relay read by readRelay: an IP literal or a
// DNS name, and a port other than 0.
func checkRelayFields(r wire.Address) error {
	if err := validHost(r.Host); err != nil {
		return err
	}
	if r.Port == 0 {
		return errors.New("port 0")
	}
	return nil
}

// appendChecksum appends the first 4 bytes of SHA-256 of b.
func appendChecksum(b []byte) []byte {
	sum := sha256.Sum256(b)
	return append(b, sum[:checksumSize]...)
}

// checksumOK reports whether b ends with the checksum of what precedes it.
func checksumOK(b []byte) bool {
	if len(b) < checksumSize {
		return false
	}
	body, sum := b[:len(b)-checksumSize], b[len(b)-checksumSize:]
	want := sha256.Sum256(body)
	return subtle.ConstantTimeCompare(sum, want[:checksumSize]) == 1
}

// Link returns the invitation as a link on the given app origin, e.g.
// "https://wisp.example". The payload is in the fragment, which browsers
// never send to the host.
func (inv Invitation) Link(origin string) (string, error) {
	p, err := inv.Payload()
	if err != nil {
		return "", err
	}
	return strings.TrimSuffix(origin, "/") + "/" + LinkPath + p, nil
}

// QRCode returns a PNG of size×size pixels encoding link, at the medium
// error-correction level (15%), which phone cameras read from a screen.
func QRCode(link string, size int) ([]byte, error) {
	png, err := qrcode.Encode(link, qrcode.Medium, size)
	if err != nil {
		return nil, fmt.Errorf("agent: QR code: %w", err)
	}
	return png, nil
}

// ParseLink parses an invitation link (any origin) or a bare payload, and
// validates everything in it. ours is the range of versions this agent
// speaks.
func ParseLink(s string, ours VersionRange) (Invitation, error) {
	var inv Invitation
	s = strings.TrimSpace(s)
	payload := s
	if i := strings.Index(s, LinkPath); i >= 0 {
		payload = s[i+len(LinkPath):]
	} else if strings.Contains(s, "://") || strings.Contains(s, "#") {
		return inv, fmt.Errorf("%w: it has no %q part", ErrNotWispLink, LinkPath)
	}
	if payload == "" {
		return inv, fmt.Errorf("%w: it is empty", ErrNotWispLink)
	}
	b, err := base64.RawURLEncoding.DecodeString(payload)
	if err != nil {
		return inv, fmt.Errorf("%w: it contains characters that do not belong (was it cut or changed?)", ErrCorruptedLink)
	}
	if len(b) < 3 {
		return inv, fmt.Errorf("%w: it is too short", ErrCorruptedLink)
	}
	if b[0] != LinkFormat {
		return inv, fmt.Errorf("%w: link format %d (this app reads format %d)", ErrUnsupportedVersion, b[0], LinkFormat)
	}
	if len(b) < linkFixedSize+1 {
		return inv, fmt.Errorf("%w: %d bytes is too short", ErrCorruptedLink, len(b))
	}
	if !checksumOK(b) {
		return inv, fmt.Errorf("%w: its checksum does not match (was it cut or changed?)", ErrCorruptedLink)
	}
	hostLen := int(b[35])
	if len(b) != linkFixedSize+hostLen {
		return inv, fmt.Errorf("%w: length %d does not match its contents", ErrCorruptedLink, len(b))
	}
	inv.Versions = VersionRange{Min: b[1], Max: b[2]}
	if inv.Versions.Min > inv.Versions.Max || inv.Versions.Min == 0 {
		return inv, fmt.Errorf("%w: invalid version range %d-%d", ErrCorruptedLink, inv.Versions.Min, inv.Versions.Max)
	}
	if !inv.Versions.Intersects(ours) {
		if inv.Versions.Min > ours.Max {
			return inv, fmt.Errorf("%w: it needs version %d, this app speaks %d-%d", ErrUnsupportedVersion, inv.Versions.Min, ours.Min, ours.Max)
		}
		return inv, fmt.Errorf("%w: it was made by an old app (version %d); ask for a new link", ErrUnsupportedVersion, inv.Versions.Max)
	}
	relay, rest := readRelay(b[3:]) // lengths were checked above
	inv.Relay = relay
	rest = rest[copy(inv.SenderID[:], rest):]
	rest = rest[copy(inv.QueueKey[:], rest):]
	copy(inv.Ratchet[:], rest)
	if err := checkRelayFields(inv.Relay); err != nil {
		return inv, fmt.Errorf("%w: %w", ErrLinkRelay, err)
	}
	var zero [KeySize]byte
	if bytes.Equal(inv.QueueKey[:], zero[:]) {
		return inv, fmt.Errorf("%w: it holds an all-zero key", ErrCorruptedLink)
	}
	if _, err := ratchet.ParseInvitation(inv.Ratchet[:]); err != nil {
		if errors.Is(err, ratchet.ErrVersion) {
			return inv, fmt.Errorf("%w: %w", ErrUnsupportedVersion, err)
		}
		return inv, fmt.Errorf("%w: %w", ErrCorruptedLink, err)
	}
	return inv, nil
}

// validHost accepts an IP literal or a DNS name of letters, digits, '-'
// and '.'.
func validHost(h string) error {
	if h == "" {
		return errors.New("empty host")
	}
	if _, err := netip.ParseAddr(h); err == nil {
		return nil
	}
	for _, label := range strings.Split(h, ".") {
		if label == "" || len(label) > 63 {
			return fmt.Errorf("bad host name %q", h)
		}
		for i := 0; i < len(label); i++ {
			c := label[i]
			if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '-') {
				return fmt.Errorf("bad host name %q", h)
			}
		}
	}
	return nil
}
