package cluster

import (
	"bufio"
	"bytes"
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"sort"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/wisp-chat/wisp/server/internal/pgtest"
	"github.com/wisp-chat/wisp/server/wire"
	"github.com/wisp-chat/wisp/server/wire/client"
)

var (
	pg  pgtest.Env
	bin string
)

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "wisp-cluster-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	bin = filepath.Join(dir, "wisp-relay")
	if out, err := exec.Command("go", "build", "-o", bin, "../../cmd/wisp-relay").CombinedOutput(); err != nil {
		fmt.Fprintf(os.Stderr, "go build: %v\n%s", err, out)
		os.Exit(1)
	}
	code := pg.Main(m)
	_ = os.RemoveAll(dir)
	os.Exit(code)
}

// scaled stretches a deadline by WISP_TEST_SCALE (≥ 1, default 1), the
// one factor every deadline here derives from.
func scaled(d time.Duration) time.Duration {
	if f, err := strconv.ParseFloat(os.Getenv("WISP_TEST_SCALE"), 64); err == nil && f >= 1 {
		return time.Duration(float64(d) * f)
	}
	return d
}

// proc is one relay process.
type proc struct {
	cmd    *exec.Cmd
	addr   wire.Address
	stderr *logBuffer
	exited chan struct{}
}

// logBuffer is a process's stderr, written by os/exec's copier while
// the test reads it.
type logBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *logBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *logBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

// cluster is one relay: one database and one chunk folder, shared by
// the processes started with start.
type cluster struct {
	dsn, files string
}

func newCluster(t *testing.T) *cluster {
	return &cluster{dsn: pg.Database(t), files: t.TempDir()}
}

func (cl *cluster) start(t *testing.T, extra ...string) *proc {
	t.Helper()
	args := append([]string{"-listen", "127.0.0.1:0", "-data", t.TempDir(), "-store", cl.dsn, "-files", cl.files, "-proxy-off"}, extra...)
	p := &proc{cmd: exec.Command(bin, args...), stderr: new(logBuffer), exited: make(chan struct{})}
	out, err := p.cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	p.cmd.Stderr = p.stderr
	if err := p.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() { _ = p.cmd.Wait(); close(p.exited) }()
	t.Cleanup(func() { p.kill() })
	line, err := bufio.NewReader(out).ReadString('\n')
	if err != nil {
		p.kill()
		t.Fatalf("no address line: %v; stderr: %s", err, p.stderr)
	}
	s, _ := strings.CutPrefix(strings.TrimSpace(line), "relay address: ")
	if p.addr, err = wire.ParseAddress(s); err != nil {
		t.Fatal(err)
	}
	go func() { _, _ = io.Copy(io.Discard, out) }()
	return p
}

// kill is kill -9.
func (p *proc) kill() {
	_ = p.cmd.Process.Signal(syscall.SIGKILL)
	<-p.exited
}

func dial(t *testing.T, ctx context.Context, a wire.Address) *client.Client {
	t.Helper()
	c, err := client.Dial(ctx, a, client.Options{MinBackoff: 20 * time.Millisecond, MaxBackoff: 200 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = c.Close() })
	return c
}

// queue creates a secured queue through c.
func queue(t *testing.T, ctx context.Context, c *client.Client) (client.Subscription, wire.QueueID, ed25519.PrivateKey) {
	t.Helper()
	keys, err := client.NewRecipientKeys()
	if err != nil {
		t.Fatal(err)
	}
	q, err := c.New(ctx, keys, nil)
	if err != nil {
		t.Fatal(err)
	}
	_, sk, _ := ed25519.GenerateKey(rand.Reader)
	if err := c.Secure(ctx, q.SndID, sk); err != nil {
		t.Fatal(err)
	}
	return q.Subscription(keys), q.SndID, sk
}

func subscribe(t *testing.T, ctx context.Context, c *client.Client, s client.Subscription) {
	t.Helper()
	for _, err := range c.Subscribe(ctx, s) {
		if err != nil {
			t.Fatal(err)
		}
	}
}

