//go:build !js

package chat

import (
	"bytes"
	"crypto/ed25519"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"slices"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/hack-pad/hackpadfs"
	"github.com/hack-pad/hackpadfs/mem"
	"github.com/wisp-chat/wisp/wasm/internal/crashfs"
	"github.com/wisp-chat/wisp/wasm/internal/relaytest"
)

// groupEntry waits for the chat entry of the group named name.
func groupEntry(t testing.TB, u *user, name string) string {
	t.Helper()
	var id string
	waitFor(t, "the group entry "+name, func() (bool, error) {
		cs, err := u.p.Contacts()
		for _, c := range cs {
			if c.Group != nil && c.Group.Profile.Name == name {
				id = c.ID
				return true, nil
			}
		}
		return false, err
	})
	return id
}

// member is one person in a group test.
type member struct {
	u    *user
	name string
	gid  string // their chat entry of the group
}

// waitMembers waits until m sees exactly the names as joined members,
// every one of them connected pairwise.
func waitMembers(t testing.TB, m *member, names ...string) {
	t.Helper()
	want := append([]string(nil), names...)
	sort.Strings(want)
	waitFor(t, m.name+" sees members "+strings.Join(want, ","), func() (bool, error) {
		ms, err := m.u.p.Members(m.gid)
		if err != nil {
			return false, err
		}
		var got []string
		for _, x := range ms {
			if x.Status != "joined" {
				continue
			}
			if x.Connection != "self" && x.Connection != "connected" {
				return false, nil
			}
			got = append(got, x.Name)
		}
		sort.Strings(got)
		return slices.Equal(got, want), nil
	})
}

// texts returns the (author: text) lines of a group conversation, notices left out.
func texts(t testing.TB, m *member) []string {
	t.Helper()
	msgs, err := m.u.p.Messages(m.gid, 0, 200)
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, x := range msgs {
		if x.Notice {
			continue
		}
		who := x.AuthorName
		if !x.Incoming {
			who = m.name
		}
		out = append(out, who+": "+x.Text)
	}
	return out
}

// waitTexts waits until m's conversation holds exactly want (in any
// order across authors, each author's in order).
func waitTexts(t testing.TB, m *member, want []string) {
	t.Helper()
	waitFor(t, m.name+" has the group's messages", func() (bool, error) {
		got := texts(t, m)
		if len(got) > len(want) {
			return false, fmt.Errorf("%s has %d messages, want %d: %q", m.name, len(got), len(want), got)
		}
		if len(got) < len(want) {
			return false, nil
		}
		a, b := slices.Clone(got), slices.Clone(want)
		sort.Strings(a)
		sort.Strings(b)
		if !slices.Equal(a, b) {
			return false, fmt.Errorf("%s has %q, want %q", m.name, got, want)
		}
		return perAuthorOrder(got, want), nil
	})
}

// perAuthorOrder: each author's lines appear in got in their order in want.
func perAuthorOrder(got, want []string) bool {
	authorOf := func(s string) string { return s[:strings.Index(s, ":")] }
	for _, a := range want {
		var g, w []string
		for _, s := range got {
			if authorOf(s) == authorOf(a) {
				g = append(g, s)
			}
		}
		for _, s := range want {
			if authorOf(s) == authorOf(a) {
				w = append(w, s)
			}
		}
		if !slices.Equal(g, w) {
			return false
		}
	}
	return true
}

// invite makes the contact between inviter and m and has m join.
func invite(t testing.TB, owner *member, inviter *member, m *member, role Role) {
	t.Helper()
	ca, _ := connect(t, inviter.u, m.u, false)
	if err := inviter.u.p.InviteToGroup(ctxT(t), inviter.gid, ca, role); err != nil {
		t.Fatal(err)
	}
	m.gid = groupEntry(t, m.u, owner.u.p.mustGroup(t, owner.gid).Profile.Name)
	g, err := m.u.p.GroupInfo(m.gid)
	if err != nil || g.State != GroupInvited || g.InvitedBy != inviter.name {
		t.Fatalf("invitation: %+v, %v", g, err)
	}
	if err := m.u.p.JoinGroup(ctxT(t), m.gid, false); err != nil {
		t.Fatal(err)
	}
}

func (p *Profile) mustGroup(t testing.TB, id string) Group {
	g, err := p.GroupInfo(id)
	if err != nil {
		t.Fatal(err)
	}
	return g
}

