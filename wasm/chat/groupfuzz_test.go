//go:build !js

package chat

import (
	"bytes"
	"crypto/ed25519"
	"encoding/json"
	"errors"
	"strings"
	"sync"
	"testing"

	"github.com/wisp-chat/wisp/wasm/files"
)

// Fuzz tests of the group parsers of untrusted bytes (wrappers, events,
// handshake infos) and of the roster rules. Seed corpora: testdata/fuzz/
// <target>/seed_*, written by the vectors' -update-group-vectors.

// FuzzDecodeGroupWire: decodeGroupWire never panics, fails only with
// ErrInvalid, and what it accepts encodes to a wrapper that decodes to
// the same encoding.
func FuzzDecodeGroupWire(f *testing.F) {
	f.Add([]byte("g{}"))
	f.Fuzz(func(t *testing.T, b []byte) {
		w, err := decodeGroupWire(b)
		if err != nil {
			if !errors.Is(err, ErrInvalid) {
				t.Fatalf("error %v is not ErrInvalid", err)
			}
			return
		}
		gzCheckWire(t, w, false)
	})
}

// FuzzParseGroupWire: the same for a wrapper's JSON, as an outer wrapper
// or as the inner one of fwd and via (which refuses inv, fwd and via).
func FuzzParseGroupWire(f *testing.F) {
	f.Add([]byte(`{"t":"need","group":"00000000000000000000000000000000","author":"00000000000000000000000000000000"}`), true)
	f.Fuzz(func(t *testing.T, b []byte, inner bool) {
		w, err := parseGroupWire(b, inner)
		if err != nil {
			if !errors.Is(err, ErrInvalid) {
				t.Fatalf("error %v is not ErrInvalid", err)
			}
			return
		}
		gzCheckWire(t, w, inner)
	})
}

// gzCheckWire checks an accepted wrapper: its type's fields are there, it
// encodes, and the encoding decodes and encodes to itself.
func gzCheckWire(t *testing.T, w *groupWire, inner bool) {
	t.Helper()
	ok := false
	switch w.T {
	case wInv:
		ok = !inner && w.Profile != nil && w.From != nil && w.Link != "" && w.Role.Valid() &&
			len(w.From.Key) == ed25519.PublicKeySize && w.From.Name != "" && len(w.Profile.Name) <= MaxGroupName
	case wEv, wHist:
		ok = w.Ev != nil
	case wWelcome:
		ok = w.Start > 0
	case wFwd:
		ok = !inner && w.To != nil && len(w.Inner) > 0
	case wVia:
		ok = !inner && w.Sender != nil && len(w.Inner) > 0
	case wIntro:
		ok = w.New != nil && len(w.New.Key) == ed25519.PublicKeySize && w.New.Role.Valid()
	case wIntroInv:
		ok = w.For != nil && w.Link != "" && w.Start > 0
	case wIntroFwd:
		ok = w.Sender != nil && w.Link != "" && w.Start > 0
	case wNeed:
		ok = w.Author != nil
	case wGot:
		ok = w.Ref != nil
	default:
		ok = true // a type newer than this test: the round trip below still holds
	}
	if !ok {
		t.Fatalf("accepted a wrapper of type %q without its fields: %+v", w.T, w)
	}
	enc, err := w.encode()
	if err != nil {
		t.Fatalf("an accepted wrapper does not encode: %v", err)
	}
	w2, err := parseGroupWire(enc[1:], inner)
	if err != nil {
		t.Fatalf("the encoding of an accepted wrapper is refused: %v\n%s", err, enc)
	}
	enc2, err := w2.encode()
	if err != nil || !bytes.Equal(enc, enc2) {
		t.Fatalf("the wrapper does not encode stably (%v):\n%s\n%s", err, enc, enc2)
	}
	if len(w.Inner) > 0 {
		if iw, err := parseGroupWire(w.Inner, true); err == nil {
			gzCheckWire(t, iw, true)
		}
	}
	if w.Ev != nil {
		if ev, err := parseEvent(*w.Ev); err == nil {
			gzCheckEvent(t, ev, *w.Ev)
		}
	}
}