// TestSendOnOneProcessDeliverOnAnother: two processes on one database
// are one relay (the same identity); a queue made on A takes SENDs on A
// and delivers them, in order, to its recipient subscribed on B, pushed
// through LISTEN/NOTIFY.
func TestSendOnOneProcessDeliverOnAnother(t *testing.T) {
	cl := newCluster(t)
	a, b := cl.start(t), cl.start(t)
	if a.addr.KeyHash != b.addr.KeyHash {
		t.Fatal("the two processes have different identities")
	}
	ctx, cancel := context.WithTimeout(context.Background(), scaled(60*time.Second))
	defer cancel()
	ca, cb := dial(t, ctx, a.addr), dial(t, ctx, b.addr)
	sub, snd, sk := queue(t, ctx, ca)
	subscribe(t, ctx, cb, sub)
	const n = 40
	var want, got []string
	var lat []time.Duration
	for i := range n {
		body := fmt.Sprintf("message %d", i)
		want = append(want, body)
		sent := time.Now()
		if err := ca.Send(ctx, snd, sk, []byte(body)); err != nil {
			t.Fatal(err)
		}
		m := next(t, ctx, cb, sub.RcvID)
		lat = append(lat, time.Since(sent))
		got = append(got, string(m.Body))
		if err := cb.Ack(ctx, sub, m.ID); err != nil {
			t.Fatal(err)
		}
	}
	if !slices.Equal(got, want) {
		t.Fatalf("delivered %q", got)
	}
	sort.Slice(lat, func(i, j int) bool { return lat[i] < lat[j] })
	t.Logf("SEND on A → MSG on B: median %v, max %v over %d messages (SEND includes its commit)", lat[n/2], lat[n-1], n)
}

func next(t *testing.T, ctx context.Context, c *client.Client, rcv wire.QueueID) wire.Message {
	t.Helper()
	for {
		select {
		case ev := <-c.Events():
			switch {
			case ev.Kind == client.EventMessage && ev.RcvID == rcv:
				return ev.Message
			case ev.Kind == client.EventEnd:
				t.Fatal("unexpected END")
			}
		case <-ctx.Done():
			t.Fatal("no message:", ctx.Err())
		}
	}
}

// TestSubscriptionMovesBetweenProcesses: the newer subscription wins
// across processes: a SUB on B ends A's (END), and what is sent after
// reaches B's session only; a SUB on A again takes it back.
func TestSubscriptionMovesBetweenProcesses(t *testing.T) {
	cl := newCluster(t)
	a, b := cl.start(t), cl.start(t)
	ctx, cancel := context.WithTimeout(context.Background(), scaled(60*time.Second))
	defer cancel()
	ca, cb, cs := dial(t, ctx, a.addr), dial(t, ctx, b.addr), dial(t, ctx, a.addr)
	sub, snd, sk := queue(t, ctx, ca)
	subscribe(t, ctx, ca, sub)
	subscribe(t, ctx, cb, sub)
	waitEnd(t, ctx, ca, sub.RcvID)
	if err := cs.Send(ctx, snd, sk, []byte("to B")); err != nil {
		t.Fatal(err)
	}
	m := next(t, ctx, cb, sub.RcvID)
	if string(m.Body) != "to B" {
		t.Fatalf("B got %q", m.Body)
	}
	if err := cb.Ack(ctx, sub, m.ID); err != nil {
		t.Fatal(err)
	}
	ca.Unsubscribe(sub.RcvID)
	subscribe(t, ctx, ca, sub)
	waitEnd(t, ctx, cb, sub.RcvID)
	if err := cs.Send(ctx, snd, sk, []byte("to A")); err != nil {
		t.Fatal(err)
	}
	if m := next(t, ctx, ca, sub.RcvID); string(m.Body) != "to A" {
		t.Fatalf("A got %q", m.Body)
	}
}

func waitEnd(t *testing.T, ctx context.Context, c *client.Client, rcv wire.QueueID) {
	t.Helper()
	for {
		select {
		case ev := <-c.Events():
			if ev.Kind == client.EventEnd && ev.RcvID == rcv {
				return
			}
			if ev.Kind == client.EventMessage {
				t.Fatalf("message %q instead of END", ev.Message.Body)
			}
		case <-ctx.Done():
			t.Fatal("no END:", ctx.Err())
		}
	}
}

// balancer is a TCP load balancer in front of the processes: each new
// connection goes to the first backend that accepts it (HAProxy's
// "first" balance, with health checks reduced to the dial).
type balancer struct {
	ln       net.Listener
	mu       sync.Mutex
	backends []string
	wg       sync.WaitGroup
}

