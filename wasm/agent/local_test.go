package agent

import (
	"errors"
	"strings"
	"testing"

	"github.com/wisp-chat/wisp/server/wire"
)

// localHosts are relay hosts that are not surely public.
var localHosts = []string{
	// IPv4 loopback, in the forms a URL parser turns into 127.0.0.1
	"127.0.0.1", "127.0.0.1.", "127.1", "127.0.1", "2130706433", "0x7f000001", "0X7F.0.0.1",
	"0x7f.1", "0177.0.0.1", "0177.1", "017700000001", "127.000.000.001", "127.0.0.01",
	"0x0000000000007f.0x0.0.1", "127.255.255.254",
	// unspecified, "this network" (0.0.0.0 reaches this machine)
	"0.0.0.0", "0", "0x0", "0.0", "0.1.2.3",
	// private, shared, link-local
	"10.0.0.1", "10.255.255.255", "012.0.0.1", "167772161", "172.16.0.1", "172.31.255.255",
	"192.168.1.1", "192.168.1.1.", "0xc0a80101", "3232235777", "0300.0250.1.1", "100.64.0.1",
	"169.254.169.254", "169.254.1", "0xa9fea9fe",
	// reserved, documentation, benchmarking, multicast, broadcast
	"192.0.0.8", "192.0.2.1", "198.18.0.1", "198.51.100.7", "203.0.113.9", "224.0.0.1",
	"239.255.255.250", "240.0.0.1", "255.255.255.255", "4294967295",
	// IPv6
	"::1", "[::1]", "0:0:0:0:0:0:0:1", "::", "::ffff:127.0.0.1", "::ffff:7f00:1", "[::ffff:7f00:1]",
	"::ffff:10.0.0.1", "::ffff:192.168.0.1", "::127.0.0.1", "::7f00:1", "::10.0.0.1",
	"fc00::1", "fd12:3456:789a::1", "FD00::1", "fe80::1", "FE80::1", "fe80::1%eth0", "febf::1",
	"fec0::1", "ff02::1", "2001:db8::1", "64:ff9b::7f00:1", "64:ff9b::10.0.0.1", "64:ff9b:1::1",
	"2002:7f00:1::1", "2002:c0a8:101::", "100::1", "2001::1",
	// names of this machine and of private networks, in any case
	"localhost", "LOCALHOST", "LocalHost", "localhost.", "LOCALHOST.", "relay.localhost",
	"a.b.localhost.", "printer.local", "RELAY.LOCAL", "nas.home.arpa", "db.internal",
	"router.lan", "relay", "relay.", "intranet", "x.corp",
	// not a plain name: a browser may map these to any of the above
	"%31%32%37.0.0.1", "127.0.0.1%2f", "１２７.０.０.１", "ｌｏｃａｌｈｏｓｔ", "relay_1.example",
	"relay..example", ".example", "", ".", "..", "relay.example..", "a b.example",
	"localhost:80", "[127.0.0.1]", "[fe80::1%25eth0]",
	strings.Repeat("a", 64) + ".example", strings.Repeat("a.", 127) + "example",
	// numbers a URL parser rejects: not public either
	"256.0.0.1", "1.2.3.4.5", "08.0.0.1", "1.2.65536", "4294967296", "0x100000000",
	"relay.example.1", "relay.example.0x1",
}

// publicHosts are relay hosts on the public internet.
var publicHosts = []string{
	"relay.example", "RELAY.EXAMPLE", "relay.example.", "wisp-relay.example.org", "xn--bcher-kva.example",
	"1.1.1.1", "8.8.8.8", "9.9.9.9.", "134744072", "0x8080808", "8.8.2056", "010.0.0.1.example",
	"172.15.255.255", "172.32.0.1", "192.169.0.1", "100.63.255.255", "100.128.0.1", "169.253.0.1",
	"11.0.0.1", "2606:4700:4700::1111", "[2606:4700:4700::1111]", "2a00:1450:4001::1",
	"::ffff:8.8.8.8", "64:ff9b::808:808", "2002:808:808::1", "relay.localhost.example",
	"local.example", "1e100.net", "0x.example", "a1.example", "1.2.3.0x1g", // not a number: a name
}