func TestGroupThreeMembers(t *testing.T) {
	r1, r2, r3 := relaytest.Start(t), relaytest.Start(t), relaytest.Start(t)
	alice := &member{u: newUser(t, "Alice", "", r1), name: "Alice"}
	bob := &member{u: newUser(t, "Bob", "", r2), name: "Bob"}
	carol := &member{u: newUser(t, "Carol", "", r3), name: "Carol"}
	c, err := alice.u.p.CreateGroup(ctxT(t), GroupProfile{Name: "Team", Description: "our team"}, false)
	if err != nil {
		t.Fatal(err)
	}
	alice.gid = c.ID
	invite(t, alice, alice, bob, RoleAdmin)
	waitMembers(t, alice, "Alice", "Bob")
	waitMembers(t, bob, "Alice", "Bob")
	// Bob, an admin, invites Carol: she is introduced to Alice.
	invite(t, alice, bob, carol, RoleMember)
	for _, m := range []*member{alice, bob, carol} {
		waitMembers(t, m, "Alice", "Bob", "Carol")
	}
	var want []string
	for i := range 3 {
		for _, m := range []*member{alice, bob, carol} {
			text := fmt.Sprintf("%d from %s", i, m.name)
			if _, err := m.u.p.SendGroupText(ctxT(t), m.gid, text); err != nil {
				t.Fatal(err)
			}
			want = append(want, m.name+": "+text)
		}
	}
	t.Cleanup(func() {
		if t.Failed() {
			dumpGroup(t, alice, bob, carol)
		}
	})
	for _, m := range []*member{alice, bob, carol} {
		waitTexts(t, m, want)
	}
	// Every copy is delivered: Alice's messages reach "delivered" with both members listed.
	waitFor(t, "delivered to all", func() (bool, error) {
		msgs, err := alice.u.p.Messages(alice.gid, 0, 200)
		for _, x := range msgs {
			if !x.Incoming && !x.Notice && (x.Status != StatusDelivered || len(x.DeliveredTo) != 2) {
				return false, err
			}
		}
		return true, err
	})

	// Alice removes Carol: Carol learns it, the others stop sending to her.
	var carolID string
	ms, _ := alice.u.p.Members(alice.gid)
	for _, x := range ms {
		if x.Name == "Carol" {
			carolID = x.ID
		}
	}
	if err := alice.u.p.RemoveMember(alice.gid, carolID); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "Carol removed", func() (bool, error) {
		g, err := carol.u.p.GroupInfo(carol.gid)
		return g.State == GroupRemoved, err
	})
	waitMembers(t, bob, "Alice", "Bob")
	if _, err := bob.u.p.SendGroupText(ctxT(t), bob.gid, "after"); err != nil {
		t.Fatal(err)
	}
	want = append(want, "Bob: after")
	waitTexts(t, alice, want)
	if _, err := carol.u.p.SendGroupText(ctxT(t), carol.gid, "still here?"); err == nil {
		t.Fatal("a removed member could post")
	}
}

// memberIDOf finds a member's ID by name in m's view.
func memberIDOf(t testing.TB, m *member, name string) string {
	t.Helper()
	ms, err := m.u.p.Members(m.gid)
	if err != nil {
		t.Fatal(err)
	}
	for _, x := range ms {
		if x.Name == name {
			return x.ID
		}
	}
	t.Fatalf("%s does not see %s", m.name, name)
	return ""
}

// rosterOf is m's view of the group: name/role/status lines, sorted.
func rosterOf(t testing.TB, m *member) []string {
	t.Helper()
	ms, err := m.u.p.Members(m.gid)
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, x := range ms {
		out = append(out, x.Name+"/"+string(x.Role)+"/"+x.Status)
	}
	sort.Strings(out)
	return out
}

// buildGroup makes a group of n people on three relays: the owner
// invites the first half (the first of them as an admin), that admin
// invites the rest.
func buildGroup(t testing.TB, n int) []*member {
	t.Helper()
	ms, _ := buildGroupRelays(t, n)
	return ms
}

// buildGroupRelays is buildGroup that also returns the relays.
func buildGroupRelays(t testing.TB, n int) ([]*member, []*relaytest.Relay) {
	t.Helper()
	return buildGroupOn(t, n, func() hackpadfs.FS {
		fsys, err := mem.NewFS()
		if err != nil {
			t.Fatal(err)
		}
		return fsys
	})
}

// buildHook, when set, sees the members as soon as they exist (debugging).
var buildHook func([]*member)

// buildGroupOn is buildGroupRelays with each person's storage from mkfs.
func buildGroupOn(t testing.TB, n int, mkfs func() hackpadfs.FS) ([]*member, []*relaytest.Relay) {
	t.Helper()
	relays := []*relaytest.Relay{relaytest.StartCrowd(t), relaytest.StartCrowd(t), relaytest.StartCrowd(t)}
	ms := make([]*member, n)
	for i := range ms {
		name := fmt.Sprintf("M%02d", i)
		ms[i] = &member{u: newUserOn(t, name, "", relays[i%3], mkfs()), name: name}
	}
	if buildHook != nil {
		buildHook(ms)
	}
	c, err := ms[0].u.p.CreateGroup(ctxT(t), GroupProfile{Name: "Ten"}, false)
	if err != nil {
		t.Fatal(err)
	}
	ms[0].gid = c.ID
	var names []string
	for _, m := range ms {
		names = append(names, m.name)
	}
	for i := 1; i < n; i++ {
		inviter, role := ms[0], RoleMember
		if i == 1 {
			role = RoleAdmin
		}
		if i > n/2 {
			inviter = ms[1]
		}
		invite(t, ms[0], inviter, ms[i], role)
	}
	t.Cleanup(func() {
		if t.Failed() {
			dumpGroup(t, ms...)
		}
	})
	for _, m := range ms {
		waitMembers(t, m, names...)
	}
	return ms, relays
}

