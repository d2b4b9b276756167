package files_test

import (
	"crypto/ed25519"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"sync"
	"testing"
	"time"

	"github.com/coder/websocket"
	"github.com/wisp-chat/wisp/server/relay/files"
	"github.com/wisp-chat/wisp/server/wire"
	"github.com/wisp-chat/wisp/server/wire/client"
)

// TestFNEWFloodReservesNothing (issue 11, item 2): FNEWs of the largest
// class up to a session's limit reserve none of the quota; honest uploads
// still fit. Before, two such FNEWs took the whole quota and the upload
// below got QUOTA.
func TestFNEWFloodReservesNothing(t *testing.T) {
	lim := files.DefaultLimits()
	class := int64(wire.Class4M.Size())
	r := startRelay(t, 2*class+64<<10, nil)
	attacker := dial(t, r)
	ctx := ctxT(t)
	for i := range lim.MaxUnfilledPerConn {
		if _, _, err := attacker.CreateChunk(ctx, wire.Class4M, 1, nil); err != nil {
			t.Fatalf("FNEW %d: %v", i, err)
		}
	}
	if _, _, err := attacker.CreateChunk(ctx, wire.Class4M, 1, nil); !errors.Is(err, wire.CodeLimit) {
		t.Fatalf("FNEW past MaxUnfilledPerConn: %v", err)
	}
	honest := dial(t, r)
	for range 2 {
		uploaded(t, honest, wire.Class4M, 1)
	}
	want := 2*class + int64(lim.MaxUnfilledPerConn+2)*files.MetadataCost(1)
	if used, n, _ := r.st.Usage(); used != want || n != int64(lim.MaxUnfilledPerConn+2) {
		t.Fatalf("usage %d bytes %d chunks, want %d bytes", used, n, want)
	}
}

// TestUnfilledExpiry: a chunk not uploaded goes after UnfilledRetention,
// with its records; an uploaded one stays until Retention.
func TestUnfilledExpiry(t *testing.T) {
	r := startRelay(t, 64*mib, nil)
	c := dial(t, r)
	ctx := ctxT(t)
	lim := files.DefaultLimits()
	snd, rcpts, err := c.CreateChunk(ctx, wire.Class64K, 1, nil)
	if err != nil {
		t.Fatal(err)
	}
	_, kept, data := uploaded(t, c, wire.Class64K, 1)
	if n, err := r.srv.Sweep(time.Now().Add(lim.UnfilledRetention - time.Minute)); err != nil || n != 0 {
		t.Fatalf("early sweep: %d %v", n, err)
	}
	if n, err := r.srv.Sweep(time.Now().Add(lim.UnfilledRetention + time.Minute)); err != nil || n != 1 {
		t.Fatalf("sweep: %d %v", n, err)
	}
	if err := c.Upload(ctx, snd, randomChunk(t, wire.Class64K)); !errors.Is(err, wire.CodeAuth) {
		t.Fatalf("upload after the unfilled chunk expired: %v", err)
	}
	if _, err := c.Download(ctx, rcpts[0]); !errors.Is(err, wire.CodeAuth) {
		t.Fatalf("download of the expired chunk: %v", err)
	}
	if got, err := c.Download(ctx, kept[0]); err != nil || string(got) != string(data) {
		t.Fatalf("uploaded chunk after the sweep: %v", err)
	}
	if used, n, _ := r.st.Usage(); used != int64(wire.Class64K.Size())+files.MetadataCost(1) || n != 1 {
		t.Fatalf("usage %d bytes %d chunks", used, n)
	}
}

