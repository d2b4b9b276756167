//go:build !js

package chat

import (
	"errors"
	"testing"

	"github.com/wisp-chat/wisp/wasm/agent"
	"github.com/wisp-chat/wisp/wasm/internal/relaytest"
)

// TestResyncMarksUnread: when the contact re-syncs from an older backup,
// our messages it may not be able to read (sent, without a receipt) are
// marked failed with a reason, so the page offers Retry; a delivered one
// stays delivered, and one outside the range is untouched.
func TestResyncMarksUnread(t *testing.T) {
	r1, r2 := relaytest.Start(t), relaytest.Start(t)
	alice := newUser(t, "Alice", "", r1)
	bob := newUser(t, "Bob", "", r2)
	_, ba := connect(t, alice, bob, false)
	delivered, err := bob.p.SendText(ctxT(t), ba, "read before")
	if err != nil {
		t.Fatal(err)
	}
	waitFor(t, "delivered", func() (bool, error) {
		m, err := bob.p.Messages(ba, 0, 50)
		got := textMessage(m, "read before")
		return got != nil && got.Status == StatusDelivered, err
	})
	alice.m.Close() // away: what bob sends now stays "sent"
	var sent []Message
	for _, text := range []string{"maybe unreadable", "outside the range"} {
		m, err := bob.p.SendText(ctxT(t), ba, text)
		if err != nil {
			t.Fatal(err)
		}
		sent = append(sent, m)
	}
	waitFor(t, "sent", func() (bool, error) {
		m, err := bob.p.Messages(ba, 0, 50)
		a, b := textMessage(m, "maybe unreadable"), textMessage(m, "outside the range")
		return a != nil && b != nil && a.Status == StatusSent && b.Status == StatusSent, err
	})
	(*profileEvents)(bob.p).Resync(agent.ConnID(ba), agent.ResyncEvent{Status: agent.ResyncAnswered,
		UnreadFrom: delivered.AgentID, UnreadTo: sent[0].AgentID})
	m, err := bob.p.Messages(ba, 0, 50)
	if err != nil {
		t.Fatal(err)
	}
	if got := textMessage(m, "read before"); got.Status != StatusDelivered {
		t.Errorf("a delivered message became %s", got.Status)
	}
	if got := textMessage(m, "maybe unreadable"); got.Status != StatusFailed || got.Reason == "" {
		t.Errorf("a message the contact may not read: %s %q", got.Status, got.Reason)
	}
	if got := textMessage(m, "outside the range"); got.Status != StatusSent {
		t.Errorf("a message outside the range became %s", got.Status)
	}
	if !hasNotice(m, "Re-synchronising encryption…") {
		t.Error("no notice in the conversation")
	}
	if err := bob.p.FixConnection(ctxT(t), "000000000000000000000000"); !errors.Is(err, ErrNoContact) {
		t.Errorf("fixing an unknown contact: %v", err)
	}
}
