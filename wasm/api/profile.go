package api

import (
	"context"
	"fmt"

	"github.com/wisp-chat/wisp/wasm/chat"
	"github.com/wisp-chat/wisp/wasm/rpc"
)

// ProfileParams change the unlocked profile's name and picture.
type ProfileParams struct {
	Name   string `json:"name"`
	Avatar []byte `json:"avatar,omitempty"`
}

// PassphraseParams set, change or remove a profile's passphrase: Old is
// "" for a profile without one, New "" removes it.
type PassphraseParams struct {
	ID  string `json:"id"`
	Old string `json:"old"`
	New string `json:"new"`
}

// ListingParams turn on or off showing the unlocked profile's name and
// picture on this device's profile chooser.
type ListingParams struct {
	Show bool `json:"show"`
}

// registerProfile installs the methods of the profile's settings and the
// invitations' listing. (QR pictures are read by the page's own decoder
// module, wasm/qrworker, not by the core.)
func (s *Service) registerProfile(r *rpc.Router) {
	rpc.Handle(r, "profile.update", func(_ context.Context, pp ProfileParams) (chat.ProfileInfo, error) {
		p, err := s.profile()
		if err != nil {
			return chat.ProfileInfo{}, err
		}
		if err := p.Update(pp.Name, pp.Avatar); err != nil {
			return chat.ProfileInfo{}, coded(err)
		}
		return p.Info(), nil
	})
	rpc.Handle(r, "profile.passphrase", func(_ context.Context, pp PassphraseParams) (rpc.None, error) {
		m, err := s.mgr()
		if err != nil {
			return rpc.None{}, err
		}
		return rpc.None{}, coded(m.ChangePassphrase(pp.ID, pp.Old, pp.New))
	})
	rpc.Handle(r, "profile.listing", func(_ context.Context, lp ListingParams) (chat.ProfileSummary, error) {
		m, err := s.mgr()
		if err != nil {
			return chat.ProfileSummary{}, err
		}
		s.mu.Lock()
		id := s.id
		s.mu.Unlock()
		if id == "" {
			return chat.ProfileSummary{}, rpc.Errorf(CodeLocked, "no profile is unlocked")
		}
		if err := m.SetListing(id, lp.Show); err != nil {
			return chat.ProfileSummary{}, coded(err)
		}
		list, err := m.Profiles()
		if err != nil {
			return chat.ProfileSummary{}, coded(err)
		}
		for _, ps := range list {
			if ps.ID == id {
				return ps, nil
			}
		}
		return chat.ProfileSummary{}, coded(fmt.Errorf("%w: %s", chat.ErrNoProfile, id))
	})
	rpc.Handle(r, "invite.show", func(_ context.Context, ip IDParams) (chat.Invitation, error) {
		p, err := s.profile()
		if err != nil {
			return chat.Invitation{}, err
		}
		inv, err := p.Invitation(ip.ID)
		return inv, coded(err)
	})
}
