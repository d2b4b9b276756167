package relay_test

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"crypto/sha256"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"testing"

	"github.com/coder/websocket"
	"github.com/wisp-chat/wisp/server/relay"
	"github.com/wisp-chat/wisp/server/relay/store"
	"github.com/wisp-chat/wisp/server/wire"
	"github.com/wisp-chat/wisp/server/wire/client"
)

// parse parses a raw answer.
func parse(t *testing.T, raw []byte) wire.Transmission {
	t.Helper()
	tr, err := wire.ParseTransmission(raw)
	if err != nil {
		t.Fatal(err)
	}
	return tr
}

// wantAnswer checks an answer's kind (and error code for ERR).
func wantAnswer(t *testing.T, got wire.Transmission, kind wire.Kind, code wire.ErrCode) {
	t.Helper()
	if got.Command.Kind != kind || (kind == wire.AnsERR && got.Command.Code != code) {
		t.Fatalf("got %v %v, want %v %v", got.Command.Kind, got.Command.Code, kind, code)
	}
}

// recvAll reads blocks until n answers have arrived.
func (c *rawConn) recvAll(n int) []wire.Transmission {
	c.t.Helper()
	var out []wire.Transmission
	for len(out) < n {
		for _, raw := range c.recv() {
			out = append(out, parse(c.t, raw))
		}
	}
	return out
}

// TestAuthSameVerificationWork: a command on a missing queue, one with a
// wrong signature on an existing queue, and a SEND to a queue that is not
// secured each cost one signature verification against a valid Ed25519
// key (the dummy key is a real point, so its verification is full work).
func TestAuthSameVerificationWork(t *testing.T) {
	var mu sync.Mutex
	var keys [][]byte
	r := startRelay(t, func(c *relay.Config) {})
	relay.OnVerify(r.srv, func(k []byte) {
		mu.Lock()
		keys = append(keys, bytes.Clone(k))
		mu.Unlock()
	})
	dummy := relay.DummyKey(r.srv)
	seed := sha256.Sum256([]byte("wisp relay: no such queue"))
	if !bytes.Equal(dummy, ed25519.NewKeyFromSeed(seed[:]).Public().(ed25519.PublicKey)) {
		t.Fatal("the dummy key is not the public key of its documented seed, so not a valid point")
	}
	msg := []byte("proof of a valid point")
	if !ed25519.Verify(dummy, msg, ed25519.Sign(ed25519.NewKeyFromSeed(seed[:]), msg)) {
		t.Fatal("the dummy key does not verify")
	}
	c := dial(t, r)
	unsecured := newQueue(t, c, false)
	existing := newQueue(t, c, true)
	raw := dialRaw(t, r)
	missing := make([]byte, wire.IDSize)
	_, wrongKey, _ := ed25519.GenerateKey(nil)
	cases := []struct {
		name string
		tx   []byte
		key  []byte
	}{
		{"SUB on a missing queue", raw.tx(missing, wire.Command{Kind: wire.CmdSUB}, wrongKey), dummy},
		{"SUB with a wrong signature", raw.tx(existing.info.RcvID[:], wire.Command{Kind: wire.CmdSUB}, wrongKey), existing.keys.Auth.Public().(ed25519.PublicKey)},
		{"SEND to a missing queue", raw.tx(missing, wire.Command{Kind: wire.CmdSEND, Body: []byte("x")}, wrongKey), dummy},
		{"SEND to an unsecured queue", raw.tx(unsecured.info.SndID[:], wire.Command{Kind: wire.CmdSEND, Body: []byte("x")}, wrongKey), dummy},
		{"SEND with a wrong signature", raw.tx(existing.info.SndID[:], wire.Command{Kind: wire.CmdSEND, Body: []byte("x")}, wrongKey), existing.sndKey.Public().(ed25519.PublicKey)},
	}
	for _, tc := range cases {
		mu.Lock()
		keys = nil
		mu.Unlock()
		wantAnswer(t, raw.call(tc.tx), wire.AnsERR, wire.CodeAuth)
		mu.Lock()
		got := keys
		mu.Unlock()
		if len(got) != 1 || !bytes.Equal(got[0], tc.key) {
			t.Fatalf("%s: verifications against %d keys (%x), want one against %x", tc.name, len(got), got, tc.key)
		}
	}
}

