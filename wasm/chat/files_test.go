//go:build !js

package chat

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/sha256"
	"errors"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/hack-pad/hackpadfs"
	"github.com/wisp-chat/wisp/wasm/internal/relaytest"
)

// panicReader fails the test if anything reads it.
type panicReader struct{ t *testing.T }

func (r panicReader) ReadAt([]byte, int64) (int, error) {
	r.t.Error("the file was read")
	return 0, io.EOF
}

func TestSendFile(t *testing.T) {
	r1, r2 := relaytest.Start(t), relaytest.Start(t)
	a := newUser(t, "Kim", "", r1)
	b := newUser(t, "Lou", "", r2)
	ab, ba := connect(t, a, b, false)

	data := make([]byte, 3<<20+7)
	if _, err := rand.Read(data); err != nil {
		t.Fatal(err)
	}
	thumb := []byte("\xff\xd8\xff tiny jpeg")
	var lastDone int64
	m, err := a.p.SendFile(ctxT(t), ab, FileMeta{Name: "holiday.bin", Type: "application/octet-stream", Size: int64(len(data)), Thumbnail: thumb, Caption: "the beach, day 2"},
		bytes.NewReader(data), func(done, total int64) { lastDone = done })
	if err != nil {
		t.Fatal(err)
	}
	if m.File == nil || m.File.State != FileSent || m.Text != "holiday.bin" || lastDone == 0 {
		t.Fatalf("sent message %+v (progress %d)", m, lastDone)
	}
	in := awaitOneMessage(t, b, ba)
	if in.File == nil || in.File.State != FileAvailable || in.File.Size != int64(len(data)) || !bytes.Equal(in.File.Thumbnail, thumb) || in.File.Caption != "the beach, day 2" {
		t.Fatalf("received %+v", in)
	}
	if m.File.Caption != "the beach, day 2" {
		t.Errorf("the sender's copy has caption %q", m.File.Caption)
	}
	if _, _, err := b.p.OpenFile(ba, in.Seq); !errors.Is(err, ErrInvalid) {
		t.Errorf("opening before the download: %v", err)
	}
	if err := b.p.DownloadFile(ctxT(t), ba, in.Seq, nil); err != nil {
		t.Fatal(err)
	}
	rd, meta, err := b.p.OpenFile(ba, in.Seq)
	if err != nil {
		t.Fatal(err)
	}
	got, err := io.ReadAll(rd)
	if err != nil {
		t.Fatal(err)
	}
	if sha256.Sum256(got) != sha256.Sum256(data) || meta.State != FileDownloaded || meta.Name != "holiday.bin" {
		t.Errorf("downloaded %d bytes, state %s", len(got), meta.State)
	}
	// Nothing of the file is readable in either browser's storage.
	for _, u := range []*user{a, b} {
		for name, content := range snapshotFS(t, u) {
			if bytes.Contains([]byte(content), data[1000:1064]) || bytes.Contains([]byte(content), []byte("holiday")) {
				t.Errorf("%s holds file plaintext or its name", name)
			}
		}
	}
}

func TestFileTamperedOnRelay(t *testing.T) {
	r1, r2 := relaytest.Start(t), relaytest.Start(t)
	a := newUser(t, "Max", "", r1)
	b := newUser(t, "Noa", "", r2)
	ab, ba := connect(t, a, b, false)
	data := make([]byte, 300<<10)
	if _, err := rand.Read(data); err != nil {
		t.Fatal(err)
	}
	if _, err := a.p.SendFile(ctxT(t), ab, FileMeta{Name: "doc.pdf", Size: int64(len(data))}, bytes.NewReader(data), nil); err != nil {
		t.Fatal(err)
	}
	// Flip one byte in every chunk file the relay (a's receiving relay) stores.
	flipped := 0
	_ = filepath.WalkDir(r1.FilesDir(), func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() || filepath.Ext(p) == ".db" {
			return err
		}
		b, err := os.ReadFile(p)
		if err != nil || len(b) < 100 {
			return err
		}
		b[len(b)/2] ^= 1
		flipped++
		return os.WriteFile(p, b, 0o600)
	})
	if flipped == 0 {
		t.Fatal("found no chunk file to tamper with")
	}
	in := awaitOneMessage(t, b, ba)
	if err := b.p.DownloadFile(ctxT(t), ba, in.Seq, nil); err == nil {
		t.Fatal("a tampered file downloaded")
	}
	msgs, _ := b.p.Messages(ba, 0, 10)
	if st := msgs[0].File.State; st != FileCorrupted {
		t.Errorf("state after tampering: %s, want %s", st, FileCorrupted)
	}
	if _, _, err := b.p.OpenFile(ba, in.Seq); err == nil {
		t.Error("a tampered file opened")
	}
}

