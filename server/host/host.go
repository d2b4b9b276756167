// Package host serves Wisp's static web bundle with strict security headers.
//
// The host is deliberately dumb: it serves the files of the bundle and one
// generated document, /config.json, which lists the preset relay addresses.
// It never sees a message, a key or an invitation: invitations travel in the
// URL fragment, which browsers never send. It answers only GET and HEAD.
//
// Typical use:
//
//	h, err := host.New(host.Config{
//		Files:  bundleFS,             // an embed.FS sub-tree or os.DirFS("web")
//		Relays: []string{"wisp://…"},
//		Logger: slog.Default(),
//	})
//	if err != nil { … }
//	http.ListenAndServe("127.0.0.1:8080", h)
//
// File names that carry a content hash (name.0123456789abcdef.ext, as written
// by package bundle) are served as immutable for a year; everything else,
// index.html included, is served with "Cache-Control: no-cache" and a strong
// ETag so that browsers revalidate it. When the client accepts it, a
// precompressed sibling (name.br or name.gz) is served instead of the file.
package host

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"net/http"
	"path"
	"regexp"
	"strconv"
	"strings"
	"time"
)

// Config configures a Handler.
type Config struct {
	// Files is the bundle to serve; index.html must be at its root.
	Files fs.FS
	// Relays are the preset relay addresses published in /config.json.
	// Each must be a wisp:// address.
	Relays []string
	// Dev re-reads Files on every request (for editing web/ in place) and
	// serves every file with "no-cache".
	Dev bool
	// AllowLoopbackWS adds plain ws:// loopback origins to the CSP's
	// connect-src, for relays running on this machine without TLS. Set it
	// only for development and tests (wisp-host -dev or
	// -allow-loopback-relays), never merely because the host listens on
	// loopback: behind a reverse proxy it always does, and a production page
	// must not let an invitation point the browser at its own local ports.
	AllowLoopbackWS bool
	// Logger receives one line per request: method, path, status, duration.
	// The path is logged only when it names a file of the bundle (or /,
	// /config.json); anything else is logged as "-", since a request for an
	// unknown path may carry what a person meant to keep private (an
	// invitation whose '#' an app percent-encoded, say). Nil disables
	// request logging.
	Logger *slog.Logger
}

// ErrNoIndex is returned by New when the bundle has no index.html.
var ErrNoIndex = errors.New("host: bundle has no index.html")

// ErrBadRelay is returned by New for a relay address that is not wisp://.
var ErrBadRelay = errors.New("host: relay address must start with wisp://")

// hashedName matches the content-hashed names written by package bundle.
var hashedName = regexp.MustCompile(`\.[0-9a-f]{16}\.[A-Za-z0-9]+$`)

// contentTypes is the closed set of types the bundle may contain; any other
// extension is served as application/octet-stream.
var contentTypes = map[string]string{
	".html":        "text/html; charset=utf-8",
	".js":          "text/javascript; charset=utf-8",
	".mjs":         "text/javascript; charset=utf-8",
	".css":         "text/css; charset=utf-8",
	".wasm":        "application/wasm",
	".json":        "application/json",
	".webmanifest": "application/manifest+json",
	".svg":         "image/svg+xml",
	".png":         "image/png",
	".ico":         "image/x-icon",
	".txt":         "text/plain; charset=utf-8",
}

// permissionsPolicy denies every powerful feature the app does not use.
const permissionsPolicy = "accelerometer=(), autoplay=(), camera=(), display-capture=(), " +
	"encrypted-media=(), geolocation=(), gyroscope=(), hid=(), magnetometer=(), " +
	"microphone=(), midi=(), payment=(), publickey-credentials-get=(), " +
	"screen-wake-lock=(), serial=(), usb=(), xr-spatial-tracking=()"

// asset is one servable file with its precompressed variants.
type asset struct {
	name      string
	data      []byte
	br, gz    []byte
	etag      string
	ctype     string
	immutable bool
}

// Handler serves the bundle. Create it with New.
type Handler struct {
	cfg     Config
	csp     string
	config  *asset
	assets  map[string]*asset // nil in Dev mode
	modTime time.Time
}

