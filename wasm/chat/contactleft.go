package chat

import (
	"errors"
	"fmt"

	"github.com/wisp-chat/wisp/server/wire"
	"github.com/wisp-chat/wisp/wasm/store"
)

// ReasonContactLeft is the Reason of an outgoing message that failed
// because the contact left: they deleted the connection, or their relay
// answered AUTH (their queue is gone).
const ReasonContactLeft = "contact_left"

// refuseLeft returns ErrContactLeft when the contact left (state
// deleted); other problems are left to the send that follows.
func (p *Profile) refuseLeft(id string) error {
	p.mu.Lock()
	defer p.mu.Unlock()
	c, err := p.contact(id)
	if err == nil && c.Group == nil && c.State == ContactDeleted {
		return fmt.Errorf("%w: %s deleted the connection", ErrContactLeft, c.Name)
	}
	return nil
}

// peerLeft handles PeerDeleted for a contact.
func (p *Profile) peerLeft(id string) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.contactLeft(id)
}

// sendRefused handles a message the contact's relay refused for good:
// AUTH means the contact's queue is gone (they deleted the connection and
// their notice did not reach us), and the contact left. It reports
// whether it handled the failure; p.mu must be held.
func (p *Profile) sendRefused(id string, agentID uint64, err error) bool {
	if !errors.Is(err, wire.CodeAuth) {
		return false
	}
	p.setStatus(id, agentID, StatusFailed, ReasonContactLeft)
	p.contactLeft(id)
	return true
}

// contactLeft marks a contact deleted (the page says "left") and fails
// its outgoing messages still pending with ReasonContactLeft; sent ones
// stay sent. Doing it again changes nothing. p.mu must be held.
func (p *Profile) contactLeft(id string) {
	if p.deleted[id] {
		return // we are deleting it ourselves
	}
	c, err := p.contact(id)
	if errors.Is(err, store.ErrNotFound) || (err == nil && c.Group != nil) {
		return
	}
	if err != nil {
		p.listen(Event{Kind: "problem", Text: "could not update a contact"})
		return
	}
	if c.State == ContactDeleted {
		return
	}
	c.State = ContactDeleted
	if err := p.saveContact(c); err != nil {
		p.listen(Event{Kind: "problem", Text: "could not update a contact"})
		return
	}
	p.listen(Event{Kind: "contact", Contact: c})
	p.failPending(id)
}

// failPending fails the contact's outgoing messages still pending. The
// agent sends a connection's messages in order, so the pending ones are
// the newest: the outgoing index is read from the newest entry back to
// the first message the relay accepted (sent or delivered). A message
// whose record is not stored yet (its SendText is finishing) fails when
// the agent reports the relay's refusal. p.mu must be held.
func (p *Profile) failPending(id string) {
	keys, err := p.st.List(contactDir(id).Join("o"))
	if err != nil {
		p.listen(Event{Kind: "problem", Text: "could not list a contact's messages"})
		return
	}
	for i := len(keys) - 1; i >= 0; i-- {
		var seq uint64
		if err := getJSON(p.st, keys[i], &seq); err != nil || seq == 0 {
			continue // seq 0: a body without a message (a profile update)
		}
		m, err := p.getMessage(id, seq)
		if err != nil {
			continue
		}
		if m.Status == StatusSent || m.Status == StatusDelivered {
			break
		}
		if m.Status == StatusPending {
			p.setStatus(id, m.AgentID, StatusFailed, ReasonContactLeft)
		}
	}
}
