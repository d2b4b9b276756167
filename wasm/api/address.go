package api

import (
	"context"

	"github.com/wisp-chat/wisp/wasm/chat"
	"github.com/wisp-chat/wisp/wasm/rpc"
)

// EnabledParams turn the contact address on or off.
type EnabledParams struct {
	Enabled bool `json:"enabled"`
}

// RequestParams answer a contact request.
type RequestParams struct {
	ID string `json:"id"`
	// Incognito (request.accept): the requester sees a random name.
	Incognito bool `json:"incognito,omitempty"`
}

// registerAddress installs the contact address methods (chat/address.go):
// the owner's address.create, address.show, address.replace,
// address.delete, address.set_enabled, address.requests, request.accept
// and request.reject, and the requester's address.check and
// address.connect (a link opened or pasted). Events: "request" (Text:
// the request's ID) and "request_dropped" (Text: the requester's name).
func (s *Service) registerAddress(r *rpc.Router) {
	rpc.Handle(r, "address.create", timed(func(ctx context.Context, _ rpc.None) (chat.ContactAddress, error) {
		p, err := s.profile()
		if err != nil {
			return chat.ContactAddress{}, err
		}
		a, err := p.CreateAddress(ctx)
		return a, coded(err)
	}))
	rpc.Handle(r, "address.show", func(context.Context, rpc.None) (chat.ContactAddress, error) {
		p, err := s.profile()
		if err != nil {
			return chat.ContactAddress{}, err
		}
		a, err := p.Address()
		return a, coded(err)
	})
	rpc.Handle(r, "address.replace", timed(func(ctx context.Context, _ rpc.None) (chat.ContactAddress, error) {
		p, err := s.profile()
		if err != nil {
			return chat.ContactAddress{}, err
		}
		a, err := p.ReplaceAddress(ctx)
		return a, coded(err)
	}))
	rpc.Handle(r, "address.delete", timed(func(ctx context.Context, _ rpc.None) (rpc.None, error) {
		p, err := s.profile()
		if err != nil {
			return rpc.None{}, err
		}
		return rpc.None{}, coded(p.DeleteAddress(ctx))
	}))
	rpc.Handle(r, "address.set_enabled", func(_ context.Context, ep EnabledParams) (chat.ContactAddress, error) {
		p, err := s.profile()
		if err != nil {
			return chat.ContactAddress{}, err
		}
		a, err := p.SetAddressEnabled(ep.Enabled)
		return a, coded(err)
	})
	rpc.Handle(r, "address.requests", func(context.Context, rpc.None) ([]chat.ContactRequest, error) {
		p, err := s.profile()
		if err != nil {
			return nil, err
		}
		rs, err := p.Requests()
		return rs, coded(err)
	})
	rpc.Handle(r, "request.accept", timed(func(ctx context.Context, rp RequestParams) (chat.Contact, error) {
		p, err := s.profile()
		if err != nil {
			return chat.Contact{}, err
		}
		c, err := p.AcceptRequest(ctx, rp.ID, rp.Incognito)
		return c, coded(err)
	}))
	rpc.Handle(r, "request.reject", func(_ context.Context, rp RequestParams) (rpc.None, error) {
		p, err := s.profile()
		if err != nil {
			return rpc.None{}, err
		}
		return rpc.None{}, coded(p.RejectRequest(rp.ID))
	})
	rpc.Handle(r, "address.check", func(_ context.Context, jp JoinParams) (rpc.None, error) {
		m, err := s.mgr()
		if err != nil {
			return rpc.None{}, err
		}
		return rpc.None{}, coded(m.CheckAddress(jp.Link))
	})
	rpc.Handle(r, "address.connect", timed(func(ctx context.Context, jp JoinParams) (chat.Contact, error) {
		p, err := s.profile()
		if err != nil {
			return chat.Contact{}, err
		}
		c, err := p.ConnectAddress(ctx, jp.Link, jp.Incognito)
		return c, coded(err)
	}))
}
