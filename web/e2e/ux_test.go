//go:build e2e

package e2e

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/cdproto/browser"
	"github.com/chromedp/chromedp"
	"github.com/chromedp/chromedp/kb"
)

// What people expect of a messenger, each part as a person would do it:
// found by the names on the screen, checked with axe, with screenshots.

// messageJS finds the message item whose text is text.
func messageJS(text string) string {
	return fmt.Sprintf(`[...document.querySelectorAll("#messages li.msg")].find(li => li.querySelector(".text")?.textContent === %q)`, text)
}

// action opens the actions menu of the message with text and picks action.
func (p *tab) action(text, action string) {
	p.t.Helper()
	p.waitJS(messageJS(text)+` !== undefined`, 30*time.Second, "the message "+text)
	eval[bool](p, `(() => { `+messageJS(text)+`.querySelector("button.msg-menu").click(); return true })()`)
	p.waitJS(`document.querySelector(".menu[role=menu]") !== null`, 10*time.Second, "the actions menu")
	find := fmt.Sprintf(`[...document.querySelectorAll(".menu [role^=menuitem]")].find(b => b.textContent === %q)`, action)
	p.waitJS(find+` !== undefined`, 10*time.Second, "the action "+action)
	eval[bool](p, `(() => { `+find+`.click(); return true })()`)
}

// hasText reports whether the open conversation shows a message with text.
func (p *tab) hasText(text string) bool {
	return eval[bool](p, messageJS(text)+` !== undefined`)
}

func (p *tab) waitMessage(text string) {
	p.t.Helper()
	p.waitJS(messageJS(text)+` !== undefined`, 60*time.Second, "the message "+text)
}

// grant grants the page's browser context the permissions named.
func (p *tab) grant(names ...string) {
	p.t.Helper()
	for _, name := range names {
		if _, err := chromedp.CallBrowser(p.ctx, browser.SetPermission, browser.SetPermissionParams{
			Permission: &browser.PermissionDescriptor{Name: name}, Setting: browser.PermissionSettingGranted,
			BrowserContextID: chromedp.FromContext(p.ctx).BrowserContextID,
		}); err != nil {
			p.t.Fatalf("granting %s: %v", name, err)
		}
	}
}

// inviteNamed creates a one-time link for name and returns it.
func (p *tab) inviteNamed(name string) string {
	p.t.Helper()
	p.click("Create one-time link")
	p.fill("Who is it for? (only you see this)", name)
	p.click("Create link")
	p.waitJS(`document.querySelector("#invite-link")?.value.includes("#/invite/")`, 30*time.Second, "invitation link")
	return eval[string](p, `document.querySelector("#invite-link").value`)
}

