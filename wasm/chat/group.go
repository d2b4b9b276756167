package chat

import (
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"crypto/sha256"
	"errors"
	"fmt"
	"slices"
	"sort"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/wisp-chat/wisp/wasm/agent"
	"github.com/wisp-chat/wisp/wasm/store"
)

// Groups (SPEC.md, "Groups"). A group exists only in its members'
// browsers: every pair of members has its own agent connection (its own
// queues and ratchet), and every change and message is an event signed by
// its author's group-scoped member key. In the chat list a group is an
// entry like a contact (Contact.Group is set); its messages are read with
// Messages like a contact's.
//
//	g, err := p.CreateGroup(ctx, chat.GroupProfile{Name: "Team"}, false)
//	err = p.InviteToGroup(ctx, g.ID, contactID, chat.RoleMember)
//	// the contact's side: an invitation entry (GroupInvited) to Join or Decline
//	err = q.JoinGroup(ctx, entryID)
//	msg, err := p.SendGroupText(ctx, g.ID, "hello all")
//	members, err := p.Members(g.ID)

// GroupState is where we are in a group.
type GroupState string

// Group states.
const (
	GroupInvited GroupState = "invited" // a contact invited us: Join or Decline
	GroupJoining GroupState = "joining" // joined, waiting for the group's history
	GroupActive  GroupState = "active"
	GroupRemoved GroupState = "removed" // an admin removed us
	GroupLeft    GroupState = "left"    // we left
	GroupDeleted GroupState = "deleted" // an owner deleted the group
)

// Group describes a group for the UI.
type Group struct {
	Profile   GroupProfile `json:"profile"`
	State     GroupState   `json:"state"`
	Role      Role         `json:"role,omitempty"`      // ours
	Members   int          `json:"members"`             // current members, us included
	Incognito string       `json:"incognito,omitempty"` // our random name in this group
	InvitedBy string       `json:"invited_by,omitempty"`
}

// Member is a group member as the UI shows it.
type Member struct {
	ID     string `json:"id"`
	Name   string `json:"name"`
	Avatar []byte `json:"avatar,omitempty"`
	Role   Role   `json:"role"`
	// Status: "invited" (added, not joined yet), "joined", "removed", "left".
	Status string `json:"status"`
	// Connection: "self", "connected", "connecting" (pairwise connection
	// under way; events are forwarded by the member who introduced you).
	Connection string `json:"connection"`
	Verified   bool   `json:"verified,omitempty"`
	AddedBy    string `json:"added_by,omitempty"` // the name of who added them
}

// groupRecord is our state of one group, in c/<id>/group.
type groupRecord struct {
	State  GroupState `json:"state"`
	Roster roster     `json:"roster"`
	Me     memberID   `json:"me"`
	Seed   []byte     `json:"seed,omitempty"` // our member key (Ed25519 seed)
	Next   uint64     `json:"next"`           // our next event's seq
	// Incognito is our random name in this group ("" = main profile).
	Incognito string                  `json:"incognito,omitempty"`
	Peers     map[memberID]*peerState `json:"peers"`
	// Invitation we received and have not answered (GroupInvited).
	Invitation *groupWire `json:"invitation,omitempty"`
	InvitedBy  string     `json:"invited_by,omitempty"` // contact ID
	// Invites we made and nobody joined yet: agent connection → invitee.
	Invites map[agent.ConnID]pendingInvite `json:"invites,omitempty"`
	Adder   memberID                       `json:"adder"` // who added us (us, for the creator)
	// QNext numbers the send queue; Applied numbers applied events (the
	// order a newcomer's history is sent in).
	QNext   uint64 `json:"qnext"`
	Applied uint64 `json:"applied"`
	// Cancel: our invitations to delete (the group ended for us).
	Cancel []agent.ConnID `json:"cancel,omitempty"`
}

type pendingInvite struct {
	Contact string `json:"contact"`
	Role    Role   `json:"role"`
}

