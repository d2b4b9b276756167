package bundle

import (
	"bytes"
	"compress/gzip"
	"errors"
	"io"
	"os"
	"path/filepath"
	"regexp"
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

var hashed = regexp.MustCompile(`^[a-z_/]+\.[0-9a-f]{16}\.[a-z]+$`)

func TestBuild(t *testing.T) {
	src := writeTree(t, map[string]string{
		"index.html":          `<link href="./style.css"><script type="module" src="./app.js"></script>`,
		"app.js":              strings.Repeat("// padding so compression pays\n", 20) + `import "./lib/util.js"; new Worker("./worker.js"); fetch("./config.json");`,
		"lib/util.js":         `export const icon = "./icon.svg"; import "./deep.js";`,
		"lib/deep.js":         `export {};`,
		"worker.js":           `importScripts('./wasm_exec.js'); fetch("./core.wasm"); fetch("./core.wasm');`,
		"style.css":           `body{background:url("./icon.svg")}`,
		"icon.svg":            `<svg/>`,
		"sw.js":               `const shell = ["./app.js"];`,
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
	if sw := read("sw.js"); !strings.Contains(sw, names["app.js"]) {
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
	gzb, err := os.ReadFile(p + ".gz")
	if err != nil {
		t.Fatal(err)
	}
	zr, err := gzip.NewReader(bytes.NewReader(gzb))
	if err != nil {
		t.Fatal(err)
	}
	if plain, _ := io.ReadAll(zr); string(plain) != app {
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
