//go:build js && wasm

// Command qrworker is the QR code reader of the page, compiled to its own
// WebAssembly module (qr.wasm) and run in web/qrworker.js only when
// someone picks a picture of a QR code. It installs one function:
//
//	wispDecodeQR(bytes Uint8Array) → {link: string} | {code: string}
//
// where code is "too_long", "invalid" or "no_qr" (the page words them
// with web/errors.js). See package qr.
package main

import (
	"errors"
	"syscall/js"

	"github.com/wisp-chat/wisp/wasm/qr"
)

func main() {
	js.Global().Set("wispDecodeQR", js.FuncOf(func(_ js.Value, args []js.Value) any {
		if len(args) != 1 || args[0].Type() != js.TypeObject {
			return map[string]any{"code": "invalid"}
		}
		n := args[0].Get("length").Int()
		if n > qr.MaxQRImageBytes {
			return map[string]any{"code": "too_long"}
		}
		b := make([]byte, n)
		js.CopyBytesToGo(b, args[0])
		link, err := qr.DecodeQR(b)
		switch {
		case err == nil:
			return map[string]any{"link": link}
		case errors.Is(err, qr.ErrTooLong):
			return map[string]any{"code": "too_long"}
		case errors.Is(err, qr.ErrNoQR):
			return map[string]any{"code": "no_qr"}
		default:
			return map[string]any{"code": "invalid"}
		}
	}))
	if ready := js.Global().Get("wispQRReady"); ready.Type() == js.TypeFunction {
		ready.Invoke()
	}
	select {} // serve until the worker is terminated
}
