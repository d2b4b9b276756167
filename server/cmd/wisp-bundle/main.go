// Command wisp-bundle builds the release web bundle (see package bundle).
//
//	wisp-bundle -src web -out server/cmd/wisp-host/dist -extra core.wasm=bin/core.wasm -extra wasm_exec.js=PATH
package main

import (
	"flag"
	"fmt"
	"os"
	"sort"
	"strings"

	"github.com/wisp-chat/wisp/server/bundle"
)

type extraFlags map[string]string

func (e extraFlags) String() string { return fmt.Sprint(map[string]string(e)) }
func (e extraFlags) Set(v string) error {
	name, p, ok := strings.Cut(v, "=")
	if !ok || name == "" || p == "" {
		return fmt.Errorf("want NAME=PATH, got %q", v)
	}
	e[name] = p
	return nil
}

func main() {
	src := flag.String("src", "web", "web source directory")
	out := flag.String("out", "", "output directory (emptied first)")
	extra := extraFlags{}
	flag.Var(extra, "extra", "NAME=PATH: add a file from outside -src (repeatable)")
	flag.Parse()
	if *out == "" {
		fmt.Fprintln(os.Stderr, "wisp-bundle: -out is required")
		os.Exit(2)
	}
	names, err := bundle.Build(bundle.Options{Src: *src, Extra: extra, Out: *out})
	if err != nil {
		fmt.Fprintln(os.Stderr, "wisp-bundle:", err)
		os.Exit(1)
	}
	keys := make([]string, 0, len(names))
	for k := range names {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		fmt.Printf("%-24s %s\n", k, names[k])
	}
}
