//go:build js && wasm

package agent

import (
	"net/netip"
	"strings"
	"syscall/js"
	"testing"
)

// TestPublicHostMatchesURLParser checks PublicHost against the URL parser
// of the JavaScript engine the core runs in, which is what the browser
// dials: a host judged public must still be public as the parser reads it,
// and every host judged public must parse.
func TestPublicHostMatchesURLParser(t *testing.T) {
	url := js.Global().Get("URL")
	// parse returns the host as the engine reads it in a wss:// URL, or
	// false if it refuses it.
	parse := func(host string) (string, bool) {
		if strings.Contains(host, ":") && !strings.HasPrefix(host, "[") {
			host = "[" + host + "]" // an IPv6 literal, as WebSocketURL writes it
		}
		defer func() { _ = recover() }() // a TypeError: refused
		u := url.New("wss://" + host + ":1/")
		return strings.Trim(u.Get("hostname").String(), "[]"), true
	}
	for _, h := range append(append([]string(nil), localHosts...), publicHosts...) {
		canonical, ok := parse(h)
		if !PublicHost(h) {
			continue
		}
		if !ok {
			t.Errorf("PublicHost(%q) = true, but the URL parser refuses it", h)
			continue
		}
		if !PublicHost(canonical) || plainlyLocal(canonical) {
			t.Errorf("PublicHost(%q) = true, but the URL parser reads it as %q, which is not public", h, canonical)
		}
	}
	// And the tricks are read as this machine indeed.
	for _, h := range []string{"127.1", "2130706433", "0x7f.1", "0177.0.0.1", "%31%32%37.0.0.1", "１２７.０.０.１"} {
		if got, ok := parse(h); !ok || got != "127.0.0.1" {
			t.Errorf("the URL parser reads %q as %q (%v), want 127.0.0.1", h, got, ok)
		}
	}
}

// plainlyLocal is an independent, simpler judgement of a canonical host.
func plainlyLocal(host string) bool {
	if host == "localhost" || strings.HasSuffix(host, ".localhost") {
		return true
	}
	ip, err := netip.ParseAddr(host)
	if err != nil {
		return false
	}
	ip = ip.Unmap()
	return ip.IsLoopback() || ip.IsPrivate() || ip.IsLinkLocalUnicast() || ip.IsUnspecified()
}
