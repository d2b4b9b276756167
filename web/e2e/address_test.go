//go:build e2e

package e2e

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
)

// TestContactAddress: Alice creates a contact address; Bob, with no
// profile yet, opens it, makes his profile and asks to connect; Alice
// sees "Bob wants to connect" and accepts; they exchange messages. Then
// Alice turns the address off and on, and deletes it. Everything is found
// by its accessible name.
func TestContactAddress(t *testing.T) {
	_, base := hostWithTwoRelays(t)
	a := newPerson(t, "alice")
	a.run(chromedp.Navigate(base + "/"))
	a.createProfile("Alice", "")
	a.click("Contact address")
	a.waitVisible("#address")
	a.click("Create address")
	a.waitJS(`document.querySelector("#address-link")?.value.includes("/#/address/")`, 30*time.Second, "the address link")
	link := eval[string](a, `document.querySelector("#address-link").value`)
	a.waitJS(`document.querySelector("#address-status")?.textContent.startsWith("On:")`, 10*time.Second, "the address on")
	a.screenshot(t.Name() + "-address")
	a.checkA11y("contact address")

	// The QR code shown decodes to exactly the link.
	png, err := chromedp.Run(a.ctx, chromedp.Screenshot(chromedp.CSS("#address-qr")))
	if err != nil {
		t.Fatal(err)
	}
	qrFile := filepath.Join(t.TempDir(), "qr.png")
	if err := os.WriteFile(qrFile, png, 0o644); err != nil {
		t.Fatal(err)
	}
	out, err := exec.Command("zbarimg", "--quiet", "--raw", qrFile).Output()
	if err != nil {
		t.Fatalf("zbarimg: %v", err)
	}
	if got := strings.TrimSpace(string(out)); got != link {
		t.Errorf("the QR code reads %q, the link is %q", got, link)
	}

	// Bob opens the link before he has a profile.
	b := newPerson(t, "bob")
	b.run(chromedp.EmulateViewport(360, 740))
	b.run(chromedp.Navigate(link))
	b.waitVisible("#onboarding")
	b.waitJS(`document.querySelector("#invited") !== null`, 10*time.Second, "the invitation on the welcome screen")
	b.fill("Display name", "Bob")
	b.click("Create profile")
	b.waitVisible("#address-join") // "Connect to this address?"
	b.checkA11y("connect to this address")
	b.click("Ask to connect")
	b.waitVisible("#request-sent")
	b.click("‹ Chats")
	b.waitJS(`[...document.querySelectorAll("#contacts .c-name")].some(e => e.textContent === "Request sent")`, 10*time.Second, "Request sent in the chat list")
	b.openRequestSent()

	// Alice, still on her address, sees the request and accepts it.
	a.waitJS(`[...document.querySelectorAll("#requests .request-text")].some(e => e.textContent === "Bob wants to connect")`, 60*time.Second, "Bob wants to connect")
	a.screenshot(t.Name() + "-request")
	a.checkA11y("a request")
	a.click("Accept")
	a.waitJS(`document.querySelector("#conv-title")?.textContent === "Bob"`, 30*time.Second, "the chat with Bob")
	a.waitJS(`document.querySelector("#conv-state")?.textContent === "connected"`, 60*time.Second, "Alice connected")
	b.waitJS(`document.querySelector("#conv-title")?.textContent === "Alice"`, 60*time.Second, "Bob's chat with Alice opened")
	b.waitJS(`document.querySelector("#conv-state")?.textContent === "connected"`, 60*time.Second, "Bob connected")
	a.send("hello Bob")
	b.waitMessage("hello Bob")
	b.send("hi Alice")
	a.waitMessage("hi Alice")

	// Off and on again, then deleted: the chat stays.
	a.click("Contact address")
	a.waitVisible("#address-link")
	a.click("Turn off address")
	a.waitJS(`document.querySelector("#address-status")?.textContent.startsWith("Off:")`, 10*time.Second, "the address off")
	a.click("Turn on address")
	a.waitJS(`document.querySelector("#address-status")?.textContent.startsWith("On:")`, 10*time.Second, "the address on again")
	a.click("Delete address")
	a.waitJS(`document.querySelector("dialog.confirm")?.open === true`, 10*time.Second, "the confirmation")
	a.click("Delete")
	a.waitJS(`document.querySelector("dialog.confirm") === null`, 10*time.Second, "the dialog closed")
	a.waitJS(`[...document.querySelectorAll("#address-area button")].some(b => b.textContent === "Create address")`, 30*time.Second, "Create address again")
	a.openContact("Bob")
	a.send("still here")
	b.waitMessage("still here")
}

// openRequestSent opens the pending "Request sent" entry of the chat list.
func (p *tab) openRequestSent() {
	p.t.Helper()
	eval[bool](p, `(() => { [...document.querySelectorAll("#contacts .contact")].find(b => b.querySelector(".c-name")?.textContent === "Request sent").click(); return true })()`)
	p.waitVisible("#request-sent")
	p.checkA11y("request sent")
}
