//go:build !js

package api

import (
	"context"
	"testing"
	"time"

	"github.com/hack-pad/hackpadfs"
	"github.com/hack-pad/hackpadfs/mem"
	"github.com/wisp-chat/wisp/server/wire/client"
	"github.com/wisp-chat/wisp/wasm/chat"
	"github.com/wisp-chat/wisp/wasm/internal/relaytest"
	"github.com/wisp-chat/wisp/wasm/rpc"
)

// newTabFrom is newTab for a core loaded from origin (PinOrigin, as the
// worker does); the page still claims a loopback origin, which is ignored.
func newTabFrom(t *testing.T, origin string, relay *relaytest.Relay) *tab {
	fsys, err := mem.NewFS()
	if err != nil {
		t.Fatal(err)
	}
	tb := &tab{t: t, r: rpc.NewRouter()}
	tb.svc = New(func(context.Context) (hackpadfs.FS, error) { return fsys, nil }, func(string, any) {},
		client.Options{MinBackoff: 50 * time.Millisecond})
	tb.svc.PinOrigin(origin)
	tb.svc.Register(tb.r)
	t.Cleanup(tb.svc.Close)
	tb.call("init", InitParams{Origin: "http://127.0.0.1:8080", Relays: []string{relay.Addr().String()}}, nil)
	return tb
}

// TestLocalRelayRefused: a core loaded from the internet refuses
// invitations and relays on loopback or private addresses with
// relay_local, before anything is created, and drops such preset relays;
// a core loaded from this machine uses them.
func TestLocalRelayRefused(t *testing.T) {
	relay := relaytest.Start(t) // on loopback
	dev := newTab(t, relay)
	var id IDParams
	dev.call("profile.create", NewProfileParams{Name: "Ann"}, &id)
	dev.call("profile.unlock", UnlockParams{ID: id.ID}, nil)
	var inv chat.Invitation
	dev.call("invite.create", InviteParams{}, &inv)

	prod := newTabFrom(t, "https://wisp.example", relay)
	prod.call("profile.create", NewProfileParams{Name: "Bo"}, &id)
	var info chat.ProfileInfo
	prod.call("profile.unlock", UnlockParams{ID: id.ID}, &info)
	if len(info.Relays) != 0 {
		t.Errorf("the loopback preset relay was offered to a page on the internet: %d relays", len(info.Relays))
	}
	if err := prod.try("link.check", JoinParams{Link: inv.Link}, nil); code(err) != CodeLocalRelay {
		t.Errorf("link.check: %v, want %s", err, CodeLocalRelay)
	}
	if err := prod.try("join", JoinParams{Link: inv.Link}, nil); code(err) != CodeLocalRelay {
		t.Errorf("join: %v, want %s", err, CodeLocalRelay)
	}
	var contacts []chat.Contact
	prod.call("contacts.list", nil, &contacts)
	if len(contacts) != 0 {
		t.Errorf("the refused join left %d contacts", len(contacts))
	}
	for _, r := range []string{relay.Addr().String(), "wisp://" + relay.Addr().KeyHash.String() + "@127.1:443",
		"wisp://" + relay.Addr().KeyHash.String() + "@[::ffff:10.0.0.1]:5223"} {
		if err := prod.try("relay.check", IDParams{ID: r}, nil); code(err) != CodeLocalRelay {
			t.Errorf("relay.check(%s): %v, want %s", r, err, CodeLocalRelay)
		}
		if err := prod.try("relays.set", RelaysParams{Relays: []string{r}, Receive: r}, nil); code(err) != CodeLocalRelay {
			t.Errorf("relays.set(%s): %v, want %s", r, err, CodeLocalRelay)
		}
	}
	public := "wisp://" + relay.Addr().KeyHash.String() + "@relay.example:443"
	prod.call("relay.check", IDParams{ID: public}, nil)
	prod.call("relays.set", RelaysParams{Relays: []string{public}, Receive: public}, nil)

	// The invitation is untouched: a core loaded from this machine joins it.
	other := newTab(t, relay)
	other.call("profile.create", NewProfileParams{Name: "Cy"}, &id)
	other.call("profile.unlock", UnlockParams{ID: id.ID}, nil)
	other.call("link.check", JoinParams{Link: inv.Link}, nil)
	var c chat.Contact
	other.call("join", JoinParams{Link: inv.Link}, &c)
	other.waitConnected(c.ID)
}
