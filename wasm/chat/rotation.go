package chat

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/wisp-chat/wisp/server/wire"
	"github.com/wisp-chat/wisp/wasm/agent"
)

// Receiving relays and queue rotation. The agent replaces every receiving
// queue on its own schedule (about every 7 days or 1,000 messages) on the
// same relay, or on the profile's receiving relay when the current one
// was removed from the profile's list. ChangeRelay does it on demand, and
// SetRelays moves every chat off a removed relay.

// QueueInfo tells where a contact's messages reach us.
type QueueInfo struct {
	Relay string `json:"relay"`
	// NextRelay is set while the queue is being changed.
	NextRelay string `json:"next_relay,omitempty"`
}

// RelayUse is how many chats receive on a relay.
type RelayUse struct {
	Relay string `json:"relay"`
	Chats int    `json:"chats"`
	// Leaving: the relay is no longer in the profile's list; its chats are
	// being moved to the receiving relay.
	Leaving bool `json:"leaving,omitempty"`
}

// ContactQueue returns where a contact's (or a group member
// connection's) messages reach us.
func (p *Profile) ContactQueue(id string) (QueueInfo, error) {
	info, err := p.ag.Connection(agent.ConnID(id))
	if err != nil {
		return QueueInfo{}, fmt.Errorf("%w: %s", ErrNoContact, id)
	}
	return QueueInfo{Relay: info.Relay, NextRelay: info.NextRelay}, nil
}

// ChangeRelay replaces the queue a contact sends to us with a new one on
// relay, which must be one of the profile's relays (it may be the one in
// use: the queue's IDs and keys are new either way). The contact moves to
// it when it next sends; the old queue is then deleted.
func (p *Profile) ChangeRelay(ctx context.Context, id, relay string) error {
	clean, err := cleanRelays([]string{relay}, p.m.allowLocal)
	if err != nil {
		return err
	}
	p.mu.Lock()
	ok := slices.Contains(p.rec.Relays, clean[0])
	p.mu.Unlock()
	if !ok {
		return fmt.Errorf("%w: add the relay in Settings first", ErrInvalid)
	}
	addr, err := wire.ParseAddress(clean[0])
	if err != nil {
		return fmt.Errorf("%w: %w", ErrInvalid, err)
	}
	err = p.ag.Rotate(ctx, agent.ConnID(id), addr)
	switch {
	case errors.Is(err, agent.ErrNoConnection):
		return fmt.Errorf("%w: %s", ErrNoContact, id)
	case errors.Is(err, agent.ErrNotConnected), errors.Is(err, agent.ErrRotating):
		return fmt.Errorf("%w: %w", ErrInvalid, err)
	}
	return err
}

// RelayUsage counts the chats (contacts and group member connections)
// receiving on each relay, the profile's relays first.
func (p *Profile) RelayUsage() []RelayUse {
	p.mu.Lock()
	listed := slices.Clone(p.rec.Relays)
	p.mu.Unlock()
	count := map[string]int{}
	for _, id := range p.ag.Connections() {
		if r, err := p.ag.Route(id); err == nil && r.Relay != "" {
			count[r.Relay]++
		}
	}
	out := make([]RelayUse, 0, len(count)+len(listed))
	for _, r := range listed {
		out = append(out, RelayUse{Relay: r, Chats: count[r]})
		delete(count, r)
	}
	for r, n := range count {
		out = append(out, RelayUse{Relay: r, Chats: n, Leaving: true})
	}
	slices.SortStableFunc(out[len(listed):], func(a, b RelayUse) int { return strings.Compare(a.Relay, b.Relay) })
	return out
}

// rotationRelay is where a scheduled rotation puts a queue now on
// current: the same relay while it is in the profile's list, else the
// receiving relay.
func (p *Profile) rotationRelay(current wire.Address) wire.Address {
	p.mu.Lock()
	listed := slices.Contains(p.rec.Relays, current.String())
	receive := p.rec.Receive
	p.mu.Unlock()
	if listed || receive == "" {
		return current
	}
	if a, err := wire.ParseAddress(receive); err == nil {
		return a
	}
	return current
}

// moveOff starts a rotation for every connection that receives on a
// relay no longer in the profile's list (and is not already moving). It
// runs after unlocking, after SetRelays and after every finished
// rotation, so one that failed (a relay down) is tried again.
func (p *Profile) moveOff() {
	p.bg.run(func() {
		p.mu.Lock()
		listed := slices.Clone(p.rec.Relays)
		receive := p.rec.Receive
		p.mu.Unlock()
		to, err := wire.ParseAddress(receive)
		if err != nil {
			return // no relay to move to
		}
		for _, id := range p.ag.Connections() {
			r, err := p.ag.Route(id)
			if err != nil || r.State != agent.StateConnected || r.NextRelay != "" || r.Relay == "" || slices.Contains(listed, r.Relay) {
				continue
			}
			ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
			_ = p.ag.Rotate(ctx, id, to) // a failure is tried again on the next pass
			cancel()
		}
	})
}

// Rotation reports a queue rotation to the page: the contact's details
// and Settings' relay list show it.
func (e *profileEvents) Rotation(conn agent.ConnID, relay wire.Address, done bool, err error) {
	p := e.p()
	ev := Event{Kind: "rotation", ID: string(conn), Relay: relay.String(), Up: done}
	if err != nil {
		ev.Text = "the contact did not move to the new relay; the old one is still used"
	}
	p.listen(ev)
	if done {
		p.moveOff()
	}
}
