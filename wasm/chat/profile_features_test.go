//go:build !js

package chat

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/hack-pad/hackpadfs"
	"github.com/hack-pad/hackpadfs/mem"
	"github.com/wisp-chat/wisp/wasm/agent"
	"github.com/wisp-chat/wisp/wasm/internal/crashfs"
	"github.com/wisp-chat/wisp/wasm/internal/relaytest"
	"github.com/wisp-chat/wisp/wasm/qr"
)

// pfContact reads a contact or fails the test.
func pfContact(t testing.TB, u *user, id string) Contact {
	t.Helper()
	c, err := u.p.Contact(id)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// pfEvents counts the user's events of a kind whose text contains s.
func pfEvents(u *user, kind, s string) int {
	u.mu.Lock()
	defer u.mu.Unlock()
	n := 0
	for _, e := range u.events {
		if e.Kind == kind && strings.Contains(e.Text, s) {
			n++
		}
	}
	return n
}

// TestProfileUpdateReachesContacts: a new name and picture reach every
// contact that knows us by our profile, keep a contact's local rename,
// and never reach a contact we joined incognito.
func TestProfileUpdateReachesContacts(t *testing.T) {
	r := relaytest.Start(t)
	ann := newUser(t, "Ann", "", r)
	bob := newUser(t, "Bob", "", r)
	cat := newUser(t, "Cat", "", r)
	dan := newUser(t, "Dan", "", r)
	ab, ba := connect(t, ann, bob, false)
	_, ca := connect(t, ann, cat, false)
	da, ad := connect(t, dan, ann, true) // Ann joins Dan incognito
	if err := cat.p.RenameContact(ca, "Mum"); err != nil {
		t.Fatal(err)
	}
	alias := pfContact(t, dan, da).PeerName
	if alias == "Ann" || pfContact(t, ann, ad).Incognito != alias {
		t.Fatalf("incognito name %q", alias)
	}

	avatar := []byte("\x89PNG a new picture")
	if err := ann.p.Update("  Ann B.  ", avatar); err != nil {
		t.Fatal(err)
	}
	if info := ann.p.Info(); info.DisplayName != "Ann B." || !bytes.Equal(info.Avatar, avatar) {
		t.Fatalf("info %+v", info)
	}
	waitFor(t, "Bob sees the new profile", func() (bool, error) {
		c, err := bob.p.Contact(ba)
		return c.Name == "Ann B." && c.PeerName == "Ann B." && bytes.Equal(c.Avatar, avatar), err
	})
	waitFor(t, "Cat sees the new profile", func() (bool, error) {
		c, err := cat.p.Contact(ca)
		return c.PeerName == "Ann B." && bytes.Equal(c.Avatar, avatar), err
	})
	if c := pfContact(t, cat, ca); c.Name != "Mum" {
		t.Errorf("Cat's rename became %q", c.Name)
	}
	// Dan gets a text Ann sends after the update; the update, had it been
	// sent, would have come first.
	if _, err := ann.p.SendText(ctxT(t), ad, "after the update"); err != nil {
		t.Fatal(err)
	}
	awaitOneMessage(t, dan, da)
	if c := pfContact(t, dan, da); c.PeerName != alias || c.Name != alias || c.Avatar != nil {
		t.Errorf("the incognito contact learnt %q/%q (%d-byte avatar)", c.Name, c.PeerName, len(c.Avatar))
	}
	// No message was shown for the update, and its statuses are not kept
	// waiting for one.
	if msgs, _ := bob.p.Messages(ba, 0, 10); len(msgs) != 0 {
		t.Errorf("Bob has %d messages", len(msgs))
	}
	waitFor(t, "the update's statuses", func() (bool, error) {
		ann.p.mu.Lock()
		defer ann.p.mu.Unlock()
		return len(ann.p.early[ab]) == 0, nil
	})
	// Removing the picture removes it.
	if err := ann.p.Update("Ann B.", nil); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "Bob sees no picture", func() (bool, error) {
		c, err := bob.p.Contact(ba)
		return c.Avatar == nil, err
	})
}

