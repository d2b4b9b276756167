// Package bundle turns the web/ source tree into the release bundle that
// wisp-host embeds: content-hashed file names, rewritten references and
// precompressed siblings.
//
// Usage:
//
//	err := bundle.Build(bundle.Options{
//		Src:   "web",
//		Extra: map[string]string{"core.wasm": "bin/core.wasm", "wasm_exec.js": goroot + "/lib/wasm/wasm_exec.js"},
//		Out:   "server/cmd/wisp-host/dist",
//	})
//
// Every file except the entry points (index.html, sw.js, the web app
// manifest, robots.txt, favicon.ico) is renamed to name.<16 hex>.ext, where
// the hash covers the file's content after its own references were
// rewritten, so a change anywhere in the import graph changes every name
// above it. References are found as quoted relative paths "./name.ext" in
// JavaScript, CSS, HTML and the manifest; a reference to a file the bundle
// does not have is left alone (config.json is served by the host). A
// reference to an entry point is not a hashing dependency, since its name
// never changes, so modules may refer to "./sw.js" without a cycle. Each
// compressible file also gets name.br and name.gz when they are smaller.
//
// The service worker, sw.js, is filled in last. It must contain each of
// these two lines exactly once:
//
//	const SHELL = [/*BUNDLE_SHELL*/];
//	const VERSION = "/*BUNDLE_VERSION*/";
//
// Build replaces the first with the app shell, the bundled names ("./"
// relative) of every content-hashed file that index.html reaches through its
// references, and the second with a 16-hex version that hashes the name and
// content of every file of the bundle, so any change yields a new sw.js and a
// new cache. Served from web/ as is (wisp-host -dev), sw.js keeps the
// placeholders and must then cache nothing.
package bundle

import (
	"bytes"
	"compress/gzip"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"regexp"
	"sort"
	"strings"

	"github.com/andybalholm/brotli"
)

// Options configures Build.
type Options struct {
	// Src is the web source directory.
	Src string
	// Extra maps bundle names to files outside Src (the wasm core and Go's
	// wasm_exec.js). They replace any file of the same name in Src.
	Extra map[string]string
	// Out is the output directory. Its previous contents are removed, except
	// dotfiles (such as .gitkeep).
	Out string
}

// ErrCycle is returned when files reference each other in a cycle, which
// content hashing cannot resolve.
var ErrCycle = errors.New("bundle: reference cycle")

// ErrServiceWorker is returned when sw.js lacks one of the placeholder lines
// or has one more than once.
var ErrServiceWorker = errors.New("bundle: sw.js placeholders")

// serviceWorker is the entry point that receives the shell list and version.
const serviceWorker = "sw.js"

// The placeholder lines of sw.js, replaced whole.
const (
	shellPlaceholder   = "const SHELL = [/*BUNDLE_SHELL*/];"
	versionPlaceholder = `const VERSION = "/*BUNDLE_VERSION*/";`
)

// entryPoints keep their names: browsers reach them by fixed URLs.
var entryPoints = map[string]bool{
	"index.html":           true,
	"sw.js":                true,
	"manifest.webmanifest": true,
	"robots.txt":           true,
	"favicon.ico":          true,
}

// textual files are scanned for references.
var textual = map[string]bool{".html": true, ".js": true, ".css": true, ".webmanifest": true, ".json": true}

// compressible files get .br and .gz siblings.
var compressible = map[string]bool{".html": true, ".js": true, ".css": true, ".wasm": true,
	".json": true, ".webmanifest": true, ".svg": true, ".txt": true}

// refPattern matches a quoted relative reference such as "./name.ext",
// './dir/name.ext'; the quotes must match.
var refPattern = regexp.MustCompile(`(["'])\./((?:[A-Za-z0-9_-]+/)*[A-Za-z0-9_-]+(?:\.[A-Za-z0-9_-]+)+)(["'])`)

