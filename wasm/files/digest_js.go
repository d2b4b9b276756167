//go:build js && wasm

package files

import "github.com/wisp-chat/wisp/wasm/internal/webcrypto"

// hashPiece starts hashing a piece of the file digest with WebCrypto, on
// a browser thread, and returns a function that waits for the result. It
// copies b, which the caller may reuse at once.
func hashPiece(b []byte) func() ([32]byte, error) { return webcrypto.Start(b) }
