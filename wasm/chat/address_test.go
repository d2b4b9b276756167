//go:build !js

package chat

import (
	"bytes"
	"errors"
	"strings"
	"testing"

	"github.com/wisp-chat/wisp/wasm/agent"
	"github.com/wisp-chat/wisp/wasm/internal/relaytest"
)

// eventsOf returns the texts of u's events of kind.
func (u *user) eventsOf(kind string) []string {
	u.mu.Lock()
	defer u.mu.Unlock()
	var out []string
	for _, e := range u.events {
		if e.Kind == kind {
			out = append(out, e.Text)
		}
	}
	return out
}

// waitRequest waits until u has a waiting request from name and returns it.
func waitRequest(t *testing.T, u *user, name string) ContactRequest {
	t.Helper()
	var got ContactRequest
	waitFor(t, name+" wants to connect", func() (bool, error) {
		rs, err := u.p.Requests()
		for _, r := range rs {
			if r.Name == name {
				got = r
				return true, nil
			}
		}
		return false, err
	})
	return got
}

// TestContactAddress: Alice makes an address; Bob asks with it and
// waits ("Request sent"); Alice accepts; they talk. A rejected request
// leaves the requester waiting; a deleted address fails new requests
// clearly and keeps the contacts.
func TestContactAddress(t *testing.T) {
	r1, r2 := relaytest.Start(t), relaytest.Start(t)
	alice := newUser(t, "Alice", "", r1)
	bob := newUser(t, "Bob", "", r2)
	carol := newUser(t, "Carol", "", r2)

	if _, err := alice.p.Address(); !errors.Is(err, agent.ErrNoAddress) {
		t.Fatalf("before creating: %v", err)
	}
	addr, err := alice.p.CreateAddress(ctxT(t))
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(addr.Link, "http://127.0.0.1:8080/#/address/") || !bytes.HasPrefix(addr.QR, []byte("\x89PNG")) || !addr.Enabled {
		t.Fatalf("address %q, %d-byte QR, enabled %v", addr.Link, len(addr.QR), addr.Enabled)
	}
	if _, err := alice.p.CreateAddress(ctxT(t)); !errors.Is(err, agent.ErrAddressExists) {
		t.Errorf("a second address: %v", err)
	}
	if err := bob.m.CheckAddress(addr.Link); err != nil {
		t.Errorf("checking the address: %v", err)
	}
	inv, _ := carol.p.CreateInvitation(ctxT(t), false)
	if err := bob.m.CheckAddress(inv.Link); !errors.Is(err, agent.ErrNotAddress) {
		t.Errorf("an invitation as an address: %v", err)
	}
	if err := carol.p.DeleteContact(ctxT(t), inv.Contact); err != nil {
		t.Fatal(err)
	}
	if _, err := alice.p.ConnectAddress(ctxT(t), addr.Link, false); !errors.Is(err, agent.ErrOwnAddress) {
		t.Errorf("asking our own address: %v", err)
	}

	bc, err := bob.p.ConnectAddress(ctxT(t), addr.Link, false)
	if err != nil {
		t.Fatal(err)
	}
	if !bc.Requested || bc.State != ContactInvited || bc.Name != "Request sent" || bc.Invite != "" {
		t.Errorf("Bob's pending contact: %+v", bc)
	}
	req := waitRequest(t, alice, "Bob")
	if got := alice.eventsOf("request"); len(got) != 1 || got[0] != req.ID {
		t.Errorf("request events %v, want [%s]", got, req.ID)
	}
	ac, err := alice.p.AcceptRequest(ctxT(t), req.ID, false)
	if err != nil {
		t.Fatal(err)
	}
	if ac.Name != "Bob" || ac.State != ContactConnecting && ac.State != ContactConnected {
		t.Errorf("Alice's new contact: %+v", ac)
	}
	for _, side := range []struct {
		u        *user
		id, name string
	}{{alice, ac.ID, "Bob"}, {bob, bc.ID, "Alice"}} {
		waitFor(t, side.name+" connected", func() (bool, error) {
			c, err := side.u.p.Contact(side.id)
			return c.State == ContactConnected && c.Name == side.name, err
		})
	}
	if rs, _ := alice.p.Requests(); len(rs) != 0 {
		t.Errorf("%d requests after accepting", len(rs))
	}
	if _, err := alice.p.SendText(ctxT(t), ac.ID, "welcome, Bob"); err != nil {
		t.Fatal(err)
	}
	if _, err := bob.p.SendText(ctxT(t), bc.ID, "thanks, Alice"); err != nil {
		t.Fatal(err)
	}
	for _, side := range []struct {
		u        *user
		id, text string
	}{{bob, bc.ID, "welcome, Bob"}, {alice, ac.ID, "thanks, Alice"}} {
		waitFor(t, side.text, func() (bool, error) {
			ms, err := side.u.p.Messages(side.id, 0, 10)
			for _, m := range ms {
				if m.Incoming && m.Text == side.text {
					return true, nil
				}
			}
			return false, err
		})
	}

	// Carol asks incognito; Alice sees a random name and rejects.
	cc, err := carol.p.ConnectAddress(ctxT(t), addr.Link, true)
	if err != nil {
		t.Fatal(err)
	}
	if cc.Incognito == "" {
		t.Error("an incognito request has no incognito name")
	}
	req = waitRequest(t, alice, cc.Incognito)
	if err := alice.p.RejectRequest(req.ID); err != nil {
		t.Fatal(err)
	}
	if _, err := alice.p.AcceptRequest(ctxT(t), req.ID, false); !errors.Is(err, agent.ErrNoRequest) {
		t.Errorf("accepting a rejected request: %v", err)
	}
	if c, err := carol.p.Contact(cc.ID); err != nil || c.State != ContactInvited || !c.Requested {
		t.Errorf("Carol after the rejection: %+v, %v", c, err)
	}

	// Off survives a restart, and so do the address and its link.
	if a, err := alice.p.SetAddressEnabled(false); err != nil || a.Enabled || a.Link != addr.Link {
		t.Fatalf("turning off: %+v, %v", a, err)
	}
	alice.restart(r1)
	if a, err := alice.p.Address(); err != nil || a.Enabled || a.Link != addr.Link {
		t.Fatalf("after a restart: %+v, %v", a, err)
	}
	if _, err := alice.p.SetAddressEnabled(true); err != nil {
		t.Fatal(err)
	}

	// Deleted: contacts stay, a new request fails clearly and leaves nothing.
	if err := alice.p.DeleteAddress(ctxT(t)); err != nil {
		t.Fatal(err)
	}
	before, _ := carol.p.Contacts()
	if _, err := carol.p.ConnectAddress(ctxT(t), addr.Link, false); !errors.Is(err, agent.ErrAddressGone) {
		t.Errorf("a request to a deleted address: %v", err)
	}
	if after, _ := carol.p.Contacts(); len(after) != len(before) {
		t.Errorf("the failed request left a contact (%d → %d)", len(before), len(after))
	}
	if _, err := alice.p.SendText(ctxT(t), ac.ID, "still here"); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "a message after the address is gone", func() (bool, error) {
		ms, err := bob.p.Messages(bc.ID, 0, 10)
		return len(ms) > 0 && ms[len(ms)-1].Text == "still here", err
	})
	// Carol cancels her pending request: it is an invitation like any other.
	if err := carol.p.DeleteContact(ctxT(t), cc.ID); err != nil {
		t.Fatal(err)
	}
}

// TestGroupLinkRefused: a group link (tag 'G') parses, but this version
// refuses to use it with the version error, before anything is created.
func TestGroupLinkRefused(t *testing.T) {
	r := relaytest.Start(t)
	dave := newUser(t, "Dave", "", r)
	bob := newUser(t, "Bob", "", r)
	relay, err := dave.p.receiveRelay()
	if err != nil {
		t.Fatal(err)
	}
	info, err := dave.p.ag.CreateAddress(ctxT(t), relay, agent.Tag{Type: agent.TagGroup, Group: [agent.GroupIDSize]byte{1}})
	if err != nil {
		t.Fatal(err)
	}
	link, err := info.Address.Link("http://127.0.0.1:8080")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := bob.p.ConnectAddress(ctxT(t), link, false); !errors.Is(err, agent.ErrAddressVersion) {
		t.Errorf("a group link: %v, want ErrAddressVersion", err)
	}
	if cs, _ := bob.p.Contacts(); len(cs) != 0 {
		t.Errorf("the refused group link left %d contacts", len(cs))
	}
}
