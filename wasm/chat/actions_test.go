//go:build !js

package chat

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/wisp-chat/wisp/wasm/agent"
	"github.com/wisp-chat/wisp/wasm/internal/crashfs"
	"github.com/wisp-chat/wisp/wasm/internal/relaytest"
)

// Message actions end to end: two profiles over loopback relays.

// all returns a conversation, oldest first.
func all(t testing.TB, u *user, id string) []Message {
	t.Helper()
	msgs, err := u.p.Messages(id, 0, 200)
	if err != nil {
		t.Fatal(err)
	}
	return msgs
}

// bySeq finds a message of a conversation by position.
func bySeq(t testing.TB, u *user, id string, seq uint64) Message {
	t.Helper()
	for _, m := range all(t, u, id) {
		if m.Seq == seq {
			return m
		}
	}
	t.Fatalf("no message %d", seq)
	return Message{}
}

// waitIn waits until u has an incoming message with text and returns it.
func waitIn(t testing.TB, u *user, id, text string) Message {
	t.Helper()
	var found Message
	waitFor(t, "the message "+text, func() (bool, error) {
		for _, m := range all(t, u, id) {
			if m.Incoming && m.Text == text {
				found = m
				return true, nil
			}
		}
		return false, nil
	})
	return found
}

// waitMsg waits until the message at seq satisfies cond.
func waitMsg(t testing.TB, u *user, id string, seq uint64, what string, cond func(Message) bool) Message {
	t.Helper()
	var m Message
	waitFor(t, what, func() (bool, error) {
		msgs, err := u.p.Messages(id, 0, 200)
		for _, x := range msgs {
			if x.Seq == seq {
				m = x
				return cond(x), err
			}
		}
		return false, err
	})
	return m
}

// countEvents counts u's events that match.
func countEvents(u *user, match func(Event) bool) int {
	u.mu.Lock()
	defer u.mu.Unlock()
	n := 0
	for _, e := range u.events {
		if match(e) {
			n++
		}
	}
	return n
}

func isProblem(e Event) bool { return e.Kind == "problem" }

// pair is two connected users.
func pair(t testing.TB) (a, b *user, ab, ba string) {
	r1, r2 := relaytest.Start(t), relaytest.Start(t)
	a, b = newUser(t, "Ann", "", r1), newUser(t, "Ben", "", r2)
	ab, ba = connect(t, a, b, false)
	return a, b, ab, ba
}

func TestActionEdit(t *testing.T) {
	a, b, ab, ba := pair(t)
	sent, err := a.p.SendText(ctxT(t), ab, "helo")
	if err != nil {
		t.Fatal(err)
	}
	in := waitIn(t, b, ba, "helo")
	for _, text := range []string{"hello", "hello world"} {
		m, err := a.p.EditMessage(ctxT(t), ab, sent.Seq, text)
		if err != nil {
			t.Fatal(err)
		}
		if m.Text != text || !m.Edited || m.EditedAt.IsZero() {
			t.Errorf("our edited message: %+v", m)
		}
	}
	got := waitMsg(t, b, ba, in.Seq, "the latest edit", func(m Message) bool { return m.Text == "hello world" })
	if !got.Edited || got.EditedAt.IsZero() || len(all(t, b, ba)) != 1 {
		t.Errorf("edited: %+v (%d messages)", got, len(all(t, b, ba)))
	}
	if c, _ := b.p.Contact(ba); c.LastText != "hello world" {
		t.Errorf("the list shows %q", c.LastText)
	}
	if n := countEvents(b, func(e Event) bool { return e.Kind == "update" && e.Message.Seq == in.Seq }); n != 2 {
		t.Errorf("%d update events, want 2", n)
	}
	info, err := b.p.MessageInfo(ba, in.Seq)
	if err != nil || info.ReceivedAt.IsZero() || !info.Edited || info.EditedAt.IsZero() {
		t.Errorf("info %+v %v", info, err)
	}
	waitFor(t, "delivered", func() (bool, error) {
		info, err := a.p.MessageInfo(ab, sent.Seq)
		return !info.DeliveredAt.IsZero() && !info.SentAt.IsZero() && !info.SentAt.After(info.DeliveredAt), err
	})
	// The status stays delivered; the edit needs no status of its own.
	if m := bySeq(t, a, ab, sent.Seq); m.Status != StatusDelivered || m.Text != "hello world" {
		t.Errorf("our message after the edit: %+v", m)
	}
}

