package relay

import "time"

// Limits are the relay's limits; SPEC.md ("Limits") states the defaults.
type Limits struct {
	// MaxConns bounds concurrent WebSocket connections; more get HTTP 503.
	MaxConns int
	// MaxSubsPerConn bounds subscriptions per connection (ERR LIMIT).
	MaxSubsPerConn int
	// NewPerMinute bounds NEW commands per connection per minute (ERR LIMIT).
	NewPerMinute int
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
	// MaxPending bounds transmissions waiting to be written to one
	// connection; a client that does not read is disconnected.
	MaxPending int
}

// DefaultLimits returns the limits stated in SPEC.md.
func DefaultLimits() Limits {
	return Limits{
		MaxConns:         50000,
		MaxSubsPerConn:   10000,
		NewPerMinute:     120,
		QueueQuota:       128,
		Retention:        21 * 24 * time.Hour,
		SweepInterval:    10 * time.Minute,
		PingInterval:     30 * time.Second,
		PingTimeout:      20 * time.Second,
		HandshakeTimeout: 15 * time.Second,
		MaxPending:       25000,
	}
}