// TestFirstContact: a newcomer opens an invitation before having a
// profile; named invitations; "I have a link" creates nothing; a QR
// picture is read in the core.
func TestFirstContact(t *testing.T) {
	_, base := hostWithTwoRelays(t)
	a := newPerson(t, "alice")
	a.run(chromedp.EmulateViewport(1280, 800))
	a.run(chromedp.Navigate(base + "/"))
	a.createProfile("Alice", "")

	// "I have a link" only asks for one: no stray invitation appears.
	a.click("I have a link")
	a.waitVisible("#paste-link")
	a.checkA11y("I have a link")
	if n := eval[int](a, `document.querySelectorAll("#contacts .contact").length`); n != 0 {
		t.Errorf("opening I have a link made %d chat entries", n)
	}

	link := a.inviteNamed("Bob")
	a.screenshot(t.Name() + "-invitation")
	a.checkA11y("invitation")
	hasShare := eval[bool](a, `"share" in navigator`)
	if shown := eval[bool](a, `[...document.querySelectorAll("button")].some(b => b.textContent === "Share")`); shown != hasShare {
		t.Errorf("Share shown %v where the Web Share API exists %v", shown, hasShare)
	}
	// The pending invitation is listed by whom it is for; it shows its link again.
	a.waitJS(`[...document.querySelectorAll("#contacts .c-name")].some(e => e.textContent === "For Bob")`, 10*time.Second, "the invitation for Bob listed")
	eval[bool](a, `(() => { [...document.querySelectorAll("#contacts .contact")].find(b => b.querySelector(".c-name").textContent === "For Bob").click(); return true })()`)
	a.waitJS(fmt.Sprintf(`document.querySelector("#invite-link")?.value === %q`, link), 30*time.Second, "the same link shown again")

	// A second invitation, then cancelled: it leaves the list.
	a.inviteNamed("Carol")
	a.click("Cancel invitation")
	a.waitJS(`![...document.querySelectorAll("#contacts .c-name")].some(e => e.textContent === "For Carol")`, 30*time.Second, "the cancelled invitation gone")

	// The QR code, as a picture file, is read in the core into the link.
	eval[bool](a, `(() => { [...document.querySelectorAll("#contacts .contact")].find(b => b.querySelector(".c-name").textContent === "For Bob").click(); return true })()`)
	a.waitVisible("#invite-qr")
	png, err := chromedp.Run(a.ctx, chromedp.Screenshot(chromedp.CSS("#invite-qr")))
	if err != nil {
		t.Fatal(err)
	}
	qrFile := filepath.Join(t.TempDir(), "qr.png")
	if err := os.WriteFile(qrFile, png, 0o644); err != nil {
		t.Fatal(err)
	}

	// Bob has no profile yet: the welcome screen says he was invited, and
	// that survives a reload.
	b := newPerson(t, "bob")
	b.run(chromedp.EmulateViewport(360, 740))
	b.run(chromedp.Navigate(link))
	b.waitVisible("#onboarding")
	b.waitJS(`document.querySelector("#invited")?.textContent.includes("You were invited to chat on Wisp — create a profile to connect")`, 10*time.Second, "the invitation on the welcome screen")
	if !eval[bool](b, `document.querySelector("#onboarding").textContent.includes("relays") && document.querySelector("#onboarding").textContent.includes("lives only in this browser")`) {
		t.Error("onboarding does not explain relays and where data lives before the profile exists")
	}
	b.run(chromedp.Reload())
	b.waitVisible("#onboarding")
	b.waitJS(`document.querySelector("#invited") !== null`, 10*time.Second, "the invitation after a reload")
	b.screenshot(t.Name() + "-invited-welcome-phone")
	b.checkA11y("invited welcome")
	b.fill("Display name", "Bob")
	b.click("Create profile")
	b.waitVisible("#join") // straight to "Connect to this invitation?"
	b.click("Connect")
	b.waitJS(`document.querySelector("#conv-state")?.textContent === "connected"`, 60*time.Second, "Bob connected")
	// Alice sees which invitation was used.
	a.waitJS(`document.querySelector("#toast")?.textContent.includes("the invitation for Bob") || document.querySelector("#conv-title")?.textContent === "Bob"`, 60*time.Second, "Alice told which invitation")
	a.openContact("Bob")
	a.click("Details")
	a.waitJS(`document.querySelector(".details")?.textContent.includes("Connected with your one-time link for Bob")`, 10*time.Second, "the invitation's name in the details")

	// Carol picks the QR picture of a used link: it is read, and refused as used.
	c := newPerson(t, "carol")
	c.run(chromedp.Navigate(base + "/"))
	c.createProfile("Carol", "")
	c.click("I have a link")
	c.run(chromedp.SetUploadFiles(chromedp.CSS("#qr-file"), []string{qrFile}))
	c.waitJS(fmt.Sprintf(`document.querySelector("#paste-link").value === %q`, link), 30*time.Second, "the link read from the QR picture")
	c.click("Connect")
	c.waitJS(`document.querySelector("#paste-error")?.textContent === "This invitation was already used. Ask for a new one."`, 60*time.Second, "already used")
	// A picture with no QR code in it.
	c.run(chromedp.SetUploadFiles(chromedp.CSS("#qr-file"), []string{filepath.Join(root, "web", "icons", "apple-touch-icon.png")}))
	c.waitJS(`document.querySelector("#paste-error")?.textContent.startsWith("No QR code was found in that picture.")`, 30*time.Second, "no QR code found")
}

