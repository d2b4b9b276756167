//go:build e2e

package e2e

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
)

// Helpers that act like a person: find controls by their label or text.

// fill types text into the input labelled label.
func (p *tab) fill(label, text string) {
	p.t.Helper()
	find := fmt.Sprintf(`[...document.querySelectorAll("label")].find(l => l.textContent.trim() === %q && l.offsetParent !== null)`, label)
	p.waitJS(find+` !== undefined`, 30*time.Second, "field "+label)
	id := eval[string](p, `(() => { const l = `+find+`; return l ? l.htmlFor : "" })()`)
	if id == "" {
		p.t.Fatalf("no field labelled %q\nconsole:\n%s", label, p.console())
	}
	eval[bool](p, fmt.Sprintf(`(() => { const e = document.getElementById(%q); e.value = ""; e.focus(); return true })()`, id))
	p.run(chromedp.SendKeys(chromedp.CSS("#"+id), text))
}

// click clicks the enabled button whose text or aria-label is name,
// waiting for it to appear.
func (p *tab) click(name string) {
	p.t.Helper()
	find := fmt.Sprintf(`[...document.querySelectorAll("button")].find(b => !b.disabled && b.offsetParent !== null && (b.textContent.trim() === %q || b.getAttribute("aria-label") === %q))`, name, name)
	p.waitJS(find+` !== undefined`, 30*time.Second, "button "+name)
	eval[bool](p, `(() => { `+find+`.click(); return true })()`)
}

// waitJS waits until expr is truthy, for timeout scaled.
func (p *tab) waitJS(expr string, timeout time.Duration, what string) {
	p.t.Helper()
	timeout = scaled(timeout)
	if _, err := chromedp.Run(p.ctx, chromedp.Poll[bool](expr,
		chromedp.WithPollingInterval(25*time.Millisecond), chromedp.WithPollingTimeout(timeout))); err != nil {
		p.t.Fatalf("waiting for %s: %v\nconsole:\n%s\npage:\n%s", what, err, p.console(), p.pageText())
	}
}

// pageText is the text the page shows, for failure messages.
func (p *tab) pageText() string {
	ctx, cancel := context.WithTimeout(p.ctx, 5*time.Second)
	defer cancel()
	s, err := chromedp.Run(ctx, chromedp.Evaluate[string](`document.body.innerText.slice(0, 3000)`))
	if err != nil {
		return "(unreadable: " + err.Error() + ")"
	}
	return s
}

// waitVisible waits for the element matching css to be shown.
func (p *tab) waitVisible(css string) {
	p.t.Helper()
	p.waitJS(fmt.Sprintf(`(() => { const e = document.querySelector(%q); return !!e && e.offsetParent !== null })()`, css), 60*time.Second, css)
}

// createProfile goes through onboarding.
func (p *tab) createProfile(name, passphrase string) {
	p.t.Helper()
	p.waitVisible("#onboarding")
	p.fill("Display name", name)
	if passphrase != "" {
		p.fill("Passphrase", passphrase)
	}
	p.click("Create profile")
	p.waitVisible("#app")
}

// send types a message in the composer and presses Enter.
func (p *tab) send(text string) {
	p.t.Helper()
	p.run(chromedp.Focus(chromedp.CSS("#composer")), chromedp.SendKeys(chromedp.CSS("#composer"), text),
		chromedp.KeyEvent("\r"))
}

// attach picks files with the Attach dialog's input and confirms the
// preview that shows them before anything is sent, with caption if given.
func (p *tab) attach(caption string, paths ...string) {
	p.t.Helper()
	p.run(chromedp.SetUploadFiles(chromedp.CSS("#attach-input"), paths))
	p.waitJS(`document.querySelector("dialog.preview")?.open === true`, 30*time.Second, "the preview before sending")
	if caption != "" {
		p.fill("Caption", caption)
	}
	eval[bool](p, `(() => { document.querySelector("dialog.preview button[type=submit]").click(); return true })()`)
	p.waitJS(`document.querySelector("dialog.preview") === null`, 10*time.Second, "the preview closed")
}

// texts returns the message texts shown in the open conversation.
func (p *tab) texts(incoming bool) []string {
	cls := "out"
	if incoming {
		cls = "in"
	}
	return eval[[]string](p, fmt.Sprintf(`[...document.querySelectorAll("#messages .msg.%s .text")].map(e => e.textContent)`, cls))
}

