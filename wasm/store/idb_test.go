//go:build js && wasm

package store

import (
	"context"
	"fmt"
	"sync/atomic"
	"testing"

	"github.com/hack-pad/hackpadfs"
)

var dbCounter atomic.Int64

// TestIndexedDB runs the store's tests on the browser's real IndexedDB.
func TestIndexedDB(t *testing.T) {
	testStore(t, func(t *testing.T) hackpadfs.FS {
		fsys, err := OpenIndexedDB(context.Background(), fmt.Sprintf("wisp-store-test-%d", dbCounter.Add(1)))
		if err != nil {
			t.Fatal(err)
		}
		return fsys
	})
}