// TestMessageActions: reply, copy, edit, delete for me and for everyone,
// reactions and info, by menu button, right-click and keyboard.
func TestMessageActions(t *testing.T) {
	_, base := hostWithTwoRelays(t)
	a, b := aliceAndBob(t, base)
	for _, p := range []*tab{a, b} {
		p.grant("clipboard-read", "clipboard-write")
	}
	a.send("first from Alice")
	a.send("second from Alice")
	a.send("third from Alice")
	b.waitMessage("third from Alice")

	// Reply: Bob quotes Alice's first; both see the quote, which jumps to it.
	b.action("first from Alice", "Reply")
	b.waitJS(`document.querySelector("#compose-context")?.textContent.includes("Replying to Alice")`, 10*time.Second, "the reply bar")
	b.send("a reply from Bob")
	for _, p := range []*tab{a, b} {
		p.waitJS(messageJS("a reply from Bob")+`?.querySelector(".quote")?.textContent.includes("first from Alice")`, 60*time.Second, "the quote")
	}
	a.screenshot(t.Name() + "-reply")
	eval[bool](a, `(() => { `+messageJS("a reply from Bob")+`.querySelector(".quote").click(); return true })()`)
	a.waitJS(`document.activeElement === `+messageJS("first from Alice"), 10*time.Second, "the jump to the original")

	// Edit: Bob keeps only the latest text, marked edited.
	a.action("second from Alice", "Edit")
	a.waitJS(`document.querySelector("#composer").value === "second from Alice"`, 10*time.Second, "the text to edit")
	a.fill("Message", "second, edited")
	a.run(chromedp.KeyEvent("\r"))
	b.waitJS(messageJS("second, edited")+`?.querySelector(".edited") != null`, 60*time.Second, "the edit on Bob's side")
	if b.hasText("second from Alice") {
		t.Error("Bob still shows the text before the edit")
	}

	// Delete for everyone: Bob sees "message deleted".
	a.action("third from Alice", "Delete for everyone")
	a.waitJS(`document.querySelector("dialog.confirm")?.open === true`, 10*time.Second, "the confirmation")
	a.checkA11y("delete confirmation")
	a.click("Delete for everyone")
	b.waitJS(`document.querySelector("#messages li.msg.deleted")?.textContent.includes("Message deleted")`, 60*time.Second, "the deletion on Bob's side")
	if b.hasText("third from Alice") {
		t.Error("Bob still shows the deleted text")
	}

	// Reactions: Bob's 👍 shows on Alice's side, once; pressing it again takes it back.
	b.action("first from Alice", "React")
	b.waitJS(`document.querySelector(".reactions-menu") !== null`, 10*time.Second, "the reactions")
	eval[bool](b, `(() => { [...document.querySelectorAll(".reactions-menu button")].find(x => x.textContent === "👍").click(); return true })()`)
	a.waitJS(messageJS("first from Alice")+`?.querySelector(".reaction")?.textContent === "👍 1"`, 60*time.Second, "the reaction on Alice's side")

	// Copy puts the text on the clipboard.
	a.action("first from Alice", "Copy")
	a.waitJS(`navigator.clipboard.readText().then(t => t === "first from Alice")`, 10*time.Second, "the copied text")

	// Info: when it was sent and delivered.
	a.action("first from Alice", "Info")
	a.waitJS(`document.querySelector("dialog.info")?.textContent.includes("Delivered")`, 10*time.Second, "the info")
	a.checkA11y("message info")
	a.screenshot(t.Name() + "-info")
	a.click("Close")

	// Delete for me: gone on Bob's side only.
	b.action("a reply from Bob", "Delete for me")
	b.click("Delete for me")
	b.waitJS(messageJS("a reply from Bob")+` === undefined`, 30*time.Second, "deleted for Bob")
	b.run(chromedp.Reload())
	b.waitVisible("#messages")
	b.waitJS(`document.querySelector("#messages")?.dataset.loaded === "true"`, 30*time.Second, "history loaded")
	if b.hasText("a reply from Bob") {
		t.Error("a message deleted for me is back after a reload")
	}
	if !a.hasText("a reply from Bob") {
		t.Error("delete for me deleted Alice's copy")
	}

	// Keyboard: a message takes focus; the context-menu key opens its menu;
	// Escape closes it.
	eval[bool](a, `(() => { `+messageJS("first from Alice")+`.focus(); return true })()`)
	a.run(chromedp.KeyEvent(kb.ContextMenu))
	a.waitJS(`document.activeElement?.getAttribute("role") === "menuitem"`, 10*time.Second, "the menu by keyboard")
	a.checkA11y("message menu")
	a.screenshot(t.Name() + "-menu")
	a.run(chromedp.KeyEvent("\x1b"))
	a.waitJS(`document.querySelector(".menu") === null && document.activeElement === `+messageJS("first from Alice"), 10*time.Second, "the menu closed, focus back")
	// Right-click opens it too.
	eval[bool](a, `(() => { const li = `+messageJS("first from Alice")+`; li.dispatchEvent(new MouseEvent("contextmenu", { bubbles: true, clientX: 200, clientY: 200 })); return true })()`)
	a.waitJS(`document.querySelector(".menu[role=menu]") !== null`, 10*time.Second, "the menu by right-click")
	a.run(chromedp.KeyEvent("\x1b"))
}

