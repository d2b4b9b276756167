package chat

import (
	"context"
	"errors"
	"fmt"
	"strings"

	"github.com/wisp-chat/wisp/wasm/agent"
	"github.com/wisp-chat/wisp/wasm/store"
)

// CreateInvitation is CreateNamedInvitation without a name.
func (p *Profile) CreateInvitation(ctx context.Context, incognito bool) (Invitation, error) {
	return p.CreateNamedInvitation(ctx, incognito, "")
}

// cleanInviteName validates an invitation's name: empty, or a name as
// cleanName accepts it (at most MaxDisplayName bytes after trimming).
func cleanInviteName(s string) (string, error) {
	if strings.TrimSpace(s) == "" {
		return "", nil
	}
	s, err := cleanName(s)
	if err != nil {
		return "", fmt.Errorf("invitation name: %w", err)
	}
	return s, nil
}

// Invitation returns a pending invitation again (its link, a QR code
// made anew from it, its name), for the contact it created while nobody
// has joined it (state invited); ErrNoContact otherwise. Cancelling it is
// DeleteContact, which deletes its queue on the relay.
func (p *Profile) Invitation(id string) (Invitation, error) {
	p.mu.Lock()
	c, err := p.contact(id)
	p.mu.Unlock()
	if errors.Is(err, store.ErrNotFound) || (err == nil && (c.State != ContactInvited || c.Invite == "" || c.Group != nil)) {
		return Invitation{}, fmt.Errorf("%w: no pending invitation %s", ErrNoContact, id)
	}
	if err != nil {
		return Invitation{}, err
	}
	qr, err := agent.QRCode(c.Invite, 512)
	if err != nil {
		return Invitation{}, err
	}
	return Invitation{Contact: c.ID, Link: c.Invite, QR: qr, Name: c.InviteName}, nil
}