// TestFNEWBudgets hits each FNEW limit: the session's budget, the
// relay's, and the session's unfilled chunks. The clock stands still, so
// nothing refills unless the test moves it.
func TestFNEWBudgets(t *testing.T) {
	create := func(t *testing.T, c *client.FileClient) (client.SenderChunk, error) {
		t.Helper()
		s, _, err := c.CreateChunk(ctxT(t), wire.Class64K, 1, nil)
		return s, err
	}
	must := func(t *testing.T, c *client.FileClient) client.SenderChunk {
		t.Helper()
		s, err := create(t, c)
		if err != nil {
			t.Fatal(err)
		}
		return s
	}
	limited := func(t *testing.T, c *client.FileClient, what string) {
		t.Helper()
		if _, err := create(t, c); !errors.Is(err, wire.CodeLimit) {
			t.Fatalf("%s: %v, want LIMIT", what, err)
		}
	}
	t.Run("session", func(t *testing.T) {
		clk := newClock()
		r := startRelay(t, 64*mib, func(c *files.Config) {
			files.WithClock(c, clk.Now)
			c.Limits.FNEWPerConnPerMinute = 3
		})
		c := dial(t, r)
		var made []client.SenderChunk
		for range 3 {
			made = append(made, must(t, c))
		}
		limited(t, c, "4th FNEW")
		must(t, dial(t, r)) // another session has its own budget
		if err := c.Upload(ctxT(t), made[0], randomChunk(t, wire.Class64K)); err != nil {
			t.Fatal(err)
		}
		made = append(made, must(t, c)) // the upload gave the token back
		limited(t, c, "after the given-back token")
		if err := c.Upload(ctxT(t), made[0], randomChunk(t, wire.Class64K)); !errors.Is(err, wire.CodeProhibited) {
			t.Fatalf("upload of other bytes: %v", err)
		}
		if err := c.DeleteChunk(ctxT(t), made[1]); err != nil {
			t.Fatal(err)
		}
		limited(t, c, "after FDEL (which gives nothing back)")
		clk.Advance(20 * time.Second) // 3 per minute: one token
		must(t, c)
		limited(t, c, "after the refilled token")
	})
	t.Run("relay", func(t *testing.T) {
		clk := newClock()
		r := startRelay(t, 64*mib, func(c *files.Config) {
			files.WithClock(c, clk.Now)
			c.Limits.FNEWPerMinute = 5
		})
		a, b := dial(t, r), dial(t, r)
		var made []client.SenderChunk
		for range 3 {
			made = append(made, must(t, a))
		}
		must(t, b)
		must(t, b)
		limited(t, b, "6th FNEW on the relay")
		limited(t, a, "6th FNEW on the relay, other session")
		if err := a.Upload(ctxT(t), made[0], randomChunk(t, wire.Class64K)); err != nil {
			t.Fatal(err)
		}
		must(t, b) // a's upload gave a token back to the relay
		limited(t, b, "after the given-back token")
		clk.Advance(12 * time.Second) // 5 per minute: one token
		must(t, a)
		limited(t, a, "after the refilled token")
	})
	t.Run("unfilled", func(t *testing.T) {
		clk := newClock()
		r := startRelay(t, 64*mib, func(c *files.Config) {
			files.WithClock(c, clk.Now)
			c.Limits.MaxUnfilledPerConn = 2
		})
		c := dial(t, r)
		x, y := must(t, c), must(t, c)
		limited(t, c, "3rd unfilled chunk")
		if err := c.Upload(ctxT(t), x, randomChunk(t, wire.Class64K)); err != nil {
			t.Fatal(err)
		}
		must(t, c)
		limited(t, c, "after an upload")
		if err := c.DeleteChunk(ctxT(t), y); err != nil {
			t.Fatal(err)
		}
		must(t, c)
		limited(t, c, "after a delete")
		// Unfilled chunks that expired no longer count.
		if n, err := r.srv.Sweep(time.Now().Add(files.DefaultLimits().UnfilledRetention + time.Minute)); err != nil || n != 2 {
			t.Fatalf("sweep: %d %v", n, err)
		}
		must(t, c)
		must(t, c)
		limited(t, c, "after the sweep")
	})
}

