//go:build js && wasm

// Command wasm is the Wisp core compiled to WebAssembly. It runs inside the
// dedicated Web Worker started by web/worker.js and serves the page's RPC
// calls (package api) through package bridge; see web/rpc.js for the other
// end. State lives in the IndexedDB database "wisp".
package main

import (
	"context"
	"syscall/js"

	"github.com/hack-pad/hackpadfs"
	"github.com/wisp-chat/wisp/server/wire/client"
	"github.com/wisp-chat/wisp/wasm/api"
	"github.com/wisp-chat/wisp/wasm/bridge"
	"github.com/wisp-chat/wisp/wasm/internal/webcrypto"
	"github.com/wisp-chat/wisp/wasm/rpc"
	"github.com/wisp-chat/wisp/wasm/store"
)

func main() {
	ctx := context.Background()
	router := rpc.NewRouter()
	var b *bridge.Bridge
	svc := api.New(
		func(ctx context.Context) (hackpadfs.FS, error) {
			fsys, err := store.OpenIndexedDB(ctx, "wisp")
			if err != nil {
				return nil, err // not a nil *IndexedDB in a non-nil interface
			}
			return fsys, nil
		},
		func(name string, data any) { _ = b.Emit(name, data) },
		client.Options{SHA256: webcrypto.SHA256}, // file uploads sign a digest of 4 MiB

	)
	// The worker's own origin, not the page's word, decides whether relays
	// on this machine and private networks may be used.
	if loc := js.Global().Get("location"); loc.Truthy() {
		svc.PinOrigin(loc.Get("origin").String())
	}
	svc.Register(router)
	b = bridge.New(ctx, router)
	b.Install("wispCore")
	select {} // serve until the worker is terminated
}
