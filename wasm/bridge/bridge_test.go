//go:build js && wasm

package bridge

import (
	"context"
	"syscall/js"
	"testing"
	"time"

	"github.com/wisp-chat/wisp/wasm/rpc"
)

// await waits for a JavaScript promise without blocking the event loop.
func awaitT(t *testing.T, p js.Value) (js.Value, js.Value) {
	t.Helper()
	type result struct{ ok, err js.Value }
	ch := make(chan result, 1)
	then := js.FuncOf(func(_ js.Value, args []js.Value) any { ch <- result{ok: args[0]}; return nil })
	catch := js.FuncOf(func(_ js.Value, args []js.Value) any { ch <- result{err: args[0]}; return nil })
	defer then.Release()
	defer catch.Release()
	p.Call("then", then, catch)
	select {
	case r := <-ch:
		return r.ok, r.err
	case <-time.After(10 * time.Second):
		t.Fatal("the promise did not settle")
	}
	return js.Undefined(), js.Undefined()
}

func TestInstallCallEmit(t *testing.T) {
	release := make(chan struct{})
	r := rpc.NewRouter()
	rpc.Handle(r, "add", func(_ context.Context, p struct{ A, B int }) (int, error) { return p.A + p.B, nil })
	rpc.Handle(r, "slow", func(context.Context, rpc.None) (string, error) { <-release; return "done", nil })
	rpc.Handle(r, "bytes", func(context.Context, rpc.None) (rpc.Binary, error) { return rpc.Binary{1, 2, 255}, nil })
	rpc.Handle(r, "fail", func(context.Context, rpc.None) (rpc.None, error) {
		return rpc.None{}, rpc.Errorf("wrong_passphrase", "the passphrase is wrong")
	})
	b := New(context.Background(), r)

	readyCalled := make(chan js.Value, 1)
	onReady := js.FuncOf(func(_ js.Value, args []js.Value) any { readyCalled <- args[0]; return nil })
	defer onReady.Release()
	js.Global().Set("testCoreReady", onReady)
	defer js.Global().Delete("testCoreReady")

	uninstall := b.Install("testCore")
	defer uninstall()
	core := js.Global().Get("testCore")
	select {
	case v := <-readyCalled:
		if !v.Equal(core) {
			t.Error("the ready hook did not receive the core object")
		}
	default:
		t.Error("the ready hook was not called")
	}

	res, rej := awaitT(t, core.Call("call", "add", `{"A":2,"B":3}`))
	if !rej.IsUndefined() || res.String() != "5" {
		t.Errorf("add = %v / %v", res, rej)
	}

	// A Binary result arrives as a Uint8Array, not JSON.
	res, _ = awaitT(t, core.Call("call", "bytes"))
	if !res.InstanceOf(js.Global().Get("Uint8Array")) || res.Length() != 3 || res.Index(2).Int() != 255 {
		t.Errorf("bytes = %v", res)
	}

	// A slow call returns its Promise at once: the callback never blocks.
	p := core.Call("call", "slow")
	if p.Get("then").Type() != js.TypeFunction {
		t.Fatal("call did not return a Promise")
	}
	close(release)
	if res, _ := awaitT(t, p); res.String() != `"done"` {
		t.Errorf("slow = %v", res)
	}

	for _, tc := range []struct {
		args []any
		code string
	}{
		{[]any{"fail"}, "wrong_passphrase"},
		{[]any{"missing"}, "unknown_method"},
		{[]any{42}, "bad_request"},
		{[]any{"add", 7}, "bad_request"},
		{[]any{"add", `{"A":"x"}`}, "bad_request"},
	} {
		_, rej := awaitT(t, core.Call("call", tc.args...))
		if rej.IsUndefined() || rej.Get("code").String() != tc.code || rej.Get("message").String() == "" {
			t.Errorf("call%v rejected with %v, want code %s", tc.args, rej, tc.code)
		}
	}

	events := make(chan [2]string, 2)
	sink := js.FuncOf(func(_ js.Value, args []js.Value) any {
		events <- [2]string{args[0].String(), args[1].String()}
		return nil
	})
	defer sink.Release()
	if err := b.Emit("dropped", 1); err != nil {
		t.Errorf("Emit without a sink: %v", err)
	}
	core.Call("setEventSink", sink)
	if err := b.Emit("message", map[string]int{"n": 1}); err != nil {
		t.Fatal(err)
	}
	select {
	case ev := <-events:
		if ev != [2]string{"message", `{"n":1}`} {
			t.Errorf("event = %v", ev)
		}
	default:
		t.Error("the sink did not receive the event")
	}
	if err := b.Emit("bad", func() {}); err == nil {
		t.Error("an unencodable event was accepted")
	}
}
