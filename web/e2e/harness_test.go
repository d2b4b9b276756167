//go:build e2e

package e2e

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/chromedp/cdproto/page"
	"github.com/chromedp/chromedp"
)

// scaled stretches a test deadline by WISP_TEST_SCALE (a number ≥ 1,
// default 1; WISP_TEST_SLOW is another name for it), the one factor every
// deadline of these tests derives from, for slow or loaded machines. The
// waits (waitJS, waitText, …) scale the timeouts they are given.
func scaled(d time.Duration) time.Duration {
	for _, name := range []string{"WISP_TEST_SCALE", "WISP_TEST_SLOW"} {
		if f, err := strconv.ParseFloat(os.Getenv(name), 64); err == nil && f >= 1 {
			return time.Duration(float64(d) * f)
		}
	}
	return d
}

// root is the repository root; binaries are in root/bin.
var root string

// browserCtx is the shared Chromium process; tests open isolated contexts in it.
var browserCtx context.Context

func TestMain(m *testing.M) {
	os.Exit(runMain(m))
}

func runMain(m *testing.M) int {
	var err error
	root, err = findRoot()
	if err != nil {
		fmt.Fprintln(os.Stderr, "e2e:", err)
		return 1
	}
	for _, bin := range []string{"wisp-host", "wisp-relay"} {
		if _, err := os.Stat(filepath.Join(root, "bin", bin)); err != nil {
			fmt.Fprintf(os.Stderr, "e2e: bin/%s is missing: run `make build` first (or `make test-e2e`)\n", bin)
			return 1
		}
	}
	chromium, err := exec.LookPath("chromium")
	if err != nil {
		fmt.Fprintln(os.Stderr, "e2e: chromium is missing: apt-get install -y chromium")
		return 1
	}
	userData, err := os.MkdirTemp("", "wisp-e2e-chromium-")
	if err != nil {
		fmt.Fprintln(os.Stderr, "e2e:", err)
		return 1
	}
	defer os.RemoveAll(userData)
	allocCtx, cancelAlloc := chromedp.NewExecAllocator(context.Background(), browserOptions(chromium, userData)...)
	defer cancelAlloc()
	var cancelBrowser context.CancelFunc
	browserCtx, cancelBrowser = chromedp.NewContext(allocCtx)
	defer cancelBrowser()
	if _, err := chromedp.Run(browserCtx, chromedp.Navigate("about:blank")); err != nil {
		fmt.Fprintln(os.Stderr, "e2e: starting chromium:", err)
		return 1
	}
	return m.Run()
}

// browserOptions are the flags of every Chromium the tests start.
func browserOptions(chromium, userData string) []chromedp.ExecAllocatorOption {
	return []chromedp.ExecAllocatorOption{
		chromedp.ExecPath(chromium),
		chromedp.Headless,
		chromedp.NoSandbox,
		chromedp.DisableGPU,
		chromedp.NoFirstRun,
		chromedp.NoDefaultBrowserCheck,
		chromedp.UserDataDir(userData),
		chromedp.Flag("disable-quic", true),
		chromedp.Flag("disable-background-networking", true),
		chromedp.Flag("disable-component-update", true),
		chromedp.Flag("disable-sync", true),
		chromedp.Flag("disable-dev-shm-usage", true),
		chromedp.WindowSize(1280, 900),
	}
}

func findRoot() (string, error) {
	if r := os.Getenv("WISP_ROOT"); r != "" {
		return filepath.Abs(r)
	}
	dir, err := os.Getwd()
	if err != nil {
		return "", err
	}
	for {
		if _, err := os.Stat(filepath.Join(dir, "go.mod")); err == nil {
			return dir, nil
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return "", errors.New("cannot find the repository root (set WISP_ROOT)")
		}
		dir = parent
	}
}

// proc is a Wisp binary running as a child process.
type proc struct {
	cmd    *exec.Cmd
	mu     sync.Mutex
	stderr bytes.Buffer
	done   chan struct{}
}

// Log returns what the process wrote to stderr so far.
func (p *proc) Log() string {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.stderr.String()
}

type lockedWriter struct{ p *proc }

func (w lockedWriter) Write(b []byte) (int, error) {
	w.p.mu.Lock()
	defer w.p.mu.Unlock()
	return w.p.stderr.Write(b)
}

