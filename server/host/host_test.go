package host

import (
	"bytes"
	"errors"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"testing/fstest"
)

func testFiles() fstest.MapFS {
	return fstest.MapFS{
		"index.html":                 {Data: []byte("<!doctype html><title>Wisp</title>")},
		"index.html.br":              {Data: []byte("BR-INDEX")},
		"index.html.gz":              {Data: []byte("GZ-INDEX")},
		"app.0123456789abcdef.js":    {Data: []byte("console.log(1)")},
		"app.0123456789abcdef.js.gz": {Data: []byte("GZ-APP")},
		"core.0123456789abcdef.wasm": {Data: []byte("\x00asm\x01\x00\x00\x00")},
		"sw.js":                      {Data: []byte("// sw")},
		"icons/icon.svg":             {Data: []byte("<svg/>")},
		".hidden":                    {Data: []byte("secret")},
		"sub/.env":                   {Data: []byte("secret")},
	}
}

func newTest(t *testing.T, cfg Config) (*Handler, *bytes.Buffer) {
	t.Helper()
	var log bytes.Buffer
	if cfg.Files == nil {
		cfg.Files = testFiles()
	}
	cfg.Logger = slog.New(slog.NewTextHandler(&log, nil))
	h, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	return h, &log
}

func do(h http.Handler, method, target string, hdr ...string) *httptest.ResponseRecorder {
	req := httptest.NewRequest(method, target, nil)
	for i := 0; i+1 < len(hdr); i += 2 {
		req.Header.Set(hdr[i], hdr[i+1])
	}
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, req)
	return rec
}

func TestSecurityHeadersOnEveryResponse(t *testing.T) {
	for _, dev := range []bool{false, true} {
		h, _ := newTest(t, Config{Dev: dev})
		for _, tc := range []struct{ method, path string }{
			{"GET", "/"}, {"GET", "/nope"}, {"POST", "/"}, {"HEAD", "/sw.js"}, {"GET", "/config.json"},
		} {
			rec := do(h, tc.method, tc.path)
			hdr := rec.Header()
			for k, want := range map[string]string{
				"Referrer-Policy":            "no-referrer",
				"X-Content-Type-Options":     "nosniff",
				"Cross-Origin-Opener-Policy": "same-origin",
				"X-Frame-Options":            "DENY",
			} {
				if got := hdr.Get(k); got != want {
					t.Errorf("dev=%v %s %s: %s = %q, want %q", dev, tc.method, tc.path, k, got, want)
				}
			}
			if !strings.Contains(hdr.Get("Content-Security-Policy"), "frame-ancestors 'none'") {
				t.Errorf("%s %s: CSP = %q", tc.method, tc.path, hdr.Get("Content-Security-Policy"))
			}
			if !strings.Contains(hdr.Get("Permissions-Policy"), "camera=()") {
				t.Errorf("%s %s: Permissions-Policy = %q", tc.method, tc.path, hdr.Get("Permissions-Policy"))
			}
		}
	}
}

func TestCSP(t *testing.T) {
	want := "default-src 'none'; script-src 'self' 'wasm-unsafe-eval'; worker-src 'self'; " +
		"connect-src 'self' wss:; img-src 'self' blob: data:; style-src 'self'; manifest-src 'self'; " +
		"base-uri 'none'; form-action 'none'; frame-ancestors 'none'; " +
		"require-trusted-types-for 'script'; trusted-types wisp"
	if got := contentSecurityPolicy(false); got != want {
		t.Errorf("CSP =\n%s\nwant\n%s", got, want)
	}
	if got := contentSecurityPolicy(true); !strings.Contains(got, "connect-src 'self' wss: ws://127.0.0.1:* ws://localhost:*;") {
		t.Errorf("loopback CSP = %s", got)
	}
}

func TestMethods(t *testing.T) {
	h, _ := newTest(t, Config{})
	for _, m := range []string{"POST", "PUT", "DELETE", "PATCH", "OPTIONS", "CONNECT", "TRACE"} {
		rec := do(h, m, "/")
		if rec.Code != http.StatusMethodNotAllowed || rec.Header().Get("Allow") != "GET, HEAD" {
			t.Errorf("%s: %d Allow=%q", m, rec.Code, rec.Header().Get("Allow"))
		}
	}
	rec := do(h, "HEAD", "/")
	if rec.Code != 200 || rec.Body.Len() != 0 || rec.Header().Get("Content-Length") == "0" {
		t.Errorf("HEAD: %d, %d body bytes, Content-Length %q", rec.Code, rec.Body.Len(), rec.Header().Get("Content-Length"))
	}
}

