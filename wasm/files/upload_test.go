//go:build !js

package files

import (
	"bytes"
	"errors"
	"testing"
)

// TestResumeSend interrupts an upload (the file stops being readable half
// way, as when the page is reloaded), then resumes it from the persisted
// Upload: first with another file of the same size (refused, nothing of
// it kept), then with the right one, which uploads only the missing
// chunks and gives a file the recipient receives intact.
func TestResumeSend(t *testing.T) {
	r := startRelay(t)
	fc := &counted{Relay: dialRelay(t, r)}
	ctx := testContext(t)
	plain := randBytes(t, 26*mib)
	up, err := NewUpload(r.addr, int64(len(plain)))
	if err != nil {
		t.Fatal(err)
	}
	var saved []byte
	persist := func(u *Upload) error {
		saved, err = u.MarshalBinary()
		return err
	}
	_, _, err = Send(ctx, fc, r.addr, failingSource{plain, 13 * mib}, int64(len(plain)), SendOptions{Upload: up, Uploaded: persist})
	if !errors.Is(err, errSourceFailed) {
		t.Fatalf("interrupted Send: %v", err)
	}
	resumed, err := UnmarshalUpload(saved)
	if err != nil {
		t.Fatal(err)
	}
	n := len(r.chunkFiles(t))
	if k := len(resumed.Chunks); k == 0 || k != n || k >= 7 {
		t.Fatalf("%d chunks recorded, %d on the relay, of 7", k, n)
	}
	if done, total := resumed.Bytes(); done != int64(n)*int64(resumed.Chunks[0].Sender.Class.Size()) || total <= done {
		t.Fatalf("Bytes() = %d, %d", done, total)
	}

	// Another file of the same size: refused, and what it uploaded is gone.
	other := randBytes(t, len(plain))
	if _, _, err := Send(ctx, fc, r.addr, bytes.NewReader(other), int64(len(other)), SendOptions{Upload: resumed, Uploaded: persist}); !errors.Is(err, ErrNotSameFile) {
		t.Fatalf("resume with another file: %v", err)
	}
	if again, err := UnmarshalUpload(saved); err != nil || len(again.Chunks) != n || len(r.chunkFiles(t)) != n {
		t.Fatalf("after the wrong file: %d recorded, %d on the relay, want %d: %v", len(again.Chunks), len(r.chunkFiles(t)), n, err)
	}
	// Another size: refused before anything is read.
	if _, _, err := Send(ctx, fc, r.addr, &hugeFile{}, int64(len(plain))+1, SendOptions{Upload: resumed}); !errors.Is(err, ErrNotSameFile) {
		t.Fatalf("resume with another size: %v", err)
	}

	before := fc.uploads.Load()
	var first int64 = -1
	d, sent, err := Send(ctx, fc, r.addr, bytes.NewReader(plain), int64(len(plain)), SendOptions{Upload: resumed, Uploaded: persist,
		Progress: func(done, _ int64) {
			if first < 0 {
				first = done
			}
		}})
	if err != nil {
		t.Fatal(err)
	}
	if got := fc.uploads.Load() - before; got != int64(len(d.Chunks)-n) {
		t.Fatalf("the resumed Send uploaded %d chunks, want the %d missing", got, len(d.Chunks)-n)
	}
	st, _ := newMemStore(t)
	if err := Receive(ctx, fc, d, st, "files/f1", ReceiveOptions{}); err != nil {
		t.Fatal(err)
	}
	if got, err := readAll(st, "files/f1", d); err != nil || !bytes.Equal(got, plain) {
		t.Fatalf("the resumed file differs: %v", err)
	}
	if err := DeleteSent(ctx, fc, sent); err != nil {
		t.Fatal(err)
	}
}

// TestUploadEncoding round-trips an Upload and refuses every truncation,
// extension and inconsistent field.
func TestUploadEncoding(t *testing.T) {
	d := fakeDescription(t, 20*mib, "relay.example")
	snd := fakeSenderChunk(t, d.Class)
	u := &Upload{Size: d.Size, Key: d.Key, Relay: d.Relay}
	for _, i := range []int{3, 0, 4} {
		u.add(UploadedChunk{Index: i, Sender: snd, Recipient: d.Chunks[i], Fingerprint: [32]byte{byte(i)}})
	}
	b, err := u.MarshalBinary()
	if err != nil {
		t.Fatal(err)
	}
	got, err := UnmarshalUpload(b)
	if err != nil {
		t.Fatal(err)
	}
	again, _ := got.MarshalBinary()
	if !bytes.Equal(again, b) || len(got.Chunks) != 3 || got.Chunks[1].Index != 3 || got.Chunks[2].Fingerprint[0] != 4 {
		t.Fatalf("round trip changed the upload: %+v", got.Chunks)
	}
	for k := range len(b) {
		if _, err := UnmarshalUpload(b[:k]); !errors.Is(err, ErrInvalidDescription) {
			t.Fatalf("truncated to %d bytes: %v", k, err)
		}
	}
	if _, err := UnmarshalUpload(append(bytes.Clone(b), 0)); !errors.Is(err, ErrInvalidDescription) {
		t.Fatalf("extended: %v", err)
	}
	bad := func(name string, change func(*Upload)) {
		t.Helper()
		c := *u
		c.Chunks = append([]UploadedChunk(nil), u.Chunks...)
		change(&c)
		if _, err := c.MarshalBinary(); !errors.Is(err, ErrInvalidDescription) {
			t.Errorf("%s: %v", name, err)
		}
	}
	bad("size over the limit", func(c *Upload) { c.Size = MaxFileSize + 1 })
	bad("negative size", func(c *Upload) { c.Size = -1 })
	bad("index past the end", func(c *Upload) { c.Chunks[2].Index = len(d.Chunks) })
	bad("indexes out of order", func(c *Upload) { c.Chunks[0], c.Chunks[1] = c.Chunks[1], c.Chunks[0] })
	bad("repeated index", func(c *Upload) { c.Chunks[1].Index = c.Chunks[0].Index })
	bad("chunk of another class", func(c *Upload) { c.Chunks[0].Recipient.Class = d.Class - 1 })
	// The version byte, and a size changed in the encoding so that the
	// chunk indexes no longer fit.
	for _, change := range []func([]byte){func(b []byte) { b[0] = 2 }, func(b []byte) { b[5] = 0 } /* 20 MiB becomes 4 MiB */} {
		e := bytes.Clone(b)
		change(e)
		if _, err := UnmarshalUpload(e); !errors.Is(err, ErrInvalidDescription) {
			t.Errorf("changed encoding decoded: %v", err)
		}
	}
	if _, err := NewUpload(d.Relay, MaxFileSize+1); !errors.Is(err, ErrTooLarge) {
		t.Errorf("NewUpload over the limit: %v", err)
	}
}
