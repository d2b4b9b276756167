package files

import (
	"bytes"
	"context"
	"fmt"
	"io"

	"github.com/wisp-chat/wisp/server/wire"
	"github.com/wisp-chat/wisp/wasm/store"
)

// Redirect uploads the encoded inner description as a small file of its
// own and returns that file's description, marked Redirect: at most
// 85 + address + 89 bytes (one 64 KiB chunk) whatever the size of the
// real file. Use it when inner does not fit in one message (see
// DescriptionSize). The SenderState is for the redirect's own chunk; the
// real file's chunks stay in the state Send returned.
func Redirect(ctx context.Context, fc Relay, relay wire.Address, inner *Description, opts SendOptions) (*Description, *SenderState, error) {
	if inner.Redirect {
		return nil, nil, fmt.Errorf("%w: redirect to a redirect", ErrInvalidDescription)
	}
	b, err := inner.MarshalBinary()
	if err != nil {
		return nil, nil, err
	}
	d, st, err := Send(ctx, fc, relay, bytes.NewReader(b), int64(len(b)), opts)
	if err != nil {
		return nil, nil, err
	}
	d.Redirect = true
	return d, st, nil
}

// RedirectMany is Redirect for the descriptions SendMany returned, one
// per recipient, in the same order: recipient k gets the k-th redirect,
// which leads only to inners[k]. The inner descriptions differ (each
// names only its recipient's chunk records), so each is uploaded as its
// own one-chunk file for one recipient, several at once (opts.InFlight):
// one 64 KiB chunk per recipient, whatever the size of the real file.
// The SenderState holds those chunks, in recipient order; the real
// file's chunks stay in the state SendMany returned. opts.Upload (not
// resumable) and opts.Recipients over 1 are refused; so are no or more
// than MaxRecipients descriptions (ErrRecipients) and an inner redirect,
// before anything is uploaded. When it fails, the redirects already
// uploaded are deleted (best effort) and nothing is returned.
func RedirectMany(ctx context.Context, fc Relay, relay wire.Address, inners []*Description, opts SendOptions) ([]*Description, *SenderState, error) {
	if err := checkRecipients(len(inners)); err != nil {
		return nil, nil, err
	}
	if opts.Recipients > 1 {
		return nil, nil, fmt.Errorf("%w: each redirect is for one recipient, not %d", ErrRecipients, opts.Recipients)
	}
	if opts.Upload != nil {
		return nil, nil, fmt.Errorf("files: RedirectMany is not resumable (SendOptions.Upload)")
	}
	enc := make([][]byte, len(inners))
	for k, inner := range inners {
		if inner.Redirect {
			return nil, nil, fmt.Errorf("%w: redirect to a redirect", ErrInvalidDescription)
		}
		var err error
		if enc[k], err = inner.MarshalBinary(); err != nil {
			return nil, nil, err
		}
	}
	// Progress over all the redirects; each Send reports its own.
	prog := &progress{fn: opts.Progress, total: int64(len(inners)) * int64(wire.Class64K.Size())}
	ctx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	outs := make([]*Description, len(inners))
	sts := make([]*SenderState, len(inners))
	each(len(inners), inFlight(opts.InFlight), func(k int) {
		if ctx.Err() != nil {
			return
		}
		o := opts
		var reported int64
		o.Progress = func(done, _ int64) {
			prog.add(done - reported)
			reported = done
		}
		d, st, err := Send(ctx, fc, relay, bytes.NewReader(enc[k]), int64(len(enc[k])), o)
		if err != nil {
			cancel(fmt.Errorf("files: redirect for recipient %d: %w", k, err))
			return
		}
		d.Redirect = true
		outs[k], sts[k] = d, st
	})
	all := &SenderState{Relay: relay}
	for _, st := range sts {
		if st != nil {
			all.Chunks = append(all.Chunks, st.Chunks...)
		}
	}
	if err := context.Cause(ctx); err != nil {
		created := make([]bool, len(all.Chunks))
		for i := range created {
			created[i] = true
		}
		cleanup(ctx, fc, all.Chunks, created)
		return nil, nil, err
	}
	return outs, all, nil
}

// Follow receives the file of a Redirect description into st under dir
// (resumable, verified and acknowledged like Receive), decodes the
// description it holds, deletes its records and returns it; the caller
// then receives the real file with the returned description. A redirect
// to another redirect is ErrInvalidDescription.
func Follow(ctx context.Context, fc Relay, outer *Description, st *store.Store, dir store.Key, opts ReceiveOptions) (*Description, error) {
	if !outer.Redirect {
		return nil, fmt.Errorf("%w: not a redirect", ErrInvalidDescription)
	}
	if err := Receive(ctx, fc, outer, st, dir, opts); err != nil {
		return nil, err
	}
	r, err := Open(st, dir, outer)
	if err != nil {
		return nil, err
	}
	b, err := io.ReadAll(io.LimitReader(r, MaxDescriptionSize+1))
	if err != nil {
		return nil, err
	}
	inner, err := UnmarshalDescription(b)
	if err != nil {
		return nil, err
	}
	if inner.Redirect {
		return nil, fmt.Errorf("%w: redirect to a redirect", ErrInvalidDescription)
	}
	if err := st.DeleteAll(dir); err != nil {
		return nil, fmt.Errorf("files: deleting the redirect's records: %w", err)
	}
	return inner, nil
}
