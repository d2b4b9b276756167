//go:build !js

package chat

import (
	"bytes"
	"encoding/hex"
	"encoding/json"
	"errors"
	"flag"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// The vectors of SPEC.md §8, "Message actions": testdata/actions-vectors.json.
//
//	go test ./wasm/chat -run VectorsActions                                   compare
//	go test ./wasm/chat -run VectorsActionsFile -args -update-actions-vectors  rewrite
//
// The rewrite also writes the seed corpus of FuzzDecodeAction.
var updateActionsVectors = flag.Bool("update-actions-vectors", false,
	"rewrite testdata/actions-vectors.json and the FuzzDecodeAction seed corpus")

const actionsVectorsPath = "testdata/actions-vectors.json"

// avFile is the layout of testdata/actions-vectors.json; bodies are hex.
type avFile struct {
	Comment []string   `json:"comment"`
	Limits  avLimits   `json:"limits"`
	Bodies  []avBody   `json:"bodies"`
	Refused []avBad    `json:"refused"`
	Ignored []avBad    `json:"ignored"`
	Refs    []avRefRow `json:"refs"`
}

type avLimits struct {
	MaxTextBytes     int `json:"max_text_bytes"`
	MaxReactionBytes int `json:"max_reaction_bytes"`
	RefBytes         int `json:"ref_bytes"`
}

// avInput is an action as its fields: kind reply, edit, delete or
// reaction; whose message: "author" (of the body) or "recipient".
type avInput struct {
	Kind  string `json:"kind"`
	Whose string `json:"whose"`
	MsgID uint64 `json:"msg_id"`
	Text  string `json:"text,omitempty"`
	Op    string `json:"op,omitempty"` // reaction: add or remove
	Emoji string `json:"emoji,omitempty"`
}

type avBody struct {
	Name  string  `json:"name"`
	Input avInput `json:"input"`
	Hex   string  `json:"hex"`
}

type avBad struct {
	Name string `json:"name"`
	Why  string `json:"why"`
	Hex  string `json:"hex"`
}

// avRefRow says where each side looks a reference up: for a body that
// the sender (A) wrote naming a message by whose and msg_id, the record
// of A and of the recipient (B).
type avRefRow struct {
	Whose     string `json:"whose"`
	AuthorIdx string `json:"author_index"`    // in A's records
	RecipIdx  string `json:"recipient_index"` // in B's records
}

var avKinds = map[string]byte{"reply": bodyReply, "edit": bodyEdit, "delete": bodyDelete, "reaction": bodyReaction}

func (in avInput) action(t testing.TB) *action {
	k, ok := avKinds[in.Kind]
	if !ok || (in.Whose != "author" && in.Whose != "recipient") {
		t.Fatalf("bad vector input %+v", in)
	}
	return &action{Kind: k, Ref: msgRef{Recipient: in.Whose == "recipient", MsgID: in.MsgID}, Text: in.Text, Add: in.Op == "add", Emoji: in.Emoji}
}

func avInputOf(a *action) avInput {
	in := avInput{Whose: "author", MsgID: a.Ref.MsgID, Text: a.Text, Emoji: a.Emoji}
	for name, k := range avKinds {
		if k == a.Kind {
			in.Kind = name
		}
	}
	if a.Ref.Recipient {
		in.Whose = "recipient"
	}
	if a.Kind == bodyReaction {
		in.Op = "remove"
		if a.Add {
			in.Op = "add"
		}
	}
	return in
}

func avInputs() []avBody {
	return []avBody{
		{Name: "reply_to_author", Input: avInput{Kind: "reply", Whose: "author", MsgID: 1, Text: "Yes — 8 pm at the café <3"}},
		{Name: "reply_to_recipient", Input: avInput{Kind: "reply", Whose: "recipient", MsgID: 300, Text: "ok"}},
		{Name: "reply_empty_text", Input: avInput{Kind: "reply", Whose: "recipient", MsgID: 2}},
		{Name: "reply_largest_id", Input: avInput{Kind: "reply", Whose: "author", MsgID: 1<<64 - 1, Text: "x"}},
		{Name: "edit", Input: avInput{Kind: "edit", Whose: "author", MsgID: 7, Text: "fixed: naïve\nsecond line"}},
		{Name: "edit_of_recipient", Input: avInput{Kind: "edit", Whose: "recipient", MsgID: 7, Text: "well formed, but a receiver ignores it"}},
		{Name: "delete", Input: avInput{Kind: "delete", Whose: "author", MsgID: 42}},
		{Name: "reaction_add", Input: avInput{Kind: "reaction", Whose: "recipient", MsgID: 5, Op: "add", Emoji: "👍"}},
		{Name: "reaction_skin_tone", Input: avInput{Kind: "reaction", Whose: "author", MsgID: 6, Op: "add", Emoji: "👍🏽"}},
		{Name: "reaction_heart_vs16", Input: avInput{Kind: "reaction", Whose: "recipient", MsgID: 5, Op: "add", Emoji: "❤️"}},
		{Name: "reaction_zwj_flag", Input: avInput{Kind: "reaction", Whose: "recipient", MsgID: 5, Op: "add", Emoji: "🏳️‍🌈"}},
		{Name: "reaction_16_bytes", Input: avInput{Kind: "reaction", Whose: "recipient", MsgID: 5, Op: "add", Emoji: "👍🏽👍🏽"}},
		{Name: "reaction_remove", Input: avInput{Kind: "reaction", Whose: "recipient", MsgID: 5, Op: "remove"}},
	}
}

// avRefusedInputs are bodies decodeAction refuses (a receiver reports
// them as a problem and drops them).
func avRefusedInputs() []avBad {
	ref := func(whose byte, id uint64) string {
		return hex.EncodeToString(appendRef(nil, msgRef{Recipient: whose == 1, MsgID: id}))
	}
	h := func(s string) string { return hex.EncodeToString([]byte(s)) }
	return []avBad{
		{Name: "kind_only", Why: "shorter than type byte and reference", Hex: "71"},
		{Name: "truncated_ref", Why: "shorter than type byte and reference", Hex: "64" + ref(0, 42)[:16]},
		{Name: "bad_owner", Why: "owner byte other than 0x00 and 0x01", Hex: "64" + "02" + ref(0, 42)[2:]},
		{Name: "zero_msg_id", Why: "msg_id 0", Hex: "64" + "000000000000000000"},
		{Name: "reply_invalid_utf8", Why: "text not UTF-8", Hex: "71" + ref(0, 1) + "ff"},
		{Name: "edit_too_long", Why: "text over 8,000 bytes", Hex: "65" + ref(0, 1) + h(strings.Repeat("a", MaxTextBytes+1))},
		{Name: "delete_trailing", Why: "bytes after a deletion's reference", Hex: "64" + ref(0, 42) + "00"},
		{Name: "reaction_no_op", Why: "no op byte", Hex: "72" + ref(1, 5)},
		{Name: "reaction_bad_op", Why: "op other than 0x00 and 0x01", Hex: "72" + ref(1, 5) + "02" + h("👍")},
		{Name: "reaction_remove_with_emoji", Why: "bytes after remove", Hex: "72" + ref(1, 5) + "00" + h("👍")},
		{Name: "reaction_add_empty", Why: "add without an emoji", Hex: "72" + ref(1, 5) + "01"},
		{Name: "reaction_17_bytes", Why: "emoji over 16 bytes", Hex: "72" + ref(1, 5) + "01" + h("👍🏽👍🏽!")},
		{Name: "reaction_family", Why: "emoji over 16 bytes (man, ZWJ, woman, ZWJ, girl: 18)", Hex: "72" + ref(1, 5) + "01" + h("👨‍👩‍👧")},
		{Name: "reaction_space", Why: "separator character", Hex: "72" + ref(1, 5) + "01" + h("👍 ")},
		{Name: "reaction_newline", Why: "control character", Hex: "72" + ref(1, 5) + "01" + h("\n")},
		{Name: "reaction_bidi", Why: "format character other than ZWJ (U+202E)", Hex: "72" + ref(1, 5) + "01" + h("\u202e👍")},
		{Name: "reaction_invalid_utf8", Why: "emoji not UTF-8", Hex: "72" + ref(1, 5) + "01" + "f09f91"},
	}
}

// avIgnoredInputs are bodies of kinds this version does not know: a
// receiver acknowledges and drops them without a word.
func avIgnoredInputs() []avBad {
	return []avBad{
		{Name: "unknown_kind_z", Why: "type byte 'z'", Hex: hex.EncodeToString([]byte("z{\"future\":true}"))},
		{Name: "unknown_kind_0x00", Why: "type byte 0x00", Hex: "0001020304"},
		{Name: "unknown_kind_only", Why: "type byte 0xff alone", Hex: "ff"},
	}
}

func avBuild(t testing.TB) *avFile {
	f := &avFile{
		Comment: []string{
			"Message action bodies of wasm/chat/SPEC.md §8: type byte || whose (0x00 the body's author's message, 0x01 its recipient's) || msg_id (8 bytes, big-endian) || content.",
			"Bytes are hex. bodies: each input and the exact body; decoding the body gives the input back. refused: bodies a receiver drops as malformed (a problem event). ignored: bodies of unknown kinds, dropped silently.",
			"refs: where each side finds the message a reference names (A wrote the body, B received it): i/ = the index of messages received, o/ = of messages sent, by agent message ID.",
			"Regenerate: go test ./wasm/chat -run VectorsActionsFile -args -update-actions-vectors",
		},
		Limits:  avLimits{MaxTextBytes: MaxTextBytes, MaxReactionBytes: MaxReactionBytes, RefBytes: refSize},
		Refused: avRefusedInputs(),
		Ignored: avIgnoredInputs(),
		Refs: []avRefRow{
			{Whose: "author", AuthorIdx: "c/<B>/o/<msg_id>", RecipIdx: "c/<A>/i/<msg_id>"},
			{Whose: "recipient", AuthorIdx: "c/<B>/i/<msg_id>", RecipIdx: "c/<A>/o/<msg_id>"},
		},
	}
	for _, b := range avInputs() {
		body, err := b.Input.action(t).encode()
		if err != nil {
			t.Fatalf("%s: %v", b.Name, err)
		}
		b.Hex = hex.EncodeToString(body)
		f.Bodies = append(f.Bodies, b)
	}
	return f
}

func avEncode(t testing.TB, f *avFile) []byte {
	var buf bytes.Buffer
	e := json.NewEncoder(&buf)
	e.SetEscapeHTML(false)
	e.SetIndent("", "  ")
	if err := e.Encode(f); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

func avLoad(t testing.TB) *avFile {
	t.Helper()
	b, err := os.ReadFile(actionsVectorsPath)
	if err != nil {
		t.Fatalf("%v (generate with -args -update-actions-vectors)", err)
	}
	var f avFile
	d := json.NewDecoder(bytes.NewReader(b))
	d.DisallowUnknownFields()
	if err := d.Decode(&f); err != nil {
		t.Fatal(err)
	}
	return &f
}

// TestVectorsActionsFile rebuilds the vectors from their inputs with the
// package's encoder and compares them with the committed file.
func TestVectorsActionsFile(t *testing.T) {
	got := avEncode(t, avBuild(t))
	if *updateActionsVectors {
		if err := os.WriteFile(actionsVectorsPath, got, 0o644); err != nil {
			t.Fatal(err)
		}
		avWriteCorpus(t)
		return
	}
	want, err := os.ReadFile(actionsVectorsPath)
	if err != nil {
		t.Fatalf("%v (generate with -args -update-actions-vectors)", err)
	}
	if !bytes.Equal(got, want) {
		gl, wl := strings.Split(string(got), "\n"), strings.Split(string(want), "\n")
		for i := range min(len(gl), len(wl)) {
			if gl[i] != wl[i] {
				t.Fatalf("%s differs at line %d:\n got %.200s\nwant %.200s", actionsVectorsPath, i+1, gl[i], wl[i])
			}
		}
		t.Fatalf("%s differs in length", actionsVectorsPath)
	}
	avCheckCorpus(t)
}

// TestVectorsActions checks, from the committed file alone, that every
// input encodes to its body and every body decodes to its input, that
// refused bodies are refused as malformed, and that ignored bodies are of
// no known kind.
func TestVectorsActions(t *testing.T) {
	f := avLoad(t)
	if f.Limits != (avLimits{MaxTextBytes, MaxReactionBytes, refSize}) {
		t.Fatalf("limits %+v", f.Limits)
	}
	for _, v := range f.Bodies {
		want := gvUnhex(t, v.Hex)
		got, err := v.Input.action(t).encode()
		if err != nil || !bytes.Equal(got, want) {
			t.Errorf("%s: encodes to %x (%v), want %s", v.Name, got, err, v.Hex)
		}
		a, err := decodeAction(want)
		if err != nil {
			t.Errorf("%s: %v", v.Name, err)
			continue
		}
		if in := avInputOf(a); in != v.Input {
			t.Errorf("%s: decodes to %+v, want %+v", v.Name, in, v.Input)
		}
		if !isActionBody(want) || unknownBody(want) {
			t.Errorf("%s: kind not recognised", v.Name)
		}
		if _, err := decodeText(want); err == nil {
			t.Errorf("%s: decodes as a text", v.Name)
		}
	}
	for _, v := range f.Refused {
		b := gvUnhex(t, v.Hex)
		if a, err := decodeAction(b); !errors.Is(err, ErrInvalid) {
			t.Errorf("refused %s (%s): %+v, %v", v.Name, v.Why, a, err)
		}
		if !isActionBody(b) || unknownBody(b) {
			t.Errorf("refused %s: not of a known kind", v.Name)
		}
	}
	for _, v := range f.Ignored {
		b := gvUnhex(t, v.Hex)
		if !unknownBody(b) || isActionBody(b) {
			t.Errorf("ignored %s: of a known kind", v.Name)
		}
	}
	if unknownBody(nil) {
		t.Error("an empty body counts as of an unknown kind (it is malformed)")
	}
}

// avCorpus is the seed corpus of FuzzDecodeAction: every vector, each
// truncated and with a bit flipped.
func avCorpus(t testing.TB) map[string][]any {
	f := avBuild(t)
	out := map[string][]any{"empty": {[]byte{}}}
	for _, b := range f.Bodies {
		body := gvUnhexT(b.Hex)
		out[b.Name] = []any{body}
		out[b.Name+"_truncated"] = []any{body[:len(body)-1]}
		flipped := bytes.Clone(body)
		flipped[len(flipped)/2] ^= 0x10
		out[b.Name+"_flipped"] = []any{flipped}
	}
	for _, b := range f.Refused {
		if len(b.Hex) < 200 {
			out["refused_"+b.Name] = []any{gvUnhexT(b.Hex)}
		}
	}
	return out
}

func avWriteCorpus(t testing.TB) {
	dir := filepath.Join("testdata", "fuzz", "FuzzDecodeAction")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	for name, vals := range avCorpus(t) {
		if err := os.WriteFile(filepath.Join(dir, "seed_"+name), gvCorpusFile(vals), 0o644); err != nil {
			t.Fatal(err)
		}
	}
}

func avCheckCorpus(t *testing.T) {
	for name, vals := range avCorpus(t) {
		path := filepath.Join("testdata", "fuzz", "FuzzDecodeAction", "seed_"+name)
		b, err := os.ReadFile(path)
		if err != nil {
			t.Fatalf("%v (generate with -args -update-actions-vectors)", err)
		}
		if !bytes.Equal(b, gvCorpusFile(vals)) {
			t.Fatalf("%s differs from the generated seed", path)
		}
	}
}

// FuzzDecodeAction: decodeAction never panics, fails only with
// ErrInvalid, and what it accepts is of an action kind and encodes back to
// exactly the same bytes (one encoding per action).
func FuzzDecodeAction(f *testing.F) {
	f.Add([]byte("d\x00\x00\x00\x00\x00\x00\x00\x00\x01"))
	f.Fuzz(func(t *testing.T, b []byte) {
		a, err := decodeAction(b)
		if err != nil {
			if !errors.Is(err, ErrInvalid) {
				t.Fatalf("error %v is not ErrInvalid", err)
			}
			return
		}
		if !isActionBody(b) || unknownBody(b) || a.Ref.MsgID == 0 {
			t.Fatalf("accepted %x as %+v", b, a)
		}
		if a.Kind == bodyReaction && a.Add && (len(a.Emoji) > MaxReactionBytes || !validReaction(a.Emoji)) {
			t.Fatalf("accepted reaction %q", a.Emoji)
		}
		enc, err := a.encode()
		if err != nil || !bytes.Equal(enc, b) {
			t.Fatalf("%x decodes to %+v, which encodes to %x (%v)", b, a, enc, err)
		}
	})
}