func newBalancer(t *testing.T, backends ...string) *balancer {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	lb := &balancer{ln: ln, backends: backends}
	lb.wg.Go(func() {
		for {
			in, err := ln.Accept()
			if err != nil {
				return
			}
			lb.wg.Go(func() { lb.pipe(in) })
		}
	})
	t.Cleanup(func() { _ = ln.Close(); lb.wg.Wait() })
	return lb
}

func (lb *balancer) pipe(in net.Conn) {
	defer in.Close()
	lb.mu.Lock()
	backends := slices.Clone(lb.backends)
	lb.mu.Unlock()
	for _, addr := range backends {
		out, err := net.DialTimeout("tcp", addr, time.Second)
		if err != nil {
			continue
		}
		done := make(chan struct{}, 2)
		go func() { _, _ = io.Copy(out, in); done <- struct{}{} }()
		go func() { _, _ = io.Copy(in, out); done <- struct{}{} }()
		<-done
		_ = out.Close()
		_ = in.Close()
		<-done
		return
	}
}

func (lb *balancer) address(of wire.Address) wire.Address {
	a := of
	a.Port = uint16(lb.ln.Addr().(*net.TCPAddr).Port)
	return a
}

func hostPort(a wire.Address) string { return net.JoinHostPort(a.Host, strconv.Itoa(int(a.Port))) }

// TestKillProcessHoldingTheSubscription: the recipient reaches the
// relay through a load balancer and is subscribed on process A; a sender
// sends through B. A is killed (-9) while messages flow; the recipient
// reconnects through the balancer to B, resubscribes, and receives
// every message whose SEND was answered OK exactly once (a message in
// flight at the kill may come again with the same ID; the client drops
// that repeat).
func TestKillProcessHoldingTheSubscription(t *testing.T) {
	cl := newCluster(t)
	a, b := cl.start(t), cl.start(t)
	lb := newBalancer(t, hostPort(a.addr), hostPort(b.addr))
	ctx, cancel := context.WithTimeout(context.Background(), scaled(90*time.Second))
	defer cancel()
	rc := dial(t, ctx, lb.address(a.addr))
	sub, snd, sk := queue(t, ctx, rc)
	subscribe(t, ctx, rc, sub)
	sc := dial(t, ctx, b.addr)

	const n = 200
	acked := make(map[string]bool)
	var sendErrs []error
	var mu sync.Mutex
	var sending sync.WaitGroup
	sending.Go(func() {
		for i := range n {
			body := fmt.Sprintf("m%03d", i)
			err := sc.Send(ctx, snd, sk, []byte(body))
			mu.Lock()
			if err == nil {
				acked[body] = true
			} else {
				sendErrs = append(sendErrs, err)
			}
			mu.Unlock()
		}
	})

	ids := map[string]wire.MsgID{} // body → the ID it came with
	seen := map[wire.MsgID]bool{}
	killed := false
	for {
		mu.Lock()
		done := len(acked)+len(sendErrs) == n
		complete := done && len(ids) >= len(acked) && allIn(acked, ids)
		mu.Unlock()
		if complete {
			break
		}
		select {
		case ev := <-rc.Events():
			if ev.Kind != client.EventMessage {
				continue
			}
			m := ev.Message
			body := string(m.Body)
			if !seen[m.ID] {
				if prev, dup := ids[body]; dup {
					t.Fatalf("%s delivered twice, as %x and %x", body, prev[:4], m.ID[:4])
				}
				seen[m.ID] = true
				ids[body] = m.ID
			}
			if err := rc.Ack(ctx, sub, m.ID); err != nil && !errors.Is(err, wire.CodeNoMsg) {
				// A dropped connection fails the ACK; the message comes again.
				t.Logf("ACK: %v", err)
			}
			if !killed && len(ids) == 60 {
				a.kill()
				killed = true
			}
		case <-ctx.Done():
			mu.Lock()
			defer mu.Unlock()
			t.Fatalf("received %d distinct of %d acknowledged (%d SENDs failed): %v", len(ids), len(acked), len(sendErrs), ctx.Err())
		}
	}
	sending.Wait()
	if !killed {
		t.Fatal("A was never killed")
	}
	if len(sendErrs) != 0 {
		t.Fatalf("SENDs through B failed (B was not killed): %v", sendErrs)
	}
	if len(ids) != len(acked) {
		t.Fatalf("%d distinct messages delivered, %d acknowledged", len(ids), len(acked))
	}
	t.Logf("%d acknowledged, each delivered once; A killed after 60", len(acked))
}