// New checks cfg and returns a Handler. Outside Dev mode it reads the whole
// bundle into memory once.
func New(cfg Config) (*Handler, error) {
	if cfg.Files == nil {
		return nil, errors.New("host: Config.Files is nil")
	}
	relays := make([]string, 0, len(cfg.Relays))
	for _, r := range cfg.Relays {
		if !strings.HasPrefix(r, "wisp://") || len(r) == len("wisp://") {
			return nil, fmt.Errorf("%w: %q", ErrBadRelay, r)
		}
		relays = append(relays, r)
	}
	doc, err := json.Marshal(struct {
		Relays []string `json:"relays"`
	}{relays})
	if err != nil {
		return nil, fmt.Errorf("host: config.json: %w", err)
	}
	h := &Handler{
		cfg:     cfg,
		csp:     contentSecurityPolicy(cfg.AllowLoopbackWS),
		config:  newAsset("config.json", doc, nil, nil),
		modTime: time.Now(),
	}
	if _, err := fs.Stat(cfg.Files, "index.html"); err != nil {
		return nil, fmt.Errorf("%w: %w", ErrNoIndex, err)
	}
	if !cfg.Dev {
		h.assets = make(map[string]*asset)
		err := fs.WalkDir(cfg.Files, ".", func(name string, d fs.DirEntry, err error) error {
			if err != nil {
				return err
			}
			if d.IsDir() || !servable(name) {
				return nil
			}
			a, err := loadAsset(cfg.Files, name)
			if err != nil {
				return err
			}
			h.assets[name] = a
			return nil
		})
		if err != nil {
			return nil, fmt.Errorf("host: reading bundle: %w", err)
		}
		h.assets["config.json"] = h.config
	}
	return h, nil
}

// TrustedTypesPolicy is the one Trusted Types policy the page and its
// workers may create (web/dom.js, web/worker.js, web/qrworker.js): it
// turns the names of the bundle's own scripts into script URLs for
// new Worker, importScripts and serviceWorker.register.
const TrustedTypesPolicy = "wisp"

// contentSecurityPolicy builds the CSP header value. Only with loopbackWS
// (development, tests) may the page open plain ws:// connections to this
// machine; otherwise relays are reached over wss: only, and the core
// itself refuses relays on loopback or private addresses (wasm/agent).
func contentSecurityPolicy(loopbackWS bool) string {
	connect := "'self' wss:"
	if loopbackWS {
		connect += " ws://127.0.0.1:* ws://localhost:*"
	}
	return strings.Join([]string{
		"default-src 'none'",
		"script-src 'self' 'wasm-unsafe-eval'",
		"worker-src 'self'",
		"connect-src " + connect,
		"img-src 'self' blob: data:",
		"style-src 'self'",
		"manifest-src 'self'",
		"base-uri 'none'",
		"form-action 'none'",
		"frame-ancestors 'none'",
		"require-trusted-types-for 'script'",
		"trusted-types " + TrustedTypesPolicy,
	}, "; ")
}

// servable reports whether a bundle file may be requested by name: not a
// dotfile, not a precompressed sibling (those are chosen by negotiation).
func servable(name string) bool {
	for _, part := range strings.Split(name, "/") {
		if strings.HasPrefix(part, ".") {
			return false
		}
	}
	return !strings.HasSuffix(name, ".br") && !strings.HasSuffix(name, ".gz")
}

func loadAsset(fsys fs.FS, name string) (*asset, error) {
	data, err := fs.ReadFile(fsys, name)
	if err != nil {
		return nil, err
	}
	br, err := fs.ReadFile(fsys, name+".br")
	if err != nil && !errors.Is(err, fs.ErrNotExist) {
		return nil, err
	}
	gz, err := fs.ReadFile(fsys, name+".gz")
	if err != nil && !errors.Is(err, fs.ErrNotExist) {
		return nil, err
	}
	return newAsset(name, data, br, gz), nil
}

func newAsset(name string, data, br, gz []byte) *asset {
	sum := sha256.Sum256(data)
	ctype, ok := contentTypes[path.Ext(name)]
	if !ok {
		ctype = "application/octet-stream"
	}
	return &asset{
		name:      name,
		data:      data,
		br:        br,
		gz:        gz,
		etag:      `"` + hex.EncodeToString(sum[:12]) + `"`,
		ctype:     ctype,
		immutable: hashedName.MatchString(name),
	}
}

// statusWriter records the status code for the request log.
type statusWriter struct {
	http.ResponseWriter
	status int
}

func (w *statusWriter) WriteHeader(code int) {
	if w.status == 0 {
		w.status = code
	}
	w.ResponseWriter.WriteHeader(code)
}

func (w *statusWriter) Write(b []byte) (int, error) {
	if w.status == 0 {
		w.status = http.StatusOK
	}
	return w.ResponseWriter.Write(b)
}

// ServeHTTP implements http.Handler.
func (h *Handler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	start := time.Now()
	sw := &statusWriter{ResponseWriter: w}
	logPath := h.serve(sw, r)
	if h.cfg.Logger != nil {
		// Only the path of a bundle file: never the query (which the app
		// never uses), never a path that is not in the bundle (it may hold
		// an invitation), nothing that could identify the client.
		h.cfg.Logger.Info("request",
			"method", r.Method,
			"path", logPath,
			"status", sw.status,
			"duration", time.Since(start).Round(time.Microsecond))
	}
}

// unloggedPath stands in the request log for every path that is not a file
// of the bundle.
const unloggedPath = "-"