// TestHonestUploadWithinLimits: a client that creates each chunk just
// before uploading it, 16 uploads in flight, never meets the FNEW limits
// with their defaults, even with no refill at all (the clock stands
// still). 125 chunks are the command pattern of a 500 MiB file in 4 MiB
// chunks; the limits do not depend on the class, so 64 KiB chunks keep the
// test small.
func TestHonestUploadWithinLimits(t *testing.T) {
	const chunks, inFlight = 125, 16
	clk := newClock()
	r := startRelay(t, 64*mib, func(c *files.Config) { files.WithClock(c, clk.Now) })
	c := dial(t, r)
	ctx := ctxT(t)
	jobs := make(chan struct{})
	errs := make(chan error, chunks)
	var wg sync.WaitGroup
	for range inFlight {
		wg.Go(func() {
			data := randomChunk(t, wire.Class64K)
			for range jobs {
				snd, _, err := c.CreateChunk(ctx, wire.Class64K, 1, nil)
				if err == nil {
					err = c.Upload(ctx, snd, data)
				}
				if err != nil {
					errs <- err
				}
			}
		})
	}
	for range chunks {
		jobs <- struct{}{}
	}
	close(jobs)
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	if _, n, _ := r.st.Usage(); n != chunks {
		t.Fatalf("%d chunks stored", n)
	}
}

// stallDownloads opens n sessions that each ask for the chunk gets times
// and never read.
func stallDownloads(t *testing.T, r *testRelay, rc client.RecipientChunk, n, gets int) []*raw {
	t.Helper()
	var out []*raw
	for range n {
		rw := dialRaw(t, r)
		for range gets {
			rw.send(wire.ClassControl, wire.FileTransmission{EntityID: rc.RcvID[:], Command: wire.FileCommand{Kind: wire.CmdFGET}}, rc.Key)
		}
		out = append(out, rw)
	}
	return out
}

// TestFGETStallDoesNotBlockUploads (issue 11, item 3): sessions that ask
// for a chunk 16 times each and never read hold only their share of the
// chunk slots, and an honest 64 KiB FPUT goes through while they stall.
// Neither the keepalive nor the write deadline ends the stall here.
// Before, 8 such sessions held all 64 slots and the FPUT waited for the
// keepalive to drop them (34.5 s). With the 8 sessions the
// per-session share is what leaves room; with more stalled sessions than
// the shares add up to, the downloads' 3/4 of the slots is. The FPUT's
// latency is logged, not asserted.
func TestFGETStallDoesNotBlockUploads(t *testing.T) {
	const gets = 16
	for _, tc := range []struct {
		name                  string
		maxChunkOps, sessions int
	}{
		{"issue: 8 sessions, default slots", files.DefaultLimits().MaxChunkOps, 8},
		{"more stalled sessions than the downloads' share", 16, 4},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := startRelayOn(t, 64*mib, func(c *files.Config) {
				c.Limits.PingInterval, c.Limits.WriteTimeout = time.Hour, time.Hour
				c.Limits.MaxChunkOps = tc.maxChunkOps
			}, smallSendBuffers)
			lim := files.DefaultLimits()
			c := dial(t, r)
			ctx := ctxT(t)
			_, rcpts, _ := uploaded(t, c, wire.Class1M, 1)
			data := randomChunk(t, wire.Class64K)
			put := func() time.Duration {
				t.Helper()
				snd, _, err := c.CreateChunk(ctx, wire.Class64K, 1, nil)
				if err != nil {
					t.Fatal(err)
				}
				start := time.Now()
				if err := c.Upload(ctx, snd, data); err != nil {
					t.Fatal(err)
				}
				return time.Since(start)
			}
			quiet := put()
			stallDownloads(t, r, rcpts[0], tc.sessions, gets)
			want := min(tc.sessions*lim.MaxChunkOpsPerConn, tc.maxChunkOps-tc.maxChunkOps/4)
			waitFor(t, "the stalled downloads to hold their slots", func() bool {
				n := r.srv.ChunkOpsInUse()
				if n > want {
					t.Fatalf("%d chunk slots held by %d stalled sessions, want at most %d", n, tc.sessions, want)
				}
				return n == want
			})
			during := put()
			if n := r.srv.Connections(); n != tc.sessions+1 {
				t.Fatalf("%d sessions open: stalled ones were dropped before the upload went through", n)
			}
			// The upload's slot is given back just after its answer.
			waitFor(t, "the stalled downloads still to hold their slots", func() bool { return r.srv.ChunkOpsInUse() == want })
			t.Logf("honest 64 KiB FPUT: %v without the stall, %v with %d sessions × %d FGETs not reading (%d of %d slots held)",
				quiet, during, tc.sessions, gets, want, tc.maxChunkOps)
		})
	}
}

