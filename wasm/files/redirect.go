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
