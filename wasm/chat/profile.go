package chat

import (
	"context"
	"crypto/rand"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"math/big"
	"slices"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"time"
	"unicode/utf8"

	"github.com/wisp-chat/wisp/crypto/vault"
	"github.com/wisp-chat/wisp/server/wire"
	"github.com/wisp-chat/wisp/server/wire/client"
	"github.com/wisp-chat/wisp/wasm/agent"
	"github.com/wisp-chat/wisp/wasm/store"
)

// profileRecord is the profile's own record.
type profileRecord struct {
	DisplayName string   `json:"name"`
	Avatar      []byte   `json:"avatar,omitempty"`
	Relays      []string `json:"relays"`
	Receive     string   `json:"receive"` // where new connections receive
	// DirectRouting turns private routing off (routing.go): off by
	// default, so older profiles route privately too.
	DirectRouting bool `json:"direct_routing,omitempty"`
	// Updated is when Update last changed the name or avatar (contacts
	// made before it are sent a profile update when they connect).
	Updated time.Time `json:"updated,omitzero"`
}

// ProfileInfo describes the unlocked profile.
type ProfileInfo struct {
	ID          string   `json:"id"`
	DisplayName string   `json:"name"`
	Avatar      []byte   `json:"avatar,omitempty"`
	Relays      []string `json:"relays"`
	Receive     string   `json:"receive"`
	// PrivateRouting: messages to other people's relays go through ours.
	PrivateRouting bool `json:"private_routing"`
}

// peerInfo is what we tell a contact about ourselves, inside the handshake.
type peerInfo struct {
	Name   string `json:"name"`
	Avatar []byte `json:"avatar,omitempty"`
}

// Profile is an unlocked profile.
type Profile struct {
	m      *Manager
	id     string
	key    vault.Key // the data key, for ExportBackup
	st     *store.Store
	relays *agent.Relays
	ag     *agent.Agent
	listen Listener

	umu     sync.Mutex // serialises Update and the profile updates it sends
	bg      background // goroutines close waits for (profileupdate.go)
	mu      sync.Mutex // chat records
	rec     profileRecord
	early   map[string]map[uint64]statusUpdate // our agent's statuses that arrived before SendText stored the message
	deleted map[string]bool                    // contacts being deleted: events for them are ignored
	delays  map[string]string                  // why a contact's messages wait (routing.go)

	// Groups: agent connections that belong to groups, and the groups
	// whose send queue or tasks need the worker (groupworker.go).
	gconns map[agent.ConnID]groupConn
	gwork  map[string]bool
	gwake  chan struct{}
	gstop  func()
	// linking is read-held while we join a group member's link and record
	// the connection; an agent event for a connection we do not know
	// waits for it, so a fast answer is not taken for a contact's.
	linking sync.RWMutex
	// holdLinks (tests only) keeps the worker from making and joining
	// one-time links, so members stay unconnected and use forwarding.
	holdLinks atomic.Bool

	fmu       sync.Mutex
	fcs       map[wire.Address]*client.FileClient // file relay connections, dialled on first use
	uploading map[string]*running                 // uploads running, by contact/upload ID
	downloads downloads                           // downloads running (actionflow.go: a deletion stops them)
}

// maxEarly bounds the statuses kept per contact for messages not stored yet.
const maxEarly = 64

type statusUpdate struct {
	status Status
	reason string
}

