package chat

import (
	"bytes"
	"crypto/ed25519"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"strings"
	"unicode/utf8"

	"github.com/wisp-chat/wisp/wasm/agent"
	"github.com/wisp-chat/wisp/wasm/files"
)

// Group events (see SPEC.md, "Groups"): every change of a group and every
// group message is an event signed by its author's member key, so a member
// who forwards it can neither forge nor alter it, and every member checks
// the same role rules on the same events.

// Group limits.
const (
	// MaxGroupMembers is the most members a group can have, the owner
	// included; adding one more is refused (ErrGroupFull).
	MaxGroupMembers = 100
	// MaxGroupName is the longest group name, in UTF-8 bytes.
	MaxGroupName = 64
	// MaxGroupDescription is the longest group description, in UTF-8 bytes.
	MaxGroupDescription = 1000
	// maxEventBytes bounds one signed event (it travels inside one agent
	// message with its wrapper).
	maxEventBytes = 12 << 10
	// groupIDSize and memberIDSize are the random IDs' lengths.
	groupIDSize  = 16
	memberIDSize = 16
)

// Errors callers branch on.
var (
	ErrGroupFull   = errors.New("the group has the most members it can have")
	ErrNotAllowed  = errors.New("your role in the group does not allow this")
	ErrNoGroup     = errors.New("no such group")
	ErrNoMember    = errors.New("no such member")
	ErrGroupClosed = errors.New("you are no longer a member of this group")
	// errBadEvent: a received event that is not well formed, not signed by
	// its author, or against the role rules. It is dropped and reported.
	errBadEvent = errors.New("group event refused")
)

// Role is a member's role in a group, from the most rights to the least.
type Role string

// Roles.
const (
	RoleOwner    Role = "owner"
	RoleAdmin    Role = "admin"
	RoleMember   Role = "member"
	RoleObserver Role = "observer"
)

func (r Role) rank() int {
	switch r {
	case RoleOwner:
		return 4
	case RoleAdmin:
		return 3
	case RoleMember:
		return 2
	case RoleObserver:
		return 1
	}
	return 0
}

// withArticle is "an owner", "a member", ...
func (r Role) withArticle() string {
	if r == RoleOwner || r == RoleAdmin || r == RoleObserver {
		return "an " + string(r)
	}
	return "a " + string(r)
}

// Valid reports whether r is one of the four roles.
func (r Role) Valid() bool { return r.rank() > 0 }

// Event kinds.
const (
	evCreate  = "create"  // the group's first event, by its owner
	evAdd     = "add"     // an owner or admin adds a member
	evJoined  = "joined"  // a new member's first event: it holds its key
	evMsg     = "msg"     // a text message
	evFile    = "file"    // a file message
	evRole    = "role"    // a member's role changes
	evRemove  = "remove"  // a member is removed
	evLeave   = "leave"   // the author leaves
	evProfile = "profile" // the group profile changes (owners)
	evDelete  = "delete"  // the group is deleted for everyone (owners)
)

// memberID is a member's random ID in one group.
type memberID [memberIDSize]byte

func (m memberID) String() string { return hex.EncodeToString(m[:]) }

// MarshalText and UnmarshalText make member IDs hex in JSON (also as map keys).
func (m memberID) MarshalText() ([]byte, error) { return []byte(m.String()), nil }

func (m *memberID) UnmarshalText(b []byte) error {
	if len(b) != 2*memberIDSize {
		return fmt.Errorf("%w: member ID", ErrInvalid)
	}
	_, err := hex.Decode(m[:], b)
	return err
}

// groupID is a group's ID: see groupIDFor.
type groupID [groupIDSize]byte

func (g groupID) MarshalText() ([]byte, error) { return []byte(hex.EncodeToString(g[:])), nil }

func (g *groupID) UnmarshalText(b []byte) error {
	if len(b) != 2*groupIDSize {
		return fmt.Errorf("%w: group ID", ErrInvalid)
	}
	_, err := hex.Decode(g[:], b)
	return err
}

// groupIDFor binds a group's ID to its creator's member key, so nobody
// else can make a create event for the same ID.
func groupIDFor(creatorKey ed25519.PublicKey, salt []byte) groupID {
	h := sha256.New()
	h.Write([]byte("wisp/v1/group-id"))
	h.Write(creatorKey)
	h.Write(salt)
	return groupID(h.Sum(nil)[:groupIDSize])
}

// GroupProfile is what members see of a group.
type GroupProfile struct {
	Name        string `json:"name"`
	Description string `json:"description,omitempty"`
	Picture     []byte `json:"picture,omitempty"`
}

