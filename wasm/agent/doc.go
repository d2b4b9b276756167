// Package agent turns relays and the crypto layer into connections: pairs
// of one-way queues on relays that each receiver chose, set up with a
// one-time invitation and a two-message handshake, carrying messages in
// two layers of end-to-end encryption with integrity checks.
//
// The byte-level formats (invitation links, confirmation, envelopes) are in
// SPEC.md beside this file.
package agent
