//go:build js && wasm

package bridge

import (
	"errors"
	"fmt"
	"io"
	"syscall/js"

	"github.com/wisp-chat/wisp/wasm/rpc"
)

// blob reads a JavaScript Blob (a File the user picked) in slices, never
// whole: ReadAt awaits blob.slice(off, off+len(p)).arrayBuffer(). It must
// be called from a goroutine, never inside a js.FuncOf callback.
type blob struct {
	v    js.Value
	size int64
}

func newBlob(v js.Value) (*blob, error) {
	if v.Type() != js.TypeObject || v.Get("slice").Type() != js.TypeFunction {
		return nil, errors.New("bridge: the attachment is not a Blob")
	}
	return &blob{v: v, size: int64(v.Get("size").Float())}, nil
}

func (b *blob) Size() int64 { return b.size }

func (b *blob) ReadAt(p []byte, off int64) (int, error) {
	if off >= b.size {
		return 0, io.EOF
	}
	end := min(off+int64(len(p)), b.size)
	buf, err := await(b.v.Call("slice", off, end).Call("arrayBuffer"))
	if err != nil {
		return 0, fmt.Errorf("%w: %w", rpc.ErrUnreadable, err)
	}
	n := js.CopyBytesToGo(p, js.Global().Get("Uint8Array").New(buf))
	if int64(n) < int64(len(p)) {
		return n, io.EOF
	}
	return n, nil
}

// await waits for a JavaScript promise from a goroutine.
func await(p js.Value) (js.Value, error) {
	type result struct {
		v   js.Value
		err error
	}
	ch := make(chan result, 1)
	then := js.FuncOf(func(_ js.Value, args []js.Value) any { ch <- result{v: args[0]}; return nil })
	catch := js.FuncOf(func(_ js.Value, args []js.Value) any {
		ch <- result{err: errors.New(args[0].Call("toString").String())}
		return nil
	})
	defer then.Release()
	defer catch.Release()
	p.Call("then", then, catch)
	r := <-ch
	return r.v, r.err
}
