//go:build !unix

package files_test

import (
	"net"
	"testing"
)

// smallSendBuffers leaves the listener as it is where socket options are
// not set by these tests.
func smallSendBuffers(l net.Listener) net.Listener { return l }

// dialRawSmallWindow is dialRaw.
func dialRawSmallWindow(t *testing.T, r *testRelay) *raw { return dialRaw(t, r) }
