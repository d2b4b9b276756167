//go:build e2e

package e2e

import (
	"testing"
	"time"
)

// TestFixConnection runs "Fix connection" from a contact's details: both
// conversations show the re-synchronisation, the security code changes
// (the same on both sides), and messages keep flowing both ways.
func TestFixConnection(t *testing.T) {
	_, relay := startRelay(t)
	_, base := startHost(t, "-relay", relay)
	a, b := aliceAndBob(t, base)
	b.send("before the fix")
	a.waitMessage("before the fix")
	a.click("Details")
	a.waitJS(`document.querySelector("#encryption-now")?.textContent.startsWith("Messages with this contact are end-to-end encrypted.")`, 30*time.Second, "the encryption section")
	before := eval[string](a, `document.querySelector("#security-code").textContent`)
	a.checkA11y("encryption section")
	a.click("Fix connection")
	a.openContact("Bob")
	for _, p := range []*tab{a, b} {
		p.waitNotice("Re-synchronising encryption…")
		p.waitNotice("Encryption re-synced. The security code changed: compare it again if you had verified it.")
	}
	b.send("after the fix")
	a.waitMessage("after the fix")
	a.send("thanks")
	b.waitMessage("thanks")
	a.click("Details")
	a.waitJS(`document.querySelector("#encryption-now")?.textContent.startsWith("Messages with this contact are end-to-end encrypted.")`, 30*time.Second, "encryption shown as fine again")
	after := eval[string](a, `document.querySelector("#security-code").textContent`)
	b.click("Details")
	b.waitJS(`document.querySelector("#security-code")?.textContent.length > 0`, 30*time.Second, "Bob's security code")
	if theirs := eval[string](b, `document.querySelector("#security-code").textContent`); after == before || theirs != after {
		t.Errorf("security code before %q, after %q, Bob's %q: want a new code, the same on both sides", before, after, theirs)
	}
}