// serve answers r and returns the path to log: the request's path if it
// names a file of the bundle, else unloggedPath.
func (h *Handler) serve(w http.ResponseWriter, r *http.Request) string {
	hdr := w.Header()
	hdr.Set("Content-Security-Policy", h.csp)
	hdr.Set("Referrer-Policy", "no-referrer")
	hdr.Set("X-Content-Type-Options", "nosniff")
	hdr.Set("Cross-Origin-Opener-Policy", "same-origin")
	hdr.Set("Cross-Origin-Resource-Policy", "same-origin")
	hdr.Set("Permissions-Policy", permissionsPolicy)
	hdr.Set("X-Frame-Options", "DENY")

	name, ok := assetName(r.URL.Path)
	if r.Method != http.MethodGet && r.Method != http.MethodHead {
		hdr.Set("Allow", "GET, HEAD")
		http.Error(w, "method not allowed", http.StatusMethodNotAllowed)
		if ok && h.exists(name) {
			return r.URL.Path
		}
		return unloggedPath
	}
	if !ok {
		http.NotFound(w, r)
		return unloggedPath
	}
	a, err := h.lookup(name)
	if err != nil {
		if errors.Is(err, fs.ErrNotExist) {
			http.NotFound(w, r)
			return unloggedPath
		}
		http.Error(w, "internal error", http.StatusInternalServerError)
		return unloggedPath
	}

	body := a.data
	hdr.Add("Vary", "Accept-Encoding")
	switch enc := negotiate(r.Header.Get("Accept-Encoding"), a.br != nil, a.gz != nil); enc {
	case "br":
		body = a.br
		hdr.Set("Content-Encoding", "br")
	case "gzip":
		body = a.gz
		hdr.Set("Content-Encoding", "gzip")
	}
	hdr.Set("Content-Type", a.ctype)
	if a.immutable && !h.cfg.Dev {
		hdr.Set("Cache-Control", "public, max-age=31536000, immutable")
	} else {
		hdr.Set("Cache-Control", "no-cache")
	}
	etag := a.etag
	if enc := hdr.Get("Content-Encoding"); enc != "" {
		// A distinct representation needs a distinct strong validator.
		etag = strings.TrimSuffix(etag, `"`) + "-" + enc + `"`
	}
	hdr.Set("ETag", etag)
	http.ServeContent(w, r, "", h.modTime, bytes.NewReader(body))
	// assetName accepts only clean paths, so the path is exactly "/" or
	// "/" + the file's name.
	return r.URL.Path
}

// assetName maps a URL path to a bundle file name, refusing anything that is
// not a clean path to a servable file.
func assetName(urlPath string) (string, bool) {
	if urlPath == "/" {
		return "index.html", true
	}
	if !strings.HasPrefix(urlPath, "/") || strings.HasSuffix(urlPath, "/") {
		return "", false
	}
	name := urlPath[1:]
	if !fs.ValidPath(name) || !servable(name) {
		return "", false
	}
	return name, true
}

// exists reports whether name is a file of the bundle, without reading it.
func (h *Handler) exists(name string) bool {
	if name == "config.json" {
		return true
	}
	if h.assets != nil {
		return h.assets[name] != nil
	}
	info, err := fs.Stat(h.cfg.Files, name)
	return err == nil && !info.IsDir()
}

func (h *Handler) lookup(name string) (*asset, error) {
	if name == "config.json" {
		return h.config, nil
	}
	if h.assets != nil {
		a, ok := h.assets[name]
		if !ok {
			return nil, fs.ErrNotExist
		}
		return a, nil
	}
	info, err := fs.Stat(h.cfg.Files, name)
	if err != nil {
		return nil, err
	}
	if info.IsDir() {
		return nil, fs.ErrNotExist
	}
	return loadAsset(h.cfg.Files, name)
}

// negotiate picks "br", "gzip" or "" (identity) from an Accept-Encoding
// header, honouring q=0 exclusions and preferring brotli on ties.
func negotiate(accept string, haveBR, haveGZ bool) string {
	best, bestQ := "", 0.0
	for _, part := range strings.Split(accept, ",") {
		coding, params, _ := strings.Cut(strings.TrimSpace(part), ";")
		coding = strings.ToLower(strings.TrimSpace(coding))
		q := 1.0
		if k, v, ok := strings.Cut(strings.TrimSpace(params), "="); ok && strings.TrimSpace(k) == "q" {
			f, err := strconv.ParseFloat(strings.TrimSpace(v), 64)
			if err != nil {
				continue
			}
			q = f
		}
		if q <= 0 {
			continue
		}
		switch {
		case coding == "br" && haveBR && (q > bestQ || (q == bestQ && best != "br")):
			best, bestQ = "br", q
		case (coding == "gzip" || coding == "x-gzip") && haveGZ && q > bestQ:
			best, bestQ = "gzip", q
		}
	}
	return best
}
