//go:build !js

package api

import (
	"bytes"
	"errors"
	"fmt"
	"strings"
	"testing"

	"github.com/wisp-chat/wisp/wasm/chat"
	"github.com/wisp-chat/wisp/wasm/internal/relaytest"
	"github.com/wisp-chat/wisp/wasm/rpc"
)

func TestProfileSettingsThroughTheAPI(t *testing.T) {
	relay := relaytest.Start(t)
	a := newTab(t, relay)
	var id IDParams
	a.call("profile.create", NewProfileParams{Name: "Ann", Passphrase: "first passphrase"}, &id)
	if err := a.try("profile.update", ProfileParams{Name: "Ann"}, nil); code(err) != CodeLocked {
		t.Errorf("profile.update while locked: %v", err)
	}
	if err := a.try("profile.listing", ListingParams{Show: true}, nil); code(err) != CodeLocked {
		t.Errorf("profile.listing while locked: %v", err)
	}
	a.call("profile.unlock", UnlockParams{ID: id.ID, Passphrase: "first passphrase"}, nil)

	var info chat.ProfileInfo
	a.call("profile.update", ProfileParams{Name: "Ann B.", Avatar: []byte{1, 2, 3}}, &info)
	if info.DisplayName != "Ann B." || !bytes.Equal(info.Avatar, []byte{1, 2, 3}) {
		t.Errorf("profile.update: %+v", info)
	}
	if err := a.try("profile.update", ProfileParams{Name: " "}, nil); code(err) != CodeInvalid {
		t.Errorf("an empty name: %v", err)
	}
	if err := a.try("profile.update", ProfileParams{Name: "Ann", Avatar: make([]byte, chat.MaxAvatarBytes+1)}, nil); code(err) != CodeTooLong {
		t.Errorf("a big avatar: %v", err)
	}

	// The chooser's listing.
	var s chat.ProfileSummary
	a.call("profile.listing", ListingParams{Show: true}, &s)
	if s.ID != id.ID || !s.Show || s.Name != "Ann B." {
		t.Errorf("profile.listing: %+v", s)
	}
	a.call("profile.lock", nil, nil)
	var raw []map[string]any
	a.call("profiles.list", nil, &raw)
	if len(raw) != 1 {
		t.Fatalf("profiles.list: %v", raw)
	}
	for _, k := range []string{"id", "created", "passphrase", "unlocked", "name", "avatar", "show"} {
		if _, ok := raw[0][k]; !ok {
			t.Errorf("profiles.list has no %q: %v", k, raw[0])
		}
	}
	if raw[0]["name"] != "Ann B." || raw[0]["show"] != true || raw[0]["unlocked"] != false || raw[0]["passphrase"] != true {
		t.Errorf("profiles.list: %v", raw[0])
	}

	// The passphrase.
	for _, tc := range []struct {
		p    PassphraseParams
		want rpc.Code
	}{
		{PassphraseParams{ID: id.ID, Old: "wrong passphrase", New: "second passphrase"}, CodeWrongPassphrase},
		{PassphraseParams{ID: id.ID, Old: "first passphrase", New: "short"}, CodeInvalid},
		{PassphraseParams{ID: "0123456789abcdef", Old: "", New: ""}, CodeNoProfile},
	} {
		if err := a.try("profile.passphrase", tc.p, nil); code(err) != tc.want {
			t.Errorf("%+v: %v, want %s", tc.p, err, tc.want)
		}
	}
	a.call("profile.passphrase", PassphraseParams{ID: id.ID, Old: "first passphrase", New: "second passphrase"}, nil)
	if err := a.try("profile.unlock", UnlockParams{ID: id.ID, Passphrase: "first passphrase"}, nil); code(err) != CodeWrongPassphrase {
		t.Errorf("the old passphrase: %v", err)
	}
	a.call("profile.passphrase", PassphraseParams{ID: id.ID, Old: "second passphrase", New: ""}, nil)
	a.call("profile.unlock", UnlockParams{ID: id.ID}, nil)
	var list []chat.ProfileSummary
	a.call("profiles.list", nil, &list)
	if list[0].Passphrase || list[0].Name != "Ann B." {
		t.Errorf("without a passphrase: %+v", list[0])
	}
}

func TestInvitationsThroughTheAPI(t *testing.T) {
	relay := relaytest.Start(t)
	a := newTab(t, relay)
	var id IDParams
	a.call("profile.create", NewProfileParams{Name: "Ann"}, &id)
	a.call("profile.unlock", UnlockParams{ID: id.ID}, nil)
	var inv chat.Invitation
	a.call("invite.create", InviteParams{Name: "for Bob"}, &inv)
	if inv.Name != "for Bob" || inv.Link == "" || len(inv.QR) == 0 {
		t.Fatalf("invite.create: %+v", inv)
	}
	if err := a.try("invite.create", InviteParams{Name: strings.Repeat("x", 65)}, nil); code(err) != CodeTooLong {
		t.Errorf("a long name: %v", err)
	}
	var again chat.Invitation
	a.call("invite.show", IDParams{ID: inv.Contact}, &again)
	if again.Link != inv.Link || again.Name != "for Bob" || !bytes.HasPrefix(again.QR, []byte("\x89PNG")) {
		t.Errorf("invite.show: %+v", again)
	}
	var list []map[string]any
	a.call("contacts.list", nil, &list)
	if len(list) != 1 || list[0]["invite_name"] != "for Bob" || list[0]["state"] != "invited" {
		t.Errorf("contacts.list: %v", list)
	}
	a.call("contact.delete", IDParams{ID: inv.Contact}, nil)
	if err := a.try("invite.show", IDParams{ID: inv.Contact}, nil); code(err) != CodeNoContact {
		t.Errorf("invite.show of a cancelled invitation: %v", err)
	}
}

func TestNewErrorCodes(t *testing.T) {
	for in, want := range map[error]rpc.Code{
		chat.ErrContactLeft: CodeContactLeft,
		fmt.Errorf("%w: %w", chat.ErrContactLeft, chat.ErrInvalid): CodeContactLeft,
	} {
		var re *rpc.Error
		if err := coded(fmt.Errorf("sending: %w", in)); !errors.As(err, &re) || re.Code != want {
			t.Errorf("%v: coded as %v, want %s", in, err, want)
		}
	}
}

// TestPrivateRoutingThroughTheAPI: private routing is on for a new
// profile, routing.set turns it off and on, the choice survives a lock,
// and it needs an unlocked profile.
func TestPrivateRoutingThroughTheAPI(t *testing.T) {
	relay := relaytest.Start(t)
	a := newTab(t, relay)
	var id IDParams
	a.call("profile.create", NewProfileParams{Name: "Ann"}, &id)
	if err := a.try("routing.set", RoutingParams{Private: false}, nil); code(err) != CodeLocked {
		t.Errorf("routing.set while locked: %v", err)
	}
	var info chat.ProfileInfo
	a.call("profile.unlock", UnlockParams{ID: id.ID}, &info)
	if !info.PrivateRouting {
		t.Fatal("a new profile does not route privately")
	}
	a.call("routing.set", RoutingParams{Private: false}, &info)
	if info.PrivateRouting {
		t.Fatal("routing.set off did not turn it off")
	}
	a.call("profile.lock", nil, nil)
	a.call("profile.unlock", UnlockParams{ID: id.ID}, &info)
	if info.PrivateRouting {
		t.Fatal("private routing came back on after a lock")
	}
	a.call("routing.set", RoutingParams{Private: true}, &info)
	a.call("profile.info", nil, &info)
	if !info.PrivateRouting {
		t.Fatal("routing.set on did not turn it on")
	}
}