func (g *GroupProfile) validate() error {
	name, err := cleanName(g.Name)
	if err != nil || len(name) > MaxGroupName {
		return fmt.Errorf("%w: group name", ErrInvalid)
	}
	g.Name = name
	if len(g.Description) > MaxGroupDescription || !utf8.ValidString(g.Description) {
		return fmt.Errorf("%w: group description", ErrTooLong)
	}
	if len(g.Picture) > MaxAvatarBytes {
		return fmt.Errorf("%w: group picture of %d bytes, the limit is %d", ErrTooLong, len(g.Picture), MaxAvatarBytes)
	}
	return nil
}

// memberInfo introduces a member: ID, key, role and the profile it chose
// for this group.
type memberInfo struct {
	ID     memberID `json:"id"`
	Key    []byte   `json:"key"` // Ed25519 public key
	Role   Role     `json:"role"`
	Name   string   `json:"name"`
	Avatar []byte   `json:"avatar,omitempty"`
}

func (m *memberInfo) validate() error {
	if m.ID == (memberID{}) || len(m.Key) != ed25519.PublicKeySize || !m.Role.Valid() {
		return fmt.Errorf("%w: member key or role", ErrInvalid)
	}
	name, err := cleanName(m.Name)
	if err != nil {
		return err
	}
	m.Name = name
	if len(m.Avatar) > MaxAvatarBytes {
		return fmt.Errorf("%w: member picture", ErrTooLong)
	}
	return nil
}

// groupFile is a file message's signed part: what every member sees and
// the digest its download must have. Each member's download description
// travels beside the event (it names that member's chunk IDs).
type groupFile struct {
	Name   string `json:"name"`
	Type   string `json:"type"`
	Size   int64  `json:"size"`
	Thumb  []byte `json:"thumb,omitempty"`
	Digest []byte `json:"digest"` // the file's digest, as in its description (files.Description.Digest)
}

// groupEvent is the signed content of an event. Its JSON bytes, exactly as
// signed, travel and are stored; they are never re-encoded.
type groupEvent struct {
	V      int      `json:"v"` // 1
	Group  groupID  `json:"group"`
	Author memberID `json:"author"`
	Seq    uint64   `json:"seq"`  // per author, from 1, no gaps
	Time   int64    `json:"time"` // the author's clock, Unix ms
	Kind   string   `json:"kind"`

	Salt    []byte        `json:"salt,omitempty"`    // create: see groupIDFor
	Profile *GroupProfile `json:"profile,omitempty"` // create, profile
	Member  *memberInfo   `json:"member,omitempty"`  // create (the owner), add (the new member)
	Target  *memberID     `json:"target,omitempty"`  // role, remove
	Role    Role          `json:"role,omitempty"`    // role
	Text    string        `json:"text,omitempty"`    // msg
	File    *groupFile    `json:"file,omitempty"`    // file
	// Reply quotes a message by its author and seq (msg, file).
	Reply *eventRef `json:"reply,omitempty"`
}

// eventRef names one event.
type eventRef struct {
	Author memberID `json:"author"`
	Seq    uint64   `json:"seq"`
}

// signedEvent is an event as it travels: its bytes and the author's
// signature over eventSigPrefix || E.
type signedEvent struct {
	E []byte `json:"e"`
	S []byte `json:"s"`
}

const eventSigPrefix = "wisp/v1/group-event\x00"

// signEvent encodes and signs ev.
func signEvent(key ed25519.PrivateKey, ev *groupEvent) (signedEvent, error) {
	b, err := json.Marshal(ev)
	if err != nil {
		return signedEvent{}, err
	}
	if len(b) > maxEventBytes {
		return signedEvent{}, fmt.Errorf("%w: the group event is %d bytes, the limit is %d", ErrTooLong, len(b), maxEventBytes)
	}
	return signedEvent{E: b, S: ed25519.Sign(key, append([]byte(eventSigPrefix), b...))}, nil
}

// checkFits reports ErrTooLong when a signed event (with the largest of
// the download descriptions that travel beside it) would not fit one
// agent message in the largest wrapper it may travel in: a live event
// with its Start, forwarded by an introducer.
func checkFits(g groupID, se signedEvent, desc []byte) error {
	to := memberID{}
	inner, err := json.Marshal(&groupWire{T: wEv, Group: g, Ev: &se, Start: math.MaxUint64, Desc: desc})
	if err != nil {
		return err
	}
	b, err := (&groupWire{T: wFwd, Group: g, To: &to, Sender: &to, Inner: inner}).encode()
	if err != nil {
		return err
	}
	if len(b) > agent.MaxBody {
		return fmt.Errorf("%w: this does not fit one group message (%d bytes, the limit is %d); make it shorter", ErrTooLong, len(b), agent.MaxBody)
	}
	return nil
}

