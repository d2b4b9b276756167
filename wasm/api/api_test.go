//go:build !js

package api

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"sync"
	"testing"
	"time"

	"github.com/hack-pad/hackpadfs"
	"github.com/hack-pad/hackpadfs/mem"
	"github.com/wisp-chat/wisp/server/wire/client"
	"github.com/wisp-chat/wisp/wasm/chat"
	"github.com/wisp-chat/wisp/wasm/internal/relaytest"
	"github.com/wisp-chat/wisp/wasm/rpc"
)

type tab struct {
	t         *testing.T
	r         *rpc.Router
	svc       *Service
	mu        sync.Mutex
	events    []chat.Event
	transfers int
}

func newTab(t *testing.T, relay *relaytest.Relay) *tab {
	fsys, err := mem.NewFS()
	if err != nil {
		t.Fatal(err)
	}
	tb := &tab{t: t, r: rpc.NewRouter()}
	tb.svc = New(func(context.Context) (hackpadfs.FS, error) { return fsys, nil }, func(name string, data any) {
		tb.mu.Lock()
		switch d := data.(type) {
		case chat.Event:
			tb.events = append(tb.events, d)
		case Transfer:
			tb.transfers++
		}
		tb.mu.Unlock()
	}, client.Options{MinBackoff: 50 * time.Millisecond})
	tb.svc.Register(tb.r)
	t.Cleanup(tb.svc.Close)
	tb.call("init", InitParams{Origin: "http://127.0.0.1:8080", Relays: []string{relay.Addr().String(), "junk"}}, nil)
	return tb
}

// call runs a method and decodes its result into out; it returns the error.
func (tb *tab) try(method string, params, out any) error {
	tb.t.Helper()
	in, _ := json.Marshal(params)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	res, err := tb.r.Call(ctx, method, in)
	if err != nil {
		return err
	}
	if out != nil {
		if err := json.Unmarshal(res, out); err != nil {
			tb.t.Fatal(err)
		}
	}
	return nil
}

func (tb *tab) call(method string, params, out any) {
	tb.t.Helper()
	if err := tb.try(method, params, out); err != nil {
		tb.t.Fatalf("%s: %v", method, err)
	}
}

// waitConnected waits until the tab's contact id is connected.
func (tb *tab) waitConnected(id string) {
	tb.t.Helper()
	for deadline := time.Now().Add(30 * time.Second); ; time.Sleep(20 * time.Millisecond) {
		var c chat.Contact
		tb.call("contact.get", IDParams{ID: id}, &c)
		if c.State == chat.ContactConnected {
			return
		}
		if time.Now().After(deadline) {
			tb.t.Fatal("not connected")
		}
	}
}

func code(err error) rpc.Code {
	var e *rpc.Error
	if errors.As(err, &e) {
		return e.Code
	}
	return ""
}

