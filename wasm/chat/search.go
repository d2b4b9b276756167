package chat

import (
	"errors"
	"fmt"
	"sort"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/wisp-chat/wisp/wasm/store"
)

// Search limits.
const (
	// MaxSearchQuery is the longest search query, in UTF-8 bytes.
	MaxSearchQuery = 256
	// snippetContext is how many characters of the text a search result
	// shows on each side of the match.
	snippetContext = 40
)

// SearchResult is a message whose text (or file name) matched a search.
type SearchResult struct {
	Contact    string    `json:"contact"` // the chat: a contact or a group
	Seq        uint64    `json:"seq"`
	Time       time.Time `json:"time"`
	Incoming   bool      `json:"incoming"`
	AuthorName string    `json:"author_name,omitempty"` // a group message's author
	File       bool      `json:"file,omitempty"`        // the match is in a file name
	// Snippet is the text around the match on one line: Before + Match +
	// After, with "…" where the text goes on.
	Snippet string `json:"snippet"`
	Before  string `json:"before"`
	Match   string `json:"match"`
	After   string `json:"after"`
}

// Search finds the messages of one chat (contact; "" for every chat,
// groups included) whose text or file name contains query, ignoring case
// (Unicode simple case folding, as strings.EqualFold; no normalization),
// newest first, at most limit (1–200, default 50). It decrypts the message
// records one at a time: nothing of the texts is kept in plaintext.
// Deleted and hidden messages and group notices are not searched.
func (p *Profile) Search(contact, query string, limit int) ([]SearchResult, error) {
	q := strings.TrimSpace(query)
	switch {
	case q == "" || !utf8.ValidString(q):
		return nil, fmt.Errorf("%w: an empty search", ErrInvalid)
	case len(q) > MaxSearchQuery:
		return nil, fmt.Errorf("%w: the search is %d bytes, the limit is %d", ErrTooLong, len(q), MaxSearchQuery)
	}
	if limit <= 0 || limit > 200 {
		limit = 50
	}
	var ids []string
	if contact != "" {
		if !validContactID(contact) {
			return nil, fmt.Errorf("%w: %q", ErrNoContact, contact)
		}
		ids = []string{contact}
	} else {
		dirs, err := p.st.ListDirs("c")
		if err != nil {
			return nil, err
		}
		for _, d := range dirs {
			if validContactID(d.Base()) {
				ids = append(ids, d.Base())
			}
		}
	}
	fq := fold(q)
	var out []SearchResult
	for _, id := range ids {
		if ok, err := p.st.Has(contactKey(id)); err != nil || !ok {
			if err == nil && contact != "" {
				err = fmt.Errorf("%w: %s", ErrNoContact, id)
			}
			if err != nil {
				return nil, err
			}
			continue
		}
		found, err := p.searchChat(id, fq, limit)
		if err != nil {
			return nil, err
		}
		out = append(out, found...)
	}
	sort.SliceStable(out, func(i, j int) bool {
		if !out[i].Time.Equal(out[j].Time) {
			return out[i].Time.After(out[j].Time)
		}
		return out[i].Seq > out[j].Seq
	})
	return out[:min(len(out), limit)], nil
}

// searchChat returns up to limit matches of one chat, newest first.
func (p *Profile) searchChat(id, fq string, limit int) ([]SearchResult, error) {
	keys, err := p.st.List(contactDir(id).Join("m"))
	if err != nil {
		return nil, err
	}
	var out []SearchResult
	for i := len(keys) - 1; i >= 0 && len(out) < limit; i-- {
		var r messageRecord
		p.mu.Lock() // one record at a time: receiving goes on meanwhile
		err := getJSON(p.st, keys[i], &r)
		p.mu.Unlock()
		if errors.Is(err, store.ErrNotFound) {
			continue // deleted meanwhile
		}
		if err != nil {
			return nil, err
		}
		if r.Hidden || r.Deleted || r.Notice || r.Text == "" {
			continue
		}
		before, match, after, ok := findFold(r.Text, fq)
		if !ok {
			continue
		}
		out = append(out, SearchResult{Contact: id, Seq: r.Seq, Time: r.Time, Incoming: r.Incoming, AuthorName: r.AuthorName,
			File: r.File != nil, Snippet: before + match + after, Before: before, Match: match, After: after})
	}
	return out, nil
}

// foldRune maps a rune to the smallest rune of its simple case folding
// orbit (K, k and the Kelvin sign all to K), so that two runes are equal
// after it exactly when strings.EqualFold says they are.
func foldRune(r rune) rune {
	if r < utf8.RuneSelf {
		if 'a' <= r && r <= 'z' {
			r -= 'a' - 'A'
		}
		if r != 'K' && r != 'S' {
			return r // no other rune folds to an ASCII letter but K (U+212A) and S (U+017F)
		}
	}
	m := r
	for f := unicode.SimpleFold(r); f != r; f = unicode.SimpleFold(f) {
		m = min(m, f)
	}
	return m
}

// fold folds every rune of s (foldRune).
func fold(s string) string {
	var b strings.Builder
	b.Grow(len(s))
	for _, r := range s {
		b.WriteRune(foldRune(r))
	}
	return b.String()
}

// findFold looks for the folded query fq in text, and returns the match
// with up to snippetContext characters each side, on one line.
func findFold(text, fq string) (before, match, after string, ok bool) {
	ft := fold(text)
	at := strings.Index(ft, fq)
	if at < 0 {
		return "", "", "", false
	}
	// Folding keeps the number of runes: find the match's runes in text.
	start := utf8.RuneCountInString(ft[:at])
	n := utf8.RuneCountInString(fq)
	var offs []int // byte offset of each rune of text, then len(text)
	for i := range text {
		offs = append(offs, i)
	}
	offs = append(offs, len(text))
	from, to := max(0, start-snippetContext), min(len(offs)-1, start+n+snippetContext)
	before, match, after = text[offs[from]:offs[start]], text[offs[start]:offs[start+n]], text[offs[start+n]:offs[to]]
	if from > 0 {
		before = "…" + before
	}
	if to < len(offs)-1 {
		after += "…"
	}
	return oneLine(before), oneLine(match), oneLine(after), true
}

// oneLine replaces line breaks and tabs by spaces.
func oneLine(s string) string {
	return strings.Map(func(r rune) rune {
		if r == '\n' || r == '\r' || r == '\t' || r == '\u2028' || r == '\u2029' {
			return ' '
		}
		return r
	}, s)
}
