package relay

import "time"

// Limits are the relay's limits; SPEC.md ("Limits") states the defaults.
type Limits struct {
	// MaxConns bounds concurrent WebSocket sessions of the queue endpoint;
	// more get HTTP 503. wisp-relay also applies -max-conns to every TCP
	// connection of both endpoints (LimitListener).
	MaxConns int
	// MaxSubsPerConn bounds subscriptions per connection (ERR LIMIT), and
	// separately the queues with a message taken by GET and not yet
	// acknowledged.
	MaxSubsPerConn int
	// NewPerMinute bounds NEW commands per connection per minute (ERR LIMIT).
	NewPerMinute int
	// NewPerMinuteAddr bounds NEW commands per source address (IPv4
	// address or IPv6 /64) per minute, over all its connections; zero
	// turns it off (a relay behind a reverse proxy sees one address).
	// Addresses are kept in memory for the current minute only.
	NewPerMinuteAddr int
	// NewPerMinuteRelay bounds NEW commands on the whole relay per minute.
	NewPerMinuteRelay int
	// QueueQuota is the number of messages a queue holds before SEND gets
	// ERR QUOTA and the quota marker is queued.
	QueueQuota uint32
	// Retention is how long a message is kept undelivered.
	Retention time.Duration
	// SweepInterval is how often expired messages are deleted.
	SweepInterval time.Duration
	// PingInterval is how often the relay sends a WebSocket ping.
	PingInterval time.Duration
	// PingTimeout closes a connection whose pong does not arrive in time.
	PingTimeout time.Duration
	// HandshakeTimeout bounds the handshake.
	HandshakeTimeout time.Duration
	// MaxPendingBytes bounds what waits to be written to one connection.
	// A MSG counts as a whole block payload; other answers by their
	// length. While it is reached the relay reads no more blocks from the
	// connection, takes no GET and defers MSG pushes to it.
	MaxPendingBytes int
	// WriteTimeout bounds the writing of one block; a client that reads
	// nothing for that long is dropped ("client not reading").
	WriteTimeout time.Duration
}

// DefaultLimits returns the limits stated in SPEC.md.
func DefaultLimits() Limits {
	return Limits{
		MaxConns:          50000,
		MaxSubsPerConn:    10000,
		NewPerMinute:      120,
		NewPerMinuteAddr:  600,
		NewPerMinuteRelay: 6000,
		QueueQuota:        128,
		Retention:         21 * 24 * time.Hour,
		SweepInterval:     10 * time.Minute,
		PingInterval:      30 * time.Second,
		PingTimeout:       20 * time.Second,
		HandshakeTimeout:  15 * time.Second,
		MaxPendingBytes:   8 * 16384,
		WriteTimeout:      10 * time.Second,
	}
}
