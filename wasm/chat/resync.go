package chat

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"time"

	"github.com/wisp-chat/wisp/wasm/agent"
	"github.com/wisp-chat/wisp/wasm/store"
)

// Ratchet re-synchronisation. A profile imported from a backup holds
// encryption states its contacts have moved past, so ImportBackup leaves a
// "restored" record and the first unlock tells the agent, which runs a new
// key agreement with every contact before anything is sent
// (agent.Options.Restored). FixConnection runs the same agreement on
// demand, for a contact whose messages no longer decrypt. The
// conversation shows its progress as notices.

// restoredKey marks a profile imported from a backup until its first
// unlock has marked its connections for a re-sync.
const restoredKey = "restored"

// Encryption states of a contact (EncryptionInfo.State).
const (
	EncryptionOK = "ok"
	// EncryptionResyncing: a new key agreement is under way; messages
	// sent meanwhile wait for it.
	EncryptionResyncing = "resyncing"
	// EncryptionFailed: the agreement could not be started (Reason).
	EncryptionFailed = "failed"
	// EncryptionBroken: several messages in a row did not decrypt; Fix
	// connection runs a new agreement.
	EncryptionBroken = "broken"
)

// EncryptionInfo is where a contact's end-to-end encryption stands.
type EncryptionInfo struct {
	State string `json:"state"`
	// Undecryptable counts the contact's messages in a row that did not
	// decrypt.
	Undecryptable int    `json:"undecryptable,omitempty"`
	Reason        string `json:"reason,omitempty"`
}

// Encryption tells where a contact's encryption stands.
func (p *Profile) Encryption(id string) (EncryptionInfo, error) {
	info, err := p.ag.Connection(agent.ConnID(id))
	if err != nil {
		return EncryptionInfo{}, fmt.Errorf("%w: %s", ErrNoContact, id)
	}
	out := EncryptionInfo{State: EncryptionOK, Undecryptable: info.Undecryptable}
	switch {
	case info.Resync == agent.ResyncFailed:
		out.State, out.Reason = EncryptionFailed, "Your contact's queue no longer exists (this copy of the profile is older than a change of their relay). Connect again with a new invitation."
	case info.Resync != 0:
		out.State = EncryptionResyncing
	case info.Undecryptable >= 3:
		out.State = EncryptionBroken
	}
	return out, nil
}

// FixConnection runs a new key agreement with a contact ("Fix
// connection"): for messages that no longer decrypt, or to ask again when
// an earlier attempt got no answer.
func (p *Profile) FixConnection(ctx context.Context, id string) error {
	if _, ok := p.groupConnOf(agent.ConnID(id)); ok {
		return fmt.Errorf("%w: %s is a group member connection", ErrNoContact, id)
	}
	err := p.ag.Resync(ctx, agent.ConnID(id))
	switch {
	case errors.Is(err, agent.ErrNoConnection):
		return fmt.Errorf("%w: %s", ErrNoContact, id)
	case errors.Is(err, agent.ErrResyncing):
		return fmt.Errorf("%w: your contact's own request is being answered; try again in a moment", ErrInvalid)
	}
	return err
}

// Resync shows a re-synchronisation step in the contact's conversation
// (a group member connection re-syncs silently).
func (e *profileEvents) Resync(conn agent.ConnID, ev agent.ResyncEvent) {
	p := e.p()
	id := string(conn)
	if _, ok := p.groupConnOf(conn); ok {
		return
	}
	var text string
	switch ev.Status {
	case agent.ResyncRequested, agent.ResyncAnswered:
		text = "Re-synchronising encryption…"
	case agent.ResyncDone:
		text = "Encryption re-synced. The security code changed: compare it again if you had verified it."
	case agent.ResyncFailed:
		text = "Encryption could not be re-synchronised: your contact's queue no longer exists. Connect again with a new invitation."
	case agent.ResyncSuggested:
		text = "Messages from this contact can no longer be decrypted. Open the contact's details and choose Fix connection."
	default:
		return
	}
	p.mu.Lock()
	p.notice(id, nil, time.Now(), text)
	if ev.UnreadFrom != 0 {
		p.markUnread(id, ev.UnreadFrom, ev.UnreadTo)
	}
	p.mu.Unlock()
	p.listen(Event{Kind: "encryption", ID: id})
}

// markUnread fails our messages in from..to that have no receipt: the
// contact restored an older backup and may not be able to read them, so
// the page offers to send them again. p.mu held.
func (p *Profile) markUnread(id string, from, to uint64) {
	keys, err := p.st.List(contactDir(id).Join("o"))
	if err != nil {
		return
	}
	for _, k := range keys {
		n, err := strconv.ParseUint(k.Base(), 10, 64)
		if err != nil || n < from || n > to {
			continue
		}
		var seq uint64
		if err := getJSON(p.st, k, &seq); err != nil || seq == 0 {
			continue
		}
		rec, err := p.getRecord(id, seq)
		if err != nil || rec.Status != StatusSent {
			continue
		}
		p.setStatus(id, n, StatusFailed, "Your contact restored an older backup and may not have this message. Retry sends it again.")
	}
}

// markedRestored tells whether the profile was imported and not unlocked
// since (openProfile clears the marker once the agent has marked every
// connection).
func markedRestored(st *store.Store) bool {
	ok, err := st.Has(restoredKey)
	return err == nil && ok
}
