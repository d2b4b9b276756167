package chat

import (
	"encoding/binary"
	"fmt"
	"time"
	"unicode"
	"unicode/utf8"
)

// Message actions of one-to-one chats (SPEC.md §8): chat bodies that
// refer to an earlier message of the conversation.
//
//	reply     'q' || ref || text
//	edit      'e' || ref || text
//	delete    'd' || ref
//	reaction  'r' || ref || op || emoji      (op 0x01 add: 1–16 bytes of emoji; 0x00 remove: nothing)
//	ref       whose (1: 0x00 the body's author's, 0x01 its recipient's) || msg_id (8, big-endian, ≥ 1)
//
// msg_id is the agent message ID of the referenced message: the sender's
// per-connection counter in the ratchet envelope's header
// (wasm/agent/SPEC.md, "Queue messages"), which the sender gets from Send
// and the recipient in agent.Received.ID — the same number on both sides.
const (
	bodyReply    = 'q'
	bodyEdit     = 'e'
	bodyDelete   = 'd'
	bodyReaction = 'r'

	refAuthor    = 0x00 // the referenced message was sent by the body's author
	refRecipient = 0x01 // by the body's recipient

	reactionRemove = 0x00
	reactionAdd    = 0x01

	refSize = 1 + 8
)

// Limits of message actions.
const (
	// MaxReactionBytes is the longest reaction, in UTF-8 bytes: one emoji,
	// modifiers and joiners included (a family of four is 25 bytes and is
	// refused; a thumbs-up with a skin tone is 8).
	MaxReactionBytes = 16
	// QuotePreview is the most characters of a quoted message shown with a
	// reply (Quote.Text).
	QuotePreview = 120
)

// msgRef names a message of the conversation from the point of view of the
// body that carries it.
type msgRef struct {
	Recipient bool   // the body's recipient sent the message (else its author)
	MsgID     uint64 // the message's agent message ID
}

// action is a decoded reply, edit, deletion or reaction body.
type action struct {
	Kind  byte
	Ref   msgRef
	Text  string // reply, edit
	Add   bool   // reaction: add (else remove)
	Emoji string // reaction added
}

// isActionBody reports whether b is one of the action kinds (well formed
// or not).
func isActionBody(b []byte) bool {
	if len(b) == 0 {
		return false
	}
	switch b[0] {
	case bodyReply, bodyEdit, bodyDelete, bodyReaction:
		return true
	}
	return false
}

// unknownBody reports whether b starts with a type byte this version does
// not know: such a body is acknowledged and dropped without a word, so
// that later versions can add kinds (SPEC.md §1). An empty body has no
// type and is malformed.
func unknownBody(b []byte) bool {
	if len(b) == 0 {
		return false
	}
	switch b[0] {
	case bodyText, bodyFile, bodyGroup, bodyProfile:
		return false
	}
	return !isActionBody(b)
}

// validReaction: 1 to MaxReactionBytes bytes of UTF-8 without control,
// format (but the zero-width joiner of emoji sequences) or separator
// characters.
func validReaction(s string) bool {
	if s == "" || len(s) > MaxReactionBytes || !utf8.ValidString(s) {
		return false
	}
	for _, r := range s {
		if unicode.IsControl(r) || unicode.Is(unicode.Z, r) || (unicode.Is(unicode.Cf, r) && r != '\u200d') {
			return false
		}
	}
	return true
}

func appendRef(b []byte, r msgRef) []byte {
	whose := byte(refAuthor)
	if r.Recipient {
		whose = refRecipient
	}
	return binary.BigEndian.AppendUint64(append(b, whose), r.MsgID)
}

// encode returns the body; it refuses what decodeAction would refuse.
func (a *action) encode() ([]byte, error) {
	if a.Ref.MsgID == 0 {
		return nil, fmt.Errorf("%w: message ID 0", ErrInvalid)
	}
	b := appendRef([]byte{a.Kind}, a.Ref)
	switch a.Kind {
	case bodyReply, bodyEdit:
		if !utf8.ValidString(a.Text) || len(a.Text) > MaxTextBytes {
			return nil, fmt.Errorf("%w: the text", ErrInvalid)
		}
		b = append(b, a.Text...)
	case bodyDelete:
	case bodyReaction:
		if !a.Add {
			return append(b, reactionRemove), nil
		}
		if !validReaction(a.Emoji) {
			return nil, fmt.Errorf("%w: a reaction is one emoji of at most %d bytes", ErrInvalid, MaxReactionBytes)
		}
		b = append(append(b, reactionAdd), a.Emoji...)
	default:
		return nil, fmt.Errorf("%w: action kind %#x", ErrInvalid, a.Kind)
	}
	return b, nil
}

