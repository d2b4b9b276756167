//go:build e2e

package e2e

import (
	"context"
	"encoding/json"
	"fmt"
	"math"
	"net/url"
	"path"
	"regexp"
	"slices"
	"testing"
	"time"

	"github.com/chromedp/cdproto/input"
	"github.com/chromedp/chromedp"
)

// latNow is the clock of every timestamp below: the wall clock in ms with
// sub-ms resolution, the same in every tab of the browser.
const latNow = `const now = () => performance.timeOrigin + performance.now();`

// latSenderProbe records in the sender's page, per message text, when
// Enter was pressed in the composer (a capture-phase listener on the
// document runs before the composer's own, which clears the box) and when
// the outgoing message with that text was first rendered as sent (its
// data-status "sent" or "delivered") and as delivered. The conversation
// is re-rendered on every change (mount replaces the list's children), so
// the observer watches the list's children as well as data-status.
const latSenderProbe = `(() => {
	` + latNow + `
	const L = window.__lat = { enter: {}, sent: {}, delivered: {} };
	document.addEventListener("keydown", (e) => {
		if (e.key !== "Enter" || e.shiftKey || e.isComposing || e.target.id !== "composer") return;
		const v = e.target.value.trim();
		if (v && !(v in L.enter)) L.enter[v] = now();
	}, true);
	const check = () => {
		const t = now();
		for (const li of document.querySelectorAll("#messages .msg.out[data-status]")) {
			const s = li.dataset.status;
			if (s !== "sent" && s !== "delivered") continue;
			const text = li.querySelector(".text")?.textContent;
			if (text === undefined || !(text in L.enter)) continue;
			if (!(text in L.sent)) L.sent[text] = t;
			if (s === "delivered" && !(text in L.delivered)) L.delivered[text] = t;
		}
	};
	new MutationObserver(check).observe(document.body, { childList: true, subtree: true, attributes: true, attributeFilter: ["data-status"] });
	return true;
})()`

// latReceiverProbe records in the receiver's page when each incoming
// message text is first in the DOM.
const latReceiverProbe = `(() => {
	` + latNow + `
	const L = window.__lat = { shown: {} };
	const check = () => {
		const t = now();
		for (const el of document.querySelectorAll("#messages .msg.in .text")) {
			if (!(el.textContent in L.shown)) L.shown[el.textContent] = t;
		}
	};
	check();
	new MutationObserver(check).observe(document.body, { childList: true, subtree: true, characterData: true });
	return true;
})()`

// latTxCounter, evaluated in a core's worker, wraps
// IDBDatabase.prototype.transaction to count the transactions opened
// there: readwrite ones in __wispTx.rw, all in __wispTx.all. The core
// looks transaction up on its database object at every call, so
// installing it after the core started counts all that follow.
const latTxCounter = `(() => {
	if (self.__wispTx) return true;
	self.__wispTx = { rw: 0, all: 0 };
	const orig = IDBDatabase.prototype.transaction;
	IDBDatabase.prototype.transaction = function (stores, mode) {
		self.__wispTx.all++;
		if (mode === "readwrite") self.__wispTx.rw++;
		return orig.apply(this, arguments);
	};
	return self.constructor.name === "DedicatedWorkerGlobalScope";
})()`

type txCount struct {
	RW  int `json:"rw"`
	All int `json:"all"`
}

// coreWorkerName matches the file name of web/worker.js, as the host
// serves it: with its content hash (worker.07a10f1a0e4472a2.js).
var coreWorkerName = regexp.MustCompile(`^worker(\.[0-9a-f]+)?\.js$`)

