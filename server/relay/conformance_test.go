package relay_test

import (
	"bytes"
	"testing"
	"time"

	"github.com/wisp-chat/wisp/server/relay"
	"github.com/wisp-chat/wisp/server/wire"
	"github.com/wisp-chat/wisp/server/wire/client"
)

func TestQueueLifecycle(t *testing.T) {
	r := startRelay(t, nil)
	rcv, snd := dial(t, r), dial(t, r)
	ctx := ctxT(t)
	q := newQueue(t, rcv, false)

	// SEND before SKEY: the queue is not secured.
	wantCode(t, snd.Send(ctx, q.info.SndID, q.sndKey, []byte("x")), wire.CodeAuth)
	if err := snd.Secure(ctx, q.info.SndID, q.sndKey); err != nil {
		t.Fatal(err)
	}
	// A retried SKEY with the same key is fine, another key is not.
	if err := snd.Secure(ctx, q.info.SndID, q.sndKey); err != nil {
		t.Fatal(err)
	}
	other := newQueue(t, rcv, false)
	wantCode(t, snd.Secure(ctx, q.info.SndID, other.sndKey), wire.CodeAuth)

	for _, body := range []string{"one", "two", "three"} {
		if err := snd.Send(ctx, q.info.SndID, q.sndKey, []byte(body)); err != nil {
			t.Fatal(err)
		}
	}
	if errs := rcv.Subscribe(ctx, q.sub); errs[0] != nil {
		t.Fatal(errs[0])
	}
	for i, want := range []string{"one", "two", "three"} {
		ev := nextEvent(t, rcv, client.EventMessage)
		if i == 0 {
			// SUB again on the same session: OK, and no second copy.
			if err := rcv.Subscribe(ctx, q.sub)[0]; err != nil {
				t.Fatal(err)
			}
			noEvent(t, rcv, 50*time.Millisecond, client.EventMessage)
		}
		if ev.Err != nil || string(ev.Message.Body) != want || ev.RcvID != q.info.RcvID {
			t.Fatalf("got %q %v, want %q", ev.Message.Body, ev.Err, want)
		}
		if time.Since(ev.Message.Time) > time.Minute {
			t.Fatalf("timestamp %v", ev.Message.Time)
		}
		// One in flight: nothing more until ACK.
		noEvent(t, rcv, 50*time.Millisecond, client.EventMessage)
		wantCode(t, rcv.Ack(ctx, q.sub, wire.MsgID{1}), wire.CodeNoMsg)
		if err := rcv.Ack(ctx, q.sub, ev.Message.ID); err != nil {
			t.Fatal(err)
		}
	}
	// A message sent while subscribed and idle arrives at once.
	if err := snd.Send(ctx, q.info.SndID, q.sndKey, []byte("live")); err != nil {
		t.Fatal(err)
	}
	ev := nextEvent(t, rcv, client.EventMessage)
	if string(ev.Message.Body) != "live" {
		t.Fatalf("got %q", ev.Message.Body)
	}
	// GET is prohibited on a queue this session subscribed to.
	_, _, err := rcv.Get(ctx, q.sub)
	wantCode(t, err, wire.CodeProhibited)
	if err := rcv.Ack(ctx, q.sub, ev.Message.ID); err != nil {
		t.Fatal(err)
	}

	// GET from another session; ACK from there too.
	getter := dial(t, r)
	if err := snd.Send(ctx, q.info.SndID, q.sndKey, []byte("got")); err != nil {
		t.Fatal(err)
	}
	ev = nextEvent(t, rcv, client.EventMessage) // the subscriber still gets it pushed
	m, ok, err := getter.Get(ctx, q.sub)
	if err != nil || !ok || string(m.Body) != "got" || m.ID != ev.Message.ID {
		t.Fatalf("GET: %q %v %v", m.Body, ok, err)
	}
	if err := getter.Ack(ctx, q.sub, m.ID); err != nil {
		t.Fatal(err)
	}
	if _, ok, err := getter.Get(ctx, q.sub); ok || err != nil {
		t.Fatalf("GET on empty queue: %v %v", ok, err)
	}
	// The subscriber's copy was acknowledged elsewhere; its ACK now fails
	// cleanly and new messages still flow.
	wantCode(t, rcv.Ack(ctx, q.sub, ev.Message.ID), wire.CodeNoMsg)
	if err := snd.Send(ctx, q.info.SndID, q.sndKey, []byte("after")); err != nil {
		t.Fatal(err)
	}
	if ev := nextEvent(t, rcv, client.EventMessage); string(ev.Message.Body) != "after" {
		t.Fatalf("got %q", ev.Message.Body)
	}

	// OFF: the sender is refused, the recipient can still delete.
	if err := rcv.Suspend(ctx, q.sub); err != nil {
		t.Fatal(err)
	}
	wantCode(t, snd.Send(ctx, q.info.SndID, q.sndKey, []byte("x")), wire.CodeAuth)
	if err := rcv.Delete(ctx, q.sub); err != nil {
		t.Fatal(err)
	}
	// Deleted: everything is AUTH.
	wantCode(t, snd.Send(ctx, q.info.SndID, q.sndKey, []byte("x")), wire.CodeAuth)
	wantCode(t, rcv.Subscribe(ctx, q.sub)[0], wire.CodeAuth)
	wantCode(t, rcv.Delete(ctx, q.sub), wire.CodeAuth)
	wantCode(t, rcv.Suspend(ctx, q.sub), wire.CodeAuth)
	_, _, err = rcv.Get(ctx, q.sub)
	wantCode(t, err, wire.CodeAuth)
	wantCode(t, rcv.Ack(ctx, q.sub, ev.Message.ID), wire.CodeAuth)
	wantCode(t, snd.Secure(ctx, q.info.SndID, q.sndKey), wire.CodeAuth)
	if err := rcv.Ping(ctx); err != nil {
		t.Fatal(err)
	}
}