func TestGroupTenMembersTwoInviters(t *testing.T) {
	ms := buildGroup(t, 10)
	t.Cleanup(func() {
		if t.Failed() {
			dumpGroup(t, ms...)
		}
	})
	var want []string
	for round := range 2 {
		for _, m := range ms {
			text := fmt.Sprintf("%s says %d", m.name, round)
			if _, err := m.u.p.SendGroupText(ctxT(t), m.gid, text); err != nil {
				t.Fatal(err)
			}
			want = append(want, m.name+": "+text)
		}
	}
	for _, m := range ms {
		waitTexts(t, m, want)
	}
	first := rosterOf(t, ms[0])
	for _, m := range ms[1:] {
		if got := rosterOf(t, m); !slices.Equal(got, first) {
			t.Fatalf("%s sees %q, %s sees %q", ms[0].name, first, m.name, got)
		}
	}
}

// problems returns the problem texts u was told about.
func problems(u *user) []string {
	u.mu.Lock()
	defer u.mu.Unlock()
	var out []string
	for _, e := range u.events {
		if e.Kind == "problem" {
			out = append(out, e.Text)
		}
	}
	return out
}

func waitProblem(t testing.TB, u *user, substr string) {
	t.Helper()
	waitFor(t, "a problem report "+substr, func() (bool, error) {
		for _, p := range problems(u) {
			if strings.Contains(p, substr) {
				return true, nil
			}
		}
		return false, nil
	})
}

// inject has m send a hand-made event to every other member, as a
// hostile client would.
func inject(t testing.TB, m *member, ev *groupEvent, sign func(*groupRecord) []byte) {
	t.Helper()
	p := m.u.p
	p.mu.Lock()
	defer p.mu.Unlock()
	g, err := p.loadGroup(m.gid)
	if err != nil {
		t.Fatal(err)
	}
	ev.V, ev.Group, ev.Time = 1, g.Roster.ID, 1
	se, err := signEvent(g.key(), ev)
	if err != nil {
		t.Fatal(err)
	}
	if sign != nil {
		se.S = sign(g)
	}
	if err := p.enqueue(m.gid, g, &groupWire{T: wEv, Group: g.Roster.ID, Ev: &se}, g.others(), 0); err != nil {
		t.Fatal(err)
	}
	if err := p.saveGroup(m.gid, g); err != nil {
		t.Fatal(err)
	}
}

func TestGroupForgedEventsDropped(t *testing.T) {
	ms := buildGroup(t, 3)
	alice, bob, carol := ms[0], ms[1], ms[2]
	t.Cleanup(func() {
		if t.Failed() {
			dumpGroup(t, ms...)
		}
	})
	var aliceID memberID
	if err := aliceID.UnmarshalText([]byte(memberIDOf(t, bob, alice.name))); err != nil {
		t.Fatal(err)
	}
	bobMe := func() (memberID, uint64) {
		bob.u.p.mu.Lock()
		defer bob.u.p.mu.Unlock()
		g, _ := bob.u.p.loadGroup(bob.gid)
		return g.Me, g.Next
	}
	// 1. Bob forges a message in Alice's name (signed with his own key).
	inject(t, bob, &groupEvent{Author: aliceID, Seq: 50, Kind: evMsg, Text: "forged"}, nil)
	waitProblem(t, carol.u, "bad signature")
	// 2. A member signs a change only an owner may make.
	me, next := bobMe()
	carolID := memberIDOf(t, bob, carol.name)
	var cid memberID
	_ = cid.UnmarshalText([]byte(carolID))
	if err := bob.u.p.SetMemberRole(bob.gid, carolID, RoleObserver); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "Carol an observer", func() (bool, error) {
		for _, x := range rosterOf(t, carol) {
			if x == "M02/observer/joined" {
				return true, nil
			}
		}
		return false, nil
	})
	cp := carol.u.p
	cp.mu.Lock()
	cg, _ := cp.loadGroup(carol.gid)
	cp.mu.Unlock()
	inject(t, carol, &groupEvent{Author: cid, Seq: cg.Next, Kind: evMsg, Text: "observer posts"}, nil)
	waitProblem(t, alice.u, "an observer cannot post")
	// 3. Bob signs a second, different event with a seq he already used.
	_ = next
	inject(t, bob, &groupEvent{Author: me, Seq: next - 1, Kind: evMsg, Text: "replayed seq"}, nil)
	waitProblem(t, alice.u, "replayed group event")
	for _, m := range ms {
		for _, line := range texts(t, m) {
			if strings.Contains(line, "forged") || strings.Contains(line, "observer posts") || strings.Contains(line, "replayed seq") {
				t.Fatalf("%s shows %q", m.name, line)
			}
		}
	}
	// Later messages still flow, in order.
	if _, err := alice.u.p.SendGroupText(ctxT(t), alice.gid, "still fine"); err != nil {
		t.Fatal(err)
	}
	waitTexts(t, carol, []string{"M00: still fine"})
}

// TestGroupHundredMembers: a group at the member limit, with a message
// from the owner to all 99 others, and the 101st refused.
func TestGroupHundredMembers(t *testing.T) {
	if testing.Short() || raceEnabled {
		t.Skip("builds 100 profiles and 4,950 pairwise connections: make test-scale runs it without the race detector")
	}
	// Building it keeps two cores busy for minutes: wait for each state
	// that long, not for a fixed time.
	defer func(old time.Duration) { waitLimit = old }(waitLimit)
	waitLimit = scaled(20 * time.Minute)
	ms := buildGroup(t, MaxGroupMembers)
	if _, err := ms[0].u.p.SendGroupText(ctxT(t), ms[0].gid, "hello hundred"); err != nil {
		t.Fatal(err)
	}
	for _, m := range ms[1:] {
		waitTexts(t, m, []string{"M00: hello hundred"})
	}
	extra := &member{u: newUser(t, "Extra", "", relaytest.Start(t)), name: "Extra"}
	ca, _ := connect(t, ms[0].u, extra.u, false)
	if err := ms[0].u.p.InviteToGroup(ctxT(t), ms[0].gid, ca, RoleMember); !errors.Is(err, ErrGroupFull) {
		t.Fatalf("the 101st invitation: %v", err)
	}
}