// TestProfileUpdateBodies: a malformed update is reported and changes
// nothing; the same update applied twice (redelivered after a crash)
// leaves the same contact.
func TestProfileUpdateBodies(t *testing.T) {
	r := relaytest.Start(t)
	ann := newUser(t, "Ann", "", r)
	bob := newUser(t, "Bob", "", r)
	_, ba := connect(t, ann, bob, false)
	before := pfContact(t, bob, ba)
	for name, body := range map[string]string{
		"not json":      "p{",
		"null":          "pnull",
		"no name":       `p{"avatar":"AAAA"}`,
		"blank name":    `p{"name":"   "}`,
		"long name":     `p{"name":"` + strings.Repeat("é", 33) + `"}`,
		"control":       `p{"name":"Ann\u0007"}`,
		"bidi override": `p{"name":"Ann\u202e"}`,
		"big avatar":    `p{"name":"Ann","avatar":"` + mustB64(make([]byte, MaxAvatarBytes+1)) + `"}`,
		"wrong type":    `p{"name":5}`,
	} {
		problems := pfEvents(bob, "problem", "profile update")
		if err := bob.p.profileReceived(ba, []byte(body)); err != nil {
			t.Errorf("%s: %v", name, err)
		}
		if pfEvents(bob, "problem", "profile update") != problems+1 {
			t.Errorf("%s: no problem reported", name)
		}
		if c := pfContact(t, bob, ba); c.Name != before.Name || c.PeerName != before.PeerName || c.Avatar != nil {
			t.Errorf("%s: changed the contact to %+v", name, c)
		}
	}
	body, err := encodeProfileUpdate(peerInfo{Name: strings.Repeat("<", MaxDisplayName), Avatar: make([]byte, MaxAvatarBytes)})
	if err != nil || len(body) != 11332 || len(body) > agent.MaxBody {
		t.Fatalf("the largest update is %d bytes (%v)", len(body), err)
	}
	body, _ = encodeProfileUpdate(peerInfo{Name: "Annie", Avatar: []byte{1, 2, 3}})
	var once Contact
	for i := range 2 {
		if err := bob.p.profileReceived(ba, body); err != nil {
			t.Fatal(err)
		}
		c := pfContact(t, bob, ba)
		if c.Name != "Annie" || c.PeerName != "Annie" || !bytes.Equal(c.Avatar, []byte{1, 2, 3}) {
			t.Fatalf("applied: %+v", c)
		}
		if i == 1 && (c.Name != once.Name || c.NextSeq != once.NextSeq || c.Unread != once.Unread) {
			t.Errorf("applied twice: %+v, once: %+v", c, once)
		}
		once = c
	}
}

// TestProfileUpdateBeforeConnect: an invitation made before a profile
// change carries the old profile; the contact gets the new one when it
// connects.
func TestProfileUpdateBeforeConnect(t *testing.T) {
	r := relaytest.Start(t)
	ann := newUser(t, "Ann", "", r)
	bob := newUser(t, "Bob", "", r)
	inv, err := ann.p.CreateInvitation(ctxT(t), false)
	if err != nil {
		t.Fatal(err)
	}
	if err := ann.p.Update("Ann Two", nil); err != nil {
		t.Fatal(err)
	}
	c, err := bob.p.Join(ctxT(t), inv.Link, false)
	if err != nil {
		t.Fatal(err)
	}
	waitFor(t, "Bob sees Ann's new name", func() (bool, error) {
		c, err := bob.p.Contact(c.ID)
		return c.State == ContactConnected && c.Name == "Ann Two" && c.PeerName == "Ann Two", err
	})
}

// pfManager is a Manager on its own storage with no relay (profiles are
// created, not unlocked).
func pfManager(t testing.TB, fsys hackpadfs.FS) *Manager {
	t.Helper()
	if fsys == nil {
		var err error
		if fsys, err = mem.NewFS(); err != nil {
			t.Fatal(err)
		}
	}
	m := NewManager(fsys, Config{Origin: "http://127.0.0.1:8080", Argon2: fastArgon})
	t.Cleanup(m.Close)
	return m
}

