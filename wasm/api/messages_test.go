//go:build !js

package api

import (
	"strings"
	"testing"
	"time"

	"github.com/wisp-chat/wisp/wasm/chat"
	"github.com/wisp-chat/wisp/wasm/internal/relaytest"
	"github.com/wisp-chat/wisp/wasm/rpc"
)

// connectedTabs returns two unlocked tabs connected to each other, and
// each one's contact ID for the other.
func connectedTabs(t *testing.T) (a, b *tab, ab, ba string) {
	relay := relaytest.Start(t)
	a, b = newTab(t, relay), newTab(t, relay)
	var id IDParams
	a.call("profile.create", NewProfileParams{Name: "Ann"}, &id)
	a.call("profile.unlock", UnlockParams{ID: id.ID}, nil)
	b.call("profile.create", NewProfileParams{Name: "Bo"}, &id)
	b.call("profile.unlock", UnlockParams{ID: id.ID}, nil)
	var inv chat.Invitation
	a.call("invite.create", InviteParams{}, &inv)
	var c chat.Contact
	b.call("join", JoinParams{Link: inv.Link}, &c)
	a.waitConnected(inv.Contact)
	b.waitConnected(c.ID)
	return a, b, inv.Contact, c.ID
}

// waitPage waits until the tab's conversation satisfies cond.
func (tb *tab) waitPage(contact, what string, cond func([]chat.Message) bool) []chat.Message {
	tb.t.Helper()
	for deadline := time.Now().Add(30 * time.Second); ; time.Sleep(20 * time.Millisecond) {
		var msgs []chat.Message
		tb.call("messages.page", PageParams{Contact: contact}, &msgs)
		if cond(msgs) {
			return msgs
		}
		if time.Now().After(deadline) {
			tb.t.Fatalf("timed out waiting for %s: %+v", what, msgs)
		}
	}
}

