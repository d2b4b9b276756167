package chat

import (
	"bytes"
	"encoding/json"
	"fmt"
)

// bodyGroup starts a group wrapper inside an agent message: 'g' then the
// wrapper's JSON (SPEC.md, "Group wrappers").
const bodyGroup = 'g'

// Wrapper types.
const (
	wInv      = "inv"      // contact → contact: an invitation to a group
	wEv       = "ev"       // a signed event, live
	wHist     = "hist"     // a signed event of the group's past, for a newcomer or a catch-up
	wWelcome  = "welcome"  // adder → newcomer: the history is complete
	wFwd      = "fwd"      // member → its introducer: please pass Inner to To
	wVia      = "via"      // introducer → member: Inner, from Sender
	wIntro    = "intro"    // adder → member: connect with the newcomer New
	wIntroInv = "introinv" // member → adder: a one-time link for the newcomer For
	wIntroFwd = "introfwd" // adder → newcomer: Sender's one-time link
	wNeed     = "need"     // ask for Author's events after seq After
	wGot      = "got"      // member → a file's author: downloaded, its chunks may go
	wRcpt     = "rcpt"     // member → author: a post that came forwarded is stored here
)

// groupWire is one group wrapper. Which fields are set depends on T.
type groupWire struct {
	T     string  `json:"t"`
	Group groupID `json:"group"`

	Profile *GroupProfile `json:"profile,omitempty"` // inv
	From    *memberInfo   `json:"from,omitempty"`    // inv: the inviter
	Link    string        `json:"link,omitempty"`    // inv, introinv, introfwd
	Role    Role          `json:"role,omitempty"`    // inv: the role offered

	Ev    *signedEvent `json:"ev,omitempty"`    // ev, hist
	Start uint64       `json:"start,omitempty"` // ev from its author, welcome, introinv, introfwd: the sender's first seq for the receiver
	Desc  []byte       `json:"desc,omitempty"`  // ev of a file: the receiver's download description

	To     *memberID       `json:"to,omitempty"`     // fwd
	Sender *memberID       `json:"sender,omitempty"` // via, introfwd
	Inner  json.RawMessage `json:"inner,omitempty"`  // fwd, via: a wrapper (not fwd or via)

	New    *memberInfo `json:"new,omitempty"`    // intro
	For    *memberID   `json:"for,omitempty"`    // introinv
	Author *memberID   `json:"author,omitempty"` // need
	After  uint64      `json:"after,omitempty"`  // need
	// Hist (need): send Author's changes of the group after After as
	// history: a newcomer asks each member for the changes its adder may
	// not have had yet.
	Hist bool `json:"hist,omitempty"`
	// Ref (got, rcpt): the event.
	Ref *eventRef `json:"ref,omitempty"`
}

func (w *groupWire) encode() ([]byte, error) {
	b, err := json.Marshal(w)
	if err != nil {
		return nil, err
	}
	return append([]byte{bodyGroup}, b...), nil
}

// decodeGroupWire parses a wrapper and checks the fields its type needs.
func decodeGroupWire(b []byte) (*groupWire, error) {
	if len(b) < 2 || b[0] != bodyGroup {
		return nil, fmt.Errorf("%w: not a group message", ErrInvalid)
	}
	return parseGroupWire(b[1:], false)
}

func parseGroupWire(b []byte, inner bool) (*groupWire, error) {
	var w groupWire
	d := json.NewDecoder(bytes.NewReader(b))
	d.DisallowUnknownFields()
	if err := d.Decode(&w); err != nil {
		return nil, fmt.Errorf("%w: group message: %w", ErrInvalid, err)
	}
	if canon, err := json.Marshal(&w); err != nil || !bytes.Equal(canon, b) {
		return nil, fmt.Errorf("%w: group message not in canonical form", ErrInvalid)
	}
	bad := false
	switch w.T {
	case wInv:
		bad = inner || w.Profile == nil || w.From == nil || w.Link == "" || !w.Role.Valid()
		if !bad {
			bad = w.Profile.validate() != nil || w.From.validate() != nil
		}
	case wEv, wHist:
		bad = w.Ev == nil
	case wWelcome:
		bad = w.Start == 0
	case wFwd:
		bad = inner || w.To == nil || len(w.Inner) == 0
	case wVia:
		bad = inner || w.Sender == nil || len(w.Inner) == 0
	case wIntro:
		bad = w.New == nil || w.New.validate() != nil
	case wIntroInv:
		bad = w.For == nil || w.Link == "" || w.Start == 0
	case wIntroFwd:
		bad = w.Sender == nil || w.Link == "" || w.Start == 0
	case wNeed:
		bad = w.Author == nil
	case wGot, wRcpt:
		bad = w.Ref == nil
	default:
		bad = true
	}
	if bad {
		return nil, fmt.Errorf("%w: group message of type %q", ErrInvalid, w.T)
	}
	return &w, nil
}

// joinInfo is the profile part of a group connection's handshake: which
// group and member the connection is for (with the newcomer's full member
// info when it joins its adder's invitation).
type joinInfo struct {
	Group  groupID     `json:"group"`
	ID     memberID    `json:"id"`
	Member *memberInfo `json:"member,omitempty"`
}

func parseJoinInfo(b []byte) (*joinInfo, error) {
	var ji joinInfo
	d := json.NewDecoder(bytes.NewReader(b))
	d.DisallowUnknownFields()
	if err := d.Decode(&ji); err != nil {
		return nil, fmt.Errorf("%w: group handshake: %w", ErrInvalid, err)
	}
	if canon, err := json.Marshal(&ji); err != nil || !bytes.Equal(canon, b) {
		return nil, fmt.Errorf("%w: group handshake not in canonical form", ErrInvalid)
	}
	if ji.ID == (memberID{}) || (ji.Member != nil && (ji.Member.validate() != nil || ji.Member.ID != ji.ID)) {
		return nil, fmt.Errorf("%w: group handshake member", ErrInvalid)
	}
	return &ji, nil
}
