// Package relay is the Wisp relay: it accepts WebSocket connections on
// wire.EndpointPath, runs the handshake of server/wire, and serves queue
// commands from a durable Store. It knows queues, never users.
//
// Typical use (see server/cmd/wisp-relay):
//
//	st, err := store.Open(filepath.Join(dir, "queues.db"))
//	srv, err := relay.New(relay.Config{Identity: key, Store: st, Limits: relay.DefaultLimits()})
//	http.Handle(wire.EndpointPath, srv)
//	...
//	srv.Close() // ends every session with a going-away close frame
//	st.Close()
//
// Delivery: one message in flight per queue; MSG is pushed after SUB and
// after each ACK, re-encrypted for the recipient (wire.SealMessage). A SUB
// from a new session moves the subscription there and the old session gets
// END. SEND is answered OK only after the message is fsynced. Commands of
// one session on the same entity ID take effect in the order they were
// sent, so pipelined SENDs to a queue are stored in order; everything else
// runs concurrently (up to 256 commands per connection).
//
// Memory per connection is bounded in bytes (Limits.MaxPendingBytes):
// while a client's output is full the relay reads no more of its blocks,
// takes no GET and defers MSG pushes to it; a block it cannot write within
// Limits.WriteTimeout drops the connection. A session gets one copy of a
// message by GET until it acknowledges it.
//
// AUTH: a command on a queue that does not exist, with a wrong signature,
// on a suspended queue or a SEND to a queue not secured gets the same ERR
// AUTH bytes after the same work: one signature verification against a
// valid Ed25519 key (a fixed dummy when there is no queue key).
//
// NEW is budgeted per connection, per source address (kept in memory for
// the current minute only) and on the whole relay; the store bounds its
// total size (store.Options.MaxBytes, ERR FULL). A panic while handling a
// command (a corrupt store) answers ERR INTERNAL for that command only.
//
// The relay pings every connection with WebSocket ping frames
// (Limits.PingInterval) and closes connections that do not answer within
// Limits.PingTimeout, so half-open connections are cleaned up and idle
// ones survive proxies with 60-second idle timeouts.
//
// Logs (log/slog) carry counts and error kinds only: never queue or message
// IDs, keys, message bytes or addresses.
package relay
