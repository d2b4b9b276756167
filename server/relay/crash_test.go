package relay_test

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	mrand "math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/wisp-chat/wisp/server/wire"
	"github.com/wisp-chat/wisp/server/wire/client"
)

type relayProcess struct {
	cmd  *exec.Cmd
	addr wire.Address
}

func startRelayProcess(t *testing.T, bin, dir string) *relayProcess {
	t.Helper()
	cmd := exec.Command(bin, "-listen", "127.0.0.1:0", "-data", dir)
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	cmd.Stderr = os.Stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = cmd.Process.Kill(); _ = cmd.Wait() })
	line, err := bufio.NewReader(out).ReadString('\n')
	if err != nil {
		t.Fatalf("reading relay address: %v", err)
	}
	s, ok := strings.CutPrefix(strings.TrimSpace(line), "relay address: ")
	if !ok {
		t.Fatalf("unexpected first line %q", line)
	}
	addr, err := wire.ParseAddress(s)
	if err != nil {
		t.Fatal(err)
	}
	return &relayProcess{cmd: cmd, addr: addr}
}

func (p *relayProcess) kill(t *testing.T) {
	t.Helper()
	if err := p.cmd.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	_ = p.cmd.Wait()
}

func buildRelay(t *testing.T) string {
	t.Helper()
	bin := filepath.Join(t.TempDir(), "wisp-relay")
	out, err := exec.Command("go", "build", "-o", bin, "github.com/wisp-chat/wisp/server/cmd/wisp-relay").CombinedOutput()
	if err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	return bin
}

// deliveries records what a subscriber saw across relay restarts.
type deliveries struct {
	mu     sync.Mutex
	bodies map[string]wire.MsgID // body → the message ID it was stored under
	count  map[wire.MsgID]int    // deliveries per message ID
	acked  map[wire.MsgID]bool   // ACK answered OK: deleted for good
	errs   []string
}

func (d *deliveries) see(ev client.Event) {
	d.mu.Lock()
	defer d.mu.Unlock()
	if ev.Err != nil {
		d.errs = append(d.errs, ev.Err.Error())
		return
	}
	id := ev.Message.ID
	if d.acked[id] {
		d.errs = append(d.errs, fmt.Sprintf("message %q delivered again after its ACK was answered OK", ev.Message.Body))
	}
	d.count[id]++
	if ev.Message.Quota {
		return
	}
	body := string(ev.Message.Body)
	if prev, ok := d.bodies[body]; ok && prev != id {
		d.errs = append(d.errs, fmt.Sprintf("%q stored twice", body))
	}
	d.bodies[body] = id
}

// has reports whether every body in want has been delivered.
func (d *deliveries) has(want map[string]bool) bool {
	d.mu.Lock()
	defer d.mu.Unlock()
	for body := range want {
		if _, ok := d.bodies[body]; !ok {
			return false
		}
	}
	return true
}

func (d *deliveries) ack(id wire.MsgID) {
	d.mu.Lock()
	d.acked[id] = true
	d.mu.Unlock()
}

// receive subscribes to every queue and acknowledges what arrives until
// ctx ends or, once every body in want has arrived, nothing more arrives
// for idle (if idle > 0).
func (d *deliveries) receive(ctx context.Context, addr wire.Address, qs []*queue, idle time.Duration, want map[string]bool) error {
	c, err := client.Dial(ctx, addr, client.Options{})
	if err != nil {
		return err
	}
	defer c.Close()
	subs := make([]client.Subscription, len(qs))
	for i, q := range qs {
		subs[i] = q.sub
	}
	for _, err := range c.Subscribe(ctx, subs...) {
		if err != nil {
			return err
		}
	}
	var quiet <-chan time.Time
	for {
		if idle > 0 && d.has(want) {
			quiet = time.After(idle)
		}
		select {
		case ev := <-c.Events():
			if ev.Kind != client.EventMessage {
				continue
			}
			d.see(ev)
			if err := c.Ack(ctx, subFor(qs, ev.RcvID), ev.Message.ID); err == nil {
				d.ack(ev.Message.ID)
			}
		case <-quiet:
			return nil
		case <-ctx.Done():
			return nil
		}
	}
}

