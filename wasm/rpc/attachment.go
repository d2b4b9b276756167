package rpc

import (
	"context"
	"io"
)

// Attachment is a file that travels with a call, outside the JSON
// parameters: in the browser, the Blob the user picked, read in slices.
type Attachment interface {
	io.ReaderAt
	Size() int64
}

type attachmentKey struct{}

// WithAttachment returns a context carrying a.
func WithAttachment(ctx context.Context, a Attachment) context.Context {
	return context.WithValue(ctx, attachmentKey{}, a)
}

// AttachmentFrom returns the call's attachment, if any.
func AttachmentFrom(ctx context.Context) (Attachment, bool) {
	a, ok := ctx.Value(attachmentKey{}).(Attachment)
	return a, ok
}