// peerState is our side of the pair with one other member.
type peerState struct {
	Conn agent.ConnID `json:"conn,omitempty"`
	// Link: "" (no connection), "invited" (we made its invitation),
	// "joined" (we joined theirs: we can send), "accepted" (they joined
	// ours: we can send), "connected".
	Link string   `json:"link,omitempty"`
	Via  memberID `json:"via"` // who forwards for us until the pair is connected
	// Start is our first event seq routed to them; Expect is the next seq
	// we expect from them (0: not known yet).
	Start    uint64 `json:"start"`
	Expect   uint64 `json:"expect"`
	Verified bool   `json:"verified,omitempty"`
	// MakeLink: an introduction asks us for a one-time link for them.
	// JoinLink: their one-time link, to join. Drop: delete the connection
	// once what we queued for it is out.
	MakeLink bool   `json:"make_link,omitempty"`
	JoinLink string `json:"join_link,omitempty"`
	Drop     bool   `json:"drop,omitempty"`
	Dropped  bool   `json:"dropped,omitempty"`
	// IntroBy: who asked us (MakeLink) for the link. Buffered counts the
	// events of theirs kept out of order; Asked is the Expect we last
	// asked the gap before for.
	IntroBy  memberID `json:"intro_by"`
	IntroKey []byte   `json:"intro_key,omitempty"` // the key the introduction named
	Buffered int      `json:"buffered,omitempty"`
	Asked    uint64   `json:"asked,omitempty"`
}

// canSend reports whether our pairwise connection can carry messages now.
func (ps *peerState) canSend() bool {
	return ps != nil && ps.Conn != "" && !ps.Dropped && (ps.Link == "joined" || ps.Link == "accepted" || ps.Link == "connected")
}

func groupKey(id string) store.Key { return contactDir(id).Join("group") }
func logKey(id string, author memberID, seq uint64) store.Key {
	return contactDir(id).Join("ge", author.String(), fmt.Sprintf("%020d", seq))
}
func pendingEventKey(id string, author memberID, seq uint64) store.Key {
	return contactDir(id).Join("gp", author.String(), fmt.Sprintf("%020d", seq))
}
func gconnKey(conn agent.ConnID) store.Key { return store.Key("gc").Join(string(conn)) }

// groupConn tags an agent connection with the group and member it is for.
type groupConn struct {
	Group  string   `json:"group"`
	Member memberID `json:"member"` // zero while it is an invitation to a contact
}

// logEntry is one applied event, kept for sync and for newcomers.
type logEntry struct {
	signedEvent
	Pos   uint64 `json:"pos,omitempty"`  // its message's position, if shown
	Order uint64 `json:"order"`          // when it was applied here
	Desc  []byte `json:"desc,omitempty"` // a file event: our download description
}

func newMemberKey() (ed25519.PublicKey, ed25519.PrivateKey, error) {
	return ed25519.GenerateKey(rand.Reader)
}

// loadGroup reads a group record; p.mu must be held.
func (p *Profile) loadGroup(id string) (*groupRecord, error) {
	if !validContactID(id) {
		return nil, fmt.Errorf("%w: %q", ErrNoGroup, id)
	}
	var g groupRecord
	if err := getJSON(p.st, groupKey(id), &g); err != nil {
		if errors.Is(err, store.ErrNotFound) {
			return nil, fmt.Errorf("%w: %s", ErrNoGroup, id)
		}
		return nil, err
	}
	if g.Peers == nil {
		g.Peers = map[memberID]*peerState{}
	}
	return &g, nil
}

func (p *Profile) saveGroup(id string, g *groupRecord) error { return putJSON(p.st, groupKey(id), g) }

// summary is the group as the chat list shows it.
func (g *groupRecord) summary(p *Profile) *Group {
	s := &Group{Profile: g.Roster.Profile, State: g.State, Incognito: g.Incognito, Members: g.Roster.activeCount()}
	if g.Roster.Members == nil && g.Invitation != nil && g.Invitation.Profile != nil {
		s.Profile = *g.Invitation.Profile
	}
	if me := g.Roster.Members[g.Me]; me != nil {
		s.Role = me.Role
	}
	if g.InvitedBy != "" {
		if c, err := p.contact(g.InvitedBy); err == nil {
			s.InvitedBy = c.Name
		}
	}
	return s
}

