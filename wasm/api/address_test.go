//go:build !js

package api

import (
	"fmt"
	"strings"
	"testing"

	"github.com/wisp-chat/wisp/crypto/box"
	"github.com/wisp-chat/wisp/wasm/agent"
	"github.com/wisp-chat/wisp/wasm/chat"
	"github.com/wisp-chat/wisp/wasm/internal/relaytest"
	"github.com/wisp-chat/wisp/wasm/rpc"
)

// eventTexts returns the texts of tb's chat events of kind.
func (tb *tab) eventTexts(kind string) []string {
	tb.mu.Lock()
	defer tb.mu.Unlock()
	var out []string
	for _, e := range tb.events {
		if e.Kind == kind {
			out = append(out, e.Text)
		}
	}
	return out
}

// TestAddressThroughTheAPI: the contact address from the page's side:
// create, show, a request that is accepted, one that is rejected, off and
// on, delete; every refusal with its code.
func TestAddressThroughTheAPI(t *testing.T) {
	relay := relaytest.Start(t)
	a, b, c := person(t, relay, "Ann"), person(t, relay, "Bo"), person(t, relay, "Cy")

	if err := a.try("address.show", nil, nil); code(err) != CodeNoAddress {
		t.Errorf("address.show before create: %v", err)
	}
	var addr chat.ContactAddress
	a.call("address.create", nil, &addr)
	if !strings.Contains(addr.Link, "/#/address/") || len(addr.QR) == 0 || !addr.Enabled {
		t.Fatalf("address: %+v", addr)
	}
	var shown chat.ContactAddress
	a.call("address.show", nil, &shown)
	if shown.Link != addr.Link {
		t.Errorf("address.show: %q, want %q", shown.Link, addr.Link)
	}
	if err := a.try("address.create", nil, nil); code(err) != CodeAddressExists {
		t.Errorf("a second address: %v", err)
	}
	var inv chat.Invitation
	c.call("invite.create", InviteParams{}, &inv)
	for link, want := range map[string]rpc.Code{
		"https://example.com/x":      CodeNotAddress,
		inv.Link:                     CodeNotAddress,
		addr.Link[:len(addr.Link)-5]: CodeAddressCorrupted,
		"http://127.0.0.1:8080/#/address/CQAAAAAAAAAA": CodeAddressVersion,
	} {
		if err := b.try("address.check", JoinParams{Link: link}, nil); code(err) != want {
			t.Errorf("address.check(%.50q): %v, want %s", link, err, want)
		}
	}
	b.call("address.check", JoinParams{Link: addr.Link}, nil)
	if err := a.try("address.connect", JoinParams{Link: addr.Link}, nil); code(err) != CodeOwnAddress {
		t.Errorf("own address: %v", err)
	}

	var bc chat.Contact
	b.call("address.connect", JoinParams{Link: addr.Link}, &bc)
	if !bc.Requested || bc.State != chat.ContactInvited {
		t.Errorf("Bo's pending contact: %+v", bc)
	}
	var reqs []chat.ContactRequest
	waitUntil(t, "Bo wants to connect", func() bool {
		a.call("address.requests", nil, &reqs)
		return len(reqs) == 1 && reqs[0].Name == "Bo"
	})
	if got := a.eventTexts("request"); len(got) != 1 || got[0] != reqs[0].ID {
		t.Errorf("request events %v", got)
	}
	for _, bad := range []string{"", "nope", reqs[0].ID + "0"} {
		if err := a.try("request.accept", RequestParams{ID: bad}, nil); code(err) != CodeNoRequest {
			t.Errorf("request.accept(%q): %v", bad, err)
		}
	}
	var ac chat.Contact
	a.call("request.accept", RequestParams{ID: reqs[0].ID}, &ac)
	if ac.Name != "Bo" {
		t.Errorf("accepted contact %+v", ac)
	}
	a.waitConnected(ac.ID)
	b.waitConnected(bc.ID)
	var m chat.Message
	b.call("messages.send", SendParams{Contact: bc.ID, Text: "hi Ann"}, &m)
	a.waitPage(ac.ID, "Bo's message", func(ms []chat.Message) bool { return len(ms) == 1 && ms[0].Text == "hi Ann" })

	// Cy's request is rejected; accepting it afterwards is no_request.
	var cc chat.Contact
	c.call("address.connect", JoinParams{Link: addr.Link, Incognito: true}, &cc)
	waitUntil(t, "Cy's request", func() bool {
		a.call("address.requests", nil, &reqs)
		return len(reqs) == 1
	})
	if reqs[0].Name == "Cy" {
		t.Error("an incognito request shows the real name")
	}
	a.call("request.reject", RequestParams{ID: reqs[0].ID}, nil)
	if err := a.try("request.reject", RequestParams{ID: reqs[0].ID}, nil); code(err) != CodeNoRequest {
		t.Errorf("rejecting twice: %v", err)
	}

	a.call("address.set_enabled", EnabledParams{Enabled: false}, &shown)
	if shown.Enabled || shown.Link != addr.Link {
		t.Errorf("after turning off: %+v", shown)
	}
	a.call("address.set_enabled", EnabledParams{Enabled: true}, &shown)
	var replaced chat.ContactAddress
	a.call("address.replace", nil, &replaced)
	if replaced.Link == addr.Link {
		t.Error("address.replace kept the link")
	}
	if err := c.try("address.connect", JoinParams{Link: addr.Link}, nil); code(err) != CodeAddressGone {
		t.Errorf("the replaced link: %v", err)
	}
	a.call("address.delete", nil, nil)
	if err := a.try("address.delete", nil, nil); code(err) != CodeNoAddress {
		t.Errorf("deleting twice: %v", err)
	}
	if err := c.try("address.connect", JoinParams{Link: replaced.Link}, nil); code(err) != CodeAddressGone {
		t.Errorf("the deleted link: %v", err)
	}
	if err := a.try("address.set_enabled", EnabledParams{}, nil); code(err) != CodeNoAddress {
		t.Errorf("turning off a deleted address: %v", err)
	}
	// The contact made through it stays.
	a.call("messages.send", SendParams{Contact: ac.ID, Text: "still here"}, &m)
	b.waitPage(bc.ID, "a message after the address is gone", func(ms []chat.Message) bool {
		return len(ms) == 2 && ms[1].Text == "still here"
	})
}

