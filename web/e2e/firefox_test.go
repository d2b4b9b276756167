//go:build e2e

package e2e

import (
	"bufio"
	"bytes"
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/chromedp/cdproto/accessibility"
	"github.com/chromedp/cdproto/cdp"
	"github.com/chromedp/cdproto/dom"
	"github.com/chromedp/cdproto/input"
	"github.com/chromedp/cdproto/page"
	"github.com/chromedp/cdproto/runtime"
	"github.com/chromedp/chromedp"
)

// ffUI is every accessible name TestFirefox drives the page by, in both
// browsers: when the page's wording changes, update it here only. Each
// control is found by its role and accessible name (what a screen reader
// announces), never by CSS. "%s" stands for a name (a contact's, a
// file's); a list of buttons is pressed in order.
var ffUI = struct {
	displayName   string   // textbox, onboarding
	createProfile string   // button, onboarding
	invite        []string // buttons, from the chat list to a new one-time link
	oneTimeLink   string   // textbox holding the invitation link made
	join          []string // buttons, from the chat list to the field for a link received
	invitationBox string   // textbox where a link received is pasted
	connect       string   // button that joins the pasted link
	connected     string   // a line of the conversation's header once connected
	messagesWith  string   // list of a conversation's messages, %s = contact
	message       string   // textbox of the composer (Enter sends)
	attachFile    string   // button opening the file dialog
	attachSend    []string // buttons, after the file dialog, that send the file
	download      string   // button fetching a received file, %s = file name
	save          string   // button saving a downloaded file, %s = file name
}{
	displayName:   "Display name",
	createProfile: "Create profile",
	invite:        []string{"Create one-time link", "Create link"},
	oneTimeLink:   "One-time link",
	join:          []string{"I have a link"},
	invitationBox: "Invitation link",
	connect:       "Connect",
	connected:     "connected",
	messagesWith:  "Messages with %s",
	message:       "Message",
	attachFile:    "Attach file",
	attachSend:    []string{"Send"},
	download:      "Download %s",
	save:          "Save %s",
}

// ffName fills the "%s" of an ffUI name (if it has one) with v.
func ffName(format, v string) string { return strings.Replace(format, "%s", v, 1) }

// Roles, as both browsers' accessibility trees name them.
const (
	roleButton  = "button"
	roleTextbox = "textbox"
	roleList    = "list"
	roleHeading = "heading"
)

// underCI reports whether the tests run in CI, where a missing browser is
// a failure, not a reason to skip.
func underCI() bool {
	v := strings.ToLower(os.Getenv("CI"))
	return v != "" && v != "false" && v != "0"
}