// TestGroupOfflineMemberConverges: a member is offline while one member
// is removed and another added; back online, its view of the group is
// everyone's, it connects with the newcomer, and messages flow.
func TestGroupOfflineMemberConverges(t *testing.T) {
	ms := buildGroup(t, 4)
	r := relaytest.Start(t)
	away := ms[3]
	away.u.m.Close()
	if err := ms[0].u.p.RemoveMember(ms[0].gid, memberIDOf(t, ms[0], ms[2].name)); err != nil {
		t.Fatal(err)
	}
	newcomer := &member{u: newUser(t, "M04", "", r), name: "M04"}
	invite(t, ms[0], ms[1], newcomer, RoleMember)
	waitMembers(t, ms[0], "M00", "M01", "M03", "M04")
	away.u.restart(r)
	for _, m := range []*member{ms[0], ms[1], away, newcomer} {
		waitMembers(t, m, "M00", "M01", "M03", "M04")
	}
	want := rosterOf(t, ms[0])
	for _, m := range []*member{ms[1], away, newcomer} {
		if got := rosterOf(t, m); !slices.Equal(got, want) {
			t.Fatalf("%s sees %q, M00 sees %q", m.name, got, want)
		}
	}
	if _, err := away.u.p.SendGroupText(ctxT(t), away.gid, "back"); err != nil {
		t.Fatal(err)
	}
	waitTexts(t, newcomer, []string{"M03: back"})
	waitFor(t, "M02 removed", func() (bool, error) {
		g, err := ms[2].u.p.GroupInfo(ms[2].gid)
		return g.State == GroupRemoved, err
	})
}

// TestGroupRestartKeepsState: every member restarts; the group, its
// messages and the pairwise connections survive, and new messages flow.
func TestGroupRestartKeepsState(t *testing.T) {
	ms := buildGroup(t, 3)
	r := relaytest.Start(t)
	if _, err := ms[0].u.p.SendGroupText(ctxT(t), ms[0].gid, "before"); err != nil {
		t.Fatal(err)
	}
	for _, m := range ms[1:] {
		waitTexts(t, m, []string{"M00: before"})
	}
	for _, m := range ms {
		m.u.restart(r)
	}
	if _, err := ms[2].u.p.SendGroupText(ctxT(t), ms[2].gid, "after"); err != nil {
		t.Fatal(err)
	}
	for _, m := range ms[:2] {
		waitTexts(t, m, []string{"M00: before", "M02: after"})
	}
	waitTexts(t, ms[2], []string{"M00: before", "M02: after"})
}

// TestRosterLimitsAndRoles checks the rulebook on its own: the member
// limit and the role rules, on signed events.
func TestRosterLimitsAndRoles(t *testing.T) {
	owner := ed25519Seed(1)
	salt := make([]byte, 16)
	ownerID := memberID{1}
	pub := owner.Public().(ed25519.PublicKey)
	gid := groupIDFor(pub, salt)
	var r roster
	ev := func(author memberID, seq uint64, kind string, f func(*groupEvent)) *groupEvent {
		e := &groupEvent{V: 1, Group: gid, Author: author, Seq: seq, Kind: kind}
		if f != nil {
			f(e)
		}
		return e
	}
	create := ev(ownerID, 1, evCreate, func(e *groupEvent) {
		e.Salt, e.Profile = salt, &GroupProfile{Name: "G"}
		e.Member = &memberInfo{ID: ownerID, Key: pub, Role: RoleOwner, Name: "Owner"}
	})
	if err := r.apply(create); err != nil {
		t.Fatal(err)
	}
	// A create event for the same ID by another key is refused.
	other := ed25519Seed(2).Public().(ed25519.PublicKey)
	forged := *create
	forged.Member = &memberInfo{ID: ownerID, Key: other, Role: RoleOwner, Name: "Owner"}
	var r2 roster
	if err := r2.apply(&forged); err == nil {
		t.Fatal("a create event whose ID is not bound to its key was accepted")
	}
	add := func(author memberID, seq uint64, id memberID, role Role) error {
		return r.apply(ev(author, seq, evAdd, func(e *groupEvent) {
			e.Member = &memberInfo{ID: id, Key: pub, Role: role, Name: "x"}
		}))
	}
	admin, member, observer := memberID{2}, memberID{3}, memberID{4}
	for i, m := range []struct {
		id   memberID
		role Role
	}{{admin, RoleAdmin}, {member, RoleMember}, {observer, RoleObserver}} {
		if err := add(ownerID, uint64(2+i), m.id, m.role); err != nil {
			t.Fatal(err)
		}
	}
	refused := []struct {
		what string
		ev   *groupEvent
	}{
		{"an admin adds an owner", ev(admin, 1, evAdd, func(e *groupEvent) { e.Member = &memberInfo{ID: memberID{9}, Key: pub, Role: RoleOwner, Name: "x"} })},
		{"an admin removes the owner", ev(admin, 1, evRemove, func(e *groupEvent) { e.Target = &ownerID })},
		{"an admin removes an admin", ev(admin, 1, evRemove, func(e *groupEvent) { e.Target = &admin })},
		{"a member removes", ev(member, 1, evRemove, func(e *groupEvent) { e.Target = &observer })},
		{"an observer posts", ev(observer, 1, evMsg, func(e *groupEvent) { e.Text = "hi" })},
		{"a member changes the profile", ev(member, 1, evProfile, func(e *groupEvent) { e.Profile = &GroupProfile{Name: "y"} })},
		{"an admin deletes the group", ev(admin, 1, evDelete, nil)},
		{"an admin promotes to owner", ev(admin, 1, evRole, func(e *groupEvent) { e.Target = &member; e.Role = RoleOwner })},
		{"a stranger posts", ev(memberID{77}, 1, evMsg, func(e *groupEvent) { e.Text = "hi" })},
	}
	for _, c := range refused {
		if err := r.check(c.ev); !errors.Is(err, errBadEvent) {
			t.Errorf("%s: %v", c.what, err)
		}
	}
	// Fill to the limit: the 101st add is refused with ErrGroupFull.
	for i := r.activeCount(); i < MaxGroupMembers; i++ {
		if err := add(ownerID, uint64(10+i), memberID{0xee, byte(i)}, RoleMember); err != nil {
			t.Fatal(err)
		}
	}
	if r.activeCount() != MaxGroupMembers {
		t.Fatalf("%d members", r.activeCount())
	}
	if err := add(ownerID, 500, memberID{0xff}, RoleMember); !errors.Is(err, ErrGroupFull) {
		t.Fatalf("the 101st member: %v", err)
	}
	// After a removal there is room again.
	if err := r.apply(ev(ownerID, 501, evRemove, func(e *groupEvent) { e.Target = &member })); err != nil {
		t.Fatal(err)
	}
	if err := add(ownerID, 502, memberID{0xff}, RoleMember); err != nil {
		t.Fatal(err)
	}
}

