//go:build js && wasm

package store

import (
	"context"
	"fmt"

	"github.com/hack-pad/hackpadfs"
	"github.com/hack-pad/hackpadfs/indexeddb"
)

// OpenIndexedDB opens (creating when missing) the IndexedDB database name as
// a file system. Call it from a goroutine, never synchronously inside a
// js.FuncOf callback: IndexedDB answers through the event loop, which such
// a callback blocks.
func OpenIndexedDB(ctx context.Context, name string) (hackpadfs.FS, error) {
	fsys, err := indexeddb.NewFS(ctx, name, indexeddb.Options{})
	if err != nil {
		return nil, fmt.Errorf("store: opening IndexedDB %q: %w", name, err)
	}
	return fsys, nil
}
