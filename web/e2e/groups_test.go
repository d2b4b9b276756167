//go:build e2e

package e2e

import (
	"bytes"
	"crypto/rand"
	"fmt"
	"image"
	"image/color"
	"image/png"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/cdproto/emulation"
	"github.com/chromedp/chromedp"
)

// selectOption picks the option whose text is text in the select matching sel.
func (p *tab) selectOption(sel, text string) {
	p.t.Helper()
	p.waitJS(fmt.Sprintf(`[...(document.querySelector(%q)?.options ?? [])].some(o => o.textContent === %q)`, sel, text), 30*time.Second, "option "+text)
	eval[bool](p, fmt.Sprintf(`(() => { const s = document.querySelector(%q);
		s.value = [...s.options].find(o => o.textContent === %q).value;
		s.dispatchEvent(new Event("change", { bubbles: true })); return true })()`, sel, text))
}

// waitFrom waits until the open conversation shows text from author,
// with the author's name on the bubble.
func (p *tab) waitFrom(author, text string) {
	p.t.Helper()
	p.waitJS(fmt.Sprintf(`[...document.querySelectorAll("#messages .msg.in")].some(li =>
		li.querySelector(".author")?.textContent === %q && li.querySelector(".text")?.textContent === %q)`, author, text),
		60*time.Second, fmt.Sprintf("%q from %s", text, author))
}

// shows reports whether any message of the open conversation reads text.
func (p *tab) shows(text string) bool {
	p.t.Helper()
	return eval[bool](p, fmt.Sprintf(`[...document.querySelectorAll("#messages .text")].some(e => e.textContent === %q)`, text))
}

// waitMembers opens the members panel and waits until it lists exactly n
// joined members, each connected (or us).
func (p *tab) waitMembers(n int) {
	p.t.Helper()
	if !eval[bool](p, `document.querySelector("#members-panel") !== null`) {
		p.click("Members")
	}
	p.waitVisible("#members-panel")
	ready := fmt.Sprintf(`(() => { const li = [...document.querySelectorAll("#member-list li")];
		return li.length === %d && li.every(e => e.dataset.status === "joined" && (e.dataset.connection === "self" || e.dataset.connection === "connected")) })()`, n)
	for deadline := time.Now().Add(scaled(90 * time.Second)); !eval[bool](p, ready); time.Sleep(50 * time.Millisecond) {
		if time.Now().After(deadline) {
			rows := eval[string](p, `[...document.querySelectorAll("#member-list li, #former-list li")].map(e => e.textContent + " [" + e.dataset.status + "/" + e.dataset.connection + "]").join("; ")`)
			p.t.Fatalf("waiting for %d members, all connected; the panel lists: %s\nconsole:\n%s", n, rows, p.console())
		}
	}
}

// openMember opens the view of the member named name from the members panel.
func (p *tab) openMember(name string) {
	p.t.Helper()
	find := fmt.Sprintf(`[...document.querySelectorAll("#member-list button.member")].find(b => b.querySelector(".c-name")?.textContent === %q)`, name)
	p.waitJS(find+` !== undefined`, 30*time.Second, "member "+name)
	eval[bool](p, `(() => { `+find+`.click(); return true })()`)
	p.waitJS(fmt.Sprintf(`document.querySelector("#member-title")?.textContent === %q`, name), 30*time.Second, "the view of "+name)
}

// acceptGroupInvitation opens the invitation entry of group and joins it.
func (p *tab) acceptGroupInvitation(t testing.TB, from, group string) {
	t.Helper()
	p.openContact(group)
	p.waitText("#group-invitation-text", from+" invites you to "+group, 30*time.Second)
	if got := eval[string](p, `[...document.querySelectorAll("#contacts .c-last")].map(e => e.textContent).join("|")`); !strings.Contains(got, from+" invites you") {
		t.Errorf("the chat list does not show the invitation: %q", got)
	}
	p.click("Join")
	p.waitJS(`document.querySelector("#composer") !== null`, 90*time.Second, "joined: the composer")
}

// groupFile is a file a member sends to the group.
type groupFile struct {
	from    *tab
	author  string // the sender's name, as the others see it
	name    string
	path    string
	data    []byte
	picture bool
}