func ed25519Seed(b byte) ed25519.PrivateKey {
	seed := make([]byte, ed25519.SeedSize)
	seed[0] = b
	return ed25519.NewKeyFromSeed(seed)
}

// TestGroupFile: one upload for every member; each downloads and
// verifies its own copy; the chunks are deleted once all have it.
func TestGroupFile(t *testing.T) {
	ms := buildGroup(t, 3)
	data := make([]byte, 300<<10)
	for i := range data {
		data[i] = byte(i * 7)
	}
	meta := FileMeta{Name: "notes.bin", Type: "application/octet-stream", Size: int64(len(data))}
	sent, err := ms[0].u.p.SendGroupFile(ctxT(t), ms[0].gid, meta, bytes.NewReader(data), nil)
	if err != nil {
		t.Fatal(err)
	}
	if sent.Recipients != 2 || sent.File == nil {
		t.Fatalf("sent %+v", sent)
	}
	for _, m := range ms[1:] {
		waitTexts(t, m, []string{"M00: notes.bin"})
		msgs, err := m.u.p.Messages(m.gid, 0, 50)
		if err != nil {
			t.Fatal(err)
		}
		var seq uint64
		for _, x := range msgs {
			if x.File != nil {
				seq = x.Seq
			}
		}
		if err := m.u.p.DownloadFile(ctxT(t), m.gid, seq, nil); err != nil {
			t.Fatal(err)
		}
		r, _, err := m.u.p.OpenFile(m.gid, seq)
		if err != nil {
			t.Fatal(err)
		}
		got, err := io.ReadAll(r)
		if err != nil || !bytes.Equal(got, data) {
			t.Fatalf("%s: %d bytes, %v", m.name, len(got), err)
		}
	}
	waitFor(t, "the chunks deleted after both downloads", func() (bool, error) {
		keys, err := ms[0].u.p.st.List(contactDir(ms[0].gid).Join("gf"))
		return len(keys) == 0, err
	})
}