// TestPublicHost: every spelling of a loopback, private or otherwise
// non-public address that a browser's URL parser accepts is refused.
func TestPublicHost(t *testing.T) {
	for _, h := range localHosts {
		if PublicHost(h) {
			t.Errorf("PublicHost(%q) = true, want false", h)
		}
	}
	for _, h := range publicHosts {
		if !PublicHost(h) {
			t.Errorf("PublicHost(%q) = false, want true", h)
		}
	}
}

// TestURLIPv4: the URL Standard's IPv4 parser, which is what the browser
// dials.
func TestURLIPv4(t *testing.T) {
	for in, want := range map[string]string{
		"127.1": "127.0.0.1", "2130706433": "127.0.0.1", "0x7f.1": "127.0.0.1", "0177.0.0.1": "127.0.0.1",
		"0x7f.0.0.0x1": "127.0.0.1", "192.168.257": "192.168.1.1", "0x": "0.0.0.0", "1.0x": "1.0.0.0",
		"8.8.2056": "8.8.8.8", "00000000000000000000000000177.0.0.1": "127.0.0.1", "255.255.255.255": "255.255.255.255",
	} {
		labels := strings.Split(in, ".")
		if !endsInNumber(labels) {
			t.Errorf("%q does not end in a number", in)
		}
		ip, ok := parseURLIPv4(labels)
		if !ok || ip.String() != want {
			t.Errorf("parseURLIPv4(%q) = %v, %v; want %s", in, ip, ok, want)
		}
	}
	for _, in := range []string{"256.0.0.1", "1.2.3.4.5", "1.2.3.09", "1.2.65536", "4294967296", "0x1g", "1..2"} {
		if ip, ok := parseURLIPv4(strings.Split(in, ".")); ok {
			t.Errorf("parseURLIPv4(%q) = %v, want a failure", in, ip)
		}
	}
	for _, in := range []string{"relay.example", "1.2.3.a", "0xg", "example"} {
		if endsInNumber(strings.Split(in, ".")) {
			t.Errorf("%q ends in a number", in)
		}
	}
}

func TestLoopbackOrigin(t *testing.T) {
	for origin, want := range map[string]bool{
		"http://127.0.0.1:8080": true, "http://localhost:8080": true, "http://LOCALHOST": true,
		"https://localhost.": true, "http://wisp.localhost:1": true, "http://[::1]:8080": true,
		"http://127.5.6.7": true, "http://[::ffff:127.0.0.1]": true,
		"https://wisp.example": false, "http://wisp.example": false, "http://192.168.1.2:8080": false,
		"http://10.0.0.1": false, "http://0.0.0.0:8080": false, "https://localhost.example": false,
		"": false, "null": false, "file://": false, "ws://localhost": false, "http://[fe80::1%25lo]": false,
		"https://127.0.0.1.nip.io": false,
	} {
		if got := LoopbackOrigin(origin); got != want {
			t.Errorf("LoopbackOrigin(%q) = %v, want %v", origin, got, want)
		}
	}
}

func TestCheckRelay(t *testing.T) {
	for _, s := range []string{
		"wisp://AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA@127.0.0.1:5223",
		"wisp://AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA@[::1]:5223",
		"wisp://AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA@LOCALHOST.",
		"wisp://AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA@127.1:443",
		"wisp://AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA@192.168.0.10:5223",
		"wisp://AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA@%3127.0.0.1:5223",
	} {
		a, err := wire.ParseAddress(s)
		if err != nil {
			t.Fatalf("%s: %v", s, err)
		}
		if err := CheckRelay(a, false); !errors.Is(err, ErrLocalRelay) {
			t.Errorf("CheckRelay(%s, false) = %v, want ErrLocalRelay", s, err)
		} else if strings.Contains(err.Error(), a.Host) {
			t.Errorf("the error names the host: %v", err)
		}
		if err := CheckRelay(a, true); err != nil {
			t.Errorf("CheckRelay(%s, true) = %v", s, err)
		}
	}
	a, err := wire.ParseAddress("wisp://AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA@relay.example:443")
	if err != nil {
		t.Fatal(err)
	}
	if err := CheckRelay(a, false); err != nil {
		t.Errorf("a public relay: %v", err)
	}
}
