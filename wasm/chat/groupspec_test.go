//go:build !js

package chat

import (
	"bytes"
	"crypto/ed25519"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/wisp-chat/wisp/crypto/stream"
	"github.com/wisp-chat/wisp/server/wire"
	"github.com/wisp-chat/wisp/server/wire/client"
	"github.com/wisp-chat/wisp/wasm/agent"
	"github.com/wisp-chat/wisp/wasm/files"
)

// The vectors of SPEC.md, "Test vectors": testdata/group-vectors.json.
//
//	go test ./wasm/chat -run Vector                                  compare
//	go test ./wasm/chat -run Vector -args -update-group-vectors      rewrite
//
// The rewrite also writes the seed corpora of groupfuzz_test.go.
var updateGroupVectors = flag.Bool("update-group-vectors", false,
	"rewrite testdata/group-vectors.json and the group fuzz seed corpora")

const groupVectorsPath = "testdata/group-vectors.json"

// gvFile is the layout of testdata/group-vectors.json. Byte strings are
// hex unless a field says otherwise; events, wrappers and bodies are
// given as the exact bytes (UTF-8 text, a JSON string here).
type gvFile struct {
	Comment    []string      `json:"comment"`
	Limits     gvLimits      `json:"limits"`
	Members    []gvMember    `json:"members"`
	Salt       string        `json:"salt"`
	GroupID    string        `json:"group_id"`
	Events     []gvEvent     `json:"events"`
	Refused    []gvEvent     `json:"refused"`
	Malformed  []gvMalformed `json:"malformed"`
	Wrappers   []gvWrapper   `json:"wrappers"`
	JoinInfo   []gvJoin      `json:"join_info"`
	Bodies     []gvBody      `json:"bodies"`
	MemberCode gvCode        `json:"member_security_code"`
}

type gvLimits struct {
	MaxGroupMembers     int `json:"max_group_members"`
	MaxGroupName        int `json:"max_group_name"`
	MaxGroupDescription int `json:"max_group_description"`
	MaxDisplayName      int `json:"max_display_name"`
	MaxAvatarBytes      int `json:"max_avatar_bytes"`
	MaxTextBytes        int `json:"max_text_bytes"`
	MaxEventBytes       int `json:"max_event_bytes"`
	AgentMaxBody        int `json:"agent_max_body"`
	MaxBuffered         int `json:"max_buffered_per_author"`
	// The largest event (E) that fits in one agent message inside each
	// wrapper, with every optional number at its longest.
	LargestEventHist int `json:"largest_event_in_hist"`
	LargestEventEv   int `json:"largest_event_in_ev"`
	LargestEventVia  int `json:"largest_event_in_via"`
	LargestEventFwd  int `json:"largest_event_in_fwd"`
}

type gvMember struct {
	Name      string `json:"name"`
	Seed      string `json:"seed"`       // Ed25519 seed of its member key
	PublicKey string `json:"public_key"` // derived
	KeyBase64 string `json:"public_key_base64"`
	ID        string `json:"member_id"`
}

// gvInput is what an event is made from. Members are named.
type gvInput struct {
	Author  string        `json:"author"`
	Seq     uint64        `json:"seq"`
	Time    int64         `json:"time"`
	Kind    string        `json:"kind"`
	Salt    string        `json:"salt,omitempty"`
	Profile *GroupProfile `json:"profile,omitempty"`
	Member  *gvMemberRef  `json:"member,omitempty"`
	Target  string        `json:"target,omitempty"`
	Role    Role          `json:"role,omitempty"`
	Text    string        `json:"text,omitempty"`
	File    *gvFileInput  `json:"file,omitempty"`
	Reply   *gvReply      `json:"reply,omitempty"`
}

// gvMemberRef is a memberInfo: the named member's ID and key, its name as
// display name, and a role.
type gvMemberRef struct {
	Who  string `json:"who"`
	Role Role   `json:"role"`
}

type gvFileInput struct {
	Name   string `json:"name"`
	Type   string `json:"type"`
	Size   int64  `json:"size"`
	Digest string `json:"digest"`
}

type gvReply struct {
	Author string `json:"author"`
	Seq    uint64 `json:"seq"`
}

// gvEvent is one signed event. In "events" they are applied in order to an
// empty roster; Roster is the result. In "refused" each is applied to the
// roster as it is right after the event named After ("" = empty) and must
// be refused, leaving the roster as it was.
type gvEvent struct {
	Name      string            `json:"name"`
	Why       string            `json:"why,omitempty"`
	After     string            `json:"after,omitempty"`
	Input     gvInput           `json:"input"`
	Event     string            `json:"event"`
	EventHash string            `json:"event_sha256"`
	Signature string            `json:"signature"`
	Roster    map[string]string `json:"roster_after,omitempty"` // member ID → "role status"
	Active    int               `json:"active_after,omitempty"`
}

// gvMalformed is an event parseEvent refuses (signature: 64 zero bytes
// unless SigLen says otherwise).
type gvMalformed struct {
	Name   string `json:"name"`
	Event  string `json:"event"`
	SigLen int    `json:"signature_length"`
}

// gvWireInput is what a wrapper is made from: events and members by name.
type gvWireInput struct {
	T       string   `json:"t"`
	Profile bool     `json:"profile,omitempty"` // inv: the create event's profile
	From    string   `json:"from,omitempty"`    // inv: member (role owner)
	Link    string   `json:"link,omitempty"`
	Role    Role     `json:"role,omitempty"`
	Ev      string   `json:"ev,omitempty"` // an event of "events"
	Start   uint64   `json:"start,omitempty"`
	Desc    bool     `json:"desc,omitempty"` // the description of "bodies"/file
	To      string   `json:"to,omitempty"`
	Sender  string   `json:"sender,omitempty"`
	Inner   string   `json:"inner,omitempty"` // a wrapper above, without its 'g'
	New     string   `json:"new,omitempty"`   // member (role member)
	For     string   `json:"for,omitempty"`
	Author  string   `json:"author,omitempty"`
	After   uint64   `json:"after,omitempty"`
	Hist    bool     `json:"hist,omitempty"`
	Ref     *gvReply `json:"ref,omitempty"` // got: an event of "events"
}

type gvWrapper struct {
	Name  string      `json:"name"`
	Input gvWireInput `json:"input"`
	Wire  string      `json:"wire"` // 'g' || JSON
}