// TestWriteTimeout: a session that does not read its downloads is closed
// once a frame is not written within WriteTimeout, and its slots are
// free again; the honest session stays.
func TestWriteTimeout(t *testing.T) {
	r := startRelayOn(t, 64*mib, func(c *files.Config) {
		c.Limits.PingInterval, c.Limits.WriteTimeout = time.Hour, scaled(300*time.Millisecond)
	}, smallSendBuffers)
	c := dial(t, r)
	_, rcpts, _ := uploaded(t, c, wire.Class1M, 1)
	stalled := stallDownloads(t, r, rcpts[0], 1, 16)[0]
	waitFor(t, "the stalled session to be dropped", func() bool { return r.srv.Connections() == 1 })
	waitFor(t, "its slots to be free", func() bool { return r.srv.ChunkOpsInUse() == 0 })
	// What the relay wrote before the deadline is there; then the
	// connection ends without a close frame (none could get through).
	for {
		if _, _, err := stalled.ws.Read(ctxT(t)); err != nil {
			var ce websocket.CloseError
			if errors.As(err, &ce) {
				t.Fatalf("close frame after a write timeout: %v", ce)
			}
			break
		}
	}
	if err := c.Ping(ctxT(t)); err != nil {
		t.Fatalf("honest session: %v", err)
	}
}

// TestCloseDrains (issue 11, item 12): Close returns only once every
// command in progress has finished, so the store can be closed after it
// (before, commands still ran: "database not open" on SIGTERM).
func TestCloseDrains(t *testing.T) {
	r := startRelayOn(t, 64*mib, func(c *files.Config) {
		c.Limits.PingInterval, c.Limits.WriteTimeout = time.Hour, time.Hour
		c.Limits.DrainTimeout = 100 * time.Millisecond // they never read
	}, smallSendBuffers)
	_, rcpts, _ := uploaded(t, dial(t, r), wire.Class1M, 1)
	lim := files.DefaultLimits()
	const sessions = 4
	stallDownloads(t, r, rcpts[0], sessions, 16)
	waitFor(t, "the downloads to stall", func() bool { return r.srv.ChunkOpsInUse() == sessions*lim.MaxChunkOpsPerConn })
	if err := r.srv.Close(); err != nil {
		t.Fatal(err)
	}
	if n := r.srv.ChunkOpsInUse(); n != 0 {
		t.Fatalf("Close returned with %d downloads in progress", n)
	}
	if err := r.st.Close(); err != nil {
		t.Fatal(err)
	}
}

// TestLowOrderRecipientKey (issue 11, item 12): FNEW with an all-zero or
// other low-order X25519 recipient key is CMD and creates nothing (the
// box key of its downloads would be public).
func TestLowOrderRecipientKey(t *testing.T) {
	r := startRelay(t, 64*mib, nil)
	rw := dialRaw(t, r)
	_, sk, _ := ed25519.GenerateKey(rand.Reader)
	good, err := client.NewRecipientKeys()
	if err != nil {
		t.Fatal(err)
	}
	fnew := func(dh [32]byte) wire.FileTransmission {
		cmd := wire.FileCommand{Kind: wire.CmdFNEW, Class: wire.Class64K, Recipients: make([]wire.ChunkRecipientKey, 2)}
		copy(cmd.AuthKey[:], sk.Public().(ed25519.PublicKey))
		for i := range cmd.Recipients {
			copy(cmd.Recipients[i].Auth[:], good.Auth.Public().(ed25519.PublicKey))
			copy(cmd.Recipients[i].DH[:], good.DH.PublicKey().Bytes())
		}
		cmd.Recipients[1].DH = dh
		return wire.FileTransmission{Command: cmd}
	}
	for _, h := range []string{
		"0000000000000000000000000000000000000000000000000000000000000000", // 0
		"0100000000000000000000000000000000000000000000000000000000000000", // 1
		"e0eb7a7c3b41b8ae1656e3faf19fc46ada098deb9c32b1fd866205165f49b800", // order 8
		"5f9c95bca3508c24b1d0b1559c83ef5b04445cc4581c8e86d8224eddd09f1157", // order 8
		"ecffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff7f", // p − 1
		"edffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff7f", // p (0)
		"eeffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff7f", // p + 1 (1)
	} {
		b, _ := hex.DecodeString(h)
		rw.send(wire.ClassControl, fnew([32]byte(b)), sk)
		rw.expectErr(wire.CodeCmd)
	}
	expectEmpty(t, r)
	rw.send(wire.ClassControl, fnew([32]byte(good.DH.PublicKey().Bytes())), sk)
	if tr, _ := rw.recv(); tr.Command.Kind != wire.AnsFIDS {
		t.Fatalf("valid keys: %s %s", tr.Command.Kind, tr.Command.Code)
	}
}

