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
// END. SEND is answered OK only after the message is fsynced.
//
// AUTH: a command on a queue that does not exist, with a wrong signature,
// or on a suspended queue gets the same ERR AUTH bytes after the same
// signature verification work.
//
// The relay pings every connection with WebSocket ping frames
// (Limits.PingInterval) and closes connections that do not answer within
// Limits.PingTimeout, so half-open connections are cleaned up and idle
// ones survive proxies with 60-second idle timeouts.
//
// Logs (log/slog) carry counts and error kinds only: never queue or message
// IDs, keys, message bytes or addresses.
package relay
