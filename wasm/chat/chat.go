// Package chat is the Wisp core the UI talks to: local profiles, contacts,
// text messages with honest statuses, and delivery receipts, on top of
// package agent. Everything it keeps is in encrypted records (wasm/store).
//
//	m := chat.NewManager(fsys, chat.Config{Origin: "https://wisp.example", PresetRelays: relays})
//	id, err := m.CreateProfile(ctx, chat.NewProfile{DisplayName: "Ada", Passphrase: "…"})
//	p, err := m.Unlock(ctx, id, "…", listener)    // ErrWrongPassphrase, changes nothing
//	inv, err := p.CreateInvitation(ctx, false)    // inv.Link, inv.QR (PNG)
//	// the other person:
//	c, err := q.Join(ctx, inv.Link, false)        // ErrInvitationUsed, link errors
//	msg, err := p.SendText(ctx, contactID, "hi")  // status pending → sent → delivered
//	page, err := p.Messages(contactID, 0, 50)      // newest first, for infinite scroll
//
// A profile never leaves the device except inside the encrypted handshake
// with a contact. The relays a profile receives on are its own choice.
//
// Storage. The only plaintext file of a profile is profiles/<id>.json: its
// key mode and its data key, wrapped with Argon2id under the passphrase
// (or, without a passphrase, the raw key), and, only when the user opted
// in for a passphrase profile (Manager.SetListing), its display name and
// avatar for this device's profile chooser. Manager.ChangePassphrase
// wraps the same key again, replacing the file atomically (SPEC.md §7.1).
// Everything else is an encrypted record of wasm/store under p-<id>/:
//
//	profile                      display name, avatar, relays, time of the last change
//	c/<contact>/contact          name, state, last message, unread count, next position,
//	                             invitation link and name
//	c/<contact>/m/<position>     one message (text, time, direction, status)
//	c/<contact>/i/<agent id>     incoming message index → position (deduplication)
//	c/<contact>/o/<agent id>     outgoing message index → position (status updates);
//	                             0 for a message action we sent (edit, delete, reaction)
//	                             or a profile update (SPEC.md §7.3)
//	c/<contact>/draft            the unsent draft: text and the message it replies to
//	conn/<contact>/...           the agent's connection state and outbox (wasm/agent/SPEC.md)
//	addr/...                     the agent's contact address and the requests waiting (address.go)
//
// A group is a chat entry too (c/<group>/contact, its messages under
// c/<group>/m/), with its state in c/<group>/group and the records listed
// in SPEC.md, "Storage"; gc/<connection> tags each agent connection that
// belongs to a group, gi/<group ID> finds a group's entry.
//
// An incoming message is written index first, then the message, so a
// crash between them is repaired when the relay delivers it again, and the
// message is never shown twice. An outgoing message the agent queued before
// a crash that hit SendText is recreated at the next unlock from the
// agent's outbox.
//
// Message actions (actions.go; SPEC.md §8): a reply quotes a message by
// whose it is and its agent message ID, which both sides know; an edit, a
// deletion for everyone or a reaction changes its target's record, and is
// applied only when its agent message ID is past the last one applied to
// that record for the same purpose, so a redelivery changes nothing. One
// we send is applied here after the agent queued it, and again from the
// outbox at unlock when a crash came between (its o/ index, 0, marks it
// done). Deleting a message for ourselves leaves a tombstone holding only
// its position, direction and agent message ID. Search (search.go)
// decrypts the message records one by one; there is no plaintext index.
package chat

import (
	"errors"
	"time"

	"github.com/wisp-chat/wisp/wasm/agent"
)

// Limits.
const (
	// MaxTextBytes is the longest text message, in UTF-8 bytes.
	MaxTextBytes = 8000
	// MaxDisplayName is the longest display name, in UTF-8 bytes.
	MaxDisplayName = 64
	// MaxAvatarBytes is the largest avatar image (the UI resizes it first).
	MaxAvatarBytes = 8 << 10
	// MaxRelays is how many relays a profile can list.
	MaxRelays = 16
	// MinPassphrase is the shortest passphrase accepted, in characters.
	MinPassphrase = 8
)

// Errors the UI branches on.
var (
	ErrWrongPassphrase = errors.New("wrong passphrase")
	ErrNoProfile       = errors.New("no such profile")
	ErrNoContact       = errors.New("no such contact")
	ErrInvalid         = errors.New("invalid input")
	ErrTooLong         = errors.New("too long")
	ErrNoRelay         = errors.New("no relay to receive on: add one in Settings")
	ErrLocked          = errors.New("the profile is locked")
	ErrInvitationUsed  = agent.ErrInvitationUsed
	// ErrContactLeft: the contact deleted the connection (or its relay
	// no longer has their queue); nothing more can be sent to them.
	ErrContactLeft = errors.New("the contact left")
)

// Status of an outgoing message.
type Status string

// Message statuses, in the order they progress.
const (
	StatusPending   Status = "pending"   // stored here, the relay has not accepted it yet
	StatusSent      Status = "sent"      // the relay has it
	StatusDelivered Status = "delivered" // the contact's device stored it
	StatusFailed    Status = "failed"    // will not be sent; Reason says why
)

