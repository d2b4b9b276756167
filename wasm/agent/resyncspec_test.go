package agent

import (
	"bytes"
	crand "crypto/rand"
	"crypto/sha256"
	_ "embed"
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/hack-pad/hackpadfs/mem"
	"github.com/wisp-chat/wisp/crypto/box"
	"github.com/wisp-chat/wisp/crypto/ratchet"
	"github.com/wisp-chat/wisp/crypto/vault"
	"github.com/wisp-chat/wisp/server/wire"
	"github.com/wisp-chat/wisp/server/wire/client"
	"github.com/wisp-chat/wisp/wasm/store"
)

// The vectors of SPEC.md, "Ratchet re-synchronisation":
// testdata/resync-vectors.json.
//
//	go test ./wasm/agent -run TestResyncVectors                               check
//	go test ./wasm/agent -run TestResyncVectors -args -update-resync-vectors  rewrite
//
// The generator builds every byte string from SPEC.md's layouts with the
// crypto primitives alone, and every expected outcome of the numbering
// cases from a model of SPEC.md's rules (rvModel*), not from the agent's
// code. The check then runs the agent's own code (markResync,
// receiveResync, resyncRequest.encode, sendBody, ...) on the committed
// inputs and compares.

var updateResyncVectors = flag.Bool("update-resync-vectors", false,
	"rewrite testdata/resync-vectors.json from the rules in resyncspec_test.go")

//go:embed testdata/resync-vectors.json
var resyncVectorsJSON []byte

type rvFile struct {
	Comment    string           `json:"comment"`
	Constants  rvConstants      `json:"constants"`
	Counters   []rvCountersVec  `json:"counters"`
	Requests   []rvRequest      `json:"requests"`
	Answers    []rvAnswer       `json:"answers"`
	Malformed  []rvMalformed    `json:"malformed"`
	Marks      []rvMark         `json:"marks"`
	Answering  []rvAnswerCase   `json:"answering"`
	Completing []rvCompleteCase `json:"completing"`
}

type rvConstants struct {
	ResyncGap          uint64 `json:"resync_gap"`
	RequestIDSize      int    `json:"request_id_size"`
	CountersSize       int    `json:"counters_size"`
	RequestSize        int    `json:"request_size"`
	AnswerSize         int    `json:"answer_size"`
	EnvelopePlaintext  int    `json:"answer_envelope_plaintext_size"`
	RememberedRequests int    `json:"remembered_request_ids"`
	UndecryptableFix   int    `json:"undecryptable_before_suggested"`
}

// rvCountersVec is one encoding of next_id || prev_hash || rcvd_id.
type rvCountersVec struct {
	What     string `json:"what"`
	NextID   uint64 `json:"next_id"`
	PrevHash string `json:"prev_hash_hex"`
	RcvdID   uint64 `json:"rcvd_id"`
	Encoded  string `json:"encoded_hex"`
}

// rvQueue is the per-queue box around an agent message (SPEC.md, "Queue
// messages"): sender_queue_key || nonce || XSalsa20-Poly1305 under
// shared_key of pad(message, 15928).
type rvQueue struct {
	SenderPrivate   string `json:"sender_queue_private_key_hex"`
	SenderPublic    string `json:"sender_queue_public_key_hex"`
	ReceiverPrivate string `json:"receiver_queue_private_key_hex"`
	ReceiverPublic  string `json:"receiver_queue_public_key_hex"`
	SharedKey       string `json:"shared_key_hex"`
	Nonce           string `json:"nonce_hex"`
	Body            string `json:"body_hex,omitempty"` // exactly 16,000 bytes
	BodySHA256      string `json:"body_sha256_hex"`
}

// rvRequest is a request: the requester's state, the randomness its mark
// reads, and the bytes.
type rvRequest struct {
	What          string  `json:"what"`
	PQ            bool    `json:"pq"`
	SentIDBefore  uint64  `json:"requester_sent_id_before_mark"`
	SentHash      string  `json:"requester_sent_hash_hex"`
	RcvdID        uint64  `json:"requester_rcvd_id"`
	InviterRandom string  `json:"inviter_random_hex"` // i1 || i2, read first
	ID            string  `json:"id_hex"`             // read after i1 || i2
	Invitation    string  `json:"invitation_hex"`
	NextID        uint64  `json:"next_id"`
	PrevHash      string  `json:"prev_hash_hex"`
	Rcvd          uint64  `json:"rcvd_id"`
	Request       string  `json:"request_hex"`
	Queue         rvQueue `json:"queue"`
}

// rvAnswer is an answer: every input of the answerer's randomness, and
// the bytes; the requester's invitation secret opens it.
type rvAnswer struct {
	What              string  `json:"what"`
	AnswererPQ        bool    `json:"answerer_pq"`
	Request           string  `json:"request_hex"`
	InviterRandom     string  `json:"inviter_random_hex"`
	AnswererSentID    uint64  `json:"answerer_sent_id"`
	AnswererSentHash  string  `json:"answerer_sent_hash_hex"`
	AnswererRcvdID    uint64  `json:"answerer_rcvd_id"`
	JoinerRandom      string  `json:"joiner_random_hex"` // j1 || j2, read by the join
	SealRandom        string  `json:"seal_random_hex"`   // dhs || [ML-KEM seed] || header nonce, read by the seal
	NextID            uint64  `json:"next_id"`
	PrevHash          string  `json:"prev_hash_hex"`
	Rcvd              uint64  `json:"rcvd_id"`
	EnvelopePlaintext string  `json:"envelope_plaintext_hex"`
	Confirmation      string  `json:"confirmation_hex"`
	EnvelopeSHA256    string  `json:"envelope_sha256_hex"`
	Answer            string  `json:"answer_hex"`
	SecurityCode      string  `json:"security_code_hex"`
	Queue             rvQueue `json:"queue"`
}

// rvMalformed is a vector with one change that the decoder must refuse:
// base's bytes, resized to length (zero-filled when longer), then value
// written at offset.
type rvMalformed struct {
	What   string `json:"what"`
	Base   string `json:"base"` // "requests/N", "answers/N" or "counters/N"
	Length *int   `json:"length,omitempty"`
	Offset *int   `json:"offset,omitempty"`
	Value  string `json:"value_hex,omitempty"`
}

// rvEntry is an outbox entry.
type rvEntry struct {
	ID       uint64 `json:"id"`
	PrevHash string `json:"prev_hash_hex"`
	// Sealed: it holds an envelope of the ratchet being replaced; false:
	// queued while the side's own request was pending, not sealed yet.
	Sealed bool `json:"sealed"`
}

type rvPending struct {
	ID       string `json:"id_hex"`
	NextID   uint64 `json:"next_id"` // the first ID after the jump
	PrevHash string `json:"prev_hash_hex"`
}

// rvSide is one side's connection record and outbox.
type rvSide struct {
	SentID   uint64     `json:"sent_id"`
	SentHash string     `json:"sent_hash_hex"`
	RcvdID   uint64     `json:"rcvd_id"`
	RcvdHash string     `json:"rcvd_hash_hex"`
	Outbox   []rvEntry  `json:"outbox,omitempty"`
	Pending  *rvPending `json:"pending_request,omitempty"`
	Answered []string   `json:"answered_ids_hex,omitempty"`
}