func pfSummary(t testing.TB, m *Manager, id string) ProfileSummary {
	t.Helper()
	list, err := m.Profiles()
	if err != nil {
		t.Fatal(err)
	}
	for _, s := range list {
		if s.ID == id {
			return s
		}
	}
	t.Fatalf("profile %s not listed", id)
	return ProfileSummary{}
}

func TestChangePassphrase(t *testing.T) {
	r := relaytest.Start(t)
	u := newUser(t, "Ann", "first passphrase", r)
	ab, _ := connect(t, u, newUser(t, "Bob", "", r), false)
	meta, err := hackpadfs.ReadFile(u.fs, metaPath(u.id))
	if err != nil {
		t.Fatal(err)
	}
	unchanged := func(what string) {
		t.Helper()
		now, err := hackpadfs.ReadFile(u.fs, metaPath(u.id))
		if err != nil || !bytes.Equal(now, meta) {
			t.Errorf("%s changed the key record", what)
		}
	}
	if err := u.m.ChangePassphrase(u.id, "wrong passphrase", "second passphrase"); !errors.Is(err, ErrWrongPassphrase) {
		t.Errorf("wrong old passphrase: %v", err)
	}
	unchanged("a wrong old passphrase")
	if err := u.m.ChangePassphrase(u.id, "first passphrase", "short"); !errors.Is(err, ErrInvalid) {
		t.Errorf("a short new passphrase: %v", err)
	}
	unchanged("a short new passphrase")
	if err := u.m.ChangePassphrase("0123456789abcdef", "", "second passphrase"); !errors.Is(err, ErrNoProfile) {
		t.Errorf("no such profile: %v", err)
	}

	// Change while unlocked: the open profile goes on, and the next
	// unlock takes the new passphrase only.
	if err := u.m.ChangePassphrase(u.id, "first passphrase", "second passphrase"); err != nil {
		t.Fatal(err)
	}
	if _, err := u.p.SendText(ctxT(t), ab, "still open"); err != nil {
		t.Fatal(err)
	}
	if err := u.m.CheckPassphrase(u.id, "first passphrase"); !errors.Is(err, ErrWrongPassphrase) {
		t.Errorf("the old passphrase after the change: %v", err)
	}
	u.pass = "second passphrase"
	u.restart(r)
	if msgs, err := u.p.Messages(ab, 0, 10); err != nil || len(msgs) != 1 {
		t.Fatalf("after the change: %d messages (%v)", len(msgs), err)
	}
	if pfExists(u.fs, metaTmpPath(u.id)) {
		t.Error("the temporary key record was left")
	}

	// Remove it: the key is stored raw, "" unlocks, and the name is listed.
	if err := u.m.ChangePassphrase(u.id, "second passphrase", ""); err != nil {
		t.Fatal(err)
	}
	if s := pfSummary(t, u.m, u.id); s.Passphrase {
		t.Errorf("still a passphrase: %+v", s)
	}
	if err := u.m.ChangePassphrase(u.id, "anything at all", "third passphrase"); !errors.Is(err, ErrWrongPassphrase) {
		t.Errorf("no passphrase, old not empty: %v", err)
	}
	if err := u.m.ChangePassphrase(u.id, "", ""); err != nil {
		t.Errorf("removing no passphrase: %v", err)
	}
	u.pass = ""
	u.restart(r)
	u.m.Lock(u.id)
	if s := pfSummary(t, u.m, u.id); s.Passphrase || s.Name != "Ann" {
		t.Errorf("without a passphrase, locked: %+v", s)
	}

	// Set one on a profile without.
	if err := u.m.ChangePassphrase(u.id, "", "third passphrase"); err != nil {
		t.Fatal(err)
	}
	if s := pfSummary(t, u.m, u.id); !s.Passphrase || s.Name != "" {
		t.Errorf("with a passphrase, locked: %+v", s)
	}
	if err := u.m.CheckPassphrase(u.id, "third passphrase"); err != nil {
		t.Fatal(err)
	}
	u.pass = "third passphrase"
	u.unlock()
	if msgs, err := u.p.Messages(ab, 0, 10); err != nil || len(msgs) != 1 {
		t.Fatalf("after setting one: %d messages (%v)", len(msgs), err)
	}
}

