//go:build e2e

package e2e

import (
	"fmt"
	"testing"
	"time"

	"github.com/chromedp/cdproto/emulation"
	"github.com/chromedp/chromedp"
)

// TestHistoryPaging: a conversation opens on its newest page, and scrolling
// up loads the older messages, in order, under a day separator.
func TestHistoryPaging(t *testing.T) {
	_, relay := startRelay(t)
	_, base := startHost(t, "-relay", relay)
	a, b := aliceAndBob(t, base)
	const n = 65
	for i := range n {
		a.send(fmt.Sprintf("line %02d", i))
	}
	b.waitJS(fmt.Sprintf(`document.querySelectorAll("#messages .msg.in").length === %d`, n), 60*time.Second, "all received")
	b.run(chromedp.Reload())
	b.waitVisible("#app")
	b.openContact("Alice")
	b.waitJS(`document.querySelector("#messages")?.dataset.loaded === "true"`, 30*time.Second, "first page")
	if got := len(b.texts(true)); got != 50 {
		t.Errorf("the first page shows %d messages, want 50", got)
	}
	eval[bool](b, `(() => { const l = document.querySelector("#messages"); l.scrollTop = 0; l.dispatchEvent(new Event("scroll")); return true })()`)
	b.waitJS(fmt.Sprintf(`document.querySelectorAll("#messages .msg.in").length === %d`, n), 30*time.Second, "older messages")
	for i, got := range b.texts(true) {
		if want := fmt.Sprintf("line %02d", i); got != want {
			t.Fatalf("message %d is %q, want %q", i, got, want)
		}
	}
	if days := eval[[]string](b, `[...document.querySelectorAll("#messages .day")].map(e => e.textContent)`); len(days) != 1 || days[0] != "Today" {
		t.Errorf("day separators: %q", days)
	}
	// The dark theme passes the same accessibility rules (contrast above all).
	for _, p := range []*tab{a, b} {
		if _, err := chromedp.Call(p.ctx, emulation.SetEmulatedMedia, emulation.SetEmulatedMediaParams{
			Features: []*emulation.MediaFeature{{Name: "prefers-color-scheme", Value: "dark"}},
		}); err != nil {
			t.Fatal(err)
		}
	}
	b.checkA11y("conversation, dark")
	a.screenshot(t.Name() + "-dark")
	a.click("Settings")
	a.waitVisible(".settings")
	a.checkA11y("settings, dark")
}