// coreWorker attaches to the dedicated worker running p's core
// (web/worker.js) through the DevTools protocol and returns a context
// whose actions run in it. Canceling the context detaches without
// closing the worker.
func coreWorker(tb testing.TB, p *tab) (context.Context, context.CancelFunc) {
	tb.Helper()
	bc := chromedp.FromContext(p.ctx).BrowserContextID
	deadline := time.Now().Add(scaled(30 * time.Second))
	for {
		targets, err := chromedp.Targets(p.ctx)
		if err != nil {
			tb.Fatal(err)
		}
		var found []string
		var ctx context.Context
		var cancel context.CancelFunc
		for _, ti := range targets {
			if ti.Type != "worker" || ti.BrowserContextID != bc {
				continue
			}
			u, err := url.Parse(ti.URL)
			if err != nil || !coreWorkerName.MatchString(path.Base(u.Path)) {
				continue
			}
			found = append(found, ti.URL)
			if ctx == nil {
				ctx, cancel = chromedp.NewContext(p.ctx, chromedp.WithTargetID(ti.TargetID), chromedp.WithDetachOnCancel())
			}
		}
		switch {
		case len(found) == 1:
			tb.Cleanup(cancel)
			return ctx, cancel
		case len(found) > 1:
			cancel()
			tb.Fatalf("more than one core worker in the tab's browser context: %v", found)
		case time.Now().After(deadline):
			tb.Fatal("the tab has no core worker (worker.js) to attach to")
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// workerEval evaluates expr in the worker of ctx into T.
func workerEval[T any](tb testing.TB, ctx context.Context, expr string) T {
	tb.Helper()
	v, err := chromedp.Run(ctx, chromedp.Evaluate[T](expr))
	if err != nil {
		tb.Fatalf("evaluating in the core's worker: %v", err)
	}
	return v
}

// settledTxCounts waits until neither worker's transaction counts change
// for 500 ms and returns them.
func settledTxCounts(tb testing.TB, workers ...context.Context) []txCount {
	tb.Helper()
	read := func() []txCount {
		out := make([]txCount, len(workers))
		for i, w := range workers {
			out[i] = workerEval[txCount](tb, w, `self.__wispTx`)
		}
		return out
	}
	last, since := read(), time.Now()
	deadline := time.Now().Add(scaled(60 * time.Second))
	for time.Since(since) < 500*time.Millisecond {
		if time.Now().After(deadline) {
			tb.Fatalf("the IndexedDB transaction counts kept changing for %v (now %+v)", scaled(60*time.Second), last)
		}
		time.Sleep(50 * time.Millisecond)
		if c := read(); !slices.Equal(c, last) {
			last, since = c, time.Now()
		}
	}
	return last
}

// latTimes reads one of the probes' maps (text → timestamp).
func latTimes(p *tab, name string) map[string]float64 {
	p.t.Helper()
	return eval[map[string]float64](p, `window.__lat.`+name)
}

// incomingWith returns the incoming message texts shown that start with
// prefix, in the order shown.
func incomingWith(p *tab, prefix string) []string {
	p.t.Helper()
	return eval[[]string](p, fmt.Sprintf(`[...document.querySelectorAll("#messages .msg.in .text")].map(e => e.textContent).filter(s => s.startsWith(%q))`, prefix))
}

// latSend types text into p's composer and presses Enter as a keyboard
// does: one keyDown that carries the text "\r", whose keypress the
// composer's keydown handler cancels, and a keyUp. (tab.send's
// chromedp.KeyEvent("\r") sends the "\r" as a separate char event, which
// the keydown handler cannot cancel: it leaves a "\n" in the emptied
// composer after every message.)
func latSend(p *tab, text string) {
	p.t.Helper()
	p.run(chromedp.Focus(chromedp.CSS("#composer")), chromedp.SendKeys(chromedp.CSS("#composer"), text))
	down := input.DispatchKeyEventParams{Type: input.DispatchKeyEventTypeKeyDown, Key: "Enter", Code: "Enter",
		WindowsVirtualKeyCode: 13, NativeVirtualKeyCode: 13, Text: "\r", UnmodifiedText: "\r"}
	up := input.DispatchKeyEventParams{Type: input.DispatchKeyEventTypeKeyUp, Key: "Enter", Code: "Enter",
		WindowsVirtualKeyCode: 13, NativeVirtualKeyCode: 13}
	for _, k := range []input.DispatchKeyEventParams{down, up} {
		if _, err := chromedp.Call(p.ctx, input.DispatchKeyEvent, k); err != nil {
			p.t.Fatalf("pressing Enter: %v", err)
		}
	}
}

// percentile is the nearest-rank percentile (0 < q ≤ 1) of xs.
func percentile(xs []float64, q float64) float64 {
	s := slices.Sorted(slices.Values(xs))
	return s[max(int(math.Ceil(q*float64(len(s))))-1, 0)]
}

// BenchmarkEnterToShown: per round, Alice and Bob (two tabs, each its own
// browser context) connect through a host offering two loopback relays.
// Alice then types 50 messages, one at a time (the next once the last is
// shown in Bob's page), and then a burst of 5 typed in quick succession.
// All times are in-page timestamps on the browser's one clock
// (performance.timeOrigin + performance.now()), from the keydown of Enter
// in Alice's composer:
//
//   - ms-p50-shown, ms-p95-shown: until Bob's page first has an incoming
//     message with that exact text in its DOM (a MutationObserver; the
//     next paint follows);
//   - ms-p50-sent, ms-p50-delivered: until Alice's page first renders the
//     outgoing message with data-status "sent" (or already "delivered"),
//     and "delivered";
//   - ms-burst-last-shown: from the Enter of the burst's last message until
//     Bob shows it (all 5 must arrive, in order);
//   - idb-tx/msg-sender, idb-tx/msg-receiver: readwrite IndexedDB
//     transactions opened in each tab's core worker while the 50 messages
//     flow (counted from before the first Enter until every message shows
//     "Delivered" and neither count changed for 500 ms), per message. They
//     include everything the UI makes the core do meanwhile: the
//     sender's drafts, the receiver's read marks and delivery receipts and
//     the sender's processing of them. They are counted by wrapping
//     IDBDatabase.prototype.transaction inside the worker through the
//     DevTools protocol, not by a hook in the product.
//
// Percentiles are nearest-rank over every message of every round. Any
// message missing or out of order in Bob's page fails the benchmark.
// Run: make build && WISP_ROOT=$PWD go test -tags e2e -run '^$' -bench EnterToShown -benchtime 1x ./web/e2e/
func BenchmarkEnterToShown(b *testing.B) {
	const (
		count = 50
		burst = 5
	)
	_, base := hostWithTwoRelays(b)
	var shown, sent, delivered, burstLast []float64
	var txSender, txReceiver float64
	round := 0
	for b.Loop() {
		round++
		alice, bob := aliceAndBob(b, base)
		aw, cancelA := coreWorker(b, alice)
		bw, cancelB := coreWorker(b, bob)
		for _, w := range []context.Context{aw, bw} {
			if !workerEval[bool](b, w, latTxCounter) {
				b.Fatal("the attached worker is not a dedicated worker")
			}
		}
		eval[bool](alice, latSenderProbe)
		eval[bool](bob, latReceiverProbe)
		// What the connection left to write is done first.
		before := settledTxCounts(b, aw, bw)

		prefix := fmt.Sprintf("r%d latency ", round)
		var texts []string
		for i := range count {
			text := fmt.Sprintf("%s%02d of %d", prefix, i+1, count)
			texts = append(texts, text)
			latSend(alice, text)
			bob.waitJS(fmt.Sprintf(`window.__lat.shown[%q] !== undefined`, text), 30*time.Second, "Bob shows "+text)
			if got := incomingWith(bob, prefix); !slices.Equal(got, texts) {
				b.Fatalf("after %q Bob shows %q, want %q", text, got, texts)
			}
		}
		all, err := json.Marshal(texts)
		if err != nil {
			b.Fatal(err)
		}
		alice.waitJS(fmt.Sprintf(`%s.every(t => t in window.__lat.delivered)`, all), 60*time.Second, "every message delivered")
		after := settledTxCounts(b, aw, bw)
		if got := incomingWith(bob, prefix); !slices.Equal(got, texts) {
			b.Fatalf("Bob shows %q, want %q", got, texts)
		}

		enter, shownAt := latTimes(alice, "enter"), latTimes(bob, "shown")
		sentAt, deliveredAt := latTimes(alice, "sent"), latTimes(alice, "delivered")
		for _, t := range texts {
			e, ok := enter[t]
			if !ok {
				b.Fatalf("no Enter recorded for %q", t)
			}
			shown = append(shown, shownAt[t]-e)
			sent = append(sent, sentAt[t]-e)
			delivered = append(delivered, deliveredAt[t]-e)
		}
		txSender += float64(after[0].RW-before[0].RW) / count
		txReceiver += float64(after[1].RW-before[1].RW) / count
		b.Logf("round %d: readwrite IndexedDB transactions for %d messages: sender %d, receiver %d (all transactions: %d, %d)",
			round, count, after[0].RW-before[0].RW, after[1].RW-before[1].RW, after[0].All-before[0].All, after[1].All-before[1].All)

		// The burst: each message as soon as the composer is empty again.
		bprefix := fmt.Sprintf("r%d burst ", round)
		var btexts []string
		for i := range burst {
			text := fmt.Sprintf("%s%d of %d", bprefix, i+1, burst)
			btexts = append(btexts, text)
			latSend(alice, text)
			alice.waitJS(`document.querySelector("#composer")?.value === ""`, 10*time.Second, "the composer cleared")
		}
		last := btexts[burst-1]
		bob.waitJS(fmt.Sprintf(`window.__lat.shown[%q] !== undefined`, last), 60*time.Second, "Bob shows "+last)
		if got := incomingWith(bob, bprefix); !slices.Equal(got, btexts) {
			b.Fatalf("after the burst Bob shows %q, want %q", got, btexts)
		}
		e, ok := latTimes(alice, "enter")[last]
		if !ok {
			b.Fatalf("no Enter recorded for %q", last)
		}
		burstLast = append(burstLast, latTimes(bob, "shown")[last]-e)

		cancelA()
		cancelB()
		alice.close()
		bob.close()
	}
	b.Logf("Enter → shown: min %.1f ms, p50 %.1f, p95 %.1f, max %.1f; → sent p95 %.1f ms; → delivered p95 %.1f ms",
		slices.Min(shown), percentile(shown, .5), percentile(shown, .95), slices.Max(shown), percentile(sent, .95), percentile(delivered, .95))
	b.ReportMetric(percentile(shown, .5), "ms-p50-shown")
	b.ReportMetric(percentile(shown, .95), "ms-p95-shown")
	b.ReportMetric(percentile(sent, .5), "ms-p50-sent")
	b.ReportMetric(percentile(delivered, .5), "ms-p50-delivered")
	b.ReportMetric(percentile(burstLast, .5), "ms-burst-last-shown")
	b.ReportMetric(txSender/float64(round), "idb-tx/msg-sender")
	b.ReportMetric(txReceiver/float64(round), "idb-tx/msg-receiver")
}