type gvJoin struct {
	Name   string `json:"name"`
	ID     string `json:"id"`               // member name
	Member *Role  `json:"member,omitempty"` // with the member's info in this role
	Info   string `json:"info"`
}

type gvBody struct {
	Name string `json:"name"`
	Body string `json:"body"`
	Hex  string `json:"hex"`
}

type gvCode struct {
	Pairwise string `json:"pairwise_code"`
	A        string `json:"member_a"`
	B        string `json:"member_b"`
	Digest   string `json:"sha256"`
	Code     string `json:"code"`
}

func gvRamp(n int, start byte) []byte {
	b := make([]byte, n)
	for i := range b {
		b[i] = start + byte(i)
	}
	return b
}

func gvHex(b []byte) string { return hex.EncodeToString(b) }

func gvUnhex(t testing.TB, s string) []byte {
	t.Helper()
	b, err := hex.DecodeString(s)
	if err != nil {
		t.Fatalf("hex %q: %v", s, err)
	}
	return b
}

// The rules the file is generated from.
const (
	gvTime0 = int64(1700000000000) // 2023-11-14T22:13:20Z
	gvLink  = "https://wisp.example/#/invite/AQEB"
)

func gvMembers() []gvMember {
	var out []gvMember
	for i, name := range []string{"Alice", "Bob", "Carol"} {
		seed := gvRamp(ed25519.SeedSize, byte(0x20*i))
		pub := ed25519.NewKeyFromSeed(seed).Public().(ed25519.PublicKey)
		out = append(out, gvMember{Name: name, Seed: gvHex(seed), PublicKey: gvHex(pub),
			KeyBase64: mustB64(pub), ID: gvHex(gvRamp(memberIDSize, byte(0xa0+0x10*i)))})
	}
	return out
}

func mustB64(b []byte) string {
	s, _ := json.Marshal(b)
	return string(s[1 : len(s)-1])
}

func gvInputs() (events, refused []gvEvent) {
	prof := &GroupProfile{Name: "Wisp vectors", Description: "Every kind of group event"}
	hello, _ := files.Digest(bytes.NewReader([]byte("hello"))) // the file of gvDescription
	digest := gvHex(hello[:])
	tm := func(i int) int64 { return gvTime0 + int64(i)*1000 }
	ev := func(name string, in gvInput) gvEvent { return gvEvent{Name: name, Input: in} }
	events = []gvEvent{
		ev("create", gvInput{Author: "Alice", Seq: 1, Time: tm(0), Kind: evCreate, Salt: gvHex(gvRamp(16, 0x10)),
			Profile: prof, Member: &gvMemberRef{Who: "Alice", Role: RoleOwner}}),
		ev("add_bob", gvInput{Author: "Alice", Seq: 2, Time: tm(1), Kind: evAdd, Member: &gvMemberRef{Who: "Bob", Role: RoleAdmin}}),
		ev("joined_bob", gvInput{Author: "Bob", Seq: 1, Time: tm(2), Kind: evJoined}),
		ev("add_carol", gvInput{Author: "Bob", Seq: 2, Time: tm(3), Kind: evAdd, Member: &gvMemberRef{Who: "Carol", Role: RoleMember}}),
		ev("joined_carol", gvInput{Author: "Carol", Seq: 1, Time: tm(4), Kind: evJoined}),
		ev("msg_alice", gvInput{Author: "Alice", Seq: 3, Time: tm(5), Kind: evMsg, Text: "Hello <all> & welcome ✓"}),
		ev("msg_carol", gvInput{Author: "Carol", Seq: 2, Time: tm(6), Kind: evMsg, Text: "Hi! 👋", Reply: &gvReply{Author: "Alice", Seq: 3}}),
		ev("file_carol", gvInput{Author: "Carol", Seq: 3, Time: tm(7), Kind: evFile,
			File: &gvFileInput{Name: "hello.txt", Type: "text/plain", Size: 5, Digest: digest}}),
		ev("role_carol", gvInput{Author: "Bob", Seq: 3, Time: tm(8), Kind: evRole, Target: "Carol", Role: RoleObserver}),
		ev("remove_bob", gvInput{Author: "Alice", Seq: 4, Time: tm(9), Kind: evRemove, Target: "Bob"}),
		ev("leave_carol", gvInput{Author: "Carol", Seq: 4, Time: tm(10), Kind: evLeave}),
		ev("profile", gvInput{Author: "Alice", Seq: 5, Time: tm(11), Kind: evProfile, Profile: &GroupProfile{Name: "Wisp vectors 2"}}),
		ev("delete", gvInput{Author: "Alice", Seq: 6, Time: tm(12), Kind: evDelete}),
	}
	ref := func(name, why, after string, in gvInput) gvEvent {
		return gvEvent{Name: name, Why: why, After: after, Input: in}
	}
	refused = []gvEvent{
		ref("create_wrong_salt", "the group ID is not groupIDFor(member key, salt)", "",
			gvInput{Author: "Alice", Seq: 1, Time: tm(0), Kind: evCreate, Salt: gvHex(gvRamp(16, 0x11)),
				Profile: prof, Member: &gvMemberRef{Who: "Alice", Role: RoleOwner}}),
		ref("second_create", "a second create event", "create",
			gvInput{Author: "Alice", Seq: 1, Time: tm(0), Kind: evCreate, Salt: gvHex(gvRamp(16, 0x10)),
				Profile: prof, Member: &gvMemberRef{Who: "Alice", Role: RoleOwner}}),
		ref("not_a_member", "the author is not in the roster yet", "joined_bob",
			gvInput{Author: "Carol", Seq: 1, Time: tm(4), Kind: evJoined}),
		ref("joined_twice", "the author's status is already joined", "joined_bob",
			gvInput{Author: "Bob", Seq: 2, Time: tm(3), Kind: evJoined}),
		ref("admin_adds_owner", "an admin adds at most an admin", "joined_bob",
			gvInput{Author: "Bob", Seq: 2, Time: tm(3), Kind: evAdd, Member: &gvMemberRef{Who: "Carol", Role: RoleOwner}}),
		ref("member_adds", "only owners and admins add", "joined_carol",
			gvInput{Author: "Carol", Seq: 2, Time: tm(6), Kind: evAdd, Member: &gvMemberRef{Who: "Carol", Role: RoleMember}}),
		ref("id_taken", "the new member's ID is in the roster", "joined_carol",
			gvInput{Author: "Alice", Seq: 3, Time: tm(5), Kind: evAdd, Member: &gvMemberRef{Who: "Carol", Role: RoleMember}}),
		ref("admin_removes_owner", "an admin acts on members and observers only", "joined_carol",
			gvInput{Author: "Bob", Seq: 3, Time: tm(8), Kind: evRemove, Target: "Alice"}),
		ref("admin_gives_owner", "an admin gives at most its own role", "joined_carol",
			gvInput{Author: "Bob", Seq: 3, Time: tm(8), Kind: evRole, Target: "Carol", Role: RoleOwner}),
		ref("remove_self", "the target is the author", "joined_carol",
			gvInput{Author: "Alice", Seq: 3, Time: tm(5), Kind: evRemove, Target: "Alice"}),
		ref("member_changes_profile", "only owners change the profile", "joined_carol",
			gvInput{Author: "Bob", Seq: 3, Time: tm(8), Kind: evProfile, Profile: &GroupProfile{Name: "Mine"}}),
		ref("observer_posts", "an observer cannot post", "role_carol",
			gvInput{Author: "Carol", Seq: 4, Time: tm(10), Kind: evMsg, Text: "Can I still talk?"}),
		ref("removed_posts", "the author was removed", "remove_bob",
			gvInput{Author: "Bob", Seq: 4, Time: tm(10), Kind: evMsg, Text: "Still here"}),
		ref("after_delete", "the group was deleted", "delete",
			gvInput{Author: "Alice", Seq: 7, Time: tm(13), Kind: evMsg, Text: "Anyone?"}),
	}
	return events, refused
}