// TestCrashSafety kills the relay process with SIGKILL at random points
// while senders and a subscriber are busy, restarts it, and checks that
// every message that got OK is delivered, that no message is delivered
// again once its ACK got OK, that no message is stored twice, and that
// nothing else is delivered.
func TestCrashSafety(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and kills the relay binary")
	}
	bin := buildRelay(t)
	dir := t.TempDir()
	p := startRelayProcess(t, bin, dir)
	ctx, cancel := context.WithTimeout(context.Background(), scaled(3*time.Minute))
	defer cancel()
	setup, err := client.Dial(ctx, p.addr, client.Options{})
	if err != nil {
		t.Fatal(err)
	}
	const nq = 40
	qs := make([]*queue, nq)
	for i := range qs {
		qs[i] = newQueue(t, setup, true)
	}
	_ = setup.Close()

	var mu sync.Mutex
	attempted := map[string]bool{}
	okd := map[string]bool{}
	got := &deliveries{bodies: map[string]wire.MsgID{}, count: map[wire.MsgID]int{}, acked: map[wire.MsgID]bool{}}
	const rounds, senders = 4, 4
	for round := range rounds {
		if round > 0 {
			p = startRelayProcess(t, bin, dir)
		}
		// Commands issued after the kill wait for a reconnection that
		// cannot come (the next relay has another port): cancel them.
		rctx, rcancel := context.WithCancel(ctx)
		var wg sync.WaitGroup
		wg.Go(func() { _ = got.receive(rctx, p.addr, qs, 0, nil) })
		for s := range senders {
			wg.Go(func() {
				ctx := rctx
				c, err := client.Dial(ctx, p.addr, client.Options{})
				if err != nil {
					return
				}
				defer c.Close()
				for i := 0; ; i++ {
					q := qs[(s*7+i)%nq]
					body := fmt.Sprintf("r%d-s%d-%d", round, s, i)
					mu.Lock()
					attempted[body] = true
					mu.Unlock()
					err := c.Send(ctx, q.info.SndID, q.sndKey, []byte(body))
					if errors.Is(err, wire.CodeQuota) {
						continue
					}
					if err != nil {
						return // the relay died under us
					}
					mu.Lock()
					okd[body] = true
					mu.Unlock()
				}
			})
		}
		// Kill at a random point once this round has some load behind
		// it (slow machines and -race make fixed delays meaningless).
		mu.Lock()
		target := len(okd) + 20 + mrand.IntN(200)
		mu.Unlock()
		for deadline := time.Now().Add(scaled(15 * time.Second)); time.Now().Before(deadline); {
			mu.Lock()
			n := len(okd)
			mu.Unlock()
			if n >= target {
				break
			}
			time.Sleep(5 * time.Millisecond)
		}
		time.Sleep(time.Duration(mrand.IntN(20)) * time.Millisecond)
		p.kill(t)
		time.Sleep(200 * time.Millisecond)
		rcancel()
		wg.Wait()
	}
	mu.Lock()
	defer mu.Unlock()
	if len(okd) < rounds*20 {
		t.Fatalf("only %d messages acknowledged: the load was too light to test anything", len(okd))
	}
	ackedBefore := len(got.acked)

	p = startRelayProcess(t, bin, dir)
	// Everything that got OK, then whatever else comes (stored without OK,
	// redelivered) until a pause.
	if err := got.receive(ctx, p.addr, qs, scaled(3*time.Second), okd); err != nil {
		t.Fatal(err)
	}
	for _, e := range got.errs {
		t.Error(e)
	}
	for body := range okd {
		if _, ok := got.bodies[body]; !ok {
			t.Errorf("acknowledged message %s never delivered", body)
		}
	}
	extra, redelivered := 0, 0
	for body, id := range got.bodies {
		if !attempted[body] {
			t.Errorf("delivered %q that nobody sent", body)
		}
		if !okd[body] {
			extra++ // stored, but the relay died before the OK reached the sender
		}
		// A message whose ACK went unanswered may be redelivered, or not
		// (the relay committed the ACK and died before answering).
		if got.count[id] > 1 {
			redelivered++ // delivered, relay died before the ACK was answered
		}
	}
	t.Logf("%d rounds: %d sent, %d OK, %d delivered (%d stored without OK), %d ACKed before the last restart, %d redelivered after an unanswered ACK",
		rounds, len(attempted), len(okd), len(got.bodies), extra, ackedBefore, redelivered)
}