// parseEvent decodes a signed event's content and checks it is well formed
// for its kind; the signature is checked by verify, once the author's key
// is known.
func parseEvent(se signedEvent) (*groupEvent, error) {
	if len(se.E) == 0 || len(se.E) > maxEventBytes || len(se.S) != ed25519.SignatureSize {
		return nil, fmt.Errorf("%w: size", errBadEvent)
	}
	var ev groupEvent
	d := json.NewDecoder(bytes.NewReader(se.E))
	d.DisallowUnknownFields()
	if err := d.Decode(&ev); err != nil {
		return nil, fmt.Errorf("%w: %w", errBadEvent, err)
	}
	// One encoding only: the bytes must be exactly what encoding/json
	// makes of what they decode to (no case-folded or repeated keys, no
	// trailing data, lowercase hex, valid UTF-8), so every implementation
	// reads the same event from the same signed bytes.
	if canon, err := json.Marshal(&ev); err != nil || !bytes.Equal(canon, se.E) {
		return nil, fmt.Errorf("%w: not in canonical form", errBadEvent)
	}
	if ev.V != 1 || ev.Seq == 0 {
		return nil, fmt.Errorf("%w: version or sequence", errBadEvent)
	}
	var err error
	switch ev.Kind {
	case evCreate:
		if ev.Profile == nil || ev.Member == nil || len(ev.Salt) != 16 || ev.Seq != 1 || ev.Member.ID != ev.Author || ev.Member.Role != RoleOwner {
			return nil, fmt.Errorf("%w: create", errBadEvent)
		}
		if err = ev.Profile.validate(); err == nil {
			err = ev.Member.validate()
		}
	case evAdd:
		if ev.Member == nil {
			return nil, fmt.Errorf("%w: add", errBadEvent)
		}
		err = ev.Member.validate()
	case evJoined, evLeave, evDelete:
	case evMsg:
		if strings.TrimSpace(ev.Text) == "" || len(ev.Text) > MaxTextBytes || !utf8.ValidString(ev.Text) {
			return nil, fmt.Errorf("%w: text", errBadEvent)
		}
	case evFile:
		if ev.File == nil || len(ev.File.Digest) != files.DigestSize {
			return nil, fmt.Errorf("%w: file", errBadEvent)
		}
		err = (&fileBody{Name: ev.File.Name, Type: ev.File.Type, Size: ev.File.Size, Thumb: ev.File.Thumb}).validate()
	case evRole:
		if ev.Target == nil || !ev.Role.Valid() {
			return nil, fmt.Errorf("%w: role", errBadEvent)
		}
	case evRemove:
		if ev.Target == nil {
			return nil, fmt.Errorf("%w: remove", errBadEvent)
		}
	case evProfile:
		if ev.Profile == nil {
			return nil, fmt.Errorf("%w: profile", errBadEvent)
		}
		err = ev.Profile.validate()
	default:
		return nil, fmt.Errorf("%w: unknown kind %q", errBadEvent, ev.Kind)
	}
	if err != nil {
		return nil, fmt.Errorf("%w: %w", errBadEvent, err)
	}
	return &ev, nil
}

// verify checks the author's signature.
func (se signedEvent) verify(key []byte) bool {
	return len(key) == ed25519.PublicKeySize && ed25519.Verify(key, append([]byte(eventSigPrefix), se.E...), se.S)
}

// memberStatus is where a member is in the group, as every member sees it
// from the signed events.
type memberStatus string

const (
	memberAdded   memberStatus = "added"   // an add event, no joined event yet
	memberJoined  memberStatus = "joined"  // its joined event was applied
	memberRemoved memberStatus = "removed" // a remove event
	memberLeft    memberStatus = "left"    // its leave event
)

// roster is the part of a group's state every member derives from the
// signed events alone: the profile, members, keys and roles. apply is the
// rulebook every client checks.
type roster struct {
	ID      groupID                  `json:"id"`
	Profile GroupProfile             `json:"profile"`
	Members map[memberID]*rosterItem `json:"members"`
	Deleted bool                     `json:"deleted,omitempty"`
}

type rosterItem struct {
	memberInfo
	Status  memberStatus `json:"status"`
	AddedBy memberID     `json:"added_by"`
}

func (r *rosterItem) active() bool { return r.Status == memberAdded || r.Status == memberJoined }