func (g *groupRecord) key() ed25519.PrivateKey { return ed25519.NewKeyFromSeed(g.Seed) }

func newMemberID() memberID {
	var m memberID
	if _, err := rand.Read(m[:]); err != nil {
		panic("chat: crypto/rand failed: " + err.Error()) // unreachable on supported platforms
	}
	return m
}

// newChatID is a local ID for a conversation (the form of agent.ConnID).
func newChatID() string { return randomHex(12) }

// ourMember is how we appear in a group: main profile or incognito.
func (p *Profile) ourMember(incognito bool) (name string, avatar []byte, alias string) {
	p.mu.Lock()
	name, avatar = p.rec.DisplayName, p.rec.Avatar
	p.mu.Unlock()
	if incognito {
		alias = incognitoName()
		return alias, nil, alias
	}
	return name, avatar, ""
}

// CreateGroup creates a group with us as its owner. With incognito we
// appear in it under a random name.
func (p *Profile) CreateGroup(ctx context.Context, prof GroupProfile, incognito bool) (Contact, error) {
	if err := prof.validate(); err != nil {
		return Contact{}, err
	}
	name, avatar, alias := p.ourMember(incognito)
	pub, priv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		return Contact{}, err
	}
	salt := make([]byte, 16)
	if _, err := rand.Read(salt); err != nil {
		return Contact{}, err
	}
	me := newMemberID()
	ev := &groupEvent{V: 1, Group: groupIDFor(pub, salt), Author: me, Seq: 1, Time: time.Now().UnixMilli(), Kind: evCreate,
		Salt: salt, Profile: &prof, Member: &memberInfo{ID: me, Key: pub, Role: RoleOwner, Name: name, Avatar: avatar}}
	se, err := signEvent(priv, ev)
	if err == nil {
		err = checkFits(ev.Group, se, nil)
	}
	if errors.Is(err, ErrTooLong) && avatar != nil {
		// Our picture and the group's do not fit one event: we go without ours.
		ev.Member.Avatar = nil
		if se, err = signEvent(priv, ev); err == nil {
			err = checkFits(ev.Group, se, nil)
		}
	}
	if err != nil {
		return Contact{}, err
	}
	g := &groupRecord{State: GroupActive, Me: me, Seed: priv.Seed(), Next: 2, Incognito: alias, Peers: map[memberID]*peerState{}, Adder: me}
	if err := g.Roster.apply(ev); err != nil {
		return Contact{}, err
	}
	id := newChatID()
	p.mu.Lock()
	defer p.mu.Unlock()
	if err := putJSON(p.st, logKey(id, me, 1), logEntry{signedEvent: se}); err != nil {
		return Contact{}, err
	}
	if err := p.saveGroup(id, g); err != nil {
		return Contact{}, err
	}
	if err := putJSON(p.st, groupIndexKey(ev.Group), id); err != nil {
		return Contact{}, err
	}
	c := Contact{ID: id, Name: prof.Name, PeerName: prof.Name, Avatar: prof.Picture, State: ContactConnected,
		Created: time.Now().UTC(), NextSeq: 1, Incognito: alias, Group: g.summary(p)}
	if err := p.saveContact(&c); err != nil {
		return Contact{}, err
	}
	p.listen(Event{Kind: "contact", Contact: &c})
	return c, nil
}

// GroupInfo returns a group's summary.
func (p *Profile) GroupInfo(id string) (Group, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	g, err := p.loadGroup(id)
	if err != nil {
		return Group{}, err
	}
	return *g.summary(p), nil
}

