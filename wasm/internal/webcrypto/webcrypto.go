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
// Without WebCrypto (a page not served over https or from localhost) and
// outside the browser both use crypto/sha256, so callers need no build
// tags. The waits must run in a goroutine, never
// inside a js.FuncOf callback, which would deadlock the event loop.
package webcrypto

import "crypto/sha256"

// SHA256 returns the SHA-256 of the concatenation of parts. In the browser
// it blocks the calling goroutine until WebCrypto has the digest.
func SHA256(parts ...[]byte) ([32]byte, error) { return Start(parts...)() }

// sum hashes parts in Go.
func sum(parts ...[]byte) func() ([32]byte, error) {
	h := sha256.New()
	for _, p := range parts {
		h.Write(p)
	}
	d := [32]byte(h.Sum(nil))
	return func() ([32]byte, error) { return d, nil }
}
