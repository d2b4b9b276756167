package routes

import (
	"net/netip"
	"time"

	"github.com/wisp-chat/wisp/server/wire/client"
)

// ProxyConfig configures a relay endpoint's proxy role: the queue
// endpoint's (relay.ProxyConfig) and the file endpoint's
// (files.ProxyConfig) are this type.
type ProxyConfig struct {
	// Off refuses PRXY and PFWD (ERR PROHIBITED).
	Off bool
	// AllowPrivate lets the proxy connect to destinations on loopback,
	// private and link-local addresses: for tests and a relay whose
	// destinations are on its own network. Off, a destination whose
	// address is not public is ERR PROXY (no request to the relay's own
	// network on a client's behalf).
	AllowPrivate bool
	// Bind, if valid, is the local address of the proxy's outgoing
	// connections.
	Bind netip.Addr
	// MaxRoutes bounds the destinations with an open session (ERR LIMIT
	// past it) [1,000].
	MaxRoutes int
	// IdleRoute closes a destination's session unused this long [10m].
	IdleRoute time.Duration
	// PrxyPerMinute and PfwdPerMinute are each session's budgets (token
	// buckets of that size, refilled at that rate) [60, 3,000].
	PrxyPerMinute, PfwdPerMinute int
	// Client tunes the sessions to destinations (tests shorten timeouts).
	Client client.Options
}

// Defaults fills the zero limits with the defaults in brackets.
func (p *ProxyConfig) Defaults() {
	if p.MaxRoutes <= 0 {
		p.MaxRoutes = 1000
	}
	if p.IdleRoute <= 0 {
		p.IdleRoute = 10 * time.Minute
	}
	if p.PrxyPerMinute <= 0 {
		p.PrxyPerMinute = 60
	}
	if p.PfwdPerMinute <= 0 {
		p.PfwdPerMinute = 3000
	}
}