// pfMeta reads the user's key record as JSON.
func pfMeta(t testing.TB, u *user) map[string]any {
	t.Helper()
	raw, err := hackpadfs.ReadFile(u.fs, metaPath(u.id))
	if err != nil {
		t.Fatal(err)
	}
	var meta map[string]any
	if err := json.Unmarshal(raw, &meta); err != nil {
		t.Fatal(err)
	}
	return meta
}

func pfExists(fsys hackpadfs.FS, name string) bool {
	_, err := hackpadfs.Stat(fsys, name)
	return err == nil
}

// TestChangePassphraseCrash cuts ChangePassphrase off at every storage
// mutation: the old or the new passphrase always opens the profile.
func TestChangePassphraseCrash(t *testing.T) {
	for _, tc := range []struct{ old, new string }{
		{"old passphrase", "new passphrase"},
		{"", "new passphrase"},
		{"old passphrase", ""},
	} {
		for budget := 0; ; budget++ {
			fsys, err := crashfs.New()
			if err != nil {
				t.Fatal(err)
			}
			m := pfManager(t, fsys)
			id, err := m.CreateProfile(ctxT(t), NewProfile{DisplayName: "Ann", Passphrase: tc.old})
			if err != nil {
				t.Fatal(err)
			}
			fsys.SetBudget(budget)
			cerr := m.ChangePassphrase(id, tc.old, tc.new)
			fsys.SetBudget(-1)
			m = pfManager(t, fsys) // the restart
			oldOK := m.CheckPassphrase(id, tc.old) == nil && pfSummary(t, m, id).Passphrase == (tc.old != "")
			newOK := m.CheckPassphrase(id, tc.new) == nil && pfSummary(t, m, id).Passphrase == (tc.new != "")
			if !oldOK && !newOK {
				t.Fatalf("%q → %q, crash after %d mutations: neither passphrase works", tc.old, tc.new, budget)
			}
			if cerr == nil && !newOK {
				t.Fatalf("%q → %q: ChangePassphrase succeeded but the new passphrase does not work", tc.old, tc.new)
			}
			if len(pfProfiles(t, m)) != 1 {
				t.Fatalf("%q → %q, crash after %d mutations: %d profiles", tc.old, tc.new, budget, len(pfProfiles(t, m)))
			}
			if cerr == nil {
				if budget < 2 {
					t.Errorf("%q → %q took %d mutations: not a temporary file and a rename?", tc.old, tc.new, budget)
				}
				break
			}
			if !errors.Is(cerr, crashfs.ErrCrashed) {
				t.Fatalf("budget %d: %v", budget, cerr)
			}
		}
	}
}

func pfProfiles(t testing.TB, m *Manager) []ProfileSummary {
	t.Helper()
	list, err := m.Profiles()
	if err != nil {
		t.Fatal(err)
	}
	return list
}

