package agent

import (
	"errors"
	"net/netip"
	"net/url"
	"strings"

	"github.com/wisp-chat/wisp/server/wire"
)

// ErrLocalRelay means a relay address points at this device or at a
// private network. A page served from the internet refuses such relays: a
// malicious invitation, contact or file description naming one would make
// the browser connect to its own machine or to devices on its network.
// Only a page loaded from this machine (development, tests) uses them.
var ErrLocalRelay = errors.New("the relay is on this device or on a private network")

// CheckRelay returns an error wrapping ErrLocalRelay unless allowLocal or
// the relay's host is surely public (PublicHost). The error does not name
// the host.
func CheckRelay(a wire.Address, allowLocal bool) error {
	if allowLocal || PublicHost(a.Host) {
		return nil
	}
	return ErrLocalRelay
}

// LoopbackOrigin reports whether a page origin ("http://127.0.0.1:8080")
// is on this machine: http or https on localhost, a name under .localhost,
// or a loopback IP address. A page served from there may use relays on
// loopback and private addresses; the core's owner is developing or
// testing.
func LoopbackOrigin(origin string) bool {
	u, err := url.Parse(origin)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") {
		return false
	}
	host := strings.ToLower(strings.TrimSuffix(u.Hostname(), "."))
	if host == "localhost" || strings.HasSuffix(host, ".localhost") {
		return true
	}
	ip, err := netip.ParseAddr(host)
	return err == nil && ip.Zone() == "" && ip.Unmap().IsLoopback()
}

// privateNames are DNS suffixes that resolve only on this device or a
// local network (RFC 6761 localhost, RFC 6762 .local and the private
// top-level names of its appendix G, RFC 8375 home.arpa, ICANN's
// .internal).
var privateNames = []string{"localhost", "local", "internal", "home.arpa", "lan", "home", "corp", "intranet", "private"}

// nonPublic are the IP ranges that are not on the public internet:
// loopback, private, link-local, shared (CGNAT), reserved, documentation,
// benchmarking, multicast and the unspecified addresses.
var nonPublic = func() []netip.Prefix {
	var out []netip.Prefix
	for _, s := range []string{
		"0.0.0.0/8", "10.0.0.0/8", "100.64.0.0/10", "127.0.0.0/8", "169.254.0.0/16",
		"172.16.0.0/12", "192.0.0.0/24", "192.0.2.0/24", "192.88.99.0/24", "192.168.0.0/16",
		"198.18.0.0/15", "198.51.100.0/24", "203.0.113.0/24", "224.0.0.0/4", "240.0.0.0/4",
		"::/96", // the unspecified and loopback addresses, and IPv4-compatible ones
		"64:ff9b:1::/48", "100::/64", "2001::/23", "2001:db8::/32", "3fff::/20",
		"fc00::/7", "fe80::/10", "fec0::/10", "ff00::/8",
	} {
		out = append(out, netip.MustParsePrefix(s))
	}
	return out
}()

// nat64 and sixToFour are IPv6 ranges that carry an IPv4 address, which
// is judged instead.
var (
	nat64     = netip.MustParsePrefix("64:ff9b::/96")
	sixToFour = netip.MustParsePrefix("2002::/16")
)

