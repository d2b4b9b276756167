//go:build !js

package files

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/wisp-chat/wisp/server/wire/client"
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
	up, saved, persist := newPersisted(t, r, int64(len(plain)))
	_, _, err := Send(ctx, fc, r.addr, failingSource{plain, 13 * mib}, int64(len(plain)), SendOptions{Upload: up, Uploaded: persist})
	if !errors.Is(err, errSourceFailed) {
		t.Fatalf("interrupted Send: %v", err)
	}
	resumed, err := UnmarshalUpload(*saved)
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

	// Another file of the same size, equal to the right one except in the
	// last recorded chunk: refused before anything of it is created,
	// uploaded or recorded (the chunks before it, not recorded in other
	// cases, would otherwise go to the relay first).
	// Chunk 0 is made never to have started, so a gap precedes the
	// recorded chunks.
	if err := fc.DeleteChunk(ctx, resumed.Chunks[0].Sender); err != nil {
		t.Fatal(err)
	}
	resumed.Chunks = resumed.Chunks[1:]
	if *saved, err = resumed.MarshalBinary(); err != nil {
		t.Fatal(err)
	}
	n--
	other := bytes.Clone(plain)
	other[resumed.Chunks[len(resumed.Chunks)-1].Index*4*mib+100] ^= 1
	creates, uploads, savedBefore := fc.creates.Load(), fc.uploads.Load(), bytes.Clone(*saved)
	if _, _, err := Send(ctx, fc, r.addr, bytes.NewReader(other), int64(len(other)), SendOptions{Upload: resumed, Uploaded: persist}); !errors.Is(err, ErrNotSameFile) {
		t.Fatalf("resume with another file: %v", err)
	}
	if fc.creates.Load() != creates || fc.uploads.Load() != uploads || !bytes.Equal(*saved, savedBefore) || len(r.chunkFiles(t)) != n {
		t.Fatalf("the wrong file reached the relay or the record: %d creates, %d uploads, %d chunk files", fc.creates.Load()-creates, fc.uploads.Load()-uploads, len(r.chunkFiles(t)))
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

// newPersisted returns a new Upload of size bytes to r, the last state
// it was persisted in (as the chat layer keeps it), and the
// SendOptions.Uploaded that persists it.
func newPersisted(t *testing.T, r *testRelay, size int64) (*Upload, *[]byte, func(*Upload) error) {
	t.Helper()
	up, err := NewUpload(r.addr, size)
	if err != nil {
		t.Fatal(err)
	}
	saved := new([]byte)
	return up, saved, func(u *Upload) (err error) {
		*saved, err = u.MarshalBinary()
		return err
	}
}

// unconfirmed passes FPUTs to the relay and then reports the first one as
// lost, as when the page is reloaded before the relay's answer arrives.
type unconfirmed struct {
	*counted
	lost atomic.Bool
}

func (u *unconfirmed) Upload(ctx context.Context, s client.SenderChunk, data []byte) error {
	if err := u.counted.Upload(ctx, s, data); err != nil {
		return err
	}
	if u.lost.CompareAndSwap(false, true) {
		return client.ErrConnectionLost
	}
	return nil
}

// TestResumeUnconfirmedChunk: a chunk whose bytes reached the relay
// without the answer reaching the sender is recorded, with its
// fingerprint, as started. A resume with a file that differs in it is
// refused (sending other bytes under the same key and chunk index would
// reuse a STREAM nonce); the right file resumes and is received intact.
func TestResumeUnconfirmedChunk(t *testing.T) {
	r := startRelay(t)
	fc := &unconfirmed{counted: &counted{Relay: dialRelay(t, r)}}
	ctx := testContext(t)
	plain := randBytes(t, 10*mib)
	up, saved, persist := newPersisted(t, r, int64(len(plain)))
	if _, _, err := Send(ctx, fc, r.addr, bytes.NewReader(plain), int64(len(plain)), SendOptions{Upload: up, Uploaded: persist, InFlight: 1, Retries: -1}); !errors.Is(err, client.ErrConnectionLost) {
		t.Fatalf("Send with a lost answer: %v", err)
	}
	resumed, err := UnmarshalUpload(*saved)
	if err != nil || len(resumed.Chunks) != 1 || resumed.Chunks[0].Done {
		t.Fatalf("recorded %+v, %v", resumed, err)
	}
	if done, _ := resumed.Bytes(); done != 0 {
		t.Fatalf("an unconfirmed chunk counts as on the relay: %d", done)
	}
	other := bytes.Clone(plain)
	other[5] ^= 1
	uploads := fc.uploads.Load()
	if _, _, err := Send(ctx, fc, r.addr, bytes.NewReader(other), int64(len(other)), SendOptions{Upload: resumed, Uploaded: persist}); !errors.Is(err, ErrNotSameFile) {
		t.Fatalf("resume with a file that differs in the unconfirmed chunk: %v", err)
	}
	if fc.uploads.Load() != uploads {
		t.Fatal("other bytes were uploaded under the same key and chunk index")
	}
	d, _, err := Send(ctx, fc, r.addr, bytes.NewReader(plain), int64(len(plain)), SendOptions{Upload: resumed, Uploaded: persist})
	if err != nil {
		t.Fatal(err)
	}
	st, _ := newMemStore(t)
	if err := Receive(ctx, fc, d, st, "files/f1", ReceiveOptions{}); err != nil {
		t.Fatal(err)
	}
	if got, err := readAll(st, "files/f1", d); err != nil || !bytes.Equal(got, plain) {
		t.Fatalf("received file differs: %v", err)
	}
	// The first copy of the unconfirmed chunk was deleted when it was sent again.
	if n := len(r.chunkFiles(t)); n != 0 {
		t.Errorf("%d chunk files left after the download", n)
	}
}

// TestUploadEncoding round-trips an Upload and refuses every truncation,
// extension and inconsistent field.
func TestUploadEncoding(t *testing.T) {
	d := fakeDescription(t, 20*mib, "relay.example")
	snd := fakeSenderChunk(t, d.Class)
	u := &Upload{Size: d.Size, Key: d.Key, Relay: d.Relay}
	for _, i := range []int{3, 0, 4} {
		u.put(UploadedChunk{Index: i, Done: i != 4, Sender: snd, Recipients: []client.RecipientChunk{d.Chunks[i]}, Fingerprint: [32]byte{byte(i)}})
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
	if !bytes.Equal(again, b) || len(got.Chunks) != 3 || got.Chunks[1].Index != 3 || got.Chunks[2].Fingerprint[0] != 4 || got.Chunks[2].Done || !got.Chunks[1].Done {
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
	bad("chunk of another class", func(c *Upload) {
		c.Chunks[0].Recipients = []client.RecipientChunk{c.Chunks[0].Recipients[0]}
		c.Chunks[0].Recipients[0].Class = d.Class - 1
	})
	bad("two recipient records for one recipient", func(c *Upload) {
		c.Chunks[0].Recipients = append(c.Chunks[0].Recipients, c.Chunks[0].Recipients[0])
	})
	bad("no recipient record", func(c *Upload) { c.Chunks[0].Recipients = nil })
	bad("too many recipients", func(c *Upload) { c.Recipients = MaxRecipients + 1 })
	bad("negative recipients", func(c *Upload) { c.Recipients = -1 })
	// The version byte, and a size changed in the encoding so that the
	// chunk indexes no longer fit.
	doneFlag := len(b) - UploadedChunkSize + 2 // of the last chunk
	for _, change := range []func([]byte){func(b []byte) { b[0] = 2 }, func(b []byte) { b[5] = 0 } /* 20 MiB becomes 4 MiB */, func(b []byte) { b[doneFlag] = 2 }} {
		e := bytes.Clone(b)
		change(e)
		if _, err := UnmarshalUpload(e); !errors.Is(err, ErrInvalidDescription) {
			t.Errorf("changed encoding decoded: %v", err)
		}
	}
	if s := fmt.Sprint(u); strings.Contains(s, fmt.Sprint(d.Key)) || strings.Contains(s, string(snd.SndID[:4])) {
		t.Errorf("an Upload prints secrets: %s", s)
	}
	if _, err := NewUpload(d.Relay, MaxFileSize+1); !errors.Is(err, ErrTooLarge) {
		t.Errorf("NewUpload over the limit: %v", err)
	}
}