// TestProfileListing: what the profile chooser shows of a locked profile.
func TestProfileListing(t *testing.T) {
	r := relaytest.Start(t)
	u := newUser(t, "Ann", "a long passphrase", r)
	avatar := []byte("picture bytes")
	if err := u.p.Update("Ann", avatar); err != nil {
		t.Fatal(err)
	}
	if s := pfSummary(t, u.m, u.id); !s.Unlocked || s.Name != "Ann" || !bytes.Equal(s.Avatar, avatar) || s.Show {
		t.Errorf("unlocked: %+v", s)
	}
	u.m.Lock(u.id)
	if s := pfSummary(t, u.m, u.id); s.Name != "" || s.Avatar != nil || s.Show || !s.Passphrase {
		t.Errorf("locked, not shown: %+v", s)
	}
	if err := u.m.SetListing(u.id, true); !errors.Is(err, ErrLocked) {
		t.Errorf("listing a locked profile: %v", err)
	}
	u.unlock()
	if err := u.m.SetListing(u.id, true); err != nil {
		t.Fatal(err)
	}
	u.m.Lock(u.id)
	if s := pfSummary(t, u.m, u.id); s.Name != "Ann" || !bytes.Equal(s.Avatar, avatar) || !s.Show {
		t.Errorf("locked, shown: %+v", s)
	}
	if meta := pfMeta(t, u); meta["name"] != "Ann" || meta["avatar"] != mustB64(avatar) || meta["show"] != true {
		t.Errorf("key record %v", meta)
	}
	// A new name follows into the plaintext copy.
	u.unlock()
	if err := u.p.Update("Ann C.", nil); err != nil {
		t.Fatal(err)
	}
	u.m.Lock(u.id)
	if s := pfSummary(t, u.m, u.id); s.Name != "Ann C." || s.Avatar != nil {
		t.Errorf("after an update: %+v", s)
	}
	// Off again: nothing of it stays in the file.
	u.unlock()
	if err := u.m.SetListing(u.id, false); err != nil {
		t.Fatal(err)
	}
	u.m.Lock(u.id)
	if meta := pfMeta(t, u); meta["name"] != nil || meta["avatar"] != nil || meta["show"] != nil {
		t.Errorf("key record after turning it off: %v", meta)
	}
	if s := pfSummary(t, u.m, u.id); s.Name != "" || s.Show {
		t.Errorf("off: %+v", s)
	}

	// Removing the passphrase of a shown profile drops the copy (the
	// record is read instead); setting one again brings it back.
	u.unlock()
	if err := u.m.SetListing(u.id, true); err != nil {
		t.Fatal(err)
	}
	u.m.Lock(u.id)
	if err := u.m.ChangePassphrase(u.id, "a long passphrase", ""); err != nil {
		t.Fatal(err)
	}
	if s, meta := pfSummary(t, u.m, u.id), pfMeta(t, u); s.Name != "Ann C." || !s.Show || meta["name"] != nil || meta["show"] != true {
		t.Errorf("no passphrase: %+v, record %v", s, meta)
	}
	if err := u.m.ChangePassphrase(u.id, "", "a long passphrase"); err != nil {
		t.Fatal(err)
	}
	if s := pfSummary(t, u.m, u.id); s.Name != "Ann C." || !s.Show || !s.Passphrase {
		t.Errorf("passphrase set again: %+v", s)
	}

	// A key record of the earlier format (no listing fields) still reads.
	old := `{"v":1,"id":"` + u.id + `","created":"2025-01-02T03:04:05Z","mode":"key","key":"` + mustB64(make([]byte, 32)) + `"}`
	fsys, _ := mem.NewFS()
	if err := hackpadfs.MkdirAll(fsys, metaDir, 0o700); err != nil {
		t.Fatal(err)
	}
	if err := hackpadfs.WriteFullFile(fsys, metaPath(u.id), []byte(old), 0o600); err != nil {
		t.Fatal(err)
	}
	if s := pfSummary(t, pfManager(t, fsys), u.id); s.Passphrase || s.Show || s.Name != "" {
		t.Errorf("an earlier key record (no data): %+v", s)
	}
}