// activeCount is the number of members not removed and not gone.
func (r *roster) activeCount() int {
	n := 0
	for _, m := range r.Members {
		if m.active() {
			n++
		}
	}
	return n
}

// check tells whether ev (already parsed and signature-checked) is allowed
// by the rules, without changing r.
func (r *roster) check(ev *groupEvent) error {
	if ev.Kind == evCreate {
		if r.Members != nil {
			return fmt.Errorf("%w: a second create event", errBadEvent)
		}
		if groupIDFor(ev.Member.Key, ev.Salt) != ev.Group {
			return fmt.Errorf("%w: the group ID does not belong to the creator's key", errBadEvent)
		}
		return nil
	}
	if r.Members == nil || ev.Group != r.ID {
		return fmt.Errorf("%w: not this group", errBadEvent)
	}
	if r.Deleted {
		return fmt.Errorf("%w: the group was deleted", errBadEvent)
	}
	a := r.Members[ev.Author]
	if a == nil || !a.active() {
		return fmt.Errorf("%w: the author is not a member", errBadEvent)
	}
	if ev.Kind == evJoined {
		if a.Status != memberAdded {
			return fmt.Errorf("%w: joined twice", errBadEvent)
		}
		return nil
	}
	target := func() (*rosterItem, error) {
		t := r.Members[*ev.Target]
		if t == nil || !t.active() {
			return nil, fmt.Errorf("%w: the target is not a member", errBadEvent)
		}
		if *ev.Target == ev.Author {
			return nil, fmt.Errorf("%w: the target is the author", errBadEvent)
		}
		// Owners act on anyone; admins on members and observers.
		if t.Role.rank() > a.Role.rank() || (t.Role == RoleAdmin && a.Role == RoleAdmin) {
			return nil, fmt.Errorf("%w: %s cannot act on %s", errBadEvent, a.Role.withArticle(), t.Role.withArticle())
		}
		return t, nil
	}
	switch ev.Kind {
	case evAdd:
		if a.Role.rank() < RoleAdmin.rank() || ev.Member.Role.rank() > a.Role.rank() {
			return fmt.Errorf("%w: %s cannot add %s", errBadEvent, a.Role.withArticle(), ev.Member.Role.withArticle())
		}
		if r.Members[ev.Member.ID] != nil {
			return fmt.Errorf("%w: the member ID is taken", errBadEvent)
		}
		if r.activeCount() >= MaxGroupMembers {
			return fmt.Errorf("%w: %w", errBadEvent, ErrGroupFull)
		}
	case evMsg, evFile:
		if a.Role.rank() < RoleMember.rank() {
			return fmt.Errorf("%w: an observer cannot post", errBadEvent)
		}
	case evRole:
		if a.Role.rank() < RoleAdmin.rank() || ev.Role.rank() > a.Role.rank() {
			return fmt.Errorf("%w: %s cannot give the role %s", errBadEvent, a.Role.withArticle(), ev.Role)
		}
		if _, err := target(); err != nil {
			return err
		}
	case evRemove:
		if a.Role.rank() < RoleAdmin.rank() {
			return fmt.Errorf("%w: %s cannot remove members", errBadEvent, a.Role.withArticle())
		}
		if _, err := target(); err != nil {
			return err
		}
	case evProfile, evDelete:
		if a.Role != RoleOwner {
			return fmt.Errorf("%w: only owners change the group", errBadEvent)
		}
	case evLeave:
	}
	return nil
}

// apply checks ev and changes r.
func (r *roster) apply(ev *groupEvent) error {
	if err := r.check(ev); err != nil {
		return err
	}
	switch ev.Kind {
	case evCreate:
		r.ID, r.Profile = ev.Group, *ev.Profile
		r.Members = map[memberID]*rosterItem{ev.Author: {memberInfo: *ev.Member, Status: memberJoined, AddedBy: ev.Author}}
	case evAdd:
		r.Members[ev.Member.ID] = &rosterItem{memberInfo: *ev.Member, Status: memberAdded, AddedBy: ev.Author}
	case evJoined:
		r.Members[ev.Author].Status = memberJoined
	case evRole:
		r.Members[*ev.Target].Role = ev.Role
	case evRemove:
		r.Members[*ev.Target].Status = memberRemoved
	case evLeave:
		r.Members[ev.Author].Status = memberLeft
	case evProfile:
		r.Profile = *ev.Profile
	case evDelete:
		r.Deleted = true
	}
	return nil
}

// changes reports whether events of this kind change the roster (they are
// kept in the group log and sent to newcomers).
func changes(kind string) bool { return kind != evMsg && kind != evFile }
