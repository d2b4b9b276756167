//go:build js && wasm

// Command wasm is the Wisp core compiled to WebAssembly. It runs inside the
// dedicated Web Worker started by web/worker.js and serves the page's RPC
// calls through package bridge (see web/rpc.js for the other end).
package main

import (
	"context"

	"github.com/wisp-chat/wisp/wasm/bridge"
	"github.com/wisp-chat/wisp/wasm/buildinfo"
	"github.com/wisp-chat/wisp/wasm/rpc"
)

func main() {
	ctx := context.Background()
	router := rpc.NewRouter()
	rpc.Handle(router, "version", func(context.Context, rpc.None) (buildinfo.Info, error) {
		return buildinfo.Read(), nil
	})
	b := bridge.New(ctx, router)
	b.Install("wispCore")
	select {} // serve until the worker is terminated
}
