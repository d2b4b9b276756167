package chat

import (
	"encoding/json"
	"errors"
	"fmt"
	"time"
	"unicode/utf8"

	"github.com/wisp-chat/wisp/wasm/agent"
	"github.com/wisp-chat/wisp/wasm/store"
)

// profileEvents turns agent events into chat records and UI events.
type profileEvents Profile

var _ agent.Events = (*profileEvents)(nil)

func (e *profileEvents) p() *Profile { return (*Profile)(e) }

// parsePeerInfo validates a contact's profile; a bad one gives a neutral name.
func parsePeerInfo(b []byte) peerInfo {
	var pi peerInfo
	if err := json.Unmarshal(b, &pi); err != nil {
		return peerInfo{Name: "Unnamed contact"}
	}
	name, err := cleanName(pi.Name)
	if err != nil || !utf8.ValidString(name) {
		name = "Unnamed contact"
	}
	pi.Name = name
	if len(pi.Avatar) > MaxAvatarBytes {
		pi.Avatar = nil
	}
	return pi
}

func (e *profileEvents) Connecting(conn agent.ConnID, info []byte) {
	if gc, ok := e.p().groupConnOf(conn); ok {
		e.p().groupConnecting(conn, gc, info)
		return
	}
	pi := parsePeerInfo(info)
	err := e.p().updateContact(string(conn), func(c *Contact) {
		if c.State == ContactInvited {
			c.State, c.Name, c.PeerName, c.Avatar = ContactConnecting, pi.Name, pi.Name, pi.Avatar
			c.Invite = ""
		}
	})
	if err != nil {
		e.p().listen(Event{Kind: "problem", Text: "could not update a contact"})
	}
}

func (e *profileEvents) Connected(conn agent.ConnID, info []byte) {
	p := e.p()
	if gc, ok := p.groupConnOf(conn); ok {
		p.groupConnected(conn, gc)
		return
	}
	pi := parsePeerInfo(info)
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.deleted[string(conn)] {
		return
	}
	c, err := p.contact(string(conn))
	if errors.Is(err, store.ErrNotFound) {
		c = &Contact{ID: string(conn), NextSeq: 1}
		err = nil
	}
	if err != nil {
		p.listen(Event{Kind: "problem", Text: "a contact record does not open"})
		return
	}
	if c.State == ContactConnecting && c.PeerName != "" {
		// Set by Connecting from this info, or since by a profile update.
		pi = peerInfo{Name: c.PeerName, Avatar: c.Avatar}
	}
	if c.PeerName == "" || c.Name == c.PeerName {
		c.Name = pi.Name // a placeholder, or not renamed by the user
	}
	c.PeerName, c.Avatar, c.State, c.Invite = pi.Name, pi.Avatar, ContactConnected, ""
	if err := p.saveContact(c); err != nil {
		p.listen(Event{Kind: "problem", Text: "could not save a contact: " + err.Error()})
		return
	}
	p.listen(Event{Kind: "contact", Contact: c})
	p.profileOnConnect(c)
}