// gvWireInputs lists the wrappers, in order (an Inner names one above).
func gvWireInputs() []gvWrapper {
	w := func(name string, in gvWireInput) gvWrapper { return gvWrapper{Name: name, Input: in} }
	return []gvWrapper{
		w("inv", gvWireInput{T: wInv, Profile: true, From: "Alice", Link: gvLink, Role: RoleMember}),
		w("ev", gvWireInput{T: wEv, Ev: "msg_alice", Start: 3}),
		w("ev_file", gvWireInput{T: wEv, Ev: "file_carol", Start: 1, Desc: true}),
		w("hist", gvWireInput{T: wHist, Ev: "create"}),
		w("welcome", gvWireInput{T: wWelcome, Start: 3}),
		w("fwd", gvWireInput{T: wFwd, To: "Carol", Inner: "ev"}),
		w("via", gvWireInput{T: wVia, Sender: "Alice", Inner: "ev"}),
		w("intro", gvWireInput{T: wIntro, New: "Carol"}),
		w("introinv", gvWireInput{T: wIntroInv, For: "Carol", Link: gvLink, Start: 3}),
		w("introfwd", gvWireInput{T: wIntroFwd, Sender: "Alice", Link: gvLink, Start: 3}),
		w("need", gvWireInput{T: wNeed, Author: "Alice", After: 2}),
		w("need_hist", gvWireInput{T: wNeed, Author: "Carol", Hist: true}),
		w("got", gvWireInput{T: wGot, Ref: &gvReply{Author: "Carol", Seq: 3}}),
	}
}

// gvCtx resolves names while building.
type gvCtx struct {
	t       testing.TB
	members map[string]gvMember
	group   groupID
	events  map[string]gvEvent
	wires   map[string]gvWrapper
}

func newGVCtx(t testing.TB, ms []gvMember, group string) *gvCtx {
	c := &gvCtx{t: t, members: map[string]gvMember{}, events: map[string]gvEvent{}, wires: map[string]gvWrapper{}}
	for _, m := range ms {
		c.members[m.Name] = m
	}
	copy(c.group[:], gvUnhex(t, group))
	return c
}

func (c *gvCtx) member(name string) gvMember {
	m, ok := c.members[name]
	if !ok {
		c.t.Fatalf("no member %q", name)
	}
	return m
}

func (c *gvCtx) id(name string) memberID {
	var m memberID
	copy(m[:], gvUnhex(c.t, c.member(name).ID))
	return m
}

func (c *gvCtx) idp(name string) *memberID { m := c.id(name); return &m }

func (c *gvCtx) key(name string) ed25519.PrivateKey {
	return ed25519.NewKeyFromSeed(gvUnhex(c.t, c.member(name).Seed))
}

func (c *gvCtx) info(name string, role Role) *memberInfo {
	return &memberInfo{ID: c.id(name), Key: c.key(name).Public().(ed25519.PublicKey), Role: role, Name: name}
}

// event builds the groupEvent of an input.
func (c *gvCtx) event(in gvInput) *groupEvent {
	ev := &groupEvent{V: 1, Group: c.group, Author: c.id(in.Author), Seq: in.Seq, Time: in.Time, Kind: in.Kind,
		Role: in.Role, Text: in.Text}
	if in.Salt != "" {
		ev.Salt = gvUnhex(c.t, in.Salt)
	}
	if in.Profile != nil {
		p := *in.Profile
		ev.Profile = &p
	}
	if in.Member != nil {
		ev.Member = c.info(in.Member.Who, in.Member.Role)
	}
	if in.Target != "" {
		ev.Target = c.idp(in.Target)
	}
	if in.File != nil {
		ev.File = &groupFile{Name: in.File.Name, Type: in.File.Type, Size: in.File.Size, Digest: gvUnhex(c.t, in.File.Digest)}
	}
	if in.Reply != nil {
		ev.Reply = &eventRef{Author: c.id(in.Reply.Author), Seq: in.Reply.Seq}
	}
	return ev
}

// sign fills the outputs of an event vector.
func (c *gvCtx) sign(v *gvEvent) {
	se, err := signEvent(c.key(v.Input.Author), c.event(v.Input))
	if err != nil {
		c.t.Fatalf("%s: %v", v.Name, err)
	}
	h := sha256.Sum256(se.E)
	v.Event, v.EventHash, v.Signature = string(se.E), gvHex(h[:]), gvHex(se.S)
}

func (c *gvCtx) signed(name string) *signedEvent {
	v, ok := c.events[name]
	if !ok {
		c.t.Fatalf("no event %q", name)
	}
	return &signedEvent{E: []byte(v.Event), S: gvUnhex(c.t, v.Signature)}
}

