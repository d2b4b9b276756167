//go:build e2e

package e2e

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"fmt"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/chromedp/cdproto/network"
	"github.com/chromedp/chromedp"
)

// wsWatch records the hosts of every WebSocket a tab (its page and its
// core's worker) opens, from the DevTools network events.
type wsWatch struct {
	mu    sync.Mutex
	hosts []string
}

func watchWebSockets(t testing.TB, p *tab) *wsWatch {
	t.Helper()
	w := &wsWatch{}
	w.listen(t, p.ctx)
	return w
}

// listen records the WebSockets of the target of ctx.
func (w *wsWatch) listen(t testing.TB, ctx context.Context) {
	t.Helper()
	if err := chromedp.Listen(ctx, func(ev any) {
		if e, ok := ev.(*network.EventWebSocketCreated); ok {
			u, err := url.Parse(e.URL)
			if err != nil {
				return
			}
			w.mu.Lock()
			if !slices.Contains(w.hosts, u.Host) {
				w.hosts = append(w.hosts, u.Host)
			}
			w.mu.Unlock()
		}
	}); err != nil {
		t.Fatal(err)
	}
	if _, err := chromedp.Call(ctx, network.Enable, network.EnableParams{}); err != nil {
		t.Fatal(err)
	}
}

// watchWorkers adds the page's workers (the core runs in one and opens
// the relay WebSockets there) to w. Call it once the page has loaded and
// before the WebSockets open (they open when a profile is unlocked).
func (w *wsWatch) watchWorkers(t testing.TB, p *tab) {
	t.Helper()
	bc := chromedp.FromContext(p.ctx).BrowserContextID
	var n int
	deadline := time.Now().Add(scaled(30 * time.Second))
	for n == 0 && time.Now().Before(deadline) {
		targets, err := chromedp.Targets(p.ctx)
		if err != nil {
			t.Fatal(err)
		}
		for _, ti := range targets {
			if ti.Type != "worker" || ti.BrowserContextID != bc {
				continue
			}
			wctx, cancel := chromedp.NewContext(p.ctx, chromedp.WithTargetID(ti.TargetID))
			t.Cleanup(cancel)
			w.listen(t, wctx)
			n++
		}
		if n == 0 {
			time.Sleep(100 * time.Millisecond)
		}
	}
	if n == 0 {
		t.Fatal("the page has no worker to watch")
	}
}

func (w *wsWatch) seen() []string {
	w.mu.Lock()
	defer w.mu.Unlock()
	return slices.Clone(w.hosts)
}