// TestSubscriptionLimitExact: SUBs arriving together in one block cannot
// overshoot the per-connection limit (before the fix: 301–392 OK of 300).
func TestSubscriptionLimitExact(t *testing.T) {
	const limit, extra = 300, 200
	r := startRelay(t, func(c *relay.Config) {
		c.Limits.MaxSubsPerConn = limit
		c.Limits.NewPerMinute = limit + extra
	})
	c := dial(t, r)
	var txs [][]byte
	raw := dialRaw(t, r)
	for range limit + extra {
		q := newQueue(t, c, false)
		txs = append(txs, raw.tx(q.info.RcvID[:], wire.Command{Kind: wire.CmdSUB}, q.keys.Auth))
	}
	for round := range 3 {
		for i := 0; i < len(txs); i += 150 {
			raw.send(txs[i:min(i+150, len(txs))]...)
		}
		ok, limited := 0, 0
		for _, a := range raw.recvAll(len(txs)) {
			switch {
			case a.Command.Kind == wire.AnsOK:
				ok++
			case a.Command.Kind == wire.AnsERR && a.Command.Code == wire.CodeLimit:
				limited++
			default:
				t.Fatalf("unexpected answer %v %v", a.Command.Kind, a.Command.Code)
			}
		}
		// The first round subscribes limit queues; later rounds repeat
		// those (OK, counted once) and are refused the others again.
		if ok != limit || limited != extra {
			t.Fatalf("round %d: %d OK and %d LIMIT, want %d and %d", round, ok, limited, limit, extra)
		}
	}
}

// TestNewBudgets: NEW is bounded per source address and on the whole
// relay, whatever the number of connections; the store's byte bound
// refuses NEW and SEND with FULL.
func TestNewBudgets(t *testing.T) {
	newOn := func(c *client.Client) error {
		keys, _ := client.NewRecipientKeys()
		_, err := c.New(ctxT(t), keys, nil)
		return err
	}
	t.Run("per address", func(t *testing.T) {
		r := startRelay(t, func(c *relay.Config) { c.Limits.NewPerMinuteAddr = 5 })
		for i := range 5 {
			if err := newOn(dial(t, r)); err != nil {
				t.Fatalf("NEW %d: %v", i, err)
			}
		}
		wantCode(t, newOn(dial(t, r)), wire.CodeLimit)
	})
	t.Run("per relay", func(t *testing.T) {
		r := startRelay(t, func(c *relay.Config) {
			c.Limits.NewPerMinuteAddr = 0
			c.Limits.NewPerMinuteRelay = 7
		})
		a, b := dial(t, r), dial(t, r)
		for i := range 7 {
			if err := newOn([]*client.Client{a, b}[i%2]); err != nil {
				t.Fatalf("NEW %d: %v", i, err)
			}
		}
		wantCode(t, newOn(dial(t, r)), wire.CodeLimit)
	})
	t.Run("store full", func(t *testing.T) {
		r := startRelayStore(t, store.Options{MaxBytes: 40_000}, nil)
		c := dial(t, r)
		q := newQueue(t, c, true)
		ctx := ctxT(t)
		body := make([]byte, 10_000)
		sent := 0
		var err error
		for ; sent < 10; sent++ {
			if err = c.Send(ctx, q.info.SndID, q.sndKey, body); err != nil {
				break
			}
		}
		if sent != 3 {
			t.Fatalf("stored %d messages of 10,000 bytes under a 40,000-byte bound", sent)
		}
		wantCode(t, err, wire.CodeFull)
		// A queue record does not fit either once the store is full.
		for range 40 {
			if err = newOn(c); err != nil {
				break
			}
		}
		wantCode(t, err, wire.CodeFull)
		// Delivering frees the room again.
		c.Subscribe(ctx, q.sub)
		ev := nextEvent(t, c, client.EventMessage)
		if err := c.Ack(ctx, q.sub, ev.Message.ID); err != nil {
			t.Fatal(err)
		}
		if err := c.Send(ctx, q.info.SndID, q.sndKey, body); err != nil {
			t.Fatalf("SEND after an ACK freed room: %v", err)
		}
	})
}