// wire builds the wrapper of an input.
func (c *gvCtx) wire(in gvWireInput) *groupWire {
	w := &groupWire{T: in.T, Group: c.group, Link: in.Link, Role: in.Role, Start: in.Start, After: in.After, Hist: in.Hist}
	if in.Profile {
		p := *c.events["create"].Input.Profile
		w.Profile = &p
	}
	if in.From != "" {
		w.From = c.info(in.From, RoleOwner)
	}
	if in.Ev != "" {
		w.Ev = c.signed(in.Ev)
	}
	if in.Desc {
		w.Desc = gvDescription(c.t)
	}
	if in.To != "" {
		w.To = c.idp(in.To)
	}
	if in.Sender != "" {
		w.Sender = c.idp(in.Sender)
	}
	if in.Inner != "" {
		inner, ok := c.wires[in.Inner]
		if !ok {
			c.t.Fatalf("no wrapper %q", in.Inner)
		}
		w.Inner = json.RawMessage(inner.Wire[1:])
	}
	if in.New != "" {
		w.New = c.info(in.New, RoleMember)
	}
	if in.For != "" {
		w.For = c.idp(in.For)
	}
	if in.Author != "" {
		w.Author = c.idp(in.Author)
	}
	if in.Ref != nil {
		w.Ref = &eventRef{Author: c.id(in.Ref.Author), Seq: in.Ref.Seq}
	}
	return w
}