// TestPrivateRoutingOnlyOwnRelays: Alice's host offers relay A, Bob's
// relay B. During a whole conversation with a file each way, Alice's page
// opens WebSockets only to relay A (the host and relay A) and Bob's only
// to relay B: every command to the other's relay goes through their own.
func TestPrivateRoutingOnlyOwnRelays(t *testing.T) {
	dataA := t.TempDir()
	procA, relayA := startProc(t, relayReady, "wisp-relay", "-listen", "127.0.0.1:0", "-data", dataA, "-proxy-private")
	_, relayB := startRelay(t)
	_, baseA := startHost(t, "-relay", relayA)
	_, baseB := startHost(t, "-relay", relayB)
	a, b := newPerson(t, "alice"), newPerson(t, "bob")
	watch := map[*tab]*wsWatch{a: watchWebSockets(t, a), b: watchWebSockets(t, b)}
	for p, s := range map[*tab][2]string{a: {baseA, "Alice"}, b: {baseB, "Bob"}} {
		p.run(chromedp.Navigate(s[0] + "/"))
		watch[p].watchWorkers(t, p)
		p.createProfile(s[1], "")
	}
	connectPeople(t, a, b, "Alice", "Bob")
	a.send("hello through my relay")
	b.waitJS(`[...document.querySelectorAll("#messages .msg.in .text")].some(e => e.textContent === "hello through my relay")`, 30*time.Second, "Alice's message")
	b.send("and back through mine")
	a.waitJS(`[...document.querySelectorAll("#messages .msg.in .text")].some(e => e.textContent === "and back through mine")`, 30*time.Second, "Bob's message")

	dir := t.TempDir()
	data := make([]byte, 3<<20)
	_, _ = rand.Read(data)
	for _, s := range []struct {
		from, to *tab
		name     string
	}{{a, b, "from-alice.bin"}, {b, a, "from-bob.bin"}} {
		path := filepath.Join(dir, s.name)
		if err := os.WriteFile(path, data, 0o644); err != nil {
			t.Fatal(err)
		}
		s.from.attach("", path)
		s.to.waitJS(`document.querySelector("#messages .msg.in[data-file='available']") !== null`, 60*time.Second, s.name+" offered")
		s.to.click("Download")
		s.to.waitJS(`document.querySelector("#messages .msg.in[data-file='available']") === null && document.querySelector("#messages .msg.in[data-file='downloaded']") !== null`, 120*time.Second, s.name+" downloaded")
		downloads := allowDownloads(t, s.to)
		eval[bool](s.to, `(() => { [...document.querySelectorAll("#messages .msg.in .file-actions button")].filter(x => x.textContent === "Save").forEach(x => x.click()); return true })()`)
		if got := waitFile(t, downloads, s.name); sha256.Sum256(got) != sha256.Sum256(data) {
			t.Errorf("%s saved differs", s.name)
		}
	}
	hostOf := func(addr string) string {
		u, err := url.Parse(addr)
		if err != nil {
			t.Fatal(err)
		}
		return u.Host // wisp://<keyhash>@host:port → host:port
	}
	for p, own := range map[*tab]string{a: hostOf(relayA), b: hostOf(relayB)} {
		seen := watch[p].seen()
		if len(seen) == 0 {
			t.Fatalf("no WebSocket seen at all: the watch does not see the worker's")
		}
		t.Logf("WebSockets opened: %v (own relay %s)", seen, own)
		for _, h := range seen {
			if h != own {
				t.Errorf("a page opened a WebSocket to %s; its own relay is %s (all: %v)", h, own, seen)
			}
		}
	}

	// Alice's relay goes down: Bob's message waits, and his conversation
	// says why, naming his relay and hers; it goes out when hers is back.
	a.expectErrors("WebSocket connection to 'ws://" + hostOf(relayA) + "/wisp") // her page retries her relay meanwhile
	_ = procA.cmd.Process.Kill()
	<-procA.done
	b.openContact("Alice")
	b.send("while your relay is down")
	b.waitJS(`(() => { const d = document.querySelector("#delivery-delay"); return !!d && !d.hidden && d.textContent.startsWith("Could not deliver through your relay 127.0.0.1 to their relay 127.0.0.1") })()`, 60*time.Second, "the delay, naming both relays")
	b.checkA11y("conversation with a delivery delay")
	startProc(t, relayReady, "wisp-relay", "-listen", hostOf(relayA), "-data", dataA, "-proxy-private")
	a.waitJS(`[...document.querySelectorAll("#messages .msg.in .text")].some(e => e.textContent === "while your relay is down")`, 90*time.Second, "the waiting message")
	b.waitJS(`document.querySelector("#delivery-delay").hidden`, 30*time.Second, "the delay cleared")

	// Turned off in Settings (which warns first), Alice's next message
	// goes straight to Bob's relay, and the watch sees it: the check
	// above can fail.
	a.click("Settings")
	a.waitVisible("#private-routing")
	if !eval[bool](a, `document.querySelector("#private-routing").checked`) {
		t.Fatal("private routing is not on by default in Settings")
	}
	eval[bool](a, `(() => { document.querySelector("#private-routing").click(); return true })()`)
	a.waitJS(`[...document.querySelectorAll("dialog[open]")].some(d => d.textContent.includes("sees your IP address"))`, 10*time.Second, "the warning")
	a.click("Turn off")
	a.waitJS(`!document.querySelector("#private-routing").checked && document.body.textContent.includes("Private routing is off")`, 10*time.Second, "private routing off")
	a.checkA11y("settings with private routing")
	a.openContact("Bob")
	a.send("straight to your relay")
	b.waitJS(`[...document.querySelectorAll("#messages .msg.in .text")].some(e => e.textContent === "straight to your relay")`, 30*time.Second, "the direct message")
	if seen := watch[a].seen(); !slices.Contains(seen, hostOf(relayB)) {
		t.Errorf("with private routing off, Alice's page opened WebSockets to %v only", seen)
	}
}