// TestNewRefusesLowOrderKeys: a recipient DH key whose shared secret is
// all zeros (the zero point and other low-order points) is CMD and
// creates nothing.
func TestNewRefusesLowOrderKeys(t *testing.T) {
	r := startRelay(t, nil)
	raw := dialRaw(t, r)
	keys, _ := client.NewRecipientKeys()
	lowOrder := [][wire.KeySize]byte{
		{},  // 0
		{1}, // 1
		{0xe0, 0xeb, 0x7a, 0x7c, 0x3b, 0x41, 0xb8, 0xae, 0x16, 0x56, 0xe3, 0xfa, 0xf1, 0x9f, 0xc4, 0x6a, 0xda, 0x09, 0x8d, 0xeb, 0x9c, 0x32, 0xb1, 0xfd, 0x86, 0x62, 0x05, 0x16, 0x5f, 0x49, 0xb8, 0x00}, // order 8
	}
	for i, dh := range lowOrder {
		cmd := wire.Command{Kind: wire.CmdNEW, AuthKey: [wire.KeySize]byte(keys.Auth.Public().(ed25519.PublicKey)), DHKey: dh}
		wantAnswer(t, raw.call(raw.tx(nil, cmd, keys.Auth)), wire.AnsERR, wire.CodeCmd)
		if n, _, _ := r.st.Counts(); n != 0 {
			t.Fatalf("key %d: %d queues stored", i, n)
		}
	}
}

// TestPipelinedSendsKeepOrder: SENDs to one queue sent without waiting,
// one per block or many in one block, are stored and delivered in the
// order they were sent.
func TestPipelinedSendsKeepOrder(t *testing.T) {
	const n = 60
	r := startRelay(t, func(c *relay.Config) { c.Limits.QueueQuota = 4 * n })
	c := dial(t, r)
	q := newQueue(t, c, true)
	raw := dialRaw(t, r)
	send := func(i int) []byte {
		return raw.tx(q.info.SndID[:], wire.Command{Kind: wire.CmdSEND, Body: fmt.Appendf(nil, "%03d", i)}, q.sndKey)
	}
	var batch [][]byte
	for i := range n {
		raw.send(send(i)) // one block each
		batch = append(batch, send(n+i))
	}
	raw.send(batch...) // one block for all
	for _, a := range raw.recvAll(2 * n) {
		wantAnswer(t, a, wire.AnsOK, 0)
	}
	ctx := ctxT(t)
	c.Subscribe(ctx, q.sub)
	for i := range 2 * n {
		ev := nextEvent(t, c, client.EventMessage)
		if want := fmt.Sprintf("%03d", i); string(ev.Message.Body) != want {
			t.Fatalf("message %d is %q", i, ev.Message.Body)
		}
		if err := c.Ack(ctx, q.sub, ev.Message.ID); err != nil {
			t.Fatal(err)
		}
	}
}

// panickyStore panics when a queue is read, as bbolt does on a corrupt
// page.
type panickyStore struct {
	*store.Store
	armed bool
}

func (p *panickyStore) Peek(k store.QueueKey) (store.Message, bool, error) {
	if p.armed {
		panic("invalid page type: 0: 4")
	}
	return p.Store.Peek(k)
}

// TestCommandPanicIsInternal: a panic while handling a command answers
// ERR INTERNAL; the connection and the relay go on.
func TestCommandPanicIsInternal(t *testing.T) {
	ps := &panickyStore{}
	r := startRelay(t, func(c *relay.Config) {
		ps.Store = c.Store.(*store.Store)
		c.Store = ps
	})
	c := dial(t, r)
	q := newQueue(t, c, true)
	ctx := ctxT(t)
	if err := c.Send(ctx, q.info.SndID, q.sndKey, []byte("x")); err != nil {
		t.Fatal(err)
	}
	ps.armed = true
	_, _, err := c.Get(ctx, q.sub)
	wantCode(t, err, wire.CodeInternal)
	if err := c.Ping(ctx); err != nil {
		t.Fatal(err)
	}
	ps.armed = false
	if m, ok, err := c.Get(ctx, q.sub); err != nil || !ok || string(m.Body) != "x" {
		t.Fatalf("GET after the panic: %v %v %q", err, ok, m.Body)
	}
}