// TestNamedInvitation: an invitation's name, showing it again, and
// cancelling it.
func TestNamedInvitation(t *testing.T) {
	r := relaytest.Start(t)
	ann := newUser(t, "Ann", "", r)
	bob := newUser(t, "Bob", "", r)
	if _, err := ann.p.CreateNamedInvitation(ctxT(t), false, strings.Repeat("x", MaxDisplayName+1)); !errors.Is(err, ErrTooLong) {
		t.Errorf("a long name: %v", err)
	}
	if _, err := ann.p.CreateNamedInvitation(ctxT(t), false, "for\u202eAlice"); !errors.Is(err, ErrInvalid) {
		t.Errorf("a bidi override: %v", err)
	}
	if list, _ := ann.p.Contacts(); len(list) != 0 {
		t.Fatalf("refused invitations left %d contacts", len(list))
	}
	inv, err := ann.p.CreateNamedInvitation(ctxT(t), false, "  for Bob ")
	if err != nil {
		t.Fatal(err)
	}
	if c := pfContact(t, ann, inv.Contact); c.InviteName != "for Bob" || inv.Name != "for Bob" || c.State != ContactInvited {
		t.Fatalf("contact %+v, invitation name %q", c, inv.Name)
	}
	again, err := ann.p.Invitation(inv.Contact)
	if err != nil {
		t.Fatal(err)
	}
	if again.Link != inv.Link || again.Contact != inv.Contact || again.Name != "for Bob" {
		t.Errorf("shown again: %+v", again)
	}
	if link, err := qr.DecodeQR(again.QR); err != nil || link != inv.Link {
		t.Errorf("the QR code shown again reads %q (%v)", link, err)
	}
	unnamed, err := ann.p.CreateInvitation(ctxT(t), true)
	if err != nil {
		t.Fatal(err)
	}
	if c := pfContact(t, ann, unnamed.Contact); c.InviteName != "" || unnamed.Name != "" {
		t.Errorf("an unnamed invitation: %+v", c)
	}

	c, err := bob.p.Join(ctxT(t), inv.Link, false)
	if err != nil {
		t.Fatal(err)
	}
	waitFor(t, "connected", func() (bool, error) {
		c, err := ann.p.Contact(inv.Contact)
		return c.State == ContactConnected, err
	})
	waitFor(t, "connected", func() (bool, error) {
		c, err := bob.p.Contact(c.ID)
		return c.State == ContactConnected, err
	})
	if c := pfContact(t, ann, inv.Contact); c.InviteName != "for Bob" || c.Invite != "" || c.Name != "Bob" {
		t.Errorf("after Bob joined: %+v", c)
	}
	if _, err := ann.p.Invitation(inv.Contact); !errors.Is(err, ErrNoContact) {
		t.Errorf("showing a used invitation: %v", err)
	}
	if _, err := ann.p.Invitation("AAAAAAAAAAAAAAAAAAAAAAAA"); !errors.Is(err, ErrNoContact) {
		t.Errorf("showing no invitation: %v", err)
	}

	// Cancelling: the queue is deleted on the relay, so the link no
	// longer works, and nothing is left of it here.
	if err := ann.p.DeleteContact(ctxT(t), unnamed.Contact); err != nil {
		t.Fatal(err)
	}
	if _, err := ann.p.Invitation(unnamed.Contact); !errors.Is(err, ErrNoContact) {
		t.Errorf("showing a cancelled invitation: %v", err)
	}
	for _, id := range ann.p.ag.Connections() {
		if string(id) == unnamed.Contact {
			t.Error("the agent keeps the cancelled invitation")
		}
	}
	before, _ := bob.p.Contacts()
	if _, err := bob.p.Join(ctxT(t), unnamed.Link, false); !errors.Is(err, ErrInvitationUsed) {
		t.Errorf("joining a cancelled invitation: %v", err)
	}
	if after, _ := bob.p.Contacts(); len(after) != len(before) {
		t.Errorf("joining a cancelled invitation left a contact")
	}
}

// pfQueue queues texts to a contact whose relay is down.
func pfQueue(t *testing.T, u *user, id string, n int) []Message {
	t.Helper()
	var out []Message
	for i := range n {
		m, err := u.p.SendText(ctxT(t), id, "pending "+string(rune('a'+i)))
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, m)
	}
	return out
}

