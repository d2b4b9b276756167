package bundle

import (
	"bytes"
	"compress/gzip"
	"encoding/json"
	"errors"
	"fmt"
	"image"
	"image/png"
	"io"
	"math"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/andybalholm/brotli"
)

func writeTree(t *testing.T, files map[string]string) string {
	t.Helper()
	dir := t.TempDir()
	for name, data := range files {
		p := filepath.Join(dir, filepath.FromSlash(name))
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(data), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return dir
}

// gunzip returns the decompressed content of the gzip file p.
func gunzip(t *testing.T, p string) string {
	t.Helper()
	gzb, err := os.ReadFile(p)
	if err != nil {
		t.Fatal(err)
	}
	zr, err := gzip.NewReader(bytes.NewReader(gzb))
	if err != nil {
		t.Fatal(err)
	}
	plain, err := io.ReadAll(zr)
	if err != nil {
		t.Fatalf("%s: %v", p, err)
	}
	return string(plain)
}

var hashed = regexp.MustCompile(`^[a-z0-9_/-]+\.[0-9a-f]{16}\.[a-z]+$`)

func TestBuild(t *testing.T) {
	src := writeTree(t, map[string]string{
		"index.html":          `<link href="./style.css"><script type="module" src="./app.js"></script>`,
		"app.js":              strings.Repeat("// padding so compression pays\n", 20) + `import "./lib/util.js"; new Worker("./worker.js"); fetch("./config.json");`,
		"lib/util.js":         `export const icon = "./icon.svg"; import "./deep.js";`,
		"lib/deep.js":         `export {};`,
		"worker.js":           `importScripts('./wasm_exec.js'); fetch("./core.wasm"); fetch("./core.wasm');`,
		"style.css":           `body{background:url("./icon.svg")}`,
		"icon.svg":            `<svg/>`,
		"sw.js":               "const SHELL = [/*BUNDLE_SHELL*/];\nconst VERSION = \"/*BUNDLE_VERSION*/\";\nconst also = [\"./app.js\"];",
		"e2e/shell_test.go":   `package e2e`,
		"e2e/artifacts/x.png": "png",
		".hidden":             "x",
		"core.wasm":           "stale dev copy",
	})
	extra := writeTree(t, map[string]string{"core.wasm": strings.Repeat("\x00asm", 1000), "wasm_exec.js": "// go"})
	out := filepath.Join(t.TempDir(), "dist")
	if err := os.MkdirAll(out, 0o755); err != nil {
		t.Fatal(err)
	}
	for _, keep := range []string{".gitkeep", "old.js"} {
		if err := os.WriteFile(filepath.Join(out, keep), nil, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	names, err := Build(Options{Src: src, Out: out, Extra: map[string]string{
		"core.wasm":    filepath.Join(extra, "core.wasm"),
		"wasm_exec.js": filepath.Join(extra, "wasm_exec.js"),
	}})
	if err != nil {
		t.Fatal(err)
	}
	for _, entry := range []string{"index.html", "sw.js"} {
		if names[entry] != entry {
			t.Errorf("entry point %s renamed to %s", entry, names[entry])
		}
	}
	for _, n := range []string{"app.js", "lib/util.js", "lib/deep.js", "worker.js", "style.css", "icon.svg", "core.wasm", "wasm_exec.js"} {
		if !hashed.MatchString(names[n]) {
			t.Errorf("%s bundled as %q, want a hashed name", n, names[n])
		}
	}
	for _, n := range []string{"e2e/shell_test.go", ".hidden", "e2e/artifacts/x.png"} {
		if _, ok := names[n]; ok {
			t.Errorf("%s was bundled", n)
		}
	}
	read := func(name string) string {
		b, err := os.ReadFile(filepath.Join(out, filepath.FromSlash(name)))
		if err != nil {
			t.Fatal(err)
		}
		return string(b)
	}
	if got := read(names["core.wasm"]); got != strings.Repeat("\x00asm", 1000) {
		t.Error("the extra core.wasm did not replace the stale source copy")
	}
	index := read("index.html")
	for _, n := range []string{"style.css", "app.js"} {
		if !strings.Contains(index, `"./`+names[n]+`"`) {
			t.Errorf("index.html does not reference %s: %s", names[n], index)
		}
	}
	app := read(names["app.js"])
	if !strings.Contains(app, `"./`+names["lib/util.js"]+`"`) || !strings.Contains(app, `"./`+names["worker.js"]+`"`) {
		t.Errorf("app.js references not rewritten: %s", app)
	}
	if !strings.Contains(app, `"./config.json"`) {
		t.Errorf("a reference to a file outside the bundle was changed: %s", app)
	}
	util := read(names["lib/util.js"])
	if !strings.Contains(util, `"./`+strings.TrimPrefix(names["lib/deep.js"], "lib/")+`"`) {
		t.Errorf("relative reference in a subdirectory not rewritten: %s", util)
	}
	if !strings.Contains(util, `"./icon.svg"`) {
		t.Errorf("lib/util.js: ./icon.svg resolves to lib/icon.svg, which does not exist, and must stay: %s", util)
	}
	worker := read(names["worker.js"])
	if !strings.Contains(worker, `'./`+names["wasm_exec.js"]+`'`) || !strings.Contains(worker, `"./`+names["core.wasm"]+`"`) {
		t.Errorf("worker.js references not rewritten: %s", worker)
	}
	if !strings.Contains(worker, `"./core.wasm'`) {
		t.Errorf("mismatched quotes must not be rewritten: %s", worker)
	}
	if sw := read("sw.js"); !strings.Contains(sw, `const also = ["./`+names["app.js"]+`"];`) {
		t.Errorf("sw.js not rewritten: %s", sw)
	}
	// Old outputs are removed, dotfiles kept.
	if _, err := os.Stat(filepath.Join(out, "old.js")); !errors.Is(err, os.ErrNotExist) {
		t.Error("old output not removed")
	}
	if _, err := os.Stat(filepath.Join(out, ".gitkeep")); err != nil {
		t.Error(".gitkeep removed")
	}
	// Compressed siblings decode to the file; incompressible tiny files get none.
	p := filepath.Join(out, names["app.js"])
	if gunzip(t, p+".gz") != app {
		t.Error("app.js.gz does not decode to app.js")
	}
	brb, err := os.ReadFile(p + ".br")
	if err != nil {
		t.Fatal(err)
	}
	if plain, _ := io.ReadAll(brotli.NewReader(bytes.NewReader(brb))); string(plain) != app {
		t.Error("app.js.br does not decode to app.js")
	}
	if _, err := os.Stat(filepath.Join(out, names["icon.svg"]) + ".gz"); !errors.Is(err, os.ErrNotExist) {
		t.Error("a gzip sibling larger than the file was written")
	}
}

func TestHashFollowsDependencies(t *testing.T) {
	build := func(deep string) map[string]string {
		src := writeTree(t, map[string]string{
			"index.html": `<script src="./a.js"></script>`,
			"a.js":       `import "./b.js";`,
			"b.js":       deep,
			"c.js":       `export {};`,
		})
		names, err := Build(Options{Src: src, Out: t.TempDir()})
		if err != nil {
			t.Fatal(err)
		}
		return names
	}
	one, two := build("export const v = 1;"), build("export const v = 2;")
	if one["a.js"] == two["a.js"] || one["b.js"] == two["b.js"] {
		t.Errorf("a change in b.js did not change the names above it: %v vs %v", one, two)
	}
	if one["c.js"] != two["c.js"] {
		t.Errorf("an unrelated file changed name: %s vs %s", one["c.js"], two["c.js"])
	}
}

func TestBuildErrors(t *testing.T) {
	cyc := writeTree(t, map[string]string{"index.html": `<script src="./a.js"></script>`, "a.js": `import "./b.js";`, "b.js": `import "./a.js";`})
	if _, err := Build(Options{Src: cyc, Out: t.TempDir()}); !errors.Is(err, ErrCycle) {
		t.Errorf("cycle: err = %v, want ErrCycle", err)
	}
	noIndex := writeTree(t, map[string]string{"a.js": ``})
	if _, err := Build(Options{Src: noIndex, Out: t.TempDir()}); err == nil || !strings.Contains(err.Error(), "no index.html") {
		t.Errorf("no index: err = %v", err)
	}
	ok := writeTree(t, map[string]string{"index.html": ``})
	if _, err := Build(Options{Src: ok, Out: t.TempDir(), Extra: map[string]string{"core.wasm": "/does/not/exist"}}); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("missing extra: err = %v", err)
	}
	if _, err := Build(Options{Src: ok, Out: t.TempDir(), Extra: map[string]string{"../x": "/etc/hostname"}}); err == nil {
		t.Error("an extra name outside the bundle was accepted")
	}
}

// swTree is a small web tree with a service worker whose registration module
// refers back to sw.js, and sw.js to index.html: a cycle through entry points
// that hashing must not trip over.
func swTree() map[string]string {
	return map[string]string{
		"index.html": `<link rel="manifest" href="./manifest.webmanifest"><link rel="stylesheet" href="./style.css">` +
			`<script type="module" src="./app.js"></script>`,
		"manifest.webmanifest": `{"start_url": "./", "icons": [{"src": "./icons/icon-192.png"}]}`,
		"icons/icon-192.png":   "\x89PNG not really",
		"style.css":            `body{color:red}`,
		"app.js":               `import { registerServiceWorker } from "./sw-register.js"; new Worker("./worker.js"); fetch("./config.json");`,
		"sw-register.js":       `export function registerServiceWorker() { return navigator.serviceWorker.register("./sw.js"); }`,
		"worker.js":            `importScripts("./wasm_exec.js"); fetch("./core.wasm");`,
		"wasm_exec.js":         `// go`,
		"core.wasm":            "\x00asm",
		"unused.js":            `export {};`,
		"only-sw.js":           `export {};`,
		"robots.txt":           "User-agent: *\n",
		"sw.js": "// the shell\nconst SHELL = [/*BUNDLE_SHELL*/];\nconst VERSION = \"/*BUNDLE_VERSION*/\";\n" +
			"const INDEX = \"./index.html\";\nconst OTHER = \"./only-sw.js\";\nconst RELEASE = /^[0-9a-f]{16}$/.test(VERSION);\n",
	}
}

var (
	shellLine   = regexp.MustCompile(`(?s)\nconst SHELL = (\[.*?\]);\n`)
	versionLine = regexp.MustCompile(`\nconst VERSION = "([0-9a-f]{16})";\n`)
)

// injected returns the shell list and version written into sw.js.
func injected(t *testing.T, sw string) ([]string, string) {
	t.Helper()
	m := shellLine.FindStringSubmatch(sw)
	v := versionLine.FindStringSubmatch(sw)
	if m == nil || v == nil {
		t.Fatalf("sw.js has no injected SHELL or VERSION line:\n%s", sw)
	}
	var shell []string
	if err := json.Unmarshal([]byte(strings.Replace(m[1], ",\n]", "\n]", 1)), &shell); err != nil {
		t.Fatalf("the injected SHELL is not a list of strings: %v\n%s", err, m[1])
	}
	return shell, v[1]
}

func TestServiceWorkerShell(t *testing.T) {
	out := t.TempDir()
	names, err := Build(Options{Src: writeTree(t, swTree()), Out: out})
	if err != nil {
		t.Fatalf("Build: %v", err)
	}
	raw, err := os.ReadFile(filepath.Join(out, "sw.js"))
	if err != nil {
		t.Fatal(err)
	}
	sw := string(raw)
	if strings.Contains(sw, "/*BUNDLE_") {
		t.Errorf("a placeholder is left in sw.js:\n%s", sw)
	}
	shell, _ := injected(t, sw)
	var want []string
	for _, n := range []string{"app.js", "core.wasm", "icons/icon-192.png", "style.css", "sw-register.js", "wasm_exec.js", "worker.js"} {
		want = append(want, "./"+names[n])
	}
	slices.Sort(want)
	if !slices.Equal(shell, want) {
		t.Errorf("SHELL = %q\nwant    %q", shell, want)
	}
	for _, u := range shell {
		if !hashed.MatchString(strings.TrimPrefix(u, "./")) {
			t.Errorf("SHELL entry %s is not a hashed name", u)
		}
		if _, err := os.Stat(filepath.Join(out, filepath.FromSlash(u))); err != nil {
			t.Errorf("SHELL entry %s is not in the bundle: %v", u, err)
		}
	}
	// The rest of sw.js is kept, its references rewritten as in any script.
	for _, keep := range []string{"// the shell\n", `const INDEX = "./index.html";`, `const RELEASE = /^[0-9a-f]{16}$/.test(VERSION);`,
		`const OTHER = "./` + names["only-sw.js"] + `";`} {
		if !strings.Contains(sw, keep) {
			t.Errorf("sw.js lost %q:\n%s", keep, sw)
		}
	}
	if reg, err := os.ReadFile(filepath.Join(out, names["sw-register.js"])); err != nil || !strings.Contains(string(reg), `"./sw.js"`) {
		t.Errorf("sw-register.js must keep the fixed ./sw.js (err %v): %s", err, reg)
	}
	// The precompressed siblings are of the injected file.
	if gunzip(t, filepath.Join(out, "sw.js.gz")) != sw {
		t.Error("sw.js.gz does not decode to the injected sw.js")
	}
}

func TestServiceWorkerVersion(t *testing.T) {
	build := func(tree map[string]string) (string, []byte) {
		t.Helper()
		out := t.TempDir()
		if _, err := Build(Options{Src: writeTree(t, tree), Out: out}); err != nil {
			t.Fatalf("Build: %v", err)
		}
		sw, err := os.ReadFile(filepath.Join(out, "sw.js"))
		if err != nil {
			t.Fatal(err)
		}
		_, v := injected(t, string(sw))
		return v, sw
	}
	base, baseSW := build(swTree())
	if again, sw := build(swTree()); again != base || !bytes.Equal(sw, baseSW) {
		t.Errorf("the same tree built twice gave versions %s and %s", base, again)
	}
	for _, tc := range []struct {
		what   string
		change func(map[string]string)
	}{
		{"a byte of an icon", func(m map[string]string) { m["icons/icon-192.png"] += "!" }},
		{"the core", func(m map[string]string) { m["core.wasm"] = "\x00asn" }},
		{"index.html", func(m map[string]string) { m["index.html"] += " " }},
		{"the manifest", func(m map[string]string) { m["manifest.webmanifest"] += " " }},
		{"a file outside the shell", func(m map[string]string) { m["unused.js"] = `export const x = 1;` }},
		{"robots.txt", func(m map[string]string) { m["robots.txt"] = "" }},
		{"sw.js itself", func(m map[string]string) { m["sw.js"] += "// v2\n" }},
		{"a rename", func(m map[string]string) { m["renamed.js"] = m["unused.js"]; delete(m, "unused.js") }},
		{"a new file", func(m map[string]string) { m["new.txt"] = "" }},
	} {
		tree := swTree()
		tc.change(tree)
		if v, _ := build(tree); v == base {
			t.Errorf("changing %s left the version at %s", tc.what, v)
		}
	}
}

func TestServiceWorkerPlaceholders(t *testing.T) {
	const (
		shellP   = "const SHELL = [/*BUNDLE_SHELL*/];\n"
		versionP = "const VERSION = \"/*BUNDLE_VERSION*/\";\n"
	)
	for _, tc := range []struct{ name, sw string }{
		{"empty", ""},
		{"no SHELL", versionP},
		{"no VERSION", shellP},
		{"SHELL twice", shellP + versionP + shellP},
		{"VERSION twice", versionP + shellP + versionP},
		{"reformatted SHELL", "const SHELL=[/*BUNDLE_SHELL*/];\n" + versionP},
		{"truncated VERSION", shellP + "const VERSION = \"/*BUNDLE_VERSION*/\n"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			tree := swTree()
			tree["sw.js"] = tc.sw
			out := t.TempDir()
			previous := filepath.Join(out, "index.html")
			if err := os.WriteFile(previous, []byte("the previous bundle"), 0o644); err != nil {
				t.Fatal(err)
			}
			if _, err := Build(Options{Src: writeTree(t, tree), Out: out}); !errors.Is(err, ErrServiceWorker) {
				t.Fatalf("err = %v, want ErrServiceWorker", err)
			}
			if b, err := os.ReadFile(previous); err != nil || string(b) != "the previous bundle" {
				t.Errorf("a failed build touched the output directory: %q, %v", b, err)
			}
		})
	}
}

// TestWebTree builds the real web/ (with stand-ins for the built core) and
// checks the installable-app assets: the manifest, its icons and sw.js.
func TestWebTree(t *testing.T) {
	web := filepath.Join("..", "..", "web")
	// The extras stand in for the build outputs (and for any stale dev
	// copies in web/, which would otherwise be compressed here).
	extra := writeTree(t, map[string]string{"core.wasm": "\x00asm", "qr.wasm": "\x00asm", "wasm_exec.js": "// go"})
	out := t.TempDir()
	names, err := Build(Options{Src: web, Out: out, Extra: map[string]string{
		"core.wasm":    filepath.Join(extra, "core.wasm"),
		"qr.wasm":      filepath.Join(extra, "qr.wasm"),
		"wasm_exec.js": filepath.Join(extra, "wasm_exec.js"),
	}})
	if err != nil {
		t.Fatalf("building web/: %v", err)
	}
	read := func(dir, name string) []byte {
		t.Helper()
		b, err := os.ReadFile(filepath.Join(dir, filepath.FromSlash(name)))
		if err != nil {
			t.Fatal(err)
		}
		return b
	}

	shell, _ := injected(t, string(read(out, "sw.js")))
	for _, n := range []string{"app.js", "worker.js", "core.wasm", "qrworker.js", "qr.wasm", "wasm_exec.js"} {
		if !slices.Contains(shell, "./"+names[n]) {
			t.Errorf("the shell lacks %s (%s): %q", n, names[n], shell)
		}
	}

	var m struct {
		Name            string `json:"name"`
		ShortName       string `json:"short_name"`
		Description     string `json:"description"`
		StartURL        string `json:"start_url"`
		Scope           string `json:"scope"`
		Display         string `json:"display"`
		BackgroundColor string `json:"background_color"`
		ThemeColor      string `json:"theme_color"`
		Icons           []struct {
			Src     string `json:"src"`
			Sizes   string `json:"sizes"`
			Type    string `json:"type"`
			Purpose string `json:"purpose"`
		} `json:"icons"`
	}
	if err := json.Unmarshal(read(out, "manifest.webmanifest"), &m); err != nil {
		t.Fatalf("manifest.webmanifest: %v", err)
	}
	if m.Name != "Wisp" || m.ShortName == "" || m.Description == "" || m.StartURL != "./" || m.Scope != "./" || m.Display != "standalone" {
		t.Errorf("manifest fields: %+v", m)
	}
	// The colours are the page's: --bg and --accent of the light theme.
	css := string(read(web, "style.css"))
	for _, c := range []struct{ field, value, variable string }{
		{"background_color", m.BackgroundColor, "--bg"},
		{"theme_color", m.ThemeColor, "--accent"},
	} {
		v := regexp.MustCompile(regexp.QuoteMeta(c.variable) + `:\s*(#[0-9a-fA-F]{6});`).FindStringSubmatch(css)
		if v == nil || !strings.EqualFold(v[1], c.value) {
			t.Errorf("manifest %s is %q, but style.css sets %s to %q", c.field, c.value, c.variable, v)
		}
	}

	purposes := map[string]bool{}
	for _, icon := range m.Icons {
		name := strings.TrimPrefix(icon.Src, "./")
		if !hashed.MatchString(name) {
			t.Errorf("icon %s was not rewritten to a hashed name", icon.Src)
			continue
		}
		data := read(out, name)
		if icon.Type == "image/svg+xml" {
			if icon.Sizes != "any" || !bytes.HasPrefix(data, []byte("<svg")) {
				t.Errorf("SVG icon %s: sizes %q, starts %q", icon.Src, icon.Sizes, data[:min(len(data), 8)])
			}
			continue
		}
		if icon.Type != "image/png" {
			t.Errorf("icon %s has type %q", icon.Src, icon.Type)
			continue
		}
		purposes[icon.Purpose+" "+icon.Sizes] = true
		img, err := png.Decode(bytes.NewReader(data))
		if err != nil {
			t.Errorf("icon %s: %v", icon.Src, err)
			continue
		}
		if got := fmt.Sprintf("%dx%d", img.Bounds().Dx(), img.Bounds().Dy()); got != icon.Sizes {
			t.Errorf("icon %s is %s, the manifest says %s", icon.Src, got, icon.Sizes)
		}
		if icon.Purpose == "maskable" {
			checkMaskable(t, icon.Src, img, m.ThemeColor)
		} else if _, _, _, a := img.At(0, 0).RGBA(); a != 0 {
			t.Errorf("icon %s: the corner is not transparent: the rounded square is lost", icon.Src)
		}
	}
	for _, want := range []string{"any 192x192", "any 512x512", "maskable 512x512"} {
		if !purposes[want] {
			t.Errorf("the manifest has no PNG icon for %q: %v", want, purposes)
		}
	}

	// apple-touch-icon: iOS rounds the corners itself and shows transparency as black.
	apple, err := png.Decode(bytes.NewReader(read(web, "icons/apple-touch-icon.png")))
	if err != nil {
		t.Fatalf("apple-touch-icon.png: %v", err)
	}
	if b := apple.Bounds(); b.Dx() != 180 || b.Dy() != 180 {
		t.Errorf("apple-touch-icon.png is %v, want 180x180", b)
	}
	checkOpaque(t, "apple-touch-icon.png", apple)
}

// checkOpaque fails unless every pixel of img is opaque.
func checkOpaque(t *testing.T, name string, img image.Image) {
	t.Helper()
	b := img.Bounds()
	for y := b.Min.Y; y < b.Max.Y; y++ {
		for x := b.Min.X; x < b.Max.X; x++ {
			if _, _, _, a := img.At(x, y).RGBA(); a != 0xffff {
				t.Errorf("%s: pixel (%d,%d) is not opaque", name, x, y)
				return
			}
		}
	}
}

// checkMaskable fails unless img is opaque and everything outside the
// maskable safe zone (a centred circle of radius 40% of the width) is the
// background colour bg ("#rrggbb", give or take anti-aliasing rounding), so
// no launcher mask can cut the glyph.
func checkMaskable(t *testing.T, name string, img image.Image, bg string) {
	t.Helper()
	checkOpaque(t, name, img)
	var want [3]uint8
	if _, err := fmt.Sscanf(bg, "#%02x%02x%02x", &want[0], &want[1], &want[2]); err != nil {
		t.Fatalf("theme colour %q: %v", bg, err)
	}
	b := img.Bounds()
	c := float64(b.Dx()) / 2
	for y := b.Min.Y; y < b.Max.Y; y++ {
		for x := b.Min.X; x < b.Max.X; x++ {
			if math.Hypot(float64(x)+0.5-c, float64(y)+0.5-c) <= 0.4*float64(b.Dx()) {
				continue
			}
			r, g, bl, _ := img.At(x, y).RGBA()
			got := [3]uint8{uint8(r >> 8), uint8(g >> 8), uint8(bl >> 8)}
			if far(got[0], want[0]) || far(got[1], want[1]) || far(got[2], want[2]) {
				t.Errorf("%s: pixel (%d,%d) outside the safe zone is #%02x%02x%02x, want %s", name, x, y, got[0], got[1], got[2], bg)
				return
			}
		}
	}
}

// far reports whether two colour channels differ by more than rounding.
func far(a, b uint8) bool { return max(a, b)-min(a, b) > 4 }
