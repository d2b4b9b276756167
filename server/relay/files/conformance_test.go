package files_test

import (
	"testing"

	"github.com/wisp-chat/wisp/server/relay/files"
	"github.com/wisp-chat/wisp/server/relay/files/filestest"
)

// TestConformance runs the Backend conformance suite (package
// filestest) against the bbolt store; pgfiles runs it against
// PostgreSQL.
func TestConformance(t *testing.T) {
	filestest.Run(t, func(t *testing.T, dir string, quota int64) files.Backend {
		s, err := files.OpenStore(dir, quota)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = s.Close() })
		return s
	})
}