func TestFileLimits(t *testing.T) {
	r := relaytest.Start(t)
	a := newUser(t, "Oli", "", r)
	b := newUser(t, "Pat", "", r)
	ab, _ := connect(t, a, b, false)
	for _, tc := range []struct {
		meta FileMeta
		want error
	}{
		{FileMeta{Name: "huge.iso", Size: MaxFileSize + 1}, ErrTooLong},
		{FileMeta{Name: "", Size: 10}, ErrInvalid},
		{FileMeta{Name: "a/b", Size: 10}, ErrInvalid},
		{FileMeta{Name: strings.Repeat("n", MaxFileName+1), Size: 10}, ErrInvalid},
		{FileMeta{Name: "x", Size: 10, Thumbnail: make([]byte, MaxThumbnail+1)}, ErrTooLong},
		{FileMeta{Name: "neg", Size: -1}, ErrTooLong},
		{FileMeta{Name: "x", Size: 10, Caption: strings.Repeat("c", MaxCaption+1)}, ErrTooLong},
		{FileMeta{Name: "x", Size: 10, Caption: "\xff\xfe"}, ErrInvalid},
	} {
		if _, err := a.p.SendFile(ctxT(t), ab, tc.meta, panicReader{t}, nil); !errors.Is(err, tc.want) {
			t.Errorf("%+v: %v, want %v", tc.meta.Name, err, tc.want)
		}
	}
	if msgs, _ := a.p.Messages(ab, 0, 10); len(msgs) != 0 {
		t.Errorf("refused files left %d messages", len(msgs))
	}
	atLimit := fileBody{Name: strings.Repeat("n", MaxFileName), Size: MaxFileSize, Thumb: make([]byte, MaxThumbnail)}
	if err := atLimit.validate(); err != nil {
		t.Errorf("a file at every limit: %v", err)
	}
}