// FuzzParseEvent: parseEvent never panics, fails only with errBadEvent,
// and what it accepts has its kind's fields, encodes to an event that
// parses to the same encoding, and goes through the roster rules of
// several states (refused without a change, or applied within limits).
func FuzzParseEvent(f *testing.F) {
	f.Add([]byte(`{"v":1}`), make([]byte, ed25519.SignatureSize))
	f.Fuzz(func(t *testing.T, e, s []byte) {
		se := signedEvent{E: e, S: s}
		ev, err := parseEvent(se)
		if err != nil {
			if !errors.Is(err, errBadEvent) {
				t.Fatalf("error %v is not errBadEvent", err)
			}
			return
		}
		gzCheckEvent(t, ev, se)
		for _, state := range gzRosterStates(t) {
			var r roster
			if err := json.Unmarshal(state, &r); err != nil {
				t.Fatal(err)
			}
			if err := r.apply(ev); err != nil {
				if !errors.Is(err, errBadEvent) {
					t.Fatalf("apply: %v is not errBadEvent", err)
				}
				if after, _ := json.Marshal(r); !bytes.Equal(after, state) {
					t.Fatal("a refused event changed the roster")
				}
				continue
			}
			if r.activeCount() > MaxGroupMembers {
				t.Fatal("more active members than MaxGroupMembers")
			}
		}
	})
}

// gzCheckEvent checks an accepted event.
func gzCheckEvent(t *testing.T, ev *groupEvent, se signedEvent) {
	t.Helper()
	if ev.V != 1 || ev.Seq == 0 || len(se.S) != ed25519.SignatureSize || len(se.E) == 0 || len(se.E) > maxEventBytes {
		t.Fatalf("accepted version %d seq %d, %d-byte signature, %d-byte event", ev.V, ev.Seq, len(se.S), len(se.E))
	}
	ok := false
	switch ev.Kind {
	case evCreate:
		ok = ev.Seq == 1 && len(ev.Salt) == 16 && ev.Profile != nil && ev.Member != nil && ev.Member.ID == ev.Author &&
			ev.Member.Role == RoleOwner && len(ev.Member.Key) == ed25519.PublicKeySize && ev.Profile.Name != ""
	case evAdd:
		ok = ev.Member != nil && len(ev.Member.Key) == ed25519.PublicKeySize && ev.Member.Role.Valid() && ev.Member.Name != ""
	case evJoined, evLeave, evDelete:
		ok = true
	case evMsg:
		ok = strings.TrimSpace(ev.Text) != "" && len(ev.Text) <= MaxTextBytes
	case evFile:
		ok = ev.File != nil && len(ev.File.Digest) == files.DigestSize && ev.File.Name != ""
	case evRole:
		ok = ev.Target != nil && ev.Role.Valid()
	case evRemove:
		ok = ev.Target != nil
	case evProfile:
		ok = ev.Profile != nil && ev.Profile.Name != "" && len(ev.Profile.Name) <= MaxGroupName
	}
	if !ok {
		t.Fatalf("accepted a %q event without its fields: %s", ev.Kind, se.E)
	}
	b, err := json.Marshal(ev)
	if err != nil {
		t.Fatalf("an accepted event does not encode: %v", err)
	}
	if len(b) > maxEventBytes {
		return // its encoding grew (escapes) past the limit: events are never re-encoded
	}
	ev2, err := parseEvent(signedEvent{E: b, S: se.S})
	if err != nil {
		t.Fatalf("the encoding of an accepted event is refused: %v\n%s\n%s", err, se.E, b)
	}
	if b2, err := json.Marshal(ev2); err != nil || !bytes.Equal(b, b2) {
		t.Fatalf("the event does not encode stably (%v):\n%s\n%s", err, b, b2)
	}
}