// Members lists a group's members (us first, then by name), removed and
// departed members included with their status.
func (p *Profile) Members(id string) ([]Member, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	g, err := p.loadGroup(id)
	if err != nil {
		return nil, err
	}
	out := make([]Member, 0, len(g.Roster.Members))
	for mid, m := range g.Roster.Members {
		mm := Member{ID: mid.String(), Name: m.Name, Avatar: m.Avatar, Role: m.Role, Status: string(m.Status)}
		if m.Status == memberAdded {
			mm.Status = "invited"
		}
		if a := g.Roster.Members[m.AddedBy]; a != nil && m.AddedBy != mid {
			mm.AddedBy = a.Name
		}
		switch ps := g.Peers[mid]; {
		case mid == g.Me:
			mm.Connection = "self"
		case ps != nil && ps.Link == "connected":
			mm.Connection = "connected"
			mm.Verified = ps.Verified
		default:
			mm.Connection = "connecting"
		}
		out = append(out, mm)
	}
	sort.Slice(out, func(i, j int) bool {
		if (out[i].Connection == "self") != (out[j].Connection == "self") {
			return out[i].Connection == "self"
		}
		if out[i].Name != out[j].Name {
			return out[i].Name < out[j].Name
		}
		return out[i].ID < out[j].ID
	})
	return out, nil
}

// parseMember reads a member ID from the UI.
func parseMember(s string) (memberID, error) {
	var m memberID
	if err := m.UnmarshalText([]byte(s)); err != nil {
		return m, fmt.Errorf("%w: %q", ErrNoMember, s)
	}
	return m, nil
}

// MemberSecurityCode returns the security code of our pairwise connection
// with a member: the same on both devices when nobody (the member who
// introduced you included) is in the middle.
func (p *Profile) MemberSecurityCode(id, member string) (string, error) {
	mid, err := parseMember(member)
	if err != nil {
		return "", err
	}
	p.mu.Lock()
	g, err := p.loadGroup(id)
	var conn agent.ConnID
	if err == nil {
		if ps := g.Peers[mid]; ps != nil && ps.Link == "connected" {
			conn = ps.Conn
		}
	}
	p.mu.Unlock()
	if err != nil {
		return "", err
	}
	if conn == "" {
		return "", fmt.Errorf("%w: not connected to this member yet", ErrInvalid)
	}
	info, err := p.ag.Connection(conn)
	if err != nil || info.SecurityCode == nil {
		return "", fmt.Errorf("%w: not connected to this member yet", ErrInvalid)
	}
	// Bind the code to the member's key too, so a substituted key shows.
	p.mu.Lock()
	m := g.Roster.Members[mid]
	p.mu.Unlock()
	h := sha256.New()
	h.Write(info.SecurityCode)
	keys := [][]byte{m.Key, g.key().Public().(ed25519.PublicKey)}
	slices.SortFunc(keys, func(a, b []byte) int { return strings.Compare(string(a), string(b)) })
	h.Write(keys[0])
	h.Write(keys[1])
	return FormatSecurityCode(h.Sum(nil)), nil
}

// VerifyMember marks a member verified (after comparing security codes).
func (p *Profile) VerifyMember(id, member string, verified bool) error {
	mid, err := parseMember(member)
	if err != nil {
		return err
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	g, err := p.loadGroup(id)
	if err != nil {
		return err
	}
	ps := g.Peers[mid]
	if ps == nil || ps.Link != "connected" {
		return fmt.Errorf("%w: not connected to this member yet", ErrInvalid)
	}
	ps.Verified = verified
	return p.saveGroup(id, g)
}

// checkText validates a message text.
func checkText(text string) error {
	switch {
	case strings.TrimSpace(text) == "":
		return fmt.Errorf("%w: the message is empty", ErrInvalid)
	case !utf8.ValidString(text):
		return fmt.Errorf("%w: the message is not valid text", ErrInvalid)
	case len(text) > MaxTextBytes:
		return fmt.Errorf("%w: the message is %d bytes, the limit is %d", ErrTooLong, len(text), MaxTextBytes)
	}
	return nil
}