// snapshotFS returns every file of a user's storage.
func snapshotFS(t *testing.T, u *user) map[string]string {
	t.Helper()
	out := map[string]string{}
	err := hackpadfs.WalkDir(u.fs, ".", func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		b, err := hackpadfs.ReadFile(u.fs, p)
		out[p] = string(b)
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	return out
}

var errUnreadable = errors.New("test: the file can no longer be read")

// unreadableAfter reads like b until offset at, then fails, as a Blob does
// when its page goes away.
type unreadableAfter struct {
	b  []byte
	at int64
}

func (u unreadableAfter) ReadAt(p []byte, off int64) (int, error) {
	if off+int64(len(p)) > u.at {
		return 0, errUnreadable
	}
	return copy(p, u.b[off:]), nil
}

// chunkFileCount counts the chunk files a relay stores.
func chunkFileCount(t *testing.T, r *relaytest.Relay) int {
	t.Helper()
	n := 0
	err := filepath.WalkDir(r.FilesDir(), func(p string, d fs.DirEntry, err error) error {
		if err == nil && !d.IsDir() && filepath.Ext(p) != ".db" {
			n++
		}
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	return n
}

// TestResumeUpload: an upload interrupted half way is listed, refuses
// another file, resumes with the right one from the chunks on the relay,
// and the contact receives the file intact. Cancelling and discarding
// remove an upload and its chunks.
func TestResumeUpload(t *testing.T) {
	r1, r2 := relaytest.Start(t), relaytest.Start(t)
	a := newUser(t, "Ria", "", r1)
	b := newUser(t, "Sol", "", r2)
	ab, ba := connect(t, a, b, false)
	data := make([]byte, 18<<20)
	if _, err := rand.Read(data); err != nil {
		t.Fatal(err)
	}
	meta := FileMeta{Name: "film.mp4", Type: "video/mp4", Size: int64(len(data))}
	const uid = "0b7e6a2c-5d1f-4c3e-9a8b-7f6e5d4c3b2a"
	if _, err := a.p.SendFileAs(ctxT(t), ab, uid, 1700000000000, meta, unreadableAfter{data, 9 << 20}, nil); !errors.Is(err, errUnreadable) {
		t.Fatalf("interrupted upload: %v", err)
	}
	pending, err := a.p.PendingUploads(ab)
	if err != nil || len(pending) != 1 {
		t.Fatalf("pending uploads: %+v, %v", pending, err)
	}
	if p := pending[0]; p.ID != uid || p.Name != "film.mp4" || p.Modified != 1700000000000 || p.Done == 0 || p.Done >= p.Total {
		t.Fatalf("pending upload %+v", p)
	}
	onRelay := chunkFileCount(t, r1)
	if _, err := a.p.SendFileAs(ctxT(t), ab, uid, 0, meta, panicReader{t}, nil); !errors.Is(err, ErrInvalid) {
		t.Errorf("a second upload with the same ID: %v", err)
	}
	for _, ok := range []string{"abcdefgh", strings.Repeat("x", 64), "A-z_09-8"} {
		if !validUploadID(ok) {
			t.Errorf("upload ID %q (within the limits) refused", ok)
		}
	}
	for _, bad := range []string{"", "short", "abcdefg", "a/b/c/d/e/f/g/h/i", strings.Repeat("x", 65), "white space"} {
		if _, err := a.p.SendFileAs(ctxT(t), ab, bad, 0, meta, panicReader{t}, nil); !errors.Is(err, ErrInvalid) {
			t.Errorf("upload ID %q: %v", bad, err)
		}
		if _, err := a.p.ResumeFile(ctxT(t), ab, bad, panicReader{t}, meta.Size, nil); !errors.Is(err, ErrInvalid) {
			t.Errorf("resuming upload ID %q: %v", bad, err)
		}
	}

	other := bytes.Clone(data)
	other[len(other)/3] ^= 1 // in a chunk already uploaded
	if _, err := a.p.ResumeFile(ctxT(t), ab, uid, bytes.NewReader(other), meta.Size, nil); !errors.Is(err, ErrNotSameFile) {
		t.Fatalf("resume with another file: %v", err)
	}
	if _, err := a.p.ResumeFile(ctxT(t), ab, uid, panicReader{t}, meta.Size-1, nil); !errors.Is(err, ErrNotSameFile) {
		t.Fatalf("resume with another size: %v", err)
	}
	if p, _ := a.p.PendingUploads(ab); len(p) != 1 || p[0].Done != pending[0].Done || chunkFileCount(t, r1) != onRelay {
		t.Fatalf("a refused file changed the upload: %+v, %d chunk files (had %d)", p, chunkFileCount(t, r1), onRelay)
	}

	m, err := a.p.ResumeFile(ctxT(t), ab, uid, bytes.NewReader(data), meta.Size, nil)
	if err != nil {
		t.Fatal(err)
	}
	if m.File == nil || m.File.State != FileSent || m.File.Name != "film.mp4" {
		t.Fatalf("resumed message %+v", m)
	}
	if p, err := a.p.PendingUploads(ab); err != nil || len(p) != 0 {
		t.Fatalf("pending after the resume: %+v, %v", p, err)
	}
	if _, err := a.p.ResumeFile(ctxT(t), ab, uid, bytes.NewReader(data), meta.Size, nil); !errors.Is(err, ErrInvalid) {
		t.Errorf("resuming a finished upload: %v", err)
	}
	in := awaitOneMessage(t, b, ba)
	if got := downloadAll(t, b, ba, in.Seq); !bytes.Equal(got, data) {
		t.Fatalf("received %d bytes", len(got))
	}
	if n := chunkFileCount(t, r1); n != 0 {
		t.Errorf("%d chunk files left on the relay after the download", n)
	}

	// Cancelled: nothing left, here or on the relay.
	ctx, cancel := context.WithCancel(ctxT(t))
	_, err = a.p.SendFile(ctx, ab, meta, bytes.NewReader(data), func(done, _ int64) { cancel() })
	if !errors.Is(err, context.Canceled) {
		t.Fatalf("cancelled upload: %v", err)
	}
	if p, _ := a.p.PendingUploads(ab); len(p) != 0 || chunkFileCount(t, r1) != 0 {
		t.Fatalf("after a cancel: %d pending, %d chunk files", len(p), chunkFileCount(t, r1))
	}
	// Discarded: the same.
	if _, err := a.p.SendFileAs(ctxT(t), ab, uid+"-2", 0, meta, unreadableAfter{data, 9 << 20}, nil); !errors.Is(err, errUnreadable) {
		t.Fatal(err)
	}
	if err := a.p.DiscardUpload(ctxT(t), ab, uid+"-2"); err != nil {
		t.Fatal(err)
	}
	if p, _ := a.p.PendingUploads(ab); len(p) != 0 || chunkFileCount(t, r1) != 0 {
		t.Fatalf("after a discard: %d pending, %d chunk files", len(p), chunkFileCount(t, r1))
	}
	if err := a.p.DiscardUpload(ctxT(t), ab, uid+"-2"); !errors.Is(err, ErrInvalid) {
		t.Errorf("discarding twice: %v", err)
	}

	// A discard that cannot reach the relay keeps the record (its keys are
	// the only way to delete the chunks); it works once the relay is back.
	if _, err := a.p.SendFileAs(ctxT(t), ab, uid+"-4", 0, meta, unreadableAfter{data, 9 << 20}, nil); !errors.Is(err, errUnreadable) {
		t.Fatal(err)
	}
	r1.Stop()
	short, cancelShort := context.WithTimeout(ctxT(t), scaled(2*time.Second))
	defer cancelShort()
	if err := a.p.DiscardUpload(short, ab, uid+"-4"); err == nil {
		t.Fatal("a discard without the relay succeeded")
	}
	if p, _ := a.p.PendingUploads(ab); len(p) != 1 {
		t.Fatalf("after a failed discard: %+v", p)
	}
	r1.Restart()
	waitFor(t, "the discard once the relay is back", func() (bool, error) {
		return a.p.DiscardUpload(ctxT(t), ab, uid+"-4") == nil, nil
	})
	if p, _ := a.p.PendingUploads(ab); len(p) != 0 || chunkFileCount(t, r1) != 0 {
		t.Fatalf("after the discard: %d pending, %d chunk files", len(p), chunkFileCount(t, r1))
	}
	// A record that no longer decodes is listed as broken and can be discarded.
	if err := a.p.st.Put(uploadKey(ab, uid+"-5"), []byte("{not json")); err != nil {
		t.Fatal(err)
	}
	if p, err := a.p.PendingUploads(ab); err != nil || len(p) != 1 || !p[0].Broken {
		t.Fatalf("a broken record: %+v, %v", p, err)
	}
	if err := a.p.DiscardUpload(ctxT(t), ab, uid+"-5"); err != nil {
		t.Fatal(err)
	}

	// Deleting the conversation deletes its files and unfinished uploads:
	// no record of the contact is left on either side, and the chunks of
	// the unfinished upload are gone from the relay.
	if _, err := a.p.SendFileAs(ctxT(t), ab, uid+"-3", 0, meta, unreadableAfter{data, 9 << 20}, nil); !errors.Is(err, errUnreadable) {
		t.Fatal(err)
	}
	if chunkFileCount(t, r1) == 0 {
		t.Fatal("the interrupted upload left nothing on the relay")
	}
	for _, side := range []struct {
		u  *user
		id string
	}{{a, ab}, {b, ba}} {
		if err := side.u.p.DeleteContact(ctxT(t), side.id); err != nil {
			t.Fatal(err)
		}
		for name := range snapshotFS(t, side.u) {
			if strings.Contains(name, side.id) {
				t.Errorf("%s is left after deleting the contact", name)
			}
		}
	}
	if n := chunkFileCount(t, r1); n != 0 {
		t.Errorf("%d chunk files of the unfinished upload left on the relay", n)
	}
}
