package routes

import (
	"crypto/ecdh"
	"crypto/rand"
	"crypto/sha256"
	"sync"

	"github.com/wisp-chat/wisp/server/wire"
)

// MaxForwardsPerKey bounds the commands forwarded under one forward key,
// and so the memory of the replay check; past it the destination answers
// ROUTE and the proxy opens a new session.
const MaxForwardsPerKey = 100_000

// Destination is the destination's side of one proxy session: its
// forward key (RKEY), the layer key it shares with the proxy, and the
// ephemeral keys of the commands forwarded so far (a repeat is refused).
type Destination struct {
	Priv  *ecdh.PrivateKey
	Pub   [wire.KeySize]byte
	layer *[32]byte

	mu   sync.Mutex
	seen map[[16]byte]struct{}
	max  int // MaxForwardsPerKey (tests lower it)
}

// NewDestination makes a fresh forward key for a session whose proxy
// sent proxyEph in RKEY. A low-order proxyEph is an error wrapping
// wire.ErrCommand.
func NewDestination(proxyEph [wire.KeySize]byte) (*Destination, error) {
	priv, err := ecdh.X25519().GenerateKey(rand.Reader)
	if err != nil {
		return nil, err
	}
	d := &Destination{Priv: priv, seen: make(map[[16]byte]struct{}), max: MaxForwardsPerKey}
	copy(d.Pub[:], priv.PublicKey().Bytes())
	d.layer, err = wire.LayerKey(priv, proxyEph, proxyEph, d.Pub)
	if err != nil {
		return nil, err
	}
	return d, nil
}

// Unwrap opens the proxy's layer of RFWD's data: the client's ephemeral
// key and its sealed command. Errors wrap wire.ErrDecrypt.
func (d *Destination) Unwrap(layered []byte) (eph [wire.KeySize]byte, sealed []byte, err error) {
	inner, err := wire.OpenLayer(d.layer, layered)
	if err != nil {
		return eph, nil, err
	}
	copy(eph[:], inner)
	return eph, inner[wire.KeySize:], nil
}

// Admit records a forwarded command's ephemeral key once it opened:
// PROHIBITED for a repeat (a replay), ROUTE when the key has carried
// MaxForwardsPerKey commands, 0 to go on.
func (d *Destination) Admit(eph [wire.KeySize]byte) wire.ErrCode {
	h := sha256.Sum256(eph[:])
	id := [16]byte(h[:16])
	d.mu.Lock()
	defer d.mu.Unlock()
	if _, dup := d.seen[id]; dup {
		return wire.CodeProhibited
	}
	if len(d.seen) >= d.max {
		return wire.CodeRoute
	}
	d.seen[id] = struct{}{}
	return 0
}

// Wrap puts the sealed answer in the proxy's layer (RRES's data).
func (d *Destination) Wrap(sealed []byte) ([]byte, error) {
	return wire.SealLayer(rand.Reader, d.layer, sealed)
}
