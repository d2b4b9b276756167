//go:build !js

package chat

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/hack-pad/hackpadfs"
	"github.com/hack-pad/hackpadfs/mem"
	"github.com/wisp-chat/wisp/crypto/vault"
	"github.com/wisp-chat/wisp/server/wire/client"
	"github.com/wisp-chat/wisp/wasm/agent"
	"github.com/wisp-chat/wisp/wasm/internal/relaytest"
)

// fastArgon keeps tests quick; the default parameters are tested in crypto/vault.
var fastArgon = vault.Params{MemoryKiB: 1024, Time: 1, Threads: 1}

func ctxT(t testing.TB) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), scaled(60*time.Second))
	t.Cleanup(cancel)
	return ctx
}

// user is one browser: a Manager over its own storage, one profile.
type user struct {
	t      testing.TB
	fs     hackpadfs.FS
	m      *Manager
	id     string
	pass   string
	p      *Profile
	mu     sync.Mutex
	events []Event
}

func newUser(t testing.TB, name, pass string, relay *relaytest.Relay) *user {
	t.Helper()
	fsys, err := mem.NewFS()
	if err != nil {
		t.Fatal(err)
	}
	return newUserOn(t, name, pass, relay, fsys)
}

// newUserOn is newUser on the given storage.
func newUserOn(t testing.TB, name, pass string, relay *relaytest.Relay, fsys hackpadfs.FS) *user {
	t.Helper()
	var err error
	u := &user{t: t, fs: fsys, pass: pass}
	u.m = NewManager(fsys, u.config(relay))
	u.id, err = u.m.CreateProfile(ctxT(t), NewProfile{DisplayName: name, Passphrase: pass})
	if err != nil {
		t.Fatal(err)
	}
	u.unlock()
	t.Cleanup(func() { u.m.Close() })
	return u
}

func (u *user) config(relay *relaytest.Relay) Config {
	return Config{Origin: "http://127.0.0.1:8080", PresetRelays: []string{relay.Addr().String()}, Argon2: fastArgon,
		Client: client.Options{MinBackoff: 50 * time.Millisecond, MaxBackoff: time.Second}}
}

func (u *user) unlock() {
	u.t.Helper()
	p, err := u.m.Unlock(ctxT(u.t), u.id, u.pass, func(e Event) {
		u.mu.Lock()
		u.events = append(u.events, e)
		u.mu.Unlock()
	})
	if err != nil {
		u.t.Fatal(err)
	}
	u.p = p
}

// restart drops the manager and opens the same storage again.
func (u *user) restart(relay *relaytest.Relay) {
	u.m.Close()
	u.m = NewManager(u.fs, u.config(relay))
	u.unlock()
}

// scaled stretches a deadline by WISP_TEST_SCALE (default 1;
// WISP_TEST_SLOW is another name for it) for slow machines; tests wait
// for conditions, never for time.
func scaled(d time.Duration) time.Duration {
	for _, name := range []string{"WISP_TEST_SCALE", "WISP_TEST_SLOW"} {
		if f, err := strconv.ParseFloat(os.Getenv(name), 64); err == nil && f >= 1 {
			return time.Duration(float64(d) * f)
		}
	}
	return d
}

// waitLimit is how long waitFor waits for a condition.
var waitLimit = scaled(60 * time.Second)