// pfCheckLeft waits for the contact to show "deleted" and the texts to
// fail as "the contact left", then checks sending is refused.
func pfCheckLeft(t *testing.T, u *user, id string, sent Message, pending []Message) {
	t.Helper()
	waitFor(t, "the contact left", func() (bool, error) {
		c, err := u.p.Contact(id)
		return c.State == ContactDeleted, err
	})
	waitFor(t, "the pending messages failed", func() (bool, error) {
		msgs, err := u.p.Messages(id, 0, 50)
		if err != nil {
			return false, err
		}
		failed := 0
		for _, m := range msgs {
			for _, p := range pending {
				if m.Seq == p.Seq && m.Status == StatusFailed && m.Reason == ReasonContactLeft {
					failed++
				}
			}
		}
		return failed == len(pending), nil
	})
	msgs, _ := u.p.Messages(id, 0, 50)
	for _, m := range msgs {
		if m.Seq == sent.Seq && m.Status != StatusSent && m.Status != StatusDelivered {
			t.Errorf("the message sent before: %s (%s)", m.Status, m.Reason)
		}
	}
	if _, err := u.p.SendText(ctxT(t), id, "hello?"); !errors.Is(err, ErrContactLeft) {
		t.Errorf("sending to a contact who left: %v", err)
	}
	if _, err := u.p.SendFile(ctxT(t), id, FileMeta{Name: "a.txt", Size: 1}, bytes.NewReader([]byte("a")), nil); !errors.Is(err, ErrContactLeft) {
		t.Errorf("sending a file to a contact who left: %v", err)
	}
	if ups, _ := u.p.PendingUploads(id); len(ups) != 0 {
		t.Errorf("a refused file left %d uploads", len(ups))
	}
}

// TestContactLeftPeerDeleted: the contact deletes the connection; its
// notice reaches us while our messages to them wait for their relay.
func TestContactLeftPeerDeleted(t *testing.T) {
	r1, r2 := relaytest.Start(t), relaytest.Start(t)
	ann := newUser(t, "Ann", "", r1) // receives on r1
	bob := newUser(t, "Bob", "", r2) // receives on r2: Ann sends there
	// Each side reaches the other's relay directly here, so that one's
	// own relay being down does not stop it (private routing would send
	// everything through it: TestPrivateRouting).
	directRouting(t, ann, bob)
	ab, ba := connect(t, ann, bob, false)
	sent, err := ann.p.SendText(ctxT(t), ab, "before")
	if err != nil {
		t.Fatal(err)
	}
	waitFor(t, "delivered", func() (bool, error) {
		msgs, err := ann.p.Messages(ab, 0, 10)
		return len(msgs) == 1 && msgs[0].Status == StatusDelivered, err
	})
	r2.Stop()
	pending := pfQueue(t, ann, ab, 3)
	// Bob's notice goes to Ann's queue on r1; deleting his own queue on
	// r2 fails (it is down), which is his side's business.
	ctx, cancel := context.WithTimeout(ctxT(t), scaled(3*time.Second))
	_ = bob.p.DeleteContact(ctx, ba)
	cancel()
	pfCheckLeft(t, ann, ab, sent, pending)
}

// TestContactLeftAuth: the contact deleted the connection and its notice
// was lost; sending to its queue gets AUTH from the relay.
func TestContactLeftAuth(t *testing.T) {
	r1, r2 := relaytest.Start(t), relaytest.Start(t)
	ann := newUser(t, "Ann", "", r1)
	bob := newUser(t, "Bob", "", r2)
	directRouting(t, ann, bob) // Ann reaches r2 while r1 is down
	ab, ba := connect(t, ann, bob, false)
	sent, err := ann.p.SendText(ctxT(t), ab, "before")
	if err != nil {
		t.Fatal(err)
	}
	waitFor(t, "delivered", func() (bool, error) {
		msgs, err := ann.p.Messages(ab, 0, 10)
		return len(msgs) == 1 && msgs[0].Status == StatusDelivered, err
	})
	// Bob's notice cannot reach Ann's relay; his queue on r2 is deleted.
	r1.Stop()
	if err := bob.p.DeleteContact(ctxT(t), ba); err != nil {
		t.Fatal(err)
	}
	// Ann queues texts while r2 is down too, then r2 answers AUTH.
	r2.Stop()
	pending := pfQueue(t, ann, ab, 3)
	if c := pfContact(t, ann, ab); c.State != ContactConnected {
		t.Fatalf("state before the relay answered: %s", c.State)
	}
	r2.Restart()
	pfCheckLeft(t, ann, ab, sent, pending)
	r1.Restart()
}
