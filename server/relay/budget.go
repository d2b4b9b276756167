package relay

import (
	"net/netip"
	"sync"
	"time"
)

// budget counts NEW commands per source address and on the whole relay
// in one-minute windows. Addresses live in memory for the current window
// only; they are never logged or stored.
type budget struct {
	perAddr, perRelay int // per window; zero is no bound

	mu     sync.Mutex
	start  time.Time
	relay  int
	byAddr map[netip.Prefix]int
}

// allow counts one NEW from addr at now, or refuses it.
func (b *budget) allow(addr netip.Prefix, now time.Time) bool {
	b.mu.Lock()
	defer b.mu.Unlock()
	if now.Sub(b.start) >= time.Minute || now.Before(b.start) {
		b.start, b.relay = now, 0
		clear(b.byAddr)
	}
	if b.perRelay > 0 && b.relay >= b.perRelay {
		return false
	}
	if b.perAddr > 0 {
		if b.byAddr == nil {
			b.byAddr = make(map[netip.Prefix]int)
		}
		if b.byAddr[addr] >= b.perAddr {
			return false
		}
		b.byAddr[addr]++
	}
	b.relay++
	return true
}

// sourcePrefix is the budget key of a remote address: the IPv4 address,
// or the /64 of an IPv6 one (one host usually holds a whole /64). An
// address that does not parse shares the zero prefix.
func sourcePrefix(remote string) netip.Prefix {
	ap, err := netip.ParseAddrPort(remote)
	if err != nil {
		return netip.Prefix{}
	}
	a := ap.Addr().Unmap()
	bits := 32
	if a.Is6() {
		bits = 64
	}
	p, err := a.Prefix(bits)
	if err != nil {
		return netip.Prefix{}
	}
	return p
}
