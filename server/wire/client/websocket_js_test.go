//go:build js

package client

import (
	"context"
	"errors"
	"testing"
	"time"
)

// TestBrowserWebSocketDialFails: a refused connection and a malformed
// URL are errors from dialWebSocket, not a hang or a panic.
func TestBrowserWebSocketDialFails(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	if _, err := dialWebSocket(ctx, "ws://127.0.0.1:1/wisp"); err == nil || errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("dial to a closed port: %v", err)
	}
	if _, err := dialWebSocket(ctx, "not a url"); err == nil {
		t.Fatal("dial to a malformed URL succeeded")
	}
}
