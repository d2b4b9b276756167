package chat

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"sync"

	"github.com/wisp-chat/wisp/wasm/agent"
	"github.com/wisp-chat/wisp/wasm/store"
)

// bodyProfile is a profile update: our new display name and avatar, sent
// to the contacts that know us by our profile (SPEC.md §1).
const bodyProfile = 'p'

// encodeProfileUpdate returns 'p' || JSON {name, avatar}.
func encodeProfileUpdate(pi peerInfo) ([]byte, error) {
	b, err := json.Marshal(pi)
	if err != nil {
		return nil, err
	}
	return append([]byte{bodyProfile}, b...), nil
}

// decodeProfileUpdate checks a profile update like a handshake's peer
// info, but refuses instead of replacing what does not pass: a name that
// is empty, too long or has control or invisible characters, an avatar
// over MaxAvatarBytes.
func decodeProfileUpdate(b []byte) (peerInfo, error) {
	var pi peerInfo
	if len(b) < 1 || b[0] != bodyProfile {
		return pi, fmt.Errorf("%w: not a profile update", ErrInvalid)
	}
	if err := json.Unmarshal(b[1:], &pi); err != nil {
		return peerInfo{}, fmt.Errorf("%w: profile update: %w", ErrInvalid, err)
	}
	name, err := cleanName(pi.Name)
	if err != nil {
		return peerInfo{}, err
	}
	if len(pi.Avatar) > MaxAvatarBytes {
		return peerInfo{}, fmt.Errorf("%w: an avatar of %d bytes", ErrTooLong, len(pi.Avatar))
	}
	pi.Name = name
	if len(pi.Avatar) == 0 {
		pi.Avatar = nil
	}
	return pi, nil
}

// Update changes the display name and avatar. New connections get them in
// the handshake; every contact that knows us by our profile (not
// incognito, connected or connecting) is sent a profile update, and a
// contact whose invitation or handshake was made before it gets one when
// it connects. Group members are not told (SPEC.md §3.15). A passphrase
// profile listed on the chooser (SetListing) has its plaintext copy
// rewritten.
func (p *Profile) Update(name string, avatar []byte) error {
	p.umu.Lock()
	defer p.umu.Unlock()
	if err := p.update(name, avatar); err != nil {
		return err
	}
	p.sendProfileUpdates()
	return p.m.refreshListing(p)
}

// profileRecipient reports whether a contact is told of profile updates.
func profileRecipient(c *Contact) bool {
	return c.Group == nil && c.Incognito == "" && (c.State == ContactConnected || c.State == ContactConnecting)
}

// sendProfileUpdates sends the profile to every contact that knows us by
// it; p.umu must be held. A contact it cannot be queued for is reported
// as a problem (the profile itself is saved).
func (p *Profile) sendProfileUpdates() {
	cs, err := p.Contacts()
	if err != nil {
		p.listen(Event{Kind: "problem", Text: "could not tell contacts about the new profile: " + err.Error()})
		return
	}
	for i := range cs {
		if profileRecipient(&cs[i]) {
			p.sendProfileTo(cs[i].ID)
		}
	}
}

// sendProfileTo queues a profile update for one contact; p.umu must be
// held, so that the last update queued is the profile saved last.
func (p *Profile) sendProfileTo(id string) {
	p.mu.Lock()
	body, err := encodeProfileUpdate(peerInfo{Name: p.rec.DisplayName, Avatar: p.rec.Avatar})
	p.mu.Unlock()
	if err != nil {
		return
	}
	agentID, err := p.ag.Send(context.Background(), agent.ConnID(id), body)
	if errors.Is(err, agent.ErrNotConnected) || errors.Is(err, agent.ErrNoConnection) {
		return // deleted or left meanwhile
	}
	if err != nil {
		p.listen(Event{Kind: "problem", Text: "could not send the new profile to a contact: " + err.Error()})
		return
	}
	// Its statuses have no message: the index names position 0, so they
	// are not kept as statuses of a message yet to be stored.
	p.mu.Lock()
	defer p.mu.Unlock()
	if err := putJSON(p.st, idxKey(id, "o", agentID), uint64(0)); err != nil {
		p.listen(Event{Kind: "problem", Text: "could not save a profile update: " + err.Error()})
	}
	if e := p.early[id]; e != nil {
		delete(e, agentID) // reported before the index was written
	}
}

// profileOnConnect sends our profile to a contact that just connected
// when it was created (invitation or join) before our last profile
// change, since its handshake carried the old one. It runs apart: the
// agent calls Connected holding the connection, which Send needs. p.mu
// must be held.
func (p *Profile) profileOnConnect(c *Contact) {
	if !profileRecipient(c) || p.rec.Updated.IsZero() || !p.rec.Updated.After(c.Created) {
		return
	}
	id := c.ID
	p.bg.run(func() {
		p.umu.Lock()
		defer p.umu.Unlock()
		p.sendProfileTo(id)
	})
}

// background runs goroutines that must end before the profile closes.
type background struct {
	mu      sync.Mutex
	stopped bool
	wg      sync.WaitGroup
}

// run starts f, unless stop was called.
func (b *background) run(f func()) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.stopped {
		return
	}
	b.wg.Go(f)
}

// stop refuses new goroutines and waits for those running.
func (b *background) stop() {
	b.mu.Lock()
	b.stopped = true
	b.mu.Unlock()
	b.wg.Wait()
}

// profileReceived applies a contact's profile update: their name
// (PeerName, and Name unless we renamed them) and avatar. A malformed
// update is reported and changes nothing. Applying one twice (the relay
// delivers it again after a crash) writes the same values again.
func (p *Profile) profileReceived(id string, body []byte) error {
	pi, err := decodeProfileUpdate(body)
	if err != nil {
		p.listen(Event{Kind: "problem", Text: "a contact's profile update was malformed and ignored"})
		return nil
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.deleted[id] {
		return nil
	}
	c, err := p.contact(id)
	if errors.Is(err, store.ErrNotFound) {
		return nil // not a contact (any more)
	}
	if err != nil {
		return err
	}
	if c.Group != nil {
		return nil
	}
	if c.PeerName == "" || c.Name == c.PeerName {
		c.Name = pi.Name // not renamed by the user
	}
	c.PeerName, c.Avatar = pi.Name, pi.Avatar
	if err := p.saveContact(c); err != nil {
		return err
	}
	p.listen(Event{Kind: "contact", Contact: c})
	return nil
}
