//go:build !(js && wasm)

package files

import "crypto/sha256"

// hashPiece hashes a piece of the file digest before it returns.
func hashPiece(b []byte) func() ([32]byte, error) {
	sum := sha256.Sum256(b)
	return func() ([32]byte, error) { return sum, nil }
}