// decodeAction parses an action body. Every accepted body encodes back
// to the same bytes.
func decodeAction(b []byte) (*action, error) {
	if !isActionBody(b) {
		return nil, fmt.Errorf("%w: not a message action", ErrInvalid)
	}
	if len(b) < 1+refSize {
		return nil, fmt.Errorf("%w: a %d-byte action", ErrInvalid, len(b))
	}
	a := &action{Kind: b[0]}
	switch b[1] {
	case refAuthor:
	case refRecipient:
		a.Ref.Recipient = true
	default:
		return nil, fmt.Errorf("%w: reference owner %#x", ErrInvalid, b[1])
	}
	a.Ref.MsgID = binary.BigEndian.Uint64(b[2:])
	if a.Ref.MsgID == 0 {
		return nil, fmt.Errorf("%w: message ID 0", ErrInvalid)
	}
	rest := b[1+refSize:]
	switch a.Kind {
	case bodyReply, bodyEdit:
		if !utf8.Valid(rest) || len(rest) > MaxTextBytes {
			return nil, fmt.Errorf("%w: the text of an action", ErrInvalid)
		}
		a.Text = string(rest)
	case bodyDelete:
		if len(rest) != 0 {
			return nil, fmt.Errorf("%w: data after a deletion", ErrInvalid)
		}
	case bodyReaction:
		switch {
		case len(rest) == 1 && rest[0] == reactionRemove:
		case len(rest) > 1 && rest[0] == reactionAdd && validReaction(string(rest[1:])):
			a.Add, a.Emoji = true, string(rest[1:])
		default:
			return nil, fmt.Errorf("%w: a reaction", ErrInvalid)
		}
	}
	return a, nil
}

// Quote is the message a reply quotes, as the viewer has it.
type Quote struct {
	// Incoming: the quoted message is one we received (else one we sent).
	Incoming bool `json:"incoming"`
	// MsgID is its agent message ID (what the reply names it by).
	MsgID uint64 `json:"msg_id"`
	// Seq is its position here; 0 when we do not have it.
	Seq uint64 `json:"seq"`
	// Text is the start of its text (at most QuotePreview characters), or
	// its file name (File set).
	Text string `json:"text,omitempty"`
	File bool   `json:"file,omitempty"`
	// Missing: we do not have it (it never arrived, or we deleted it for
	// ourselves). Deleted: its author deleted it for everyone.
	Missing bool `json:"missing,omitempty"`
	Deleted bool `json:"deleted,omitempty"`
}

// Reaction is one emoji on a message and who put it there.
type Reaction struct {
	Emoji string `json:"emoji"`
	Count int    `json:"count"`
	Mine  bool   `json:"mine"` // one of them is ours
}

// actState is the part of a one-to-one message record kept for actions.
// It is not part of Message: Quote and Reactions are derived from it when
// the message is read (view).
type actState struct {
	// The quoted message: one we received (QuoteIn) or sent, by agent
	// message ID (0: not a reply).
	QuoteIn bool   `json:"qin,omitempty"`
	QuoteID uint64 `json:"qid,omitempty"`
	// The agent message ID of the last edit applied.
	EditID uint64 `json:"eid,omitempty"`
	// Our reaction and the contact's, each with the agent message ID of
	// the reaction body that set it.
	Mine     string `json:"mine,omitempty"`
	MineID   uint64 `json:"mid,omitempty"`
	Theirs   string `json:"theirs,omitempty"`
	TheirsID uint64 `json:"tid,omitempty"`
}

// act returns rec's action state, creating it.
func (rec *messageRecord) act() *actState {
	if rec.Act == nil {
		rec.Act = &actState{}
	}
	return rec.Act
}

// reactionsOf lists the reactions of a message, sorted by emoji.
func reactionsOf(a *actState) []Reaction {
	switch {
	case a == nil || a.Mine == "" && a.Theirs == "":
		return nil
	case a.Mine == a.Theirs:
		return []Reaction{{Emoji: a.Mine, Count: 2, Mine: true}}
	case a.Mine == "":
		return []Reaction{{Emoji: a.Theirs, Count: 1}}
	case a.Theirs == "":
		return []Reaction{{Emoji: a.Mine, Count: 1, Mine: true}}
	}
	out := []Reaction{{Emoji: a.Mine, Count: 1, Mine: true}, {Emoji: a.Theirs, Count: 1}}
	if out[1].Emoji < out[0].Emoji {
		out[0], out[1] = out[1], out[0]
	}
	return out
}

// preview is the start of a text, at most n characters ("…" included).
func preview(s string, n int) string {
	if utf8.RuneCountInString(s) <= n {
		return s
	}
	i, k := 0, 0
	for i = range s {
		if k == n-1 {
			break
		}
		k++
	}
	return s[:i] + "…"
}

// stampStatus records when an outgoing message became sent or delivered.
func stampStatus(m *Message, s Status, t time.Time) {
	if (s == StatusSent || s == StatusDelivered) && m.SentAt.IsZero() {
		m.SentAt = t
	}
	if s == StatusDelivered && m.DeliveredAt.IsZero() {
		m.DeliveredAt = t
	}
}