// TestGroupRestartSafety crashes members at random storage writes while
// everyone posts, restarts them on what was written, and checks that
// every message SendGroupText accepted reaches every other member exactly
// once, and that one whose SendGroupText failed arrives at most once.
func TestGroupRestartSafety(t *testing.T) {
	var disks []*crashfs.FS
	ms, _ := buildGroupOn(t, 3, func() hackpadfs.FS {
		fsys, err := crashfs.New()
		if err != nil {
			t.Fatal(err)
		}
		disks = append(disks, fsys)
		return fsys
	})
	t.Cleanup(func() {
		if t.Failed() {
			dumpGroup(t, ms...)
		}
	})
	r := relaytest.Start(t)
	seed := uint64(time.Now().UnixNano())
	t.Logf("seed %d", seed)
	rng := rand.New(rand.NewPCG(seed, 3))
	accepted := map[string]bool{} // "author: text"
	rounds := 8
	if testing.Short() {
		rounds = 3
	}
	for round := range rounds {
		v := rng.IntN(len(ms))
		disks[v].SetBudget(5 + rng.IntN(80))
		for i := range 4 {
			for _, m := range ms {
				text := fmt.Sprintf("r%d m%d", round, i)
				if _, err := m.u.p.SendGroupText(ctxT(t), m.gid, text); err == nil {
					accepted[m.name+": "+text] = true
				}
			}
			time.Sleep(time.Duration(rng.IntN(3)) * time.Millisecond)
		}
		// A file too, from a member that may be the one crashing.
		fm := ms[round%len(ms)]
		name := fmt.Sprintf("file-r%d.bin", round)
		data := bytes.Repeat([]byte{byte(round)}, 8<<10)
		meta := FileMeta{Name: name, Type: "application/octet-stream", Size: int64(len(data))}
		if _, err := fm.u.p.SendGroupFile(ctxT(t), fm.gid, meta, bytes.NewReader(data), nil); err == nil {
			accepted[fm.name+": "+name] = true
		}
		time.Sleep(time.Duration(rng.IntN(30)) * time.Millisecond)
		ms[v].u.m.Close()
		disks[v].SetBudget(-1)
		ms[v].u.restart(r)
		// Uploads a crash interrupted are resumed, as the page offers.
		for _, m := range ms {
			ups, err := m.u.p.PendingUploads(m.gid)
			if err != nil {
				t.Fatal(err)
			}
			for _, up := range ups {
				data := bytes.Repeat([]byte{byte(0)}, int(up.Size))
				var rnd int
				if _, err := fmt.Sscanf(up.Name, "file-r%d.bin", &rnd); err == nil {
					data = bytes.Repeat([]byte{byte(rnd)}, int(up.Size))
				}
				if _, err := m.u.p.ResumeFile(ctxT(t), m.gid, up.ID, bytes.NewReader(data), up.Size, nil); err == nil {
					accepted[m.name+": "+up.Name] = true
				} else {
					t.Logf("resuming %s: %v", up.Name, err)
				}
			}
		}
	}
	var missing []string
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("missing: %q", missing)
		}
	})
	for _, m := range ms {
		waitFor(t, m.name+" has every accepted message", func() (bool, error) {
			have := map[string]int{}
			for _, line := range texts(t, m) {
				have[line]++
			}
			missing = missing[:0]
			for line := range accepted {
				if have[line] == 0 {
					missing = append(missing, m.name+" lacks "+line)
				}
			}
			return len(missing) == 0, nil
		})
	}
	time.Sleep(300 * time.Millisecond) // anything extra would arrive now
	for _, m := range ms {
		have := map[string]int{}
		for _, line := range texts(t, m) {
			have[line]++
		}
		for line, n := range have {
			if n != 1 {
				t.Errorf("%s shows %q %d times", m.name, line, n)
			}
		}
		for line := range accepted {
			if have[line] != 1 {
				t.Errorf("%s shows accepted %q %d times", m.name, line, have[line])
			}
		}
	}
	t.Logf("%d messages accepted across %d crashes", len(accepted), rounds)
}

// eventsFor counts the message events u got for a chat entry since mark.
func eventsFor(u *user, id string, mark int) (n int, now int) {
	u.mu.Lock()
	defer u.mu.Unlock()
	for _, e := range u.events[mark:] {
		if e.Kind == "message" && e.Message != nil && e.Message.Contact == id {
			n++
		}
	}
	return n, len(u.events)
}

// groupConns counts u's agent connections that belong to group gid.
func groupConns(u *user, gid string) int {
	u.p.mu.Lock()
	defer u.p.mu.Unlock()
	n := 0
	for _, gc := range u.p.gconns {
		if gc.Group == gid {
			n++
		}
	}
	return n
}

// TestGroupRemovedGetsNothing: after a removal, the removed member's
// group connections are gone on both sides and nothing more reaches it.
func TestGroupRemovedGetsNothing(t *testing.T) {
	ms := buildGroup(t, 4)
	gone := ms[3]
	if err := ms[1].u.p.RemoveMember(ms[1].gid, memberIDOf(t, ms[1], gone.name)); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "the removed member's connections deleted", func() (bool, error) {
		g, err := gone.u.p.GroupInfo(gone.gid)
		return g.State == GroupRemoved && groupConns(gone.u, gone.gid) == 0, err
	})
	for _, m := range ms[:3] {
		waitMembers(t, m, "M00", "M01", "M02")
		waitFor(t, m.name+" dropped the connection", func() (bool, error) {
			return groupConns(m.u, m.gid) == 2, nil
		})
	}
	_, mark := eventsFor(gone.u, gone.gid, 0)
	var want []string
	for _, m := range ms[:3] {
		text := "after removal from " + m.name
		if _, err := m.u.p.SendGroupText(ctxT(t), m.gid, text); err != nil {
			t.Fatal(err)
		}
		want = append(want, m.name+": "+text)
	}
	for _, m := range ms[:3] {
		waitTexts(t, m, want)
	}
	time.Sleep(300 * time.Millisecond) // anything that would reach it would be here now
	if n, _ := eventsFor(gone.u, gone.gid, mark); n != 0 {
		t.Fatalf("the removed member got %d messages after its removal", n)
	}
	if _, err := gone.u.p.SendGroupText(ctxT(t), gone.gid, "hello?"); !errors.Is(err, ErrGroupClosed) {
		t.Fatalf("a removed member posts: %v", err)
	}
	// The entry can now be deleted; an active group's cannot.
	if err := ms[0].u.p.DeleteContact(ctxT(t), ms[0].gid); !errors.Is(err, ErrInvalid) {
		t.Fatalf("deleting an active group's entry: %v", err)
	}
	if err := gone.u.p.DeleteContact(ctxT(t), gone.gid); err != nil {
		t.Fatal(err)
	}
}

