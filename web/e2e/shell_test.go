//go:build e2e

package e2e

import (
	"encoding/json"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
	"github.com/wisp-chat/wisp/wasm/buildinfo"
)

// TestShellReady loads the app and waits for the core's version() answer.
func TestShellReady(t *testing.T) {
	h, base := startHost(t)
	p := newPage(t)
	p.run(chromedp.Navigate(base + "/"))
	p.waitText("#status", "ready", time.Minute)
	version := eval[string](p, `document.querySelector("#core-version").textContent`)
	if !strings.HasPrefix(version, buildinfo.Version+" (go1.") {
		t.Errorf("core version reads %q, want it to start with %q", version, buildinfo.Version+" (go1.")
	}
	// A first visit goes on to onboarding.
	p.waitVisible("#onboarding")
	// The worker fetched the content-hashed core and Go's wasm_exec.js.
	for _, re := range []string{`path=/core\.[0-9a-f]{16}\.wasm status=200`, `path=/wasm_exec\.[0-9a-f]{16}\.js status=200`} {
		if !regexp.MustCompile(re).MatchString(h.Log()) {
			t.Errorf("the host log has no line matching %s:\n%s", re, h.Log())
		}
	}
}

// TestTrustedTypes: the page starts under the CSP's Trusted Types, which
// are enforced: HTML and script URLs not made by the "wisp" policy are
// refused, and no other policy can be created.
func TestTrustedTypes(t *testing.T) {
	_, base := startHost(t)
	p := newPage(t)
	p.allowErrors = true // the refusals are logged by the browser, on purpose
	p.run(chromedp.Navigate(base + "/"))
	p.waitText("#status", "ready", time.Minute)
	// The worker started (the page is ready) and the service worker
	// registered, both with script URLs of the policy.
	if !eval[bool](p, `navigator.serviceWorker.ready.then((r) => !!r.active)`) {
		t.Error("the service worker did not register")
	}
	for what, expr := range map[string]string{
		"innerHTML":         `document.createElement("div").innerHTML = "<b>x</b>"`,
		"new Worker":        `new Worker("./worker.js")`,
		"another policy":    `trustedTypes.createPolicy("other", {})`,
		"the policy, twice": `trustedTypes.createPolicy("wisp", {})`,
	} {
		got := eval[string](p, `(() => { try { `+expr+`; return "allowed" } catch (e) { return e.name } })()`)
		if got != "TypeError" {
			t.Errorf("%s: %s, want a TypeError", what, got)
		}
	}
	// Drop the violations provoked here once they are all reported, so the
	// harness still fails on any other.
	p.waitJS(`window.__cspViolations.filter(v => /^(require-)?trusted-types/.test(v)).length >= 4`, 30*time.Second, "the violation reports")
	eval[bool](p, `(() => { window.__cspViolations = window.__cspViolations.filter(v => !/^(require-)?trusted-types/.test(v)); return true })()`)
}

// TestCoreLoadFailure serves a bundle whose core is broken and checks that
// the page shows the error screen instead of hanging.
func TestCoreLoadFailure(t *testing.T) {
	for _, tc := range []struct {
		name    string
		breakIt func(dir string) error
		want    *regexp.Regexp
	}{
		{"corrupt wasm", func(dir string) error {
			return os.WriteFile(filepath.Join(dir, "core.wasm"), []byte("\x00asm not really"), 0o644)
		}, regexp.MustCompile(`The Wisp core stopped: could not load the core: .+`)},
		{"missing wasm", func(dir string) error {
			return os.Remove(filepath.Join(dir, "core.wasm"))
		}, regexp.MustCompile(`The Wisp core stopped: could not load the core: core\.wasm: HTTP 404`)},
		{"missing worker", func(dir string) error {
			return os.Remove(filepath.Join(dir, "worker.js"))
		}, regexp.MustCompile(`The Wisp core stopped: the core worker failed.*`)},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := copyWeb(t)
			if err := tc.breakIt(dir); err != nil {
				t.Fatal(err)
			}
			_, base := startHost(t, "-dev", "-web", dir)
			p := newPage(t)
			p.allowErrors = true // the failure is logged by the browser, on purpose
			p.run(chromedp.Navigate(base + "/"))
			p.run(chromedp.WaitVisible(chromedp.CSS("#error")))
			msg := eval[string](p, `document.querySelector("#error-message").textContent`)
			if !tc.want.MatchString(msg) {
				t.Errorf("error message %q does not match %q", msg, tc.want)
			}
			if focused := eval[string](p, `document.activeElement?.id ?? ""`); focused != "reload" {
				t.Errorf("focus is on %q, want the Reload button", focused)
			}
		})
	}
}

// copyWeb copies the dev layout of web/ (with the built core) to a temp dir.
func copyWeb(t *testing.T) string {
	t.Helper()
	src := filepath.Join(root, "web")
	if _, err := os.Stat(filepath.Join(src, "core.wasm")); err != nil {
		t.Fatalf("web/core.wasm is missing: run `make build` first")
	}
	dst := t.TempDir()
	if err := os.CopyFS(dst, os.DirFS(src)); err != nil {
		t.Fatal(err)
	}
	return dst
}