// TestFirefox is the Firefox smoke test: Wisp in Firefox ESR (driven by
// puppeteer-core over WebDriver BiDi, web/e2e/firefox/smoke.mjs) and in
// Chromium (chromedp) against the real host and relay. Firefox creates a
// profile and an invitation, Chromium joins it, a message goes each way,
// and a small file goes each way and is saved byte for byte.
func TestFirefox(t *testing.T) {
	firefox := os.Getenv("WISP_FIREFOX")
	if firefox == "" {
		var err error
		if firefox, err = exec.LookPath("firefox-esr"); err != nil {
			if underCI() {
				t.Fatal("firefox-esr is missing: apt-get install -y firefox-esr (make tools does it)")
			}
			t.Skip("firefox-esr is missing (apt-get install -y firefox-esr); under CI=true this fails")
		}
	}
	node, err := exec.LookPath("node")
	if err != nil {
		t.Fatal("node is missing: the Firefox test drives Firefox with puppeteer-core (Node.js)")
	}
	if _, err := os.Stat(filepath.Join(root, "web", "e2e", "node_modules", "puppeteer-core", "package.json")); err != nil {
		t.Fatalf("puppeteer-core is missing (make test-e2e installs it with npm ci): %v", err)
	}

	// Deadlines: step for what one page does by itself, slow for what
	// waits on the other browser, a relay or a start.
	step, slow := scaled(30*time.Second), scaled(60*time.Second)
	_, relay := startRelay(t)
	host, base := startHost(t, "-relay", relay)
	fox := startFirefox(t, node, firefox)

	// Firefox: onboarding, then an invitation.
	fox.do(slow, map[string]any{"op": "goto", "url": base + "/"})
	fox.do(slow, map[string]any{"op": "fill", "name": ffUI.displayName, "role": roleTextbox, "text": "Fox"})
	fox.do(step, map[string]any{"op": "click", "name": ffUI.createProfile, "role": roleButton})
	fox.do(slow, map[string]any{"op": "wait", "name": ffUI.invite[0], "role": roleButton})
	fox.shot("onboarded")
	for _, b := range ffUI.invite {
		fox.do(step, map[string]any{"op": "click", "name": b, "role": roleButton})
	}
	link := fox.value(step, ffUI.oneTimeLink, "#/invite/")
	fox.shot("invitation")

	// Chromium: a profile, then joins the link.
	c := newPerson(t, "chromium")
	c.run(chromedp.Navigate(base + "/"))
	c.axFill(slow, ffUI.displayName, "Chrome", false)
	c.axClick(step, ffUI.createProfile)
	c.axWait(slow, ffUI.join[0], roleButton)
	for _, b := range ffUI.join {
		c.axClick(step, b)
	}
	c.axFill(step, ffUI.invitationBox, link, false)
	c.axClick(step, ffUI.connect)

	// Both see the conversation, connected, each list of messages named
	// after the other person (the joiner's follows the name when it comes).
	toFox, toChrome := ffName(ffUI.messagesWith, "Fox"), ffName(ffUI.messagesWith, "Chrome")
	c.axWait(slow, "Fox", roleHeading)
	c.axWait(step, toFox, roleList)
	c.axLine(step, "", "", ffUI.connected)
	fox.do(slow, map[string]any{"op": "wait", "name": toChrome, "role": roleList})
	fox.do(slow, map[string]any{"op": "line", "text": ffUI.connected})

	// One message each way, each waited for by its exact text.
	const fromFox, fromChrome = "Hello from Firefox ESR", "And hello back from Chromium"
	fox.do(step, map[string]any{"op": "fill", "name": ffUI.message, "role": roleTextbox, "text": fromFox, "enter": true})
	c.axLine(slow, toFox, roleList, fromFox)
	c.axFill(step, ffUI.message, fromChrome, true)
	fox.do(slow, map[string]any{"op": "line", "within": toChrome, "role": roleList, "text": fromChrome})
	fox.shot("conversation")

	// A small file each way, saved and compared byte for byte.
	dir := t.TempDir()
	foxFile, chromeFile := ffRandomFile(t, dir, "from-firefox.bin", 150<<10), ffRandomFile(t, dir, "from-chromium.bin", 90<<10)
	foxName, chromeName := filepath.Base(foxFile), filepath.Base(chromeFile)
	fox.do(step, map[string]any{"op": "upload", "name": ffUI.attachFile, "role": roleButton, "path": foxFile})
	for _, b := range ffUI.attachSend {
		fox.do(step, map[string]any{"op": "click", "name": b, "role": roleButton})
	}
	c.axLine(slow, toFox, roleList, foxName)
	c.axClick(step, ffName(ffUI.download, foxName))
	c.axWait(slow, ffName(ffUI.save, foxName), roleButton)
	downloads := allowDownloads(t, c)
	c.axClick(step, ffName(ffUI.save, foxName))
	ffSameFile(t, "Chromium saved", foxFile, waitFile(t, downloads, foxName))

	c.axUpload(step, ffUI.attachFile, chromeFile)
	for _, b := range ffUI.attachSend {
		c.axClick(step, b)
	}
	fox.do(slow, map[string]any{"op": "line", "within": toChrome, "role": roleList, "text": chromeName})
	fox.do(step, map[string]any{"op": "click", "name": ffName(ffUI.download, chromeName), "role": roleButton})
	fox.do(slow, map[string]any{"op": "wait", "name": ffName(ffUI.save, chromeName), "role": roleButton})
	fox.do(step, map[string]any{"op": "click", "name": ffName(ffUI.save, chromeName), "role": roleButton})
	ffSameFile(t, "Firefox saved", chromeFile, fox.waitDownload(slow, chromeName))
	fox.shot("files")

	fox.check()
	checkHostLog(t, host.Log())
}

// ffRandomFile writes size random bytes to dir/name and returns its path.
func ffRandomFile(t *testing.T, dir, name string, size int) string {
	t.Helper()
	b := make([]byte, size)
	if _, err := rand.Read(b); err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(dir, name)
	if err := os.WriteFile(path, b, 0o644); err != nil {
		t.Fatal(err)
	}
	return path
}

func ffSameFile(t *testing.T, what, want string, got []byte) {
	t.Helper()
	w, err := os.ReadFile(want)
	if err != nil {
		t.Fatal(err)
	}
	if sha256.Sum256(got) != sha256.Sum256(w) {
		t.Errorf("%s %s with %d bytes and another SHA-256 (sent %d bytes)", what, filepath.Base(want), len(got), len(w))
	}
}