type rvMark struct {
	What   string `json:"what"`
	Before rvSide `json:"before"`
	After  struct {
		NextID   uint64 `json:"next_id"`
		PrevHash string `json:"prev_hash_hex"`
		SentID   uint64 `json:"sent_id"`
	} `json:"after"`
}

type rvCounters struct {
	NextID   uint64 `json:"next_id"`
	PrevHash string `json:"prev_hash_hex"`
	RcvdID   uint64 `json:"rcvd_id"`
}

type rvAfter struct {
	SentID   uint64   `json:"sent_id"`
	RcvdID   uint64   `json:"rcvd_id"`
	RcvdHash string   `json:"rcvd_hash_hex"`
	Outbox   []uint64 `json:"outbox"` // all sealed again with the new ratchet before they are sent
	Answered []string `json:"answered_ids_hex,omitempty"`
}

type rvAnswerCase struct {
	What       string      `json:"what"`
	Before     rvSide      `json:"before"`
	Request    string      `json:"request_hex"` // the invitation is requests/0's
	RequestID  string      `json:"request_id_hex"`
	Counters   rvCounters  `json:"request_counters"`
	Answered   bool        `json:"answered"`
	Answer     *rvCounters `json:"answer_counters,omitempty"`
	After      rvAfter     `json:"after"`
	Delivered  []uint64    `json:"dropped_as_delivered"`
	Failed     []uint64    `json:"failed"`
	UnreadFrom uint64      `json:"unread_from"`
	UnreadTo   uint64      `json:"unread_to"`
}

type rvCompleteCase struct {
	What      string     `json:"what"`
	Before    rvSide     `json:"before"` // its pending request uses requests/0's invitation
	Answer    rvCounters `json:"answer_counters"`
	After     rvAfter    `json:"after"`
	Delivered []uint64   `json:"dropped_as_delivered"`
	Resynced  struct {
		MsgID     uint64 `json:"msg_id"`
		PrevHash  string `json:"prev_hash_hex"`
		Plaintext string `json:"plaintext_hex"`
	} `json:"resynced_message"`
}

// rvRand is the source of the vectors' inputs: SHA-256(label || counter)
// blocks. Every input is written out in the file, so nobody needs it.
type rvRand struct {
	label string
	n     uint64
	buf   []byte
}

func (r *rvRand) Read(p []byte) (int, error) {
	for len(r.buf) < len(p) {
		h := sha256.Sum256(binary.BigEndian.AppendUint64([]byte(r.label), r.n))
		r.n++
		r.buf = append(r.buf, h[:]...)
	}
	copy(p, r.buf)
	r.buf = r.buf[len(p):]
	return len(p), nil
}

func (r *rvRand) bytes(n int) []byte {
	b := make([]byte, n)
	_, _ = r.Read(b)
	return b
}

func (r *rvRand) hash() string { return hex.EncodeToString(r.bytes(32)) }