func openProfile(ctx context.Context, m *Manager, id string, key vault.Key, l Listener) (*Profile, error) {
	if l == nil {
		l = func(Event) {}
	}
	st, err := store.Open(m.fs, dataDir(id), store.VaultSealer(key))
	if err != nil {
		return nil, err
	}
	// Contact records are read for every event and every listing.
	st.Cache(isContactKey, nil)
	p := &Profile{m: m, id: id, key: key, st: st, listen: l, early: map[string]map[uint64]statusUpdate{}, deleted: map[string]bool{}, delays: map[string]string{},
		fcs: map[wire.Address]*client.FileClient{}, gconns: map[agent.ConnID]groupConn{}, gwork: map[string]bool{}, gwake: make(chan struct{}, 1)}
	if err := getJSON(st, "profile", &p.rec); err != nil {
		return nil, fmt.Errorf("chat: reading the profile: %w", err)
	}
	p.relays = agent.NewRelays(m.cfg.Client, nil, func(relay wire.Address, up bool, err error) {
		ev := Event{Kind: "relay", Relay: relay.String(), Up: up}
		if err != nil {
			ev.Text = "relay unreachable"
		}
		p.listen(ev)
	})
	if m.allowLocal {
		p.relays.AllowLocalRelays()
	}
	p.relays.SetRouting(p.route)
	rot := m.cfg.Rotation
	rot.Relay = p.rotationRelay
	// A profile imported from a backup re-syncs every contact's
	// encryption before it sends anything (resync.go).
	restored := markedRestored(st)
	p.ag, err = agent.New(agent.Options{Store: st, Relays: p.relays, Events: (*profileEvents)(p),
		PostQuantum: !m.cfg.DisablePostQuantum, HoldOutbox: true, Rotation: rot, Restored: restored})
	if err != nil {
		p.relays.Close()
		return nil, err
	}
	if err := p.loadGroupConns(); err != nil {
		p.close()
		return nil, err
	}
	if err := p.ag.Start(ctx); err != nil {
		p.close()
		return nil, err
	}
	if restored {
		// Marked: a crash before this line marks again, which keeps the
		// requests already made (nothing was sent yet: HoldOutbox).
		if err := st.Delete(restoredKey); err != nil {
			p.close()
			return nil, err
		}
	}
	if err := p.repairGroups(); err != nil {
		p.close()
		return nil, err
	}
	// Look at what the agent has queued before anything is sent, so a
	// message whose SendText a crash interrupted still gets its record.
	if err := p.reconcile(); err != nil {
		p.close()
		return nil, err
	}
	p.ag.Resume()
	p.startGroups()
	p.moveOff()
	return p, nil
}

func (p *Profile) close() {
	p.bg.stop()
	p.stopGroups()
	p.ag.Close()
	p.relays.Close()
	p.closeFiles()
}

// Reconnect makes relays that are down try again now (network is back).
func (p *Profile) Reconnect() { p.relays.Reconnect() }

// Info returns the profile's own information.
func (p *Profile) Info() ProfileInfo {
	p.mu.Lock()
	defer p.mu.Unlock()
	return ProfileInfo{ID: p.id, DisplayName: p.rec.DisplayName, Avatar: p.rec.Avatar,
		Relays: append([]string(nil), p.rec.Relays...), Receive: p.rec.Receive, PrivateRouting: !p.rec.DirectRouting}
}

