package buildinfo

import (
	"runtime"
	"testing"
)

func TestRead(t *testing.T) {
	info := Read()
	if info.Version != Version {
		t.Errorf("Version = %q, want %q", info.Version, Version)
	}
	if info.Go != runtime.Version() {
		t.Errorf("Go = %q, want %q", info.Go, runtime.Version())
	}
}
