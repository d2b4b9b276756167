//go:build !js

package chat

import (
	"fmt"
	"slices"
	"testing"
)

// TestMessagesPaging checks Messages, which reads a window of positions
// rather than the whole conversation, against a reference that reads every
// record: positions with long gaps (messages whose records are gone),
// tombstones (deleted for us) in runs longer than a page, and a record a
// crash left at the contact's next position.
func TestMessagesPaging(t *testing.T) {
	a, _, ab, _ := pair(t)
	a.p.mu.Lock()
	c, err := a.p.contact(ab)
	if err != nil {
		a.p.mu.Unlock()
		t.Fatal(err)
	}
	base := c.NextSeq
	var seqs []uint64
	for s := base; s < base+5; s++ {
		seqs = append(seqs, s) // a short run
	}
	seqs = append(seqs, base+100)
	for s := base + 1000; s < base+1130; s++ {
		seqs = append(seqs, s) // a long run, with tombstones inside
	}
	seqs = append(seqs, base+70000)
	hidden := func(s uint64) bool { return s >= base+1010 && s < base+1090 || s == base+100 }
	for _, s := range seqs {
		rec := messageRecord{Message: Message{Contact: ab, Seq: s, Text: fmt.Sprintf("message %d", s), Incoming: s%2 == 0}}
		rec.Hidden = hidden(s)
		if err := putJSON(a.p.st, msgKey(ab, s), rec); err != nil {
			a.p.mu.Unlock()
			t.Fatal(err)
		}
	}
	// The contact's next position is the last record's: that record is the
	// one a crash left before the contact was saved (nextPos).
	c.NextSeq = base + 70000
	if err := a.p.saveContact(c); err != nil {
		a.p.mu.Unlock()
		t.Fatal(err)
	}
	a.p.mu.Unlock()

	// The reference: every record, the tombstones left out.
	var visible []uint64
	for _, s := range seqs {
		if !hidden(s) {
			visible = append(visible, s)
		}
	}
	want := func(before uint64, limit int) []uint64 {
		var below []uint64
		for _, s := range visible {
			if before == 0 || s < before {
				below = append(below, s)
			}
		}
		return below[max(0, len(below)-limit):]
	}
	got := func(before uint64, limit int) []uint64 {
		t.Helper()
		ms, err := a.p.Messages(ab, before, limit)
		if err != nil {
			t.Fatalf("Messages(%d, %d): %v", before, limit, err)
		}
		var out []uint64
		for _, m := range ms {
			if m.Text != fmt.Sprintf("message %d", m.Seq) {
				t.Errorf("Messages(%d, %d): seq %d reads %q", before, limit, m.Seq, m.Text)
			}
			out = append(out, m.Seq)
		}
		return out
	}
	for _, limit := range []int{1, 2, 7, 50, 200} {
		// Page back from the newest to the first, as the page scrolls.
		var before uint64
		for range len(seqs) + 2 {
			g, w := got(before, limit), want(before, limit)
			if !slices.Equal(g, w) {
				t.Fatalf("Messages(before %d, limit %d) = %v, want %v", before, limit, g, w)
			}
			if len(g) == 0 {
				break
			}
			before = g[0]
		}
		if before != 0 && before != visible[0] {
			t.Errorf("limit %d: paging stopped at %d, the first message is %d", limit, before, visible[0])
		}
	}
	for _, before := range []uint64{1, base, base + 3, base + 101, base + 1050, base + 69999, base + 90000} {
		if g, w := got(before, 50), want(before, 50); !slices.Equal(g, w) {
			t.Errorf("Messages(before %d) = %v, want %v", before, g, w)
		}
	}
	// A chat that does not exist lists nothing; a malformed ID is an error.
	if ms, err := a.p.Messages("000000000000000000000000", 0, 50); err != nil || len(ms) != 0 {
		t.Errorf("an unknown chat: %v, %v", ms, err)
	}
	if _, err := a.p.Messages("../x", 0, 50); err == nil {
		t.Error("a malformed chat ID was accepted")
	}
}