// startProc starts bin/name with args and waits for a stdout line matching
// ready; it returns the process and the first submatch of ready.
func startProc(t testing.TB, ready *regexp.Regexp, name string, args ...string) (*proc, string) {
	t.Helper()
	p := &proc{done: make(chan struct{})}
	p.cmd = exec.Command(filepath.Join(root, "bin", name), args...)
	p.cmd.Dir = root
	p.cmd.Stderr = lockedWriter{p}
	stdout, err := p.cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := p.cmd.Start(); err != nil {
		t.Fatalf("starting %s: %v", name, err)
	}
	found := make(chan string, 1)
	go func() {
		sc := bufio.NewScanner(stdout)
		for sc.Scan() {
			if m := ready.FindStringSubmatch(sc.Text()); m != nil {
				select {
				case found <- m[1]:
				default:
				}
			}
		}
		_, _ = io.Copy(io.Discard, stdout)
	}()
	go func() { _ = p.cmd.Wait(); close(p.done) }()
	t.Cleanup(func() {
		_ = p.cmd.Process.Signal(syscall.SIGTERM)
		select {
		case <-p.done:
		case <-time.After(scaled(10 * time.Second)):
			_ = p.cmd.Process.Kill()
			<-p.done
			t.Errorf("%s did not stop within %v of SIGTERM", name, scaled(10*time.Second))
		}
	})
	select {
	case v := <-found:
		return p, v
	case <-p.done:
		t.Fatalf("%s exited before it was ready: %s", name, p.Log())
	case <-time.After(scaled(30 * time.Second)):
		t.Fatalf("%s did not become ready within %v: %s", name, scaled(30*time.Second), p.Log())
	}
	return nil, ""
}

var hostReady = regexp.MustCompile(`^wisp host: (http://\S+)/$`)

var relayReady = regexp.MustCompile(`^relay address: (wisp://\S+)$`)

// startRelay runs bin/wisp-relay on a free loopback port with a fresh data
// directory and returns its address.
func startRelay(t testing.TB) (*proc, string) {
	t.Helper()
	return startProc(t, relayReady, "wisp-relay", "-listen", "127.0.0.1:0", "-data", t.TempDir(), "-proxy-private")
}

// startHost runs bin/wisp-host on a free loopback port and returns its base
// URL (no trailing slash). The test relays are on loopback without TLS, so
// it passes -allow-loopback-relays (as make run does); startProdHost does
// not.
func startHost(t testing.TB, args ...string) (*proc, string) {
	t.Helper()
	return startProc(t, hostReady, "wisp-host", append([]string{"-listen", "127.0.0.1:0", "-allow-loopback-relays"}, args...)...)
}

// startProdHost runs bin/wisp-host as in production (only wss: relays) on a
// free loopback port, as behind a reverse proxy.
func startProdHost(t testing.TB, args ...string) (*proc, string) {
	t.Helper()
	return startProc(t, hostReady, "wisp-host", append([]string{"-listen", "127.0.0.1:0"}, args...)...)
}

// tab is one isolated browser context with a tab.
type tab struct {
	ctx context.Context
	t   testing.TB

	mu       sync.Mutex
	messages []chromedp.ConsoleMessage
	// allowErrors disables the console-error check (for tests that provoke errors).
	allowErrors bool
	// expected lists console errors a test provokes on purpose (substrings).
	expected []string
	// crashed: the renderer was crashed on purpose; close only closes.
	crashed bool

	once    sync.Once
	closeFn func()
}

// cspProbe records CSP violations in the page, including those the worker
// forwards (see worker.js), where tests can read them.
const cspProbe = `window.__cspViolations = [];
document.addEventListener("securitypolicyviolation", (e) =>
  window.__cspViolations.push(e.violatedDirective + " " + e.blockedURI));`

// newPage opens a fresh, isolated browser context (its own storage, as a
// separate person would have). At cleanup it saves a screenshot and fails
// the test on console errors, exceptions and CSP violations.
func newPage(t testing.TB) *tab {
	t.Helper()
	return newPerson(t, "")
}

// newPerson is newPage for tests with several people: name goes into the
// screenshot's file name.
func newPerson(t testing.TB, name string) *tab {
	t.Helper()
	return openTab(t, browserCtx, strings.TrimSuffix(t.Name()+"-"+name, "-"), chromedp.WithNewBrowserContext())
}

// newTabBeside opens another tab in p's browser context: the same person,
// the same storage.
func newTabBeside(t testing.TB, p *tab, name string) *tab {
	t.Helper()
	return openTab(t, p.ctx, name)
}

