package chat

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sync"
	"time"

	"github.com/wisp-chat/wisp/wasm/agent"
	"github.com/wisp-chat/wisp/wasm/store"
)

// Replies, edits, deletions and reactions of one-to-one chats: sending
// them, applying them on receipt, and after a crash (SPEC.md §8).

// view is a message as the page sees it: the record's message with its
// quote and reactions derived from the action state; p.mu must be held.
func (p *Profile) view(id string, rec *messageRecord) Message {
	m := rec.Message
	m.AgentID = rec.AgentID
	m.Quote, m.Reactions = nil, nil
	if a := rec.Act; a != nil {
		if a.QuoteID != 0 {
			m.Quote = p.resolveQuote(id, a.QuoteIn, a.QuoteID)
		}
		m.Reactions = reactionsOf(a)
	}
	return m
}

// resolveQuote describes the quoted message from our own copy; p.mu held.
func (p *Profile) resolveQuote(id string, incoming bool, msgID uint64) *Quote {
	q := &Quote{Incoming: incoming, MsgID: msgID, Missing: true}
	rec, err := p.byAgentID(id, incoming, msgID)
	if err != nil || rec.Hidden {
		return q
	}
	q.Missing, q.Seq = false, rec.Seq
	switch {
	case rec.Deleted:
		q.Deleted = true
	case rec.File != nil:
		q.Text, q.File = rec.File.Name, true
	default:
		q.Text = preview(rec.Text, QuotePreview)
	}
	return q
}

// byAgentID loads the message we received (incoming) or sent under that
// agent message ID: store.ErrNotFound when there is none; p.mu held.
func (p *Profile) byAgentID(id string, incoming bool, msgID uint64) (*messageRecord, error) {
	dir := "o"
	if incoming {
		dir = "i"
	}
	var seq uint64
	if err := getJSON(p.st, idxKey(id, dir, msgID), &seq); err != nil {
		return nil, err
	}
	if seq == 0 { // an action we sent, not a message
		return nil, fmt.Errorf("%w: no message %d", store.ErrNotFound, msgID)
	}
	rec, err := p.getRecord(id, seq)
	if err != nil {
		return nil, err
	}
	if rec.Incoming != incoming || rec.AgentID != msgID {
		return nil, fmt.Errorf("%w: no message %d", store.ErrNotFound, msgID)
	}
	return rec, nil
}

// target loads a message of a one-to-one conversation that an action of
// ours is about; p.mu held.
func (p *Profile) target(id string, seq uint64) (*messageRecord, error) {
	if !validContactID(id) {
		return nil, fmt.Errorf("%w: %q", ErrNoContact, id)
	}
	if ok, err := p.st.Has(groupKey(id)); err != nil || ok {
		return nil, errors.Join(err, fmt.Errorf("%w: replies, edits, deletions and reactions are for one-to-one chats", ErrInvalid))
	}
	rec, err := p.getRecord(id, seq)
	if errors.Is(err, store.ErrNotFound) {
		if _, cerr := p.contact(id); errors.Is(cerr, store.ErrNotFound) {
			return nil, fmt.Errorf("%w: %s", ErrNoContact, id)
		}
		return nil, fmt.Errorf("%w: no message %d", ErrInvalid, seq)
	}
	if err != nil {
		return nil, err
	}
	if rec.Hidden || rec.AgentID == 0 {
		return nil, fmt.Errorf("%w: no message %d", ErrInvalid, seq)
	}
	return rec, nil
}