func waitFor(t testing.TB, what string, cond func() (bool, error)) {
	t.Helper()
	deadline := time.Now().Add(waitLimit)
	for {
		ok, err := cond()
		if err != nil {
			t.Fatalf("%s: %v", what, err)
		}
		if ok {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// connect makes a contact between a (inviting) and b (joining).
func connect(t testing.TB, a, b *user, incognito bool) (string, string) {
	t.Helper()
	inv, err := a.p.CreateInvitation(ctxT(t), false)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(inv.Link, "http://127.0.0.1:8080/#/invite/") || !bytes.HasPrefix(inv.QR, []byte("\x89PNG")) {
		t.Fatalf("invitation %q / %d-byte QR", inv.Link, len(inv.QR))
	}
	c, err := b.p.Join(ctxT(t), inv.Link, incognito)
	if err != nil {
		t.Fatal(err)
	}
	for _, side := range []struct {
		u  *user
		id string
	}{{a, inv.Contact}, {b, c.ID}} {
		waitFor(t, "connected", func() (bool, error) {
			c, err := side.u.p.Contact(side.id)
			return c.State == ContactConnected, err
		})
	}
	return inv.Contact, c.ID
}

func TestThreeProfiles(t *testing.T) {
	r1, r2 := relaytest.Start(t), relaytest.Start(t)
	alice := newUser(t, "Alice", "correct horse battery", r1)
	bob := newUser(t, "Bob", "", r2)
	carol := newUser(t, "Carol", "another long passphrase", r2)

	ab, ba := connect(t, alice, bob, false)
	ac, ca := connect(t, alice, carol, false)
	bc, cb := connect(t, bob, carol, true)

	for _, tc := range []struct {
		u    *user
		id   string
		want string
	}{{alice, ab, "Bob"}, {bob, ba, "Alice"}, {alice, ac, "Carol"}, {carol, ca, "Alice"}, {bob, bc, ""}, {carol, cb, "Bob"}} {
		c, err := tc.u.p.Contact(tc.id)
		if err != nil {
			t.Fatal(err)
		}
		if tc.want == "" {
			// Carol joined Bob incognito: Bob sees a random name, not hers.
			if c.Name == "Carol" || c.Name == "" {
				t.Errorf("incognito join shows %q", c.Name)
			}
			continue
		}
		if c.Name != tc.want || c.PeerName != tc.want {
			t.Errorf("contact name %q/%q, want %q", c.Name, c.PeerName, tc.want)
		}
	}
	// Security codes match pairwise and differ between pairs.
	codeAB, err := alice.p.SecurityCode(ab)
	if err != nil {
		t.Fatal(err)
	}
	codeBA, _ := bob.p.SecurityCode(ba)
	codeAC, _ := alice.p.SecurityCode(ac)
	if codeAB != codeBA || codeAB == codeAC || len(codeAB) != 71 {
		t.Errorf("security codes: %q %q %q", codeAB, codeBA, codeAC)
	}

	// Conversations, both ways, with statuses reaching delivered.
	const n = 20
	for i := range n {
		for _, s := range []struct {
			u  *user
			id string
		}{{alice, ab}, {bob, ba}, {alice, ac}, {carol, ca}, {bob, bc}, {carol, cb}} {
			m, err := s.u.p.SendText(ctxT(t), s.id, fmt.Sprintf("%s says %d", s.u.p.Info().DisplayName, i))
			if err != nil {
				t.Fatal(err)
			}
			if m.Status != StatusPending && m.Status != StatusSent && m.Status != StatusDelivered {
				t.Errorf("new message status %q", m.Status)
			}
		}
	}
	for _, s := range []struct {
		u    *user
		id   string
		from string
	}{{alice, ab, "Bob"}, {bob, ba, "Alice"}, {alice, ac, "Carol"}, {carol, ca, "Alice"}, {bob, bc, "Carol"}, {carol, cb, "Bob"}} {
		waitFor(t, "all delivered", func() (bool, error) {
			msgs, err := s.u.p.Messages(s.id, 0, 200)
			if err != nil || len(msgs) != 2*n {
				return false, err
			}
			for _, m := range msgs {
				if !m.Incoming && m.Status != StatusDelivered {
					return false, nil
				}
			}
			return true, nil
		})
		msgs, _ := s.u.p.Messages(s.id, 0, 200)
		in := 0
		for _, m := range msgs {
			if m.Incoming {
				if want := fmt.Sprintf("%s says %d", s.from, in); m.Text != want {
					t.Errorf("incoming %d = %q, want %q", in, m.Text, want)
				}
				if m.Missing != 0 || m.BadHash {
					t.Errorf("integrity flags on %q", m.Text)
				}
				in++
			}
		}
		c, _ := s.u.p.Contact(s.id)
		if c.Unread != n || !strings.HasSuffix(c.LastText, fmt.Sprint(n-1)) {
			t.Errorf("contact summary: unread %d, last %q", c.Unread, c.LastText)
		}
	}
	// Paging back through history.
	last, _ := alice.p.Messages(ab, 0, 10)
	prev, _ := alice.p.Messages(ab, last[0].Seq, 10)
	if len(last) != 10 || len(prev) != 10 || prev[9].Seq+1 != last[0].Seq {
		t.Errorf("paging: %d then %d messages", len(last), len(prev))
	}
	// Rename is local; delete reaches the contact.
	if err := alice.p.RenameContact(ab, "Bobby"); err != nil {
		t.Fatal(err)
	}
	if c, _ := alice.p.Contact(ab); c.Name != "Bobby" || c.PeerName != "Bob" {
		t.Errorf("after rename: %+v", c)
	}
	if err := alice.p.DeleteContact(ctxT(t), ab); err != nil {
		t.Fatal(err)
	}
	if _, err := alice.p.Contact(ab); !errors.Is(err, ErrNoContact) {
		t.Errorf("deleted contact: %v", err)
	}
	waitFor(t, "bob learns", func() (bool, error) {
		c, err := bob.p.Contact(ba)
		return c.State == ContactDeleted, err
	})
}

func TestInputLimits(t *testing.T) {
	r := relaytest.Start(t)
	a := newUser(t, "Ann", "", r)
	b := newUser(t, "Ben", "", r)
	ab, _ := connect(t, a, b, false)
	before, _ := a.p.Messages(ab, 0, 200)
	for _, tc := range []struct {
		text string
		want error
	}{
		{"", ErrInvalid},
		{"   \n", ErrInvalid},
		{"bad \xff utf-8", ErrInvalid},
		{strings.Repeat("x", MaxTextBytes+1), ErrTooLong},
		{strings.Repeat("é", MaxTextBytes/2) + "x", ErrTooLong},
	} {
		if _, err := a.p.SendText(ctxT(t), ab, tc.text); !errors.Is(err, tc.want) {
			t.Errorf("%d-byte text: %v, want %v", len(tc.text), err, tc.want)
		}
	}
	if after, _ := a.p.Messages(ab, 0, 200); len(after) != len(before) {
		t.Errorf("refused messages were stored")
	}
	if _, err := a.p.SendText(ctxT(t), ab, strings.Repeat("y", MaxTextBytes)); err != nil {
		t.Errorf("a text at the limit: %v", err)
	}
	if _, err := a.p.SendText(ctxT(t), "nosuchcontact0000000000", "hi"); !errors.Is(err, ErrNoContact) {
		t.Errorf("unknown contact: %v", err)
	}
	for _, name := range []string{"", "   ", strings.Repeat("n", MaxDisplayName+1), "a\x00b", "\xff"} {
		if _, err := a.m.CreateProfile(ctxT(t), NewProfile{DisplayName: name}); err == nil {
			t.Errorf("display name %q accepted", name)
		}
	}
	if _, err := a.m.CreateProfile(ctxT(t), NewProfile{DisplayName: "ok", Passphrase: "short"}); !errors.Is(err, ErrInvalid) {
		t.Errorf("short passphrase: %v", err)
	}
	if _, err := a.m.CreateProfile(ctxT(t), NewProfile{DisplayName: "ok", Avatar: make([]byte, MaxAvatarBytes+1)}); !errors.Is(err, ErrTooLong) {
		t.Errorf("large avatar: %v", err)
	}
	if err := a.p.SetRelays([]string{"https://not.a.relay"}, "https://not.a.relay"); !errors.Is(err, ErrInvalid) {
		t.Errorf("bad relay: %v", err)
	}
	var many []string
	for i := range MaxRelays + 1 {
		many = append(many, fmt.Sprintf("%s@127.0.0.1:%d", strings.Split(r.Addr().String(), "@")[0], 1000+i))
	}
	if err := a.p.SetRelays(many, many[0]); !errors.Is(err, ErrTooLong) {
		t.Errorf("%d relays: %v, want ErrTooLong", len(many), err)
	}
	if err := a.p.SetRelays(many[:MaxRelays], many[0]); err != nil {
		t.Errorf("%d relays (the limit): %v", MaxRelays, err)
	}
	for _, link := range []string{"https://example.com", "http://127.0.0.1:8080/#/invite/AAAA", "http://x/#/invite/!!"} {
		if _, err := b.p.Join(ctxT(t), link, false); err == nil {
			t.Errorf("link %q accepted", link)
		}
	}
	if _, err := b.p.Join(ctxT(t), "https://example.com/page", false); !errors.Is(err, agent.ErrNotWispLink) {
		t.Errorf("other link: %v", err)
	}
}

func TestWrongPassphraseChangesNothing(t *testing.T) {
	r := relaytest.Start(t)
	u := newUser(t, "Dana", "the right passphrase", r)
	u.m.Lock(u.id)
	snapshot := func() map[string]string {
		out := map[string]string{}
		_ = hackpadfs.WalkDir(u.fs, ".", func(p string, d fs.DirEntry, err error) error {
			if err == nil && !d.IsDir() {
				b, _ := hackpadfs.ReadFile(u.fs, p)
				out[p] = string(b)
			}
			return nil
		})
		return out
	}
	before := snapshot()
	for _, pass := range []string{"", "the wrong passphrase", "the right passphras"} {
		if _, err := u.m.Unlock(ctxT(t), u.id, pass, nil); !errors.Is(err, ErrWrongPassphrase) {
			t.Errorf("passphrase %q: %v", pass, err)
		}
	}
	after := snapshot()
	if len(before) != len(after) {
		t.Errorf("files changed: %d → %d", len(before), len(after))
	}
	for k, v := range before {
		if after[k] != v {
			t.Errorf("%s changed", k)
		}
	}
	if _, err := u.m.Unlock(ctxT(t), "0123456789abcdef", "x", nil); !errors.Is(err, ErrNoProfile) {
		t.Errorf("unknown profile: %v", err)
	}
	list, err := u.m.Profiles()
	if err != nil || len(list) != 1 || list[0].Unlocked || !list[0].Passphrase || list[0].Name != "" {
		t.Errorf("profiles while locked: %+v, %v", list, err)
	}
}

func TestRestartKeepsEverything(t *testing.T) {
	r1, r2 := relaytest.Start(t), relaytest.Start(t)
	a := newUser(t, "Eve", "a fine passphrase", r1)
	b := newUser(t, "Finn", "", r2)
	ab, ba := connect(t, a, b, false)
	if _, err := a.p.SendText(ctxT(t), ab, "before the restart"); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "delivery", func() (bool, error) {
		m, err := b.p.Messages(ba, 0, 10)
		return len(m) == 1, err
	})
	// b goes away; a sends while b is gone; b comes back.
	b.m.Close()
	for i := range 5 {
		if _, err := a.p.SendText(ctxT(t), ab, fmt.Sprintf("while away %d", i)); err != nil {
			t.Fatal(err)
		}
	}
	a.restart(r1)
	b.restart(r2)
	waitFor(t, "the 5 arrive", func() (bool, error) {
		m, err := b.p.Messages(ba, 0, 10)
		return len(m) == 6, err
	})
	waitFor(t, "delivered after restarts", func() (bool, error) {
		msgs, err := a.p.Messages(ab, 0, 10)
		for _, m := range msgs {
			if m.Status != StatusDelivered {
				return false, err
			}
		}
		return len(msgs) == 6, err
	})
	if c, err := b.p.Contact(ba); err != nil || c.Name != "Eve" {
		t.Errorf("contact after restart: %+v %v", c, err)
	}
	if _, err := b.p.SendText(ctxT(t), ba, "and back"); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "reply", func() (bool, error) {
		m, err := a.p.Messages(ab, 0, 10)
		return len(m) == 7, err
	})
}

func TestNothingReadableAtRest(t *testing.T) {
	r := relaytest.Start(t)
	a := newUser(t, "Gwendolyn", "", r)
	b := newUser(t, "Hieronymus", "passphrase protected", r)
	ab, ba := connect(t, a, b, false)
	secret := "our meeting point is the lighthouse"
	if _, err := a.p.SendText(ctxT(t), ab, secret); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "delivery", func() (bool, error) {
		m, err := b.p.Messages(ba, 0, 10)
		return len(m) == 1, err
	})
	for _, u := range []*user{a, b} {
		_ = hackpadfs.WalkDir(u.fs, ".", func(p string, d fs.DirEntry, err error) error {
			if err != nil || d.IsDir() {
				return err
			}
			data, _ := hackpadfs.ReadFile(u.fs, p)
			for _, s := range []string{secret, "lighthouse", "Gwendolyn", "Hieronymus", "invite", "wisp://", "127.0.0.1"} {
				if bytes.Contains(data, []byte(s)) {
					t.Errorf("%s contains %q", p, s)
				}
			}
			return nil
		})
	}
}