// peopleOnOwnRelays starts relay A and B, a host for each, and Alice on
// A's host, Bob on B's, connected: every command and download for the
// other's relay goes through one's own (private routing).
func peopleOnOwnRelays(t testing.TB) (*tab, *tab) {
	t.Helper()
	_, relayA := startRelay(t)
	_, relayB := startRelay(t)
	_, baseA := startHost(t, "-relay", relayA)
	_, baseB := startHost(t, "-relay", relayB)
	a, b := newPerson(t, "alice"), newPerson(t, "bob")
	for p, s := range map[*tab][2]string{a: {baseA, "Alice"}, b: {baseB, "Bob"}} {
		p.run(chromedp.Navigate(s[0] + "/"))
		p.createProfile(s[1], "")
	}
	connectPeople(t, a, b, "Alice", "Bob")
	return a, b
}

// BenchmarkFileRouting sends a 100 MiB file from Alice to Bob twice per
// round, interleaved: directly (one host offering both relays, so both
// are their own) and through private routing (each on their own relay:
// Bob downloads from Alice's relay through his), and reports both MB/s
// from pick to downloaded and their ratio, and the send → shown latency
// of a text message each way.
func BenchmarkFileRouting(b *testing.B) {
	path := filepath.Join(b.TempDir(), "big.bin")
	data := make([]byte, 100<<20)
	_, _ = rand.Read(data)
	if err := os.WriteFile(path, data, 0o644); err != nil {
		b.Fatal(err)
	}
	transfer := func(alice, bob *tab) float64 {
		start := time.Now()
		alice.attach("", path)
		bob.waitJS(`document.querySelector("#messages .msg.in[data-file='available']") !== null`, 5*time.Minute, "the file message")
		bob.click("Download")
		bob.waitJS(`document.querySelector("#messages .msg.in[data-file='downloaded']") !== null`, 5*time.Minute, "the download")
		return float64(len(data)) / 1e6 / time.Since(start).Seconds()
	}
	latency := func(from, to *tab, text string) float64 {
		start := time.Now()
		from.send(text)
		to.waitJS(fmt.Sprintf(`[...document.querySelectorAll("#messages .msg.in .text")].some(e => e.textContent === %q)`, text), 30*time.Second, text)
		return float64(time.Since(start).Microseconds()) / 1000
	}
	for b.Loop() {
		_, base := hostWithTwoRelays(b)
		da, db := aliceAndBob(b, base)
		direct := transfer(da, db)
		directMs := latency(db, da, "direct")
		da.close()
		db.close()
		ra, rb := peopleOnOwnRelays(b)
		routed := transfer(ra, rb)
		routedMs := latency(rb, ra, "routed")
		ra.close()
		rb.close()
		b.ReportMetric(direct, "direct-MB/s")
		b.ReportMetric(routed, "routed-MB/s")
		b.ReportMetric(routed/direct, "ratio")
		b.ReportMetric(directMs, "ms-direct-text")
		b.ReportMetric(routedMs, "ms-routed-text")
	}
}

// BenchmarkRoutingLatency measures Enter in one tab → the message shown
// in the other (same clock: the test's), 20 messages each way, for a
// direct pair and a privately routed pair in the same round, and reports
// the median and p95 of each.
func BenchmarkRoutingLatency(b *testing.B) {
	measure := func(x, y *tab, label string) []float64 {
		var ms []float64
		for i := range 20 {
			from, to := x, y
			if i%2 == 1 {
				from, to = y, x
			}
			text := fmt.Sprintf("%s %d", label, i)
			start := time.Now()
			from.send(text)
			to.waitJS(fmt.Sprintf(`[...document.querySelectorAll("#messages .msg.in .text")].some(e => e.textContent === %q)`, text), 30*time.Second, text)
			ms = append(ms, float64(time.Since(start).Microseconds())/1000)
		}
		slices.Sort(ms)
		return ms
	}
	for b.Loop() {
		_, base := hostWithTwoRelays(b)
		da, db := aliceAndBob(b, base)
		direct := measure(da, db, "direct")
		da.close()
		db.close()
		ra, rb := peopleOnOwnRelays(b)
		routed := measure(ra, rb, "routed")
		ra.close()
		rb.close()
		b.ReportMetric(direct[len(direct)/2], "ms-p50-direct")
		b.ReportMetric(direct[len(direct)*95/100], "ms-p95-direct")
		b.ReportMetric(routed[len(routed)/2], "ms-p50-routed")
		b.ReportMetric(routed[len(routed)*95/100], "ms-p95-routed")
	}
}
