//go:build !js

package chat

import (
	"errors"
	"fmt"
	"slices"
	"testing"

	"github.com/wisp-chat/wisp/wasm/internal/relaytest"
)

// chatTexts are the texts of a conversation, oldest first.
func chatTexts(u *user, id string) ([]string, error) {
	ms, err := u.p.Messages(id, 0, 500)
	if err != nil {
		return nil, err
	}
	var out []string
	for _, m := range ms {
		if m.Text != "" {
			out = append(out, m.Text)
		}
	}
	return out, nil
}

// TestMoveOffRelay: removing a relay from the profile moves every chat on
// it to the receiving relay (RelayUsage shows it leaving until then);
// ChangeRelay moves one on demand; messages flow in order throughout.
func TestMoveOffRelay(t *testing.T) {
	r1, r2 := relaytest.Start(t), relaytest.Start(t)
	alice, bob := newUser(t, "Alice", "alice pass", r1), newUser(t, "Bob", "bob pass", r1)
	ab, ba := connect(t, alice, bob, false)
	var want []string
	send := func(from *user, id string, n int) {
		for i := range n {
			text := fmt.Sprintf("%s %d", from.p.Info().DisplayName, len(want)+i)
			if _, err := from.p.SendText(ctxT(t), id, text); err != nil {
				t.Fatal(err)
			}
			want = append(want, text)
		}
	}
	waitAll := func() {
		t.Helper()
		waitFor(t, "alice has every message in order", func() (bool, error) {
			got, err := chatTexts(alice, ab)
			return slices.Equal(got, want), err
		})
	}
	send(bob, ba, 3)
	waitAll()
	if err := alice.p.ChangeRelay(ctxT(t), ab, r2.Addr().String()); !errors.Is(err, ErrInvalid) {
		t.Errorf("ChangeRelay to a relay not in the list: %v, want ErrInvalid", err)
	}
	// Add r2 as the receiving relay, remove r1: Alice's queue moves.
	if err := alice.p.SetRelays([]string{r2.Addr().String()}, r2.Addr().String()); err != nil {
		t.Fatal(err)
	}
	send(bob, ba, 3) // carries the move
	waitFor(t, "the chat moved to r2", func() (bool, error) {
		q, err := alice.p.ContactQueue(ab)
		return q.Relay == r2.Addr().String() && q.NextRelay == "", err
	})
	waitFor(t, "r1 no longer used", func() (bool, error) {
		u := alice.p.RelayUsage()
		return len(u) == 1 && u[0].Relay == r2.Addr().String() && u[0].Chats == 1 && !u[0].Leaving, nil
	})
	send(bob, ba, 3)
	waitAll()
	// On demand, on the same relay: a new queue all the same.
	before, err := alice.p.ContactQueue(ab)
	if err != nil {
		t.Fatal(err)
	}
	if err := alice.p.ChangeRelay(ctxT(t), ab, r2.Addr().String()); err != nil {
		t.Fatal(err)
	}
	if err := alice.p.ChangeRelay(ctxT(t), ab, r2.Addr().String()); !errors.Is(err, ErrInvalid) {
		t.Errorf("a second ChangeRelay while one is under way: %v, want ErrInvalid", err)
	}
	if q, _ := alice.p.ContactQueue(ab); q.NextRelay != r2.Addr().String() || q.Relay != before.Relay {
		t.Errorf("during the change: %+v", q)
	}
	send(bob, ba, 2)
	waitAll()
	waitFor(t, "the change done", func() (bool, error) {
		q, err := alice.p.ContactQueue(ab)
		return q.NextRelay == "", err
	})
	alice.mu.Lock()
	rotations := 0
	for _, e := range alice.events {
		if e.Kind == "rotation" && e.ID == ab && e.Up && e.Text == "" {
			rotations++
		}
	}
	alice.mu.Unlock()
	if rotations != 2 {
		t.Errorf("%d completed rotations reported, want 2", rotations)
	}
	// Alice's replies still reach Bob.
	if _, err := alice.p.SendText(ctxT(t), ab, "still here"); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "bob gets the reply", func() (bool, error) {
		got, err := chatTexts(bob, ba)
		return slices.Contains(got, "still here"), err
	})
}
