// Package kat holds the known-answer tests of the primitives the Wisp
// crypto packages rely on (RFC 7748 X25519, RFC 8439 ChaCha20-Poly1305,
// XChaCha20-Poly1305, Argon2id, NaCl box, ML-KEM-768 round trip), run natively and under GOOS=js in a
// browser so that both builds of golang.org/x/crypto and the standard
// library are checked. It has no API; see kat_test.go.
package kat