// Build writes the bundle. It returns the map of source names to bundled names.
func Build(opts Options) (map[string]string, error) {
	files, err := collect(opts.Src, opts.Extra)
	if err != nil {
		return nil, err
	}
	if _, ok := files["index.html"]; !ok {
		return nil, fmt.Errorf("bundle: %s has no index.html", opts.Src)
	}
	names := make(map[string]string, len(files))
	refs := make(map[string][]string, len(files)) // source name -> referenced source names
	state := make(map[string]int, len(files))     // 0 new, 1 visiting, 2 done
	var visit func(name string, stack []string) error
	visit = func(name string, stack []string) error {
		switch state[name] {
		case 1:
			return fmt.Errorf("%w: %s", ErrCycle, strings.Join(append(stack, name), " -> "))
		case 2:
			return nil
		}
		state[name] = 1
		refs[name] = references(name, files)
		for _, dep := range refs[name] {
			if entryPoints[dep] {
				continue // a fixed name: nothing to wait for
			}
			if err := visit(dep, append(stack, name)); err != nil {
				return err
			}
		}
		files[name] = rewrite(name, files, names)
		names[name] = hashedName(name, files[name])
		state[name] = 2
		return nil
	}
	sorted := make([]string, 0, len(files))
	for name := range files {
		sorted = append(sorted, name)
	}
	sort.Strings(sorted)
	for _, name := range sorted {
		if err := visit(name, nil); err != nil {
			return nil, err
		}
	}
	if _, ok := files[serviceWorker]; ok {
		sw, err := injectShell(files[serviceWorker], shell(refs, names), version(files, sorted))
		if err != nil {
			return nil, err
		}
		files[serviceWorker] = sw
	}
	if err := clean(opts.Out); err != nil {
		return nil, err
	}
	for _, name := range sorted {
		if err := write(opts.Out, names[name], files[name]); err != nil {
			return nil, err
		}
	}
	return names, nil
}