// TestAckBeforeUpload: FACK of a chunk not uploaded yet is NO_MSG and
// changes nothing (before, acknowledging every recipient deleted the
// chunk before its upload).
func TestAckBeforeUpload(t *testing.T) {
	r := startRelay(t, 64*mib, nil)
	c := dial(t, r)
	ctx := ctxT(t)
	snd, rcpts, err := c.CreateChunk(ctx, wire.Class64K, 2, nil)
	if err != nil {
		t.Fatal(err)
	}
	for _, rc := range rcpts {
		if err := c.Ack(ctx, rc); !errors.Is(err, wire.CodeNoMsg) {
			t.Fatalf("ack before upload: %v", err)
		}
	}
	data := randomChunk(t, wire.Class64K)
	if err := c.Upload(ctx, snd, data); err != nil {
		t.Fatalf("upload after early acks: %v", err)
	}
	for _, rc := range rcpts {
		if got, err := c.Download(ctx, rc); err != nil || string(got) != string(data) {
			t.Fatalf("download: %v", err)
		}
		if err := c.Ack(ctx, rc); err != nil {
			t.Fatal(err)
		}
	}
	expectEmpty(t, r)
}

// TestHandshakeCloseReasons (SPEC §11.1): the handshake blocks of a file
// session are read as on the queue endpoint and closed with §1's reasons.
func TestHandshakeCloseReasons(t *testing.T) {
	r := startRelay(t, 64*mib, nil)
	hello := func(t *testing.T, typ websocket.MessageType, n int) string {
		ws, _, err := websocket.Dial(ctxT(t), r.addr.FilesURL(), nil)
		if err != nil {
			t.Fatal(err)
		}
		defer ws.CloseNow()
		_ = ws.Write(ctxT(t), typ, make([]byte, n))
		return (&raw{t: t, ws: ws}).closeReason()
	}
	for _, tc := range []struct {
		name string
		typ  websocket.MessageType
		n    int
		want string
	}{
		{"short hello", websocket.MessageBinary, 100, "block size must be 16384"},
		{"hello of a chunk frame's size", websocket.MessageBinary, wire.Class64K.FrameSize(), "block size must be 16384"},
		{"hello of the largest frame's size", websocket.MessageBinary, wire.MaxFrameSize, "block size must be 16384"},
		{"text hello", websocket.MessageText, wire.BlockSize, "binary blocks only"},
		{"zero hello", websocket.MessageBinary, wire.BlockSize, "bad client hello"},
	} {
		if got := hello(t, tc.typ, tc.n); got != tc.want {
			t.Errorf("%s: closed with %q, want %q", tc.name, got, tc.want)
		}
	}
	// A confirmation that is no block.
	ws, _, err := websocket.Dial(ctxT(t), r.addr.FilesURL(), nil)
	if err != nil {
		t.Fatal(err)
	}
	defer ws.CloseNow()
	_, b, err := wire.NewClientHandshake(r.addr.KeyHash)
	if err != nil {
		t.Fatal(err)
	}
	if err := ws.Write(ctxT(t), websocket.MessageBinary, b); err != nil {
		t.Fatal(err)
	}
	if _, _, err := ws.Read(ctxT(t)); err != nil {
		t.Fatal(err)
	}
	_ = ws.Write(ctxT(t), websocket.MessageBinary, make([]byte, 100))
	if got := (&raw{t: t, ws: ws}).closeReason(); got != "block size must be 16384" {
		t.Errorf("short confirmation: closed with %q", got)
	}
}