func allIn(want map[string]bool, got map[string]wire.MsgID) bool {
	for b := range want {
		if _, ok := got[b]; !ok {
			return false
		}
	}
	return true
}

// TestStoreOutage: with the database down a SEND is INTERNAL, the
// process stays up and its sessions open; once the database is back,
// SENDs succeed again, and a recipient subscribed on the other process
// gets them (its LISTEN connection came back and resynced).
func TestStoreOutage(t *testing.T) {
	cl := newCluster(t)
	a, b := cl.start(t), cl.start(t)
	ctx, cancel := context.WithTimeout(context.Background(), scaled(120*time.Second))
	defer cancel()
	ca, cb := dial(t, ctx, a.addr), dial(t, ctx, b.addr)
	sub, snd, sk := queue(t, ctx, ca)
	subscribe(t, ctx, cb, sub)
	if err := ca.Send(ctx, snd, sk, []byte("before")); err != nil {
		t.Fatal(err)
	}
	m := next(t, ctx, cb, sub.RcvID)
	if err := cb.Ack(ctx, sub, m.ID); err != nil {
		t.Fatal(err)
	}

	pg.Server.Kill()
	restarted := false
	defer func() {
		if !restarted {
			_ = pg.Server.Restart()
		}
	}()
	if err := ca.Send(ctx, snd, sk, []byte("during")); !errors.Is(err, wire.CodeInternal) {
		t.Fatalf("SEND with the database down: %v, want INTERNAL", err)
	}
	select {
	case <-a.exited:
		t.Fatalf("process exited during the outage: %s", a.stderr)
	default:
	}
	if err := pg.Server.Restart(); err != nil {
		t.Fatal(err)
	}
	restarted = true
	// The pool reconnects on the next command: the first SEND after the
	// restart may still meet a connection the outage broke.
	var err error
	for range 20 {
		if err = ca.Send(ctx, snd, sk, []byte("after")); err == nil {
			break
		}
		if !errors.Is(err, wire.CodeInternal) {
			t.Fatal(err)
		}
	}
	if err != nil {
		t.Fatal("SEND after the database came back:", err)
	}
	if m := next(t, ctx, cb, sub.RcvID); string(m.Body) != "after" {
		t.Fatalf("after the outage B got %q", m.Body)
	}
	if strings.Contains(a.stderr.String(), "127.0.0.1:"+strconv.Itoa(int(a.addr.Port))) || strings.Contains(a.stderr.String(), cl.dsn) {
		t.Errorf("log holds an address or the store URL: %s", a.stderr)
	}
	select {
	case <-b.exited:
		t.Fatalf("B exited during the outage: %s", b.stderr)
	default:
	}
}

// TestChunkAcrossProcesses: a file chunk uploaded through A is
// downloaded through B (records in PostgreSQL, bytes in the shared
// folder), and once its one recipient has acknowledged it through B, A
// no longer has it.
func TestChunkAcrossProcesses(t *testing.T) {
	cl := newCluster(t)
	a, b := cl.start(t), cl.start(t)
	ctx, cancel := context.WithTimeout(context.Background(), scaled(60*time.Second))
	defer cancel()
	fa, err := client.DialFiles(ctx, a.addr, client.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer fa.Close()
	fb, err := client.DialFiles(ctx, b.addr, client.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer fb.Close()
	snd, rcpts, err := fa.CreateChunk(ctx, wire.Class256K, 1, nil)
	if err != nil {
		t.Fatal(err)
	}
	chunk := make([]byte, wire.Class256K.Size())
	_, _ = rand.Read(chunk)
	if err := fa.Upload(ctx, snd, chunk); err != nil {
		t.Fatal(err)
	}
	got, err := fb.Download(ctx, rcpts[0])
	if err != nil || !bytes.Equal(got, chunk) {
		t.Fatalf("download through B: %v", err)
	}
	if err := fb.Ack(ctx, rcpts[0]); err != nil {
		t.Fatal(err)
	}
	if _, err := fa.Download(ctx, rcpts[0]); !errors.Is(err, wire.CodeAuth) {
		t.Fatalf("download through A after the ACK: %v, want AUTH", err)
	}
}