// ---------- Chromium, by accessible role and name ----------

// byRole finds the elements with the accessible name and role (as the
// accessibility tree computes them) under the query's start node; a name
// ending in "*" is a prefix.
func byRole(name, role string) chromedp.QueryOption {
	return chromedp.ByFunc(func(ctx context.Context, t *chromedp.Target, n *chromedp.Node) ([]cdp.NodeID, error) {
		ids, err := axFind(ctx, t, accessibility.QueryAXTreeParams{NodeID: n.NodeID}, name, role, "")
		if err != nil || len(ids) == 0 {
			return nil, err
		}
		res, err := cdp.Call(ctx, t, dom.PushNodesByBackendIDsToFrontend, dom.PushNodesByBackendIDsToFrontendParams{BackendNodeIDs: ids})
		return res.NodeIDs, err
	})
}

// axFind returns the nodes with the accessible name and role under root
// (the node of root's NodeID or ObjectID; a name ending in "*" is a
// prefix). With text, it returns instead the text nodes reading exactly
// text inside the first of them (or anywhere under root when name is "").
func axFind(ctx context.Context, t *chromedp.Target, root accessibility.QueryAXTreeParams, name, role, text string) ([]cdp.BackendNodeID, error) {
	prefix, isPrefix := strings.CutSuffix(name, "*")
	var ids []cdp.BackendNodeID
	query := func(p accessibility.QueryAXTreeParams, prefix string) error {
		res, err := cdp.Call(ctx, t, accessibility.QueryAXTree, p)
		if err != nil {
			return err
		}
		ids = ids[:0]
		for _, ax := range res.Nodes {
			if ax.Ignored || ax.BackendDOMNodeID == 0 {
				continue
			}
			if prefix != "" {
				var got string
				if ax.Name == nil || json.Unmarshal(ax.Name.Value, &got) != nil || !strings.HasPrefix(got, prefix) {
					continue
				}
			}
			ids = append(ids, ax.BackendDOMNodeID)
		}
		return nil
	}
	if name != "" {
		p := root
		p.AccessibleName, p.Role = name, role
		if isPrefix {
			p.AccessibleName = ""
		} else {
			prefix = ""
		}
		if err := query(p, prefix); err != nil || len(ids) == 0 || text == "" {
			return ids, err
		}
	}
	p := root
	p.AccessibleName, p.Role = text, "StaticText"
	if name != "" {
		p = accessibility.QueryAXTreeParams{BackendNodeID: ids[0], AccessibleName: text, Role: "StaticText"}
	}
	err := query(p, "")
	return ids, err
}

// within runs actions on p with a deadline, failing the test with what.
func (p *tab) within(d time.Duration, what string, actions ...chromedp.Action[chromedp.Void]) {
	p.t.Helper()
	ctx, cancel := context.WithTimeout(p.ctx, d)
	defer cancel()
	if err := chromedp.Do(ctx, actions...); err != nil {
		p.t.Fatalf("Chromium: %s: %v\nconsole:\n%s", what, err, p.console())
	}
}

// axClick clicks the enabled button named name with the mouse.
func (p *tab) axClick(d time.Duration, name string) {
	p.t.Helper()
	sel := byRole(name, roleButton)
	p.within(d, fmt.Sprintf("clicking the button %q", name),
		chromedp.WaitEnabled("button "+name, sel), chromedp.Click("button "+name, sel))
}

// axFill types text into the (empty) textbox named name, then Enter if
// enter. Text longer than a line is pasted (inserted at once), as a
// person pastes a link.
func (p *tab) axFill(d time.Duration, name, text string, enter bool) {
	p.t.Helper()
	sel := byRole(name, roleTextbox)
	actions := []chromedp.Action[chromedp.Void]{chromedp.WaitEnabled("textbox "+name, sel), chromedp.Focus("textbox "+name, sel)}
	if len(text) > 60 {
		actions = append(actions, chromedp.Func(func(ctx context.Context, t *chromedp.Target) error {
			_, err := cdp.Call(ctx, t, input.InsertText, input.InsertTextParams{Text: text})
			return err
		}))
	} else {
		actions = append(actions, chromedp.SendKeys("textbox "+name, text, sel))
	}
	if enter {
		actions = append(actions, chromedp.KeyEvent("\r"))
	}
	p.within(d, fmt.Sprintf("typing into the textbox %q", name), actions...)
}

// axWait waits for the element named name with role to be shown.
func (p *tab) axWait(d time.Duration, name, role string) {
	p.t.Helper()
	p.within(d, fmt.Sprintf("waiting for the %s %q", role, name), chromedp.WaitVisible(role+" "+name, byRole(name, role)))
}

