//go:build !js

package chat

import (
	"bytes"
	"crypto/rand"
	"slices"
	"strings"
	"testing"

	"github.com/wisp-chat/wisp/wasm/internal/relaytest"
)

// directRouting turns private routing off for us.
func directRouting(t testing.TB, us ...*user) {
	t.Helper()
	for _, u := range us {
		if err := u.p.SetPrivateRouting(false); err != nil {
			t.Fatal(err)
		}
	}
}

// relaysSeen lists the relays u's pool reported on (it reports every
// relay it dials) and the relays it holds file clients for.
func relaysSeen(u *user) []string {
	u.mu.Lock()
	var out []string
	for _, e := range u.events {
		if e.Kind == "relay" && !slices.Contains(out, e.Relay) {
			out = append(out, e.Relay)
		}
	}
	u.mu.Unlock()
	u.p.fmu.Lock()
	for a := range u.p.fcs {
		if !slices.Contains(out, a.String()) {
			out = append(out, a.String())
		}
	}
	u.p.fmu.Unlock()
	return out
}

func waitText(t *testing.T, u *user, contact, text string) {
	t.Helper()
	waitFor(t, "message "+text, func() (bool, error) {
		msgs, err := u.p.Messages(contact, 0, 50)
		for _, m := range msgs {
			if m.Text == text && m.Incoming {
				return true, err
			}
		}
		return false, err
	})
}

// TestPrivateRouting: two people on two relays talk and send a file;
// each browser only ever connects to its own relay, every command to the
// other's goes through it. Turned off, a browser connects directly. With
// the destination down, the delay names both relays, and the message
// goes out when it is back.
func TestPrivateRouting(t *testing.T) {
	r1, r2 := relaytest.Start(t), relaytest.Start(t)
	a := newUser(t, "Ama", "", r1)
	b := newUser(t, "Ben", "", r2)
	if !a.p.Info().PrivateRouting {
		t.Fatal("private routing is not on by default")
	}
	ab, ba := connect(t, a, b, false)
	for i := range 3 {
		for _, s := range []struct {
			from, to *user
			id, peer string
		}{{a, b, ab, ba}, {b, a, ba, ab}} {
			text := s.from.p.Info().DisplayName + " " + strings.Repeat("x", i)
			if _, err := s.from.p.SendText(ctxT(t), s.id, text); err != nil {
				t.Fatal(err)
			}
			waitText(t, s.to, s.peer, text)
		}
	}
	data := make([]byte, 300<<10)
	_, _ = rand.Read(data)
	if _, err := a.p.SendFile(ctxT(t), ab, FileMeta{Name: "f.bin", Type: "application/octet-stream", Size: int64(len(data))}, bytes.NewReader(data), nil); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "the file", func() (bool, error) {
		msgs, err := b.p.Messages(ba, 0, 50)
		return len(msgs) > 0 && msgs[len(msgs)-1].File != nil, err
	})
	msgs, _ := b.p.Messages(ba, 0, 50)
	if got := downloadAll(t, b, ba, msgs[len(msgs)-1].Seq); !bytes.Equal(got, data) {
		t.Fatal("the file downloaded through the proxy differs")
	}
	for _, c := range []struct {
		u   *user
		own *relaytest.Relay
	}{{a, r1}, {b, r2}} {
		if seen := relaysSeen(c.u); !slices.Equal(seen, []string{c.own.Addr().String()}) {
			t.Errorf("%s connected to %v, want only its own relay %s", c.u.p.Info().DisplayName, seen, c.own.Addr())
		}
	}
	if r1.Proxied() == 0 || r2.Proxied() == 0 || r1.Forwarded() == 0 || r2.Forwarded() == 0 {
		t.Errorf("proxied/forwarded: r1 %d/%d, r2 %d/%d", r1.Proxied(), r1.Forwarded(), r2.Proxied(), r2.Forwarded())
	}

	// The destination is down: the delay says so, naming both relays,
	// and the message goes out once it is back.
	r1.Stop()
	if _, err := b.p.SendText(ctxT(t), ba, "while r1 is down"); err != nil {
		t.Fatal(err)
	}
	delay := func() string {
		c, err := b.p.Contact(ba)
		if err != nil {
			t.Fatal(err)
		}
		return c.Delay
	}
	waitFor(t, "the delay", func() (bool, error) {
		return strings.Contains(delay(), "Could not deliver through your relay"), nil
	})
	if d := delay(); !strings.Contains(d, "to their relay 127.0.0.1") || !strings.Contains(d, "could not reach theirs") {
		t.Errorf("delay %q", d)
	}
	r1.Restart()
	waitText(t, a, ab, "while r1 is down")
	waitFor(t, "the delay to clear", func() (bool, error) { return delay() == "", nil })

	// Turned off: b reaches r1 directly.
	if err := b.p.SetPrivateRouting(false); err != nil {
		t.Fatal(err)
	}
	if _, err := b.p.SendText(ctxT(t), ba, "direct"); err != nil {
		t.Fatal(err)
	}
	waitText(t, a, ab, "direct")
	if seen := relaysSeen(b); !slices.Contains(seen, r1.Addr().String()) {
		t.Errorf("with private routing off, b connected to %v only", seen)
	}
}