// Message is one chat message as the UI shows it.
type Message struct {
	Contact  string    `json:"contact"`
	Seq      uint64    `json:"seq"` // position in the conversation, from 1
	Incoming bool      `json:"incoming"`
	Text     string    `json:"text"`
	Time     time.Time `json:"time"`
	Status   Status    `json:"status,omitempty"` // outgoing only
	Reason   string    `json:"reason,omitempty"` // for StatusFailed
	// Missing and BadHash report integrity problems of an incoming message.
	Missing uint64 `json:"missing,omitempty"`
	BadHash bool   `json:"bad_hash,omitempty"`
	// File is set for a file message; Text then holds its name.
	File *FileMeta `json:"file,omitempty"`
	// Group messages: the author of an incoming one (member ID and name),
	// Notice for a change of the group shown in the conversation ("Ada
	// added Bob"), and for an outgoing one the members it went to and
	// those whose devices stored it.
	Author      string   `json:"author,omitempty"`
	AuthorName  string   `json:"author_name,omitempty"`
	Notice      bool     `json:"notice,omitempty"`
	Recipients  int      `json:"recipients,omitempty"`
	DeliveredTo []string `json:"delivered_to,omitempty"`
	AgentID     uint64   `json:"-"`
	// Message actions (actions.go, SPEC.md §8), one-to-one chats only.
	// Quote: the message this one replies to, resolved from our own copy
	// each time the message is read. Edited: the author changed the text
	// (only the latest is kept). Deleted: the author deleted it for
	// everyone (Text and File are gone). Hidden: we deleted it for
	// ourselves; such a message is only ever seen in the "update" event
	// that tells the page to remove it. Reactions: ours and the contact's.
	Quote     *Quote     `json:"quote,omitempty"`
	Edited    bool       `json:"edited,omitempty"`
	Deleted   bool       `json:"deleted,omitempty"`
	Hidden    bool       `json:"hidden,omitempty"`
	Reactions []Reaction `json:"reactions,omitempty"`
	// When an outgoing message became sent and delivered, an incoming one
	// was stored here, and its text was last edited.
	SentAt      time.Time `json:"sent_at,omitzero"`
	DeliveredAt time.Time `json:"delivered_at,omitzero"`
	ReceivedAt  time.Time `json:"received_at,omitzero"`
	EditedAt    time.Time `json:"edited_at,omitzero"`
}

// ContactState is where a contact is in its life.
type ContactState string

// Contact states.
const (
	ContactInvited    ContactState = "invited"    // our invitation, nobody joined yet
	ContactConnecting ContactState = "connecting" // handshake in progress
	ContactConnected  ContactState = "connected"
	ContactDeleted    ContactState = "deleted" // the contact deleted the connection
)

// Contact is a person we are connected (or connecting) to.
type Contact struct {
	ID        string       `json:"id"`
	Name      string       `json:"name"`      // what we call them (local rename, else their display name)
	PeerName  string       `json:"peer_name"` // their display name
	Avatar    []byte       `json:"avatar,omitempty"`
	Incognito string       `json:"incognito,omitempty"` // our random name for this contact only
	State     ContactState `json:"state"`
	Created   time.Time    `json:"created"`
	LastText  string       `json:"last_text,omitempty"`
	LastTime  time.Time    `json:"last_time,omitzero"`
	Unread    int          `json:"unread"`
	NextSeq   uint64       `json:"next_seq"`
	Invite    string       `json:"invite,omitempty"` // our pending invitation link, until someone joins
	Group     *Group       `json:"group,omitempty"`  // set when this entry is a group
	Draft     string       `json:"draft,omitempty"`  // the start of the unsent draft (drafts.go), for "Draft:" in the list
	// InviteName is the name we gave our invitation ("for Alice"), kept
	// after someone joins it.
	InviteName string `json:"invite_name,omitempty"`
	// Requested: we asked to connect through someone's contact address
	// (address.go); the contact stays invited until they accept.
	Requested bool `json:"requested,omitempty"`
	// Delay says why messages to this contact wait (a relay or a private
	// route failing; routing.go), "" when they go out. Not stored.
	Delay string `json:"delay,omitempty"`
}

// Event is something the UI should show. Kind is one of "message" (a new
// incoming or outgoing message), "status" (an outgoing message's status),
// "update" (an existing message changed: edited, deleted for everyone,
// reacted to, or — Message.Hidden — deleted for ourselves, so the page
// removes it; Message is the whole message as Messages returns it, and
// Contact is set when the chat list's summary changed with it), "contact"
// (a contact changed), "relay" (a relay went up or down), "rotation" (the
// queue of connection ID moves to Relay: started, or done when Up; Text
// set when it was abandoned), "delivery" (messages to contact ID wait:
// Text says why in words, naming both relays of a private route; empty
// Text: they go out again), "problem" (a dropped message or an error
// worth telling).
type Event struct {
	Kind    string   `json:"kind"`
	ID      string   `json:"id,omitempty"`
	Contact *Contact `json:"contact,omitempty"`
	Message *Message `json:"message,omitempty"`
	Relay   string   `json:"relay,omitempty"`
	Up      bool     `json:"up,omitempty"`
	Text    string   `json:"text,omitempty"`
}

// Listener receives events. It is called from the core's goroutines and
// must not block.
type Listener func(Event)