func TestFlowThroughTheAPI(t *testing.T) {
	relay := relaytest.Start(t)
	a, b := newTab(t, relay), newTab(t, relay)

	var mem Memory
	a.call("memory", nil, &mem)
	if mem.Sys == 0 || mem.HeapInuse == 0 || mem.HeapInuse > mem.Sys {
		t.Errorf("memory: %+v", mem)
	}
	if err := a.try("contacts.list", nil, nil); code(err) != CodeLocked {
		t.Errorf("before unlock: %v", err)
	}
	var id IDParams
	a.call("profile.create", NewProfileParams{Name: "Ann", Passphrase: "a good passphrase"}, &id)
	if err := a.try("profile.unlock", UnlockParams{ID: id.ID, Passphrase: "wrong one!"}, nil); code(err) != CodeWrongPassphrase {
		t.Errorf("wrong passphrase: %v", err)
	}
	var info chat.ProfileInfo
	a.call("profile.unlock", UnlockParams{ID: id.ID, Passphrase: "a good passphrase"}, &info)
	if info.DisplayName != "Ann" || len(info.Relays) != 1 {
		t.Errorf("profile: %+v", info)
	}
	b.call("profile.create", NewProfileParams{Name: "Bo"}, &id)
	b.call("profile.unlock", UnlockParams{ID: id.ID}, nil)

	var inv chat.Invitation
	a.call("invite.create", InviteParams{}, &inv)
	for link, want := range map[string]rpc.Code{
		"https://example.com/x":                     CodeNotWispLink,
		inv.Link[:len(inv.Link)-5]:                  CodeLinkCorrupted,
		"http://127.0.0.1:8080/#/invite/AAAAAAAAAA": CodeLinkVersion,
	} {
		if err := b.try("link.check", JoinParams{Link: link}, nil); code(err) != want {
			t.Errorf("link.check(%.40q): %v, want %s", link, err, want)
		}
	}
	b.call("link.check", JoinParams{Link: inv.Link}, nil)
	var c chat.Contact
	b.call("join", JoinParams{Link: inv.Link}, &c)
	c2 := newTab(t, relay)
	c2.call("profile.create", NewProfileParams{Name: "Cy"}, &id)
	c2.call("profile.unlock", UnlockParams{ID: id.ID}, nil)
	if err := c2.try("join", JoinParams{Link: inv.Link}, nil); code(err) != CodeInvitationUsed {
		t.Errorf("second join: %v", err)
	}
	b.waitConnected(c.ID)
	deadline := time.Now().Add(30 * time.Second)
	var m chat.Message
	b.call("messages.send", SendParams{Contact: c.ID, Text: "hello Ann"}, &m)
	if err := b.try("messages.send", SendParams{Contact: c.ID, Text: ""}, nil); code(err) != CodeInvalid {
		t.Errorf("empty message: %v", err)
	}
	for {
		a.mu.Lock()
		n := 0
		for _, e := range a.events {
			if e.Kind == "message" && e.Message.Incoming && e.Message.Text == "hello Ann" {
				n++
			}
		}
		a.mu.Unlock()
		if n == 1 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("no message event")
		}
		time.Sleep(20 * time.Millisecond)
	}
	var code1, code2 CodeResult
	a.call("contact.code", IDParams{ID: inv.Contact}, &code1)
	b.call("contact.code", IDParams{ID: c.ID}, &code2)
	if code1.Code == "" || code1 != code2 {
		t.Errorf("codes %q %q", code1.Code, code2.Code)
	}
}

// sizedReader is an attachment of n zero bytes that never allocates them.
type sizedReader struct{ n int64 }

func (r sizedReader) Size() int64 { return r.n }
func (r sizedReader) ReadAt(p []byte, off int64) (int, error) {
	if off >= r.n {
		return 0, io.EOF
	}
	n := min(int64(len(p)), r.n-off)
	clear(p[:n])
	if n < int64(len(p)) {
		return int(n), io.EOF
	}
	return int(n), nil
}

