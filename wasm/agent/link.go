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
	host := inv.Relay.Host
	if len(host) == 0 || len(host) > maxHostLen {
		return "", fmt.Errorf("%w: host of %d bytes", ErrLinkRelay, len(host))
	}
	b := make([]byte, 0, linkFixedSize+len(host))
	b = append(b, LinkFormat, inv.Versions.Min, inv.Versions.Max)
	b = append(b, inv.Relay.KeyHash[:]...)
	b = append(b, byte(len(host)))
	b = append(b, host...)
	b = binary.BigEndian.AppendUint16(b, inv.Relay.Port)
	b = append(b, inv.SenderID[:]...)
	b = append(b, inv.QueueKey[:]...)
	b = append(b, inv.Ratchet[:]...)
	sum := sha256.Sum256(b)
	b = append(b, sum[:checksumSize]...)
	return base64.RawURLEncoding.EncodeToString(b), nil
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
	body, sum := b[:len(b)-checksumSize], b[len(b)-checksumSize:]
	want := sha256.Sum256(body)
	if subtle.ConstantTimeCompare(sum, want[:checksumSize]) != 1 {
		return inv, fmt.Errorf("%w: its checksum does not match (was it cut or changed?)", ErrCorruptedLink)
	}
	hostLen := int(body[35])
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
	r := bytes.NewReader(body[3:])
	read := func(p []byte) { _, _ = r.Read(p) } // lengths were checked above
	read(inv.Relay.KeyHash[:])
	_, _ = r.ReadByte()
	host := make([]byte, hostLen)
	read(host)
	var port [2]byte
	read(port[:])
	read(inv.SenderID[:])
	read(inv.QueueKey[:])
	read(inv.Ratchet[:])
	inv.Relay.Host = string(host)
	inv.Relay.Port = binary.BigEndian.Uint16(port[:])
	if err := validHost(inv.Relay.Host); err != nil {
		return inv, fmt.Errorf("%w: %w", ErrLinkRelay, err)
	}
	if inv.Relay.Port == 0 {
		return inv, fmt.Errorf("%w: port 0", ErrLinkRelay)
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
