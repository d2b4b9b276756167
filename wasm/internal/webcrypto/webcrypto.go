//go:build js && wasm

// Package webcrypto hashes with the browser's WebCrypto (crypto.subtle),
// which runs natively on a browser thread: SHA-256 of 4 MiB takes a few
// milliseconds there against about 22 ms in wasm, and the core's only
// thread is free meanwhile.
//
//	wait := webcrypto.Start(piece) // piece may be reused at once
//	...                            // go on with other work
//	sum, err := wait()
//
//	sum, err := webcrypto.SHA256(prefix, body) // SHA-256 of prefix ‖ body
//
// Without WebCrypto (a page not served over https or from localhost) both
// fall back to crypto/sha256. The waits must run in a goroutine, never
// inside a js.FuncOf callback, which would deadlock the event loop.
package webcrypto

import (
	"crypto/sha256"
	"errors"
	"fmt"
	"syscall/js"
)

// Start starts hashing the concatenation of parts and returns a function
// that waits for the digest. It copies parts before it returns.
func Start(parts ...[]byte) func() ([32]byte, error) {
	subtle := js.Global().Get("crypto")
	if subtle.Truthy() {
		subtle = subtle.Get("subtle")
	}
	if !subtle.Truthy() {
		h := sha256.New()
		for _, p := range parts {
			h.Write(p)
		}
		sum := [32]byte(h.Sum(nil))
		return func() ([32]byte, error) { return sum, nil }
	}
	n := 0
	for _, p := range parts {
		n += len(p)
	}
	arr := js.Global().Get("Uint8Array").New(n)
	off := 0
	for _, p := range parts {
		js.CopyBytesToJS(arr.Call("subarray", off, off+len(p)), p)
		off += len(p)
	}
	type result struct {
		sum [32]byte
		err error
	}
	ch := make(chan result, 1)
	var then, catch js.Func
	release := func() { then.Release(); catch.Release() } // whichever settles first
	then = js.FuncOf(func(_ js.Value, args []js.Value) any {
		defer release()
		var r result
		if k := js.CopyBytesToGo(r.sum[:], js.Global().Get("Uint8Array").New(args[0])); k != len(r.sum) {
			r.err = fmt.Errorf("webcrypto: a %d-byte SHA-256", k)
		}
		ch <- r
		return nil
	})
	catch = js.FuncOf(func(_ js.Value, args []js.Value) any {
		defer release()
		ch <- result{err: fmt.Errorf("webcrypto: digest: %w", errors.New(args[0].Call("toString").String()))}
		return nil
	})
	subtle.Call("digest", "SHA-256", arr).Call("then", then, catch)
	return func() ([32]byte, error) {
		r := <-ch
		return r.sum, r.err
	}
}

// SHA256 returns the SHA-256 of the concatenation of parts, computed by
// WebCrypto. It blocks the calling goroutine until the digest is ready.
func SHA256(parts ...[]byte) ([32]byte, error) { return Start(parts...)() }