// TestConversationView: links, right-to-left text, times, accessible
// names, the length limit, drafts, "New messages ↓", the unread marker,
// search, notifications and the unread count in the title.
func TestConversationView(t *testing.T) {
	_, base := hostWithTwoRelays(t)
	a, b := aliceAndBob(t, base)

	// Notifications: Bob turns them on in Settings (after a gesture); the
	// page's Notification is recorded instead of shown.
	b.grant("notifications")
	eval[bool](b, `(() => { window.__notes = []; const N = window.Notification; window.Notification = class extends N { constructor(title, o) { super(title, o); window.__notes.push({ title, body: o?.body }); } }; Object.defineProperty(window.Notification, "permission", { get: () => N.permission }); window.Notification.requestPermission = () => N.requestPermission(); return true })()`)
	b.click("Settings")
	b.click("Turn notifications on")
	b.waitJS(`document.querySelector("#notify-status")?.textContent.startsWith("On")`, 10*time.Second, "notifications on")
	b.checkA11y("settings with notifications")

	// While Bob is on Settings, Alice writes: a notification without the
	// text, and the count in the title.
	a.send("see https://example.com/page?x=1, then tell me")
	a.send("مرحبا بالعالم")
	b.waitJS(`window.__notes.length >= 2 && window.__notes.every(n => n.title === "New message" && !n.body.includes("example"))`, 60*time.Second, "two notifications without content")
	b.waitJS(`document.title === "(2) Wisp"`, 30*time.Second, "the unread count in the title")

	// Opening the chat: the unread marker, then the title clears.
	b.openContact("Alice")
	b.waitJS(`document.querySelector("#unread-marker") !== null`, 10*time.Second, "the unread marker")
	b.waitJS(`document.title === "Wisp"`, 10*time.Second, "the title without a count")
	// The link opens in a new tab without referrer or opener; no preview.
	link := eval[string](b, `(() => { const l = `+messageJS("see https://example.com/page?x=1, then tell me")+`.querySelector("a"); return l.href + " " + l.target + " " + l.rel })()`)
	if link != "https://example.com/page?x=1 _blank noopener noreferrer" {
		t.Errorf("the link is %q", link)
	}
	// Right-to-left text lays out by itself; the time has the full date.
	if dir := eval[string](b, messageJS("مرحبا بالعالم")+`.querySelector(".text").getAttribute("dir")`); dir != "auto" {
		t.Errorf("an Arabic message has dir %q", dir)
	}
	if full := eval[string](b, messageJS("مرحبا بالعالم")+`.querySelector("time").title`); !strings.Contains(full, fmt.Sprint(time.Now().Year())) {
		t.Errorf("the time's title is %q, not the full date", full)
	}
	// Each message's accessible name says who and when.
	if name := eval[string](b, messageJS("مرحبا بالعالم")+`.getAttribute("aria-label")`); !strings.HasPrefix(name, "Alice, ") || !strings.Contains(name, fmt.Sprint(time.Now().Year())) {
		t.Errorf("the message's accessible name is %q", name)
	}
	b.screenshot(t.Name() + "-links-rtl")
	b.checkA11y("conversation with links and RTL")

	// The length limit: refused with a visible count, never cut.
	long := strings.Repeat("é", 4001) // 8002 bytes
	eval[bool](b, fmt.Sprintf(`(() => { const c = document.querySelector("#composer"); c.value = %q; c.dispatchEvent(new Event("input")); return true })()`, long))
	b.waitJS(`document.querySelector("#composer-count")?.textContent.includes("2 too many") && document.querySelector("#send").disabled`, 10*time.Second, "the count over the limit")
	b.screenshot(t.Name() + "-too-long")
	if got := eval[int](b, `document.querySelector("#composer").value.length`); got != 4001 {
		t.Errorf("the composer cut the text to %d characters", got)
	}

	// A draft survives leaving the chat and a reload.
	b.fill("Message", "half a thought")
	b.click("Settings")
	b.waitJS(`[...document.querySelectorAll("#contacts .c-last")].some(e => e.textContent === "Draft: half a thought")`, 10*time.Second, "the draft in the list")
	b.openContact("Alice")
	b.run(chromedp.Reload())
	b.waitVisible("#app")
	// The chat open before the reload opens again.
	b.waitJS(`document.querySelector("#conv-title")?.textContent === "Alice"`, 30*time.Second, "the chat reopened after the reload")
	b.waitJS(`document.querySelector("#composer")?.value === "half a thought"`, 30*time.Second, "the draft after a reload")
	b.fill("Message", "")
	b.send("the draft, sent")

	// Scrolled up, a new message shows "New messages ↓" instead of jumping.
	for i := range 30 {
		a.send(fmt.Sprintf("filler %d", i))
	}
	b.waitMessage("filler 29")
	eval[bool](b, `(() => { document.querySelector("#messages").scrollTop = 0; return true })()`)
	b.waitJS(`(() => { const l = document.querySelector("#messages"); return l.scrollTop < 100 })()`, 10*time.Second, "scrolled up")
	a.send("while Bob reads back")
	b.waitJS(`(() => { const n = document.querySelector("#new-below"); return n && !n.hidden && n.textContent === "1 new message ↓" })()`, 60*time.Second, "New messages ↓")
	b.screenshot(t.Name() + "-new-below")
	b.click("1 new message: show them")
	b.waitJS(`(() => { const l = document.querySelector("#messages"); return l.scrollHeight - l.scrollTop - l.clientHeight < 60 })()`, 10*time.Second, "at the bottom")

	// Search across chats, then within the chat: a result jumps to its message.
	b.fill("Search all chats", "EXAMPLE.com")
	b.click("Search")
	b.waitJS(`document.querySelectorAll("#results li").length === 1`, 30*time.Second, "one result")
	b.checkA11y("search results")
	b.screenshot(t.Name() + "-search")
	eval[bool](b, `(() => { document.querySelector("#results .result").click(); return true })()`)
	b.waitJS(`document.activeElement === `+messageJS("see https://example.com/page?x=1, then tell me"), 30*time.Second, "the jump to the found message")
	b.click("Search in this chat")
	b.fill("Search in this chat", "filler 2")
	b.click("Find")
	b.waitJS(`document.querySelectorAll("#results li").length === 11`, 30*time.Second, "filler 2 and 20–29")
}

