package ratchet

import (
	"bytes"
	_ "embed"
	"encoding/hex"
	"io"
	"testing"

	"github.com/wisp-chat/wisp/crypto/internal/testkit"
)

//go:embed testdata/vectors.json
var vectorsJSON []byte

// tape records every byte read from r.
type tape struct {
	r   io.Reader
	buf []byte
}

func (t *tape) Read(p []byte) (int, error) {
	n, err := t.r.Read(p)
	t.buf = append(t.buf, p[:n]...)
	return n, err
}

func (t *tape) take() string {
	s := hex.EncodeToString(t.buf)
	t.buf = nil
	return s
}

type kdfVector struct {
	RootKey       string `json:"root_key"`
	DHOutput      string `json:"dh_output"`
	KEMSecret     string `json:"kem_secret"`
	NewRootKey    string `json:"new_root_key"`
	ChainKey      string `json:"chain_key"`
	NextHeaderKey string `json:"next_header_key"`
	MessageKey    string `json:"message_key"`    // KDF_CK(chain_key)
	NextChainKey  string `json:"next_chain_key"` // KDF_CK(chain_key)
	BodyKeyNonce  string `json:"body_key_nonce"` // HKDF(message_key): 32-byte key || 12-byte nonce
}

type agreementVector struct {
	InviterRandom   string `json:"inviter_random"` // private key 1 || private key 2
	JoinerRandom    string `json:"joiner_random"`  // private key 1 || private key 2
	Invitation      string `json:"invitation"`
	Confirmation    string `json:"confirmation"`
	SecurityCode    string `json:"security_code"`
	RootKey         string `json:"root_key"`
	JoinerHeaderKey string `json:"joiner_header_key"`
	InviterHeader   string `json:"inviter_next_header_key"`
}

type messageVector struct {
	From       string `json:"from"`
	SealRandom string `json:"seal_random"` // every byte Seal read, in order
	Header     string `json:"header"`      // header content before padding
	Plaintext  string `json:"plaintext"`
	Envelope   string `json:"envelope"`
}

type conversationVector struct {
	PQ        bool            `json:"pq"`
	Agreement agreementVector `json:"agreement"`
	Messages  []messageVector `json:"messages"`
	Events    []event         `json:"events"` // seals and opens, in order
}

// event is one Seal by a message's sender or one Open by its recipient.
type event struct {
	Op      string `json:"op"` // "seal" or "open"
	Message int    `json:"message"`
}

type ratchetVectors struct {
	KDF           []kdfVector          `json:"kdf"`
	Conversations []conversationVector `json:"conversations"`
}

func generateRatchetVectors(t *testing.T) ratchetVectors {
	var v ratchetVectors
	h := hex.EncodeToString
	r := testkit.Rand("vectors/ratchet/kdf")
	for _, kemLen := range []int{0, 32} {
		rk := rootKey(testkit.Bytes(r, 32))
		dhOut := testkit.Bytes(r, 32)
		kem := testkit.Bytes(r, kemLen)
		nrk, ck, nhk := kdfRoot(rk, dhOut, kem)
		next, mk := kdfChain(ck)
		v.KDF = append(v.KDF, kdfVector{
			h(rk[:]), h(dhOut), h(kem), h(nrk[:]), h(ck[:]), h(nhk[:]), h(mk[:]), h(next[:]),
			h(hkdfKey(mk[:], nil, labelMessage, 44)),
		})
	}
	for _, pq := range []bool{false, true} {
		label := "vectors/ratchet/x25519"
		if pq {
			label = "vectors/ratchet/pq"
		}
		tp := &tape{r: testkit.Rand(label)}
		sec, inv, err := NewInvitation(tp, pq)
		if err != nil {
			t.Fatal(err)
		}
		var a agreementVector
		a.InviterRandom = tp.take()
		j, conf, err := Join(tp, inv, pq)
		if err != nil {
			t.Fatal(err)
		}
		a.JoinerRandom = tp.take()
		i, err := sec.Accept(conf)
		if err != nil {
			t.Fatal(err)
		}
		ib, _ := inv.MarshalBinary()
		cb, _ := conf.MarshalBinary()
		a.Invitation, a.Confirmation = h(ib), h(cb)
		a.SecurityCode, a.RootKey = h(j.ad[:]), h(j.rk[:])
		a.JoinerHeaderKey, a.InviterHeader = h(j.nhks[:]), h(j.nhkr[:])
		deterministicKEM(j, tp)
		deterministicKEM(i, tp)

		c := conversationVector{PQ: pq, Agreement: a}
		parties := map[string]*State{"joiner": j, "inviter": i}
		peer := map[string]string{"joiner": "inviter", "inviter": "joiner"}
		script := []struct {
			from string
			open []int // messages the recipient opens after this seal
		}{
			{"joiner", []int{0}},     // 0: the confirmation's message
			{"inviter", nil},         // 1: delivered late
			{"inviter", []int{2, 1}}, // 2: opened before 1
			{"joiner", []int{3}},     // 3
			{"inviter", []int{4}},    // 4
			{"inviter", []int{5}},    // 5: same chain
			{"joiner", []int{6}},     // 6
		}
		for k, step := range script {
			s := parties[step.from]
			pt := []byte("vector message " + string(rune('0'+k)))
			env, err := s.Seal(tp, pt)
			if err != nil {
				t.Fatal(err)
			}
			hdr, ok, err := s.tryHeader(s.hks, env)
			if !ok || err != nil {
				t.Fatalf("header of message %d: %v", k, err)
			}
			c.Events = append(c.Events, event{"seal", k})
			c.Messages = append(c.Messages, messageVector{
				From: step.from, SealRandom: tp.take(), Header: h(hdr.encode()), Plaintext: h(pt), Envelope: h(env),
			})
			for _, m := range step.open {
				if _, err := parties[peer[c.Messages[m].From]].Open(testkit.Unhex(t, c.Messages[m].Envelope)); err != nil {
					t.Fatalf("open %d: %v", m, err)
				}
				c.Events = append(c.Events, event{"open", m})
			}
		}
		v.Conversations = append(v.Conversations, c)
	}
	return v
}