// TestGroupLeaveDeleteIncognitoCodes: an incognito member, security
// codes that match on both sides, leaving, and the owner deleting the
// group for everyone.
func TestGroupLeaveDeleteIncognitoCodes(t *testing.T) {
	r1, r2, r3 := relaytest.Start(t), relaytest.Start(t), relaytest.Start(t)
	owner := &member{u: newUser(t, "Olga", "", r1), name: "Olga"}
	c, err := owner.u.p.CreateGroup(ctxT(t), GroupProfile{Name: "Club"}, false)
	if err != nil {
		t.Fatal(err)
	}
	owner.gid = c.ID
	pat := &member{u: newUser(t, "Pat", "", r2), name: "Pat"}
	invite(t, owner, owner, pat, RoleMember)
	// Quinn joins incognito: nobody in the group sees "Quinn".
	quinn := &member{u: newUser(t, "Quinn", "", r3), name: "Quinn"}
	ca, _ := connect(t, owner.u, quinn.u, false)
	if err := owner.u.p.InviteToGroup(ctxT(t), owner.gid, ca, RoleMember); err != nil {
		t.Fatal(err)
	}
	quinn.gid = groupEntry(t, quinn.u, "Club")
	if err := quinn.u.p.JoinGroup(ctxT(t), quinn.gid, true); err != nil {
		t.Fatal(err)
	}
	alias := quinn.u.p.mustGroup(t, quinn.gid).Incognito
	if alias == "" || strings.Contains(alias, "Quinn") {
		t.Fatalf("incognito name %q", alias)
	}
	quinn.name = alias
	for _, m := range []*member{owner, pat, quinn} {
		waitMembers(t, m, "Olga", "Pat", alias)
	}
	// Security codes: the same on both sides of each pair.
	for _, pair := range [][2]*member{{owner, pat}, {pat, quinn}, {owner, quinn}} {
		a, b := pair[0], pair[1]
		ca, err := a.u.p.MemberSecurityCode(a.gid, memberIDOf(t, a, b.name))
		if err != nil {
			t.Fatal(err)
		}
		cb, err := b.u.p.MemberSecurityCode(b.gid, memberIDOf(t, b, a.name))
		if err != nil {
			t.Fatal(err)
		}
		if ca != cb || len(ca) != 12*6-1 {
			t.Fatalf("%s/%s codes %q and %q", a.name, b.name, ca, cb)
		}
	}
	if err := pat.u.p.VerifyMember(pat.gid, memberIDOf(t, pat, owner.name), true); err != nil {
		t.Fatal(err)
	}
	ms, _ := pat.u.p.Members(pat.gid)
	for _, x := range ms {
		if x.Name == owner.name && !x.Verified {
			t.Fatal("the verified mark was not kept")
		}
	}
	// Pat leaves.
	if err := pat.u.p.LeaveGroup(pat.gid); err != nil {
		t.Fatal(err)
	}
	for _, m := range []*member{owner, quinn} {
		waitMembers(t, m, "Olga", alias)
	}
	if g := pat.u.p.mustGroup(t, pat.gid); g.State != GroupLeft {
		t.Fatalf("after leaving: %+v", g)
	}
	// A member cannot delete the group; the owner can, for everyone.
	if err := quinn.u.p.DeleteGroup(quinn.gid); !errors.Is(err, ErrNotAllowed) {
		t.Fatalf("a member deletes the group: %v", err)
	}
	if err := owner.u.p.DeleteGroup(owner.gid); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "the group deleted for Quinn", func() (bool, error) {
		g, err := quinn.u.p.GroupInfo(quinn.gid)
		return g.State == GroupDeleted, err
	})
	waitFor(t, "every connection of the group deleted", func() (bool, error) {
		return groupConns(owner.u, owner.gid) == 0 && groupConns(quinn.u, quinn.gid) == 0 && groupConns(pat.u, pat.gid) == 0, nil
	})
}

// TestGroupInviteWhenFull: with 100 members (99 of them written into the
// owner's roster directly, to keep the test small), an invitation is
// refused before anything is created.
func TestGroupInviteWhenFull(t *testing.T) {
	r := relaytest.Start(t)
	owner := &member{u: newUser(t, "Olga", "", r), name: "Olga"}
	c, err := owner.u.p.CreateGroup(ctxT(t), GroupProfile{Name: "Full"}, false)
	if err != nil {
		t.Fatal(err)
	}
	owner.gid = c.ID
	pat := &member{u: newUser(t, "Pat", "", r), name: "Pat"}
	ca, _ := connect(t, owner.u, pat.u, false)
	p := owner.u.p
	p.mu.Lock()
	g, err := p.loadGroup(owner.gid)
	if err != nil {
		t.Fatal(err)
	}
	key := ed25519Seed(9).Public().(ed25519.PublicKey)
	for i := 1; i < MaxGroupMembers; i++ {
		id := memberID{0xaa, byte(i)}
		g.Roster.Members[id] = &rosterItem{memberInfo: memberInfo{ID: id, Key: key, Role: RoleMember, Name: "x"}, Status: memberJoined, AddedBy: g.Me}
	}
	err = p.saveGroup(owner.gid, g)
	p.mu.Unlock()
	if err != nil {
		t.Fatal(err)
	}
	before, _ := owner.u.p.Contacts()
	if err := owner.u.p.InviteToGroup(ctxT(t), owner.gid, ca, RoleMember); !errors.Is(err, ErrGroupFull) {
		t.Fatalf("inviting the 101st: %v", err)
	}
	after, _ := owner.u.p.Contacts()
	if len(after) != len(before) || groupConns(owner.u, owner.gid) != 0 {
		t.Fatal("a refused invitation left something behind")
	}
}