// TestContactLeft: a contact who deleted the conversation is shown as
// left; the composer closes with the reason.
func TestContactLeft(t *testing.T) {
	_, base := hostWithTwoRelays(t)
	a, b := aliceAndBob(t, base)
	a.send("before leaving")
	b.waitMessage("before leaving")
	a.click("Details")
	a.click("Delete contact")
	a.waitJS(`document.querySelector("dialog.confirm")?.open === true`, 10*time.Second, "the confirmation")
	eval[bool](a, `(() => { document.querySelector("dialog.confirm button.danger").click(); return true })()`)
	b.waitJS(`document.querySelector("#conv-state")?.textContent === "left" && document.querySelector("#composer") === null && document.querySelector("#composer-closed")?.textContent.startsWith("Alice left")`, 60*time.Second, "Alice shown as left")
	b.screenshot(t.Name() + "-left")
	b.checkA11y("contact left")
}

// TestProfileSettings: name and picture reach contacts; passphrase set,
// changed and used; the profile chooser; Lock without a passphrase; the
// backup passphrase typed twice; Delete offers a backup first.
func TestProfileSettings(t *testing.T) {
	_, base := hostWithTwoRelays(t)
	a, b := aliceAndBob(t, base)
	a.click("Settings")
	a.fill("Display name", "Alicia")
	a.click("Save profile")
	b.waitJS(`[...document.querySelectorAll("#contacts .c-name")].some(e => e.textContent === "Alicia") || document.querySelector("#conv-title")?.textContent === "Alicia"`, 60*time.Second, "Bob sees the new name")

	// Lock with no passphrase explains and offers to set one.
	a.click("Settings")
	a.click("Lock")
	a.waitJS(`document.querySelector("dialog.confirm")?.textContent.includes("nothing to unlock it with")`, 10*time.Second, "the explanation")
	a.checkA11y("lock without passphrase")
	a.click("Set a passphrase")
	a.fill("Passphrase", "alicia's passphrase")
	a.fill("Passphrase again", "alicia's passphrase")
	a.click("Set passphrase")
	a.waitJS(`document.querySelector("#toast")?.textContent.startsWith("Passphrase saved")`, 30*time.Second, "passphrase set")

	// Change it: the old one is needed.
	a.waitJS(`document.querySelector("#passphrase-box summary")?.textContent === "Change passphrase"`, 30*time.Second, "the settings with a passphrase")
	eval[bool](a, `(() => { document.querySelector("#passphrase-box summary").click(); return true })()`)
	a.fill("Current passphrase", "wrong one here")
	a.fill("New passphrase", "alicia's new passphrase")
	a.fill("New passphrase again", "alicia's new passphrase")
	a.click("Change passphrase")
	a.waitJS(`document.querySelector("#pass-error")?.textContent === "The current passphrase is wrong. Nothing was changed."`, 30*time.Second, "wrong old passphrase refused")
	a.fill("Current passphrase", "alicia's passphrase")
	a.click("Change passphrase")
	a.waitJS(`document.querySelector("#toast")?.textContent.startsWith("Passphrase saved")`, 30*time.Second, "passphrase changed")

	// The backup passphrase is typed twice.
	a.click("Settings")
	a.fill("Backup passphrase", "backup passphrase 1")
	a.fill("Backup passphrase again", "backup passphrase 2")
	a.click("Export backup")
	a.waitJS(`document.querySelector("#export-error")?.textContent.startsWith("The two passphrases are not the same")`, 10*time.Second, "the mismatch")

	// Delete profile offers a backup first.
	a.click("Delete profile")
	a.waitJS(`document.querySelector("dialog.confirm")?.textContent.includes("Export a backup first")`, 10*time.Second, "the offer of a backup")
	a.checkA11y("delete profile")
	a.click("Export a backup first")

	// Lock; the chooser and unlock with the new passphrase.
	a.click("Lock")
	a.waitVisible("#unlock")
	a.fill("Passphrase", "alicia's new passphrase")
	a.click("Unlock")
	a.waitVisible("#app")
}

