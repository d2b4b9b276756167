// Package rpc is the method router between the browser page and the Wisp
// core. The page sends a method name and JSON parameters; the router finds
// the handler, decodes the parameters into the handler's own type and
// encodes its result as JSON. Failures are *Error values with a stable Code
// that the UI branches on and a human Message it may show.
//
//	r := rpc.NewRouter()
//	rpc.Handle(r, "version", func(ctx context.Context, _ rpc.None) (buildinfo.Info, error) {
//		return buildinfo.Read(), nil
//	})
//	out, err := r.Call(ctx, "version", nil) // out is JSON
//
// A handler whose result is Binary (file contents) skips JSON where the
// transport can carry bytes: Result tells the bridge, which hands the bytes
// to JavaScript as a Uint8Array; Call still encodes them as JSON (base64).
//
// The router does no I/O of its own and builds on every platform; package
// bridge exposes it to JavaScript under js/wasm.
package rpc

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"sync"
)

// Code is a stable, machine-readable error code.
type Code string

// Error codes shared by every method. Feature packages add their own.
const (
	CodeUnknownMethod Code = "unknown_method"
	CodeBadRequest    Code = "bad_request"
	CodeInternal      Code = "internal"
	CodeCanceled      Code = "canceled"
)

// MaxParams is the largest parameter document a call may carry (1 MiB),
// unless the method was registered with a larger WithMaxParams.
const MaxParams = 1 << 20

// Option configures one method.
type Option func(*entry)

// WithMaxParams sets the method's parameter limit to n bytes (for methods
// that carry files, such as a backup import).
func WithMaxParams(n int) Option { return func(e *entry) { e.max = n } }

// Error is the error type that crosses to the page.
type Error struct {
	Code    Code   `json:"code"`
	Message string `json:"message"`
	err     error
}

func (e *Error) Error() string { return string(e.Code) + ": " + e.Message }

// Unwrap returns the underlying error, if any.
func (e *Error) Unwrap() error { return e.err }

// Errorf returns an *Error with the given code and formatted message. A %w
// verb wraps its operand as usual.
func Errorf(code Code, format string, args ...any) *Error {
	err := fmt.Errorf(format, args...)
	return &Error{Code: code, Message: err.Error(), err: errors.Unwrap(err)}
}

// None is the parameter or result type of methods that take or return nothing.
type None struct{}

// entry is a registered method: its type-erased handler and limit.
type entry struct {
	fn  func(ctx context.Context, params []byte) (any, error)
	max int
}

// Router maps method names to handlers. It is safe for concurrent use.
type Router struct {
	mu       sync.RWMutex
	handlers map[string]*entry
}

// NewRouter returns an empty Router.
func NewRouter() *Router {
	return &Router{handlers: make(map[string]*entry)}
}

// Handle registers fn as the handler of method. P is decoded from the call's
// JSON parameters (strictly: unknown fields are an error), R is encoded as
// the result. Registering a method twice panics: it is a programming error.
func Handle[P, R any](r *Router, method string, fn func(context.Context, P) (R, error), opts ...Option) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if _, dup := r.handlers[method]; dup {
		panic("rpc: method registered twice: " + method)
	}
	e := &entry{max: MaxParams}
	for _, o := range opts {
		o(e)
	}
	r.handlers[method] = e
	e.fn = func(ctx context.Context, raw []byte) (any, error) {
		var p P
		if len(raw) > 0 && string(raw) != "null" {
			if err := decodeStrict(raw, &p); err != nil {
				return nil, Errorf(CodeBadRequest, "%s: invalid parameters: %w", method, err)
			}
		}
		return fn(ctx, p)
	}
}

// Binary is a result of raw bytes (see Result).
type Binary []byte

// Call runs method with JSON params and returns its JSON result. Every error
// it returns is an *Error; errors of other types from handlers are reported
// as CodeInternal with their message.
func (r *Router) Call(ctx context.Context, method string, params []byte) ([]byte, error) {
	out, bin, err := r.Result(ctx, method, params)
	if err != nil || !bin {
		return out, err
	}
	if out, err = json.Marshal(out); err != nil {
		return nil, Errorf(CodeInternal, "%s: encoding result: %w", method, err)
	}
	return out, nil
}

// Result is Call for transports that carry bytes: when the handler's
// result is Binary, it returns those bytes and binary = true; otherwise
// the JSON result.
func (r *Router) Result(ctx context.Context, method string, params []byte) (out []byte, binary bool, err error) {
	r.mu.RLock()
	h, ok := r.handlers[method]
	r.mu.RUnlock()
	if !ok {
		return nil, false, Errorf(CodeUnknownMethod, "unknown method %q", method)
	}
	if len(params) > h.max {
		return nil, false, Errorf(CodeBadRequest, "%s: parameters are %d bytes, the limit is %d", method, len(params), h.max)
	}
	res, err := h.fn(ctx, params)
	if err != nil {
		return nil, false, asError(ctx, err)
	}
	if b, ok := res.(Binary); ok {
		return b, true, nil
	}
	if out, err = json.Marshal(res); err != nil {
		return nil, false, Errorf(CodeInternal, "%s: encoding result: %w", method, err)
	}
	return out, false, nil
}

// asError converts any error into an *Error.
func asError(ctx context.Context, err error) *Error {
	var e *Error
	if errors.As(err, &e) {
		return e
	}
	if ctx.Err() != nil && errors.Is(err, ctx.Err()) {
		return &Error{Code: CodeCanceled, Message: "the operation was canceled", err: err}
	}
	return &Error{Code: CodeInternal, Message: err.Error(), err: err}
}

func decodeStrict(raw []byte, v any) error {
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		return err
	}
	if dec.More() {
		return errors.New("trailing data after the parameters")
	}
	return nil
}