var (
	gzStatesOnce sync.Once
	gzStates     [][]byte
)

// gzRosterStates: the empty roster and the vectors' rosters after
// joined_carol and after role_carol, as JSON.
func gzRosterStates(t *testing.T) [][]byte {
	gzStatesOnce.Do(func() {
		var r roster
		b, _ := json.Marshal(r)
		gzStates = append(gzStates, b)
		events, _ := gvInputs()
		ms := gvMembers()
		alice := ed25519.NewKeyFromSeed(gvUnhexT(ms[0].Seed)).Public().(ed25519.PublicKey)
		gid := groupIDFor(alice, gvRamp(16, 0x10))
		c := newGVCtx(t, ms, gvHex(gid[:]))
		for _, v := range events {
			if err := r.apply(c.event(v.Input)); err != nil {
				panic(err)
			}
			if v.Name == "joined_carol" || v.Name == "role_carol" {
				b, _ := json.Marshal(r)
				gzStates = append(gzStates, b)
			}
		}
	})
	return gzStates
}

// FuzzParseJoinInfo: parseJoinInfo never panics, fails only with
// ErrInvalid, and what it accepts encodes to an info that parses to the
// same encoding.
func FuzzParseJoinInfo(f *testing.F) {
	f.Add([]byte(`{"group":"00000000000000000000000000000000","id":"00000000000000000000000000000000"}`))
	f.Fuzz(func(t *testing.T, b []byte) {
		ji, err := parseJoinInfo(b)
		if err != nil {
			if !errors.Is(err, ErrInvalid) {
				t.Fatalf("error %v is not ErrInvalid", err)
			}
			return
		}
		if ji.Member != nil && (ji.Member.ID != ji.ID || len(ji.Member.Key) != ed25519.PublicKeySize || !ji.Member.Role.Valid()) {
			t.Fatalf("accepted a member that is not valid: %+v", ji.Member)
		}
		enc, err := json.Marshal(ji)
		if err != nil {
			t.Fatal(err)
		}
		ji2, err := parseJoinInfo(enc)
		if err != nil {
			t.Fatalf("the encoding of an accepted info is refused: %v\n%s", err, enc)
		}
		if enc2, _ := json.Marshal(ji2); !bytes.Equal(enc, enc2) {
			t.Fatalf("the info does not encode stably:\n%s\n%s", enc, enc2)
		}
	})
}

// FuzzRoster runs a program of 4-byte operations on a roster that starts
// with a valid create by member 0: each operation makes an event, encodes
// it and parses it with parseEvent, and applies it. A model of the rules
// as SPEC.md states them must take the same decision and reach the same
// state, and the invariants hold throughout: at most MaxGroupMembers
// active, a refused event changes nothing, an admin never acts on an owner
// or an admin, removed and departed members never come back, nothing
// applies after delete.
//
// Operation: kind (byte % 10, in the order of gzKinds), author (index in
// the members made so far; beyond them an unknown ID), target (likewise),
// extra: bits 0-2 the role (% 4 for add, % 5 for role where 4 is no
// valid role), 0x20 an empty profile name, 0x40 add an existing ID
// (the target) or create with another salt, 0x80 the wrong group.
func FuzzRoster(f *testing.F) {
	for _, prog := range gzRosterSeeds() {
		f.Add(prog)
	}
	f.Fuzz(func(t *testing.T, prog []byte) {
		w := newGZWorld(t)
		for i := 0; i+4 <= len(prog); i += 4 {
			w.step(t, i/4, prog[i], prog[i+1], prog[i+2], prog[i+3])
		}
	})
}

var (
	gzKinds = []string{evCreate, evAdd, evJoined, evMsg, evFile, evRole, evRemove, evLeave, evProfile, evDelete}
	gzRoles = []Role{RoleOwner, RoleAdmin, RoleMember, RoleObserver, ""}
)

