//go:build js && wasm

package webcrypto

import (
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
		return sum(parts...)
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