func TestSubscriptionTakeover(t *testing.T) {
	r := startRelay(t, nil)
	a, b, snd := dial(t, r), dial(t, r), dial(t, r)
	ctx := ctxT(t)
	q := newQueue(t, a, true)
	if err := a.Subscribe(ctx, q.sub)[0]; err != nil {
		t.Fatal(err)
	}
	if err := snd.Send(ctx, q.info.SndID, q.sndKey, []byte("m1")); err != nil {
		t.Fatal(err)
	}
	first := nextEvent(t, a, client.EventMessage)
	if err := b.Subscribe(ctx, q.sub)[0]; err != nil {
		t.Fatal(err)
	}
	if ev := nextEvent(t, a, client.EventEnd); ev.RcvID != q.info.RcvID {
		t.Fatal("END for another queue")
	}
	// The unacknowledged message moves to the new session.
	ev := nextEvent(t, b, client.EventMessage)
	if ev.Message.ID != first.Message.ID {
		t.Fatal("in-flight message not redelivered to the new session")
	}
	if err := b.Ack(ctx, q.sub, ev.Message.ID); err != nil {
		t.Fatal(err)
	}
	if err := snd.Send(ctx, q.info.SndID, q.sndKey, []byte("m2")); err != nil {
		t.Fatal(err)
	}
	if ev := nextEvent(t, b, client.EventMessage); string(ev.Message.Body) != "m2" {
		t.Fatalf("got %q", ev.Message.Body)
	}
	noEvent(t, a, 100*time.Millisecond, client.EventMessage)

	// DEL from the new session: nothing for the old one; DEL from a
	// third session ends the subscriber's subscription.
	q2 := newQueue(t, a, true)
	if err := b.Subscribe(ctx, q2.sub)[0]; err != nil {
		t.Fatal(err)
	}
	if err := a.Delete(ctx, q2.sub); err != nil {
		t.Fatal(err)
	}
	if ev := nextEvent(t, b, client.EventEnd); ev.RcvID != q2.info.RcvID {
		t.Fatal("END for another queue after DEL")
	}
}

