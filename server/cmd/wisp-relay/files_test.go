package main

import (
	"bytes"
	"context"
	"crypto/rand"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
	"time"

	"github.com/wisp-chat/wisp/server/wire"
	"github.com/wisp-chat/wisp/server/wire/client"
)

// TestRelayBinaryFiles: the binary serves the file endpoint from the
// -files folder, answers QUOTA past -files-quota and keeps chunks across
// a restart.
func TestRelayBinaryFiles(t *testing.T) {
	if testing.Short() {
		t.Skip("builds the binary")
	}
	bin := build(t)
	data := filepath.Join(t.TempDir(), "data")
	fdir := filepath.Join(t.TempDir(), "chunks")
	// Room for one 1 MiB chunk and its records, not for 64 KiB more.
	args := []string{"-listen", "127.0.0.1:0", "-data", data, "-files", fdir, "-files-quota", "1081344", "-files-retention", "1h"}
	p := start(t, bin, args...)
	ctx, cancel := context.WithTimeout(context.Background(), scaled(30*time.Second))
	defer cancel()
	c, err := client.DialFiles(ctx, p.addr, client.Options{})
	if err != nil {
		t.Fatal(err)
	}
	snd, rcpts, err := c.CreateChunk(ctx, wire.Class1M, 1, nil)
	if err != nil {
		t.Fatal(err)
	}
	chunk := make([]byte, wire.Class1M.Size())
	_, _ = rand.Read(chunk)
	if err := c.Upload(ctx, snd, chunk); err != nil {
		t.Fatal(err)
	}
	// Past the quota: QUOTA at FNEW (if it reserves the chunk's size) or
	// at FPUT (if only the upload is charged).
	snd2, _, err := c.CreateChunk(ctx, wire.Class64K, 1, nil)
	if err == nil {
		err = c.Upload(ctx, snd2, make([]byte, wire.Class64K.Size()))
	}
	if !errors.Is(err, wire.CodeQuota) {
		t.Fatalf("past -files-quota: %v", err)
	}
	if _, err := os.Stat(filepath.Join(fdir, "chunks.db")); err != nil {
		t.Fatalf("-files folder: %v", err)
	}
	_ = c.Close()
	p.stop(t)

	p = start(t, bin, args...)
	c, err = client.DialFiles(ctx, p.addr, client.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	got, err := c.Download(ctx, rcpts[0])
	if err != nil || !bytes.Equal(got, chunk) {
		t.Fatalf("after restart: %v", err)
	}
	p.stop(t)

	for _, bad := range [][]string{{"-files-quota", "0"}, {"-files-retention", "0s"}} {
		cmd := exec.Command(bin, append([]string{"-listen", "127.0.0.1:0", "-data", data}, bad...)...)
		if out, err := cmd.CombinedOutput(); err == nil || !bytes.Contains(out, []byte("must be positive")) {
			t.Fatalf("%v: %v %s", bad, err, out)
		}
	}
}