func (e *profileEvents) Received(conn agent.ConnID, m agent.Received) error {
	p := e.p()
	id := string(conn)
	if gc, ok := p.groupConnOf(conn); ok {
		return p.groupReceived(conn, gc, m)
	}
	if len(m.Body) > 0 && m.Body[0] == bodyGroup {
		w, err := decodeGroupWire(m.Body)
		if err != nil {
			p.listen(Event{Kind: "problem", Text: "a group message in an unknown format was dropped"})
			return nil
		}
		return p.groupInvited(id, w)
	}
	if len(m.Body) > 0 && m.Body[0] == bodyProfile {
		return p.profileReceived(id, m.Body)
	}
	if isActionBody(m.Body) {
		return p.receivedAction(id, m) // a reply, edit, deletion or reaction (actionflow.go)
	}
	if unknownBody(m.Body) {
		return nil // a kind of a later version: dropped without a word (SPEC.md §1)
	}
	var file *fileBody
	text, err := decodeText(m.Body)
	if err != nil {
		if file, err = decodeFile(m.Body); err != nil {
			p.listen(Event{Kind: "problem", Text: "a message in an unknown format was dropped"})
			return nil
		}
		text = file.Name
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.deleted[id] {
		return nil
	}
	c, err := p.contact(id)
	if err != nil {
		return err
	}
	// Index first, then the message, so a crash between them is repaired
	// by the redelivery and never shows the message twice.
	var b store.Batch
	seq, stored, err := p.incomingSeq(&b, c, m.ID)
	if err != nil || stored {
		return err
	}
	msg := Message{Contact: id, Seq: seq, Incoming: true, Text: text, Time: m.Sent.UTC(), ReceivedAt: time.Now().UTC(),
		Missing: m.Integrity.Missing, BadHash: m.Integrity.BadHash, AgentID: m.ID}
	rec := messageRecord{Message: msg, AgentID: m.ID}
	if file != nil {
		msg.File = &FileMeta{Name: file.Name, Type: file.Type, Size: file.Size, Thumbnail: file.Thumb, Caption: file.Caption, State: FileAvailable}
		rec.Message, rec.FileDesc = msg, file.Desc
	}
	if err := p.storeIncoming(&b, m, c, seq, rec, text, msg.Time); err != nil {
		return err
	}
	p.listen(Event{Kind: "message", Message: &msg, Contact: c})
	return nil
}

// incomingSeq gives the position of the incoming message with agent ID
// agentID. A new one takes c's next position: the contact (with NextSeq
// advanced) and the i/ index go into b, before the message the caller adds,
// so that where the batch is not one transaction a crash between them is
// repaired by the redelivery and never shows the message twice. stored
// reports a message that is already there (a redelivery); p.mu held.
func (p *Profile) incomingSeq(b *store.Batch, c *Contact, agentID uint64) (seq uint64, stored bool, err error) {
	err = getJSON(p.st, idxKey(c.ID, "i", agentID), &seq)
	switch {
	case err == nil:
		stored, err = p.st.Has(msgKey(c.ID, seq))
		return seq, stored, err
	case errors.Is(err, store.ErrNotFound):
		seq = c.NextSeq
		c.NextSeq++
		if err := addJSON(b, contactKey(c.ID), c); err != nil {
			return 0, false, err
		}
		return seq, false, addJSON(b, idxKey(c.ID, "i", agentID), seq)
	default:
		return 0, false, err
	}
}

// storeIncoming writes, as one batch, what incomingSeq put in b, the
// message record rec and the contact with its last message and one more
// unread, and through m.Commit the agent's connection record after them
// (one IndexedDB transaction for a received text); p.mu held.
func (p *Profile) storeIncoming(b *store.Batch, m agent.Received, c *Contact, seq uint64, rec any, text string, t time.Time) error {
	if err := addJSON(b, msgKey(c.ID, seq), rec); err != nil {
		return err
	}
	c.LastText, c.LastTime = text, t
	c.Unread++
	if err := addJSON(b, contactKey(c.ID), c); err != nil {
		return err
	}
	if m.Commit != nil {
		return m.Commit(b)
	}
	return p.st.Apply(b)
}

// setStatus moves an outgoing message's status forward; p.mu must be held.
func (p *Profile) setStatus(id string, agentID uint64, s Status, reason string) {
	var b store.Batch
	emit := p.addStatus(&b, id, agentID, s, reason)
	if err := p.st.Apply(&b); err != nil {
		p.listen(Event{Kind: "problem", Text: fmt.Sprintf("could not save a message status: %v", err)})
		return
	}
	if emit != nil {
		emit()
	}
}

// addStatus adds to b the message record with its status moved forward
// and returns what to tell the page once b is written (nil: nothing
// changed); p.mu must be held.
func (p *Profile) addStatus(b *store.Batch, id string, agentID uint64, s Status, reason string) (emit func()) {
	var seq uint64
	if err := getJSON(p.st, idxKey(id, "o", agentID), &seq); err != nil {
		// Only our own agent's reports (sent, failed) can come before
		// SendText stored the message; a receipt for an unknown message is
		// the peer's business and is ignored, so a peer cannot grow this map.
		if errors.Is(err, store.ErrNotFound) && s != StatusDelivered && !p.deleted[id] && len(p.early[id]) < maxEarly {
			if p.early[id] == nil {
				p.early[id] = map[uint64]statusUpdate{}
			}
			if prev, ok := p.early[id][agentID]; !ok || rank(s) > rank(prev.status) {
				p.early[id][agentID] = statusUpdate{s, reason}
			}
		}
		return nil
	}
	if seq == 0 { // a body without a message: an edit, deletion or reaction (actionflow.go), a profile update
		if s == StatusFailed {
			p.listen(Event{Kind: "problem", Text: "a change could not be sent to the contact: " + reason})
		}
		return nil
	}
	rec, err := p.getRecord(id, seq)
	if err != nil || rank(s) <= rank(rec.Status) || rec.Hidden {
		return nil
	}
	m := &rec.Message
	m.Status, m.Reason = s, reason
	stampStatus(m, s, time.Now().UTC())
	if err := p.addMessage(b, m); err != nil {
		p.listen(Event{Kind: "problem", Text: fmt.Sprintf("could not save a message status: %v", err)})
		return nil
	}
	v := p.view(id, rec)
	return func() { p.listen(Event{Kind: "status", Message: &v}) }
}

func rank(s Status) int {
	switch s {
	case StatusPending:
		return 0
	case StatusSent:
		return 1
	case StatusDelivered:
		return 2
	case StatusFailed:
		return 3
	}
	return -1
}

// Sent and Delivered come from the agent where it has no batch to share
// (a re-sync's catch-up, a receipt on a new queue): SentWith and
// DeliveredWith, applying the batch alone.
func (e *profileEvents) Sent(conn agent.ConnID, id uint64) {
	e.reportStatusErr(e.SentWith(conn, id, e.st.Apply))
}

func (e *profileEvents) Delivered(conn agent.ConnID, ids []uint64) {
	e.reportStatusErr(e.DeliveredWith(conn, ids, e.st.Apply))
}

func (e *profileEvents) reportStatusErr(err error) {
	if err != nil {
		e.p().listen(Event{Kind: "problem", Text: fmt.Sprintf("could not save a message status: %v", err)})
	}
}

var _ agent.BatchEvents = (*profileEvents)(nil)

// SentWith is Sent with the message's record and the removal of its
// outbox entry in one batch.
func (e *profileEvents) SentWith(conn agent.ConnID, id uint64, commit func(*store.Batch) error) error {
	p := e.p()
	gc, ok := p.groupConnOf(conn)
	p.mu.Lock()
	defer p.mu.Unlock()
	if ok {
		p.groupStatus(conn, gc, id, StatusSent)
		return nil // the agent removes the entry itself
	}
	var b store.Batch
	emit := p.addStatus(&b, string(conn), id, StatusSent, "")
	if err := commit(&b); err != nil {
		return err
	}
	if emit != nil {
		emit()
	}
	return nil
}

// DeliveredWith is Delivered with the messages' records and the
// connection record that counts the receipt in one batch.
func (e *profileEvents) DeliveredWith(conn agent.ConnID, ids []uint64, commit func(*store.Batch) error) error {
	p := e.p()
	gc, ok := p.groupConnOf(conn)
	p.mu.Lock()
	defer p.mu.Unlock()
	if ok {
		for _, id := range ids {
			p.groupStatus(conn, gc, id, StatusDelivered)
		}
		return nil // the agent saves the connection record itself
	}
	var b store.Batch
	var emits []func()
	for _, id := range ids {
		if emit := p.addStatus(&b, string(conn), id, StatusDelivered, ""); emit != nil {
			emits = append(emits, emit)
		}
	}
	if err := commit(&b); err != nil {
		return err
	}
	for _, emit := range emits {
		emit()
	}
	return nil
}

func (e *profileEvents) Failed(conn agent.ConnID, id uint64, err error) {
	p := e.p()
	_, ok := p.groupConnOf(conn)
	p.mu.Lock()
	defer p.mu.Unlock()
	if ok {
		p.listen(Event{Kind: "problem", Text: "a group message could not be sent to one member"})
		return
	}
	if p.sendRefused(string(conn), id, err) {
		return
	}
	p.setStatus(string(conn), id, StatusFailed, err.Error())
}

func (e *profileEvents) PeerDeleted(conn agent.ConnID) {
	if gc, ok := e.p().groupConnOf(conn); ok {
		e.p().groupPeerDeleted(conn, gc)
		return
	}
	e.p().peerLeft(string(conn))
}

func (e *profileEvents) Problem(conn agent.ConnID, err error) {
	e.p().listen(Event{Kind: "problem", Text: err.Error()})
}
