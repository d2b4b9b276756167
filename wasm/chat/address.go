package chat

// Contact address (wasm/agent SPEC.md, "Contact address"): a long-lived
// link anyone can use to ask to connect. The agent keeps the address and
// the requests waiting for an answer; this file shows them to the page,
// turns an accepted request into a contact (as joining an invitation
// does), and keeps the requester's pending contact ("Request sent").
//
//	a, err := p.CreateAddress(ctx)             // a.Link, a.QR (PNG)
//	// someone else:
//	c, err := q.ConnectAddress(ctx, a.Link, false) // c.Requested, state invited
//	// back here, after the "request" event:
//	reqs, err := p.Requests()                  // "Bob wants to connect"
//	c, err := p.AcceptRequest(ctx, reqs[0].ID, false)
//
// Events: "request" (Text: the new request's ID) when one arrives, and
// "request_dropped" (Text: the requester's name) when the oldest waiting
// request was dropped to keep at most agent.MaxRequests.

import (
	"context"
	"fmt"
	"time"

	"github.com/wisp-chat/wisp/server/wire"
	"github.com/wisp-chat/wisp/wasm/agent"
)

// ContactAddress is the profile's contact address as the page shows it.
type ContactAddress struct {
	Link string `json:"link"`
	QR   []byte `json:"qr"` // PNG
	// Enabled: requests are shown. Off, they are dropped unseen and
	// nobody is told; the link keeps working.
	Enabled bool      `json:"enabled"`
	Created time.Time `json:"created"`
}

// ContactRequest is a request waiting for an answer: who asks to connect.
type ContactRequest struct {
	ID       string    `json:"id"`
	Name     string    `json:"name"`
	Avatar   []byte    `json:"avatar,omitempty"`
	Received time.Time `json:"received"`
}

var _ agent.AddressEvents = (*profileEvents)(nil)

// ContactRequest tells the page that a request arrived.
func (e *profileEvents) ContactRequest(r agent.Request) {
	e.p().listen(Event{Kind: "request", Text: r.ID})
}

// RequestDropped tells the page who was dropped from the full list.
func (e *profileEvents) RequestDropped(r agent.Request) {
	e.p().listen(Event{Kind: "request_dropped", Text: parsePeerInfo(r.Info).Name})
}

func (p *Profile) addressView(info agent.AddressInfo) (ContactAddress, error) {
	link, err := info.Address.Link(p.m.cfg.Origin)
	if err != nil {
		return ContactAddress{}, err
	}
	qr, err := agent.QRCode(link, 512)
	if err != nil {
		return ContactAddress{}, err
	}
	return ContactAddress{Link: link, QR: qr, Enabled: info.Enabled, Created: info.Created}, nil
}

// CreateAddress creates the profile's contact address on its receiving
// relay; agent.ErrAddressExists when it has one.
func (p *Profile) CreateAddress(ctx context.Context) (ContactAddress, error) {
	relay, err := p.receiveRelay()
	if err != nil {
		return ContactAddress{}, err
	}
	info, err := p.ag.CreateAddress(ctx, relay, agent.Tag{})
	if err != nil {
		return ContactAddress{}, err
	}
	return p.addressView(info)
}

// ReplaceAddress gives the profile a new address (the old link stops
// working); agent.ErrNoAddress when it has none.
func (p *Profile) ReplaceAddress(ctx context.Context) (ContactAddress, error) {
	relay, err := p.receiveRelay()
	if err != nil {
		return ContactAddress{}, err
	}
	info, err := p.ag.ReplaceAddress(ctx, relay, agent.Tag{})
	if err != nil {
		return ContactAddress{}, err
	}
	return p.addressView(info)
}

// Address returns the profile's address; agent.ErrNoAddress when none.
func (p *Profile) Address() (ContactAddress, error) {
	info, err := p.ag.Address()
	if err != nil {
		return ContactAddress{}, err
	}
	return p.addressView(info)
}