// TestPhoneLayout: at 360×740 the header and the status footer take no
// height once a profile is open, the chat header stays on one line, the
// composer's placeholder fits, and a toast does not cover the composer.
func TestPhoneLayout(t *testing.T) {
	_, base := hostWithTwoRelays(t)
	a, b := aliceAndBob(t, base)
	_ = a
	b.run(chromedp.EmulateViewport(360, 740))
	b.waitVisible("#composer")
	if h := eval[float64](b, `document.querySelector(".bar").getBoundingClientRect().height + document.querySelector(".foot").getBoundingClientRect().height`); h > 2 {
		t.Errorf("header and footer take %.0f px on a phone", h)
	}
	// The name sits beside the back button, not under it.
	if d := eval[float64](b, `Math.abs(document.querySelector("#conv-title").getBoundingClientRect().top - document.querySelector(".conv-head .back").getBoundingClientRect().top)`); d > 12 {
		t.Errorf("the chat's name is %.0f px below the back button", d)
	}
	// The placeholder fits in the composer.
	if !eval[bool](b, `(() => { const c = document.querySelector("#composer"); const s = getComputedStyle(c); const x = document.createElement("canvas").getContext("2d"); x.font = s.font; return x.measureText(c.placeholder).width + parseFloat(s.paddingLeft) + parseFloat(s.paddingRight) <= c.clientWidth })()`) {
		t.Error("the composer's placeholder is clipped")
	}
	// A toast does not cover the composer.
	eval[bool](b, `(() => { const t = document.querySelector("#toast"); t.textContent = "A notice"; t.hidden = false; return true })()`)
	if eval[bool](b, `(() => { const t = document.querySelector("#toast").getBoundingClientRect(), c = document.querySelector(".composer").getBoundingClientRect(); return t.bottom > c.top && t.top < c.bottom })()`) {
		t.Error("the toast covers the composer")
	}
	b.screenshot(t.Name() + "-conversation-phone")
	// Version and core status are in Settings → About.
	b.click("Back to chats")
	b.click("Settings")
	b.waitJS(`document.querySelector("#about-version")?.textContent.startsWith("Wisp core ")`, 10*time.Second, "About in Settings")
	b.screenshot(t.Name() + "-settings-phone")
	b.checkA11y("settings, phone")
}