// openContact opens the conversation with the contact named name.
func (p *tab) openContact(name string) {
	p.t.Helper()
	find := fmt.Sprintf(`[...document.querySelectorAll("#contacts .contact")].find(b => b.querySelector(".c-name")?.textContent === %q)`, name)
	p.waitJS(find+` !== undefined`, 30*time.Second, "contact "+name)
	eval[bool](p, `(() => { `+find+`.click(); return true })()`)
	p.waitJS(fmt.Sprintf(`document.querySelector("#conv-title")?.textContent === %q`, name), 30*time.Second, "conversation with "+name)
}

// idbDump returns every value stored in the origin's IndexedDB, as text.
func (p *tab) idbDump() string {
	p.t.Helper()
	return eval[string](p, `(async () => {
		const out = [];
		for (const info of await indexedDB.databases()) {
			const db = await new Promise((ok, fail) => { const r = indexedDB.open(info.name); r.onsuccess = () => ok(r.result); r.onerror = () => fail(r.error); });
			for (const name of db.objectStoreNames) {
				const all = await new Promise((ok, fail) => { const r = db.transaction(name).objectStore(name).getAll(); r.onsuccess = () => ok(r.result); r.onerror = () => fail(r.error); });
				const keys = await new Promise((ok, fail) => { const r = db.transaction(name).objectStore(name).getAllKeys(); r.onsuccess = () => ok(r.result); r.onerror = () => fail(r.error); });
				out.push(JSON.stringify(keys));
				for (const v of all) {
					const walk = async (x) => {
						if (x instanceof Blob) out.push(new TextDecoder("latin1").decode(await x.arrayBuffer()));
						else if (x instanceof ArrayBuffer || ArrayBuffer.isView(x)) out.push(new TextDecoder("latin1").decode(x));
						else if (x && typeof x === "object") for (const k of Object.keys(x)) { out.push(k); await walk(x[k]); }
						else out.push(String(x));
					};
					await walk(v);
				}
			}
			db.close();
		}
		return out.join("\n");
	})()`)
}

const n20 = 20

