package chat

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/wisp-chat/wisp/server/wire"
	"github.com/wisp-chat/wisp/server/wire/client"
	"github.com/wisp-chat/wisp/wasm/agent"
	"github.com/wisp-chat/wisp/wasm/files"
	"github.com/wisp-chat/wisp/wasm/store"
)

// File limits.
const (
	// MaxFileSize is the largest file that can be sent (1 GiB).
	MaxFileSize = files.MaxFileSize
	// MaxFileName is the longest file name, in UTF-8 bytes.
	MaxFileName = 255
	// MaxThumbnail is the largest inline thumbnail of an image.
	MaxThumbnail = 6 << 10
)

// File states, as the UI shows them.
const (
	FileSent        = "sent"       // uploaded and announced (outgoing)
	FileAvailable   = "available"  // announced, not downloaded (incoming)
	FileDownloaded  = "downloaded" // stored here, verified
	FileFailed      = "failed"     // download failed; Reason says why, it can be retried
	FileCorrupted   = "corrupted"  // the file did not verify: "file corrupted"
	FileExpired     = "expired"    // the relay no longer has it
	bodyFile        = 'f'
	fileRecordLimit = agent.MaxBody
)

// FileMeta describes a file message.
type FileMeta struct {
	Name      string `json:"name"`
	Type      string `json:"type"`
	Size      int64  `json:"size"`
	Thumbnail []byte `json:"thumbnail,omitempty"`
	State     string `json:"state"`
}

// fileBody is a file message inside the E2E channel.
type fileBody struct {
	Name  string `json:"name"`
	Type  string `json:"type"`
	Size  int64  `json:"size"`
	Thumb []byte `json:"thumb,omitempty"`
	Desc  []byte `json:"desc"` // files.Description (possibly a redirect)
}

func (f *fileBody) validate() error {
	switch {
	case f.Name == "" || len(f.Name) > MaxFileName || !utf8.ValidString(f.Name) || strings.ContainsAny(f.Name, "/\\\x00"):
		return fmt.Errorf("%w: file name", ErrInvalid)
	case len(f.Type) > 127 || !utf8.ValidString(f.Type):
		return fmt.Errorf("%w: file type", ErrInvalid)
	case f.Size < 0 || f.Size > MaxFileSize:
		return fmt.Errorf("%w: file size %d", ErrTooLong, f.Size)
	case len(f.Thumb) > MaxThumbnail:
		return fmt.Errorf("%w: thumbnail of %d bytes", ErrTooLong, len(f.Thumb))
	}
	return nil
}

func decodeFile(b []byte) (*fileBody, error) {
	if len(b) < 1 || b[0] != bodyFile {
		return nil, fmt.Errorf("%w: not a file message", ErrInvalid)
	}
	var f fileBody
	if err := json.Unmarshal(b[1:], &f); err != nil {
		return nil, fmt.Errorf("%w: file message: %w", ErrInvalid, err)
	}
	if err := f.validate(); err != nil {
		return nil, err
	}
	if _, err := files.UnmarshalDescription(f.Desc); err != nil {
		return nil, fmt.Errorf("%w: %w", ErrInvalid, err)
	}
	return &f, nil
}

// fileClient returns the file client of a relay, dialling it once.
func (p *Profile) fileClient(ctx context.Context, relay wire.Address) (*client.FileClient, error) {
	p.fmu.Lock()
	defer p.fmu.Unlock()
	if fc := p.fcs[relay]; fc != nil {
		return fc, nil
	}
	fc, err := client.DialFiles(ctx, relay, p.m.cfg.Client)
	if err != nil {
		return nil, fmt.Errorf("reaching the file relay: %w", err)
	}
	p.fcs[relay] = fc
	return fc, nil
}

func (p *Profile) closeFiles() {
	p.fmu.Lock()
	defer p.fmu.Unlock()
	for k, fc := range p.fcs {
		fc.Close()
		delete(p.fcs, k)
	}
}

// Progress reports bytes done of a transfer.
type Progress func(done, total int64)