// axLine waits for a text reading exactly text inside the element named
// name with role (the page when name is "").
func (p *tab) axLine(d time.Duration, name, role, text string) {
	p.t.Helper()
	ctx, cancel := context.WithTimeout(p.ctx, d)
	defer cancel()
	err := chromedp.Do(ctx, chromedp.Func(func(ctx context.Context, t *chromedp.Target) error {
		for {
			// The document as a JavaScript object: DOM.getDocument would
			// renumber the nodes chromedp knows.
			doc, err := cdp.Call(ctx, t, runtime.Evaluate, runtime.EvaluateParams{Expression: "document"})
			if err != nil {
				return err
			}
			ids, err := axFind(ctx, t, accessibility.QueryAXTreeParams{ObjectID: doc.Result.ObjectID}, name, role, text)
			_, _ = cdp.Call(ctx, t, runtime.ReleaseObject, runtime.ReleaseObjectParams{ObjectID: doc.Result.ObjectID})
			if err != nil || len(ids) > 0 {
				return err
			}
			select {
			case <-ctx.Done():
				return ctx.Err()
			case <-time.After(50 * time.Millisecond):
			}
		}
	}))
	if err != nil {
		p.t.Fatalf("Chromium: waiting for %q in the %s %q: %v\nconsole:\n%s", text, role, name, err, p.console())
	}
}

// axUpload clicks the button named name and answers the file dialog it
// opens with path.
func (p *tab) axUpload(d time.Duration, name, path string) {
	p.t.Helper()
	sel := byRole(name, roleButton)
	ctx, cancel := context.WithTimeout(p.ctx, d)
	defer cancel()
	if _, err := chromedp.Call(ctx, page.SetInterceptFileChooserDialog, page.SetInterceptFileChooserDialogParams{Enabled: true}); err != nil {
		p.t.Fatal(err)
	}
	ev, err := chromedp.Run(ctx, chromedp.WaitEvent(page.FileChooserOpened, nil, chromedp.Click("button "+name, sel)))
	if err != nil {
		p.t.Fatalf("Chromium: the button %q opened no file dialog: %v\nconsole:\n%s", name, err, p.console())
	}
	if _, err := chromedp.Call(ctx, dom.SetFileInputFiles, dom.SetFileInputFilesParams{Files: []string{path}, BackendNodeID: ev.BackendNodeID}); err != nil {
		p.t.Fatal(err)
	}
}

// ---------- Firefox ----------

// foxTab is the Firefox tab that web/e2e/firefox/smoke.mjs drives.
type foxTab struct {
	t         *testing.T
	cmd       *exec.Cmd
	stdin     io.WriteCloser
	replies   chan foxReply
	downloads string

	mu  sync.Mutex
	log bytes.Buffer // the script's stderr: its steps and the page's console
}

type foxReply struct {
	OK    bool            `json:"ok"`
	Value json.RawMessage `json:"value"`
	Error string          `json:"error"`
}

// startFirefox starts the driver script and waits until Firefox runs.
func startFirefox(t *testing.T, node, firefox string) *foxTab {
	t.Helper()
	f := &foxTab{t: t, replies: make(chan foxReply), downloads: t.TempDir()}
	f.cmd = exec.Command(node, filepath.Join(root, "web", "e2e", "firefox", "smoke.mjs"), firefox, f.downloads)
	f.cmd.Dir = filepath.Join(root, "web", "e2e")
	// Its own process group, so that Firefox goes with it if it hangs.
	f.cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	f.cmd.Stderr = lockedBuffer{&f.mu, &f.log}
	var err error
	if f.stdin, err = f.cmd.StdinPipe(); err != nil {
		t.Fatal(err)
	}
	stdout, err := f.cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := f.cmd.Start(); err != nil {
		t.Fatalf("starting %s: %v", node, err)
	}
	done := make(chan struct{})
	go func() {
		defer close(f.replies)
		sc := bufio.NewScanner(stdout)
		sc.Buffer(make([]byte, 1<<20), 16<<20)
		for sc.Scan() {
			var r foxReply
			if err := json.Unmarshal(sc.Bytes(), &r); err != nil {
				r = foxReply{Error: fmt.Sprintf("unreadable reply %q: %v", sc.Text(), err)}
			}
			f.replies <- r
		}
	}()
	go func() { _ = f.cmd.Wait(); close(done) }()
	t.Cleanup(func() {
		_ = f.stdin.Close() // the script closes Firefox and exits
		select {
		case <-done:
		case <-time.After(scaled(20 * time.Second)):
			t.Errorf("the Firefox driver did not exit within %v of its stdin closing; killing it", scaled(20*time.Second))
			_ = syscall.Kill(-f.cmd.Process.Pid, syscall.SIGKILL)
			<-done
		}
		f.mu.Lock()
		defer f.mu.Unlock()
		if t.Failed() || testing.Verbose() {
			t.Logf("Firefox driver log:\n%s", f.log.String())
		}
	})
	version := f.reply(scaled(60*time.Second), "starting Firefox")
	var v string
	_ = json.Unmarshal(version, &v)
	t.Logf("Firefox: %s", v)
	return f
}

