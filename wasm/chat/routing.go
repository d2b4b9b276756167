package chat

import (
	"context"
	"errors"
	"fmt"

	"github.com/wisp-chat/wisp/server/wire"
	"github.com/wisp-chat/wisp/server/wire/client"
	"github.com/wisp-chat/wisp/wasm/agent"
	"github.com/wisp-chat/wisp/wasm/files"
)

// Private routing (server/wire SPEC.md §12): messages to a contact whose
// relay is not one of ours go through our receiving relay, so their relay
// never learns our address. It is on unless the profile turned it off;
// with it on, the page never connects to a relay the profile did not list.

// route is the agent pool's Routing: a relay of ours is reached directly,
// any other through one of ours: the receiving relay, or when it is not
// connected now another of ours that is (all of them know our address
// already), else the receiving relay still (the command waits for it).
func (p *Profile) route(dest wire.Address) (wire.Address, bool) {
	p.mu.Lock()
	direct, relays, receive := p.rec.DirectRouting, p.rec.Relays, p.rec.Receive
	p.mu.Unlock()
	if direct {
		return wire.Address{}, false
	}
	var own []wire.Address
	for _, r := range relays {
		a, err := wire.ParseAddress(r)
		if err != nil {
			continue
		}
		if a.KeyHash == dest.KeyHash {
			return wire.Address{}, false
		}
		if r == receive {
			own = append([]wire.Address{a}, own...)
		} else {
			own = append(own, a)
		}
	}
	if len(own) == 0 {
		return wire.Address{}, true
	}
	for _, a := range own {
		if p.relays.Connected(a) {
			return a, true
		}
	}
	return own[0], true
}

// SetPrivateRouting turns private routing on or off for this profile.
func (p *Profile) SetPrivateRouting(on bool) error {
	p.mu.Lock()
	defer p.mu.Unlock()
	rec := p.rec
	rec.DirectRouting = !on
	if err := putJSON(p.st, "profile", rec); err != nil {
		return err
	}
	p.rec = rec
	return nil
}

// DeliveryDelayed reports that a contact's messages cannot be sent now
// (agent.DeliveryEvents); the page shows why until they go out again.
func (e *profileEvents) DeliveryDelayed(conn agent.ConnID, err error) {
	p := e.p()
	id := string(conn)
	if gc, ok := p.groupConnOf(conn); ok {
		id = gc.Group // a member's connection: shown on the group
	}
	p.mu.Lock()
	if err == nil {
		delete(p.delays, id)
	} else {
		p.delays[id] = deliverySentence(err)
	}
	text := p.delays[id]
	p.mu.Unlock()
	p.listen(Event{Kind: "delivery", ID: id, Text: text})
}

// deliverySentence says in words why messages wait, naming both relays of
// a private route.
func deliverySentence(err error) string {
	var re *client.RouteError
	if !errors.As(err, &re) {
		return "Messages to this contact are waiting: their relay cannot be reached right now. They are sent as soon as it can."
	}
	your, their := re.Proxy.Host, re.Dest.Host
	if re.AtDest {
		return fmt.Sprintf("Their relay %s refused a message sent through your relay %s (%s). It is retried.", their, your, codeWords(re.Err))
	}
	why := "your relay is unreachable"
	switch {
	case errors.Is(err, agent.ErrNoProxy):
		return "Private routing is on, but none of your relays can forward messages. Add a relay in Settings, or turn private routing off there."
	case re.Code != 0:
		why = codeWords(re.Code)
	}
	return fmt.Sprintf("Could not deliver through your relay %s to their relay %s: %s. Messages wait and are retried.", your, their, why)
}

func codeWords(err error) string {
	var code wire.ErrCode
	if !errors.As(err, &code) {
		return "it did not answer"
	}
	switch code {
	case wire.CodeProxy:
		return "your relay could not reach theirs"
	case wire.CodeRoute:
		return "the route was reset"
	case wire.CodeLimit:
		return "your relay is limiting how fast it forwards"
	case wire.CodeAuth:
		return "your relay did not recognise you yet"
	case wire.CodeProhibited:
		return "your relay does not forward messages"
	case wire.CodeQuota:
		return "their inbox on it is full until they read it"
	case wire.CodeFull:
		return "it is full"
	case wire.CodeInternal:
		return "it had an internal error"
	}
	return "it refused the message"
}

// downloadRelay returns what fetches and acknowledges chunks on relay:
// its own file client when the relay is ours or private routing is off,
// else our receiving relay's file endpoint, which forwards FGET and FACK
// (server/wire SPEC.md §12.6) so the sender's relay never sees us.
func (p *Profile) downloadRelay(ctx context.Context, relay wire.Address) (files.Relay, error) {
	proxy, private := p.route(relay)
	if !private {
		return p.fileClient(ctx, relay)
	}
	if proxy == (wire.Address{}) {
		return nil, &client.RouteError{Proxy: proxy, Dest: relay, Err: fmt.Errorf("%w: %w", client.ErrRoute, agent.ErrNoProxy)}
	}
	fc, err := p.fileClient(ctx, proxy)
	if err != nil {
		return nil, &client.RouteError{Proxy: proxy, Dest: relay, Err: fmt.Errorf("%w: %w", client.ErrRoute, err)}
	}
	return routedFiles{fc: fc, dest: relay, relays: p.relays, proxy: proxy}, nil
}

// errNotForUpload: a routed file relay only downloads.
var errNotForUpload = errors.New("chat: a relay reached through private routing only serves downloads")

// routedFiles downloads from dest through a proxy's file endpoint. The
// proxy admits us on a queue we hold there (client.Proof).
type routedFiles struct {
	fc     *client.FileClient
	dest   wire.Address
	proxy  wire.Address
	relays *agent.Relays
}

func (r routedFiles) proof() client.Proof {
	if s, ok := r.relays.Subscription(r.proxy); ok {
		return client.Proof{Queue: &s}
	}
	return client.Proof{}
}

func (r routedFiles) Download(ctx context.Context, c client.RecipientChunk) ([]byte, error) {
	return r.fc.ProxyDownload(ctx, r.dest, c, r.proof())
}

func (r routedFiles) Ack(ctx context.Context, c client.RecipientChunk) error {
	return r.fc.ProxyAck(ctx, r.dest, c, r.proof())
}

func (routedFiles) CreateChunk(context.Context, wire.ChunkClass, int, []byte) (client.SenderChunk, []client.RecipientChunk, error) {
	return client.SenderChunk{}, nil, errNotForUpload
}

func (routedFiles) Upload(context.Context, client.SenderChunk, []byte) error { return errNotForUpload }

func (routedFiles) DeleteChunk(context.Context, client.SenderChunk) error { return errNotForUpload }