// PublicHost reports whether a relay host surely names a machine on the
// public internet, as a browser would read it in a ws:// or wss:// URL. It
// is false for loopback, private, link-local and other non-public IP
// addresses in every spelling a URL parser accepts (IPv4-mapped IPv6,
// "127.1", "2130706433", "0x7f.0.0.1", "0177.0.0.1", a trailing dot, …),
// for localhost and names of private networks (.local, .internal, a name
// without a dot, …) in any case, and for anything that is not a plain DNS
// name or IP address (percent signs, non-ASCII letters, zones), since a
// browser may map those to any of the above.
//
// A public DNS name that resolves to a private address cannot be told
// apart here: the browser gives no way to resolve names.
func PublicHost(host string) bool {
	if strings.HasPrefix(host, "[") && strings.HasSuffix(host, "]") {
		host = host[1 : len(host)-1]
	}
	if ip, err := netip.ParseAddr(host); err == nil {
		return publicIP(ip)
	}
	name := strings.ToLower(host)
	name = strings.TrimSuffix(name, ".") // one trailing dot names the same host
	if name == "" || len(name) > maxHostLen {
		return false
	}
	labels := strings.Split(name, ".")
	for _, l := range labels {
		if l == "" || len(l) > 63 {
			return false
		}
		for i := 0; i < len(l); i++ {
			c := l[i]
			if !(c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || c == '-') {
				return false
			}
		}
	}
	if endsInNumber(labels) {
		// A URL parser reads the host as an IPv4 address (or rejects it).
		ip, ok := parseURLIPv4(labels)
		return ok && publicIP(ip)
	}
	if len(labels) < 2 {
		return false // resolved only through this machine's search domains or hosts file
	}
	for _, suffix := range privateNames {
		if name == suffix || strings.HasSuffix(name, "."+suffix) {
			return false
		}
	}
	return true
}

func publicIP(ip netip.Addr) bool {
	if ip.Zone() != "" {
		return false // zones exist only on this machine
	}
	ip = ip.Unmap()
	if ip.Is6() {
		b := ip.As16()
		switch {
		case nat64.Contains(ip):
			return publicIP(netip.AddrFrom4([4]byte(b[12:16])))
		case sixToFour.Contains(ip):
			return publicIP(netip.AddrFrom4([4]byte(b[2:6])))
		}
	}
	if ip.IsLoopback() || ip.IsPrivate() || ip.IsLinkLocalUnicast() || ip.IsUnspecified() || ip.IsMulticast() {
		return false
	}
	for _, p := range nonPublic {
		if p.Contains(ip) {
			return false
		}
	}
	return true
}

// endsInNumber is the URL Standard's "ends in a number" test on a host's
// labels (lower-case, without a trailing empty label).
func endsInNumber(labels []string) bool {
	last := labels[len(labels)-1]
	if strings.Trim(last, "0123456789") == "" {
		return true
	}
	_, ok := parseURLIPv4Number(last)
	return ok
}

// parseURLIPv4 is the URL Standard's IPv4 parser: one to four parts, each
// decimal, octal (leading 0) or hexadecimal (0x), the last filling the
// remaining bytes.
func parseURLIPv4(labels []string) (netip.Addr, bool) {
	if len(labels) > 4 {
		return netip.Addr{}, false
	}
	var nums []uint64
	for _, l := range labels {
		n, ok := parseURLIPv4Number(l)
		if !ok {
			return netip.Addr{}, false
		}
		nums = append(nums, n)
	}
	for _, n := range nums[:len(nums)-1] {
		if n > 255 {
			return netip.Addr{}, false
		}
	}
	last := nums[len(nums)-1]
	if last >= 1<<(8*(5-len(nums))) {
		return netip.Addr{}, false
	}
	v := last
	for i, n := range nums[:len(nums)-1] {
		v += n << (8 * (3 - i))
	}
	return netip.AddrFrom4([4]byte{byte(v >> 24), byte(v >> 16), byte(v >> 8), byte(v)}), true
}

// parseURLIPv4Number parses one part of a URL's IPv4 address. Values
// above 2^32 are reported as 2^32 (too large for any part).
func parseURLIPv4Number(s string) (uint64, bool) {
	if s == "" {
		return 0, false
	}
	base := uint64(10)
	switch {
	case len(s) >= 2 && s[0] == '0' && (s[1] == 'x' || s[1] == 'X'):
		base, s = 16, s[2:]
	case len(s) >= 2 && s[0] == '0':
		base, s = 8, s[1:]
	}
	var n uint64
	for i := 0; i < len(s); i++ {
		c := s[i]
		var d uint64
		switch {
		case c >= '0' && c <= '9':
			d = uint64(c - '0')
		case c >= 'a' && c <= 'f':
			d = uint64(c-'a') + 10
		case c >= 'A' && c <= 'F':
			d = uint64(c-'A') + 10
		default:
			return 0, false
		}
		if d >= base {
			return 0, false
		}
		n = min(n*base+d, 1<<32)
	}
	return n, true
}
