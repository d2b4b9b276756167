package agent

import (
	"bytes"
	"crypto/sha256"
	"encoding/binary"
	"errors"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"testing"

	"github.com/wisp-chat/wisp/crypto/ratchet"
)

// The decoders of what a peer sends outside the ratchet in a re-sync
// (SPEC.md, "Ratchet re-synchronisation"): they must return an error or a
// value, never panic, and whatever they accept must encode back to the
// same bytes. The seed corpora are under testdata/fuzz/FuzzResync*:
//
//	go test ./wasm/agent -run TestResyncFuzzSeeds                                   check
//	go test ./wasm/agent -run TestResyncFuzzSeeds -args -write-resync-fuzz-seeds    rewrite
//	go test ./wasm/agent -run XXX -fuzz FuzzResyncRequest -fuzztime 30s             fuzz

var writeResyncFuzzSeeds = flag.Bool("write-resync-fuzz-seeds", false,
	"rewrite the seed corpora testdata/fuzz/FuzzResync{Request,Reply,Counters}")

func FuzzResyncRequest(f *testing.F) {
	f.Add(rfRequest(f))
	f.Fuzz(func(t *testing.T, b []byte) {
		r, err := decodeResyncRequest(b)
		if err != nil {
			if !errors.Is(err, ErrMalformed) {
				t.Fatalf("not ErrMalformed: %v", err)
			}
			return
		}
		if len(b) != resyncRequestSize {
			t.Fatalf("accepted a %d-byte request", len(b))
		}
		if !bytes.Equal(r.encode(), b) {
			t.Fatal("request does not round-trip")
		}
	})
}

func FuzzResyncReply(f *testing.F) {
	f.Add(rfReply(f, true))
	f.Fuzz(func(t *testing.T, b []byte) {
		r, err := decodeResyncReply(b)
		if err != nil {
			if !errors.Is(err, ErrMalformed) {
				t.Fatalf("not ErrMalformed: %v", err)
			}
			return
		}
		if len(b) != resyncReplySize || len(r.Envelope) != ratchet.EnvelopeSize {
			t.Fatalf("accepted a %d-byte answer", len(b))
		}
		if !bytes.Equal(r.encode(), b) {
			t.Fatal("answer does not round-trip")
		}
	})
}

func FuzzResyncCounters(f *testing.F) {
	f.Add(rfCounters())
	f.Fuzz(func(t *testing.T, b []byte) {
		n, err := decodeCounters(b)
		if err != nil {
			if !errors.Is(err, ErrMalformed) {
				t.Fatalf("not ErrMalformed: %v", err)
			}
			return
		}
		if n.Next == 0 {
			t.Fatal("accepted next_id 0")
		}
		if !bytes.Equal(n.encode(nil), b) {
			t.Fatal("counters do not round-trip")
		}
	})
}

func rfCounters() []byte {
	return counters{Next: 40 + ResyncGap, Prev: sha256.Sum256([]byte("message 39")), Rcvd: 100}.encode(nil)
}

func rfRequest(tb testing.TB) []byte {
	r := &rvRand{label: "resync fuzz seeds"}
	_, inv, err := ratchet.NewInvitation(r, true)
	if err != nil {
		tb.Fatal(err)
	}
	n, _ := decodeCounters(rfCounters())
	return resyncRequest{ID: r.bytes(resyncIDSize), Invitation: inv, Counters: n}.encode()
}

// rfReply is an answer to rfRequest; real makes a real envelope (random
// bytes, four characters each in a corpus file), else the envelope is
// printable filler, which the decoder does not open.
func rfReply(tb testing.TB, real bool) []byte {
	r := &rvRand{label: "resync fuzz seeds"}
	req, err := decodeResyncRequest(rfRequest(tb))
	if err != nil {
		tb.Fatal(err)
	}
	st, conf, err := ratchet.Join(r, req.Invitation, true)
	if err != nil {
		tb.Fatal(err)
	}
	env := bytes.Repeat([]byte("envelope"), ratchet.EnvelopeSize/8)
	if real {
		if env, err = st.Seal(r, rfCounters()); err != nil {
			tb.Fatal(err)
		}
	}
	return resyncReply{ID: req.ID, Confirmation: conf, Envelope: env}.encode()
}

// rfSeeds are the committed seeds: valid, truncated, empty, oversized and
// bit-flipped inputs.
func rfSeeds(tb testing.TB) map[string][][]byte {
	flip := func(b []byte, i int, bit byte) []byte {
		b = bytes.Clone(b)
		b[i] ^= bit
		return b
	}
	req, cnt := rfRequest(tb), rfCounters()
	rep, filler := rfReply(tb, true), rfReply(tb, false)
	zeroNext := bytes.Clone(req)
	binary.BigEndian.PutUint64(zeroNext[2+resyncIDSize+ratchet.InvitationSize:], 0)
	return map[string][][]byte{
		"FuzzResyncRequest": {
			req,
			req[:len(req)-1],
			{},
			{typeResyncRequest, Version},
			append(bytes.Clone(req), 0),
			flip(req, 0, 0x01),  // type
			flip(req, 1, 0x02),  // version
			flip(req, 19, 0x80), // invitation flags
			zeroNext,
			flip(req, len(req)-1, 0x01), // rcvd_id: still valid
		},
		"FuzzResyncReply": {
			rep,
			filler,
			filler[:len(filler)-1],
			{},
			{typeResyncReply, Version},
			append(bytes.Clone(filler), 0),
			flip(filler, 1, 0x03),  // version
			flip(filler, 18, 0x01), // confirmation version
			flip(filler, 19, 0x02), // confirmation flags
			req,
		},
		"FuzzResyncCounters": {
			cnt,
			cnt[:len(cnt)-1],
			{},
			append(bytes.Clone(cnt), 0),
			make([]byte, countersSize), // next_id 0
			flip(cnt, 7, 0x01),
			flip(cnt, 20, 0x10),
		},
	}
}

// rfFile is a corpus file in the format go test -fuzz writes.
func rfFile(b []byte) (name string, data []byte) {
	data = fmt.Appendf(nil, "go test fuzz v1\n[]byte(%q)\n", b)
	return fmt.Sprintf("%x", sha256.Sum256(data))[:16], data
}

// TestResyncFuzzSeeds checks that the committed seed corpora hold the
// seeds above (and rewrites them with -write-resync-fuzz-seeds).
func TestResyncFuzzSeeds(t *testing.T) {
	if runtime.GOOS == "js" {
		t.Skip("no file system in the browser")
	}
	for target, seeds := range rfSeeds(t) {
		dir := filepath.Join("testdata", "fuzz", target)
		if *writeResyncFuzzSeeds {
			if err := os.MkdirAll(dir, 0o755); err != nil {
				t.Fatal(err)
			}
		}
		for _, s := range seeds {
			name, data := rfFile(s)
			path := filepath.Join(dir, name)
			if *writeResyncFuzzSeeds {
				if err := os.WriteFile(path, data, 0o644); err != nil {
					t.Fatal(err)
				}
				continue
			}
			got, err := os.ReadFile(path)
			if err != nil || !bytes.Equal(got, data) {
				t.Errorf("%s: missing or stale (rewrite with -args -write-resync-fuzz-seeds): %v", path, err)
			}
		}
	}
}