// Roster program operations, for the seeds.
const (
	gzCreate = iota
	gzAdd
	gzJoined
	gzMsg
	gzFile
	gzRole
	gzRemove
	gzLeave
	gzProfile
	gzDelete
)

func gzRosterSeeds() map[string][]byte {
	op := func(kind, author, target, extra byte) []byte { return []byte{kind, author, target, extra} }
	cat := func(ops ...[]byte) []byte { return bytes.Join(ops, nil) }
	seeds := map[string][]byte{
		// The rules one by one (ids: 0 owner, 1 admin, 2 member, 3 admin).
		"rules": cat(
			op(gzAdd, 0, 0, 1), op(gzJoined, 1, 0, 0), op(gzAdd, 1, 0, 2), op(gzMsg, 2, 0, 0),
			op(gzRole, 1, 2, 3), op(gzMsg, 2, 0, 0), op(gzRemove, 1, 0, 0), op(gzRole, 1, 0, 3),
			op(gzAdd, 1, 0, 0), op(gzAdd, 0, 0, 1), op(gzRemove, 1, 3, 0), op(gzRole, 1, 3, 2),
			op(gzRemove, 0, 1, 0), op(gzMsg, 1, 0, 0), op(gzLeave, 2, 0, 0), op(gzProfile, 3, 0, 0),
			op(gzProfile, 0, 0, 0), op(gzProfile, 0, 0, 0x20), op(gzAdd, 0, 2, 0x42), op(gzRole, 0, 3, 4),
			op(gzJoined, 0, 0, 0), op(gzDelete, 3, 0, 0), op(gzDelete, 0, 0, 0), op(gzMsg, 0, 0, 0),
			op(gzCreate, 0, 0, 0), op(gzMsg, 9, 0, 0x80)),
		// Owners act on owners, the creator included.
		"owners": cat(op(gzAdd, 0, 0, 0), op(gzRemove, 1, 0, 0), op(gzMsg, 0, 0, 0), op(gzProfile, 1, 0, 0),
			op(gzRole, 1, 1, 2)),
		// Wrong group, wrong salt, unknown author.
		"strangers": cat(op(gzMsg, 0, 0, 0x80), op(gzCreate, 0, 0, 0x40), op(gzMsg, 200, 0, 0), op(gzRemove, 0, 200, 0),
			op(gzFile, 0, 0, 0)),
	}
	// Fill the group to MaxGroupMembers and one more; remove one, add one.
	var fill [][]byte
	for range MaxGroupMembers {
		fill = append(fill, op(gzAdd, 0, 0, 2))
	}
	fill = append(fill, op(gzRemove, 0, 5, 0), op(gzAdd, 0, 0, 3), op(gzAdd, 0, 0, 3), op(gzLeave, 7, 0, 0),
		op(gzAdd, 0, 0, 1), op(gzAdd, 101, 0, 2))
	seeds["fill"] = cat(fill...)
	return seeds
}

// gzWorld is one FuzzRoster run.
type gzWorld struct {
	r      roster
	m      gzModel
	owner  ed25519.PublicKey
	salt   []byte
	group  groupID
	ids    []memberID // members made so far, by index
	seq    map[memberID]uint64
	fresh  int
	gone   map[memberID]bool
	member []byte // the key of every added member
}

type gzModel struct {
	created, deleted bool
	group            groupID
	members          map[memberID]*gzItem
}

type gzItem struct {
	role   Role
	status memberStatus
}

func newGZWorld(t *testing.T) *gzWorld {
	w := &gzWorld{
		owner: ed25519.NewKeyFromSeed(gvRamp(32, 0x33)).Public().(ed25519.PublicKey),
		salt:  gvRamp(16, 0x44), seq: map[memberID]uint64{}, gone: map[memberID]bool{},
		member: gvRamp(32, 0x55),
	}
	w.group = groupIDFor(w.owner, w.salt)
	w.ids = []memberID{w.newID()}
	w.step(t, -1, gzCreate, 0, 0, 0)
	if w.r.Members == nil {
		t.Fatal("the initial create was refused")
	}
	return w
}