func TestNotFound(t *testing.T) {
	for _, dev := range []bool{false, true} {
		h, _ := newTest(t, Config{Dev: dev})
		for _, p := range []string{"/nope", "/icons/", "/icons", "/.hidden", "/sub/.env", "/index.html.br",
			"/app.0123456789abcdef.js.gz", "/../index.html", "//index.html", "/a/../index.html", "/index.html/"} {
			rec := do(h, "GET", p)
			if rec.Code != http.StatusNotFound {
				t.Errorf("dev=%v GET %s = %d, want 404", dev, p, rec.Code)
			}
			if strings.Contains(rec.Body.String(), "href") || strings.Contains(rec.Body.String(), "secret") {
				t.Errorf("GET %s leaked a listing or a file: %q", p, rec.Body.String())
			}
		}
	}
}

func TestCachingAndTypes(t *testing.T) {
	h, _ := newTest(t, Config{})
	for _, tc := range []struct{ path, ctype, cache string }{
		{"/", "text/html; charset=utf-8", "no-cache"},
		{"/index.html", "text/html; charset=utf-8", "no-cache"},
		{"/sw.js", "text/javascript; charset=utf-8", "no-cache"},
		{"/config.json", "application/json", "no-cache"},
		{"/icons/icon.svg", "image/svg+xml", "no-cache"},
		{"/app.0123456789abcdef.js", "text/javascript; charset=utf-8", "public, max-age=31536000, immutable"},
		{"/core.0123456789abcdef.wasm", "application/wasm", "public, max-age=31536000, immutable"},
	} {
		rec := do(h, "GET", tc.path)
		if rec.Code != 200 {
			t.Errorf("GET %s = %d", tc.path, rec.Code)
			continue
		}
		if got := rec.Header().Get("Content-Type"); got != tc.ctype {
			t.Errorf("GET %s: Content-Type %q, want %q", tc.path, got, tc.ctype)
		}
		if got := rec.Header().Get("Cache-Control"); got != tc.cache {
			t.Errorf("GET %s: Cache-Control %q, want %q", tc.path, got, tc.cache)
		}
		etag := rec.Header().Get("ETag")
		if etag == "" {
			t.Errorf("GET %s: no ETag", tc.path)
			continue
		}
		if rec := do(h, "GET", tc.path, "If-None-Match", etag); rec.Code != http.StatusNotModified {
			t.Errorf("GET %s with its ETag = %d, want 304", tc.path, rec.Code)
		}
	}
	// In Dev mode nothing is immutable.
	hd, _ := newTest(t, Config{Dev: true})
	if got := do(hd, "GET", "/app.0123456789abcdef.js").Header().Get("Cache-Control"); got != "no-cache" {
		t.Errorf("dev: Cache-Control %q", got)
	}
}

func TestPrecompressed(t *testing.T) {
	h, _ := newTest(t, Config{})
	for _, tc := range []struct{ path, accept, enc, body string }{
		{"/", "gzip, deflate, br", "br", "BR-INDEX"},
		{"/", "br;q=0.5, gzip", "gzip", "GZ-INDEX"},
		{"/", "gzip", "gzip", "GZ-INDEX"},
		{"/", "br;q=0, gzip;q=0", "", "<!doctype html><title>Wisp</title>"},
		{"/", "", "", "<!doctype html><title>Wisp</title>"},
		{"/", "identity", "", "<!doctype html><title>Wisp</title>"},
		{"/", "br;q=bogus", "", "<!doctype html><title>Wisp</title>"},
		{"/app.0123456789abcdef.js", "br, gzip", "gzip", "GZ-APP"},
		{"/sw.js", "br, gzip", "", "// sw"},
	} {
		rec := do(h, "GET", tc.path, "Accept-Encoding", tc.accept)
		if got := rec.Header().Get("Content-Encoding"); got != tc.enc {
			t.Errorf("%s with %q: Content-Encoding %q, want %q", tc.path, tc.accept, got, tc.enc)
		}
		if rec.Body.String() != tc.body {
			t.Errorf("%s with %q: body %q, want %q", tc.path, tc.accept, rec.Body.String(), tc.body)
		}
		if rec.Header().Get("Vary") != "Accept-Encoding" {
			t.Errorf("%s: Vary %q", tc.path, rec.Header().Get("Vary"))
		}
	}
	// Each representation has its own validator.
	a := do(h, "GET", "/", "Accept-Encoding", "br").Header().Get("ETag")
	b := do(h, "GET", "/", "Accept-Encoding", "identity").Header().Get("ETag")
	if a == b {
		t.Errorf("br and identity share the ETag %s", a)
	}
}

