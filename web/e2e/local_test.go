//go:build e2e

package e2e

import (
	"context"
	"crypto/rand"
	"net"
	"os/exec"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
	"github.com/wisp-chat/wisp/crypto/ratchet"
	"github.com/wisp-chat/wisp/server/wire"
	"github.com/wisp-chat/wisp/wasm/agent"
)

// newBrowser starts a Chromium of its own with extra flags, for a test
// that needs them; it stops at cleanup.
func newBrowser(t testing.TB, opts ...chromedp.ExecAllocatorOption) context.Context {
	t.Helper()
	chromium, err := exec.LookPath("chromium")
	if err != nil {
		t.Fatal(err)
	}
	alloc, cancelAlloc := chromedp.NewExecAllocator(context.Background(), append(browserOptions(chromium, t.TempDir()), opts...)...)
	ctx, cancel := chromedp.NewContext(alloc)
	t.Cleanup(func() { cancel(); cancelAlloc() })
	if _, err := chromedp.Run(ctx, chromedp.Navigate("about:blank")); err != nil {
		t.Fatalf("starting chromium: %v", err)
	}
	return ctx
}

// testLink returns an invitation link on origin whose relay is host:port.
func testLink(t testing.TB, origin, host string, port uint16) string {
	t.Helper()
	inv := agent.Invitation{Versions: agent.Versions, Relay: wire.Address{Host: host, Port: port}}
	_, _ = rand.Read(inv.Relay.KeyHash[:])
	_, _ = rand.Read(inv.SenderID[:])
	_, _ = rand.Read(inv.QueueKey[:])
	_, rinv, err := ratchet.NewInvitation(rand.Reader, true)
	if err != nil {
		t.Fatal(err)
	}
	b, err := rinv.MarshalBinary()
	if err != nil {
		t.Fatal(err)
	}
	inv.Ratchet = [ratchet.InvitationSize]byte(b)
	link, err := inv.Link(origin)
	if err != nil {
		t.Fatal(err)
	}
	return link
}

// TestLocalRelayRefused: a page served from the internet (here from a name
// that is not loopback, which this browser maps to the host; its host runs
// as in production) refuses invitations and relays on this machine or a
// private network, in every spelling, with a sentence saying what to do,
// and never connects to them.
func TestLocalRelayRefused(t *testing.T) {
	host, base := startProdHost(t)
	origin := "http://wisp-e2e.test:" + base[strings.LastIndex(base, ":")+1:]
	bctx := newBrowser(t,
		chromedp.Flag("host-resolver-rules", "MAP wisp-e2e.test 127.0.0.1"),
		// A secure context, as https would be (Web Locks, WebCrypto).
		chromedp.Flag("unsafely-treat-insecure-origin-as-secure", origin))
	p := openTab(t, bctx, t.Name())
	p.run(chromedp.Navigate(origin + "/"))
	if !eval[bool](p, `isSecureContext`) {
		t.Fatalf("%s is not a secure context in this browser", origin)
	}
	p.createProfile("Dana", "")

	// A service on the person's own machine, which no invitation may reach.
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	var dialled atomic.Int32
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			dialled.Add(1)
			c.Close()
		}
	}()
	port := uint16(ln.Addr().(*net.TCPAddr).Port)

	const linkSentence = "This invitation uses a relay on a private network or on someone's own computer, " +
		"which Wisp does not connect to from a page on the internet. Ask your contact for a new link made with a relay on the internet."

	// An invitation opened from its link.
	// (A change of the fragment only, as when the link opens in this tab.)
	eval[bool](p, `(() => { location.href = `+strconv.Quote(testLink(t, origin, "127.0.0.1", port))+`; return true })()`)
	p.waitText("#join-error", linkSentence, time.Minute)
	if !eval[bool](p, `document.querySelector("#join button").disabled`) {
		t.Error("Connect is enabled for a refused invitation")
	}

	// Invitations pasted, in the spellings a browser reads as this machine.
	p.click("Cancel")
	p.click("I have a link")
	for _, relayHost := range []string{"127.0.0.1", "127.1", "2130706433", "localhost", "LOCALHOST", "::1", "192.168.1.1", "10.0.0.1", "169.254.169.254"} {
		p.fill("Invitation link", testLink(t, origin, relayHost, port))
		p.click("Connect")
		p.waitText("#paste-error", linkSentence, time.Minute)
	}

	// A relay added in Settings.
	p.click("Settings")
	var kh wire.KeyHash
	for _, relayHost := range []string{"127.0.0.1", "[::ffff:127.0.0.1]", "localhost.", "0177.0.0.1", "192.168.0.10"} {
		p.fill("Add a relay", "wisp://"+kh.String()+"@"+relayHost+":"+strconv.Itoa(int(port)))
		p.click("Add relay")
		p.waitText("#relay-error", "That relay is on a private network or on this computer, which Wisp does not connect to "+
			"from a page on the internet. Use the relay's public address (wisp://…@relay.example).", time.Minute)
	}
	if n := len(eval[[]string](p, `[...document.querySelectorAll(".relays code")].map(e => e.textContent)`)); n != 0 {
		t.Errorf("the profile lists %d relays", n)
	}

	if n := dialled.Load(); n != 0 {
		t.Errorf("the browser connected %d times to a service on this machine", n)
	}
	// The page ran under the production policy (the harness fails the test
	// on any violation of it): no plain ws: to this machine.
	csp := eval[string](p, `(async () => (await fetch("./config.json")).headers.get("Content-Security-Policy"))()`)
	if !strings.Contains(csp, "connect-src 'self' wss:;") || strings.Contains(csp, "ws://") {
		t.Errorf("the production host serves CSP %q", csp)
	}
	checkHostLog(t, host.Log())
}