// TestVectors regenerates the vectors from their seeds, compares them with
// testdata/vectors.json, then replays the committed conversations from the
// recorded keys and envelopes alone.
func TestVectors(t *testing.T) {
	data := testkit.CheckVectors(t, "testdata/vectors.json", vectorsJSON, testkit.JSON(t, generateRatchetVectors(t)))
	var v ratchetVectors
	testkit.Decode(t, data, &v)
	for n, k := range v.KDF {
		nrk, ck, nhk := kdfRoot(rootKey(testkit.Unhex(t, k.RootKey)), testkit.Unhex(t, k.DHOutput), testkit.Unhex(t, k.KEMSecret))
		next, mk := kdfChain(ck)
		for _, c := range []struct{ got, want string }{
			{hex.EncodeToString(nrk[:]), k.NewRootKey}, {hex.EncodeToString(ck[:]), k.ChainKey},
			{hex.EncodeToString(nhk[:]), k.NextHeaderKey}, {hex.EncodeToString(mk[:]), k.MessageKey},
			{hex.EncodeToString(next[:]), k.NextChainKey},
		} {
			if c.got != c.want {
				t.Fatalf("kdf vector %d: got %s want %s", n, c.got, c.want)
			}
		}
	}
	for _, c := range v.Conversations {
		var sec InvitationSecret
		if err := sec.UnmarshalBinary(append([]byte{Version, map[bool]byte{false: 0, true: 1}[c.PQ]},
			testkit.Unhex(t, c.Agreement.InviterRandom)...)); err != nil {
			t.Fatal(err)
		}
		conf, err := ParseConfirmation(testkit.Unhex(t, c.Agreement.Confirmation))
		if err != nil {
			t.Fatal(err)
		}
		inviter, err := sec.Accept(conf)
		if err != nil {
			t.Fatal(err)
		}
		if hex.EncodeToString(inviter.ad[:]) != c.Agreement.SecurityCode {
			t.Fatal("security code")
		}
		inv, err := ParseInvitation(testkit.Unhex(t, c.Agreement.Invitation))
		if err != nil {
			t.Fatal(err)
		}
		joiner, _, err := Join(bytes.NewReader(testkit.Unhex(t, c.Agreement.JoinerRandom)), inv, c.PQ)
		if err != nil {
			t.Fatal(err)
		}
		parties := map[string]*State{"joiner": joiner, "inviter": inviter}
		peer := map[string]string{"joiner": "inviter", "inviter": "joiner"}
		for _, e := range c.Events {
			mv := c.Messages[e.Message]
			switch e.Op {
			case "seal":
				s := parties[mv.From]
				rnd := bytes.NewReader(testkit.Unhex(t, mv.SealRandom))
				deterministicKEM(s, rnd)
				env, err := s.Seal(rnd, testkit.Unhex(t, mv.Plaintext))
				if err != nil || hex.EncodeToString(env) != mv.Envelope || rnd.Len() != 0 {
					t.Fatalf("pq=%v: seal %d does not reproduce the envelope: %v", c.PQ, e.Message, err)
				}
			case "open":
				pt, err := parties[peer[mv.From]].Open(testkit.Unhex(t, mv.Envelope))
				if err != nil || hex.EncodeToString(pt) != mv.Plaintext {
					t.Fatalf("pq=%v: open %d: %v", c.PQ, e.Message, err)
				}
			default:
				t.Fatalf("unknown op %q", e.Op)
			}
		}
	}
}