func TestTwoPeopleChat(t *testing.T) {
	_, relayA := startRelay(t)
	_, relayB := startRelay(t)
	host, base := startHost(t, "-relay", relayA, "-relay", relayB)

	a := newPerson(t, "alice")
	a.run(chromedp.EmulateViewport(1200, 900))
	a.run(chromedp.Navigate(base + "/"))
	a.waitVisible("#onboarding")
	a.checkA11y("onboarding")
	a.createProfile("Alice", "alice's long passphrase")
	a.screenshot(t.Name() + "-onboarded")

	b := newPerson(t, "bob")
	b.run(chromedp.EmulateViewport(360, 740)) // a phone
	b.run(chromedp.Navigate(base + "/"))
	b.createProfile("Bob", "")
	// Bob receives on the second relay: each direction uses its own relay.
	b.click("Settings")
	b.waitVisible(".settings")
	// Relays are listed by host name, the key folded away.
	hostB := relayB[strings.LastIndex(relayB, "@")+1:]
	b.waitJS(fmt.Sprintf(`[...document.querySelectorAll(".relays .relay-host")].some(c => c.textContent === %q)`, hostB), 10*time.Second, "relay list")
	if eval[bool](b, `[...document.querySelectorAll(".relays details")].some(d => d.open)`) {
		t.Error("a relay's key fingerprint is unfolded")
	}
	eval[bool](b, fmt.Sprintf(`(() => { [...document.querySelectorAll(".relays li")].find(li => li.querySelector(".relay-host").textContent === %q).querySelector("input").click(); return true })()`, hostB))
	b.waitJS(fmt.Sprintf(`document.querySelector(".relays input:checked")?.parentElement.querySelector(".relay-host").textContent === %q`, hostB), 10*time.Second, "receive relay chosen")
	b.screenshot(t.Name() + "-settings")
	b.checkA11y("settings")

	a.click("Create one-time link")
	a.click("Create link")
	a.waitJS(`document.querySelector("#invite-link")?.value.includes("#/invite/")`, 30*time.Second, "invitation link")
	link := eval[string](a, `document.querySelector("#invite-link").value`)
	a.screenshot(t.Name() + "-invitation")
	a.checkA11y("invitation")

	// The QR code in the page decodes to exactly the link shown.
	png, err := chromedp.Run(a.ctx, chromedp.Screenshot(chromedp.CSS("#invite-qr")))
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

	// Bob opens the link: it goes straight to "Connect to this invitation?".
	b.run(chromedp.Navigate(link))
	b.waitVisible("#join")
	if u := eval[string](b, `location.href`); strings.Contains(u, "invite") {
		t.Errorf("the invitation stays in the address bar: %s", u)
	}
	b.click("Connect")
	b.waitVisible("#messages")
	a.waitVisible("#messages") // Alice's view opens the conversation once connected
	b.waitJS(`document.querySelector("#conv-state")?.textContent === "connected"`, 30*time.Second, "Bob connected")
	a.waitJS(`document.querySelector("#conv-state")?.textContent === "connected"`, 30*time.Second, "Alice connected")
	if got := eval[string](b, `document.querySelector("#conv-title").textContent`); got != "Alice" {
		t.Errorf("Bob sees %q", got)
	}

	const n = n20
	// Enter → shown on the other side, timed inside the pages (same clock):
	// a keydown listener on Alice's page, a MutationObserver on Bob's.
	eval[bool](a, `(() => { document.addEventListener("keydown", (e) => { if (e.key === "Enter") window.__enterAt = Date.now(); }, true); return true })()`)
	eval[bool](b, `(() => { window.__shownAt = {}; new MutationObserver(() => {
		for (const e of document.querySelectorAll("#messages .msg.in .text")) window.__shownAt[e.textContent] ??= Date.now();
	}).observe(document.querySelector("#messages"), { childList: true, subtree: true }); return true })()`)
	var latencies []time.Duration
	for i := range n {
		text := fmt.Sprintf("Alice %d", i)
		a.send(text)
		b.waitJS(fmt.Sprintf(`[...document.querySelectorAll("#messages .msg.in .text")].length === %d`, i+1), 30*time.Second, "Bob receives")
		ms := eval[float64](b, fmt.Sprintf(`window.__shownAt[%q]`, text)) - eval[float64](a, `window.__enterAt`)
		latencies = append(latencies, time.Duration(ms*float64(time.Millisecond)))
		b.send(fmt.Sprintf("Bob %d", i))
		a.waitJS(fmt.Sprintf(`[...document.querySelectorAll("#messages .msg.in .text")].length === %d`, i+1), 30*time.Second, "Alice receives")
	}
	for _, p := range []*tab{a, b} {
		p.waitJS(fmt.Sprintf(`[...document.querySelectorAll("#messages .msg.out")].filter(m => m.dataset.status === "delivered").length === %d`, n), 30*time.Second, "all delivered")
	}
	for i, got := range b.texts(true) {
		if want := fmt.Sprintf("Alice %d", i); got != want {
			t.Errorf("Bob's message %d is %q, want %q", i, got, want)
		}
	}
	for i, got := range a.texts(true) {
		if want := fmt.Sprintf("Bob %d", i); got != want {
			t.Errorf("Alice's message %d is %q, want %q", i, got, want)
		}
	}
	t.Logf("Enter → shown on the other side: median %v (n=%d)", median(latencies), n)
	a.screenshot(t.Name() + "-conversation")
	b.screenshot(t.Name() + "-conversation-phone")
	a.checkA11y("conversation")
	b.checkA11y("conversation, phone")

	// Reload both: Alice unlocks with her passphrase; history and contact are there.
	a.run(chromedp.Reload())
	a.waitVisible("#unlock")
	a.checkA11y("unlock")
	a.fill("Passphrase", "not alice's passphrase")
	a.click("Unlock")
	a.waitJS(`document.querySelector("#unlock-error")?.textContent.startsWith("Wrong passphrase")`, 30*time.Second, "wrong passphrase refused")
	a.fill("Passphrase", "alice's long passphrase")
	a.click("Unlock")
	a.waitVisible("#app")
	b.run(chromedp.Reload())
	b.waitVisible("#app")
	a.openContact("Bob")
	b.openContact("Alice")
	for _, p := range []*tab{a, b} {
		p.waitJS(`document.querySelector("#messages")?.dataset.loaded === "true"`, 30*time.Second, "history loaded")
		if n := len(p.texts(true)) + len(p.texts(false)); n != 2*n20 {
			t.Errorf("after the reload the conversation shows %d messages, want %d", n, 2*n20)
		}
	}
	a.send("after the reload")
	b.waitJS(`[...document.querySelectorAll("#messages .msg.in .text")].some(e => e.textContent === "after the reload")`, 30*time.Second, "messaging continues")

	// Bob closes Wisp; Alice sends 5; Bob comes back and gets them.
	b.run(chromedp.Navigate("about:blank"))
	for i := range 5 {
		a.send(fmt.Sprintf("while you were away %d", i))
	}
	a.waitJS(`[...document.querySelectorAll("#messages .msg.out")].filter(m => m.dataset.status === "sent" || m.dataset.status === "delivered").length === 26`, 30*time.Second, "sent to the relay")
	b.run(chromedp.Navigate(base + "/"))
	b.openContact("Alice")
	b.waitJS(`[...document.querySelectorAll("#messages .msg.in .text")].filter(e => e.textContent.startsWith("while you were away")).length === 5`, 60*time.Second, "the 5 arrive")
	a.waitJS(`[...document.querySelectorAll("#messages .msg.out")].filter(m => m.dataset.status === "delivered").length === 26`, 30*time.Second, "the 5 delivered")

	// A second joiner of the used link, and a garbage link.
	c := newPerson(t, "carol")
	c.run(chromedp.Navigate(base + "/"))
	c.createProfile("Carol", "")
	c.run(chromedp.Navigate(link))
	c.waitVisible("#join")
	c.click("Connect")
	c.waitJS(`document.querySelector("#join-error")?.textContent === "This invitation was already used. Ask for a new one."`, 30*time.Second, "already used")
	c.screenshot(t.Name() + "-already-used")
	c.run(chromedp.Navigate(base + "/#/invite/AbCdEf-this-is-not-a-real-invitation"))
	c.waitVisible("#join")
	c.waitJS(`document.querySelector("#join-error")?.textContent.startsWith("The invitation link is corrupted")`, 30*time.Second, "corrupted link")
	c.click("Cancel")
	c.click("I have a link")
	c.fill("Invitation link", "https://example.com/some/page")
	c.click("Connect")
	c.waitJS(`document.querySelector("#paste-error")?.textContent === "That is not a Wisp invitation link."`, 30*time.Second, "not a Wisp link")

	// A second tab of Alice's profile: "open in another tab", then "Use here".
	a2 := newTabBeside(t, a, t.Name()+"-second-tab")
	a2.run(chromedp.Navigate(base + "/"))
	a2.waitVisible("#unlock")
	a2.fill("Passphrase", "alice's long passphrase")
	a2.click("Unlock")
	a2.waitVisible("#elsewhere")
	a2.screenshot(t.Name() + "-other-tab")
	a2.click("Use here")
	a2.waitVisible("#app")
	a.waitVisible("#elsewhere")

	// Nothing readable in any browser's storage.
	payload := link[strings.Index(link, "#/invite/")+len("#/invite/"):]
	for name, p := range map[string]*tab{"Alice": a2, "Bob": b, "Carol": c} {
		dump := p.idbDump()
		if len(dump) < 1000 {
			t.Errorf("%s's IndexedDB dump is only %d bytes: the dump did not work", name, len(dump))
		}
		for _, secret := range []string{"Alice 7", "Bob 13", "while you were away", "after the reload", "Alice", "Bob", "Carol", payload[:40], "wisp://", "127.0.0.1"} {
			if strings.Contains(dump, secret) {
				t.Errorf("%s's IndexedDB contains %q", name, secret)
			}
		}
	}

	// The host saw only files of the bundle.
	checkHostLog(t, host.Log())
}

// checkHostLog asserts every request the host logged was for a file of the
// bundle (or /, /config.json), never an invitation or anything else.
func checkHostLog(t *testing.T, log string) {
	t.Helper()
	dist := filepath.Join(root, "server", "cmd", "wisp-host", "dist")
	paths := regexp.MustCompile(`path=(\S+)`).FindAllStringSubmatch(log, -1)
	if len(paths) == 0 {
		t.Fatalf("the host logged no requests:\n%s", log)
	}
	for _, m := range paths {
		p := m[1]
		if p == "/" || p == "/config.json" {
			continue
		}
		if _, err := os.Stat(filepath.Join(dist, filepath.FromSlash(strings.TrimPrefix(p, "/")))); err != nil || strings.Contains(p, "invite") {
			t.Errorf("the host was asked for %q, which is not a file of the bundle", p)
		}
	}
}

func median(d []time.Duration) time.Duration {
	s := append([]time.Duration(nil), d...)
	for i := range s {
		for j := i + 1; j < len(s); j++ {
			if s[j] < s[i] {
				s[i], s[j] = s[j], s[i]
			}
		}
	}
	return s[len(s)/2]
}