// SendFile encrypts and uploads a file to the profile's receiving relay
// (in chunks, several in flight, reading src in slices), then sends its
// description to the contact. A file over MaxFileSize is refused before
// anything is read.
func (p *Profile) SendFile(ctx context.Context, id string, meta FileMeta, src io.ReaderAt, progress Progress) (Message, error) {
	body := fileBody{Name: meta.Name, Type: meta.Type, Size: meta.Size, Thumb: meta.Thumbnail}
	if err := body.validate(); err != nil {
		return Message{}, err
	}
	if !validContactID(id) {
		return Message{}, fmt.Errorf("%w: %q", ErrNoContact, id)
	}
	relay, err := p.receiveRelay()
	if err != nil {
		return Message{}, err
	}
	fc, err := p.fileClient(ctx, relay)
	if err != nil {
		return Message{}, err
	}
	desc, sent, err := files.Send(ctx, fc, relay, src, meta.Size, files.SendOptions{Progress: files.Progress(progress)})
	if err != nil {
		return Message{}, err
	}
	if body.Desc, err = desc.MarshalBinary(); err != nil {
		return Message{}, err
	}
	encoded, err := json.Marshal(body)
	if err != nil {
		return Message{}, err
	}
	if 1+len(encoded) > fileRecordLimit {
		// Too many chunks to describe in one message: upload the
		// description itself and send a pointer to it.
		outer, _, err := files.Redirect(ctx, fc, relay, desc, files.SendOptions{})
		if err != nil {
			_ = files.DeleteSent(context.WithoutCancel(ctx), fc, sent)
			return Message{}, err
		}
		if body.Desc, err = outer.MarshalBinary(); err != nil {
			return Message{}, err
		}
		if encoded, err = json.Marshal(body); err != nil {
			return Message{}, err
		}
	}
	agentID, err := p.ag.Send(ctx, agent.ConnID(id), append([]byte{bodyFile}, encoded...))
	if err != nil {
		_ = files.DeleteSent(context.WithoutCancel(ctx), fc, sent)
		if errors.Is(err, agent.ErrNoConnection) {
			return Message{}, fmt.Errorf("%w: %s", ErrNoContact, id)
		}
		return Message{}, err
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	meta.State = FileSent
	return p.storeOutgoingMessage(id, agentID, Message{Text: meta.Name, File: &meta}, time.Now().UTC())
}

func fileDir(id string, seq uint64) store.Key {
	return contactDir(id).Join("f", fmt.Sprintf("%020d", seq))
}

// DownloadFile fetches, stores (one encrypted record per chunk) and
// verifies a received file. It resumes from the chunks already stored.
func (p *Profile) DownloadFile(ctx context.Context, id string, seq uint64, progress Progress) error {
	p.mu.Lock()
	rec, err := p.getRecord(id, seq)
	p.mu.Unlock()
	if err != nil {
		return err
	}
	if rec.File == nil || !rec.Incoming || rec.FileDesc == nil {
		return fmt.Errorf("%w: not a received file", ErrInvalid)
	}
	desc, err := files.UnmarshalDescription(rec.FileDesc)
	if err != nil {
		return fmt.Errorf("%w: %w", ErrInvalid, err)
	}
	fc, err := p.fileClient(ctx, desc.Relay)
	if err != nil {
		return p.setFileState(id, seq, FileFailed, err)
	}
	dir := fileDir(id, seq)
	opts := files.ReceiveOptions{Progress: files.Progress(progress)}
	if desc.Redirect {
		if desc, err = files.Follow(ctx, fc, desc, p.st, dir.Join("redirect"), opts); err != nil {
			return p.setFileState(id, seq, fileFailure(err), err)
		}
		// Keep the real description, so the redirect is followed once.
		inner, err := desc.MarshalBinary()
		if err != nil {
			return err
		}
		p.mu.Lock()
		if rec, err = p.getRecord(id, seq); err == nil {
			rec.FileDesc = inner
			err = putJSON(p.st, msgKey(id, seq), rec)
		}
		p.mu.Unlock()
		if err != nil {
			return err
		}
	}
	if err := files.Receive(ctx, fc, desc, p.st, dir.Join("chunks"), opts); err != nil {
		return p.setFileState(id, seq, fileFailure(err), err)
	}
	return p.setFileState(id, seq, FileDownloaded, nil)
}

func fileFailure(err error) string {
	switch {
	case errors.Is(err, files.ErrCorrupted), errors.Is(err, wire.CodeInternal):
		// INTERNAL on a download is the relay finding its copy damaged
		// (it checks each chunk's digest before serving it).
		return FileCorrupted
	case errors.Is(err, files.ErrExpired):
		return FileExpired
	}
	return FileFailed
}

// setFileState records a file's state and reports it; it returns err.
func (p *Profile) setFileState(id string, seq uint64, state string, err error) error {
	p.mu.Lock()
	defer p.mu.Unlock()
	rec, gerr := p.getRecord(id, seq)
	if gerr != nil {
		return errors.Join(err, gerr)
	}
	rec.File.State = state
	rec.Reason = ""
	if err != nil {
		rec.Reason = err.Error()
	}
	if perr := putJSON(p.st, msgKey(id, seq), rec); perr != nil {
		return errors.Join(err, perr)
	}
	m := rec.Message
	m.AgentID = rec.AgentID
	p.listen(Event{Kind: "status", Message: &m})
	return err
}

// OpenFile returns a downloaded file's verified content, read from its
// encrypted chunk records in bounded memory.
func (p *Profile) OpenFile(id string, seq uint64) (io.Reader, FileMeta, error) {
	p.mu.Lock()
	rec, err := p.getRecord(id, seq)
	p.mu.Unlock()
	if err != nil {
		return nil, FileMeta{}, err
	}
	if rec.File == nil || rec.File.State != FileDownloaded {
		return nil, FileMeta{}, fmt.Errorf("%w: the file is not downloaded", ErrInvalid)
	}
	desc, err := files.UnmarshalDescription(rec.FileDesc) // the real one after a download
	if err != nil {
		return nil, FileMeta{}, err
	}
	r, err := files.Open(p.st, fileDir(id, seq).Join("chunks"), desc)
	return r, *rec.File, err
}