// collect reads every bundle file: the source tree minus tests, Go files and
// dotfiles, plus the extras.
func collect(src string, extra map[string]string) (map[string][]byte, error) {
	files := make(map[string][]byte)
	root := os.DirFS(src)
	err := fs.WalkDir(root, ".", func(name string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		base := path.Base(name)
		if name != "." && strings.HasPrefix(base, ".") {
			if d.IsDir() {
				return fs.SkipDir
			}
			return nil
		}
		if d.IsDir() {
			if name == "e2e" || base == "testdata" {
				return fs.SkipDir
			}
			return nil
		}
		if strings.HasSuffix(name, ".go") || strings.HasSuffix(name, ".br") || strings.HasSuffix(name, ".gz") {
			return nil
		}
		if _, ok := extra[name]; ok {
			return nil
		}
		data, err := fs.ReadFile(root, name)
		if err != nil {
			return err
		}
		files[name] = data
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("bundle: reading %s: %w", src, err)
	}
	for name, p := range extra {
		if !fs.ValidPath(name) {
			return nil, fmt.Errorf("bundle: invalid extra name %q", name)
		}
		data, err := os.ReadFile(p)
		if err != nil {
			return nil, fmt.Errorf("bundle: extra %s: %w", name, err)
		}
		files[name] = data
	}
	return files, nil
}

// references lists the bundle files that name refers to, resolved relative
// to name's directory.
func references(name string, files map[string][]byte) []string {
	if !textual[path.Ext(name)] {
		return nil
	}
	var deps []string
	for _, m := range refPattern.FindAllSubmatch(files[name], -1) {
		if string(m[1]) != string(m[3]) {
			continue
		}
		dep := path.Join(path.Dir(name), string(m[2]))
		if _, ok := files[dep]; ok && dep != name {
			deps = append(deps, dep)
		}
	}
	return deps
}

// rewrite replaces references to bundle files by their bundled names.
func rewrite(name string, files map[string][]byte, names map[string]string) []byte {
	if !textual[path.Ext(name)] {
		return files[name]
	}
	dir := path.Dir(name)
	return refPattern.ReplaceAllFunc(files[name], func(m []byte) []byte {
		sub := refPattern.FindSubmatch(m)
		if string(sub[1]) != string(sub[3]) {
			return m
		}
		bundled, ok := names[path.Join(dir, string(sub[2]))]
		if !ok {
			return m
		}
		rel := strings.TrimPrefix(bundled, strings.TrimPrefix(dir+"/", "./"))
		return []byte(string(sub[1]) + "./" + rel + string(sub[3]))
	})
}

// shell lists, as "./"-relative URLs in sorted order, the bundled names of
// the content-hashed files reachable from index.html in the reference graph
// refs. The walk passes through other entry points (the manifest and its
// icons belong to the shell) but not into the service worker.
func shell(refs map[string][]string, names map[string]string) []string {
	seen := map[string]bool{"index.html": true}
	queue := []string{"index.html"}
	var urls []string
	for len(queue) > 0 {
		name := queue[0]
		queue = queue[1:]
		if !entryPoints[name] {
			urls = append(urls, "./"+names[name])
		}
		for _, dep := range refs[name] {
			if !seen[dep] && dep != serviceWorker {
				seen[dep] = true
				queue = append(queue, dep)
			}
		}
	}
	sort.Strings(urls)
	return urls
}

// version hashes every file's name and content (sw.js before injection
// included) into 16 hex digits.
func version(files map[string][]byte, sorted []string) string {
	h := sha256.New()
	for _, name := range sorted {
		sum := sha256.Sum256(files[name])
		h.Write([]byte(name))
		h.Write([]byte{0})
		h.Write(sum[:])
	}
	return hex.EncodeToString(h.Sum(nil)[:8])
}

// injectShell replaces the placeholder lines of sw.js by the shell list and
// the version.
func injectShell(sw []byte, urls []string, ver string) ([]byte, error) {
	for _, p := range []string{shellPlaceholder, versionPlaceholder} {
		if n := bytes.Count(sw, []byte(p)); n != 1 {
			return nil, fmt.Errorf("%w: %q appears %d times, want once", ErrServiceWorker, p, n)
		}
	}
	var list bytes.Buffer
	list.WriteString("const SHELL = [\n")
	for _, u := range urls {
		q, _ := json.Marshal(u) // a string always marshals, and JSON strings are JavaScript strings
		list.WriteString("  ")
		list.Write(q)
		list.WriteString(",\n")
	}
	list.WriteString("];")
	sw = bytes.Replace(sw, []byte(shellPlaceholder), list.Bytes(), 1)
	return bytes.Replace(sw, []byte(versionPlaceholder), []byte(`const VERSION = "`+ver+`";`), 1), nil
}

// hashedName returns name.<16 hex of SHA-256>.ext, or name for entry points.
func hashedName(name string, data []byte) string {
	if entryPoints[name] {
		return name
	}
	sum := sha256.Sum256(data)
	ext := path.Ext(name)
	return strings.TrimSuffix(name, ext) + "." + hex.EncodeToString(sum[:8]) + ext
}

// clean empties dir, keeping dotfiles, creating it when missing.
func clean(dir string) error {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return fmt.Errorf("bundle: %w", err)
	}
	entries, err := os.ReadDir(dir)
	if err != nil {
		return fmt.Errorf("bundle: %w", err)
	}
	for _, e := range entries {
		if strings.HasPrefix(e.Name(), ".") {
			continue
		}
		if err := os.RemoveAll(filepath.Join(dir, e.Name())); err != nil {
			return fmt.Errorf("bundle: %w", err)
		}
	}
	return nil
}

// write stores one file and, when worthwhile, its compressed siblings.
func write(out, name string, data []byte) error {
	p := filepath.Join(out, filepath.FromSlash(name))
	if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
		return fmt.Errorf("bundle: %w", err)
	}
	if err := os.WriteFile(p, data, 0o644); err != nil {
		return fmt.Errorf("bundle: %w", err)
	}
	if !compressible[path.Ext(name)] {
		return nil
	}
	var br, gz bytes.Buffer
	bw := brotli.NewWriterLevel(&br, brotli.BestCompression)
	gw, _ := gzip.NewWriterLevel(&gz, gzip.BestCompression) // the level is valid
	for _, w := range []interface {
		Write([]byte) (int, error)
		Close() error
	}{bw, gw} {
		if _, err := w.Write(data); err != nil {
			return fmt.Errorf("bundle: compress %s: %w", name, err)
		}
		if err := w.Close(); err != nil {
			return fmt.Errorf("bundle: compress %s: %w", name, err)
		}
	}
	for ext, b := range map[string][]byte{".br": br.Bytes(), ".gz": gz.Bytes()} {
		if len(b) >= len(data) {
			continue
		}
		if err := os.WriteFile(p+ext, b, 0o644); err != nil {
			return fmt.Errorf("bundle: %w", err)
		}
	}
	return nil
}