// newID makes a member ID never made before in this run (and never the
// unknown one).
func (w *gzWorld) newID() memberID {
	var m memberID
	m[0], m[1], m[15] = byte(w.fresh), byte(w.fresh>>8), 0x5a
	w.fresh++
	return m
}

func (w *gzWorld) pick(sel byte) memberID {
	if int(sel) < len(w.ids) {
		return w.ids[sel]
	}
	var unknown memberID
	for i := range unknown {
		unknown[i] = 0xee
	}
	return unknown
}

func (w *gzWorld) step(t *testing.T, n int, kindSel, authorSel, targetSel, extra byte) {
	kind := gzKinds[int(kindSel)%len(gzKinds)]
	author := w.pick(authorSel)
	ev := &groupEvent{V: 1, Group: w.group, Author: author, Seq: w.seq[author] + 1, Time: int64(n), Kind: kind}
	if extra&0x80 != 0 {
		ev.Group[0] ^= 1
	}
	wantParse := true
	var newID memberID
	switch kind {
	case evCreate:
		ev.Seq, ev.Salt = 1, w.salt
		if extra&0x40 != 0 {
			ev.Salt = gvRamp(16, 0x45)
		}
		ev.Profile = &GroupProfile{Name: "Group"}
		ev.Member = &memberInfo{ID: author, Key: w.owner, Role: RoleOwner, Name: "Owner"}
	case evAdd:
		newID = w.newID()
		if extra&0x40 != 0 {
			newID = w.pick(targetSel)
		}
		ev.Member = &memberInfo{ID: newID, Key: w.member, Role: gzRoles[int(extra&7)%4], Name: "Member"}
	case evMsg:
		ev.Text = "hello"
	case evFile:
		ev.File = &groupFile{Name: "f.txt", Type: "text/plain", Size: 1, Digest: make([]byte, files.DigestSize)}
	case evRole:
		target := w.pick(targetSel)
		ev.Target, ev.Role = &target, gzRoles[int(extra&7)%5]
		wantParse = ev.Role.Valid()
	case evRemove:
		target := w.pick(targetSel)
		ev.Target = &target
	case evProfile:
		ev.Profile = &GroupProfile{Name: "Renamed"}
		if extra&0x20 != 0 {
			ev.Profile.Name = ""
			wantParse = false
		}
	}
	b, err := json.Marshal(ev)
	if err != nil {
		t.Fatal(err)
	}
	pev, err := parseEvent(signedEvent{E: b, S: make([]byte, ed25519.SignatureSize)})
	if (err == nil) != wantParse {
		t.Fatalf("op %d: parseEvent(%s) = %v, want parsed %t", n, b, err, wantParse)
	}
	if err != nil {
		return
	}
	allowed := w.m.allows(pev)
	before, _ := json.Marshal(w.r)
	pre := w.m.members[pev.Author]
	var preTarget *gzItem
	if pev.Target != nil {
		preTarget = w.m.members[*pev.Target]
	}
	err = w.r.apply(pev)
	if (err == nil) != allowed {
		t.Fatalf("op %d: %s: apply gave %v, the model says allowed=%t", n, b, err, allowed)
	}
	if err != nil {
		if !errors.Is(err, errBadEvent) {
			t.Fatalf("op %d: %v is not errBadEvent", n, err)
		}
		if after, _ := json.Marshal(w.r); !bytes.Equal(before, after) {
			t.Fatalf("op %d: a refused event changed the roster", n)
		}
		return
	}
	// Accepted: the rules the spec promises, checked on the state before.
	if pre != nil && pre.role == RoleAdmin && preTarget != nil && (preTarget.role == RoleOwner || preTarget.role == RoleAdmin) {
		t.Fatalf("op %d: an admin acted (%s) on a %s", n, kind, preTarget.role)
	}
	if w.m.deleted {
		t.Fatalf("op %d: an event applied after delete", n)
	}
	w.m.apply(pev)
	w.seq[author] = pev.Seq
	if kind == evAdd && extra&0x40 == 0 {
		w.ids = append(w.ids, newID)
	}
	w.compare(t, n)
}

