//go:build !js

package chat

import (
	"errors"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/wisp-chat/wisp/wasm/internal/relaytest"
)

func TestFold(t *testing.T) {
	for _, tc := range []struct {
		text, query string
		match       string
		ok          bool
	}{
		{"Hello World", "world", "World", true},
		{"ÉCOLE d'été", "école", "ÉCOLE", true},
		{"Straße", "STRASSE", "", false}, // simple folding only: ß is not ss
		{"ΣΊΣΥΦΟΣ", "σίσυφος", "ΣΊΣΥΦΟΣ", true},
		{"Kelvin: 5 \u212a", "k", "K", true},
		{"ſtop", "STOP", "ſtop", true},
		{"no match", "xyz", "", false},
	} {
		_, m, _, ok := findFold(tc.text, fold(tc.query))
		if ok != tc.ok || m != tc.match {
			t.Errorf("%q in %q: %q %v", tc.query, tc.text, m, ok)
		}
		if ok && !strings.EqualFold(m, tc.query) && tc.text != "ſtop" {
			t.Errorf("%q and %q are not EqualFold", m, tc.query)
		}
	}
	long := strings.Repeat("a", 100) + "\nNEEDLE\n" + strings.Repeat("b", 100)
	before, m, after, ok := findFold(long, fold("needle"))
	if !ok || m != "NEEDLE" || before != "…"+strings.Repeat("a", 39)+" " || after != " "+strings.Repeat("b", 39)+"…" {
		t.Errorf("snippet %q %q %q", before, m, after)
	}
}

func TestSearch(t *testing.T) {
	r := relaytest.Start(t)
	a, b, c := newUser(t, "Ann", "", r), newUser(t, "Ben", "", r), newUser(t, "Cy", "", r)
	ab, ba := connect(t, a, b, false)
	ac, _ := connect(t, a, c, false)
	for _, s := range []struct {
		u    *user
		id   string
		text string
	}{{a, ab, "Lunch on Friday?"}, {b, ba, "friday works, the usual café"}, {a, ac, "Are you free on FRIDAY"}, {a, ab, "unrelated"}, {a, ab, "hidden friday"}, {a, ab, "deleted friday"}} {
		if _, err := s.u.p.SendText(ctxT(t), s.id, s.text); err != nil {
			t.Fatal(err)
		}
	}
	waitIn(t, a, ab, "friday works, the usual café")
	msgs := all(t, a, ab)
	for _, m := range msgs {
		switch m.Text {
		case "hidden friday":
			if _, err := a.p.DeleteMessage(ctxT(t), ab, m.Seq, false); err != nil {
				t.Fatal(err)
			}
		case "deleted friday":
			if _, err := a.p.DeleteMessage(ctxT(t), ab, m.Seq, true); err != nil {
				t.Fatal(err)
			}
		}
	}
	res, err := a.p.Search("", "Friday", 10)
	if err != nil {
		t.Fatal(err)
	}
	// Newest first (an incoming message's time is its relay's, to the
	// second, so the order within a second may differ from the sending).
	var got []string
	for i, r := range res {
		got = append(got, r.Contact[:4]+":"+r.Match+"|"+r.Snippet+"|"+fmt.Sprint(r.Incoming))
		if i > 0 && r.Time.After(res[i-1].Time) {
			t.Errorf("result %d is newer than %d", i, i-1)
		}
	}
	slices.Sort(got)
	want := []string{ac[:4] + ":FRIDAY|Are you free on FRIDAY|false", ab[:4] + ":friday|friday works, the usual café|true", ab[:4] + ":Friday|Lunch on Friday?|false"}
	slices.Sort(want)
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Errorf("search all:\n got %q\nwant %q", got, want)
	}
	one, err := a.p.Search(ab, "FRI", 1)
	if err != nil || len(one) != 1 || one[0].Match != "fri" {
		t.Errorf("search one chat, limit 1: %+v %v", one, err)
	}
	if res, err := a.p.Search("", "café", 0); err != nil || len(res) != 1 {
		t.Errorf("non-ASCII: %+v %v", res, err)
	}
	if res, err := a.p.Search("", "nothing like it", 0); err != nil || len(res) != 0 {
		t.Errorf("no match: %+v %v", res, err)
	}
	for q, want := range map[string]error{"": ErrInvalid, "  ": ErrInvalid, strings.Repeat("q", MaxSearchQuery+1): ErrTooLong, "\xff": ErrInvalid} {
		if _, err := a.p.Search("", q, 0); !errors.Is(err, want) {
			t.Errorf("query %.10q: %v", q, err)
		}
	}
	if _, err := a.p.Search("nosuchcontact00000000000", "x", 0); !errors.Is(err, ErrNoContact) {
		t.Errorf("unknown contact: %v", err)
	}
	// Groups' messages are searched too.
	ms := buildGroup(t, 2)
	if _, err := ms[0].u.p.SendGroupText(ctxT(t), ms[0].gid, "group Friday plans"); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "the group post", func() (bool, error) {
		res, err := ms[1].u.p.Search("", "friday plans", 0)
		return len(res) == 1 && res[0].Contact == ms[1].gid && res[0].AuthorName != "", err
	})
}