// TestClosingSessionFreesChunkSlots: a session closed while its reader
// holds a chunk slot for an FPUT frame and waits for a command slot gives
// the chunk slot back. Before, that slot was lost for good, and 64 such
// sessions stopped every upload and download on the relay.
func TestClosingSessionFreesChunkSlots(t *testing.T) {
	for _, end := range []string{"write timeout", "relay shutdown"} {
		t.Run(end, func(t *testing.T) {
			r := startRelayOn(t, 64*mib, func(c *files.Config) {
				c.Limits.MaxInFlight, c.Limits.PingInterval, c.Limits.WriteTimeout = 1, time.Hour, time.Hour
				if end == "write timeout" {
					// Long enough for the FPUT frame to arrive first on a busy machine.
					c.Limits.WriteTimeout = scaled(2 * time.Second)
				}
			}, smallSendBuffers)
			c := dial(t, r)
			snd, rcpts, data := uploaded(t, c, wire.Class1M, 1)
			rw := dialRawSmallWindow(t, r)
			// The FGET's answer blocks (its one command slot stays taken);
			// the FPUT that follows takes a chunk slot and waits.
			rw.send(wire.ClassControl, wire.FileTransmission{EntityID: rcpts[0].RcvID[:], Command: wire.FileCommand{Kind: wire.CmdFGET}}, rcpts[0].Key)
			rw.send(wire.Class1M, wire.FileTransmission{EntityID: snd.SndID[:], Command: wire.FileCommand{Kind: wire.CmdFPUT, Data: data}}, snd.Key)
			if end == "relay shutdown" {
				waitFor(t, "the FGET and the FPUT to hold their slots", func() bool { return r.srv.ChunkOpsInUse() == 2 })
				if err := r.srv.Close(); err != nil {
					t.Fatal(err)
				}
				if n := r.srv.ChunkOpsInUse(); n != 0 {
					t.Fatalf("%d chunk slots held after Close", n)
				}
				return
			}
			waitFor(t, "the session to be dropped", func() bool { return r.srv.Connections() == 1 })
			waitFor(t, "every chunk slot to be free", func() bool { return r.srv.ChunkOpsInUse() == 0 })
		})
	}
}

// TestShutdownAnswersUploads: Close lets the uploads in progress finish
// and answers them before it closes the sessions, so every chunk stored
// as uploaded was answered OK to its client.
func TestShutdownAnswersUploads(t *testing.T) {
	r := startRelay(t, 256*mib, nil)
	c := dial(t, r)
	ctx := ctxT(t)
	snds := make([]client.SenderChunk, 24)
	for i := range snds {
		snd, _, err := c.CreateChunk(ctx, wire.Class64K, 1, nil)
		if err != nil {
			t.Fatal(err)
		}
		snds[i] = snd
	}
	results := make([]error, len(snds))
	var wg sync.WaitGroup
	for i, snd := range snds {
		data := randomChunk(t, wire.Class64K)
		wg.Go(func() { results[i] = c.Upload(ctx, snd, data) })
	}
	uploadedCount := func() (n int) {
		for _, snd := range snds {
			if ch, err := r.st.BySender(files.SenderKeyOf(snd.SndID)); err == nil && ch.Uploaded {
				n++
			}
		}
		return n
	}
	waitFor(t, "a first upload stored", func() bool { return uploadedCount() > 0 })
	if err := r.srv.Close(); err != nil {
		t.Fatal(err)
	}
	_ = c.Close()
	wg.Wait()
	answered := 0
	for i, snd := range snds {
		ch, err := r.st.BySender(files.SenderKeyOf(snd.SndID))
		stored := err == nil && ch.Uploaded
		if stored && results[i] != nil {
			t.Errorf("upload %d stored but answered %v", i, results[i])
		}
		if results[i] == nil {
			answered++
			if !stored {
				t.Errorf("upload %d answered OK but not stored", i)
			}
		}
	}
	t.Logf("%d of %d uploads stored and answered before the shutdown", answered, len(snds))
}