// TestHostHTTP checks the host's HTTP surface against the real binary.
func TestHostHTTP(t *testing.T) {
	const relay = "wisp://AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA@127.0.0.1:5223"
	h, base := startHost(t, "-relay", relay)
	client := &http.Client{Timeout: scaled(10 * time.Second)}
	get := func(method, path string, hdr map[string]string) (*http.Response, []byte) {
		t.Helper()
		req, err := http.NewRequest(method, base+path, nil)
		if err != nil {
			t.Fatal(err)
		}
		req.Header.Set("Accept-Encoding", "identity")
		for k, v := range hdr {
			req.Header.Set(k, v)
		}
		resp, err := client.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		body, err := io.ReadAll(resp.Body)
		if err != nil {
			t.Fatal(err)
		}
		return resp, body
	}

	resp, body := get("GET", "/?secret-query=1", nil)
	if resp.StatusCode != 200 || !strings.Contains(string(body), "<title>Wisp</title>") {
		t.Fatalf("GET / = %d", resp.StatusCode)
	}
	for k, want := range map[string]string{
		"Referrer-Policy":            "no-referrer",
		"X-Content-Type-Options":     "nosniff",
		"Cross-Origin-Opener-Policy": "same-origin",
		"Cache-Control":              "no-cache",
	} {
		if got := resp.Header.Get(k); got != want {
			t.Errorf("%s = %q, want %q", k, got, want)
		}
	}
	csp := resp.Header.Get("Content-Security-Policy")
	for _, d := range []string{"default-src 'none'", "script-src 'self' 'wasm-unsafe-eval'", "worker-src 'self'",
		"connect-src 'self' wss: ws://127.0.0.1:*", "img-src 'self' blob: data:", "style-src 'self'",
		"base-uri 'none'", "form-action 'none'", "frame-ancestors 'none'"} {
		if !strings.Contains(csp, d) {
			t.Errorf("CSP %q lacks %q", csp, d)
		}
	}
	if pp := resp.Header.Get("Permissions-Policy"); !strings.Contains(pp, "camera=()") || !strings.Contains(pp, "microphone=()") {
		t.Errorf("Permissions-Policy = %q", pp)
	}

	// Hashed assets referenced by index.html are immutable; brotli is served.
	m := regexp.MustCompile(`src="\./(app\.[0-9a-f]{16}\.js)"`).FindSubmatch(body)
	if m == nil {
		t.Fatalf("index.html does not reference a hashed app.js:\n%s", body)
	}
	resp, _ = get("GET", "/"+string(m[1]), map[string]string{"Accept-Encoding": "gzip, br"})
	if cc := resp.Header.Get("Cache-Control"); cc != "public, max-age=31536000, immutable" {
		t.Errorf("hashed asset Cache-Control = %q", cc)
	}
	if ce := resp.Header.Get("Content-Encoding"); ce != "br" {
		t.Errorf("Content-Encoding = %q, want br", ce)
	}
	if ct := resp.Header.Get("Content-Type"); ct != "text/javascript; charset=utf-8" {
		t.Errorf("Content-Type = %q", ct)
	}

	_, body = get("GET", "/config.json", nil)
	var cfg struct{ Relays []string }
	if err := json.Unmarshal(body, &cfg); err != nil || !slices.Equal(cfg.Relays, []string{relay}) {
		t.Errorf("config.json = %s (%v), want relays [%s]", body, err, relay)
	}

	for _, method := range []string{"POST", "PUT", "DELETE", "OPTIONS", "PATCH"} {
		if resp, _ := get(method, "/", nil); resp.StatusCode != http.StatusMethodNotAllowed || resp.Header.Get("Allow") != "GET, HEAD" {
			t.Errorf("%s / = %d (Allow %q), want 405", method, resp.StatusCode, resp.Header.Get("Allow"))
		}
	}
	for _, path := range []string{"/nope", "/e2e/", "/.gitkeep", "/index.html.br", "/../go.mod", "/main.go", "/dist/", "/%23/invite/SECRETPAYLOAD"} {
		resp, body := get("GET", path, nil)
		if resp.StatusCode != http.StatusNotFound {
			t.Errorf("GET %s = %d, want 404", path, resp.StatusCode)
		}
		if strings.Contains(string(body), "<a href") {
			t.Errorf("GET %s looks like a directory listing", path)
		}
		if resp.Header.Get("Content-Security-Policy") == "" {
			t.Errorf("GET %s has no CSP", path)
		}
	}
	if resp, body := get("HEAD", "/", nil); resp.StatusCode != 200 || len(body) != 0 {
		t.Errorf("HEAD / = %d with %d body bytes", resp.StatusCode, len(body))
	}

	log := h.Log()
	if strings.Contains(log, "secret-query") {
		t.Errorf("the host logged a query string:\n%s", log)
	}
	if strings.Contains(log, "SECRETPAYLOAD") || strings.Contains(log, "invite") || !strings.Contains(log, "path=- status=404") {
		t.Errorf("the host logged a path that is not in the bundle:\n%s", log)
	}
	if strings.Contains(log, "127.0.0.1:") {
		t.Errorf("the host logged an address:\n%s", log)
	}
	if !strings.Contains(log, `method=POST path=/ status=405`) {
		t.Errorf("the host log lacks the POST line:\n%s", log)
	}
}

// BenchmarkLoadToReady measures navigation start → "ready" (the core's
// version() answer) in a fresh browser context each time, so nothing is
// cached. Run with -benchtime 5x for the median of five loads.
func BenchmarkLoadToReady(b *testing.B) {
	_, base := startHost(b)
	var samples []float64
	for b.Loop() {
		p := newPage(b)
		p.run(chromedp.Navigate(base + "/"))
		p.waitText("#status", "ready", time.Minute)
		samples = append(samples, eval[float64](p, `performance.getEntriesByName("wisp-ready")[0].startTime`))
		p.close()
	}
	slices.Sort(samples)
	b.ReportMetric(samples[len(samples)/2], "ms-median")
	b.ReportMetric(samples[len(samples)-1], "ms-max")
}
