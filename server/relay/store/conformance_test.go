package store_test

import (
	"path/filepath"
	"testing"

	"github.com/wisp-chat/wisp/server/relay/store"
	"github.com/wisp-chat/wisp/server/relay/store/storetest"
)

// TestConformance runs the suite every backend passes (package
// storetest) against the bbolt store.
func TestConformance(t *testing.T) {
	storetest.Run(t, func(t *testing.T, opts store.Options) storetest.Opener {
		path := filepath.Join(t.TempDir(), "q.db")
		return func() (store.Backend, error) { return store.OpenWith(path, opts) }
	})
}