// groupFiles writes the files of TestGroups: Alice's picture (a PNG
// small enough to download by itself) and Bob's file of random bytes.
func groupFiles(t *testing.T, alice, bob *tab) []groupFile {
	t.Helper()
	dir := t.TempDir()
	img := image.NewNRGBA(image.Rect(0, 0, 96, 64))
	for y := range 64 {
		for x := range 96 {
			img.Set(x, y, color.NRGBA{uint8(x * 2), uint8(y * 4), 160, 255})
		}
	}
	var pic bytes.Buffer
	if err := png.Encode(&pic, img); err != nil {
		t.Fatal(err)
	}
	notes := make([]byte, 48<<10)
	if _, err := rand.Read(notes); err != nil {
		t.Fatal(err)
	}
	files := []groupFile{
		{from: alice, author: "Alice", name: "book-cover.png", data: pic.Bytes(), picture: true},
		{from: bob, author: "Bob", name: "reading-notes.bin", data: notes},
	}
	for i := range files {
		files[i].path = filepath.Join(dir, files[i].name)
		if err := os.WriteFile(files[i].path, files[i].data, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return files
}

// fileItemJS is a JavaScript expression for the message item of the file
// named name in the open conversation: dir is "in" or "out".
func fileItemJS(dir, name string) string {
	return fmt.Sprintf(`[...document.querySelectorAll("#messages .msg.%s[data-file]")].find(li => li.querySelector(".text")?.textContent === %q)`, dir, name)
}

// receiveFile waits until the open group conversation shows f under its
// author's name (a picture with its thumbnail or itself shown), and downloads it:
// a picture downloads by itself, another file on "Download".
func (p *tab) receiveFile(f groupFile) {
	p.t.Helper()
	item := fileItemJS("in", f.name)
	shown := item + fmt.Sprintf(`?.querySelector(".author")?.textContent === %q`, f.author)
	if f.picture {
		// Its preview, or, once it downloaded by itself, the picture.
		shown += ` && (() => { const i = ` + item + `.querySelector("img.thumb, img.picture"); return !!i && (i.src.startsWith("data:image/jpeg;base64,") || i.src.startsWith("blob:")) && i.complete && i.naturalWidth > 0 })()`
	}
	p.waitJS(shown, 120*time.Second, fmt.Sprintf("%s from %s", f.name, f.author))
	if !f.picture {
		p.waitJS(item+`.matches("[data-file='available']")`, 30*time.Second, f.name+" available")
		eval[bool](p, `(() => { [...`+item+`.querySelectorAll(".file-actions button")].find(b => b.textContent === "Download").click(); return true })()`)
	}
	p.waitJS(item+`?.matches("[data-file='downloaded']")`, 120*time.Second, f.name+" downloaded")
}

var securityCode = regexp.MustCompile(`^\d{5}( \d{5}){11}$`)

// TestGroups: three people in three browsers make a group, all chat with
// each other's names on the messages, the owner removes one member, who
// sees it and gets nothing sent after; codes with a member match; the
// group screens pass axe-core in light and dark; nothing of the group is
// readable in IndexedDB.
func TestGroups(t *testing.T) {
	_, relayA := startRelay(t)
	_, relayB := startRelay(t)
	_, base := startHost(t, "-relay", relayA, "-relay", relayB)
	a, b, c := newPerson(t, "alice"), newPerson(t, "bob"), newPerson(t, "carol")
	c.run(chromedp.EmulateViewport(360, 740)) // Carol is on a phone
	for p, name := range map[*tab]string{a: "Alice", b: "Bob", c: "Carol"} {
		p.run(chromedp.Navigate(base + "/"))
		p.createProfile(name, "")
	}
	connectPeople(t, a, b, "Alice", "Bob")
	connectPeople(t, a, c, "Alice", "Carol")

	// Alice makes the group and invites both.
	const group = "Book club"
	a.click("New group")
	a.waitVisible("#new-group")
	a.checkA11y("new group")
	a.screenshot(t.Name() + "-new-group")
	a.click("Create group")
	a.waitJS(`document.querySelector("#new-group-error")?.textContent === "Give the group a name."`, 10*time.Second, "a name is asked for")
	a.fill("Group name", group)
	a.click("Create group")
	a.waitText("#conv-title", group, 30*time.Second)
	a.waitText("#conv-state", "1 member", 10*time.Second)
	a.click("Members")
	a.waitVisible("#members-panel")
	for _, name := range []string{"Bob", "Carol"} {
		a.selectOption("#invite-contact", name)
		a.selectOption("#invite-role", "Member")
		a.click("Invite")
		a.waitJS(fmt.Sprintf(`document.querySelector("#toast")?.textContent.startsWith("Invitation sent to %s")`, name), 30*time.Second, "invitation sent to "+name)
	}
	a.checkA11y("members")
	a.screenshot(t.Name() + "-members-invited")

	// Bob and Carol see "Alice invites you to Book club" and join.
	b.openContact(group)
	b.waitVisible("#group-foot")
	b.checkA11y("group invitation")
	b.screenshot(t.Name() + "-invitation")
	b.acceptGroupInvitation(t, "Alice", group)
	// Carol joins at once: Bob's "joined" may reach Alice only after she
	// admitted Carol, and Carol then gets it from Bob himself.
	c.acceptGroupInvitation(t, "Alice", group)
	for _, p := range []*tab{a, b, c} {
		p.waitMembers(3)
	}
	c.checkA11y("members, phone")
	c.screenshot(t.Name() + "-members-phone")
	for _, p := range []*tab{a, b, c} {
		p.click("‹ Conversation")
		p.waitVisible("#composer")
	}

	// Everyone writes; everyone sees the others' lines under their names.
	lines := map[*tab][2]string{a: {"Alice", "Hello from Alice"}, b: {"Bob", "Hello from Bob"}, c: {"Carol", "Hello from Carol"}}
	for p, l := range lines {
		p.send(l[1])
	}
	for p := range lines {
		for q, l := range lines {
			if q != p {
				p.waitFrom(l[0], l[1])
			}
		}
	}
	a.waitJS(`[...document.querySelectorAll("#messages .msg.out .status")].some(e => e.textContent === " · Delivered to 2 of 2")`, 60*time.Second, "delivered to 2 of 2")
	if n := eval[int](c, `document.querySelectorAll("#messages .notice").length`); n == 0 {
		t.Error("Carol's conversation shows no notice of the group's changes")
	}
	a.screenshot(t.Name() + "-conversation")
	c.screenshot(t.Name() + "-conversation-phone")
	a.checkA11y("group conversation")
	c.checkA11y("group conversation, phone")

	// Alice sends a picture and Bob a file to the group; each of the two
	// others sees it under its sender's name (the picture with its
	// thumbnail), downloads it and saves the same bytes.
	sent := groupFiles(t, a, b)
	for _, f := range sent {
		f.from.attach("", f.path)
	}
	for _, f := range sent {
		f.from.waitJS(fileItemJS("out", f.name)+`?.matches("[data-file='sent']")`, 120*time.Second, f.name+" sent")
		for _, p := range []*tab{a, b, c} {
			if p != f.from {
				p.receiveFile(f)
			}
		}
	}
	a.screenshot(t.Name() + "-files")
	c.screenshot(t.Name() + "-files-phone")
	for name, p := range map[string]*tab{"Alice": a, "Bob": b, "Carol": c} {
		downloads := allowDownloads(t, p)
		for _, f := range sent {
			if f.from == p {
				continue
			}
			eval[bool](p, `(() => { [...`+fileItemJS("in", f.name)+`.querySelectorAll(".file-actions button")].find(b => b.textContent === "Save").click(); return true })()`)
			if got := waitFile(t, downloads, f.name); !bytes.Equal(got, f.data) {
				t.Errorf("%s saved %s with %d bytes, not the %d sent", name, f.name, len(got), len(f.data))
			}
		}
	}

	// The security code of the pair Alice–Carol is the same on both sides.
	a.click("Members")
	a.openMember("Carol")
	a.waitJS(`/^\d{5}( \d{5}){11}$/.test(document.querySelector("#member-code")?.textContent ?? "")`, 60*time.Second, "Alice's code for Carol")
	aliceCode := eval[string](a, `document.querySelector("#member-code").textContent`)
	c.click("Members")
	c.openMember("Alice")
	c.waitJS(`/^\d{5}( \d{5}){11}$/.test(document.querySelector("#member-code")?.textContent ?? "")`, 60*time.Second, "Carol's code for Alice")
	if carolCode := eval[string](c, `document.querySelector("#member-code").textContent`); carolCode != aliceCode || !securityCode.MatchString(aliceCode) {
		t.Errorf("security codes differ: Alice sees %q, Carol %q", aliceCode, carolCode)
	}
	c.click("‹ Members")
	c.click("‹ Conversation")
	c.waitVisible("#composer")
	a.click("Mark as verified")
	a.waitText("#member-verified", "Verified: you compared this code.", 30*time.Second)
	a.checkA11y("member")
	a.screenshot(t.Name() + "-member")

	// Bob looks at leaving and thinks again.
	b.click("Members")
	b.click("Leave group")
	b.waitJS(`document.querySelector("dialog.confirm")?.open === true`, 10*time.Second, "the confirmation")
	b.checkA11y("leave confirmation")
	b.screenshot(t.Name() + "-leave-confirmation")
	b.click("Cancel")
	b.waitJS(`document.querySelector("dialog.confirm") === null`, 10*time.Second, "the dialog closed")
	b.click("‹ Conversation")
	b.waitVisible("#composer")

	// Alice removes Carol, who sees it.
	a.click("Remove")
	a.waitJS(`document.querySelector("dialog.confirm")?.open === true`, 10*time.Second, "the confirmation")
	a.checkA11y("remove confirmation")
	a.click("Remove Carol")
	a.waitVisible("#members-panel")
	a.waitJS(`[...document.querySelectorAll("#former-list li")].some(li => li.dataset.status === "removed" && li.querySelector(".c-name")?.textContent === "Carol")`, 30*time.Second, "Carol among the former members")
	a.waitJS(`document.querySelectorAll("#member-list li").length === 2`, 30*time.Second, "two members left")
	c.waitText("#group-ended", "You were removed from this group. You no longer receive its messages.", 60*time.Second)
	c.waitJS(`[...document.querySelectorAll("#messages .notice")].some(e => e.textContent === "Alice removed you")`, 30*time.Second, "the notice of the removal")
	if eval[bool](c, `document.querySelector("#composer") !== null`) {
		t.Error("a removed member still has a composer")
	}
	c.screenshot(t.Name() + "-removed-phone")
	c.checkA11y("removed, phone")

	// Alice writes after the removal: Bob gets it, Carol never does.
	a.click("‹ Conversation")
	a.waitVisible("#composer")
	const after = "After Carol was removed"
	a.send(after)
	b.waitFrom("Alice", after)
	a.waitJS(`[...document.querySelectorAll("#messages .msg.out .status")].some(e => e.textContent === " · Delivered to 1 of 1")`, 60*time.Second, "delivered to 1 of 1")
	time.Sleep(3 * time.Second) // what could still come would have come by now
	if c.shows(after) {
		t.Error("the removed member got a message sent after the removal")
	}
	c.run(chromedp.Reload())
	c.waitVisible("#app")
	c.openContact(group)
	c.waitJS(`document.querySelector("#messages")?.dataset.loaded === "true"`, 30*time.Second, "Carol's history")
	if c.shows(after) {
		t.Error("after a reload, the removed member has a message sent after the removal")
	}
	if !c.shows("Hello from Bob") {
		t.Error("after a reload, the removed member lost the group's earlier messages")
	}
	c.waitVisible("#group-ended")

	// The dark theme passes the same rules on the group screens.
	if _, err := chromedp.Call(a.ctx, emulation.SetEmulatedMedia, emulation.SetEmulatedMediaParams{
		Features: []*emulation.MediaFeature{{Name: "prefers-color-scheme", Value: "dark"}},
	}); err != nil {
		t.Fatal(err)
	}
	a.checkA11y("group conversation, dark")
	a.screenshot(t.Name() + "-conversation-dark")
	a.click("Members")
	a.waitVisible("#members-panel")
	a.checkA11y("members, dark")
	a.screenshot(t.Name() + "-members-dark")

	// Nothing of the group is readable in any browser's storage.
	for name, p := range map[string]*tab{"Alice": a, "Bob": b, "Carol": c} {
		dump := p.idbDump()
		if len(dump) < 1000 {
			t.Errorf("%s's IndexedDB dump is only %d bytes: the dump did not work", name, len(dump))
		}
		for _, secret := range []string{group, "Alice", "Bob", "Carol", "Hello from", after, "invites you", "removed you", sent[0].name, sent[1].name} {
			if strings.Contains(dump, secret) {
				t.Errorf("%s's IndexedDB contains %q", name, secret)
			}
		}
	}
}