type lockedBuffer struct {
	mu *sync.Mutex
	b  *bytes.Buffer
}

func (w lockedBuffer) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.b.Write(p)
}

// reply waits up to d for the script's next answer.
func (f *foxTab) reply(d time.Duration, what string) json.RawMessage {
	f.t.Helper()
	select {
	case r, ok := <-f.replies:
		if !ok {
			f.t.Fatalf("Firefox: %s: the driver exited\n%s", what, f.logText())
		}
		if !r.OK {
			f.shot("failed")
			f.t.Fatalf("Firefox: %s: %s", what, r.Error)
		}
		return r.Value
	case <-time.After(d):
		f.t.Fatalf("Firefox: %s: no answer within %v\n%s", what, d, f.logText())
	}
	return nil
}

func (f *foxTab) logText() string {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.log.String()
}

// do sends one command (see smoke.mjs) with the deadline d and returns
// its value, failing the test on error.
func (f *foxTab) do(d time.Duration, cmd map[string]any) json.RawMessage {
	f.t.Helper()
	cmd["timeout"] = d.Milliseconds()
	line, err := json.Marshal(cmd)
	if err != nil {
		f.t.Fatal(err)
	}
	if _, err := f.stdin.Write(append(line, '\n')); err != nil {
		f.t.Fatalf("Firefox: sending %s: %v\n%s", line, err, f.logText())
	}
	return f.reply(d+10*time.Second, string(line))
}

// value returns the value of the textbox named name once it contains contains.
func (f *foxTab) value(d time.Duration, name, contains string) string {
	f.t.Helper()
	var v string
	if err := json.Unmarshal(f.do(d, map[string]any{"op": "value", "name": name, "role": roleTextbox, "contains": contains}), &v); err != nil {
		f.t.Fatal(err)
	}
	return v
}

// shot saves web/e2e/artifacts/<test>-<name>.png; a failure is only logged.
func (f *foxTab) shot(name string) {
	dir := filepath.Join(root, "web", "e2e", "artifacts")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		f.t.Logf("screenshot: %v", err)
		return
	}
	cmd, _ := json.Marshal(map[string]any{"op": "shot", "path": filepath.Join(dir, f.t.Name()+"-"+name+".png"), "timeout": 10000})
	if _, err := f.stdin.Write(append(cmd, '\n')); err != nil {
		f.t.Logf("screenshot: %v", err)
		return
	}
	select {
	case r, ok := <-f.replies:
		if ok && !r.OK {
			f.t.Logf("screenshot: %s", r.Error)
		}
	case <-time.After(20 * time.Second):
		f.t.Logf("screenshot: no answer within 20s")
	}
}

// check fails the test on console errors, uncaught exceptions and CSP
// violations in the Firefox page.
func (f *foxTab) check() {
	f.t.Helper()
	var errs []string
	if err := json.Unmarshal(f.do(scaled(10*time.Second), map[string]any{"op": "errors"}), &errs); err != nil {
		f.t.Fatal(err)
	}
	for _, e := range errs {
		f.t.Errorf("Firefox: %s", e)
	}
}

// waitDownload waits for Firefox to finish saving name and returns its bytes.
func (f *foxTab) waitDownload(d time.Duration, name string) []byte {
	f.t.Helper()
	path := filepath.Join(f.downloads, name)
	deadline := time.Now().Add(d)
	for time.Now().Before(deadline) {
		b, err := os.ReadFile(path)
		if _, partErr := os.Stat(path + ".part"); err == nil && len(b) > 0 && errors.Is(partErr, os.ErrNotExist) {
			return b
		}
		time.Sleep(100 * time.Millisecond)
	}
	entries, _ := os.ReadDir(f.downloads)
	var names []string
	for _, e := range entries {
		names = append(names, e.Name())
	}
	f.t.Fatalf("Firefox did not save %s within %v (the downloads folder has %v)\n%s", name, d, names, f.logText())
	return nil
}