func openTab(t testing.TB, parent context.Context, name string, opts ...chromedp.ContextOption) *tab {
	t.Helper()
	ctx, cancel := chromedp.NewContext(parent, opts...)
	ctx, cancelTimeout := context.WithTimeout(ctx, scaled(5*time.Minute))
	p := &tab{ctx: ctx, t: t}
	messages := chromedp.Console(ctx)
	go func() {
		for m, err := range messages {
			if err != nil {
				return
			}
			p.mu.Lock()
			p.messages = append(p.messages, m)
			p.mu.Unlock()
		}
	}()
	if _, err := chromedp.Call(ctx, page.AddScriptToEvaluateOnNewDocument,
		page.AddScriptToEvaluateOnNewDocumentParams{Source: cspProbe}); err != nil {
		t.Fatalf("installing the CSP probe: %v", err)
	}
	p.closeFn = func() {
		if !p.crashed {
			p.screenshot(name)
			p.check()
		}
		cancelTimeout()
		cancel()
	}
	t.Cleanup(p.close)
	return p
}

// close saves the screenshot, checks the console and closes the context.
// It runs at the latest when the test ends; calling it again does nothing.
func (p *tab) close() {
	p.once.Do(p.closeFn)
}

// run runs actions on the page, failing the test on error.
func (p *tab) run(actions ...chromedp.Action[chromedp.Void]) {
	p.t.Helper()
	if err := chromedp.Do(p.ctx, actions...); err != nil {
		p.t.Fatalf("browser: %v\nconsole:\n%s", err, p.console())
	}
}

// eval evaluates a JavaScript expression (awaiting promises) into T.
func eval[T any](p *tab, expr string) T {
	p.t.Helper()
	v, err := chromedp.Run(p.ctx, chromedp.Evaluate[T](expr, chromedp.EvalAwaitPromise))
	if err != nil {
		p.t.Fatalf("evaluating %q: %v\nconsole:\n%s", expr, err, p.console())
	}
	return v
}

// waitText waits until the element matching sel has exactly text, for
// timeout scaled.
func (p *tab) waitText(sel, text string, timeout time.Duration) {
	p.t.Helper()
	timeout = scaled(timeout)
	expr := fmt.Sprintf(`document.querySelector(%q)?.textContent === %q`, sel, text)
	if _, err := chromedp.Run(p.ctx, chromedp.Poll[bool](expr,
		chromedp.WithPollingInterval(20*time.Millisecond), chromedp.WithPollingTimeout(timeout))); err != nil {
		got, _ := chromedp.Run(p.ctx, chromedp.Evaluate[string](fmt.Sprintf(`document.querySelector(%q)?.textContent ?? "(missing)"`, sel)))
		p.t.Fatalf("waiting for %s to read %q (it reads %q): %v\nconsole:\n%s", sel, text, got, err, p.console())
	}
}

func (p *tab) console() string {
	p.mu.Lock()
	defer p.mu.Unlock()
	var b strings.Builder
	for _, m := range p.messages {
		fmt.Fprintf(&b, "  [%s] %s\n", m.Type, m.Text)
	}
	return b.String()
}

func (p *tab) screenshot(name string) {
	dir := filepath.Join(root, "web", "e2e", "artifacts")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		p.t.Logf("screenshot: %v", err)
		return
	}
	ctx, cancel := context.WithTimeout(p.ctx, 10*time.Second)
	defer cancel()
	png, err := chromedp.Run(ctx, chromedp.FullScreenshot(100))
	if err != nil {
		p.t.Logf("screenshot: %v", err)
		return
	}
	file := filepath.Join(dir, strings.NewReplacer("/", "_", " ", "_").Replace(name)+".png")
	if err := os.WriteFile(file, png, 0o644); err != nil {
		p.t.Logf("screenshot: %v", err)
	}
}

// expectErrors lets console errors containing s pass the check: for a
// test that takes something down on purpose.
func (p *tab) expectErrors(s string) {
	p.mu.Lock()
	p.expected = append(p.expected, s)
	p.mu.Unlock()
}

// check fails the test on console errors, exceptions and CSP violations.
func (p *tab) check() {
	ctx, cancel := context.WithTimeout(p.ctx, scaled(5*time.Second))
	defer cancel()
	violations, err := chromedp.Run(ctx, chromedp.Evaluate[[]string](`window.__cspViolations ?? []`))
	if err != nil {
		p.t.Logf("reading CSP violations: %v", err)
	}
	for _, v := range violations {
		p.t.Errorf("CSP violation: %s", v)
	}
	if p.allowErrors {
		return
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	for _, m := range p.messages {
		if slices.ContainsFunc(p.expected, func(s string) bool { return strings.Contains(m.Text, s) }) {
			continue
		}
		if m.Type == chromedp.ConsoleError || m.IsException() || m.Type == "assert" ||
			strings.Contains(m.Text, "Content Security Policy") {
			p.t.Errorf("console %s: %s (%s:%d)", m.Type, m.Text, m.URL, m.Line)
		}
	}
}
