package wire

import (
	"crypto/ed25519"
	"crypto/sha256"
	"encoding/base64"
	"fmt"
	"net"
	"net/netip"
	"strconv"
	"strings"
)

// Scheme is the URI scheme of relay addresses.
const Scheme = "wisp"

// EndpointPath is the URL path of the relay's WebSocket endpoint.
const EndpointPath = "/wisp"

// DefaultPort is used when an address has no port.
const DefaultPort = 443

// KeyHash is the SHA-256 hash of a relay's Ed25519 identity public key.
type KeyHash [32]byte

// HashIdentity returns the key hash that appears in the relay's address.
func HashIdentity(pub ed25519.PublicKey) KeyHash {
	return sha256.Sum256(pub)
}

// String returns the unpadded base64url form used in addresses.
func (h KeyHash) String() string {
	return base64.RawURLEncoding.EncodeToString(h[:])
}

// Address identifies a relay: where to connect and which identity key to
// expect. Its text form is wisp://<keyhash>@host[:port].
type Address struct {
	KeyHash KeyHash
	Host    string // DNS name or IP address, without brackets
	Port    uint16
}

// String returns the canonical text form; the port is always written.
func (a Address) String() string {
	return Scheme + "://" + a.KeyHash.String() + "@" + net.JoinHostPort(a.Host, strconv.Itoa(int(a.Port)))
}

// IsLoopback reports whether the host is a loopback address or "localhost".
func (a Address) IsLoopback() bool {
	if strings.EqualFold(a.Host, "localhost") {
		return true
	}
	ip, err := netip.ParseAddr(a.Host)
	return err == nil && ip.IsLoopback()
}

// WebSocketURL returns the URL a client dials: ws:// for loopback hosts
// (local development and tests, where no certificate exists) and wss://
// for every other host.
func (a Address) WebSocketURL() string {
	scheme := "wss"
	if a.IsLoopback() {
		scheme = "ws"
	}
	return scheme + "://" + net.JoinHostPort(a.Host, strconv.Itoa(int(a.Port))) + EndpointPath
}

// ParseAddress parses wisp://<keyhash>@host[:port]. Errors wrap ErrAddress
// and say which part is wrong.
func ParseAddress(s string) (Address, error) {
	var a Address
	rest, ok := strings.CutPrefix(s, Scheme+"://")
	if !ok {
		return a, fmt.Errorf("%w: scheme must be %s://", ErrAddress, Scheme)
	}
	hash, hostport, ok := strings.Cut(rest, "@")
	if !ok {
		return a, fmt.Errorf("%w: missing '@' between key hash and host", ErrAddress)
	}
	if hash == "" {
		return a, fmt.Errorf("%w: missing key hash", ErrAddress)
	}
	raw, err := base64.RawURLEncoding.DecodeString(hash)
	if err != nil {
		return a, fmt.Errorf("%w: key hash is not unpadded base64url", ErrAddress)
	}
	if len(raw) != len(a.KeyHash) {
		return a, fmt.Errorf("%w: key hash is %d bytes, want %d", ErrAddress, len(raw), len(a.KeyHash))
	}
	copy(a.KeyHash[:], raw)
	if strings.ContainsAny(hostport, "/?#@ ") {
		return a, fmt.Errorf("%w: unexpected path, query, fragment or space after host", ErrAddress)
	}
	host, port := hostport, ""
	if h, p, err := net.SplitHostPort(hostport); err == nil {
		host, port = h, p
	} else if strings.HasPrefix(hostport, "[") {
		if !strings.HasSuffix(hostport, "]") {
			return a, fmt.Errorf("%w: unterminated IPv6 literal", ErrAddress)
		}
		host = hostport[1 : len(hostport)-1]
	} else if strings.Contains(hostport, ":") {
		return a, fmt.Errorf("%w: bad host:port %q", ErrAddress, hostport)
	}
	if host == "" {
		return a, fmt.Errorf("%w: missing host", ErrAddress)
	}
	if strings.IndexFunc(host, func(r rune) bool { return r < 0x21 || r == 0x7f }) >= 0 {
		return a, fmt.Errorf("%w: control character in host", ErrAddress)
	}
	if strings.Contains(host, ":") {
		if _, err := netip.ParseAddr(host); err != nil {
			return a, fmt.Errorf("%w: bad IPv6 address", ErrAddress)
		}
	}
	a.Host = host
	a.Port = DefaultPort
	if port != "" {
		n, err := strconv.ParseUint(port, 10, 16)
		if err != nil || n == 0 {
			return a, fmt.Errorf("%w: port must be 1-65535", ErrAddress)
		}
		a.Port = uint16(n)
	}
	return a, nil
}