func TestMessageActionsThroughTheAPI(t *testing.T) {
	a, b, ab, ba := connectedTabs(t)
	var lim Limits
	a.call("limits", nil, &lim)
	if lim.MaxTextBytes != chat.MaxTextBytes || lim.MaxReactionBytes != chat.MaxReactionBytes || lim.QuotePreview != chat.QuotePreview {
		t.Errorf("limits %+v", lim)
	}
	var m1 chat.Message
	a.call("messages.send", SendParams{Contact: ab, Text: "lunch at noon?"}, &m1)
	msgs := b.waitPage(ba, "the message", func(m []chat.Message) bool { return len(m) == 1 })
	in1 := msgs[0]
	// A reply, then edits and reactions on both sides.
	var r chat.Message
	b.call("messages.send", SendParams{Contact: ba, Text: "yes", ReplyTo: in1.Seq}, &r)
	if r.Quote == nil || r.Quote.Seq != in1.Seq || !r.Quote.Incoming || r.Quote.Text != "lunch at noon?" {
		t.Errorf("reply %+v quote %+v", r, r.Quote)
	}
	a.waitPage(ab, "the reply", func(m []chat.Message) bool {
		return len(m) == 2 && m[1].Quote != nil && m[1].Quote.Seq == m1.Seq && !m[1].Quote.Incoming
	})
	var e chat.Message
	a.call("message.edit", EditParams{Contact: ab, Seq: m1.Seq, Text: "lunch at one?"}, &e)
	if !e.Edited || e.Text != "lunch at one?" {
		t.Errorf("edited %+v", e)
	}
	b.waitPage(ba, "the edit and the quote", func(m []chat.Message) bool {
		return len(m) == 2 && m[0].Text == "lunch at one?" && m[0].Edited && m[1].Quote != nil && m[1].Quote.Text == "lunch at one?"
	})
	var rx chat.Message
	b.call("message.react", ReactParams{Contact: ba, Seq: in1.Seq, Emoji: "👍", On: true}, &rx)
	if len(rx.Reactions) != 1 || !rx.Reactions[0].Mine {
		t.Errorf("reacted %+v", rx.Reactions)
	}
	a.waitPage(ab, "the reaction", func(m []chat.Message) bool {
		return len(m[0].Reactions) == 1 && m[0].Reactions[0] == chat.Reaction{Emoji: "👍", Count: 1}
	})
	var info chat.MessageInfo
	a.call("message.info", MessageParams{Contact: ab, Seq: m1.Seq}, &info)
	if info.SentAt.IsZero() || !info.Edited || info.EditedAt.IsZero() || info.Incoming {
		t.Errorf("info %+v", info)
	}
	// Update events reached the page.
	a.mu.Lock()
	updates := 0
	for _, ev := range a.events {
		if ev.Kind == "update" && ev.Message != nil && ev.Message.Seq == m1.Seq {
			updates++
		}
	}
	a.mu.Unlock()
	if updates < 2 {
		t.Errorf("%d update events for the edited message", updates)
	}
	// Search and drafts.
	var found []chat.SearchResult
	a.call("messages.search", SearchParams{Query: "LUNCH"}, &found)
	if len(found) != 1 || found[0].Match != "lunch" || found[0].Seq != m1.Seq {
		t.Errorf("search %+v", found)
	}
	a.call("messages.search", SearchParams{Contact: ab, Query: "dinner"}, &found)
	if found == nil || len(found) != 0 {
		t.Errorf("an empty search: %#v", found)
	}
	a.call("draft.set", DraftParams{Contact: ab, Text: "see you", ReplyTo: 2}, nil)
	var d chat.Draft
	a.call("draft.get", ChatParams{Contact: ab}, &d)
	if d.Text != "see you" || d.ReplyTo != 2 {
		t.Errorf("draft %+v", d)
	}
	var c chat.Contact
	a.call("contact.get", IDParams{ID: ab}, &c)
	if c.Draft != "see you" {
		t.Errorf("the contact's draft %q", c.Draft)
	}
	// Deletions.
	var del chat.Message
	a.call("message.delete", DeleteParams{Contact: ab, Seq: m1.Seq, Everyone: true}, &del)
	if !del.Deleted || del.Text != "" {
		t.Errorf("deleted %+v", del)
	}
	b.waitPage(ba, "the deletion", func(m []chat.Message) bool { return m[0].Deleted && m[1].Quote.Deleted })
	b.call("message.delete", DeleteParams{Contact: ba, Seq: r.Seq}, &del)
	if !del.Hidden {
		t.Errorf("deleted for me %+v", del)
	}
	b.waitPage(ba, "the hidden message gone", func(m []chat.Message) bool { return len(m) == 1 })

	// Every refusal has its code.
	for _, tc := range []struct {
		method string
		params any
		want   rpc.Code
	}{
		{"message.edit", EditParams{Contact: ab, Seq: 2, Text: "not mine"}, CodeNotAllowed},
		{"message.edit", EditParams{Contact: ab, Seq: m1.Seq, Text: "deleted"}, CodeNotAllowed},
		{"message.edit", EditParams{Contact: ab, Seq: 99, Text: "x"}, CodeInvalid},
		{"message.edit", EditParams{Contact: ab, Seq: 2, Text: strings.Repeat("x", chat.MaxTextBytes+1)}, CodeTooLong},
		{"message.edit", EditParams{Contact: "nosuchcontact00000000000", Seq: 1, Text: "x"}, CodeNoContact},
		{"message.delete", DeleteParams{Contact: ab, Seq: 2, Everyone: true}, CodeNotAllowed},
		{"message.delete", DeleteParams{Contact: ab, Seq: 99}, CodeInvalid},
		{"message.react", ReactParams{Contact: ab, Seq: 2, Emoji: strings.Repeat("👍", 5), On: true}, CodeTooLong},
		{"message.react", ReactParams{Contact: ab, Seq: 2, Emoji: "a b", On: true}, CodeInvalid},
		{"message.info", MessageParams{Contact: ab, Seq: 99}, CodeInvalid},
		{"messages.send", SendParams{Contact: ab, Text: "x", ReplyTo: 99}, CodeInvalid},
		{"messages.search", SearchParams{Query: " "}, CodeInvalid},
		{"messages.search", SearchParams{Query: strings.Repeat("q", chat.MaxSearchQuery+1)}, CodeTooLong},
		{"draft.set", DraftParams{Contact: ab, Text: strings.Repeat("x", chat.MaxTextBytes+1)}, CodeTooLong},
		{"draft.get", ChatParams{Contact: "nosuchcontact00000000000"}, CodeNoContact},
		{"message.edit", map[string]any{"contact": ab, "seq": 1, "text": "x", "extra": 1}, rpc.CodeBadRequest},
	} {
		if err := a.try(tc.method, tc.params, nil); code(err) != tc.want {
			t.Errorf("%s %+v: %v, want %s", tc.method, tc.params, err, tc.want)
		}
	}
	a.call("profile.lock", nil, nil)
	if err := a.try("message.edit", EditParams{Contact: ab, Seq: 1, Text: "x"}, nil); code(err) != CodeLocked {
		t.Errorf("locked: %v", err)
	}
}
