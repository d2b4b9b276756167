// Package wire implements the Wisp relay protocol: relay addresses, the
// authenticated handshake, fixed-size encrypted blocks, batched
// transmissions, commands and error codes. It is shared by the relay
// (server/relay) and its clients (server/wire/client), and it compiles for
// GOOS=js GOARCH=wasm. SPEC.md next to this file is the normative description
// of the bytes; this package is its reference implementation.
//
// A client session, step by step:
//
//	addr, err := wire.ParseAddress("wisp://<keyhash>@relay.example:443")
//	hs, hello, err := wire.NewClientHandshake(addr.KeyHash)
//	// send hello (one BlockSize binary WebSocket message), read the relay's answer:
//	sess, confirm, err := hs.Finish(relayHello, wire.SupportedVersions())
//	// send confirm; from now on every block goes through sess:
//	var b wire.BlockBuilder
//	t := wire.Transmission{CorrID: corr, EntityID: rcvID[:], Command: wire.Command{Kind: wire.CmdSUB}}
//	raw, err := t.Sign(sess.ID, recipientKey) // signature covers session, corr ID, entity ID, command
//	b.Add(raw)
//	block, err := sess.Seal(b.Payload())
//
// The relay side mirrors it with RelayRespond and PendingSession.Confirm,
// opens blocks with Session.Open, splits them with SplitBlock and parses each
// transmission with ParseTransmission.
//
// File chunks use a second endpoint (FilesPath) with the same handshake;
// after it, Session.SealFrame and Session.OpenFrame carry one
// FileTransmission per frame, whose size is one of the chunk classes
// (ChunkClass), and SealChunk/OpenChunk are the relay→recipient layer.
//
// Errors callers branch on are exported sentinels (ErrAddress, ErrBlock,
// ErrHandshake, ...) wrapped with %w; a relay's ERR answer is an ErrCode,
// which is itself an error: errors.Is(err, wire.CodeAuth).
package wire