// DeleteAddress deletes the address and the requests waiting for an
// answer. Contacts made through it stay.
func (p *Profile) DeleteAddress(ctx context.Context) error { return p.ag.DeleteAddress(ctx) }

// SetAddressEnabled turns the address on or off and returns it.
func (p *Profile) SetAddressEnabled(on bool) (ContactAddress, error) {
	if err := p.ag.SetAddressEnabled(on); err != nil {
		return ContactAddress{}, err
	}
	return p.Address()
}

// Requests lists the requests waiting for an answer, oldest first.
func (p *Profile) Requests() ([]ContactRequest, error) {
	rs, err := p.ag.Requests()
	if err != nil {
		return nil, err
	}
	out := make([]ContactRequest, 0, len(rs))
	for _, r := range rs {
		pi := parsePeerInfo(r.Info)
		out = append(out, ContactRequest{ID: r.ID, Name: pi.Name, Avatar: pi.Avatar, Received: r.Received})
	}
	return out, nil
}

// request finds a waiting request.
func (p *Profile) request(id string) (ContactRequest, error) {
	rs, err := p.Requests()
	if err != nil {
		return ContactRequest{}, err
	}
	for _, r := range rs {
		if r.ID == id {
			return r, nil
		}
	}
	return ContactRequest{}, fmt.Errorf("%w: %q", agent.ErrNoRequest, id)
}

// AcceptRequest accepts a waiting request: the requester becomes a
// contact, connecting, as when we join an invitation. With incognito,
// they see a random name used for them only.
func (p *Profile) AcceptRequest(ctx context.Context, id string, incognito bool) (Contact, error) {
	req, err := p.request(id)
	if err != nil {
		return Contact{}, err
	}
	return p.connect(incognito, func(relay wire.Address, info []byte) (agent.ConnID, error) {
		return p.ag.AcceptRequest(ctx, id, relay, info)
	}, func(c *Contact, fresh bool) {
		if fresh {
			c.Name, c.PeerName, c.Avatar, c.State = req.Name, req.Name, req.Avatar, ContactConnecting
		}
	})
}

// RejectRequest forgets a waiting request; the requester is not told.
func (p *Profile) RejectRequest(id string) error { return p.ag.RejectRequest(id) }

// parseAddress parses an address link and checks that this version can
// use it and that its relay may be used.
func (m *Manager) parseAddress(link string) (agent.ContactAddress, error) {
	addr, err := agent.ParseAddress(link, agent.Versions)
	if err != nil {
		return addr, err
	}
	if addr.Tag.Type != agent.TagNone {
		return addr, fmt.Errorf("%w: joining a group through a link", agent.ErrAddressVersion)
	}
	return addr, m.CheckRelay(addr.Relay)
}

// CheckAddress checks an address link without using it.
func (m *Manager) CheckAddress(link string) error {
	_, err := m.parseAddress(link)
	return err
}

// ConnectAddress asks the owner of an address link to connect. The
// returned contact is invited and Requested ("Request sent") until the
// owner accepts; if they reject it or never answer, it stays so until it
// is deleted (DeleteContact cancels the request). It fails before
// anything is created on the link errors of package agent,
// agent.ErrOwnAddress, or agent.ErrLocalRelay, and with
// agent.ErrAddressGone when the address was deleted or replaced.
func (p *Profile) ConnectAddress(ctx context.Context, link string, incognito bool) (Contact, error) {
	addr, err := p.m.parseAddress(link)
	if err != nil {
		return Contact{}, err
	}
	return p.connect(incognito, func(relay wire.Address, info []byte) (agent.ConnID, error) {
		return p.ag.RequestContact(ctx, addr, relay, info)
	}, func(c *Contact, fresh bool) {
		if fresh {
			c.Name, c.State = "Request sent", ContactInvited
		}
		c.Requested = true
	})
}