func TestConfigJSON(t *testing.T) {
	h, _ := newTest(t, Config{Relays: []string{"wisp://abc@127.0.0.1:5223", "wisp://def@relay.example:443"}})
	rec := do(h, "GET", "/config.json")
	if want := `{"relays":["wisp://abc@127.0.0.1:5223","wisp://def@relay.example:443"]}`; rec.Body.String() != want {
		t.Errorf("config.json = %s, want %s", rec.Body.String(), want)
	}
	h, _ = newTest(t, Config{})
	if got := do(h, "GET", "/config.json").Body.String(); got != `{"relays":[]}` {
		t.Errorf("empty config.json = %s", got)
	}
}

func TestNewErrors(t *testing.T) {
	for _, relay := range []string{"", "wisp://", "https://relay.example", "relay.example:443"} {
		if _, err := New(Config{Files: testFiles(), Relays: []string{relay}}); !errors.Is(err, ErrBadRelay) {
			t.Errorf("relay %q: err = %v, want ErrBadRelay", relay, err)
		}
	}
	if _, err := New(Config{Files: fstest.MapFS{"app.js": {}}}); !errors.Is(err, ErrNoIndex) {
		t.Errorf("no index: err = %v, want ErrNoIndex", err)
	}
	if _, err := New(Config{}); err == nil {
		t.Error("nil Files accepted")
	}
}

func TestLogHasNoQuery(t *testing.T) {
	h, log := newTest(t, Config{})
	do(h, "GET", "/?invite=SECRETPAYLOAD")
	do(h, "GET", "/nope?x=SECRETPAYLOAD")
	out := log.String()
	if strings.Contains(out, "SECRETPAYLOAD") || strings.Contains(out, "192.0.2.1") {
		t.Errorf("log leaks the query or the client address:\n%s", out)
	}
	if !strings.Contains(out, "method=GET path=/ status=200") || !strings.Contains(out, "path=- status=404") {
		t.Errorf("log lacks request lines:\n%s", out)
	}
}

// TestLogOnlyBundlePaths: a path that is not a file of the bundle is
// logged as "-". An invitation whose '#' arrived percent-encoded
// (/%23/invite/…) was logged in full, decoded, as path=/#/invite/….
func TestLogOnlyBundlePaths(t *testing.T) {
	const secret = "SECRETPAYLOAD"
	for _, dev := range []bool{false, true} {
		h, log := newTest(t, Config{Dev: dev})
		for _, tc := range []struct{ method, target string }{
			{"GET", "/%23/invite/" + secret},
			{"HEAD", "/%23/invite/" + secret},
			{"POST", "/%23/invite/" + secret},
			{"GET", "/invite/" + secret},
			{"GET", "/" + secret},
			{"GET", "/icons/" + secret + ".svg"},
			{"GET", "/.hidden"}, // in the file system, not servable
			{"GET", "/index.html.br"},
			{"GET", "/icons/"},
			{"GET", "//" + secret},
		} {
			log.Reset()
			rec := do(h, tc.method, tc.target)
			if rec.Code == http.StatusOK {
				t.Fatalf("dev=%v %s %s = 200", dev, tc.method, tc.target)
			}
			out := log.String()
			if strings.Contains(out, secret) || strings.Contains(out, "invite") || strings.Contains(out, "hidden") || strings.Contains(out, ".br") {
				t.Errorf("dev=%v %s %s: the log holds the path:\n%s", dev, tc.method, tc.target, out)
			}
			if want := "method=" + tc.method + " path=- status="; !strings.Contains(out, want) {
				t.Errorf("dev=%v %s %s: the log lacks %q:\n%s", dev, tc.method, tc.target, want, out)
			}
		}
		// Files of the bundle are logged by their path, whatever the method.
		log.Reset()
		for _, tc := range []struct{ method, target string }{
			{"GET", "/"}, {"GET", "/sw.js"}, {"HEAD", "/icons/icon.svg"}, {"GET", "/config.json"},
			{"POST", "/app.0123456789abcdef.js"},
		} {
			do(h, tc.method, tc.target)
			if want := "method=" + tc.method + " path=" + tc.target + " status="; !strings.Contains(log.String(), want) {
				t.Errorf("dev=%v: the log lacks %q:\n%s", dev, want, log.String())
			}
		}
	}
}

func TestDevRereads(t *testing.T) {
	files := testFiles()
	h, _ := newTest(t, Config{Files: files, Dev: true})
	files["sw.js"] = &fstest.MapFile{Data: []byte("// changed")}
	if got := do(h, "GET", "/sw.js").Body.String(); got != "// changed" {
		t.Errorf("dev mode served %q after an edit", got)
	}
}
