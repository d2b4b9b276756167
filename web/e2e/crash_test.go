//go:build e2e

package e2e

import (
	"context"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"os"
	"slices"
	"strconv"
	"testing"
	"time"

	"github.com/chromedp/cdproto/cdp"
	cdppage "github.com/chromedp/cdproto/page"
	"github.com/chromedp/chromedp"
)

// TestRestartSafetyInChromium is the agent's restart-safety rule in the
// browser: the tab running Ann's core is crashed (the renderer, and with it
// the worker, dies at once: Page.crash) at a random moment while messages
// flow both ways, and reopened in the same browser profile, several times.
// Ben is a native core in this process. In the end:
//
//   - every message Ben sent is shown to Ann exactly once, in order;
//   - every message Ann's page shows as hers reaches Ben exactly once, and
//     Ben receives nothing else;
//   - every message Ann's page showed as sent (the relay took it) before a
//     crash is still there after it.
//
// The crash points come from a seed that the test logs (WISP_CRASH_SEED
// repeats one).
func TestRestartSafetyInChromium(t *testing.T) {
	seed := uint64(time.Now().UnixNano())
	if s, err := strconv.ParseUint(os.Getenv("WISP_CRASH_SEED"), 10, 64); err == nil {
		seed = s
	}
	t.Logf("WISP_CRASH_SEED=%d", seed)
	rng := rand.New(rand.NewPCG(seed, 0))
	benRng := rand.New(rand.NewPCG(seed, 1)) // Ben's goroutine's own

	_, relay := startRelay(t)
	_, base := startHost(t, "-relay", relay)
	ben := newNativeMember(t, "Ben", base, []string{relay})
	// Ann's browser profile is held by a blank tab (another site, so
	// another renderer) while her Wisp tabs crash and reopen beside it.
	holder := newPerson(t, "ann")
	holder.run(chromedp.Navigate("about:blank"))
	ann := newTabBeside(t, holder, "ann")
	ann.run(chromedp.Navigate(base + "/"))
	ann.createProfile("Ann", "")
	inv, err := ben.p.CreateInvitation(opCtx(t), false)
	if err != nil {
		t.Fatal(err)
	}
	ann.click("I have a link")
	ann.fill("Invitation link", inv.Link)
	ann.click("Connect")
	ann.waitJS(`document.querySelector("#conv-title")?.textContent === "Ben" && document.querySelector("#conv-state")?.textContent === "connected"`, 60*time.Second, "Ann connected with Ben")
	ben.waitContact(t, inv.Contact)

	const rounds, fromBen, fromAnn = 4, 6, 4
	var benSent, annTyped []string
	annSent := map[string]bool{} // shown as sent (or delivered) before a crash
	for r := range rounds {
		// Ben sends while Ann types, and Ann's tab dies somewhere in it.
		done := make(chan error, 1)
		go func() {
			for i := range fromBen {
				text := fmt.Sprintf("Ben %d.%d", r, i)
				if _, err := ben.p.SendText(opCtx(t), inv.Contact, text); err != nil {
					done <- err
					return
				}
				time.Sleep(time.Duration(benRng.IntN(40)) * time.Millisecond)
			}
			done <- nil
		}()
		// The crash comes after a random number of Ann's messages and a
		// random pause: mostly while her last ones are being stored and
		// sent and Ben's are arriving.
		typed := rng.IntN(fromAnn + 1)
		for i := range typed {
			text := fmt.Sprintf("Ann %d.%d", r, i)
			ann.send(text)
			annTyped = append(annTyped, text)
		}
		time.Sleep(time.Duration(rng.IntN(60)) * time.Millisecond)
		for _, text := range eval[[]string](ann, `[...document.querySelectorAll("#messages .msg.out")].filter(e => e.dataset.status === "sent" || e.dataset.status === "delivered").map(e => e.querySelector(".text").textContent)`) {
			annSent[text] = true
		}
		crash(t, ann)
		if err := <-done; err != nil {
			t.Fatalf("Ben sending: %v", err)
		}
		for i := range fromBen {
			benSent = append(benSent, fmt.Sprintf("Ben %d.%d", r, i))
		}
		// The same browser profile again: the profile has no passphrase,
		// so the page opens it and its last conversation.
		ann = newTabBeside(t, holder, fmt.Sprintf("ann-after-crash-%d", r))
		ann.run(chromedp.Navigate(base + "/"))
		ann.openContact("Ben")
	}

	// Everything arrives, once.
	ann.waitJS(fmt.Sprintf(`(() => { const got = [...document.querySelectorAll("#messages .msg.in .text")].map(e => e.textContent);
		return JSON.stringify(got) === %q })()`, jsonList(benSent)), 2*time.Minute, "Ben's messages, each once, in order")
	annShown := ann.texts(false)
	if dup := duplicates(annShown); len(dup) > 0 {
		t.Errorf("Ann's page shows her messages %q more than once", dup)
	}
	for text := range annSent {
		if !slices.Contains(annShown, text) {
			t.Errorf("%q was shown as sent before a crash and is gone after it", text)
		}
	}
	for _, text := range annShown {
		if !slices.Contains(annTyped, text) {
			t.Errorf("Ann's page shows %q, which she never typed", text)
		}
	}
	waitNative(t, "Ben receives what Ann's page shows as hers, each once", func() (bool, error) {
		ms, err := ben.p.Messages(inv.Contact, 0, 200)
		var got []string
		for _, m := range ms {
			if m.Incoming {
				got = append(got, m.Text)
			}
		}
		return slices.Equal(got, annShown), err
	})
	t.Logf("%d crashes; Ann typed %d messages and %d survived (%d were shown as sent before a crash), Ben sent %d",
		rounds, len(annTyped), len(annShown), len(annSent), len(benSent))
}

// crash kills p's renderer (and the core's worker with it) without any
// chance to finish a write, and closes the tab.
func crash(t *testing.T, p *tab) {
	t.Helper()
	p.allowErrors = true // what the page logs as it dies is not a defect
	ctx, cancel := context.WithTimeout(p.ctx, scaled(10*time.Second))
	defer cancel()
	_, _ = chromedp.Call(ctx, cdppage.Crash, cdp.Empty{}) // the renderer does not answer
	p.crashed = true                                      // nothing to screenshot or ask
	p.close()
}

func jsonList(xs []string) string {
	b, err := json.Marshal(xs)
	if err != nil {
		panic(err) // a []string always marshals
	}
	return string(b)
}

func duplicates(xs []string) []string {
	seen := map[string]bool{}
	var dup []string
	for _, x := range xs {
		if seen[x] {
			dup = append(dup, x)
		}
		seen[x] = true
	}
	return dup
}