// SendReply sends a text that quotes the message at position replyTo of
// the conversation (0: SendText). The quoted message must be there and
// not deleted.
func (p *Profile) SendReply(ctx context.Context, id, text string, replyTo uint64) (Message, error) {
	if replyTo == 0 {
		return p.SendText(ctx, id, text)
	}
	if err := checkText(text); err != nil {
		return Message{}, err
	}
	p.mu.Lock()
	rec, err := p.target(id, replyTo)
	p.mu.Unlock()
	if err != nil {
		return Message{}, err
	}
	if rec.Deleted {
		return Message{}, fmt.Errorf("%w: the message was deleted", ErrInvalid)
	}
	a := &action{Kind: bodyReply, Ref: msgRef{Recipient: rec.Incoming, MsgID: rec.AgentID}, Text: text}
	body, err := a.encode()
	if err != nil {
		return Message{}, err
	}
	agentID, err := p.send(ctx, id, body)
	if err != nil {
		return Message{}, err
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.storeOutgoingRecord(id, agentID, replyRecord(a, false), time.Now().UTC())
}

// replyRecord is the record of a reply, ours or received (incoming), with
// its quote from our side.
func replyRecord(a *action, incoming bool) *messageRecord {
	// A reply we received quotes its author's message (one we received)
	// or ours; a reply we sent, the other way round.
	return &messageRecord{Message: Message{Text: a.Text}, Act: &actState{QuoteIn: a.Ref.Recipient != incoming, QuoteID: a.Ref.MsgID}}
}

// send queues a body on a contact's connection.
func (p *Profile) send(ctx context.Context, id string, body []byte) (uint64, error) {
	if err := p.refuseLeft(id); err != nil {
		return 0, err
	}
	agentID, err := p.ag.Send(ctx, agent.ConnID(id), body)
	if errors.Is(err, agent.ErrNoConnection) {
		return 0, fmt.Errorf("%w: %s", ErrNoContact, id)
	}
	return agentID, err
}

// storeOutgoingRecord writes the record of a message we sent (a reply),
// like storeOutgoingMessage; p.mu must be held.
func (p *Profile) storeOutgoingRecord(id string, agentID uint64, rec *messageRecord, t time.Time) (Message, error) {
	c, err := p.contact(id)
	if err != nil {
		return Message{}, err
	}
	msg := &rec.Message
	msg.Contact, msg.Seq, msg.Time, msg.Status, msg.AgentID = id, c.NextSeq, t, StatusPending, agentID
	rec.AgentID = agentID
	if u, ok := p.early[id][agentID]; ok {
		msg.Status, msg.Reason = u.status, u.reason
		delete(p.early[id], agentID)
	}
	stampStatus(msg, msg.Status, t)
	c.NextSeq++
	c.LastText, c.LastTime = msg.Text, t
	if err := p.saveContact(c); err != nil {
		return Message{}, err
	}
	if err := putJSON(p.st, idxKey(id, "o", agentID), msg.Seq); err != nil {
		return Message{}, err
	}
	if err := putJSON(p.st, msgKey(id, msg.Seq), rec); err != nil {
		return Message{}, err
	}
	v := p.view(id, rec)
	p.listen(Event{Kind: "message", Message: &v, Contact: c})
	return v, nil
}

// EditMessage replaces the text of one of our text messages (a reply
// too) for both sides: ErrNotAllowed for a message of the contact's, a
// file or a deleted message.
func (p *Profile) EditMessage(ctx context.Context, id string, seq uint64, text string) (Message, error) {
	if err := checkText(text); err != nil {
		return Message{}, err
	}
	p.mu.Lock()
	rec, err := p.target(id, seq)
	p.mu.Unlock()
	switch {
	case err != nil:
		return Message{}, err
	case rec.Incoming:
		return Message{}, fmt.Errorf("%w: only your own messages can be edited", ErrNotAllowed)
	case rec.Deleted:
		return Message{}, fmt.Errorf("%w: the message was deleted", ErrNotAllowed)
	case rec.File != nil:
		return Message{}, fmt.Errorf("%w: only text messages can be edited", ErrNotAllowed)
	}
	return p.sendAction(ctx, id, &action{Kind: bodyEdit, Ref: msgRef{MsgID: rec.AgentID}, Text: text})
}

// DeleteMessage deletes a message. For everyone (only our own messages,
// else ErrNotAllowed): its content is replaced by nothing on both sides
// and it shows as deleted. For us only (any message): a tombstone without
// content takes its place, which Messages leaves out; the returned
// message (and the "update" event) has Hidden set. A received file's
// download is stopped and its stored chunks deleted either way.
func (p *Profile) DeleteMessage(ctx context.Context, id string, seq uint64, everyone bool) (Message, error) {
	p.mu.Lock()
	rec, err := p.target(id, seq)
	if err != nil || !everyone {
		defer p.mu.Unlock()
		if err != nil {
			return Message{}, err
		}
		return p.hide(id, rec)
	}
	p.mu.Unlock()
	switch {
	case rec.Incoming:
		return Message{}, fmt.Errorf("%w: only your own messages can be deleted for everyone", ErrNotAllowed)
	case rec.Deleted:
		return Message{}, fmt.Errorf("%w: the message was deleted already", ErrInvalid)
	}
	return p.sendAction(ctx, id, &action{Kind: bodyDelete, Ref: msgRef{MsgID: rec.AgentID}})
}

// React puts our reaction (one emoji, at most MaxReactionBytes) on a
// message of either side, replacing ours if there was one, or (on false)
// takes ours away.
func (p *Profile) React(ctx context.Context, id string, seq uint64, emoji string, on bool) (Message, error) {
	if on && len(emoji) > MaxReactionBytes {
		return Message{}, fmt.Errorf("%w: a reaction of %d bytes, the limit is %d", ErrTooLong, len(emoji), MaxReactionBytes)
	}
	if on && !validReaction(emoji) {
		return Message{}, fmt.Errorf("%w: a reaction is one emoji", ErrInvalid)
	}
	p.mu.Lock()
	rec, err := p.target(id, seq)
	if err == nil && rec.Deleted {
		err = fmt.Errorf("%w: the message was deleted", ErrInvalid)
	}
	if err == nil && (on && rec.act().Mine == emoji || !on && rec.act().Mine == "") {
		defer p.mu.Unlock()
		return p.view(id, rec), nil // nothing to change
	}
	p.mu.Unlock()
	if err != nil {
		return Message{}, err
	}
	return p.sendAction(ctx, id, &action{Kind: bodyReaction, Ref: msgRef{Recipient: rec.Incoming, MsgID: rec.AgentID}, Add: on, Emoji: emoji})
}

// sendAction sends an edit, deletion or reaction, then applies it here.
func (p *Profile) sendAction(ctx context.Context, id string, a *action) (Message, error) {
	body, err := a.encode()
	if err != nil {
		return Message{}, err
	}
	agentID, err := p.send(ctx, id, body)
	if err != nil {
		return Message{}, err
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	rec, err := p.applyOurs(id, agentID, a, time.Now().UTC())
	if err != nil {
		return Message{}, err
	}
	if rec == nil {
		return Message{}, fmt.Errorf("%w: the message is gone", ErrInvalid)
	}
	return p.view(id, rec), nil
}

// applyOurs applies an edit, deletion or reaction we sent under agentID,
// once: at send, or from the agent's outbox after a crash (reconcile). It
// returns the target's record, nil when it is not there; p.mu held.
func (p *Profile) applyOurs(id string, agentID uint64, a *action, t time.Time) (*messageRecord, error) {
	// Our body's recipient is the contact: a message of theirs is one we
	// received.
	rec, err := p.byAgentID(id, a.Ref.Recipient, a.Ref.MsgID)
	if err != nil && !errors.Is(err, store.ErrNotFound) {
		return nil, err
	}
	if err == nil {
		changed := false
		switch a.Kind {
		case bodyEdit:
			changed = !rec.Incoming && applyEdit(rec, a.Text, agentID, t)
		case bodyDelete:
			changed = !rec.Incoming && p.applyDelete(id, rec)
		case bodyReaction:
			changed = applyReaction(rec, true, a, agentID)
		}
		if changed {
			if err := p.saveChanged(id, rec, a.Kind != bodyReaction); err != nil {
				return nil, err
			}
		}
	} else {
		rec = nil
	}
	// Applied: the index tells reconcile, and setStatus that there is no
	// message of its own to update.
	if err := putJSON(p.st, idxKey(id, "o", agentID), uint64(0)); err != nil {
		return nil, err
	}
	if u, ok := p.early[id][agentID]; ok && u.status == StatusFailed {
		p.listen(Event{Kind: "problem", Text: "a change could not be sent to the contact: " + u.reason})
	}
	delete(p.early[id], agentID)
	return rec, nil
}

// reconcileAction handles a reply or an action of ours found in the
// agent's outbox without its index (a crash came after Send); p.mu held.
func (p *Profile) reconcileAction(id string, m agent.Received) error {
	a, err := decodeAction(m.Body)
	if err != nil {
		return nil // not one of ours to show (a group wrapper)
	}
	if a.Kind == bodyReply {
		_, err := p.storeOutgoingRecord(id, m.ID, replyRecord(a, false), time.Now().UTC())
		return err
	}
	_, err = p.applyOurs(id, m.ID, a, time.Now().UTC())
	return err
}

// receivedAction handles a reply, edit, deletion or reaction from a
// contact. A malformed one is reported and dropped; one about a message
// that is not here, or that its sender may not change, is dropped without
// a word and changes nothing.
func (p *Profile) receivedAction(id string, m agent.Received) error {
	a, err := decodeAction(m.Body)
	if err != nil {
		p.listen(Event{Kind: "problem", Text: "a malformed message action was dropped"})
		return nil
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.deleted[id] {
		return nil
	}
	if a.Kind == bodyReply {
		return p.receiveReply(id, m, a)
	}
	// The sender's own message is one we received.
	rec, err := p.byAgentID(id, !a.Ref.Recipient, a.Ref.MsgID)
	if errors.Is(err, store.ErrNotFound) {
		return nil
	}
	if err != nil {
		return err
	}
	changed := false
	switch a.Kind {
	case bodyEdit:
		changed = rec.Incoming && applyEdit(rec, a.Text, m.ID, m.Sent.UTC())
	case bodyDelete:
		changed = rec.Incoming && p.applyDelete(id, rec)
	case bodyReaction:
		changed = applyReaction(rec, false, a, m.ID)
	}
	if !changed {
		return nil // a repeat, an older change, or not the sender's to make
	}
	return p.saveChanged(id, rec, a.Kind != bodyReaction)
}

// receiveReply stores a reply like Received stores a text: index first,
// then the message, so a redelivery never shows it twice; p.mu held.
func (p *Profile) receiveReply(id string, m agent.Received, a *action) error {
	c, err := p.contact(id)
	if err != nil {
		return err
	}
	var b store.Batch
	seq, stored, err := p.incomingSeq(&b, c, m.ID)
	if err != nil || stored {
		return err
	}
	rec := replyRecord(a, true)
	rec.Message = Message{Contact: id, Seq: seq, Incoming: true, Text: a.Text, Time: m.Sent.UTC(), ReceivedAt: time.Now().UTC(),
		Missing: m.Integrity.Missing, BadHash: m.Integrity.BadHash, AgentID: m.ID}
	rec.AgentID = m.ID
	if err := p.storeIncoming(&b, m, c, seq, rec, a.Text, rec.Time); err != nil {
		return err
	}
	v := p.view(id, rec)
	p.listen(Event{Kind: "message", Message: &v, Contact: c})
	return nil
}

// applyEdit replaces a text message's text unless a later edit (by agent
// message ID) was applied already.
func applyEdit(rec *messageRecord, text string, editID uint64, at time.Time) bool {
	if rec.Hidden || rec.Deleted || rec.Notice || rec.File != nil || editID <= rec.act().EditID {
		return false
	}
	rec.Text, rec.Edited, rec.EditedAt, rec.Act.EditID = text, true, at, editID
	return true
}

// applyDelete empties a message and marks it deleted; a received file's
// stored data goes first. p.mu held.
func (p *Profile) applyDelete(id string, rec *messageRecord) bool {
	if rec.Hidden || rec.Deleted || rec.Notice {
		return false
	}
	if rec.File != nil {
		p.dropFileData(id, rec.Seq)
	}
	rec.Text, rec.File, rec.FileDesc, rec.Reason = "", nil, nil, ""
	rec.Edited, rec.EditedAt, rec.Act = false, time.Time{}, nil
	rec.Deleted = true
	return true
}

// applyReaction sets our reaction or the contact's unless a later one (by
// agent message ID) was applied already.
func applyReaction(rec *messageRecord, mine bool, a *action, reactionID uint64) bool {
	if rec.Hidden || rec.Deleted || rec.Notice {
		return false
	}
	emoji := ""
	if a.Add {
		emoji = a.Emoji
	}
	st := rec.act()
	if mine {
		if reactionID <= st.MineID {
			return false
		}
		st.Mine, st.MineID = emoji, reactionID
	} else {
		if reactionID <= st.TheirsID {
			return false
		}
		st.Theirs, st.TheirsID = emoji, reactionID
	}
	return true
}

// hide deletes a message for us only: a tombstone with its position,
// direction and agent message ID keeps the indexes pointing somewhere (a
// redelivery finds it stored, a quote finds it gone); p.mu held.
func (p *Profile) hide(id string, rec *messageRecord) (Message, error) {
	if rec.File != nil {
		p.dropFileData(id, rec.Seq)
	}
	tomb := &messageRecord{Message: Message{Contact: id, Seq: rec.Seq, Incoming: rec.Incoming, Hidden: true}, AgentID: rec.AgentID}
	if err := p.saveChanged(id, tomb, true); err != nil {
		return Message{}, err
	}
	return p.view(id, tomb), nil
}

// saveChanged stores a changed message and tells the page: the chat
// list's summary first (when summary is set and it changes), then the
// record, whose state makes the change happen once; p.mu held.
func (p *Profile) saveChanged(id string, rec *messageRecord, summary bool) error {
	var c *Contact
	if summary {
		var err error
		if c, err = p.summaryWith(id, rec); err != nil {
			return err
		}
		if c != nil {
			if err := p.saveContact(c); err != nil {
				return err
			}
		}
	}
	rec.Quote, rec.Reactions = nil, nil
	if err := putJSON(p.st, msgKey(id, rec.Seq), rec); err != nil {
		return err
	}
	v := p.view(id, rec)
	p.listen(Event{Kind: "update", Message: &v, Contact: c})
	return nil
}

// summaryWith returns the contact with its last text as it is once rec
// replaces the stored record, or nil when it does not change; p.mu held.
func (p *Profile) summaryWith(id string, changed *messageRecord) (*Contact, error) {
	keys, err := p.st.List(contactDir(id).Join("m"))
	if err != nil {
		return nil, err
	}
	last := ""
	for i := len(keys) - 1; i >= 0; i-- {
		rec := changed
		if keys[i] != msgKey(id, changed.Seq) {
			if rec, err = p.getRecord(id, seqOf(keys[i])); err != nil {
				return nil, err
			}
		}
		if rec.Hidden {
			continue
		}
		if rec.Seq > changed.Seq {
			return nil, nil // a later message is the summary
		}
		last = summaryText(rec)
		break
	}
	c, err := p.contact(id)
	if err != nil || c.LastText == last {
		return nil, err
	}
	c.LastText = last
	return c, nil
}

// seqOf is the position in a message record's key.
func seqOf(k store.Key) uint64 {
	var n uint64
	for _, ch := range k.Base() {
		n = n*10 + uint64(ch-'0')
	}
	return n
}

// summaryText is what the chat list shows of a message.
func summaryText(rec *messageRecord) string {
	switch {
	case rec.Deleted:
		return "Message deleted"
	case rec.File != nil:
		return rec.File.Name
	}
	return rec.Text
}

// downloads are the downloads running, by contact/position, so that
// deleting a message can stop them. Its own lock: p.fmu is held while a
// file relay is dialled.
type downloads struct {
	mu sync.Mutex
	m  map[string][]*running
}

// trackDownload registers a running download of the file at seq; the
// returned func ends it.
func (p *Profile) trackDownload(ctx context.Context, id string, seq uint64) (context.Context, func()) {
	ctx, cancel := context.WithCancel(ctx)
	key := fmt.Sprintf("%s/%d", id, seq)
	r := &running{cancel: cancel, done: make(chan struct{})}
	d := &p.downloads
	d.mu.Lock()
	if d.m == nil {
		d.m = map[string][]*running{}
	}
	d.m[key] = append(d.m[key], r)
	d.mu.Unlock()
	return ctx, func() {
		d.mu.Lock()
		d.m[key] = slices.DeleteFunc(d.m[key], func(x *running) bool { return x == r })
		if len(d.m[key]) == 0 {
			delete(d.m, key)
		}
		d.mu.Unlock()
		cancel()
		close(r.done)
	}
}

// dropFileData stops the downloads of the received file at seq and
// deletes what is stored of it (a download still writing is cleaned up
// by setFileState when it ends).
func (p *Profile) dropFileData(id string, seq uint64) {
	d := &p.downloads
	d.mu.Lock()
	for _, r := range d.m[fmt.Sprintf("%s/%d", id, seq)] {
		r.cancel()
	}
	d.mu.Unlock()
	if err := p.st.DeleteAll(fileDir(id, seq)); err != nil {
		p.listen(Event{Kind: "problem", Text: "could not delete a file's data: " + err.Error()})
	}
}

// discardDeletedFile is setFileState's end for a file whose message was
// deleted while it downloaded: what the download wrote goes; p.mu held.
func (p *Profile) discardDeletedFile(id string, rec *messageRecord) error {
	err := p.st.DeleteAll(fileDir(id, rec.Seq))
	if err == nil && rec.FileDesc != nil {
		rec.FileDesc = nil
		err = putJSON(p.st, msgKey(id, rec.Seq), rec)
	}
	return errors.Join(err, fmt.Errorf("%w: the message was deleted", ErrInvalid))
}

// MessageInfo is when a message went through its steps.
type MessageInfo struct {
	Contact     string    `json:"contact"`
	Seq         uint64    `json:"seq"`
	Incoming    bool      `json:"incoming"`
	Time        time.Time `json:"time"` // sent by us, or received by the contact's relay
	Status      Status    `json:"status,omitempty"`
	SentAt      time.Time `json:"sent_at,omitzero"`
	DeliveredAt time.Time `json:"delivered_at,omitzero"`
	ReceivedAt  time.Time `json:"received_at,omitzero"`
	Edited      bool      `json:"edited,omitempty"`
	EditedAt    time.Time `json:"edited_at,omitzero"`
	Deleted     bool      `json:"deleted,omitempty"`
	// A group message of ours: how many members it went to and those
	// whose devices stored it.
	Recipients  int      `json:"recipients,omitempty"`
	DeliveredTo []string `json:"delivered_to,omitempty"`
}

// MessageInfo returns a message's times.
func (p *Profile) MessageInfo(id string, seq uint64) (MessageInfo, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	rec, err := p.getRecord(id, seq)
	if errors.Is(err, store.ErrNotFound) || err == nil && rec.Hidden {
		if _, cerr := p.contact(id); errors.Is(cerr, store.ErrNotFound) {
			return MessageInfo{}, fmt.Errorf("%w: %s", ErrNoContact, id)
		}
		return MessageInfo{}, fmt.Errorf("%w: no message %d", ErrInvalid, seq)
	}
	if err != nil {
		return MessageInfo{}, err
	}
	m := rec.Message
	return MessageInfo{Contact: id, Seq: seq, Incoming: m.Incoming, Time: m.Time, Status: m.Status,
		SentAt: m.SentAt, DeliveredAt: m.DeliveredAt, ReceivedAt: m.ReceivedAt, Edited: m.Edited, EditedAt: m.EditedAt,
		Deleted: m.Deleted, Recipients: m.Recipients, DeliveredTo: m.DeliveredTo}, nil
}