func TestDrafts(t *testing.T) {
	a, b, ab, ba := pair(t)
	m, err := b.p.SendText(ctxT(t), ba, "question?")
	if err != nil {
		t.Fatal(err)
	}
	in := waitIn(t, a, ab, "question?")
	text := "my answer, which goes on for quite a while, longer than the list can show in one line"
	if err := a.p.SetDraft(ab, text, in.Seq); err != nil {
		t.Fatal(err)
	}
	c, _ := a.p.Contact(ab)
	if !strings.HasPrefix(text, strings.TrimSuffix(c.Draft, "…")) || len([]rune(c.Draft)) != draftPreview {
		t.Errorf("the list's draft %q", c.Draft)
	}
	if countEvents(a, func(e Event) bool { return e.Kind == "contact" && e.Contact.Draft != "" }) == 0 {
		t.Error("no contact event for the draft")
	}
	a.m.Lock(a.id)
	a.unlock()
	d, err := a.p.Draft(ab)
	if err != nil || d.Text != text || d.ReplyTo != in.Seq || d.Time.IsZero() {
		t.Errorf("after lock and unlock: %+v %v", d, err)
	}
	for _, tc := range []struct {
		text  string
		reply uint64
		want  error
	}{
		{strings.Repeat("x", MaxTextBytes+1), 0, ErrTooLong},
		{"\xff", 0, ErrInvalid},
		{"x", 999, ErrInvalid},
	} {
		if err := a.p.SetDraft(ab, tc.text, tc.reply); !errors.Is(err, tc.want) {
			t.Errorf("draft %.10q reply %d: %v, want %v", tc.text, tc.reply, err, tc.want)
		}
	}
	if err := a.p.SetDraft("nosuchcontact00000000000", "x", 0); !errors.Is(err, ErrNoContact) {
		t.Errorf("unknown contact: %v", err)
	}
	if err := a.p.SetDraft(ab, strings.Repeat("y", MaxTextBytes), 0); err != nil {
		t.Errorf("a draft at the limit: %v", err)
	}
	if err := a.p.SetDraft(ab, " \n", 0); err != nil {
		t.Fatal(err)
	}
	if d, err := a.p.Draft(ab); err != nil || d != (Draft{}) {
		t.Errorf("a cleared draft: %+v %v", d, err)
	}
	if c, _ := a.p.Contact(ab); c.Draft != "" {
		t.Errorf("the list still shows %q", c.Draft)
	}
	if ok, _ := a.p.st.Has(draftKey(ab)); ok {
		t.Error("the draft record is still there")
	}
	_ = m
	// Groups have drafts too (without a reply).
	ms := buildGroup(t, 2)
	g := ms[0]
	if err := g.u.p.SetDraft(g.gid, "group draft", 0); err != nil {
		t.Fatal(err)
	}
	if d, err := g.u.p.Draft(g.gid); err != nil || d.Text != "group draft" {
		t.Errorf("group draft %+v %v", d, err)
	}
}

// BenchmarkSearch10k searches 10,000 messages of one conversation for a
// word in none of them (so every record is decrypted and scanned), on the
// in-memory file system. Records are written directly, as received
// messages would be.
func BenchmarkSearch10k(b *testing.B) {
	r := relaytest.Start(b)
	u := newUser(b, "Ann", "a passphrase for the bench", r)
	id := "benchcontact000000000000"
	p := u.p
	p.mu.Lock()
	if err := p.saveContact(&Contact{ID: id, Name: "Ben", State: ContactConnected, Created: time.Now().UTC(), NextSeq: 10001}); err != nil {
		b.Fatal(err)
	}
	words := strings.Fields("the quick brown fox jumps over a lazy dog while we plan lunch on friday at the usual café near the station")
	t0 := time.Now().UTC()
	for i := 1; i <= 10000; i++ {
		var sb strings.Builder
		for j := range 16 {
			sb.WriteString(words[(i*7+j*3)%len(words)])
			sb.WriteByte(' ')
		}
		rec := messageRecord{Message: Message{Contact: id, Seq: uint64(i), Incoming: i%2 == 0, Text: sb.String(), Time: t0.Add(time.Duration(i) * time.Second)}, AgentID: uint64(i)}
		if err := putJSON(p.st, msgKey(id, uint64(i)), rec); err != nil {
			b.Fatal(err)
		}
	}
	p.mu.Unlock()
	b.ResetTimer()
	for range b.N {
		res, err := p.Search(id, "zebra", 50)
		if err != nil || len(res) != 0 {
			b.Fatal(res, err)
		}
	}
	b.ReportMetric(float64(b.Elapsed().Microseconds())/float64(b.N)/10000, "µs/message")
}
