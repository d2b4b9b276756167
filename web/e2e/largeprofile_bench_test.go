//go:build e2e

package e2e

import (
	"cmp"
	"encoding/json"
	"fmt"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/chromedp/cdproto/cdp"
	cdppage "github.com/chromedp/cdproto/page"
	"github.com/chromedp/cdproto/profiler"
	"github.com/chromedp/chromedp"
)

// Size of BenchmarkLargeProfile's profile (issue 15: "200 contacts and
// 10,000 messages in one conversation").
const (
	largeContacts = 200
	largeMessages = 10_000
	// largeRound is how many messages one side sends before it waits for
	// the last of them to arrive on the other side.
	largeRound = 100
)

// buildLargeProfile makes the large profile through the real core, natively
// (wasm/chat on in-memory storage, relays on loopback): a profile "Archive"
// with largeContacts contacts, all made by one-time invitations that a
// native peer accepts, and largeMessages texts in the conversation with the
// first of them, half sent by each side, every one delivered. It returns
// Archive's backup file (passphrase "large profile backup") and the peer,
// which keeps running so that it answers the restored profile (the
// re-synchronisation after an import, backup.go).
func buildLargeProfile(b *testing.B, base string, relays []string) (backup string, peer *nativeMember) {
	b.Helper()
	start := time.Now()
	archive := newNativeMember(b, "Archive", base, relays)
	peer = newNativeMember(b, "Peer", base, relays)
	ctx := opCtx(b)

	// The invitations, eight at a time.
	ids := make([]string, largeContacts)     // Archive's contact IDs, in invitation order
	peerIDs := make([]string, largeContacts) // the peer's for the same connections
	var wg sync.WaitGroup
	errs := make(chan error, largeContacts)
	sem := make(chan struct{}, 8)
	for i := range largeContacts {
		wg.Add(1)
		sem <- struct{}{}
		go func() {
			defer wg.Done()
			defer func() { <-sem }()
			inv, err := archive.p.CreateInvitation(ctx, false)
			if err != nil {
				errs <- fmt.Errorf("invitation %d: %w", i, err)
				return
			}
			c, err := peer.p.Join(ctx, inv.Link, false)
			if err != nil {
				errs <- fmt.Errorf("join %d: %w", i, err)
				return
			}
			ids[i], peerIDs[i] = inv.Contact, c.ID
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		b.Fatal(err)
	}
	for i, id := range ids {
		archive.waitContact(b, id)
		peer.waitContact(b, peerIDs[i])
		if err := archive.p.RenameContact(id, fmt.Sprintf("Contact %03d", i)); err != nil {
			b.Fatal(err)
		}
	}
	contacts := time.Since(start)

	// The conversation: rounds of largeRound texts, alternating sides;
	// a round ends when its last text is the newest on the other side
	// (one queue per direction delivers in order, exactly once).
	type side struct {
		n      *nativeMember
		id     string // the conversation, on this side
		prefix string
	}
	sides := [2]side{{archive, ids[0], "from Archive"}, {peer, peerIDs[0], "from Peer"}}
	sent := 0
	for round := 0; sent < largeMessages; round++ {
		from, to := sides[round%2], sides[(round+1)%2]
		var last string
		for k := 0; k < largeRound && sent < largeMessages; k++ {
			last = fmt.Sprintf("%s, message %05d: %s", from.prefix, sent, strings.Repeat("words ", 1+sent%12))
			if _, err := from.n.p.SendText(ctx, from.id, last); err != nil {
				b.Fatalf("message %d: %v", sent, err)
			}
			sent++
		}
		waitNative(b, fmt.Sprintf("round %d delivered", round), func() (bool, error) {
			ms, err := to.n.p.Messages(to.id, 0, 1)
			return len(ms) == 1 && ms[0].Text == last, err
		})
	}
	b.Logf("large profile built natively: %d contacts in %v, %d messages in %v",
		largeContacts, contacts.Round(time.Millisecond), largeMessages, (time.Since(start) - contacts).Round(time.Millisecond))

	data, err := archive.m.ExportBackup(archive.p.Info().ID, "large profile backup")
	if err != nil {
		b.Fatal(err)
	}
	archive.m.Close() // the browser takes its queues over
	backup = filepath.Join(b.TempDir(), "archive.wispbackup")
	if err := os.WriteFile(backup, data, 0o600); err != nil {
		b.Fatal(err)
	}
	b.Logf("backup: %d bytes", len(data))
	return backup, peer
}

// rpcProbe records, in the page, each core call's method, start and
// duration (window.__rpc), to break the unlock down.
const rpcProbe = `(() => {
	const W = window.Worker;
	window.__rpc = [];
	window.Worker = class extends W {
		constructor(...args) {
			super(...args);
			const open = new Map();
			const post = this.postMessage.bind(this);
			this.postMessage = (msg, ...rest) => {
				if (msg?.method) open.set(msg.id, [msg.method, performance.now()]);
				return post(msg, ...rest);
			};
			this.addEventListener("message", (e) => {
				const o = open.get(e.data?.id);
				if (!o || (e.data.type !== "result" && e.data.type !== "error")) return;
				open.delete(e.data.id);
				window.__rpc.push([o[0], Math.round(o[1]), Math.round(performance.now() - o[1])]);
			});
		}
	};
})()`

// observe clicks the element that the expression click finds and resolves
// with the milliseconds until the expression done is true, checked after
// every change to the page (a MutationObserver, so the time is when the
// page showed it, not when a poll noticed).
func observe(p *tab, click, done string) float64 {
	p.t.Helper()
	return eval[float64](p, fmt.Sprintf(`new Promise((resolve, reject) => {
		const done = () => %s;
		const target = %s;
		if (!target) { reject(new Error("nothing to click")); return; }
		const t0 = performance.now();
		const obs = new MutationObserver(() => {
			if (done()) { obs.disconnect(); resolve(performance.now() - t0); }
		});
		obs.observe(document.body, { childList: true, subtree: true, characterData: true, attributes: true });
		target.click();
	})`, done, click))
}

// BenchmarkLargeProfile builds a profile with 200 contacts and 10,000
// messages in one conversation through the real core (natively, see
// buildLargeProfile), imports its backup in Chromium, and then, for each
// iteration, reloads the page and measures:
//
//	ms-load-ready    navigation → the core ready (BenchmarkLoadToReady's figure,
//	                 here with a warm HTTP cache)
//	ms-unlock-list   the profile's unlock starts → all 200 contacts listed
//	                 (the page's marks "wisp-unlock" and "wisp-chats"; the
//	                 profile has no passphrase, so no Argon2id, and the page
//	                 opens it by itself)
//	ms-open-conv     a click on the big conversation → its newest page shown
//	                 (the newest text in the list)
//	MiB-heap, MiB-sys  the worker's Go heap in use and memory from the
//	                 system (runtime.MemStats.Sys: the wasm linear memory)
//	                 after both, read from Settings
//
// Reported as medians over the iterations. With WISP_PROFILE_UNLOCK=FILE
// it then profiles one more unlock (profileUnlock). Building the profile takes a
// minute or two and is not timed; the first unlock after the import (which
// re-synchronises every contact's encryption) is not timed either. Run it
// with: go test -tags e2e -run '^$' -bench LargeProfile -benchtime 5x ./web/e2e/
func BenchmarkLargeProfile(b *testing.B) {
	relayArgs := []string{"-listen", "127.0.0.1:0", "-data", b.TempDir(),
		// One connection creates 400 queues within a minute here.
		"-new-per-minute", "100000", "-new-per-addr", "0"}
	_, relay := startProc(b, relayReady, "wisp-relay", relayArgs...)
	_, base := startHost(b)
	backup, _ := buildLargeProfile(b, base, []string{relay})

	p := newPerson(b, "archive")
	if _, err := chromedp.Call(p.ctx, cdppage.AddScriptToEvaluateOnNewDocument,
		cdppage.AddScriptToEvaluateOnNewDocumentParams{Source: rpcProbe}); err != nil {
		b.Fatal(err)
	}
	p.run(chromedp.Navigate(base + "/"))
	p.waitVisible("#onboarding")
	eval[bool](p, `(() => { document.querySelector("details.import").open = true; return true })()`)
	p.run(chromedp.SetUploadFiles(chromedp.CSS("#backup-file"), []string{backup}))
	p.fill("Backup passphrase", "large profile backup")
	importStart := time.Now()
	p.click("Import backup")
	p.waitJS(`(() => { const e = document.querySelector("#app"); return !!e && e.offsetParent !== null })()`, 5*time.Minute, "the imported profile")
	p.waitJS(fmt.Sprintf(`document.querySelectorAll("#contacts .contact").length === %d`, largeContacts), 5*time.Minute, "the imported chat list")
	b.Logf("import → chat list: %v", time.Since(importStart).Round(time.Millisecond))

	newest := fmt.Sprintf("from Peer, message %05d: ", largeMessages-1)
	if (largeMessages/largeRound)%2 == 1 {
		newest = fmt.Sprintf("from Archive, message %05d: ", largeMessages-1)
	}
	var load, unlock, open, heap, sys []float64
	var unlockCalls, openCalls string // the last iteration's core calls
	for b.Loop() {
		// A fresh page: no conversation remembered as open (state.js), so
		// the profile (it has no passphrase) opens on its chat list.
		eval[bool](p, `(() => { sessionStorage.clear(); return true })()`)
		p.run(chromedp.Navigate(base + "/"))
		p.waitJS(fmt.Sprintf(`document.querySelectorAll("#contacts .contact").length === %d`, largeContacts), time.Minute, "the chat list")
		mark := func(name string) float64 {
			return eval[float64](p, fmt.Sprintf(`performance.getEntriesByName(%q)[0].startTime`, name))
		}
		load = append(load, mark("wisp-ready"))
		unlock = append(unlock, mark("wisp-chats")-mark("wisp-unlock"))
		unlockCalls = eval[string](p, fmt.Sprintf(`JSON.stringify(window.__rpc.filter(r => r[1] >= %f - 1))`, mark("wisp-unlock")))
		eval[bool](p, `(() => { window.__rpc.length = 0; return true })()`)
		open = append(open, observe(p,
			`[...document.querySelectorAll("#contacts .contact")].find(b => b.querySelector(".c-name")?.textContent === "Contact 000")`,
			fmt.Sprintf(`[...document.querySelectorAll("#messages .msg .text")].some(e => e.textContent.startsWith(%q))`, newest)))
		openCalls = eval[string](p, `JSON.stringify(window.__rpc)`)
		p.click("Settings")
		p.waitVisible("#core-memory")
		heap = append(heap, eval[float64](p, `+document.querySelector("#core-memory").dataset.heap`)/(1<<20))
		sys = append(sys, eval[float64](p, `+document.querySelector("#core-memory").dataset.sys`)/(1<<20))
	}
	median := func(xs []float64) float64 { slices.Sort(xs); return xs[len(xs)/2] }
	b.ReportMetric(median(load), "ms-load-ready")
	b.ReportMetric(median(unlock), "ms-unlock-list")
	b.ReportMetric(median(open), "ms-open-conv")
	b.ReportMetric(median(heap), "MiB-heap")
	b.ReportMetric(median(sys), "MiB-sys")
	b.Logf("load→ready %v ms; unlock→list %v ms; open conversation %v ms; heap %v MiB; sys %v MiB\n"+
		"core calls of the last unlock [method, start ms, took ms]: %s\ncore calls of the last opening: %s",
		load, unlock, open, heap, sys, unlockCalls, openCalls)
	if out := os.Getenv("WISP_PROFILE_UNLOCK"); out != "" {
		profileUnlock(b, p, out)
	}
}

// profileUnlock locks the profile through Settings and records a CPU
// profile of the core's worker (DevTools Profiler, 100 µs sampling) from
// Open on the unlock screen to the chat list. It writes the profile to out
// (open it in Chromium's DevTools, Performance panel) and logs the
// functions with the most samples of their own. The core is built
// stripped (-s), so its functions show as wasm-function[index]; an
// unstripped build of the same source names the same indexes.
func profileUnlock(b *testing.B, p *tab, out string) {
	p.click("Settings")
	p.click("Lock")
	p.click("Cancel") // "Set a passphrase first?": lock without one
	p.waitVisible("#unlock")
	w, cancel := coreWorker(b, p)
	defer cancel()
	if _, err := chromedp.Call(w, profiler.Enable, cdp.Empty{}); err != nil {
		b.Fatal(err)
	}
	if _, err := chromedp.Call(w, profiler.SetSamplingInterval, profiler.SetSamplingIntervalParams{Interval: 100}); err != nil {
		b.Fatal(err)
	}
	if _, err := chromedp.Call(w, profiler.Start, cdp.Empty{}); err != nil {
		b.Fatal(err)
	}
	took := observe(p, `document.querySelector("#unlock button[type=submit]")`,
		fmt.Sprintf(`document.querySelectorAll("#contacts .contact").length === %d`, largeContacts))
	res, err := chromedp.Call(w, profiler.Stop, cdp.Empty{})
	if err != nil {
		b.Fatal(err)
	}
	raw, err := json.Marshal(res.Profile)
	if err != nil {
		b.Fatal(err)
	}
	if err := os.WriteFile(out, raw, 0o644); err != nil {
		b.Fatal(err)
	}
	self := map[string]int64{}
	var total int64
	for _, n := range res.Profile.Nodes {
		self[n.CallFrame.FunctionName] += n.HitCount
		total += n.HitCount
	}
	names := slices.Collect(maps.Keys(self))
	slices.SortFunc(names, func(x, y string) int { return cmp.Compare(self[y], self[x]) })
	var top strings.Builder
	for _, name := range names[:min(25, len(names))] {
		fmt.Fprintf(&top, " %.1f%% %s;", 100*float64(self[name])/float64(max(total, 1)), name)
	}
	b.Logf("unlock → chat list %.0f ms, profiled (%d samples, written to %s); most samples of their own:%s", took, total, out, top.String())
}