func rvUnhex(t testing.TB, s string) []byte {
	t.Helper()
	b, err := hex.DecodeString(s)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func rvHash(t testing.TB, s string) [32]byte {
	t.Helper()
	b := rvUnhex(t, s)
	if len(b) != 32 {
		t.Fatalf("a %d-byte hash", len(b))
	}
	return [32]byte(b)
}

// rvSecret is the invitation secret of a request: version || flags || i1 || i2.
func rvSecret(t testing.TB, inviterRandom string, pq bool) *ratchet.InvitationSecret {
	t.Helper()
	var flags byte
	if pq {
		flags = 1
	}
	sec, err := ratchetSecret(append([]byte{ratchet.Version, flags}, rvUnhex(t, inviterRandom)...))
	if err != nil {
		t.Fatal(err)
	}
	return sec
}

// rvRequestBytes lays a request out as SPEC.md says.
func rvRequestBytes(id, inv []byte, n rvCounters, prev []byte) []byte {
	out := []byte{'S', 1}
	out = append(out, id...)
	out = append(out, inv...)
	out = binary.BigEndian.AppendUint64(out, n.NextID)
	out = append(out, prev...)
	return binary.BigEndian.AppendUint64(out, n.RcvdID)
}

// rvBox boxes msg for the queue between two fresh key pairs (SPEC.md,
// "Queue messages"), reading the nonce from r.
func rvBox(t testing.TB, r *rvRand, msg []byte, withBody bool) rvQueue {
	t.Helper()
	snd, _ := box.GenerateKey(r)
	rcv, _ := box.GenerateKey(r)
	nonce := r.bytes(box.NonceSize)
	shared, err := box.Precompute(snd, rcv.PublicKey())
	if err != nil {
		t.Fatal(err)
	}
	sealed, err := box.Seal(bytes.NewReader(nonce), shared, msg, wire.MaxBodySize-KeySize)
	if err != nil {
		t.Fatal(err)
	}
	body := append(snd.PublicKey().Bytes(), sealed...)
	sum := sha256.Sum256(body)
	q := rvQueue{
		SenderPrivate: hex.EncodeToString(snd.Bytes()), SenderPublic: hex.EncodeToString(snd.PublicKey().Bytes()),
		ReceiverPrivate: hex.EncodeToString(rcv.Bytes()), ReceiverPublic: hex.EncodeToString(rcv.PublicKey().Bytes()),
		SharedKey: hex.EncodeToString(shared.Bytes()), Nonce: hex.EncodeToString(nonce), BodySHA256: hex.EncodeToString(sum[:]),
	}
	if withBody {
		q.Body = hex.EncodeToString(body)
	}
	return q
}

func rvBuild(t testing.TB) *rvFile {
	t.Helper()
	const gap = uint64(1) << 32
	h := hex.EncodeToString
	f := &rvFile{
		Comment: "wasm/agent SPEC.md, \"Ratchet re-synchronisation\". All values hex, integers decimal. " +
			"requests: the requester's state, the 64 bytes its new invitation reads (i1 || i2), the 16-byte ID read after them, " +
			"and the request; queue: its SEND body (sender queue key || nonce || box of pad(request, 15928)). " +
			"answers: the answerer's state and randomness (joiner_random = j1 || j2 for the join; seal_random = dhs (32) || " +
			"ML-KEM seed (64, only with the hybrid) || header nonce (12) for the seal of the envelope; crypto/SPEC.md 4 and 5.4), " +
			"the envelope plaintext (id || counters), the confirmation and the whole answer (the envelope is its bytes from 84); " +
			"the requester opens it with inviter_random. malformed: changes to a vector that the decoder refuses. " +
			"marks, answering, completing: what each side does with its record and outbox (the numbering rules); " +
			"their requests and pending requests use the invitation of requests/0. " +
			"Regenerate: go test ./wasm/agent -run TestResyncVectors -args -update-resync-vectors",
		Constants: rvConstants{
			ResyncGap: gap, RequestIDSize: 16, CountersSize: 48, RequestSize: 132,
			AnswerSize: 2 + 16 + ratchet.ConfirmationSize + ratchet.EnvelopeSize, EnvelopePlaintext: 64,
			RememberedRequests: 8, UndecryptableFix: 3,
		},
	}
	r := &rvRand{label: "wisp agent resync vectors v1"}

	for _, c := range []struct {
		what       string
		next, rcvd uint64
	}{
		{"a requester after a restore", 39 + gap, 100},
		{"an answerer that has received nothing", 1, 0},
		{"the largest values", ^uint64(0), ^uint64(0)},
	} {
		prev := r.bytes(32)
		enc := binary.BigEndian.AppendUint64(nil, c.next)
		enc = append(enc, prev...)
		enc = binary.BigEndian.AppendUint64(enc, c.rcvd)
		f.Counters = append(f.Counters, rvCountersVec{c.what, c.next, h(prev), c.rcvd, h(enc)})
	}

	// Requests.
	type reqIn struct {
		what         string
		pq           bool
		sentID, rcvd uint64
	}
	for _, c := range []reqIn{
		{"a profile restored from a backup (ML-KEM offered)", true, 39, 100},
		{"Fix connection, X25519 only", false, 79, 45},
	} {
		ir := r.bytes(64)
		id := r.bytes(16)
		sentHash := r.bytes(32)
		sec := rvSecret(t, h(ir), c.pq)
		inv, _ := sec.Invitation().MarshalBinary()
		n := rvCounters{NextID: c.sentID + gap, RcvdID: c.rcvd}
		req := rvRequestBytes(id, inv, n, sentHash)
		f.Requests = append(f.Requests, rvRequest{
			What: c.what, PQ: c.pq, SentIDBefore: c.sentID, SentHash: h(sentHash), RcvdID: c.rcvd,
			InviterRandom: h(ir), ID: h(id), Invitation: h(inv), NextID: n.NextID, PrevHash: h(sentHash), Rcvd: n.RcvdID,
			Request: h(req), Queue: rvBox(t, r, req, true),
		})
	}

	// Answers.
	for i, c := range []struct {
		what           string
		pq             bool
		sentID, rcvdID uint64
	}{
		{"the answer to requests/0 with the hybrid", true, 120, 57},
		{"the answer to requests/1, X25519 only", true, 50, 79},
	} {
		rq := f.Requests[i]
		inv, err := ratchet.ParseInvitation(rvUnhex(t, rq.Invitation))
		if err != nil {
			t.Fatal(err)
		}
		sentHash := r.bytes(32)
		jr := r.bytes(64)
		st, conf, err := ratchet.Join(bytes.NewReader(jr), inv, c.pq)
		if err != nil {
			t.Fatal(err)
		}
		n := 32 + 12
		if c.pq && inv.PQ {
			n += 64
		}
		sr := r.bytes(n)
		pt := append(rvUnhex(t, rq.ID), binary.BigEndian.AppendUint64(nil, c.sentID+1)...)
		pt = append(pt, sentHash...)
		pt = binary.BigEndian.AppendUint64(pt, c.rcvdID)
		env, err := st.Seal(bytes.NewReader(sr), pt)
		if err != nil {
			t.Fatal(err)
		}
		cb, _ := conf.MarshalBinary()
		ans := append([]byte{'Y', 1}, rvUnhex(t, rq.ID)...)
		ans = append(ans, cb...)
		ans = append(ans, env...)
		sum := sha256.Sum256(env)
		code := st.SecurityCode()
		f.Answers = append(f.Answers, rvAnswer{
			What: c.what, AnswererPQ: c.pq, Request: rq.Request, InviterRandom: rq.InviterRandom,
			AnswererSentID: c.sentID, AnswererSentHash: h(sentHash), AnswererRcvdID: c.rcvdID,
			JoinerRandom: h(jr), SealRandom: h(sr), NextID: c.sentID + 1, PrevHash: h(sentHash), Rcvd: c.rcvdID,
			EnvelopePlaintext: h(pt), Confirmation: h(cb), EnvelopeSHA256: h(sum[:]), Answer: h(ans),
			SecurityCode: h(code[:]), Queue: rvBox(t, r, ans, false),
		})
	}

	// Malformed.
	ip := func(n int) *int { return &n }
	f.Malformed = append(f.Malformed, []rvMalformed{
		{What: "empty", Base: "requests/0", Length: ip(0)},
		{What: "a request one byte short", Base: "requests/0", Length: ip(131)},
		{What: "a request one byte long", Base: "requests/0", Length: ip(133)},
		{What: "a request with the answer's type", Base: "requests/0", Offset: ip(0), Value: "59"},
		{What: "a request of version 2", Base: "requests/0", Offset: ip(1), Value: "02"},
		{What: "an invitation of version 2", Base: "requests/0", Offset: ip(18), Value: "02"},
		{What: "an invitation with an unknown flag", Base: "requests/0", Offset: ip(19), Value: "03"},
		{What: "next_id 0", Base: "requests/0", Offset: ip(84), Value: "0000000000000000"},
		{What: "an answer one byte short", Base: "answers/0", Length: ip(15699)},
		{What: "an answer one byte long", Base: "answers/0", Length: ip(15701)},
		{What: "an answer with the request's type", Base: "answers/0", Offset: ip(0), Value: "53"},
		{What: "an answer of version 0", Base: "answers/0", Offset: ip(1), Value: "00"},
		{What: "a confirmation of version 2", Base: "answers/0", Offset: ip(18), Value: "02"},
		{What: "a confirmation with an unknown flag", Base: "answers/0", Offset: ip(19), Value: "80"},
		{What: "counters one byte short", Base: "counters/0", Length: ip(47)},
		{What: "counters with next_id 0", Base: "counters/1", Offset: ip(0), Value: "0000000000000000"},
	}...)

	// Marks.
	first := rvSide{SentID: 39, SentHash: r.hash(), RcvdID: 100, RcvdHash: r.hash()}
	again := rvSide{SentID: 41 + gap, SentHash: r.hash(), RcvdID: 100, RcvdHash: r.hash(),
		Pending: &rvPending{ID: h(r.bytes(16)), NextID: 40 + gap, PrevHash: r.hash()}}
	for _, m := range []struct {
		what string
		s    rvSide
	}{
		{"the first mark: the numbering jumps", first},
		{"a repeated request (Fix connection while one is pending) keeps the first one's numbering", again},
	} {
		v := rvMark{What: m.what, Before: m.s}
		v.After.NextID, v.After.PrevHash, v.After.SentID = rvModelMark(m.s)
		f.Marks = append(f.Marks, v)
	}

	// Answering.
	inv0 := rvUnhex(t, f.Requests[0].Invitation)
	entry := func(id uint64, sealed bool) rvEntry { return rvEntry{ID: id, PrevHash: r.hash(), Sealed: sealed} }
	req := func(first byte, next, rcvd uint64) (string, rvCounters) {
		id := r.bytes(16)
		id[0] = first
		return h(id), rvCounters{NextID: next, PrevHash: r.hash(), RcvdID: rcvd}
	}
	seen := func(n int) []string {
		var ids []string
		for range n {
			ids = append(ids, h(r.bytes(16)))
		}
		return ids
	}
	type ansIn struct {
		what  string
		s     rvSide
		id    string
		n     rvCounters
		reuse bool // the request's ID is the first answered one
	}
	var ins []ansIn
	{
		// requests/0 reaching the state of answers/0.
		r0, a0 := f.Requests[0], f.Answers[0]
		n := rvCounters{NextID: r0.NextID, PrevHash: r0.PrevHash, RcvdID: r0.Rcvd}
		ins = append(ins, ansIn{what: "requests/0: the peer restored a backup; our messages 101..120 left after its backup", id: r0.ID, n: n,
			s: rvSide{SentID: a0.AnswererSentID, SentHash: a0.AnswererSentHash, RcvdID: a0.AnswererRcvdID, RcvdHash: r.hash()}})
	}
	{
		id, n := req(0x80, 40+gap, 100)
		ins = append(ins, ansIn{what: "outbox: 100 (sent, its deletion lost in a crash), 119 (in flight), 120 (waiting)", id: id, n: n,
			s: rvSide{SentID: 120, SentHash: r.hash(), RcvdID: 57, RcvdHash: r.hash(),
				Outbox: []rvEntry{entry(100, true), entry(119, true), entry(120, true)}}})
	}
	{
		id, n := req(0x80, 58+gap, 57)
		ins = append(ins, ansIn{what: "nothing missing: the peer has all we sent", id: id, n: n,
			s: rvSide{SentID: 57, SentHash: r.hash(), RcvdID: 57, RcvdHash: r.hash()}})
	}
	{
		id, n := req(0x80, 80+gap, 45)
		ins = append(ins, ansIn{what: "we are the stale side (restored without a re-sync; Fix connection on the peer): our numbering jumps, our queued messages fail", id: id, n: n,
			s: rvSide{SentID: 30, SentHash: r.hash(), RcvdID: 50, RcvdHash: r.hash(),
				Outbox: []rvEntry{entry(29, true), entry(30, true)}}})
	}
	{
		id, n := req(0xc0, 120+gap, 17)
		ins = append(ins, ansIn{what: "crossing: our own pending request has the smaller ID, so we answer and drop ours", id: id, n: n,
			s: rvSide{SentID: 20 + gap, SentHash: r.hash(), RcvdID: 119, RcvdHash: r.hash(),
				Outbox:  []rvEntry{entry(17, true), entry(18, true), entry(19+gap, false), entry(20+gap, false)},
				Pending: &rvPending{ID: "40" + h(r.bytes(15)), NextID: 19 + gap, PrevHash: r.hash()}}})
	}
	{
		id, n := req(0x40, 120+gap, 17)
		ins = append(ins, ansIn{what: "crossing: our own pending request has the larger ID, so theirs is ignored", id: id, n: n,
			s: rvSide{SentID: 20 + gap, SentHash: r.hash(), RcvdID: 119, RcvdHash: r.hash(),
				Outbox:  []rvEntry{entry(19+gap, false), entry(20+gap, false)},
				Pending: &rvPending{ID: "c0" + h(r.bytes(15)), NextID: 19 + gap, PrevHash: r.hash()}}})
	}
	{
		id, n := req(0x80, 40+gap, 100)
		ins = append(ins, ansIn{what: "a repeat of a request among the last 8 answered is ignored", id: id, n: n, reuse: true,
			s: rvSide{SentID: 120, SentHash: r.hash(), RcvdID: 40 + gap, RcvdHash: r.hash(), Answered: seen(8)}})
	}
	{
		id, n := req(0x80, 40+gap, 100)
		ins = append(ins, ansIn{what: "8 requests answered before: the oldest ID is forgotten", id: id, n: n,
			s: rvSide{SentID: 120, SentHash: r.hash(), RcvdID: 57, RcvdHash: r.hash(), Answered: seen(8)}})
	}
	for _, in := range ins {
		if in.reuse {
			in.id = in.s.Answered[3]
		}
		v := rvModelAnswer(in.s, in.id, in.n)
		v.What = in.what
		v.Request = h(rvRequestBytes(rvUnhex(t, in.id), inv0, in.n, rvUnhex(t, in.n.PrevHash)))
		f.Answering = append(f.Answering, v)
	}

	// Completing.
	for _, c := range []struct {
		what string
		s    rvSide
		ans  rvCounters
	}{
		{"requests/0 answered by answers/0, two messages queued meanwhile; the backup's unsent 38 and 39 reached the peer from the original device",
			rvSide{SentID: 40 + gap, SentHash: r.hash(), RcvdID: 100, RcvdHash: r.hash(),
				Outbox: []rvEntry{entry(38, true), entry(39, true),
					{ID: 39 + gap, PrevHash: f.Requests[0].PrevHash}, entry(40+gap, false)},
				Pending: &rvPending{ID: f.Requests[0].ID, NextID: f.Requests[0].NextID, PrevHash: f.Requests[0].PrevHash}},
			rvCounters{NextID: f.Answers[0].NextID, PrevHash: f.Answers[0].PrevHash, RcvdID: f.Answers[0].Rcvd}},
		{"Fix connection answered by a stale peer: its numbering jumped past ours",
			rvSide{SentID: 80 + gap, SentHash: r.hash(), RcvdID: 45, RcvdHash: r.hash(),
				Outbox:  []rvEntry{entry(80+gap, false)},
				Pending: &rvPending{ID: h(r.bytes(16)), NextID: 80 + gap, PrevHash: r.hash()}},
			rvCounters{NextID: 45 + gap, PrevHash: r.hash(), RcvdID: 50}},
		{"the peer's message 300 was in flight and reached us before the answer: next_id 300 is not past our rcvd_id, which stays",
			rvSide{SentID: 12 + gap, SentHash: r.hash(), RcvdID: 300, RcvdHash: r.hash(),
				Outbox:  []rvEntry{entry(11, true), entry(12+gap, false)},
				Pending: &rvPending{ID: h(r.bytes(16)), NextID: 12 + gap, PrevHash: r.hash()}},
			rvCounters{NextID: 300, PrevHash: r.hash(), RcvdID: 11}},
	} {
		f.Completing = append(f.Completing, rvModelComplete(t, c.what, c.s, c.ans))
	}
	return f
}

// The models: SPEC.md's rules, written from the text.

func rvModelMark(s rvSide) (next uint64, prev string, sentID uint64) {
	if s.Pending != nil {
		return s.Pending.NextID, s.Pending.PrevHash, s.SentID
	}
	return s.SentID + ResyncGap, s.SentHash, s.SentID + ResyncGap - 1
}

func rvModelAnswer(s rvSide, id string, req rvCounters) rvAnswerCase {
	v := rvAnswerCase{Before: s, RequestID: id, Counters: req, Delivered: []uint64{}, Failed: []uint64{}}
	unchanged := rvAfter{SentID: s.SentID, RcvdID: s.RcvdID, RcvdHash: s.RcvdHash, Answered: s.Answered, Outbox: []uint64{}}
	for _, e := range s.Outbox {
		unchanged.Outbox = append(unchanged.Outbox, e.ID)
	}
	if slices.Contains(s.Answered, id) || (s.Pending != nil && s.Pending.ID > id) { // same-length hex: bytewise order
		v.After = unchanged
		return v
	}
	v.Answered = true
	ans := rvCounters{NextID: s.SentID + 1, PrevHash: s.SentHash, RcvdID: s.RcvdID}
	after := rvAfter{SentID: s.SentID, RcvdID: s.RcvdID, RcvdHash: s.RcvdHash, Outbox: []uint64{}}
	stale := s.Pending == nil && req.RcvdID > s.SentID
	switch {
	case s.Pending != nil:
		ans.NextID, ans.PrevHash = s.Pending.NextID, s.Pending.PrevHash
	case stale:
		ans.NextID = req.RcvdID + ResyncGap
		after.SentID = ans.NextID - 1
	}
	for _, e := range s.Outbox {
		switch {
		case e.ID <= req.RcvdID && stale:
			v.Failed = append(v.Failed, e.ID)
		case e.ID <= req.RcvdID:
			v.Delivered = append(v.Delivered, e.ID)
		default:
			after.Outbox = append(after.Outbox, e.ID)
			if s.Pending == nil && e.ID < ans.NextID {
				ans.NextID, ans.PrevHash = e.ID, e.PrevHash
			}
		}
	}
	if req.NextID-1 > s.RcvdID {
		after.RcvdID, after.RcvdHash = req.NextID-1, req.PrevHash
	}
	after.Answered = append(slices.Clone(s.Answered), id)
	if len(after.Answered) > 8 {
		after.Answered = after.Answered[len(after.Answered)-8:]
	}
	if !stale && s.Pending == nil && ans.NextID-1 > req.RcvdID {
		v.UnreadFrom, v.UnreadTo = req.RcvdID+1, ans.NextID-1
	}
	v.Answer, v.After = &ans, after
	return v
}

func rvModelComplete(t testing.TB, what string, s rvSide, ans rvCounters) rvCompleteCase {
	v := rvCompleteCase{What: what, Before: s, Answer: ans, Delivered: []uint64{}}
	v.After = rvAfter{SentID: s.SentID + 1, RcvdID: s.RcvdID, RcvdHash: s.RcvdHash, Outbox: []uint64{}}
	for _, e := range s.Outbox {
		if e.ID <= ans.RcvdID {
			v.Delivered = append(v.Delivered, e.ID)
		} else {
			v.After.Outbox = append(v.After.Outbox, e.ID)
		}
	}
	v.After.Outbox = append(v.After.Outbox, s.SentID+1) // the 'Z' message
	if ans.NextID-1 > s.RcvdID {
		v.After.RcvdID, v.After.RcvdHash = ans.NextID-1, ans.PrevHash
	}
	pt := binary.BigEndian.AppendUint64(nil, s.SentID+1)
	pt = append(pt, rvUnhex(t, s.SentHash)...)
	pt = append(pt, 'Z')
	v.Resynced.MsgID, v.Resynced.PrevHash, v.Resynced.Plaintext = s.SentID+1, s.SentHash, hex.EncodeToString(pt)
	return v
}

// The harness: an agent on an in-memory store, never started; the checks
// call its re-sync functions directly.

type rvEvents struct {
	resyncs   []ResyncEvent
	delivered []uint64
	failed    []uint64
	problems  []error
}

func (e *rvEvents) Connecting(ConnID, []byte)           {}
func (e *rvEvents) Connected(ConnID, []byte)            {}
func (e *rvEvents) Received(ConnID, Received) error     { return nil }
func (e *rvEvents) Sent(ConnID, uint64)                 {}
func (e *rvEvents) Delivered(_ ConnID, ids []uint64)    { e.delivered = append(e.delivered, ids...) }
func (e *rvEvents) Failed(_ ConnID, id uint64, _ error) { e.failed = append(e.failed, id) }
func (e *rvEvents) PeerDeleted(ConnID)                  {}
func (e *rvEvents) Problem(_ ConnID, err error)         { e.problems = append(e.problems, err) }
func (e *rvEvents) Resync(_ ConnID, ev ResyncEvent)     { e.resyncs = append(e.resyncs, ev) }
func (e *rvEvents) statuses() (out []ResyncStatus)      { return rvStatuses(e.resyncs) }
func rvStatuses(evs []ResyncEvent) (out []ResyncStatus) {
	for _, ev := range evs {
		out = append(out, ev.Status)
	}
	return out
}

func rvAgent(t testing.TB, pq bool) (*Agent, *rvEvents) {
	t.Helper()
	fsys, err := mem.NewFS()
	if err != nil {
		t.Fatal(err)
	}
	key, err := vault.NewKey(crand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	st, err := store.Open(fsys, "profile", store.VaultSealer(key))
	if err != nil {
		t.Fatal(err)
	}
	ev := &rvEvents{}
	relays := NewRelays(client.Options{}, nil, nil)
	a, err := New(Options{Store: st, Relays: relays, Events: ev, PostQuantum: pq, Rand: &rvRand{label: "resync spec test"}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { a.Close(); relays.Close() })
	return a, ev
}

const rvConnID = ConnID("0123456789abcdef01234567")

// rvConn stores s as a connected connection; secret (when s has a
// pending request) is that request's invitation secret.
func rvConn(t testing.TB, a *Agent, s rvSide, secret []byte) (*connRecord, *connHandle) {
	t.Helper()
	c := &connRecord{
		ID: rvConnID, State: StateConnected, Created: time.Unix(0, 0).UTC(), Snd: &sndQueue{},
		Ratchet: []byte("the ratchet being replaced"), // never read on these paths
		SentID:  s.SentID, SentHash: rvHash(t, s.SentHash), RcvdID: s.RcvdID, RcvdHash: rvHash(t, s.RcvdHash),
	}
	for _, id := range s.Answered {
		c.ResyncSeen = append(c.ResyncSeen, rvUnhex(t, id))
	}
	if s.Pending != nil {
		c.Resync = &resyncState{ID: rvUnhex(t, s.Pending.ID), Secret: secret, Base: s.Pending.NextID,
			Prev: rvHash(t, s.Pending.PrevHash), Started: time.Unix(0, 0).UTC(), Sent: true}
	}
	for _, e := range s.Outbox {
		oe := &outboxEntry{ID: e.ID, Kind: KindChat, Body: fmt.Appendf(nil, "message %d", e.ID), Prev: rvHash(t, e.PrevHash)}
		if e.Sealed {
			oe.Env = append([]byte{typeMessage}, make([]byte, ratchet.EnvelopeSize)...) // the old ratchet's
		}
		if err := a.putOutbox(c.ID, oe); err != nil {
			t.Fatal(err)
		}
	}
	if err := a.saveConn(c); err != nil {
		t.Fatal(err)
	}
	return c, &connHandle{wake: make(chan struct{}, 1), stop: make(chan struct{})}
}

func rvOutboxIDs(t testing.TB, a *Agent) []uint64 {
	t.Helper()
	entries, err := a.loadOutbox(rvConnID)
	if err != nil {
		t.Fatal(err)
	}
	ids := []uint64{}
	for _, e := range entries {
		ids = append(ids, e.ID)
	}
	return ids
}

func rvSeen(c *connRecord) []string {
	var out []string
	for _, id := range c.ResyncSeen {
		out = append(out, hex.EncodeToString(id))
	}
	return out
}

func rvApply(t testing.TB, f *rvFile, m rvMalformed) []byte {
	t.Helper()
	var b []byte
	kind, n, _ := strings.Cut(m.Base, "/")
	i, err := strconv.Atoi(n)
	if err != nil {
		t.Fatalf("%s: base %q: %v", m.What, m.Base, err)
	}
	switch kind {
	case "requests":
		b = rvUnhex(t, f.Requests[i].Request)
	case "answers":
		b = rvUnhex(t, f.Answers[i].Answer)
	case "counters":
		b = rvUnhex(t, f.Counters[i].Encoded)
	default:
		t.Fatalf("%s: base %q", m.What, m.Base)
	}
	if m.Length != nil {
		b = append(b, make([]byte, max(0, *m.Length-len(b)))...)[:*m.Length]
	}
	if m.Offset != nil {
		copy(b[*m.Offset:], rvUnhex(t, m.Value))
	}
	return b
}

// TestResyncVectors regenerates the vectors, compares them with the
// committed file, and checks the committed file against the agent's code.
func TestResyncVectors(t *testing.T) {
	got, err := json.MarshalIndent(rvBuild(t), "", "  ")
	if err != nil {
		t.Fatal(err)
	}
	got = append(got, '\n')
	data := resyncVectorsJSON
	if *updateResyncVectors {
		if err := os.WriteFile(filepath.Join("testdata", "resync-vectors.json"), got, 0o644); err != nil {
			t.Fatal(err)
		}
		data = got
	} else if !bytes.Equal(got, data) {
		t.Fatal("generated vectors differ from testdata/resync-vectors.json; rerun with -args -update-resync-vectors if the change is intended")
	}
	var f rvFile
	if err := json.Unmarshal(data, &f); err != nil {
		t.Fatal(err)
	}
	if len(f.Counters) == 0 || len(f.Requests) == 0 || len(f.Answers) == 0 || len(f.Malformed) == 0 ||
		len(f.Marks) == 0 || len(f.Answering) == 0 || len(f.Completing) == 0 {
		t.Fatal("no vectors")
	}
	t.Run("constants", func(t *testing.T) { rvCheckConstants(t, f.Constants) })
	t.Run("counters", func(t *testing.T) { rvCheckCounters(t, f.Counters) })
	t.Run("requests", func(t *testing.T) { rvCheckRequests(t, f.Requests) })
	t.Run("answers", func(t *testing.T) { rvCheckAnswers(t, f.Answers) })
	t.Run("malformed", func(t *testing.T) { rvCheckMalformed(t, &f) })
	t.Run("marks", func(t *testing.T) { rvCheckMarks(t, f.Marks) })
	t.Run("answering", func(t *testing.T) { rvCheckAnswering(t, f.Requests[0], f.Answering) })
	t.Run("completing", func(t *testing.T) { rvCheckCompleting(t, f.Requests[0], f.Completing) })
}

func rvCheckConstants(t *testing.T, k rvConstants) {
	for _, c := range []struct {
		name      string
		got, want uint64
	}{
		{"ResyncGap", ResyncGap, k.ResyncGap},
		{"request ID", resyncIDSize, uint64(k.RequestIDSize)},
		{"counters", countersSize, uint64(k.CountersSize)},
		{"request", resyncRequestSize, uint64(k.RequestSize)},
		{"answer", resyncReplySize, uint64(k.AnswerSize)},
		{"answer envelope plaintext", resyncIDSize + countersSize, uint64(k.EnvelopePlaintext)},
		{"remembered request IDs", resyncSeenMax, uint64(k.RememberedRequests)},
		{"undecryptable before ResyncSuggested", badOpensFix, uint64(k.UndecryptableFix)},
	} {
		if c.got != c.want {
			t.Errorf("%s: the code has %d, the vectors %d", c.name, c.got, c.want)
		}
	}
	// Both fit the per-queue box (SPEC.md, "Queue messages").
	if resyncReplySize > queueBoxSize-box.Overhead-2 || resyncRequestSize > queueBoxSize-box.Overhead-2 {
		t.Error("a re-sync message does not fit the per-queue box")
	}
}

func rvCheckCounters(t *testing.T, vs []rvCountersVec) {
	for _, v := range vs {
		n, err := decodeCounters(rvUnhex(t, v.Encoded))
		if err != nil || n.Next != v.NextID || n.Prev != rvHash(t, v.PrevHash) || n.Rcvd != v.RcvdID {
			t.Errorf("%s: decodes to %+v, %v", v.What, n, err)
		}
		want := counters{Next: v.NextID, Prev: rvHash(t, v.PrevHash), Rcvd: v.RcvdID}
		if hex.EncodeToString(want.encode(nil)) != v.Encoded {
			t.Errorf("%s: encodes differently", v.What)
		}
	}
}

func rvCheckRequests(t *testing.T, vs []rvRequest) {
	for _, v := range vs {
		// The mark reads i1 || i2, then the ID.
		a, _ := rvAgent(t, v.PQ)
		c := &connRecord{State: StateConnected, Ratchet: []byte{0}, Snd: &sndQueue{},
			SentID: v.SentIDBefore, SentHash: rvHash(t, v.SentHash), RcvdID: v.RcvdID}
		rnd := bytes.NewReader(append(rvUnhex(t, v.InviterRandom), rvUnhex(t, v.ID)...))
		a.rand = rnd
		if err := a.markResync(c, false); err != nil {
			t.Fatal(err)
		}
		if rnd.Len() != 0 {
			t.Errorf("%s: the mark left %d bytes of its randomness", v.What, rnd.Len())
		}
		if hex.EncodeToString(c.Resync.ID) != v.ID || c.Resync.Base != v.NextID || c.Resync.Prev != rvHash(t, v.PrevHash) {
			t.Errorf("%s: the mark made %+v", v.What, c.Resync)
		}
		// As sendResync builds it.
		sec, err := ratchetSecret(c.Resync.Secret)
		if err != nil {
			t.Fatal(err)
		}
		msg := resyncRequest{ID: c.Resync.ID, Invitation: sec.Invitation(),
			Counters: counters{Next: c.Resync.Base, Prev: c.Resync.Prev, Rcvd: c.RcvdID}}.encode()
		if hex.EncodeToString(msg) != v.Request {
			t.Errorf("%s: the code's request differs from the vector", v.What)
		}
		req, err := decodeResyncRequest(rvUnhex(t, v.Request))
		if err != nil {
			t.Fatalf("%s: %v", v.What, err)
		}
		inv, _ := req.Invitation.MarshalBinary()
		if hex.EncodeToString(req.ID) != v.ID || hex.EncodeToString(inv) != v.Invitation || req.Invitation.PQ != v.PQ ||
			req.Counters.Next != v.NextID || req.Counters.Prev != rvHash(t, v.PrevHash) || req.Counters.Rcvd != v.Rcvd {
			t.Errorf("%s: the request decodes to %+v", v.What, req)
		}
		rvCheckQueue(t, v.What, a, v.Queue, msg)
	}
}

// rvCheckQueue boxes msg as sendRaw does and opens the vector's body.
func rvCheckQueue(t *testing.T, what string, a *Agent, q rvQueue, msg []byte) {
	t.Helper()
	a.rand = bytes.NewReader(rvUnhex(t, q.Nonce))
	body, err := a.sendBody(&sndQueue{QueueKey: rvUnhex(t, q.SenderPrivate), PeerKey: rvUnhex(t, q.ReceiverPublic)}, &outboxEntry{Env: msg})
	if err != nil {
		t.Fatal(err)
	}
	if sum := sha256.Sum256(body); hex.EncodeToString(sum[:]) != q.BodySHA256 || (q.Body != "" && hex.EncodeToString(body) != q.Body) {
		t.Errorf("%s: the SEND body differs from the vector", what)
	}
	key, boxed, err := splitQueue(body)
	if err != nil || hex.EncodeToString(key.Bytes()) != q.SenderPublic {
		t.Fatalf("%s: %v", what, err)
	}
	shared, err := sharedKey(rvUnhex(t, q.ReceiverPrivate), key.Bytes())
	if err != nil || hex.EncodeToString(shared.Bytes()) != q.SharedKey {
		t.Fatalf("%s: shared key: %v", what, err)
	}
	inner, err := box.Open(shared, boxed)
	if err != nil || !bytes.Equal(inner, msg) || hex.EncodeToString(boxed[:box.NonceSize]) != q.Nonce {
		t.Errorf("%s: the body does not open to the message: %v", what, err)
	}
}

func rvCheckAnswers(t *testing.T, vs []rvAnswer) {
	for _, v := range vs {
		req, err := decodeResyncRequest(rvUnhex(t, v.Request))
		if err != nil {
			t.Fatal(err)
		}
		// The answerer's code, with the vector's randomness.
		a, ev := rvAgent(t, v.AnswererPQ)
		c, h := rvConn(t, a, rvSide{SentID: v.AnswererSentID, SentHash: v.AnswererSentHash, RcvdID: v.AnswererRcvdID,
			RcvdHash: hex.EncodeToString(make([]byte, 32))}, nil)
		rnd := bytes.NewReader(append(rvUnhex(t, v.JoinerRandom), rvUnhex(t, v.SealRandom)...))
		a.rand = rnd
		if ack, err := a.receiveResync(c, h, rvUnhex(t, v.Request)); !ack || err != nil {
			t.Fatalf("%s: %v %v", v.What, ack, err)
		}
		if rnd.Len() != 0 {
			t.Errorf("%s: the answer left %d bytes of its randomness", v.What, rnd.Len())
		}
		if hex.EncodeToString(c.ResyncReply) != v.Answer {
			t.Errorf("%s: the code's answer differs from the vector", v.What)
		}
		if !slices.Equal(ev.statuses(), []ResyncStatus{ResyncAnswered}) {
			t.Errorf("%s: events %v", v.What, ev.statuses())
		}
		rvCheckQueue(t, v.What, a, v.Queue, c.ResyncReply)

		// The layout.
		ans := rvUnhex(t, v.Answer)
		rep, err := decodeResyncReply(ans)
		if err != nil {
			t.Fatalf("%s: %v", v.What, err)
		}
		cb, _ := rep.Confirmation.MarshalBinary()
		sum := sha256.Sum256(rep.Envelope)
		if !bytes.Equal(rep.ID, req.ID) || hex.EncodeToString(cb) != v.Confirmation || hex.EncodeToString(sum[:]) != v.EnvelopeSHA256 ||
			!bytes.Equal(ans[84:], rep.Envelope) || hex.EncodeToString(rep.encode()) != v.Answer {
			t.Errorf("%s: the answer's layout", v.What)
		}
		// The requester opens it with its invitation secret.
		sec := rvSecret(t, v.InviterRandom, req.Invitation.PQ)
		st, err := sec.Accept(rep.Confirmation)
		if err != nil {
			t.Fatal(err)
		}
		pt, err := st.Open(rep.Envelope)
		if err != nil || hex.EncodeToString(pt) != v.EnvelopePlaintext {
			t.Fatalf("%s: the envelope opens to %x: %v", v.What, pt, err)
		}
		n, err := decodeCounters(pt[resyncIDSize:])
		if err != nil || !bytes.Equal(pt[:resyncIDSize], req.ID) || n.Next != v.NextID || n.Prev != rvHash(t, v.PrevHash) || n.Rcvd != v.Rcvd {
			t.Errorf("%s: the envelope holds %x %+v %v", v.What, pt[:resyncIDSize], n, err)
		}
		code := st.SecurityCode()
		if hex.EncodeToString(code[:]) != v.SecurityCode {
			t.Errorf("%s: security code", v.What)
		}
		var mine ratchet.State
		if err := mine.UnmarshalBinary(c.Ratchet); err != nil || mine.SecurityCode() != code {
			t.Errorf("%s: the two sides' security codes differ: %v", v.What, err)
		}
		// And the requester's code accepts it.
		b, _ := rvAgent(t, req.Invitation.PQ)
		secret, _ := sec.MarshalBinary()
		rc, rh := rvConn(t, b, rvSide{SentID: req.Counters.Next - 1, SentHash: hex.EncodeToString(req.Counters.Prev[:]),
			RcvdID: req.Counters.Rcvd, RcvdHash: hex.EncodeToString(make([]byte, 32)),
			Pending: &rvPending{ID: hex.EncodeToString(req.ID), NextID: req.Counters.Next, PrevHash: hex.EncodeToString(req.Counters.Prev[:])}}, secret)
		if ack, err := b.receiveResync(rc, rh, ans); !ack || err != nil || rc.Resync != nil || rc.Epoch != 1 {
			t.Errorf("%s: the requester does not accept it: %v %v", v.What, ack, err)
		}
	}
}

func rvCheckMalformed(t *testing.T, f *rvFile) {
	for _, m := range f.Malformed {
		b := rvApply(t, f, m)
		var err error
		switch {
		case strings.HasPrefix(m.Base, "requests/"):
			_, err = decodeResyncRequest(b)
		case strings.HasPrefix(m.Base, "answers/"):
			_, err = decodeResyncReply(b)
		default:
			_, err = decodeCounters(b)
		}
		if err == nil {
			t.Errorf("%s: accepted", m.What)
		}
	}
}

func rvCheckMarks(t *testing.T, vs []rvMark) {
	for _, v := range vs {
		a, ev := rvAgent(t, true)
		c, _ := rvConn(t, a, v.Before, nil)
		var oldID []byte
		if c.Resync != nil {
			oldID = c.Resync.ID
		}
		if err := a.markResync(c, false); err != nil {
			t.Fatal(err)
		}
		if c.Resync.Base != v.After.NextID || hex.EncodeToString(c.Resync.Prev[:]) != v.After.PrevHash || c.SentID != v.After.SentID {
			t.Errorf("%s: next %d prev %x sent %d", v.What, c.Resync.Base, c.Resync.Prev, c.SentID)
		}
		if bytes.Equal(c.Resync.ID, oldID) || c.Resync.Sent || c.Answered {
			t.Errorf("%s: a repeated request must have a new ID and be sent again", v.What)
		}
		// While the request is pending nothing is sealed: a message
		// queued now takes the next ID and has no envelope.
		e, err := a.seal(c, KindChat, []byte("queued"), c.SentID+1, c.SentHash)
		if err != nil || e.Env != nil || e.Sealed != nil || e.ID != v.After.SentID+1 || !needsSeal(c, e) {
			t.Errorf("%s: a message queued during the request: %+v %v", v.What, e, err)
		}
		if len(ev.resyncs) != 0 {
			t.Errorf("%s: events %v", v.What, ev.statuses())
		}
	}
}

func rvCheckAnswering(t *testing.T, r0 rvRequest, vs []rvAnswerCase) {
	sec := rvSecret(t, r0.InviterRandom, r0.PQ)
	secret, _ := sec.MarshalBinary()
	for _, v := range vs {
		a, ev := rvAgent(t, true)
		c, h := rvConn(t, a, v.Before, secret)
		reqBytes := rvUnhex(t, v.Request)
		req, err := decodeResyncRequest(reqBytes)
		if err != nil {
			t.Fatal(err)
		}
		if inv, _ := req.Invitation.MarshalBinary(); hex.EncodeToString(inv) != r0.Invitation || hex.EncodeToString(req.ID) != v.RequestID ||
			req.Counters.Next != v.Counters.NextID || req.Counters.Rcvd != v.Counters.RcvdID || hex.EncodeToString(req.Counters.Prev[:]) != v.Counters.PrevHash {
			t.Fatalf("%s: the request does not hold the case's values", v.What)
		}
		if ack, err := a.receiveResync(c, h, reqBytes); !ack || err != nil {
			t.Fatalf("%s: %v %v", v.What, ack, err)
		}
		saved, err := a.loadConn(rvConnID)
		if err != nil {
			t.Fatal(err)
		}
		if saved.StaleBelow > 0 {
			// What the outbox worker does first (sendNext).
			if err := a.failStale(saved); err != nil {
				t.Fatal(err)
			}
		}
		got := rvAfter{SentID: saved.SentID, RcvdID: saved.RcvdID, RcvdHash: hex.EncodeToString(saved.RcvdHash[:]),
			Outbox: rvOutboxIDs(t, a), Answered: rvSeen(saved)}
		if !rvAfterEqual(got, v.After) {
			t.Errorf("%s: after\n got  %+v\n want %+v", v.What, got, v.After)
		}
		if !v.Answered {
			if saved.ResyncReply != nil || saved.Epoch != 0 || len(ev.resyncs) != 0 || (v.Before.Pending != nil) != (saved.Resync != nil) {
				t.Errorf("%s: an ignored request changed the connection", v.What)
			}
			continue
		}
		if saved.ResyncReply == nil || saved.Epoch != 1 || !saved.Answered || saved.Resync != nil || saved.BadOpens != 0 {
			t.Errorf("%s: not answered: %+v", v.What, saved)
			continue
		}
		rep, err := decodeResyncReply(saved.ResyncReply)
		if err != nil {
			t.Fatal(err)
		}
		st, err := sec.Accept(rep.Confirmation)
		if err != nil {
			t.Fatal(err)
		}
		pt, err := st.Open(rep.Envelope)
		if err != nil || !bytes.Equal(pt[:resyncIDSize], req.ID) {
			t.Fatalf("%s: %v", v.What, err)
		}
		n, err := decodeCounters(pt[resyncIDSize:])
		if err != nil || n.Next != v.Answer.NextID || hex.EncodeToString(n.Prev[:]) != v.Answer.PrevHash || n.Rcvd != v.Answer.RcvdID {
			t.Errorf("%s: answer counters\n got  %d %x %d\n want %+v", v.What, n.Next, n.Prev, n.Rcvd, *v.Answer)
		}
		if len(ev.resyncs) != 1 || ev.resyncs[0].Status != ResyncAnswered ||
			ev.resyncs[0].UnreadFrom != v.UnreadFrom || ev.resyncs[0].UnreadTo != v.UnreadTo {
			t.Errorf("%s: events %+v, want unread %d..%d", v.What, ev.resyncs, v.UnreadFrom, v.UnreadTo)
		}
		if !slices.Equal(ev.delivered, v.Delivered) {
			t.Errorf("%s: delivered %v, want %v", v.What, ev.delivered, v.Delivered)
		}
		if !slices.Equal(ev.failed, v.Failed) {
			t.Errorf("%s: failed %v, want %v", v.What, ev.failed, v.Failed)
		}
		entries, _ := a.loadOutbox(rvConnID)
		for _, e := range entries {
			if !needsSeal(saved, e) {
				t.Errorf("%s: entry %d would go out with the old ratchet", v.What, e.ID)
			}
		}
		// The request again (a redelivery, or a relay replaying it): ignored.
		if ack, err := a.receiveResync(saved, h, reqBytes); !ack || err != nil {
			t.Errorf("%s: the repeat: %v %v", v.What, ack, err)
		}
		if again, err := a.loadConn(rvConnID); err != nil || again.Epoch != 1 || len(ev.resyncs) != 1 {
			t.Errorf("%s: the repeat was answered again", v.What)
		}
	}
}

func rvAfterEqual(a, b rvAfter) bool {
	return a.SentID == b.SentID && a.RcvdID == b.RcvdID && a.RcvdHash == b.RcvdHash &&
		slices.Equal(a.Outbox, b.Outbox) && slices.Equal(a.Answered, b.Answered)
}

func rvCheckCompleting(t *testing.T, r0 rvRequest, vs []rvCompleteCase) {
	sec := rvSecret(t, r0.InviterRandom, r0.PQ)
	secret, _ := sec.MarshalBinary()
	for _, v := range vs {
		a, ev := rvAgent(t, true)
		c, h := rvConn(t, a, v.Before, secret)
		// The peer's answer, as an answerer makes it (its randomness does
		// not matter here).
		inv, _ := ratchet.ParseInvitation(rvUnhex(t, r0.Invitation))
		st, conf, err := ratchet.Join(&rvRand{label: v.What}, inv, true)
		if err != nil {
			t.Fatal(err)
		}
		pt := counters{Next: v.Answer.NextID, Prev: rvHash(t, v.Answer.PrevHash), Rcvd: v.Answer.RcvdID}.encode(rvUnhex(t, v.Before.Pending.ID))
		env, err := st.Seal(&rvRand{label: v.What + " seal"}, pt)
		if err != nil {
			t.Fatal(err)
		}
		ans := resyncReply{ID: c.Resync.ID, Confirmation: conf, Envelope: env}.encode()
		// A stray answer to another request is refused and changes nothing.
		stray := bytes.Clone(ans)
		stray[2] ^= 1
		if ack, err := a.receiveResync(c, h, stray); !ack || err == nil {
			t.Errorf("%s: an answer to another request: %v %v", v.What, ack, err)
		}
		if ack, err := a.receiveResync(c, h, ans); !ack || err != nil {
			t.Fatalf("%s: %v %v", v.What, ack, err)
		}
		saved, err := a.loadConn(rvConnID)
		if err != nil {
			t.Fatal(err)
		}
		if saved.StaleBelow > 0 {
			// What the outbox worker does first (sendNext).
			if err := a.failStale(saved); err != nil {
				t.Fatal(err)
			}
		}
		got := rvAfter{SentID: saved.SentID, RcvdID: saved.RcvdID, RcvdHash: hex.EncodeToString(saved.RcvdHash[:]), Outbox: rvOutboxIDs(t, a)}
		if !rvAfterEqual(got, v.After) {
			t.Errorf("%s: after\n got  %+v\n want %+v", v.What, got, v.After)
		}
		if saved.Resync != nil || saved.Epoch != 1 || saved.Answered {
			t.Errorf("%s: not completed", v.What)
		}
		if !slices.Equal(ev.delivered, v.Delivered) {
			t.Errorf("%s: delivered %v, want %v", v.What, ev.delivered, v.Delivered)
		}
		if !slices.Equal(ev.statuses(), []ResyncStatus{ResyncDone}) {
			t.Errorf("%s: events %v", v.What, ev.statuses())
		}
		// The 'Z' message: sealed with the new ratchet; the answerer's
		// state opens it to the vector's plaintext. Every other entry is
		// sealed again before it is sent.
		entries, _ := a.loadOutbox(rvConnID)
		for _, e := range entries {
			if e.ID != v.Resynced.MsgID {
				if !needsSeal(saved, e) {
					t.Errorf("%s: entry %d would go out unsealed or with the old ratchet", v.What, e.ID)
				}
				continue
			}
			if e.Kind != KindResynced || needsSeal(saved, e) || hex.EncodeToString(e.Prev[:]) != v.Resynced.PrevHash {
				t.Errorf("%s: the resynced message %+v", v.What, e)
				continue
			}
			got, err := st.Open(e.Env[1:])
			if err != nil || hex.EncodeToString(got) != v.Resynced.Plaintext {
				t.Errorf("%s: the resynced message opens to %x: %v", v.What, got, err)
			}
		}
		// A repeat of the answer (the answerer sent it twice) is refused.
		if ack, err := a.receiveResync(saved, h, ans); !ack || err == nil {
			t.Errorf("%s: a repeated answer: %v %v", v.What, ack, err)
		}
	}
}