func TestFilesThroughTheAPI(t *testing.T) {
	relay := relaytest.Start(t)
	a, b := newTab(t, relay), newTab(t, relay)
	var id IDParams
	a.call("profile.create", NewProfileParams{Name: "Ann"}, &id)
	a.call("profile.unlock", UnlockParams{ID: id.ID}, nil)
	b.call("profile.create", NewProfileParams{Name: "Bo"}, &id)
	b.call("profile.unlock", UnlockParams{ID: id.ID}, nil)
	var inv chat.Invitation
	a.call("invite.create", InviteParams{}, &inv)
	var joined chat.Contact
	b.call("join", JoinParams{Link: inv.Link}, &joined)
	a.waitConnected(inv.Contact)
	deadline := time.Now().Add(30 * time.Second)
	if err := a.try("file.send", FileSendParams{Contact: inv.Contact, Name: "x"}, nil); code(err) != rpc.CodeBadRequest {
		t.Errorf("file.send without an attachment: %v", err)
	}
	done := make(chan error, 1)
	go func() {
		params, _ := json.Marshal(FileSendParams{Contact: inv.Contact, Name: "big.bin", Transfer: "t1"})
		ctx := rpc.WithAttachment(context.Background(), sizedReader{512 << 20})
		_, err := a.r.Call(ctx, "file.send", params)
		done <- err
	}()
	for {
		a.mu.Lock()
		started := a.transfers > 0
		a.mu.Unlock()
		if started {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("no progress")
		}
		time.Sleep(10 * time.Millisecond)
	}
	a.call("file.cancel", TransferParams{Transfer: "t1"}, nil)
	select {
	case err := <-done:
		if code(err) != rpc.CodeCanceled {
			t.Errorf("cancelled upload: %v, want %s", err, rpc.CodeCanceled)
		}
	case <-time.After(20 * time.Second):
		t.Fatal("the upload did not stop")
	}
	var msgs []chat.Message
	a.call("messages.page", PageParams{Contact: inv.Contact}, &msgs)
	if len(msgs) != 0 {
		t.Errorf("a cancelled upload left %d messages", len(msgs))
	}
	var ups []chat.PendingUpload
	a.call("file.uploads", IDParams{ID: inv.Contact}, &ups)
	if len(ups) != 0 {
		t.Errorf("a cancelled upload is listed: %+v", ups)
	}

	// An upload whose file stops being readable is listed, resumes with
	// the same file, or is refused with another.
	const uid = "5f0c1d2e-3b4a-4c5d-8e9f-a0b1c2d3e4f5"
	params, _ := json.Marshal(FileSendParams{Contact: inv.Contact, Name: "zeros.bin", Upload: uid, Modified: 42})
	if _, err := a.r.Call(rpc.WithAttachment(context.Background(), brokenReader{sizedReader{9 << 20}, 6 << 20}), "file.send", params); code(err) != CodeFileUnreadable {
		t.Fatalf("an unreadable file: %v", err)
	}
	a.call("file.uploads", IDParams{ID: inv.Contact}, &ups)
	if len(ups) != 1 || ups[0].ID != uid || ups[0].Modified != 42 || ups[0].Done == 0 {
		t.Fatalf("pending uploads: %+v", ups)
	}
	resume := func(n int64) error {
		params, _ := json.Marshal(UploadParams{Contact: inv.Contact, Upload: uid, Transfer: "t2"})
		_, err := a.r.Call(rpc.WithAttachment(context.Background(), sizedReader{n}), "file.resume", params)
		return err
	}
	if err := resume(9<<20 + 1); code(err) != CodeNotSameFile {
		t.Errorf("resume with another size: %v", err)
	}
	if err := a.try("file.resume", UploadParams{Contact: inv.Contact, Upload: uid}, nil); code(err) != rpc.CodeBadRequest {
		t.Errorf("file.resume without an attachment: %v", err)
	}
	if err := resume(9 << 20); err != nil {
		t.Fatal(err)
	}
	a.call("file.uploads", IDParams{ID: inv.Contact}, &ups)
	a.call("messages.page", PageParams{Contact: inv.Contact}, &msgs)
	if len(ups) != 0 || len(msgs) != 1 || msgs[0].File == nil || msgs[0].File.Name != "zeros.bin" {
		t.Fatalf("after the resume: %d pending, messages %+v", len(ups), msgs)
	}
	if err := a.try("file.discard", UploadParams{Contact: inv.Contact, Upload: uid}, nil); code(err) != CodeInvalid {
		t.Errorf("discarding a finished upload: %v", err)
	}

	// Bo downloads it and reads it back: 1 MiB parts as raw bytes, the
	// last one shorter (here empty: the file is a whole number of MiB).
	var in []chat.Message
	for deadline := time.Now().Add(30 * time.Second); len(in) == 0; time.Sleep(20 * time.Millisecond) {
		b.call("messages.page", PageParams{Contact: joined.ID}, &in)
		if time.Now().After(deadline) {
			t.Fatal("the file did not arrive")
		}
	}
	if err := b.try("file.open", FileParams{Contact: joined.ID, Seq: in[0].Seq}, nil); code(err) != CodeInvalid {
		t.Errorf("file.open before the download: %v", err)
	}
	b.call("file.download", FileParams{Contact: joined.ID, Seq: in[0].Seq}, nil)
	var opened OpenResult
	b.call("file.open", FileParams{Contact: joined.ID, Seq: in[0].Seq}, &opened)
	var total, parts int
	for {
		params, _ := json.Marshal(ReadParams{Handle: opened.Handle})
		out, bin, err := b.r.Result(context.Background(), "file.read", params)
		if err != nil || !bin || len(out) > ReadSize {
			t.Fatalf("file.read: %d bytes, binary %v, %v", len(out), bin, err)
		}
		total, parts = total+len(out), parts+1
		if len(out) < ReadSize {
			break
		}
	}
	if total != 9<<20 || parts != 10 || opened.File.Name != "zeros.bin" {
		t.Errorf("read %d bytes in %d parts of %+v", total, parts, opened.File)
	}
	if err := b.try("file.read", ReadParams{Handle: opened.Handle}, nil); code(err) != rpc.CodeBadRequest {
		t.Errorf("file.read after the end: %v", err)
	}
}

// brokenReader fails reads past offset at.
type brokenReader struct {
	sizedReader
	at int64
}

func (r brokenReader) ReadAt(p []byte, off int64) (int, error) {
	if off+int64(len(p)) > r.at {
		return 0, fmt.Errorf("%w: test", rpc.ErrUnreadable)
	}
	return r.sizedReader.ReadAt(p, off)
}