// TestConcurrentUnlock: two unlocks of one profile at once give one
// profile, never two agents on the same keys.
func TestConcurrentUnlock(t *testing.T) {
	r := relaytest.Start(t)
	u := newUser(t, "Ivy", "a long passphrase", r)
	u.m.Lock(u.id)
	got := make(chan *Profile, 2)
	for range 2 {
		go func() {
			p, err := u.m.Unlock(ctxT(t), u.id, "a long passphrase", nil)
			if err != nil {
				t.Error(err)
			}
			got <- p
		}()
	}
	if p1, p2 := <-got, <-got; p1 != p2 {
		t.Error("two unlocks opened the profile twice")
	}
}

func TestInvisibleNames(t *testing.T) {
	r := relaytest.Start(t)
	u := newUser(t, "Jo", "", r)
	for _, name := range []string{"Al\u202eice", "Bo\u200bb", "line\u2028break", "tab\tname"} {
		if _, err := u.m.CreateProfile(ctxT(t), NewProfile{DisplayName: name}); !errors.Is(err, ErrInvalid) {
			t.Errorf("%q: %v, want ErrInvalid", name, err)
		}
	}
	if got := parsePeerInfo([]byte(`{"name":"Eve\u202e"}`)).Name; got != "Unnamed contact" {
		t.Errorf("a peer name with a bidi override shows as %q", got)
	}
}

// TestEarlyStatusesBounded: statuses for messages not stored yet are kept
// up to maxEarly per contact, and receipts for unknown messages not at all.
func TestEarlyStatusesBounded(t *testing.T) {
	r := relaytest.Start(t)
	a := newUser(t, "Quinn", "", r)
	b := newUser(t, "Rae", "", r)
	ab, _ := connect(t, a, b, false)
	ev := (*profileEvents)(a.p)
	for id := uint64(1000); id < 1000+2*maxEarly; id++ {
		ev.Sent(agent.ConnID(ab), id)
	}
	ev.Delivered(agent.ConnID(ab), []uint64{5000, 5001})
	a.p.mu.Lock()
	n := len(a.p.early[ab])
	_, receipt := a.p.early[ab][5000]
	a.p.mu.Unlock()
	if n != maxEarly || receipt {
		t.Errorf("%d early statuses (want %d), receipt kept: %v", n, maxEarly, receipt)
	}
}