// compare checks the roster against the model and the invariants.
func (w *gzWorld) compare(t *testing.T, n int) {
	if w.r.activeCount() > MaxGroupMembers {
		t.Fatalf("op %d: %d active members", n, w.r.activeCount())
	}
	if len(w.r.Members) != len(w.m.members) || w.r.Deleted != w.m.deleted || w.r.ID != w.m.group {
		t.Fatalf("op %d: roster of %d members (deleted %t), model %d (%t)", n, len(w.r.Members), w.r.Deleted, len(w.m.members), w.m.deleted)
	}
	for id, it := range w.r.Members {
		m := w.m.members[id]
		if m == nil || m.role != it.Role || m.status != it.Status {
			t.Fatalf("op %d: member %s is %s %s, the model says %+v", n, id, it.Role, it.Status, m)
		}
		if w.gone[id] && it.active() {
			t.Fatalf("op %d: member %s came back", n, id)
		}
		if !it.active() {
			w.gone[id] = true
		}
	}
}

// allows is the rulebook of SPEC.md ("Role rules"), written from the spec.
func (m *gzModel) allows(ev *groupEvent) bool {
	if ev.Kind == evCreate {
		return !m.created && groupIDFor(ev.Member.Key, ev.Salt) == ev.Group
	}
	if !m.created || ev.Group != m.group || m.deleted {
		return false
	}
	a := m.members[ev.Author]
	if a == nil || (a.status != memberAdded && a.status != memberJoined) {
		return false
	}
	rank := map[Role]int{RoleObserver: 1, RoleMember: 2, RoleAdmin: 3, RoleOwner: 4}
	actsOn := func() bool {
		tg := m.members[*ev.Target]
		if tg == nil || (tg.status != memberAdded && tg.status != memberJoined) || *ev.Target == ev.Author {
			return false
		}
		if a.role == RoleOwner {
			return true
		}
		return a.role == RoleAdmin && (tg.role == RoleMember || tg.role == RoleObserver)
	}
	active := 0
	for _, it := range m.members {
		if it.status == memberAdded || it.status == memberJoined {
			active++
		}
	}
	switch ev.Kind {
	case evJoined:
		return a.status == memberAdded
	case evAdd:
		return rank[a.role] >= rank[RoleAdmin] && rank[ev.Member.Role] <= rank[a.role] &&
			m.members[ev.Member.ID] == nil && active < MaxGroupMembers
	case evMsg, evFile:
		return a.role != RoleObserver
	case evRole:
		return rank[a.role] >= rank[RoleAdmin] && rank[ev.Role] <= rank[a.role] && actsOn()
	case evRemove:
		return rank[a.role] >= rank[RoleAdmin] && actsOn()
	case evProfile, evDelete:
		return a.role == RoleOwner
	case evLeave:
		return true
	}
	return false
}

func (m *gzModel) apply(ev *groupEvent) {
	switch ev.Kind {
	case evCreate:
		m.created, m.group = true, ev.Group
		m.members = map[memberID]*gzItem{ev.Author: {role: RoleOwner, status: memberJoined}}
	case evAdd:
		m.members[ev.Member.ID] = &gzItem{role: ev.Member.Role, status: memberAdded}
	case evJoined:
		m.members[ev.Author].status = memberJoined
	case evRole:
		m.members[*ev.Target].role = ev.Role
	case evRemove:
		m.members[*ev.Target].status = memberRemoved
	case evLeave:
		m.members[ev.Author].status = memberLeft
	case evDelete:
		m.deleted = true
	}
}