// gvDescription is a files.Description of the 5-byte file "hello" on the
// relay of wasm/files/testdata/vectors.json, in one chunk.
func gvDescription(t testing.TB) []byte {
	plain := []byte("hello")
	d := files.Description{Size: int64(len(plain))}
	var err error
	if d.Class, err = files.ClassForSize(d.Size); err != nil {
		t.Fatal(err)
	}
	if d.Digest, err = files.Digest(bytes.NewReader(plain)); err != nil {
		t.Fatal(err)
	}
	if d.Key, err = stream.KeyFromBytes(gvRamp(stream.KeySize, 0x20)); err != nil {
		t.Fatal(err)
	}
	pub := ed25519.NewKeyFromSeed(gvRamp(ed25519.SeedSize, 0)).Public().(ed25519.PublicKey)
	d.Relay = wire.Address{KeyHash: wire.HashIdentity(pub), Host: "relay.example", Port: 443}
	d.Chunks = []client.RecipientChunk{{Class: d.Class, RcvID: wire.ChunkID(gvRamp(wire.IDSize, 0x40)),
		Key: ed25519.NewKeyFromSeed(gvRamp(32, 0x50)), BoxKey: [32]byte(gvRamp(32, 0x60))}}
	b, err := d.MarshalBinary()
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// gvRosterView is a roster as the vectors show it.
func gvRosterView(r *roster) (map[string]string, int) {
	out := map[string]string{}
	for id, m := range r.Members {
		out[id.String()] = string(m.Role) + " " + string(m.Status)
	}
	if r.Deleted {
		out["deleted"] = "true"
	}
	return out, r.activeCount()
}

// gvLargest is the largest event that fits in one agent message inside
// the wrapper mk makes around it.
func gvLargest(t testing.TB, mk func(se *signedEvent) *groupWire) int {
	fits := func(n int) bool {
		se := &signedEvent{E: make([]byte, n), S: make([]byte, ed25519.SignatureSize)}
		b, err := mk(se).encode()
		if err != nil {
			t.Fatal(err)
		}
		return len(b) <= agent.MaxBody
	}
	lo, hi := 0, agent.MaxBody
	for lo < hi {
		mid := (lo + hi + 1) / 2
		if fits(mid) {
			lo = mid
		} else {
			hi = mid - 1
		}
	}
	return lo
}

func gvLimitsNow(t testing.TB) gvLimits {
	var g groupID
	var m memberID
	for i := range g {
		g[i], m[i] = 0xff, 0xff
	}
	evWire := func(se *signedEvent) *groupWire {
		return &groupWire{T: wEv, Group: g, Ev: se, Start: math.MaxUint64}
	}
	inner := func(se *signedEvent) json.RawMessage {
		b, err := evWire(se).encode()
		if err != nil {
			t.Fatal(err)
		}
		return b[1:]
	}
	return gvLimits{
		MaxGroupMembers: MaxGroupMembers, MaxGroupName: MaxGroupName, MaxGroupDescription: MaxGroupDescription,
		MaxDisplayName: MaxDisplayName, MaxAvatarBytes: MaxAvatarBytes, MaxTextBytes: MaxTextBytes,
		MaxEventBytes: maxEventBytes, AgentMaxBody: agent.MaxBody, MaxBuffered: maxBuffered,
		LargestEventHist: gvLargest(t, func(se *signedEvent) *groupWire { return &groupWire{T: wHist, Group: g, Ev: se} }),
		LargestEventEv:   gvLargest(t, evWire),
		LargestEventVia: gvLargest(t, func(se *signedEvent) *groupWire {
			return &groupWire{T: wVia, Group: g, Sender: &m, Inner: inner(se)}
		}),
		LargestEventFwd: gvLargest(t, func(se *signedEvent) *groupWire {
			return &groupWire{T: wFwd, Group: g, To: &m, Inner: inner(se)}
		}),
	}
}

// gvMalformedInputs: events parseEvent must refuse, made by editing the
// vectors' valid events.
func gvMalformedInputs(c *gvCtx) []gvMalformed {
	msg := c.events["msg_alice"].Event
	create := c.events["create"].Event
	role := c.events["role_carol"].Event
	add := c.events["add_bob"].Event
	edit := func(name, in, old, new string) gvMalformed {
		if !strings.Contains(in, old) {
			c.t.Fatalf("%s: %q not in %s", name, old, in)
		}
		return gvMalformed{Name: name, Event: strings.Replace(in, old, new, 1), SigLen: ed25519.SignatureSize}
	}
	long := gvMalformed{Name: "over_max_event_bytes", SigLen: ed25519.SignatureSize,
		Event: strings.Replace(msg, `"text":"`, `"text":"`+strings.Repeat("a", maxEventBytes), 1)}
	return []gvMalformed{
		{Name: "empty", Event: "", SigLen: ed25519.SignatureSize},
		{Name: "signature_63_bytes", Event: msg, SigLen: ed25519.SignatureSize - 1},
		edit("version_2", msg, `"v":1`, `"v":2`),
		edit("seq_0", msg, `"seq":3`, `"seq":0`),
		edit("unknown_field", msg, `"kind":"msg"`, `"kind":"msg","extra":1`),
		edit("unknown_kind", msg, `"kind":"msg"`, `"kind":"poll"`),
		edit("trailing_data", msg, `✓"}`, `✓"} x`),
		edit("blank_text", msg, `"text":"Hello \u003call\u003e \u0026 welcome ✓"`, `"text":" \n "`),
		edit("create_seq_2", create, `"seq":1`, `"seq":2`),
		edit("create_short_salt", create, `"salt":"EBESExQVFhcYGRobHB0eHw=="`, `"salt":"EBESExQVFhcYGRobHB0e"`),
		edit("create_member_not_author", create, `"kind":"create"`, `"kind":"create","author":"`+c.member("Bob").ID+`"`),
		edit("create_not_owner", create, `"role":"owner"`, `"role":"admin"`),
		edit("role_no_target", role, `"target":"`+c.member("Carol").ID+`",`, ``),
		edit("role_invalid", role, `"role":"observer"`, `"role":"boss"`),
		edit("add_short_key", add, `"key":"`, `"key":"AAAA`),
		edit("add_control_in_name", add, `"name":"Bob"`, `"name":"Bo\u0007b"`),
		edit("member_id_short", msg, `"author":"a0a1`, `"author":"a1`),
		long,
	}
}

// gvBuild makes the whole file from the rules above.
func gvBuild(t testing.TB) *gvFile {
	f := &gvFile{
		Comment: []string{
			"Wisp group vectors (wasm/chat/SPEC.md, \"Test vectors\"). Byte strings are hex unless named base64;",
			"event, wire, info and body strings are the exact bytes (UTF-8). Ramps: byte i = start + i (mod 256).",
			"Members: Ed25519 seed ramp(32, 0x20 × k), member ID ramp(16, 0xa0 + 0x10 × k) for Alice, Bob, Carol.",
			"Salt ramp(16, 0x10). Times from 1700000000000 ms, +1000 per event. The signature of each event is",
			"Ed25519(author seed, \"wisp/v1/group-event\\x00\" || event). Regenerate: go test ./wasm/chat -run Vector -args -update-group-vectors",
		},
		Limits:  gvLimitsNow(t),
		Members: gvMembers(),
		Salt:    gvHex(gvRamp(16, 0x10)),
	}
	alice := ed25519.NewKeyFromSeed(gvUnhex(t, f.Members[0].Seed)).Public().(ed25519.PublicKey)
	gid := groupIDFor(alice, gvUnhex(t, f.Salt))
	f.GroupID = gvHex(gid[:])
	c := newGVCtx(t, f.Members, f.GroupID)
	events, refused := gvInputs()
	var r roster
	for i := range events {
		v := &events[i]
		c.sign(v)
		ev, err := parseEvent(signedEvent{E: []byte(v.Event), S: gvUnhex(t, v.Signature)})
		if err != nil {
			t.Fatalf("%s: %v", v.Name, err)
		}
		if err := r.apply(ev); err != nil {
			t.Fatalf("%s: %v", v.Name, err)
		}
		v.Roster, v.Active = gvRosterView(&r)
		c.events[v.Name] = *v
	}
	for i := range refused {
		c.sign(&refused[i])
	}
	f.Events, f.Refused = events, refused
	f.Malformed = gvMalformedInputs(c)
	for _, w := range gvWireInputs() {
		b, err := c.wire(w.Input).encode()
		if err != nil {
			t.Fatalf("%s: %v", w.Name, err)
		}
		w.Wire = string(b)
		c.wires[w.Name] = w
		f.Wrappers = append(f.Wrappers, w)
	}
	owner, member := RoleOwner, RoleMember
	for _, j := range []gvJoin{
		{Name: "invitation_to_contact", ID: "Alice"},
		{Name: "newcomer", ID: "Carol", Member: &member},
		{Name: "introduction", ID: "Alice"},
		{Name: "creator_as_member", ID: "Alice", Member: &owner},
	} {
		ji := joinInfo{Group: gid, ID: c.id(j.ID)}
		if j.Member != nil {
			ji.Member = c.info(j.ID, *j.Member)
		}
		b, err := json.Marshal(ji)
		if err != nil {
			t.Fatal(err)
		}
		j.Info = string(b)
		f.JoinInfo = append(f.JoinInfo, j)
	}
	fb, err := json.Marshal(fileBody{Name: "hello.txt", Type: "text/plain", Size: 5, Desc: gvDescription(t)})
	if err != nil {
		t.Fatal(err)
	}
	pi, err := json.Marshal(peerInfo{Name: "Alice"})
	if err != nil {
		t.Fatal(err)
	}
	for _, b := range []gvBody{
		{Name: "text", Body: string(encodeText("Hello, Wisp ✓"))},
		{Name: "file", Body: string(append([]byte{bodyFile}, fb...))},
		{Name: "contact_handshake_info", Body: string(pi)},
	} {
		b.Hex = gvHex([]byte(b.Body))
		f.Bodies = append(f.Bodies, b)
	}
	f.MemberCode = gvCode{Pairwise: gvHex(gvRamp(32, 0xe0)), A: "Alice", B: "Carol"}
	f.MemberCode.Digest, f.MemberCode.Code = gvMemberCode(t, c, f.MemberCode)
	return f
}

// gvMemberCode restates MemberSecurityCode's derivation: SHA-256 of the
// pairwise connection's security code and the two member keys, sorted
// bytewise; shown as FormatSecurityCode.
func gvMemberCode(t testing.TB, c *gvCtx, v gvCode) (string, string) {
	keys := [][]byte{c.key(v.A).Public().(ed25519.PublicKey), c.key(v.B).Public().(ed25519.PublicKey)}
	slices.SortFunc(keys, bytes.Compare)
	h := sha256.New()
	h.Write(gvUnhex(t, v.Pairwise))
	h.Write(keys[0])
	h.Write(keys[1])
	sum := h.Sum(nil)
	return gvHex(sum), FormatSecurityCode(sum)
}

func gvEncode(t testing.TB, f *gvFile) []byte {
	var buf bytes.Buffer
	e := json.NewEncoder(&buf)
	e.SetEscapeHTML(false)
	e.SetIndent("", "  ")
	if err := e.Encode(f); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

func gvLoad(t testing.TB) *gvFile {
	t.Helper()
	b, err := os.ReadFile(groupVectorsPath)
	if err != nil {
		t.Fatalf("%v (generate with -args -update-group-vectors)", err)
	}
	var f gvFile
	d := json.NewDecoder(bytes.NewReader(b))
	d.DisallowUnknownFields()
	if err := d.Decode(&f); err != nil {
		t.Fatal(err)
	}
	return &f
}

// TestVectorsGroupFile regenerates the vectors from the rules with the
// package's functions and compares them with the committed file.
func TestVectorsGroupFile(t *testing.T) {
	got := gvEncode(t, gvBuild(t))
	if *updateGroupVectors {
		if err := os.WriteFile(groupVectorsPath, got, 0o644); err != nil {
			t.Fatal(err)
		}
		gvWriteCorpus(t)
		return
	}
	want, err := os.ReadFile(groupVectorsPath)
	if err != nil {
		t.Fatalf("%v (generate with -args -update-group-vectors)", err)
	}
	if !bytes.Equal(got, want) {
		gl, wl := strings.Split(string(got), "\n"), strings.Split(string(want), "\n")
		for i := range min(len(gl), len(wl)) {
			if gl[i] != wl[i] {
				t.Fatalf("%s differs at line %d:\n got %s\nwant %s", groupVectorsPath, i+1, gl[i], wl[i])
			}
		}
		t.Fatalf("%s differs in length: %d lines, want %d", groupVectorsPath, len(gl), len(wl))
	}
	gvCheckCorpus(t)
}

// TestVectorsGroupEvents checks, from the committed values alone, the
// keys, the group ID, each event's exact bytes and signature, parsing,
// the signature check (and its failure for every flipped byte of the
// event and every flipped bit of the signature), and the roster after
// each event.
func TestVectorsGroupEvents(t *testing.T) {
	f := gvLoad(t)
	for _, m := range f.Members {
		pub := ed25519.NewKeyFromSeed(gvUnhex(t, m.Seed)).Public().(ed25519.PublicKey)
		if gvHex(pub) != m.PublicKey || mustB64(pub) != m.KeyBase64 {
			t.Fatalf("%s: public key differs", m.Name)
		}
	}
	if gid := groupIDFor(gvUnhex(t, f.Members[0].PublicKey), gvUnhex(t, f.Salt)); gvHex(gid[:]) != f.GroupID {
		t.Fatalf("group ID %x, want %s", gid, f.GroupID)
	}
	// The derivation spelled out.
	h := sha256.Sum256(append(append([]byte("wisp/v1/group-id"), gvUnhex(t, f.Members[0].PublicKey)...), gvUnhex(t, f.Salt)...))
	if gvHex(h[:groupIDSize]) != f.GroupID {
		t.Fatal("group ID is not the first 16 bytes of SHA-256(label || key || salt)")
	}
	c := newGVCtx(t, f.Members, f.GroupID)
	var r roster
	for _, v := range f.Events {
		se := gvCheckSigned(t, c, v)
		ev, err := parseEvent(se)
		if err != nil {
			t.Fatalf("%s: %v", v.Name, err)
		}
		if !se.verify(c.key(v.Input.Author).Public().(ed25519.PublicKey)) {
			t.Fatalf("%s: signature does not verify", v.Name)
		}
		gvCheckFlips(t, v.Name, se, c.key(v.Input.Author).Public().(ed25519.PublicKey))
		if err := r.apply(ev); err != nil {
			t.Fatalf("%s: %v", v.Name, err)
		}
		view, active := gvRosterView(&r)
		if !mapsEqual(view, v.Roster) || active != v.Active {
			t.Fatalf("%s: roster %v (%d active), want %v (%d)", v.Name, view, active, v.Roster, v.Active)
		}
		// Another member's key never verifies it.
		for _, m := range f.Members {
			if m.Name != v.Input.Author && se.verify(gvUnhex(t, m.PublicKey)) {
				t.Fatalf("%s: verifies with %s's key", v.Name, m.Name)
			}
		}
	}
}

func mapsEqual(a, b map[string]string) bool {
	if len(a) != len(b) {
		return false
	}
	for k, v := range a {
		if b[k] != v {
			return false
		}
	}
	return true
}

// gvCheckSigned rebuilds an event vector from its input and compares.
func gvCheckSigned(t *testing.T, c *gvCtx, v gvEvent) signedEvent {
	t.Helper()
	se, err := signEvent(c.key(v.Input.Author), c.event(v.Input))
	if err != nil {
		t.Fatalf("%s: %v", v.Name, err)
	}
	if string(se.E) != v.Event {
		t.Fatalf("%s: event bytes\n got %s\nwant %s", v.Name, se.E, v.Event)
	}
	if gvHex(se.S) != v.Signature {
		t.Fatalf("%s: signature %x, want %s", v.Name, se.S, v.Signature)
	}
	if h := sha256.Sum256(se.E); gvHex(h[:]) != v.EventHash {
		t.Fatalf("%s: event hash differs", v.Name)
	}
	// The signed message spelled out.
	msg := append([]byte("wisp/v1/group-event\x00"), se.E...)
	if !ed25519.Verify(c.key(v.Input.Author).Public().(ed25519.PublicKey), msg, se.S) {
		t.Fatalf("%s: not a signature over the prefix and the event", v.Name)
	}
	return se
}

func gvCheckFlips(t *testing.T, name string, se signedEvent, pub ed25519.PublicKey) {
	t.Helper()
	for i := range se.E {
		e := bytes.Clone(se.E)
		e[i] ^= 1 << (i % 8)
		if (signedEvent{E: e, S: se.S}).verify(pub) {
			t.Fatalf("%s: verifies with event byte %d flipped", name, i)
		}
	}
	for i := range 8 * len(se.S) {
		s := bytes.Clone(se.S)
		s[i/8] ^= 1 << (i % 8)
		if (signedEvent{E: se.E, S: s}).verify(pub) {
			t.Fatalf("%s: verifies with signature bit %d flipped", name, i)
		}
	}
	if (signedEvent{E: se.E, S: se.S}).verify(pub[:31]) {
		t.Fatalf("%s: verifies with a short key", name)
	}
}

// TestVectorsGroupRefused: each refused event is well formed and signed,
// and roster.apply refuses it on the state after the named event, leaving
// the roster unchanged.
func TestVectorsGroupRefused(t *testing.T) {
	f := gvLoad(t)
	c := newGVCtx(t, f.Members, f.GroupID)
	for _, v := range f.Refused {
		se := gvCheckSigned(t, c, v)
		ev, err := parseEvent(se)
		if err != nil {
			t.Fatalf("%s: %v", v.Name, err)
		}
		var r roster
		if v.After != "" {
			found := false
			for _, e := range f.Events {
				pe, err := parseEvent(signedEvent{E: []byte(e.Event), S: gvUnhex(t, e.Signature)})
				if err != nil {
					t.Fatal(err)
				}
				if err := r.apply(pe); err != nil {
					t.Fatal(err)
				}
				if e.Name == v.After {
					found = true
					break
				}
			}
			if !found {
				t.Fatalf("%s: no event %q", v.Name, v.After)
			}
		}
		before, _ := json.Marshal(r)
		if err := r.apply(ev); !errors.Is(err, errBadEvent) {
			t.Fatalf("%s (%s): apply gave %v", v.Name, v.Why, err)
		}
		if after, _ := json.Marshal(r); !bytes.Equal(before, after) {
			t.Fatalf("%s: a refused event changed the roster", v.Name)
		}
	}
}

// TestVectorsGroupMalformed: parseEvent refuses each.
func TestVectorsGroupMalformed(t *testing.T) {
	for _, v := range gvLoad(t).Malformed {
		se := signedEvent{E: []byte(v.Event), S: make([]byte, v.SigLen)}
		if _, err := parseEvent(se); !errors.Is(err, errBadEvent) {
			t.Fatalf("%s: parseEvent gave %v", v.Name, err)
		}
	}
}

// TestVectorsGroupWrappers rebuilds each wrapper with encode, decodes the
// committed bytes with decodeGroupWire and encodes them back.
func TestVectorsGroupWrappers(t *testing.T) {
	f := gvLoad(t)
	c := newGVCtx(t, f.Members, f.GroupID)
	for _, e := range f.Events {
		c.events[e.Name] = e
	}
	for _, v := range f.Wrappers {
		b, err := c.wire(v.Input).encode()
		if err != nil {
			t.Fatalf("%s: %v", v.Name, err)
		}
		if string(b) != v.Wire {
			t.Fatalf("%s:\n got %s\nwant %s", v.Name, b, v.Wire)
		}
		c.wires[v.Name] = v
		w, err := decodeGroupWire([]byte(v.Wire))
		if err != nil {
			t.Fatalf("%s: %v", v.Name, err)
		}
		if w.T != v.Input.T || gvHex(w.Group[:]) != f.GroupID {
			t.Fatalf("%s: decoded as %q", v.Name, w.T)
		}
		again, err := w.encode()
		if err != nil || string(again) != v.Wire {
			t.Fatalf("%s: does not encode back: %v", v.Name, err)
		}
		// Only inv, fwd and via are refused inside fwd/via.
		_, err = parseGroupWire([]byte(v.Wire[1:]), true)
		if outerOnly := v.Input.T == wInv || v.Input.T == wFwd || v.Input.T == wVia; outerOnly != (err != nil) {
			t.Fatalf("%s: as an inner wrapper: %v", v.Name, err)
		}
		if len(w.Inner) > 0 {
			if _, err := parseGroupWire(w.Inner, true); err != nil {
				t.Fatalf("%s: inner: %v", v.Name, err)
			}
		}
		if w.Ev != nil {
			if _, err := parseEvent(*w.Ev); err != nil {
				t.Fatalf("%s: event: %v", v.Name, err)
			}
		}
		if w.Desc != nil {
			if _, err := files.UnmarshalDescription(w.Desc); err != nil {
				t.Fatalf("%s: description: %v", v.Name, err)
			}
		}
		// Without its type byte, or with another, it is no wrapper.
		for _, bad := range [][]byte{[]byte(v.Wire[1:]), append([]byte{'t'}, v.Wire[1:]...)} {
			if _, err := decodeGroupWire(bad); !errors.Is(err, ErrInvalid) {
				t.Fatalf("%s: decoded without 'g'", v.Name)
			}
		}
	}
}

// TestVectorsGroupJoinInfo parses each handshake info and encodes it back.
func TestVectorsGroupJoinInfo(t *testing.T) {
	f := gvLoad(t)
	c := newGVCtx(t, f.Members, f.GroupID)
	for _, v := range f.JoinInfo {
		ji, err := parseJoinInfo([]byte(v.Info))
		if err != nil {
			t.Fatalf("%s: %v", v.Name, err)
		}
		if ji.ID != c.id(v.ID) || gvHex(ji.Group[:]) != f.GroupID || (ji.Member != nil) != (v.Member != nil) {
			t.Fatalf("%s: decoded %+v", v.Name, ji)
		}
		if b, err := json.Marshal(ji); err != nil || string(b) != v.Info {
			t.Fatalf("%s: encodes as %s (%v)", v.Name, b, err)
		}
	}
}

// TestVectorsChatBodies decodes the 't' and 'f' bodies.
func TestVectorsChatBodies(t *testing.T) {
	for _, v := range gvLoad(t).Bodies {
		b := gvUnhex(t, v.Hex)
		if string(b) != v.Body {
			t.Fatalf("%s: hex and text differ", v.Name)
		}
		switch v.Name {
		case "text":
			s, err := decodeText(b)
			if err != nil || string(encodeText(s)) != v.Body {
				t.Fatalf("text: %q %v", s, err)
			}
			if _, err := decodeFile(b); err == nil {
				t.Fatal("text decodes as a file")
			}
		case "file":
			fb, err := decodeFile(b)
			if err != nil {
				t.Fatalf("file: %v", err)
			}
			if again, _ := json.Marshal(fb); string(append([]byte{bodyFile}, again...)) != v.Body {
				t.Fatal("file body does not encode back")
			}
			if _, err := decodeText(b); err == nil {
				t.Fatal("file decodes as a text")
			}
		case "contact_handshake_info":
			if pi := parsePeerInfo(b); pi.Name != "Alice" {
				t.Fatalf("peer info %+v", pi)
			}
		default:
			t.Fatalf("unknown body %q", v.Name)
		}
	}
}

// TestSpecMemberSecurityCode checks the member code vector and the
// code's shape.
func TestSpecMemberSecurityCode(t *testing.T) {
	f := gvLoad(t)
	c := newGVCtx(t, f.Members, f.GroupID)
	d, code := gvMemberCode(t, c, f.MemberCode)
	if d != f.MemberCode.Digest || code != f.MemberCode.Code {
		t.Fatalf("member code %s %q", d, code)
	}
	// Symmetric: the same on both devices.
	swapped := f.MemberCode
	swapped.A, swapped.B = swapped.B, swapped.A
	if _, again := gvMemberCode(t, c, swapped); again != code {
		t.Fatal("the member code depends on the order of the members")
	}
	groups := strings.Fields(code)
	if len(groups) != 12 {
		t.Fatalf("%d groups", len(groups))
	}
	for i, g := range groups {
		n, err := strconv.Atoi(g)
		if err != nil || len(g) != 5 || n > 65535 || fmt.Sprintf("%05d", int(gvUnhex(t, d)[2*i])<<8|int(gvUnhex(t, d)[2*i+1])) != g {
			t.Fatalf("group %d: %q", i, g)
		}
	}
}

// TestSpecLimits: the file's limits (and the largest event each wrapper
// carries in one agent message) are the code's.
func TestSpecLimits(t *testing.T) {
	f := gvLoad(t)
	if now := gvLimitsNow(t); now != f.Limits {
		t.Fatalf("limits %+v, the file says %+v", now, f.Limits)
	}
}

// gvCorpus lists the seed corpora: fuzz target → file name → values.
func gvCorpus(t testing.TB) map[string]map[string][]any {
	f := gvBuild(t)
	out := map[string]map[string][]any{
		"FuzzDecodeGroupWire": {}, "FuzzParseGroupWire": {}, "FuzzParseEvent": {},
		"FuzzParseJoinInfo": {}, "FuzzRoster": {},
	}
	flip := func(b []byte, i int) []byte {
		c := bytes.Clone(b)
		if len(c) > 0 {
			c[i%len(c)] ^= 1 << (i % 8)
		}
		return c
	}
	// Wrappers: every vector, each truncated, flipped, and an oversized one.
	dw, pw := out["FuzzDecodeGroupWire"], out["FuzzParseGroupWire"]
	dw["empty"] = []any{[]byte{}}
	dw["g_only"] = []any{[]byte("g")}
	for _, w := range f.Wrappers {
		b := []byte(w.Wire)
		dw[w.Name] = []any{b}
		dw[w.Name+"_truncated"] = []any{b[:len(b)/2]}
		dw[w.Name+"_flipped"] = []any{flip(b, len(b)/3)}
		pw[w.Name+"_inner"] = []any{b[1:], true}
		pw[w.Name] = []any{b[1:], false}
	}
	big := []byte(f.Wrappers[1].Wire)
	big = append(big[:len(big)-1], []byte(`,"desc":"`+strings.Repeat("A", agent.MaxBody)+`"}`)...)
	dw["oversized"] = []any{big}
	dw["trailing_brace"] = []any{[]byte(f.Wrappers[4].Wire + "}")}
	pw["empty"] = []any{[]byte{}, false}
	pw["null_inner"] = []any{[]byte("null"), true}
	pw["fwd_in_fwd"] = []any{[]byte(`{"t":"fwd","group":"` + f.GroupID + `","to":"` + f.Members[2].ID + `","inner":` + f.Wrappers[5].Wire[1:] + `}`), true}
	// Events: every vector, refused and malformed one, truncated, flipped.
	pe := out["FuzzParseEvent"]
	for _, list := range [][]gvEvent{f.Events, f.Refused} {
		for _, e := range list {
			b, s := []byte(e.Event), gvUnhexT(e.Signature)
			pe[e.Name] = []any{b, s}
			pe[e.Name+"_truncated"] = []any{b[:len(b)-2], s}
			pe[e.Name+"_flipped"] = []any{flip(b, len(b)/2), flip(s, 5)}
		}
	}
	for _, m := range f.Malformed {
		pe["malformed_"+m.Name] = []any{[]byte(m.Event), make([]byte, m.SigLen)}
	}
	pe["empty"] = []any{[]byte{}, []byte{}}
	// Join infos.
	pj := out["FuzzParseJoinInfo"]
	pj["empty"] = []any{[]byte{}}
	pj["null"] = []any{[]byte("null")}
	for _, j := range f.JoinInfo {
		b := []byte(j.Info)
		pj[j.Name] = []any{b}
		pj[j.Name+"_truncated"] = []any{b[:len(b)/2]}
		pj[j.Name+"_flipped"] = []any{flip(b, len(b)/2)}
	}
	long := []byte(f.JoinInfo[1].Info)
	long = append(long[:len(long)-2], []byte(`,"avatar":"`+strings.Repeat("A", 4*(MaxAvatarBytes/3+2))+`"}}`)...)
	pj["oversized_avatar"] = []any{long}
	// Roster programs (see FuzzRoster).
	pr := out["FuzzRoster"]
	pr["empty"] = []any{[]byte{}}
	for name, prog := range gzRosterSeeds() {
		pr[name] = []any{prog}
	}
	return out
}

func gvUnhexT(s string) []byte { b, _ := hex.DecodeString(s); return b }

// gvCorpusFile is a value list in the fuzzing engine's corpus format.
func gvCorpusFile(vals []any) []byte {
	var b strings.Builder
	b.WriteString("go test fuzz v1\n")
	for _, v := range vals {
		switch x := v.(type) {
		case []byte:
			fmt.Fprintf(&b, "[]byte(%s)\n", strconv.Quote(string(x)))
		case bool:
			fmt.Fprintf(&b, "bool(%t)\n", x)
		default:
			panic(fmt.Sprintf("corpus value %T", v))
		}
	}
	return []byte(b.String())
}

func gvWriteCorpus(t testing.TB) {
	for target, entries := range gvCorpus(t) {
		dir := filepath.Join("testdata", "fuzz", target)
		if err := os.MkdirAll(dir, 0o755); err != nil {
			t.Fatal(err)
		}
		for name, vals := range entries {
			if err := os.WriteFile(filepath.Join(dir, "seed_"+name), gvCorpusFile(vals), 0o644); err != nil {
				t.Fatal(err)
			}
		}
	}
}

// gvCheckCorpus: the committed seed files are the generated ones (the
// fuzzing engine may have added others beside them).
func gvCheckCorpus(t *testing.T) {
	for target, entries := range gvCorpus(t) {
		for name, vals := range entries {
			path := filepath.Join("testdata", "fuzz", target, "seed_"+name)
			b, err := os.ReadFile(path)
			if err != nil {
				t.Fatalf("%v (generate with -args -update-group-vectors)", err)
			}
			if !bytes.Equal(b, gvCorpusFile(vals)) {
				t.Fatalf("%s differs from the generated seed", path)
			}
		}
	}
}
