// Package authkey gives the relay's stand-in signature key for commands
// on an entity that does not exist.
//
// A relay answers ERR AUTH after the same signature verification work
// whether or not the queue or chunk exists (server/wire SPEC §7, §11.2).
// Verifying against bytes that are not a valid Ed25519 point returns
// early, so the stand-in must be a real public key:
//
//	dummy := authkey.Dummy("wisp relay: no such queue")
//	ok := t.Verify(sessID, dummy[:]) // full work, never true in practice
package authkey

import (
	"crypto/ed25519"
	"crypto/sha256"
)

// Dummy returns the Ed25519 public key whose seed is SHA-256(label). It
// is a valid curve point, so verifying a signature against it costs what
// verifying against a real key costs; nobody holds a signature made by
// it unless they know the label, which gains them nothing: commands on a
// missing entity are refused after the verification whatever its result.
func Dummy(label string) [ed25519.PublicKeySize]byte {
	seed := sha256.Sum256([]byte(label))
	return [ed25519.PublicKeySize]byte(ed25519.NewKeyFromSeed(seed[:]).Public().(ed25519.PublicKey))
}