// injectBody hands u's profile a body as if the contact's agent delivered it
// under agent message ID id.
func injectBody(t testing.TB, u *user, conn string, id uint64, body []byte) error {
	t.Helper()
	return (*profileEvents)(u.p).Received(agent.ConnID(conn), agent.Received{ID: id, Body: body, Sent: time.Now().UTC()})
}

func mustEncode(t testing.TB, a *action) []byte {
	t.Helper()
	b, err := a.encode()
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func TestActionOrderAndRepeats(t *testing.T) {
	a, b, ab, ba := pair(t)
	if _, err := a.p.SendText(ctxT(t), ab, "original"); err != nil {
		t.Fatal(err)
	}
	in := waitIn(t, b, ba, "original")
	ref := msgRef{MsgID: in.AgentID} // Ann's own message, from Ann's body
	const base = 1 << 40             // past any ID the real connection uses here
	edit := func(id uint64, text string) {
		if err := injectBody(t, b, ba, id, mustEncode(t, &action{Kind: bodyEdit, Ref: ref, Text: text})); err != nil {
			t.Fatal(err)
		}
	}
	edit(base+2, "second")
	edit(base+1, "first, arriving late")
	edit(base+2, "second") // a redelivery
	if m := bySeq(t, b, ba, in.Seq); m.Text != "second" || !m.Edited {
		t.Errorf("after edits out of order: %+v", m)
	}
	if n := countEvents(b, func(e Event) bool { return e.Kind == "update" }); n != 1 {
		t.Errorf("%d update events, want 1", n)
	}
	// Reactions: the latest by ID wins, a repeat changes nothing.
	react := func(id uint64, add bool, emoji string) {
		if err := injectBody(t, b, ba, id, mustEncode(t, &action{Kind: bodyReaction, Ref: msgRef{Recipient: true, MsgID: 1 << 50}, Add: add, Emoji: emoji})); err != nil {
			t.Fatal(err)
		}
		if err := injectBody(t, b, ba, id, mustEncode(t, &action{Kind: bodyReaction, Ref: ref, Add: add, Emoji: emoji})); err != nil {
			t.Fatal(err)
		}
	}
	react(base+11, true, "🎉")
	react(base+10, false, "")
	react(base+11, true, "🎉")
	if m := bySeq(t, b, ba, in.Seq); len(m.Reactions) != 1 || m.Reactions[0] != (Reaction{Emoji: "🎉", Count: 1}) {
		t.Errorf("reactions %+v", m.Reactions)
	}
	// A reply delivered twice is shown once.
	reply := mustEncode(t, &action{Kind: bodyReply, Ref: ref, Text: "replying to myself"})
	for range 2 {
		if err := injectBody(t, b, ba, base+20, reply); err != nil {
			t.Fatal(err)
		}
	}
	n := 0
	for _, m := range all(t, b, ba) {
		if m.Text == "replying to myself" {
			n++
		}
	}
	if n != 1 || countEvents(b, func(e Event) bool { return e.Kind == "message" && e.Message.Text == "replying to myself" }) != 1 {
		t.Errorf("the repeated reply is there %d times", n)
	}
	// A deletion, then an edit of the deleted message: ignored.
	del := mustEncode(t, &action{Kind: bodyDelete, Ref: ref})
	for range 2 {
		if err := injectBody(t, b, ba, base+30, del); err != nil {
			t.Fatal(err)
		}
	}
	edit(base+31, "after the deletion")
	if m := bySeq(t, b, ba, in.Seq); !m.Deleted || m.Text != "" || m.Edited || m.Reactions != nil {
		t.Errorf("deleted, then edited: %+v", m)
	}
	if n := countEvents(b, isProblem); n != 0 {
		t.Errorf("%d problem events", n)
	}
}

func TestActionDeleteForEveryone(t *testing.T) {
	a, b, ab, ba := pair(t)
	text, err := a.p.SendText(ctxT(t), ab, "regrettable")
	if err != nil {
		t.Fatal(err)
	}
	data := bytes.Repeat([]byte("file data "), 3000)
	file, err := a.p.SendFile(ctxT(t), ab, FileMeta{Name: "notes.txt", Type: "text/plain", Size: int64(len(data))}, bytes.NewReader(data), nil)
	if err != nil {
		t.Fatal(err)
	}
	inText := waitIn(t, b, ba, "regrettable")
	inFile := waitIn(t, b, ba, "notes.txt")
	if err := b.p.DownloadFile(ctxT(t), ba, inFile.Seq, nil); err != nil {
		t.Fatal(err)
	}
	if keys, _ := b.p.st.List(fileDir(ba, inFile.Seq).Join("chunks")); len(keys) == 0 {
		t.Fatal("no chunks stored")
	}
	// Ben may not delete Ann's message for everyone.
	if _, err := b.p.DeleteMessage(ctxT(t), ba, inText.Seq, true); !errors.Is(err, ErrNotAllowed) {
		t.Errorf("deleting the contact's message for everyone: %v", err)
	}
	for _, seq := range []uint64{text.Seq, file.Seq} {
		m, err := a.p.DeleteMessage(ctxT(t), ab, seq, true)
		if err != nil || !m.Deleted || m.Text != "" || m.File != nil {
			t.Fatalf("deleted for everyone: %+v %v", m, err)
		}
	}
	if _, err := a.p.DeleteMessage(ctxT(t), ab, text.Seq, true); !errors.Is(err, ErrInvalid) {
		t.Errorf("deleting twice: %v", err)
	}
	if _, err := a.p.EditMessage(ctxT(t), ab, text.Seq, "too late"); !errors.Is(err, ErrNotAllowed) {
		t.Errorf("editing a deleted message: %v", err)
	}
	for _, seq := range []uint64{inText.Seq, inFile.Seq} {
		waitMsg(t, b, ba, seq, "deleted", func(m Message) bool { return m.Deleted && m.Text == "" && m.File == nil })
	}
	if keys, _ := b.p.st.List(fileDir(ba, inFile.Seq).Join("chunks")); len(keys) != 0 {
		t.Errorf("%d chunks left of a deleted file", len(keys))
	}
	if _, _, err := b.p.OpenFile(ba, inFile.Seq); !errors.Is(err, ErrInvalid) {
		t.Errorf("opening a deleted file: %v", err)
	}
	if err := b.p.DownloadFile(ctxT(t), ba, inFile.Seq, nil); !errors.Is(err, ErrInvalid) {
		t.Errorf("downloading a deleted file: %v", err)
	}
	if c, _ := b.p.Contact(ba); c.LastText != "Message deleted" {
		t.Errorf("the list shows %q", c.LastText)
	}
	// Reacting to a deleted message is refused.
	if _, err := b.p.React(ctxT(t), ba, inText.Seq, "👍", true); !errors.Is(err, ErrInvalid) {
		t.Errorf("reacting to a deleted message: %v", err)
	}
}

func TestActionReplies(t *testing.T) {
	a, b, ab, ba := pair(t)
	long := strings.Repeat("é", 200)
	m1, err := a.p.SendText(ctxT(t), ab, long)
	if err != nil {
		t.Fatal(err)
	}
	in1 := waitIn(t, b, ba, long)
	// Ben replies to Ann's message; Ann replies to her own.
	r1, err := b.p.SendReply(ctxT(t), ba, "answer", in1.Seq)
	if err != nil {
		t.Fatal(err)
	}
	if q := r1.Quote; q == nil || !q.Incoming || q.Seq != in1.Seq || q.Missing || utf8.RuneCountInString(q.Text) != QuotePreview || !strings.HasSuffix(q.Text, "…") {
		t.Errorf("Ben's quote: %+v", q)
	}
	gotR1 := waitIn(t, a, ab, "answer")
	if q := gotR1.Quote; q == nil || q.Incoming || q.Seq != m1.Seq || q.Missing || q.MsgID != m1.AgentID {
		t.Errorf("Ann sees the quote %+v", q)
	}
	r2, err := a.p.SendReply(ctxT(t), ab, "adding to that", m1.Seq)
	if err != nil {
		t.Fatal(err)
	}
	if q := r2.Quote; q == nil || q.Incoming || q.Seq != m1.Seq {
		t.Errorf("Ann's quote of her own: %+v", q)
	}
	if q := waitIn(t, b, ba, "adding to that").Quote; q == nil || !q.Incoming || q.Seq != in1.Seq {
		t.Errorf("Ben sees %+v", q)
	}
	// A quote of a message the other side deleted for itself.
	m2, err := a.p.SendText(ctxT(t), ab, "forget this")
	if err != nil {
		t.Fatal(err)
	}
	in2 := waitIn(t, b, ba, "forget this")
	hidden, err := b.p.DeleteMessage(ctxT(t), ba, in2.Seq, false)
	if err != nil || !hidden.Hidden || hidden.Text != "" {
		t.Fatalf("deleted for me: %+v %v", hidden, err)
	}
	for _, m := range all(t, b, ba) {
		if m.Seq == in2.Seq {
			t.Error("a message deleted for me is listed")
		}
	}
	if _, err := a.p.SendReply(ctxT(t), ab, "about that", m2.Seq); err != nil {
		t.Fatal(err)
	}
	if q := waitIn(t, b, ba, "about that").Quote; q == nil || !q.Missing || q.Seq != 0 || q.Text != "" {
		t.Errorf("Ben's quote of what he deleted: %+v", q)
	}
	if _, err := b.p.SendReply(ctxT(t), ba, "no", in2.Seq); !errors.Is(err, ErrInvalid) {
		t.Errorf("replying to a message deleted for me: %v", err)
	}
	// A quote follows the original's edits and its deletion.
	if _, err := a.p.EditMessage(ctxT(t), ab, m1.Seq, "short now"); err != nil {
		t.Fatal(err)
	}
	waitMsg(t, b, ba, r1.Seq, "the quote follows the edit", func(m Message) bool { return m.Quote != nil && m.Quote.Text == "short now" })
	if _, err := a.p.DeleteMessage(ctxT(t), ab, m1.Seq, true); err != nil {
		t.Fatal(err)
	}
	waitMsg(t, b, ba, r1.Seq, "the quote shows the deletion", func(m Message) bool { return m.Quote != nil && m.Quote.Deleted && m.Quote.Text == "" })
	if q := bySeq(t, a, ab, gotR1.Seq).Quote; q == nil || !q.Deleted {
		t.Errorf("Ann's view of the quote: %+v", q)
	}
	if _, err := a.p.SendReply(ctxT(t), ab, "x", m1.Seq); !errors.Is(err, ErrInvalid) {
		t.Errorf("replying to a deleted message: %v", err)
	}
}

func TestActionReactions(t *testing.T) {
	a, b, ab, ba := pair(t)
	m, err := b.p.SendText(ctxT(t), ba, "good news")
	if err != nil {
		t.Fatal(err)
	}
	in := waitIn(t, a, ab, "good news")
	check := func(u *user, id string, seq uint64, what string, want ...Reaction) {
		t.Helper()
		waitMsg(t, u, id, seq, what, func(m Message) bool { return fmt.Sprint(m.Reactions) == fmt.Sprint(want) })
	}
	if _, err := a.p.React(ctxT(t), ab, in.Seq, "👍", true); err != nil {
		t.Fatal(err)
	}
	check(a, ab, in.Seq, "Ann's own reaction", Reaction{"👍", 1, true})
	check(b, ba, m.Seq, "Ann's reaction at Ben's", Reaction{"👍", 1, false})
	if _, err := b.p.React(ctxT(t), ba, m.Seq, "👍", true); err != nil {
		t.Fatal(err)
	}
	check(a, ab, in.Seq, "two thumbs", Reaction{"👍", 2, true})
	check(b, ba, m.Seq, "two thumbs at Ben's", Reaction{"👍", 2, true})
	// One per person: a new one replaces Ann's.
	if _, err := a.p.React(ctxT(t), ab, in.Seq, "❤️", true); err != nil {
		t.Fatal(err)
	}
	check(b, ba, m.Seq, "Ann's changed", Reaction{"❤️", 1, false}, Reaction{"👍", 1, true})
	if _, err := a.p.React(ctxT(t), ab, in.Seq, "", false); err != nil {
		t.Fatal(err)
	}
	check(b, ba, m.Seq, "Ann's removed", Reaction{"👍", 1, true})
	check(a, ab, in.Seq, "only Ben's", Reaction{"👍", 1, false})
	// Ann reacts to her own message too.
	own, err := a.p.SendText(ctxT(t), ab, "mine")
	if err != nil {
		t.Fatal(err)
	}
	bown := waitIn(t, b, ba, "mine")
	if _, err := a.p.React(ctxT(t), ab, own.Seq, "😂", true); err != nil {
		t.Fatal(err)
	}
	check(b, ba, bown.Seq, "a reaction to the author's own", Reaction{"😂", 1, false})
	// Setting the same reaction again sends nothing.
	sends := countEvents(a, func(e Event) bool { return e.Kind == "update" })
	if _, err := a.p.React(ctxT(t), ab, own.Seq, "😂", true); err != nil {
		t.Fatal(err)
	}
	if countEvents(a, func(e Event) bool { return e.Kind == "update" }) != sends {
		t.Error("the same reaction twice changed something")
	}
	for _, tc := range []struct {
		emoji string
		want  error
	}{{"👍🏽👍🏽!", ErrTooLong}, {"", ErrInvalid}, {"a b", ErrInvalid}, {"\u202e", ErrInvalid}, {"\xff", ErrInvalid}} {
		if _, err := a.p.React(ctxT(t), ab, own.Seq, tc.emoji, true); !errors.Is(err, tc.want) {
			t.Errorf("reaction %q: %v, want %v", tc.emoji, err, tc.want)
		}
	}
}

func TestActionRefusals(t *testing.T) {
	a, b, ab, ba := pair(t)
	mine, err := a.p.SendText(ctxT(t), ab, "mine")
	if err != nil {
		t.Fatal(err)
	}
	theirs, err := b.p.SendText(ctxT(t), ba, "theirs")
	if err != nil {
		t.Fatal(err)
	}
	data := []byte("a small file")
	file, err := a.p.SendFile(ctxT(t), ab, FileMeta{Name: "f.txt", Size: int64(len(data))}, bytes.NewReader(data), nil)
	if err != nil {
		t.Fatal(err)
	}
	inTheirs := waitIn(t, a, ab, "theirs")
	for _, tc := range []struct {
		name string
		seq  uint64
		text string
		want error
	}{
		{"someone else's", inTheirs.Seq, "x", ErrNotAllowed},
		{"a file", file.Seq, "x", ErrNotAllowed},
		{"too long", mine.Seq, strings.Repeat("x", MaxTextBytes+1), ErrTooLong},
		{"empty", mine.Seq, "  ", ErrInvalid},
		{"invalid UTF-8", mine.Seq, "\xff", ErrInvalid},
		{"unknown seq", 999, "x", ErrInvalid},
	} {
		if _, err := a.p.EditMessage(ctxT(t), ab, tc.seq, tc.text); !errors.Is(err, tc.want) {
			t.Errorf("edit %s: %v, want %v", tc.name, err, tc.want)
		}
	}
	if _, err := a.p.EditMessage(ctxT(t), "nosuchcontact00000000000", 1, "x"); !errors.Is(err, ErrNoContact) {
		t.Errorf("edit of an unknown contact: %v", err)
	}
	for _, seq := range []uint64{0, 999} {
		if _, err := a.p.DeleteMessage(ctxT(t), ab, seq, false); !errors.Is(err, ErrInvalid) {
			t.Errorf("delete %d: %v", seq, err)
		}
		if _, err := a.p.React(ctxT(t), ab, seq, "👍", true); !errors.Is(err, ErrInvalid) {
			t.Errorf("react %d: %v", seq, err)
		}
		if _, err := a.p.SendReply(ctxT(t), ab, "x", seq+1000); !errors.Is(err, ErrInvalid) {
			t.Errorf("reply to %d: %v", seq+1000, err)
		}
	}
	if _, err := a.p.MessageInfo(ab, 999); !errors.Is(err, ErrInvalid) {
		t.Errorf("info of an unknown message: %v", err)
	}
	// What the contact sends that is malformed is refused (a problem
	// event), and what names a message it may not change is ignored;
	// neither changes anything.
	inMine := waitIn(t, b, ba, "mine")
	inFile := waitIn(t, b, ba, "f.txt")
	incoming := func() string {
		var out []Message
		for _, m := range all(t, b, ba) {
			if m.Incoming {
				out = append(out, m)
			}
		}
		j, _ := json.Marshal(out)
		return string(j)
	}
	before := incoming()
	edit := mustEncode(t, &action{Kind: bodyEdit, Ref: msgRef{MsgID: inMine.AgentID}, Text: "changed"})
	flipped := bytes.Clone(edit)
	flipped[1] ^= 0x80 // the owner byte
	var id uint64 = 1 << 40
	for _, body := range [][]byte{{}, edit[:1], edit[:5], flipped, []byte("e\x00"), append(bytes.Clone(edit[:10]), 0xff)} {
		id++
		n := countEvents(b, isProblem)
		if err := injectBody(t, b, ba, id, body); err != nil {
			t.Fatal(err)
		}
		if countEvents(b, isProblem) != n+1 {
			t.Errorf("malformed body %x: no problem event", body)
		}
	}
	// Well formed, but about Ben's own message, an unknown one, or a file.
	n := countEvents(b, func(e Event) bool { return e.Kind != "status" })
	for _, a := range []*action{
		{Kind: bodyEdit, Ref: msgRef{Recipient: true, MsgID: theirs.AgentID}, Text: "changing Ben's"},
		{Kind: bodyDelete, Ref: msgRef{Recipient: true, MsgID: theirs.AgentID}},
		{Kind: bodyEdit, Ref: msgRef{MsgID: 1 << 50}, Text: "unknown"},
		{Kind: bodyReaction, Ref: msgRef{MsgID: 1 << 50}, Add: true, Emoji: "👍"},
		{Kind: bodyEdit, Ref: msgRef{MsgID: inFile.AgentID}, Text: "renaming a file"},
	} {
		id++
		if err := injectBody(t, b, ba, id, mustEncode(t, a)); err != nil {
			t.Fatal(err)
		}
	}
	// An unknown kind is dropped without a word.
	for _, body := range [][]byte{[]byte("z{\"future\":1}"), {0}, {0xff, 1, 2}} {
		id++
		if err := injectBody(t, b, ba, id, body); err != nil {
			t.Fatal(err)
		}
	}
	if m := countEvents(b, func(e Event) bool { return e.Kind != "status" }); m != n {
		t.Errorf("ignored bodies gave %d events", m-n)
	}
	if after := incoming(); after != before {
		t.Errorf("refused bodies changed the conversation:\n%s\n%s", before, after)
	}
	if m := bySeq(t, b, ba, theirs.Seq); m.Text != "theirs" || m.Deleted || m.Edited {
		t.Errorf("Ben's own message after Ann's attempts: %+v", m)
	}
}

func TestActionDeleteForMe(t *testing.T) {
	a, b, ab, ba := pair(t)
	var seqs []uint64
	for i := range 5 {
		m, err := a.p.SendText(ctxT(t), ab, fmt.Sprintf("secret %d", i))
		if err != nil {
			t.Fatal(err)
		}
		seqs = append(seqs, m.Seq)
	}
	waitIn(t, b, ba, "secret 4")
	// Ann hides her last two: the list falls back to m2, paging still
	// gives full pages.
	for _, seq := range seqs[3:] {
		m, err := a.p.DeleteMessage(ctxT(t), ab, seq, false)
		if err != nil || !m.Hidden {
			t.Fatalf("%+v %v", m, err)
		}
	}
	if c, _ := a.p.Contact(ab); c.LastText != "secret 2" {
		t.Errorf("the list shows %q", c.LastText)
	}
	page, _ := a.p.Messages(ab, 0, 2)
	if len(page) != 2 || page[0].Text != "secret 1" || page[1].Text != "secret 2" {
		t.Errorf("page past tombstones: %+v", page)
	}
	if _, err := a.p.EditMessage(ctxT(t), ab, seqs[4], "x"); !errors.Is(err, ErrInvalid) {
		t.Errorf("editing a message deleted for me: %v", err)
	}
	// Nothing of the text is left in the record.
	a.p.mu.Lock()
	raw, err := a.p.st.Get(msgKey(ab, seqs[4]))
	a.p.mu.Unlock()
	if err != nil || bytes.Contains(raw, []byte("secret")) {
		t.Errorf("the tombstone: %s %v", raw, err)
	}
	// Statuses of a hidden message change nothing; Ben still has them.
	if len(all(t, b, ba)) != 5 {
		t.Error("deleting for me reached the contact")
	}
}

// TestActionReceiveCrash crashes Ben at every storage write while he
// applies a reply, an edit, a reaction and a deletion, restarts him and
// delivers the body again, as the agent does: each is applied once.
func TestActionReceiveCrash(t *testing.T) {
	r1, r2 := relaytest.Start(t), relaytest.Start(t)
	a := newUser(t, "Ann", "", r1)
	disk, err := crashfs.New()
	if err != nil {
		t.Fatal(err)
	}
	b := newUserOn(t, "Ben", "", r2, disk)
	ab, ba := connect(t, a, b, false)
	if _, err := a.p.SendText(ctxT(t), ab, "target"); err != nil {
		t.Fatal(err)
	}
	in := waitIn(t, b, ba, "target")
	ref := msgRef{MsgID: in.AgentID}
	id := uint64(1 << 40)
	crashed := 0 // first deliveries a crash cut short
	for budget := range 12 {
		for _, tc := range []struct {
			name  string
			body  *action
			check func(msgs []Message) error
		}{
			{"reply", &action{Kind: bodyReply, Ref: ref, Text: fmt.Sprintf("reply %d", budget)}, func(msgs []Message) error {
				n := 0
				for _, m := range msgs {
					if m.Text == fmt.Sprintf("reply %d", budget) {
						n++
						if m.Quote == nil || m.Quote.Seq != in.Seq {
							return fmt.Errorf("quote %+v", m.Quote)
						}
					}
				}
				if n != 1 {
					return fmt.Errorf("the reply is there %d times", n)
				}
				return nil
			}},
			{"edit", &action{Kind: bodyEdit, Ref: ref, Text: fmt.Sprintf("edit %d", budget)}, func(msgs []Message) error {
				if m := msgs[0]; m.Text != fmt.Sprintf("edit %d", budget) || !m.Edited {
					return fmt.Errorf("%+v", m)
				}
				return nil
			}},
			{"reaction", &action{Kind: bodyReaction, Ref: ref, Add: budget%2 == 0, Emoji: "👍"}, func(msgs []Message) error {
				if got := len(msgs[0].Reactions); got != 1-budget%2 {
					return fmt.Errorf("reactions %+v", msgs[0].Reactions)
				}
				return nil
			}},
		} {
			id++
			body := mustEncode(t, tc.body)
			updates := countEvents(b, func(e Event) bool { return e.Kind == "update" || e.Kind == "message" })
			disk.SetBudget(budget)
			if injectBody(t, b, ba, id, body) != nil {
				crashed++
			}
			b.m.Close()
			disk.SetBudget(-1)
			b.restart(r2)
			for range 2 { // the redelivery, and a replay of it
				if err := injectBody(t, b, ba, id, body); err != nil {
					t.Fatalf("%s at budget %d, redelivered: %v", tc.name, budget, err)
				}
			}
			if err := tc.check(all(t, b, ba)); err != nil {
				t.Fatalf("%s at budget %d: %v", tc.name, budget, err)
			}
			if n := countEvents(b, func(e Event) bool { return e.Kind == "update" || e.Kind == "message" }) - updates; n > 1 || n == 0 && tc.name != "reply" {
				t.Fatalf("%s at budget %d: %d events", tc.name, budget, n)
			}
		}
	}
	if crashed < 12 {
		t.Errorf("only %d of 36 deliveries were cut short by the crash", crashed)
	}
	t.Logf("%d of 36 deliveries cut short", crashed)
	// The deletion last, crashed at every write in turn.
	del := mustEncode(t, &action{Kind: bodyDelete, Ref: ref})
	id++
	for budget := range 8 {
		disk.SetBudget(budget)
		_ = injectBody(t, b, ba, id, del)
		b.m.Close()
		disk.SetBudget(-1)
		b.restart(r2)
	}
	if err := injectBody(t, b, ba, id, del); err != nil {
		t.Fatal(err)
	}
	if m := all(t, b, ba)[0]; !m.Deleted || m.Text != "" {
		t.Errorf("after the deletion: %+v", m)
	}
}

// TestActionSendCrash: a crash between the agent queuing an action and
// its record (the relay down, so it is still in the outbox): the next
// unlock applies it from the outbox, once, and it reaches the contact.
func TestActionSendCrash(t *testing.T) {
	r1, r2 := relaytest.Start(t), relaytest.Start(t)
	a, b := newUser(t, "Ann", "", r1), newUser(t, "Ben", "", r2)
	ab, ba := connect(t, a, b, false)
	m, err := a.p.SendText(ctxT(t), ab, "first try")
	if err != nil {
		t.Fatal(err)
	}
	in := waitIn(t, b, ba, "first try")
	r2.Stop() // Ben's relay: Ann's sends wait in her outbox
	ref := msgRef{MsgID: m.AgentID}
	for _, act := range []*action{
		{Kind: bodyEdit, Ref: ref, Text: "second try"},
		{Kind: bodyReaction, Ref: ref, Add: true, Emoji: "🙈"},
		{Kind: bodyReply, Ref: ref, Text: "see above"},
	} {
		if _, err := a.p.ag.Send(ctxT(t), agent.ConnID(ab), mustEncode(t, act)); err != nil {
			t.Fatal(err)
		}
	}
	for range 2 { // unlocking twice applies each once
		a.restart(r1)
	}
	got := bySeq(t, a, ab, m.Seq)
	if got.Text != "second try" || !got.Edited || len(got.Reactions) != 1 || !got.Reactions[0].Mine {
		t.Errorf("after the restart: %+v", got)
	}
	replies := 0
	for _, x := range all(t, a, ab) {
		if x.Text == "see above" {
			replies++
			if x.Quote == nil || x.Quote.Seq != m.Seq {
				t.Errorf("the reply's quote: %+v", x.Quote)
			}
		}
	}
	if replies != 1 {
		t.Errorf("the reply is there %d times", replies)
	}
	r2.Restart()
	waitMsg(t, b, ba, in.Seq, "the edit and the reaction arrive", func(m Message) bool {
		return m.Text == "second try" && len(m.Reactions) == 1
	})
	waitIn(t, b, ba, "see above")
}

func TestActionsNotInGroups(t *testing.T) {
	ms := buildGroup(t, 2)
	g := ms[0]
	m, err := g.u.p.SendGroupText(ctxT(t), g.gid, "hello group")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := g.u.p.EditMessage(ctxT(t), g.gid, m.Seq, "x"); !errors.Is(err, ErrInvalid) {
		t.Errorf("edit in a group: %v", err)
	}
	if _, err := g.u.p.DeleteMessage(ctxT(t), g.gid, m.Seq, false); !errors.Is(err, ErrInvalid) {
		t.Errorf("delete in a group: %v", err)
	}
	if _, err := g.u.p.React(ctxT(t), g.gid, m.Seq, "👍", true); !errors.Is(err, ErrInvalid) {
		t.Errorf("react in a group: %v", err)
	}
	if _, err := g.u.p.MessageInfo(g.gid, m.Seq); err != nil {
		t.Errorf("info in a group: %v", err)
	}
}