// TestGetAndAckAcrossSessions pins down GET and ACK between sessions: a
// second GET before the ACK is PROHIBITED (no second copy); an ACK of a
// message this session never received is NO_MSG and deletes nothing; a
// GET from another session returns the subscriber's in-flight message,
// and its ACK moves the subscriber on to the next one.
func TestGetAndAckAcrossSessions(t *testing.T) {
	r := startRelay(t, nil)
	a, b := dial(t, r), dial(t, r)
	ctx := ctxT(t)
	q := newQueue(t, a, true)
	for _, body := range []string{"one", "two"} {
		if err := a.Send(ctx, q.info.SndID, q.sndKey, []byte(body)); err != nil {
			t.Fatal(err)
		}
	}
	m, ok, err := b.Get(ctx, q.sub)
	if err != nil || !ok || string(m.Body) != "one" {
		t.Fatalf("GET: %v %v %q", err, ok, m.Body)
	}
	_, _, err = b.Get(ctx, q.sub)
	wantCode(t, err, wire.CodeProhibited)
	// A subscribes and gets "one" in flight; a third session's ACK of it
	// is refused and changes nothing.
	a.Subscribe(ctx, q.sub)
	ev := nextEvent(t, a, client.EventMessage)
	if string(ev.Message.Body) != "one" {
		t.Fatalf("pushed %q", ev.Message.Body)
	}
	wantCode(t, dial(t, r).Ack(ctx, q.sub, ev.Message.ID), wire.CodeNoMsg)
	// B took "one" by GET: its ACK deletes it and A gets "two".
	if err := b.Ack(ctx, q.sub, m.ID); err != nil {
		t.Fatal(err)
	}
	if ev := nextEvent(t, a, client.EventMessage); string(ev.Message.Body) != "two" {
		t.Fatalf("pushed %q after the other session's ACK", ev.Message.Body)
	}
	// A's late ACK of "one" is NO_MSG: it is gone.
	wantCode(t, a.Ack(ctx, q.sub, m.ID), wire.CodeNoMsg)
}

// TestSmallSemantics: a password sent to a relay without one is ignored;
// PING must not be signed; OFF twice is OK.
func TestSmallSemantics(t *testing.T) {
	r := startRelay(t, nil)
	c := dial(t, r)
	keys, _ := client.NewRecipientKeys()
	if _, err := c.New(ctxT(t), keys, []byte("unneeded")); err != nil {
		t.Fatalf("NEW with a password to a relay without one: %v", err)
	}
	raw := dialRaw(t, r)
	wantAnswer(t, raw.call(raw.tx(nil, wire.Command{Kind: wire.CmdPING}, keys.Auth)), wire.AnsERR, wire.CodeCmd)
	wantAnswer(t, raw.call(raw.tx(nil, wire.Command{Kind: wire.CmdPING}, nil)), wire.AnsPONG, 0)
	q := newQueue(t, c, true)
	for range 2 {
		if err := c.Suspend(ctxT(t), q.sub); err != nil {
			t.Fatal(err)
		}
	}
}

// TestFatalBlockAnswersEarlierOnes: the commands of a good block are
// answered before the connection is closed for a bad one that follows.
func TestFatalBlockAnswersEarlierOnes(t *testing.T) {
	r := startRelay(t, nil)
	c := dial(t, r)
	q := newQueue(t, c, true)
	raw := dialRaw(t, r)
	raw.send(raw.tx(q.info.SndID[:], wire.Command{Kind: wire.CmdSEND, Body: []byte("kept")}, q.sndKey))
	if err := raw.ws.Write(ctxT(t), websocket.MessageBinary, make([]byte, wire.BlockSize)); err != nil {
		t.Fatal(err)
	}
	wantAnswer(t, parse(t, raw.recv()[0]), wire.AnsOK, 0)
	if code, reason := raw.closeReason(); code != websocket.StatusPolicyViolation || reason != "block authentication failed" {
		t.Fatalf("closed with %v %q", code, reason)
	}
	m, ok, err := c.Get(ctxT(t), q.sub)
	if err != nil || !ok || string(m.Body) != "kept" {
		t.Fatalf("GET: %v %v %q", err, ok, m.Body)
	}
}

// lockedBuffer is a log sink safe for concurrent writes.
type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

