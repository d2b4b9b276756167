// Package secret holds the two helpers shared by the typed keys of the
// Wisp crypto packages: constant-time comparison and redacted formatting.
//
// Every secret key type in crypto/... is a struct with an unexported array
// and a `_ [0]func()` field (so `==` does not compile), and implements
//
//	func (k T) Equal(o T) bool                  // secret.Equal
//	func (k T) String() string                  // secret.Redacted
//	func (k T) GoString() string                // secret.Redacted
//	func (k T) Format(f fmt.State, verb rune)   // secret.Format
//
// so that no fmt verb (%v, %x, %#v, %s, %q, ...) ever prints key bytes.
package secret

import (
	"crypto/subtle"
	"fmt"
	"io"
)

// Equal reports whether a and b hold the same bytes. The time taken depends
// only on the lengths, never on the contents.
func Equal(a, b []byte) bool {
	return subtle.ConstantTimeCompare(a, b) == 1
}

// Redacted is the text printed in place of a secret of the named type.
func Redacted(typeName string) string {
	return typeName + "(redacted)"
}

// Format writes Redacted(typeName) whatever the verb and flags, so that
// %x, %v, %+v, %#v and friends cannot reveal the secret.
func Format(f fmt.State, typeName string) {
	_, _ = io.WriteString(f, Redacted(typeName))
}
