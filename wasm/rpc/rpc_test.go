package rpc

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"
)

type echoParams struct {
	Text  string `json:"text"`
	Times int    `json:"times"`
}

var errNope = errors.New("nope")

func newTestRouter() *Router {
	r := NewRouter()
	Handle(r, "echo", func(_ context.Context, p echoParams) ([]string, error) {
		out := make([]string, p.Times)
		for i := range out {
			out[i] = p.Text
		}
		return out, nil
	})
	Handle(r, "none", func(context.Context, None) (None, error) { return None{}, nil })
	Handle(r, "typed", func(context.Context, None) (None, error) {
		return None{}, Errorf("wrong_passphrase", "the passphrase is wrong: %w", errNope)
	})
	Handle(r, "plain", func(context.Context, None) (None, error) { return None{}, errNope })
	Handle(r, "canceled", func(ctx context.Context, _ None) (None, error) { return None{}, ctx.Err() })
	Handle(r, "unencodable", func(context.Context, None) (func(), error) { return func() {}, nil })
	Handle(r, "large", func(_ context.Context, p echoParams) (int, error) { return len(p.Text), nil }, WithMaxParams(3*MaxParams))
	return r
}

func TestCall(t *testing.T) {
	r := newTestRouter()
	ctx := context.Background()
	out, err := r.Call(ctx, "echo", []byte(`{"text":"hi","times":2}`))
	if err != nil || string(out) != `["hi","hi"]` {
		t.Errorf("echo = %s, %v", out, err)
	}
	for _, params := range []string{"", "null"} {
		if out, err := r.Call(ctx, "none", []byte(params)); err != nil || string(out) != `{}` {
			t.Errorf("none(%q) = %s, %v", params, out, err)
		}
	}
}

func TestBinaryResult(t *testing.T) {
	r := NewRouter()
	Handle(r, "bytes", func(context.Context, None) (Binary, error) { return Binary("\x00\xffab"), nil })
	Handle(r, "json", func(context.Context, None) ([]byte, error) { return []byte("ab"), nil })
	ctx := context.Background()
	if out, bin, err := r.Result(ctx, "bytes", nil); err != nil || !bin || string(out) != "\x00\xffab" {
		t.Errorf("Result(bytes) = %q, %v, %v", out, bin, err)
	}
	if out, err := r.Call(ctx, "bytes", nil); err != nil || string(out) != `"AP9hYg=="` {
		t.Errorf("Call(bytes) = %s, %v", out, err)
	}
	if out, bin, err := r.Result(ctx, "json", nil); err != nil || bin || string(out) != `"YWI="` {
		t.Errorf("Result(json) = %s, %v, %v", out, bin, err)
	}
	if _, _, err := r.Result(ctx, "missing", nil); err == nil {
		t.Error("Result of a missing method succeeded")
	}
}

func TestCallErrors(t *testing.T) {
	r := newTestRouter()
	canceled, cancel := context.WithCancel(context.Background())
	cancel()
	for _, tc := range []struct {
		ctx    context.Context
		method string
		params string
		code   Code
		msg    string
	}{
		{context.Background(), "missing", "", CodeUnknownMethod, `unknown method "missing"`},
		{context.Background(), "echo", `{"text":1}`, CodeBadRequest, "echo: invalid parameters"},
		{context.Background(), "echo", `{"text":"a","extra":1}`, CodeBadRequest, `unknown field "extra"`},
		{context.Background(), "echo", `{"text":"a"} {}`, CodeBadRequest, "trailing data"},
		{context.Background(), "echo", `{"text":`, CodeBadRequest, "invalid parameters"},
		{context.Background(), "echo", strings.Repeat(" ", MaxParams+1), CodeBadRequest, "the limit is 1048576"},
		{context.Background(), "typed", "", "wrong_passphrase", "the passphrase is wrong: nope"},
		{context.Background(), "plain", "", CodeInternal, "nope"},
		{canceled, "canceled", "", CodeCanceled, "canceled"},
		{context.Background(), "unencodable", "", CodeInternal, "encoding result"},
	} {
		_, err := r.Call(tc.ctx, tc.method, []byte(tc.params))
		var e *Error
		if !errors.As(err, &e) {
			t.Errorf("%s(%.20q): err = %v, want *Error", tc.method, tc.params, err)
			continue
		}
		if e.Code != tc.code || !strings.Contains(e.Message, tc.msg) {
			t.Errorf("%s(%.20q): %v, want code %s containing %q", tc.method, tc.params, e, tc.code, tc.msg)
		}
	}
	_, err := r.Call(context.Background(), "typed", nil)
	if !errors.Is(err, errNope) {
		t.Errorf("wrapped error lost: %v", err)
	}
}

func TestPerMethodLimit(t *testing.T) {
	r := newTestRouter()
	big := fmt.Appendf(nil, `{"text":%q}`, strings.Repeat("x", 2*MaxParams))
	if out, err := r.Call(context.Background(), "large", big); err != nil || string(out) != fmt.Sprint(2*MaxParams) {
		t.Errorf("large method: %s, %v", out, err)
	}
	if _, err := r.Call(context.Background(), "echo", big); err == nil {
		t.Error("a 2 MiB call to a 1 MiB method was accepted")
	}
	over := fmt.Appendf(nil, `{"text":%q}`, strings.Repeat("x", 3*MaxParams))
	if _, err := r.Call(context.Background(), "large", over); err == nil {
		t.Error("a call over the raised limit was accepted")
	}
}

func TestHandleTwicePanics(t *testing.T) {
	r := newTestRouter()
	defer func() {
		if recover() == nil {
			t.Error("registering a method twice did not panic")
		}
	}()
	Handle(r, "echo", func(context.Context, None) (None, error) { return None{}, nil })
}

func TestConcurrentCalls(t *testing.T) {
	r := newTestRouter()
	errs := make(chan error, 50)
	for i := range 50 {
		go func() {
			out, err := r.Call(context.Background(), "echo", fmt.Appendf(nil, `{"text":"%d","times":1}`, i))
			if err == nil && string(out) != fmt.Sprintf(`["%d"]`, i) {
				err = fmt.Errorf("got %s", out)
			}
			errs <- err
		}()
	}
	for range 50 {
		if err := <-errs; err != nil {
			t.Error(err)
		}
	}
}
