//go:build js && wasm

// Package bridge exposes an rpc.Router to JavaScript inside the Web Worker.
//
// Install defines one global object:
//
//	globalThis[name] = {
//	  call(method, paramsJSON[, blob]) → Promise<resultJSON or Uint8Array>   // rejects with {code, message}
//	  setEventSink(fn(name, dataJSON))
//	}
//
// and then calls globalThis[name + "Ready"]() if the worker defined it, so
// the worker knows the core has started. Every call runs in its own
// goroutine: the JavaScript callback returns the Promise at once and never
// blocks, which matters because blocking inside a js.FuncOf callback while
// waiting for JavaScript (IndexedDB, fetch, WebSocket) deadlocks the Go
// runtime.
package bridge

import (
	"context"
	"encoding/json"
	"errors"
	"sync"
	"syscall/js"

	"github.com/wisp-chat/wisp/wasm/rpc"
)

// Bridge connects a Router to JavaScript.
type Bridge struct {
	router *rpc.Router
	ctx    context.Context

	mu    sync.Mutex
	sink  js.Value
	funcs []js.Func
}

// New returns a Bridge serving router. Calls run with ctx.
func New(ctx context.Context, router *rpc.Router) *Bridge {
	return &Bridge{router: router, ctx: ctx, sink: js.Undefined()}
}

// Install defines globalThis[name] and signals readiness. It returns a
// function that removes the global and releases the callbacks.
func (b *Bridge) Install(name string) (release func()) {
	obj := js.Global().Get("Object").New()
	call := js.FuncOf(b.call)
	setSink := js.FuncOf(func(_ js.Value, args []js.Value) any {
		b.mu.Lock()
		defer b.mu.Unlock()
		if len(args) == 1 && args[0].Type() == js.TypeFunction {
			b.sink = args[0]
		} else {
			b.sink = js.Undefined()
		}
		return nil
	})
	b.funcs = append(b.funcs, call, setSink)
	obj.Set("call", call)
	obj.Set("setEventSink", setSink)
	js.Global().Set(name, obj)
	if ready := js.Global().Get(name + "Ready"); ready.Type() == js.TypeFunction {
		ready.Invoke(obj)
	}
	return func() {
		js.Global().Delete(name)
		for _, f := range b.funcs {
			f.Release()
		}
		b.funcs = nil
	}
}

// Emit sends an event to the sink, if one is set. data is encoded as JSON.
// It is safe to call from any goroutine.
func (b *Bridge) Emit(name string, data any) error {
	raw, err := json.Marshal(data)
	if err != nil {
		return err
	}
	b.mu.Lock()
	sink := b.sink
	b.mu.Unlock()
	if sink.Type() == js.TypeFunction {
		sink.Invoke(name, string(raw))
	}
	return nil
}

// call implements call(method, paramsJSON): it returns a Promise at once and
// runs the method in a goroutine.
func (b *Bridge) call(_ js.Value, args []js.Value) any {
	var method, params string
	var argErr error
	switch {
	case len(args) < 1 || args[0].Type() != js.TypeString:
		argErr = rpc.Errorf(rpc.CodeBadRequest, "call: the method name must be a string")
	case len(args) > 1 && args[1].Type() == js.TypeString:
		method, params = args[0].String(), args[1].String()
	case len(args) > 1 && !args[1].IsUndefined() && !args[1].IsNull():
		argErr = rpc.Errorf(rpc.CodeBadRequest, "call: parameters must be a JSON string")
	default:
		method = args[0].String()
	}
	ctx := b.ctx
	if argErr == nil && len(args) > 2 && !args[2].IsUndefined() && !args[2].IsNull() {
		bl, err := newBlob(args[2])
		if err != nil {
			argErr = rpc.Errorf(rpc.CodeBadRequest, "call: %w", err)
		} else {
			ctx = rpc.WithAttachment(ctx, bl)
		}
	}
	return NewPromise(func() (any, error) {
		if argErr != nil {
			return nil, argErr
		}
		out, binary, err := b.router.Result(ctx, method, []byte(params))
		if err != nil {
			return nil, err
		}
		if binary {
			arr := js.Global().Get("Uint8Array").New(len(out))
			js.CopyBytesToJS(arr, out)
			return arr, nil
		}
		return string(out), nil
	})
}

// NewPromise returns a JavaScript Promise settled by fn, which runs in a new
// goroutine. fn's result must be acceptable to js.ValueOf. An error rejects
// the Promise with a plain object {code, message}. A panic in fn is not
// recovered: it stops the core, and the page shows its crash screen rather
// than run on with state that may be inconsistent.
func NewPromise(fn func() (any, error)) js.Value {
	var executor js.Func
	executor = js.FuncOf(func(_ js.Value, args []js.Value) any {
		resolve, reject := args[0], args[1]
		executor.Release()
		go func() {
			res, err := fn()
			if err != nil {
				reject.Invoke(errorValue(err))
				return
			}
			resolve.Invoke(res)
		}()
		return nil
	})
	return js.Global().Get("Promise").New(executor)
}

func errorValue(err error) js.Value {
	var e *rpc.Error
	if !errors.As(err, &e) {
		e = &rpc.Error{Code: rpc.CodeInternal, Message: err.Error()}
	}
	obj := js.Global().Get("Object").New()
	obj.Set("code", string(e.Code))
	obj.Set("message", e.Message)
	return obj
}
