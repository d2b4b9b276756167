//go:build e2e

package e2e

import (
	"fmt"
	"testing"
	"time"
)

// TestChangeReceivingRelay: in a contact's details Alice moves the chat
// to her other relay with "Change receiving relay"; the details say it is
// moving, then (once Bob has sent something) where it is now; messages
// on both sides of the move arrive in order.
func TestChangeReceivingRelay(t *testing.T) {
	_, base := hostWithTwoRelays(t)
	a, b := aliceAndBob(t, base)
	b.send("before the move")
	a.waitMessage("before the move")
	a.click("Details")
	a.waitJS(`document.querySelector("#receiving-now")?.textContent.startsWith("Their messages reach you on ")`, 30*time.Second, "the receiving relay")
	before := eval[string](a, `document.querySelector("#receiving-now").textContent`)
	// Pick the relay not in use, by its label.
	eval[bool](a, `(() => {
		const s = document.querySelector("#receive-relay");
		const other = [...s.options].find((o) => !o.selected);
		s.value = other.value;
		return true;
	})()`)
	a.checkA11y("change receiving relay")
	a.click("Change receiving relay")
	a.waitJS(`document.querySelector("#receiving-now")?.textContent.startsWith("Moving to ")`, 30*time.Second, "the move shown as under way")
	b.send("during the move")
	a.waitJS(fmt.Sprintf(`(() => { const t = document.querySelector("#receiving-now")?.textContent ?? "";
		return t.startsWith("Their messages reach you on ") && t !== %q })()`, before), 60*time.Second, "the new relay shown")
	b.send("after the move")
	a.openContact("Bob")
	a.waitMessage("after the move")
	got := eval[[]string](a, `[...document.querySelectorAll("#messages li.msg .text")].map((e) => e.textContent)`)
	want := []string{"before the move", "during the move", "after the move"}
	i := 0
	for _, g := range got {
		if i < len(want) && g == want[i] {
			i++
		}
	}
	if i != len(want) {
		t.Errorf("Alice's conversation shows %q; want %q in this order", got, want)
	}
}
