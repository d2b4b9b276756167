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
)

// aliceAndBob opens two people on the app at base, each with a profile
// without passphrase, connected to each other.
func aliceAndBob(t testing.TB, base string) (*tab, *tab) {
	t.Helper()
	a, b := newPerson(t, "alice"), newPerson(t, "bob")
	for p, name := range map[*tab]string{a: "Alice", b: "Bob"} {
		p.run(chromedp.Navigate(base + "/"))
		p.createProfile(name, "")
	}
	connectPeople(t, a, b, "Alice", "Bob")
	return a, b
}

// connectPeople makes a (with a profile) invite b (with a profile)
// through the UI and waits until both see each other connected.
func connectPeople(t testing.TB, a, b *tab, aName, bName string) {
	t.Helper()
	a.click("Create one-time link")
	a.click("Create link")
	a.waitJS(`document.querySelector("#invite-link")?.value.includes("#/invite/")`, 30*time.Second, "invitation link")
	link := eval[string](a, `document.querySelector("#invite-link").value`)
	b.click("I have a link")
	b.fill("Invitation link", link)
	b.click("Connect")
	b.waitJS(fmt.Sprintf(`document.querySelector("#conv-title")?.textContent === %q && document.querySelector("#conv-state")?.textContent === "connected"`, aName), 30*time.Second, "b connected")
	a.waitJS(fmt.Sprintf(`document.querySelector("#conv-title")?.textContent === %q && document.querySelector("#conv-state")?.textContent === "connected"`, bName), 30*time.Second, "a connected")
}

// TestBackupRestore exports Alice's backup through Settings, imports it in
// another browser, and checks the restored profile has her contact and
// history and keeps receiving.
func TestBackupRestore(t *testing.T) {
	_, relay := startRelay(t)
	_, base := startHost(t, "-relay", relay)
	a, b := aliceAndBob(t, base)
	a.send("before the backup")
	b.waitJS(`[...document.querySelectorAll("#messages .msg.in .text")].some(e => e.textContent === "before the backup")`, 30*time.Second, "message")

	downloads := t.TempDir()
	if _, err := chromedp.CallBrowser(a.ctx, browser.SetDownloadBehavior, browser.SetDownloadBehaviorParams{
		Behavior: browser.SetDownloadBehaviorBehaviorAllow, DownloadPath: downloads,
		BrowserContextID: chromedp.FromContext(a.ctx).BrowserContextID,
	}); err != nil {
		t.Fatal(err)
	}
	a.click("Settings")
	a.fill("Backup passphrase", "short")
	a.fill("Backup passphrase again", "short")
	a.click("Export backup")
	a.waitJS(`document.querySelector("#export-error")?.textContent.includes("at least 8")`, 30*time.Second, "short passphrase refused")
	a.fill("Backup passphrase", "backup passphrase 1")
	a.fill("Backup passphrase again", "backup passphrase 1")
	a.click("Export backup")
	var file string
	deadline := time.Now().Add(scaled(30 * time.Second))
	for file == "" && time.Now().Before(deadline) {
		entries, _ := os.ReadDir(downloads)
		for _, e := range entries {
			if strings.HasSuffix(e.Name(), ".wisp") {
				file = filepath.Join(downloads, e.Name())
			}
		}
		time.Sleep(50 * time.Millisecond)
	}
	if file == "" {
		t.Fatalf("no backup file was downloaded\nconsole:\n%s", a.console())
	}
	data, err := os.ReadFile(file)
	if err != nil {
		t.Fatal(err)
	}
	for _, s := range []string{"Alice", "Bob", "before the backup", "wisp://"} {
		if strings.Contains(string(data), s) {
			t.Errorf("the backup file contains %q", s)
		}
	}
	a.run(chromedp.Navigate("about:blank")) // Alice moves to the new browser

	d := newPerson(t, "restored")
	d.run(chromedp.Navigate(base + "/"))
	d.waitVisible("#onboarding")
	eval[bool](d, `(() => { document.querySelector("details.import").open = true; return true })()`)
	d.run(chromedp.SetUploadFiles(chromedp.CSS("#backup-file"), []string{file}))
	d.fill("Backup passphrase", "not the backup passphrase")
	d.click("Import backup")
	d.waitJS(`document.querySelector("#import-error")?.textContent.startsWith("Wrong backup passphrase")`, 60*time.Second, "wrong backup passphrase")
	d.fill("Backup passphrase", "backup passphrase 1")
	d.click("Import backup")
	d.waitVisible("#app")
	d.openContact("Bob")
	d.waitJS(`[...document.querySelectorAll("#messages .msg.out .text")].some(e => e.textContent === "before the backup")`, 30*time.Second, "history restored")
	b.send("hello restored Alice")
	d.waitJS(`[...document.querySelectorAll("#messages .msg.in .text")].some(e => e.textContent === "hello restored Alice")`, 60*time.Second, "the restored profile receives")
	d.send("I am back")
	b.waitJS(`[...document.querySelectorAll("#messages .msg.in .text")].some(e => e.textContent === "I am back")`, 60*time.Second, "and sends")
	// The restored ratchets were re-synchronised first, and both
	// conversations say so.
	for _, p := range []*tab{d, b} {
		p.waitNotice("Re-synchronising encryption…")
		p.waitNotice("Encryption re-synced. The security code changed: compare it again if you had verified it.")
	}
}

// waitNotice waits for a notice line in the open conversation.
func (p *tab) waitNotice(text string) {
	p.t.Helper()
	p.waitJS(fmt.Sprintf(`[...document.querySelectorAll("#messages li.notice")].some(e => e.textContent === %q)`, text), 60*time.Second, "the notice "+text)
}
