package rpc

import (
	"context"
	"errors"
	"io"
)

// ErrUnreadable wraps the error of an attachment that can no longer be
// read (in the browser: the file was changed, moved or deleted on disk
// after it was picked).
var ErrUnreadable = errors.New("the file can no longer be read")

// Attachment is a file that travels with a call, outside the JSON
// parameters: in the browser, the Blob the user picked, read in slices.
// Its read errors wrap ErrUnreadable.
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
