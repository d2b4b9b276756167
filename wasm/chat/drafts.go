package chat

import (
	"errors"
	"fmt"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/wisp-chat/wisp/wasm/store"
)

// Draft is the unsent text of a chat (a contact or a group), kept in the
// encrypted record c/<id>/draft until it is sent or cleared.
type Draft struct {
	Text    string    `json:"text"`
	ReplyTo uint64    `json:"reply_to,omitempty"` // the position of the message it replies to (one-to-one chats)
	Time    time.Time `json:"time,omitzero"`      // when it was saved
}

// draftPreview is how many characters of a draft Contact.Draft holds.
const draftPreview = 60

func draftKey(id string) store.Key { return contactDir(id).Join("draft") }

// SetDraft keeps the unsent text of a chat, and the message it replies to
// (0: none; only in one-to-one chats). An empty or blank text deletes the
// draft. Contact.Draft shows its start in the chat list; a "contact" event
// tells the page when that changes.
func (p *Profile) SetDraft(id, text string, replyTo uint64) error {
	if !utf8.ValidString(text) {
		return fmt.Errorf("%w: the draft is not valid text", ErrInvalid)
	}
	if len(text) > MaxTextBytes {
		return fmt.Errorf("%w: the draft is %d bytes, the limit is %d", ErrTooLong, len(text), MaxTextBytes)
	}
	if !validContactID(id) {
		return fmt.Errorf("%w: %q", ErrNoContact, id)
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	c, err := p.contact(id)
	if errors.Is(err, store.ErrNotFound) {
		return fmt.Errorf("%w: %s", ErrNoContact, id)
	}
	if err != nil {
		return err
	}
	if strings.TrimSpace(text) == "" {
		// The list's mark first: a crash between leaves a draft that is
		// not announced, never an announced draft that is gone.
		if err := p.setDraftMark(c, ""); err != nil {
			return err
		}
		return p.st.Delete(draftKey(id))
	}
	if replyTo != 0 {
		rec, err := p.target(id, replyTo)
		if err != nil {
			return err
		}
		if rec.Deleted {
			return fmt.Errorf("%w: the message was deleted", ErrInvalid)
		}
	}
	if err := putJSON(p.st, draftKey(id), Draft{Text: text, ReplyTo: replyTo, Time: time.Now().UTC()}); err != nil {
		return err
	}
	return p.setDraftMark(c, preview(strings.Join(strings.Fields(text), " "), draftPreview))
}

// setDraftMark saves the contact's draft preview when it changes; p.mu held.
func (p *Profile) setDraftMark(c *Contact, mark string) error {
	if c.Draft == mark {
		return nil
	}
	c.Draft = mark
	if err := p.saveContact(c); err != nil {
		return err
	}
	p.listen(Event{Kind: "contact", Contact: c})
	return nil
}

// Draft returns a chat's draft (empty when there is none).
func (p *Profile) Draft(id string) (Draft, error) {
	if !validContactID(id) {
		return Draft{}, fmt.Errorf("%w: %q", ErrNoContact, id)
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	if _, err := p.contact(id); err != nil {
		if errors.Is(err, store.ErrNotFound) {
			return Draft{}, fmt.Errorf("%w: %s", ErrNoContact, id)
		}
		return Draft{}, err
	}
	var d Draft
	if err := getJSON(p.st, draftKey(id), &d); err != nil && !errors.Is(err, store.ErrNotFound) {
		return Draft{}, err
	}
	return d, nil
}