// TestAddressLocalRelayRefused: a core loaded from the internet refuses an
// address on a private relay with relay_local, before anything is made.
func TestAddressLocalRelayRefused(t *testing.T) {
	relay := relaytest.Start(t)
	dev := person(t, relay, "Ann")
	var addr chat.ContactAddress
	dev.call("address.create", nil, &addr)
	public := newTabFrom(t, "https://wisp.example", relay)
	if err := public.try("address.check", JoinParams{Link: addr.Link}, nil); code(err) != CodeLocalRelay {
		t.Errorf("address.check of a loopback address from the internet: %v", err)
	}
}

// TestAddressErrorCodes: each address error reaches the page as its code,
// also a withdrawn request, which wraps ErrInvitationUsed as well.
func TestAddressErrorCodes(t *testing.T) {
	for in, want := range map[error]rpc.Code{
		agent.ErrNotAddress:       CodeNotAddress,
		agent.ErrCorruptedAddress: CodeAddressCorrupted,
		agent.ErrAddressVersion:   CodeAddressVersion,
		agent.ErrAddressRelay:     CodeAddressRelay,
		agent.ErrAddressGone:      CodeAddressGone,
		agent.ErrOwnAddress:       CodeOwnAddress,
		agent.ErrNoAddress:        CodeNoAddress,
		agent.ErrAddressExists:    CodeAddressExists,
		fmt.Errorf("%w: withdrawn (%w)", agent.ErrNoRequest, agent.ErrInvitationUsed): CodeNoRequest,
		fmt.Errorf("%w: %w", agent.ErrCorruptedAddress, box.ErrLowOrder):              CodeAddressCorrupted,
	} {
		if got := code(coded(fmt.Errorf("doing it: %w", in))); got != want {
			t.Errorf("%v: coded as %q, want %s", in, got, want)
		}
	}
}