func TestQuotaMarker(t *testing.T) {
	r := startRelay(t, func(c *relay.Config) { c.Limits.QueueQuota = 3 })
	c := dial(t, r)
	ctx := ctxT(t)
	q := newQueue(t, c, true)
	for i := range 3 {
		if err := c.Send(ctx, q.info.SndID, q.sndKey, []byte{byte(i)}); err != nil {
			t.Fatal(err)
		}
	}
	wantCode(t, c.Send(ctx, q.info.SndID, q.sndKey, []byte("over")), wire.CodeQuota)
	wantCode(t, c.Send(ctx, q.info.SndID, q.sndKey, []byte("over")), wire.CodeQuota)
	c.Subscribe(ctx, q.sub)
	for i := range 4 {
		ev := nextEvent(t, c, client.EventMessage)
		if i < 3 && (ev.Message.Quota || !bytes.Equal(ev.Message.Body, []byte{byte(i)})) {
			t.Fatalf("message %d: %+v", i, ev.Message)
		}
		if i == 3 && (!ev.Message.Quota || len(ev.Message.Body) != 0) {
			t.Fatalf("want quota marker, got %+v", ev.Message)
		}
		if err := c.Ack(ctx, q.sub, ev.Message.ID); err != nil {
			t.Fatal(err)
		}
		if i < 3 {
			// There is room, but the marker is not acknowledged yet.
			wantCode(t, c.Send(ctx, q.info.SndID, q.sndKey, []byte("over")), wire.CodeQuota)
		}
	}
	if err := c.Send(ctx, q.info.SndID, q.sndKey, []byte("room again")); err != nil {
		t.Fatal(err)
	}
	if ev := nextEvent(t, c, client.EventMessage); string(ev.Message.Body) != "room again" {
		t.Fatalf("got %+v", ev.Message)
	}
}

func TestLimits(t *testing.T) {
	r := startRelay(t, func(c *relay.Config) {
		c.Limits.MaxSubsPerConn = 2
		c.Limits.NewPerMinute = 3
	})
	c := dial(t, r)
	ctx := ctxT(t)
	qs := []*queue{newQueue(t, c, false), newQueue(t, c, false), newQueue(t, c, false)}
	keys, _ := client.NewRecipientKeys()
	_, err := c.New(ctx, keys, nil)
	wantCode(t, err, wire.CodeLimit)
	errs := c.Subscribe(ctx, qs[0].sub, qs[1].sub)
	if errs[0] != nil || errs[1] != nil {
		t.Fatal(errs)
	}
	wantCode(t, c.Subscribe(ctx, qs[2].sub)[0], wire.CodeLimit)
	// Re-subscribing a queue already held does not count twice.
	if err := c.Subscribe(ctx, qs[0].sub)[0]; err != nil {
		t.Fatal(err)
	}
	// Another connection is not affected by either limit.
	other := dial(t, r)
	newQueue(t, other, false)
	if err := other.Subscribe(ctx, qs[2].sub)[0]; err != nil {
		t.Fatal(err)
	}
}

func TestPassword(t *testing.T) {
	r := startRelay(t, func(c *relay.Config) { c.Password = []byte("s3cret") })
	c := dial(t, r)
	ctx := ctxT(t)
	keys, _ := client.NewRecipientKeys()
	_, err := c.New(ctx, keys, nil)
	wantCode(t, err, wire.CodeAuth)
	_, err = c.New(ctx, keys, []byte("s3creT"))
	wantCode(t, err, wire.CodeAuth)
	if _, err := c.New(ctx, keys, []byte("s3cret")); err != nil {
		t.Fatal(err)
	}
}

func TestMaxConns(t *testing.T) {
	r := startRelay(t, func(c *relay.Config) { c.Limits.MaxConns = 1 })
	dial(t, r)
	if _, err := client.Dial(ctxT(t), r.addr, client.Options{}); err == nil {
		t.Fatal("second connection accepted over the limit")
	}
}