// update saves the display name and avatar (Update: profileupdate.go).
func (p *Profile) update(name string, avatar []byte) error {
	name, err := cleanName(name)
	if err != nil {
		return err
	}
	if len(avatar) > MaxAvatarBytes {
		return fmt.Errorf("%w: the avatar is %d bytes, the limit is %d", ErrTooLong, len(avatar), MaxAvatarBytes)
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	rec := p.rec
	rec.DisplayName, rec.Avatar, rec.Updated = name, avatar, time.Now().UTC()
	if err := putJSON(p.st, "profile", rec); err != nil {
		return err
	}
	p.rec = rec
	return nil
}

// SetRelays sets the relays the profile receives on and the one new
// connections use. Connections receiving on a relay that is no longer
// listed are moved to the receiving relay (rotation.go); RelayUsage
// shows the progress.
func (p *Profile) SetRelays(relays []string, receive string) error {
	relays, err := cleanRelays(relays, p.m.allowLocal)
	if err != nil {
		return err
	}
	if len(relays) > 0 {
		r, err := cleanRelays([]string{receive}, p.m.allowLocal)
		if err != nil {
			return err
		}
		if !slices.Contains(relays, r[0]) {
			return fmt.Errorf("%w: the receiving relay must be in the list", ErrInvalid)
		}
		receive = r[0]
	} else {
		receive = ""
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	rec := p.rec
	rec.Relays, rec.Receive = relays, receive
	if err := putJSON(p.st, "profile", rec); err != nil {
		return err
	}
	p.rec = rec
	p.moveOff()
	return nil
}

// receiveRelay is where a new connection's queue goes.
func (p *Profile) receiveRelay() (wire.Address, error) {
	p.mu.Lock()
	r := p.rec.Receive
	p.mu.Unlock()
	if r == "" {
		return wire.Address{}, ErrNoRelay
	}
	return wire.ParseAddress(r)
}

// info returns the peer info to send: our profile, or an incognito name.
func (p *Profile) info(incognito bool) ([]byte, string, error) {
	p.mu.Lock()
	pi := peerInfo{Name: p.rec.DisplayName, Avatar: p.rec.Avatar}
	p.mu.Unlock()
	alias := ""
	if incognito {
		alias = incognitoName()
		pi = peerInfo{Name: alias}
	}
	b, err := json.Marshal(pi)
	return b, alias, err
}

// Invitation is a one-time invitation to connect.
type Invitation struct {
	Contact string `json:"contact"`
	Link    string `json:"link"`
	QR      []byte `json:"qr"` // PNG
	// Name is the invitation's name (Contact.InviteName).
	Name string `json:"name,omitempty"`
}

// CreateNamedInvitation creates a one-time invitation on the profile's
// receiving relay. With incognito, the contact will see a random name used
// for them only. name (at most MaxDisplayName bytes, may be empty) is ours
// only: "for Alice", kept on the contact as InviteName.
func (p *Profile) CreateNamedInvitation(ctx context.Context, incognito bool, name string) (Invitation, error) {
	name, err := cleanInviteName(name)
	if err != nil {
		return Invitation{}, err
	}
	relay, err := p.receiveRelay()
	if err != nil {
		return Invitation{}, err
	}
	info, alias, err := p.info(incognito)
	if err != nil {
		return Invitation{}, err
	}
	id, inv, err := p.ag.CreateInvitation(ctx, relay, info)
	if err != nil {
		return Invitation{}, err
	}
	link, err := inv.Link(p.m.cfg.Origin)
	if err != nil {
		return Invitation{}, err
	}
	qr, err := agent.QRCode(link, 512)
	if err != nil {
		return Invitation{}, err
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	c := Contact{ID: string(id), Name: "New contact", State: ContactInvited, Created: time.Now().UTC(), Incognito: alias, Invite: link, NextSeq: 1,
		InviteName: name}
	if err := p.saveContact(&c); err != nil {
		return Invitation{}, err
	}
	p.listen(Event{Kind: "contact", Contact: &c})
	return Invitation{Contact: string(id), Link: link, QR: qr, Name: name}, nil
}

// ParseLink checks an invitation link without using it.
func (p *Profile) ParseLink(link string) error {
	inv, err := agent.ParseLink(link, agent.Versions)
	if err != nil {
		return err
	}
	return p.m.CheckRelay(inv.Relay)
}

// Join connects to an invitation link. It fails with ErrInvitationUsed when
// someone already used it, with the link errors of package agent when
// the link is not valid, and with agent.ErrLocalRelay when its relay may
// not be used (see Config.Origin), before anything is created.
func (p *Profile) Join(ctx context.Context, link string, incognito bool) (Contact, error) {
	inv, err := agent.ParseLink(link, agent.Versions)
	if err != nil {
		return Contact{}, err
	}
	if err := p.m.CheckRelay(inv.Relay); err != nil {
		return Contact{}, err
	}
	return p.connect(incognito, func(relay wire.Address, info []byte) (agent.ConnID, error) {
		return p.ag.Join(ctx, inv, relay, info)
	}, func(c *Contact, fresh bool) {
		if fresh {
			c.Name, c.State = "Connecting…", ContactConnecting
		}
	})
}

// connect runs an agent call that makes a connection from our receiving
// relay with our info (or an incognito name), then records the contact
// with set (fresh: the record is new; an event may have made it already).
func (p *Profile) connect(incognito bool, call func(relay wire.Address, info []byte) (agent.ConnID, error), set func(c *Contact, fresh bool)) (Contact, error) {
	relay, err := p.receiveRelay()
	if err != nil {
		return Contact{}, err
	}
	info, alias, err := p.info(incognito)
	if err != nil {
		return Contact{}, err
	}
	id, err := call(relay, info)
	if err != nil {
		return Contact{}, err
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	c, err := p.contact(string(id))
	fresh := errors.Is(err, store.ErrNotFound)
	if fresh {
		c, err = &Contact{ID: string(id), Created: time.Now().UTC(), NextSeq: 1}, nil
	}
	if err != nil {
		return Contact{}, err
	}
	set(c, fresh)
	c.Incognito = alias
	if err := p.saveContact(c); err != nil {
		return Contact{}, err
	}
	p.listen(Event{Kind: "contact", Contact: c})
	return *c, nil
}

func contactDir(id string) store.Key { return store.Key("c").Join(id) }
func contactKey(id string) store.Key { return contactDir(id).Join("contact") }

// isContactKey reports whether k is a chat's record (contactKey).
func isContactKey(k store.Key) bool {
	return k.Base() == "contact" && k.Dir().Dir() == "c"
}
func msgKey(id string, seq uint64) store.Key {
	return contactDir(id).Join("m", fmt.Sprintf("%020d", seq))
}
func idxKey(id string, dir string, agentID uint64) store.Key {
	return contactDir(id).Join(dir, fmt.Sprintf("%020d", agentID))
}

func validContactID(id string) bool { return len(id) == 24 && store.Key(id).Valid() }

// contact loads a contact; p.mu must be held.
func (p *Profile) contact(id string) (*Contact, error) {
	if !validContactID(id) {
		return nil, fmt.Errorf("%w: %q", ErrNoContact, id)
	}
	var c Contact
	if err := getJSON(p.st, contactKey(id), &c); err != nil {
		return nil, err
	}
	return &c, nil
}

func (p *Profile) saveContact(c *Contact) error { return putJSON(p.st, contactKey(c.ID), c) }

// Contacts lists the contacts, most recent activity first. Their records
// are read in one go (store.GetMany), and kept in memory (openProfile).
func (p *Profile) Contacts() ([]Contact, error) {
	dirs, err := p.st.ListDirs("c")
	if err != nil {
		return nil, err
	}
	keys := make([]store.Key, 0, len(dirs))
	for _, d := range dirs {
		if validContactID(d.Base()) {
			keys = append(keys, contactKey(d.Base()))
		}
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	recs, err := p.st.GetMany(keys)
	if err != nil {
		return nil, err
	}
	out := make([]Contact, 0, len(recs))
	for _, b := range recs {
		if b == nil {
			continue // a chat whose creation did not finish, or deleted meanwhile
		}
		var c Contact
		if err := json.Unmarshal(b, &c); err != nil {
			return nil, err
		}
		c.Delay = p.delays[c.ID]
		out = append(out, c)
	}
	sort.Slice(out, func(i, j int) bool { return activity(out[i]).After(activity(out[j])) })
	return out, nil
}

func activity(c Contact) time.Time {
	if c.LastTime.After(c.Created) {
		return c.LastTime
	}
	return c.Created
}

// Contact returns one contact.
func (p *Profile) Contact(id string) (Contact, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	c, err := p.contact(id)
	if errors.Is(err, store.ErrNotFound) {
		return Contact{}, fmt.Errorf("%w: %s", ErrNoContact, id)
	}
	if err != nil {
		return Contact{}, err
	}
	cc := *c
	cc.Delay = p.delays[id]
	return cc, nil
}

// RenameContact sets the local name of a contact (they are not told).
func (p *Profile) RenameContact(id, name string) error {
	name, err := cleanName(name)
	if err != nil {
		return err
	}
	return p.updateContact(id, func(c *Contact) { c.Name = name })
}

func (p *Profile) updateContact(id string, f func(*Contact)) error {
	p.mu.Lock()
	defer p.mu.Unlock()
	c, err := p.contact(id)
	if errors.Is(err, store.ErrNotFound) {
		return fmt.Errorf("%w: %s", ErrNoContact, id)
	}
	if err != nil {
		return err
	}
	f(c)
	if err := p.saveContact(c); err != nil {
		return err
	}
	p.listen(Event{Kind: "contact", Contact: c})
	return nil
}

// MarkRead clears a contact's unread count.
func (p *Profile) MarkRead(id string) error {
	return p.updateContact(id, func(c *Contact) { c.Unread = 0 })
}

// DeleteContact deletes a contact: tells them, deletes our queue on the
// relay and every local record (messages included). Cancelling an
// invitation is deleting its contact.
func (p *Profile) DeleteContact(ctx context.Context, id string) error {
	if !validContactID(id) {
		return fmt.Errorf("%w: %q", ErrNoContact, id)
	}
	if ok, err := p.st.Has(groupKey(id)); err != nil || ok {
		if err != nil {
			return err
		}
		return p.deleteGroupEntry(id)
	}
	p.mu.Lock()
	p.deleted[id] = true // events still in flight for it are ignored
	p.mu.Unlock()
	if err := p.ag.Delete(ctx, agent.ConnID(id)); err != nil && !errors.Is(err, agent.ErrNoConnection) {
		p.mu.Lock()
		delete(p.deleted, id)
		p.mu.Unlock()
		return err
	}
	p.dropUploads(ctx, id)
	p.mu.Lock()
	defer p.mu.Unlock()
	delete(p.early, id)
	return p.st.DeleteAll(contactDir(id))
}

// SecurityCode returns the code both sides can compare out of band: 12
// groups of 5 digits, the same on both devices when nobody is in the
// middle.
func (p *Profile) SecurityCode(id string) (string, error) {
	info, err := p.ag.Connection(agent.ConnID(id))
	if err != nil {
		return "", fmt.Errorf("%w: %s", ErrNoContact, id)
	}
	if info.SecurityCode == nil {
		return "", fmt.Errorf("%w: not connected yet", ErrInvalid)
	}
	return FormatSecurityCode(info.SecurityCode), nil
}

// FormatSecurityCode renders 24 or more bytes as 12 groups of 5 digits,
// each group from 16 bits.
func FormatSecurityCode(b []byte) string {
	groups := make([]string, 12)
	for i := range groups {
		groups[i] = fmt.Sprintf("%05d", binary.BigEndian.Uint16(b[2*i:]))
	}
	return strings.Join(groups, " ")
}

// SendText sends a text message. It returns once the message is stored
// (StatusPending); its status then moves to sent, delivered or failed.
func (p *Profile) SendText(ctx context.Context, id, text string) (Message, error) {
	if strings.TrimSpace(text) == "" {
		return Message{}, fmt.Errorf("%w: the message is empty", ErrInvalid)
	}
	if !utf8.ValidString(text) {
		return Message{}, fmt.Errorf("%w: the message is not valid text", ErrInvalid)
	}
	if len(text) > MaxTextBytes {
		return Message{}, fmt.Errorf("%w: the message is %d bytes, the limit is %d", ErrTooLong, len(text), MaxTextBytes)
	}
	if !validContactID(id) {
		return Message{}, fmt.Errorf("%w: %q", ErrNoContact, id)
	}
	if err := p.refuseLeft(id); err != nil {
		return Message{}, err
	}
	// The message's records go into the agent's transaction (outbox entry,
	// connection record, then these): one IndexedDB write transaction.
	var msg Message
	_, err := p.ag.SendWith(ctx, agent.ConnID(id), encodeText(text), func(agentID uint64, b *store.Batch) (err error) {
		p.mu.Lock()
		defer p.mu.Unlock()
		msg, err = p.storeOutgoingIn(b, id, agentID, Message{Text: text}, time.Now().UTC())
		return err
	})
	if errors.Is(err, agent.ErrNoConnection) {
		return Message{}, fmt.Errorf("%w: %s", ErrNoContact, id)
	}
	if err != nil {
		return Message{}, err
	}
	return msg, nil
}

// storeOutgoingMessage writes an outgoing message record (text or file,
// from msg); p.mu must be held.
func (p *Profile) storeOutgoingMessage(id string, agentID uint64, msg Message, t time.Time) (Message, error) {
	return p.storeOutgoingIn(new(store.Batch), id, agentID, msg, t)
}

// storeOutgoingIn adds an outgoing message's records to b (which may hold
// the agent's writes before them), applies it and tells the page; p.mu
// must be held.
func (p *Profile) storeOutgoingIn(b *store.Batch, id string, agentID uint64, msg Message, t time.Time) (Message, error) {
	msg, c, err := p.outgoingRecords(b, id, agentID, msg, t)
	if err != nil {
		return Message{}, err
	}
	if err := p.st.Apply(b); err != nil {
		return Message{}, err
	}
	p.listen(Event{Kind: "message", Message: &msg, Contact: c})
	return msg, nil
}

// outgoingRecords adds to b the records of an outgoing message: the
// contact (its next position, last message), the o/ index from the
// agent's ID to the position, and the message; p.mu must be held.
func (p *Profile) outgoingRecords(b *store.Batch, id string, agentID uint64, msg Message, t time.Time) (Message, *Contact, error) {
	c, err := p.contact(id)
	if err != nil {
		return Message{}, nil, err
	}
	text := msg.Text
	msg.Contact, msg.Seq, msg.Time, msg.Status, msg.AgentID = id, c.NextSeq, t, StatusPending, agentID
	if u, ok := p.early[id][agentID]; ok {
		msg.Status, msg.Reason = u.status, u.reason
		delete(p.early[id], agentID)
	}
	stampStatus(&msg, msg.Status, t)
	c.NextSeq++
	c.LastText, c.LastTime = text, t
	if err := addJSON(b, contactKey(id), c); err != nil {
		return Message{}, nil, err
	}
	if err := addJSON(b, idxKey(id, "o", agentID), msg.Seq); err != nil {
		return Message{}, nil, err
	}
	if err := p.addMessage(b, &msg); err != nil {
		return Message{}, nil, err
	}
	return msg, c, nil
}

type messageRecord struct {
	Message
	AgentID  uint64 `json:"agent_id"`
	FileDesc []byte `json:"file_desc,omitempty"` // files.Description of a received file
	// A group message's event seq (its author is Message.Author), and a
	// group file's digest from the signed event.
	EventSeq uint64 `json:"event_seq,omitempty"`
	Digest   []byte `json:"digest,omitempty"`

	Act *actState `json:"act,omitempty"` // quote, edits, reactions (actions.go)
}

func (p *Profile) putMessage(m *Message) error {
	var b store.Batch
	if err := p.addMessage(&b, m); err != nil {
		return err
	}
	return p.st.Apply(&b)
}

// addMessage adds the write of m's record to b, keeping what the record
// holds beyond m (file description, group event, actions); p.mu held.
func (p *Profile) addMessage(b *store.Batch, m *Message) error {
	rec, err := p.getRecord(m.Contact, m.Seq)
	if err != nil && !errors.Is(err, store.ErrNotFound) {
		return err
	}
	nr := messageRecord{Message: *m, AgentID: m.AgentID}
	if rec != nil {
		nr.FileDesc, nr.EventSeq, nr.Digest = rec.FileDesc, rec.EventSeq, rec.Digest
		nr.Act = rec.Act
	}
	nr.Quote, nr.Reactions = nil, nil // derived when read (view), never stored
	return addJSON(b, msgKey(m.Contact, m.Seq), nr)
}

// getRecord loads a message record; p.mu must be held.
func (p *Profile) getRecord(id string, seq uint64) (*messageRecord, error) {
	if !validContactID(id) {
		return nil, fmt.Errorf("%w: %q", ErrNoContact, id)
	}
	var r messageRecord
	if err := getJSON(p.st, msgKey(id, seq), &r); err != nil {
		return nil, err
	}
	r.Message.AgentID = r.AgentID
	return &r, nil
}

func (p *Profile) getMessage(id string, seq uint64) (*Message, error) {
	r, err := p.getRecord(id, seq)
	if err != nil {
		return nil, err
	}
	return &r.Message, nil
}

// Messages returns up to limit messages of a conversation with Seq below
// before (0: the newest), oldest first, for paging back through history.
//
// It reads a page, not the conversation: the keys in a window of
// positions just below before (store.ListRange), widened until it holds
// limit records or reaches the first position, then those records in one
// read (store.GetMany). Records deleted for us (tombstones) do not count,
// so older pages are read until limit visible messages are found.
func (p *Profile) Messages(id string, before uint64, limit int) ([]Message, error) {
	if !validContactID(id) {
		return nil, fmt.Errorf("%w: %q", ErrNoContact, id)
	}
	if limit <= 0 || limit > 200 {
		limit = 50
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	end := before // positions below end; 0: every position
	if end == 0 {
		c, err := p.contact(id)
		if errors.Is(err, store.ErrNotFound) {
			return []Message{}, nil
		}
		if err != nil {
			return nil, err
		}
		end = c.NextSeq
	}
	out := []Message{}
	for first := true; len(out) < limit; first = false {
		// The newest page has no upper bound: a record a crash left at
		// the contact's next position (nextPos) is shown as before.
		keys, err := p.keysBelow(id, end, limit-len(out), first && before == 0)
		if err != nil {
			return nil, err
		}
		if len(keys) == 0 {
			break
		}
		recs, err := p.st.GetMany(keys)
		if err != nil {
			return nil, err
		}
		page := make([]Message, 0, len(recs))
		for _, b := range recs {
			if b == nil {
				continue // gone since the listing
			}
			var r messageRecord
			if err := json.Unmarshal(b, &r); err != nil {
				return nil, err
			}
			p.fillStored(id, &r)
			if r.Hidden {
				continue // deleted for us (actionflow.go)
			}
			page = append(page, p.view(id, &r))
		}
		out = append(page, out...)
		end = seqOf(keys[0])
	}
	return out, nil
}

// keysBelow returns the keys of the last n message records of chat id at
// positions below end (any position when open), oldest first; p.mu held.
func (p *Profile) keysBelow(id string, end uint64, n int, open bool) ([]store.Key, error) {
	to := fmt.Sprintf("%020d", end)
	if open {
		to = ""
	}
	for window := uint64(n); ; {
		from := uint64(0)
		if end > window {
			from = end - window
		}
		keys, err := p.st.ListRange(contactDir(id).Join("m"), fmt.Sprintf("%020d", from), to)
		if err != nil {
			return nil, err
		}
		if len(keys) >= n || from == 0 {
			return keys[max(0, len(keys)-n):], nil
		}
		if window >= end/4 {
			window = end
		} else {
			window *= 4
		}
	}
}

// reconcile creates records for messages queued by the agent whose
// SendText did not finish before a crash.
func (p *Profile) reconcile() error {
	for _, id := range p.ag.Connections() {
		pending, err := p.ag.Pending(id)
		if err != nil {
			return err
		}
		p.mu.Lock()
		for _, m := range pending {
			if ok, err := p.st.Has(idxKey(string(id), "o", m.ID)); err != nil || ok {
				continue
			}
			msg := Message{}
			if text, err := decodeText(m.Body); err == nil {
				msg.Text = text
			} else if f, err := decodeFile(m.Body); err == nil {
				msg.Text, msg.File = f.Name, &FileMeta{Name: f.Name, Type: f.Type, Size: f.Size, Thumbnail: f.Thumb, Caption: f.Caption, State: FileSent}
			} else {
				// A reply or an action (actions.go), else not ours to show.
				if err := p.reconcileAction(string(id), m); err != nil && !errors.Is(err, store.ErrNotFound) {
					p.mu.Unlock()
					return err
				}
				continue
			}
			if _, err := p.storeOutgoingMessage(string(id), m.ID, msg, time.Now().UTC()); err != nil && !errors.Is(err, store.ErrNotFound) {
				p.mu.Unlock()
				return err
			}
		}
		p.mu.Unlock()
	}
	return nil
}

// Chat message bodies inside agent messages: a type byte and the content.
const bodyText = 't'

func encodeText(s string) []byte { return append([]byte{bodyText}, s...) }

func decodeText(b []byte) (string, error) {
	if len(b) < 1 || b[0] != bodyText || !utf8.Valid(b[1:]) || len(b)-1 > MaxTextBytes {
		return "", fmt.Errorf("%w: not a text message", ErrInvalid)
	}
	return string(b[1:]), nil
}

var (
	adjectives = []string{"Amber", "Brave", "Calm", "Daring", "Eager", "Fuzzy", "Gentle", "Hidden",
		"Idle", "Jolly", "Kind", "Lucky", "Misty", "Nimble", "Quiet", "Rapid", "Silent", "Tidy", "Witty", "Young"}
	animals = []string{"Badger", "Crane", "Dolphin", "Falcon", "Gecko", "Heron", "Ibis", "Jackal",
		"Koala", "Lynx", "Marten", "Newt", "Otter", "Puffin", "Quail", "Raven", "Stoat", "Tapir", "Vole", "Wren"}
)

// incognitoName returns a random name used for one contact only.
func incognitoName() string {
	pick := func(list []string) string {
		n, err := rand.Int(rand.Reader, big.NewInt(int64(len(list))))
		if err != nil {
			panic("chat: crypto/rand failed: " + err.Error()) // unreachable on supported platforms
		}
		return list[n.Int64()]
	}
	n, _ := rand.Int(rand.Reader, big.NewInt(90))
	return fmt.Sprintf("%s %s %d", pick(adjectives), pick(animals), 10+n.Int64())
}