// TestGroupJoinedReachesLaterNewcomer: Bob is offline from his join until
// after Carol joined, so his "joined" reaches Alice only after she
// admitted Carol; Carol still learns it (from Bob) and lists him joined.
func TestGroupJoinedReachesLaterNewcomer(t *testing.T) {
	r1, r2, r3 := relaytest.Start(t), relaytest.Start(t), relaytest.Start(t)
	alice := &member{u: newUser(t, "Alice", "", r1), name: "Alice"}
	bob := &member{u: newUser(t, "Bob", "", r2), name: "Bob"}
	carol := &member{u: newUser(t, "Carol", "", r3), name: "Carol"}
	t.Cleanup(func() {
		if t.Failed() {
			dumpGroup(t, alice, bob, carol)
		}
	})
	c, err := alice.u.p.CreateGroup(ctxT(t), GroupProfile{Name: "Late"}, false)
	if err != nil {
		t.Fatal(err)
	}
	alice.gid = c.ID
	invite(t, alice, alice, bob, RoleMember)
	bob.u.m.Close()
	invite(t, alice, alice, carol, RoleMember)
	waitFor(t, "Carol active", func() (bool, error) {
		g, err := carol.u.p.GroupInfo(carol.gid)
		return g.State == GroupActive, err
	})
	bob.u.restart(r2)
	for _, m := range []*member{alice, bob, carol} {
		waitMembers(t, m, "Alice", "Bob", "Carol")
	}
}

// TestGroupForwardedBeforePairsConnect: Bob and Carol cannot make their
// pairwise connection (their links are held), so what they send each
// other goes through Alice, who introduced them; each checks the
// author's signature. Once the links are made, they talk directly, and
// nothing arrives twice or out of its author's order.
func TestGroupForwardedBeforePairsConnect(t *testing.T) {
	r1, r2, r3 := relaytest.Start(t), relaytest.Start(t), relaytest.Start(t)
	alice := &member{u: newUser(t, "Alice", "", r1), name: "Alice"}
	bob := &member{u: newUser(t, "Bob", "", r2), name: "Bob"}
	carol := &member{u: newUser(t, "Carol", "", r3), name: "Carol"}
	t.Cleanup(func() {
		if t.Failed() {
			dumpGroup(t, alice, bob, carol)
		}
	})
	c, err := alice.u.p.CreateGroup(ctxT(t), GroupProfile{Name: "Relay race"}, false)
	if err != nil {
		t.Fatal(err)
	}
	alice.gid = c.ID
	invite(t, alice, alice, bob, RoleMember)
	waitMembers(t, alice, "Alice", "Bob")
	bob.u.p.holdLinks.Store(true)
	carol.u.p.holdLinks.Store(true)
	invite(t, alice, alice, carol, RoleMember)
	waitFor(t, "Carol active", func() (bool, error) {
		g, err := carol.u.p.GroupInfo(carol.gid)
		return g.State == GroupActive, err
	})
	var want []string
	for i := range 3 {
		for _, m := range []*member{bob, carol} {
			text := fmt.Sprintf("%s forwarded %d", m.name, i)
			if _, err := m.u.p.SendGroupText(ctxT(t), m.gid, text); err != nil {
				t.Fatal(err)
			}
			want = append(want, m.name+": "+text)
		}
	}
	for _, m := range []*member{bob, carol} {
		waitTexts(t, m, want)
	}
	// Forwarded copies are acknowledged to their author too: Bob's posts
	// reach "delivered" to both Alice and Carol.
	waitFor(t, "Bob's forwarded posts delivered to both", func() (bool, error) {
		msgs, err := bob.u.p.Messages(bob.gid, 0, 200)
		for _, x := range msgs {
			if !x.Incoming && !x.Notice && (x.Status != StatusDelivered || len(x.DeliveredTo) != 2) {
				return false, err
			}
		}
		return true, err
	})
	for _, x := range []struct {
		m     *member
		other string
	}{{bob, "Carol"}, {carol, "Bob"}} {
		ms, err := x.m.u.p.Members(x.m.gid)
		if err != nil {
			t.Fatal(err)
		}
		for _, it := range ms {
			if it.Name == x.other && it.Connection != "connecting" {
				t.Fatalf("%s sees %s %s while their links are held", x.m.name, x.other, it.Connection)
			}
		}
	}
	bob.u.p.holdLinks.Store(false)
	carol.u.p.holdLinks.Store(false)
	for _, m := range []*member{alice, bob, carol} {
		waitMembers(t, m, "Alice", "Bob", "Carol")
	}
	for _, m := range []*member{bob, carol} {
		text := m.name + " direct"
		if _, err := m.u.p.SendGroupText(ctxT(t), m.gid, text); err != nil {
			t.Fatal(err)
		}
		want = append(want, m.name+": "+text)
	}
	for _, m := range []*member{alice, bob, carol} {
		waitTexts(t, m, want)
	}
}
