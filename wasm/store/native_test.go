//go:build !js

package store

import (
	"testing"

	"github.com/hack-pad/hackpadfs"
	"github.com/hack-pad/hackpadfs/mem"
	osfs "github.com/hack-pad/hackpadfs/os"
)

func TestMemFS(t *testing.T) {
	testStore(t, func(t *testing.T) hackpadfs.FS {
		fsys, err := mem.NewFS()
		if err != nil {
			t.Fatal(err)
		}
		return fsys
	})
}

func TestOSFS(t *testing.T) {
	testStore(t, func(t *testing.T) hackpadfs.FS {
		root, err := osfs.NewFS().Sub(t.TempDir()[1:])
		if err != nil {
			t.Fatal(err)
		}
		return root
	})
}