// TestCloseDrainsCommands: Close starts no further command, lets those in
// progress finish and writes their answers before the going-away close,
// and returns only then, so closing the store right after fails none of
// them ("database not open" before the fix) and every message stored was
// answered OK (answers were lost before).
func TestCloseDrainsCommands(t *testing.T) {
	var logs lockedBuffer
	r := startRelay(t, func(c *relay.Config) {
		c.Logger = slog.New(slog.NewTextHandler(&logs, nil))
		c.Limits.QueueQuota = 1 << 20
	})
	c := dial(t, r)
	q := newQueue(t, c, true)
	var raws []*rawConn
	oks := make(chan int, 4)
	for range 4 {
		raw := dialRaw(t, r)
		raws = append(raws, raw)
		go func() {
			n := 0
			defer func() { oks <- n }()
			for {
				_, b, err := raw.ws.Read(context.Background())
				if err != nil {
					if websocket.CloseStatus(err) != websocket.StatusGoingAway {
						n = -1 // not the going-away close
					}
					return
				}
				p, err := raw.sess.Open(b)
				if err != nil {
					n = -1
					return
				}
				ts, _ := wire.SplitBlock(p)
				for _, x := range ts {
					if tr, err := wire.ParseTransmission(x); err == nil && tr.Command.Kind == wire.AnsOK {
						n++
					}
				}
			}
		}()
	}
	for i := range 20 {
		for _, raw := range raws {
			var txs [][]byte
			for range 60 {
				txs = append(txs, raw.tx(q.info.SndID[:], wire.Command{Kind: wire.CmdSEND, Body: make([]byte, 100)}, q.sndKey))
			}
			raw.send(txs...)
		}
		if i == 10 {
			break
		}
	}
	_ = r.srv.Close()
	_, stored, err := r.st.Counts()
	if err != nil {
		t.Fatal(err)
	}
	if err := r.st.Close(); err != nil {
		t.Fatal(err)
	}
	answered := 0
	for range raws {
		n := <-oks
		if n < 0 {
			t.Fatal("a session did not end with the going-away close")
		}
		answered += n
	}
	if int64(answered) != stored {
		t.Fatalf("%d messages stored, %d SENDs answered OK", stored, answered)
	}
	if strings.Contains(logs.String(), "store operation failed") {
		t.Fatalf("commands failed on a closed store:\n%s", logs.String())
	}
	t.Logf("%d SENDs stored and answered before the close", stored)
}

// TestLimitsValidated: limits that would stall the relay are refused.
func TestLimitsValidated(t *testing.T) {
	for name, mod := range map[string]func(*relay.Limits){
		"output below one block": func(l *relay.Limits) { l.MaxPendingBytes = wire.BlockPayloadSize - 1 },
		"no write deadline":      func(l *relay.Limits) { l.WriteTimeout = 0 },
		"negative NEW budget":    func(l *relay.Limits) { l.NewPerMinuteAddr = -1 },
	} {
		l := relay.DefaultLimits()
		mod(&l)
		_, id, _ := ed25519.GenerateKey(nil)
		st, err := store.Open(t.TempDir() + "/q.db")
		if err != nil {
			t.Fatal(err)
		}
		if _, err := relay.New(relay.Config{Identity: id, Store: st, Limits: l}); !errors.Is(err, relay.ErrConfig) {
			t.Errorf("%s: %v", name, err)
		}
		_ = st.Close()
	}
}

// TestGetHeldLimit: a session holds at most MaxSubsPerConn queues'
// messages taken by GET and not acknowledged; an ACK makes room.
func TestGetHeldLimit(t *testing.T) {
	r := startRelay(t, func(c *relay.Config) { c.Limits.MaxSubsPerConn = 2 })
	c := dial(t, r)
	ctx := ctxT(t)
	var qs []*queue
	for range 3 {
		q := newQueue(t, c, true)
		if err := c.Send(ctx, q.info.SndID, q.sndKey, []byte("m")); err != nil {
			t.Fatal(err)
		}
		qs = append(qs, q)
	}
	getter := dial(t, r)
	first, _, err := getter.Get(ctx, qs[0].sub)
	if err != nil {
		t.Fatal(err)
	}
	if _, _, err := getter.Get(ctx, qs[1].sub); err != nil {
		t.Fatal(err)
	}
	_, _, err = getter.Get(ctx, qs[2].sub)
	wantCode(t, err, wire.CodeLimit)
	if err := getter.Ack(ctx, qs[0].sub, first.ID); err != nil {
		t.Fatal(err)
	}
	if _, ok, err := getter.Get(ctx, qs[2].sub); err != nil || !ok {
		t.Fatalf("GET after an ACK made room: %v %v", ok, err)
	}
}
