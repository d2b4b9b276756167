package chat

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
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
	// Caption is the sender's text shown with the file (one-to-one
	// chats), at most MaxCaption bytes.
	Caption string `json:"caption,omitempty"`
	State   string `json:"state"`
	// Stored, for a received file not downloaded yet, is how much of it
	// is already stored here (an interrupted download), in file bytes;
	// computed when the message is read, never saved (filesize.go).
	Stored int64 `json:"stored,omitempty"`
}

// fileBody is a file message inside the E2E channel.
type fileBody struct {
	Name    string `json:"name"`
	Type    string `json:"type"`
	Size    int64  `json:"size"`
	Thumb   []byte `json:"thumb,omitempty"`
	Caption string `json:"caption,omitempty"`
	Desc    []byte `json:"desc"` // files.Description (possibly a redirect)
}

// MaxCaption is the longest caption of a file, in UTF-8 bytes.
const MaxCaption = 1000

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
	case len(f.Caption) > MaxCaption:
		return fmt.Errorf("%w: the caption is %d bytes, the limit is %d", ErrTooLong, len(f.Caption), MaxCaption)
	case !utf8.ValidString(f.Caption):
		return fmt.Errorf("%w: the caption is not valid text", ErrInvalid)
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
	if err := p.m.CheckRelay(relay); err != nil {
		return nil, err
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

// Progress reports bytes done of a transfer, in bytes of the file: total
// is the file's size (not its padded chunks on the relay; filesize.go).
type Progress func(done, total int64)

// ErrNotSameFile means the file given to ResumeFile is not the one whose
// upload was interrupted (another size, or other bytes).
var ErrNotSameFile = files.ErrNotSameFile

// SendFile encrypts and uploads a file to the profile's receiving relay
// (in chunks, several in flight, reading src in slices), then sends its
// description to the contact. A file over MaxFileSize is refused before
// anything is read. It is SendFileAs with a random upload ID.
func (p *Profile) SendFile(ctx context.Context, id string, meta FileMeta, src io.ReaderAt, progress Progress) (Message, error) {
	var rnd [12]byte
	if _, err := rand.Read(rnd[:]); err != nil {
		return Message{}, err
	}
	return p.SendFileAs(ctx, id, hex.EncodeToString(rnd[:]), 0, meta, src, progress)
}

// uploadRecord is a file upload that has not finished, kept (encrypted)
// until its message is sent, so that it can be resumed after a reload.
type uploadRecord struct {
	Meta     FileMeta `json:"meta"`
	Modified int64    `json:"modified,omitempty"`
	Upload   []byte   `json:"upload"` // files.Upload
	// Members: a group upload's recipients, in the order of the upload's
	// recipient records (empty for a contact).
	Members []memberID `json:"members,omitempty"`
	// Ready: a group upload is on the relay and its event is about to be
	// signed; after a crash, repairGroups finishes it from here.
	Ready *readyFile `json:"ready,omitempty"`
}

// readyFile is what a group file's event needs once the upload is done.
type readyFile struct {
	Digest []byte              `json:"digest"`
	Descs  map[memberID][]byte `json:"descs"`
	State  []byte              `json:"state"` // files.SenderState
}

// PendingUpload is an upload that did not finish: interrupted by a
// reload, a lost connection or an error. ResumeFile continues it with the
// same file; DiscardUpload drops it.
type PendingUpload struct {
	ID        string `json:"id"`
	Contact   string `json:"contact"`
	Name      string `json:"name"`
	Type      string `json:"type"`
	Size      int64  `json:"size"`
	Thumbnail []byte `json:"thumbnail,omitempty"`
	Modified  int64  `json:"modified,omitempty"` // the file's last change, Unix ms (0 when unknown)
	Done      int64  `json:"done"`               // chunk bytes on the relay
	Total     int64  `json:"total"`
	Broken    bool   `json:"broken,omitempty"` // the record does not decode: it can only be discarded
}

func uploadKey(id, uid string) store.Key { return contactDir(id).Join("up", uid) }

// validUploadID accepts 8 to 64 characters of [A-Za-z0-9_-] (a UUID).
func validUploadID(uid string) bool {
	return len(uid) >= 8 && len(uid) <= 64 && !strings.Contains(uid, "/") && store.Key(uid).Valid()
}

// SendFileAs (for a group entry: SendGroupFileAs) is SendFile with an upload ID chosen by the caller (8 to 64
// characters of [A-Za-z0-9_-]) and the file's modification time (Unix
// ms, 0 when unknown). The upload is recorded before anything is
// uploaded and after each chunk, so that when it is interrupted (a
// reload, a lost connection, a failed read) PendingUploads lists it and
// ResumeFile continues it from the chunks already on the relay. Cancelling
// ctx (context.Canceled) abandons it: its chunks are deleted.
func (p *Profile) SendFileAs(ctx context.Context, id, uid string, modified int64, meta FileMeta, src io.ReaderAt, progress Progress) (Message, error) {
	if ok, err := p.st.Has(groupKey(id)); err == nil && ok && validContactID(id) {
		return p.SendGroupFileAs(ctx, id, uid, modified, meta, src, progress)
	}
	body := fileBody{Name: meta.Name, Type: meta.Type, Size: meta.Size, Thumb: meta.Thumbnail, Caption: meta.Caption}
	if err := body.validate(); err != nil {
		return Message{}, err
	}
	if !validContactID(id) {
		return Message{}, fmt.Errorf("%w: %q", ErrNoContact, id)
	}
	if !validUploadID(uid) {
		return Message{}, fmt.Errorf("%w: upload ID %q", ErrInvalid, uid)
	}
	relay, err := p.receiveRelay()
	if err != nil {
		return Message{}, err
	}
	p.mu.Lock()
	_, err = p.contact(id)
	p.mu.Unlock()
	if err != nil {
		return Message{}, err
	}
	if err := p.refuseLeft(id); err != nil {
		return Message{}, err
	}
	up, err := files.NewUpload(relay, meta.Size)
	if err != nil {
		return Message{}, err
	}
	rec := &uploadRecord{Meta: meta, Modified: modified}
	if ok, err := p.st.Has(uploadKey(id, uid)); err != nil || ok {
		return Message{}, errors.Join(err, fmt.Errorf("%w: upload %s exists", ErrInvalid, uid))
	}
	if err := p.saveUpload(id, uid, rec, up); err != nil {
		return Message{}, err
	}
	return p.upload(ctx, id, uid, rec, up, src, progress)
}

// saveUpload records an unfinished upload.
func (p *Profile) saveUpload(id, uid string, rec *uploadRecord, up *files.Upload) error {
	b, err := up.MarshalBinary()
	if err != nil {
		return err
	}
	rec.Upload = b
	return putJSON(p.st, uploadKey(id, uid), rec)
}

// Errors of loadUpload.
var (
	errNoUpload     = fmt.Errorf("%w: no such unfinished upload", ErrInvalid)
	errBrokenUpload = fmt.Errorf("%w: the upload's record does not decode", ErrInvalid)
)

// loadUpload reads an unfinished upload.
func (p *Profile) loadUpload(id, uid string) (*uploadRecord, *files.Upload, error) {
	if !validContactID(id) || !validUploadID(uid) {
		return nil, nil, fmt.Errorf("%w: upload %q of %q", ErrInvalid, uid, id)
	}
	var rec uploadRecord
	err := getJSON(p.st, uploadKey(id, uid), &rec)
	var syntax *json.SyntaxError
	var typ *json.UnmarshalTypeError
	switch {
	case errors.Is(err, store.ErrNotFound):
		return nil, nil, errNoUpload
	case errors.Is(err, store.ErrCorrupt), errors.As(err, &syntax), errors.As(err, &typ):
		return nil, nil, fmt.Errorf("%w: %w", errBrokenUpload, err)
	case err != nil:
		return nil, nil, err
	}
	up, err := files.UnmarshalUpload(rec.Upload)
	if err != nil {
		return nil, nil, fmt.Errorf("%w: %w", errBrokenUpload, err)
	}
	return &rec, up, nil
}

// running is an upload in progress, which DeleteContact stops.
type running struct {
	cancel context.CancelFunc
	done   chan struct{}
}

// claimUpload marks an upload as running under a context that
// DeleteContact can cancel; release ends it.
func (p *Profile) claimUpload(ctx context.Context, id, uid string) (_ context.Context, release func(), _ error) {
	p.fmu.Lock()
	defer p.fmu.Unlock()
	key := id + "/" + uid
	if p.uploading[key] != nil {
		return nil, nil, fmt.Errorf("%w: the file is already being sent", ErrInvalid)
	}
	if p.uploading == nil {
		p.uploading = map[string]*running{}
	}
	ctx, cancel := context.WithCancel(ctx)
	r := &running{cancel: cancel, done: make(chan struct{})}
	p.uploading[key] = r
	return ctx, func() {
		p.fmu.Lock()
		delete(p.uploading, key)
		p.fmu.Unlock()
		cancel()
		close(r.done)
	}, nil
}

// stopUploads cancels the contact's running uploads and waits (a bounded
// time) for them to end.
func (p *Profile) stopUploads(id string) {
	p.fmu.Lock()
	var stopped []*running
	for key, r := range p.uploading {
		if strings.HasPrefix(key, id+"/") {
			r.cancel()
			stopped = append(stopped, r)
		}
	}
	p.fmu.Unlock()
	for _, r := range stopped {
		select {
		case <-r.done:
		case <-time.After(discardTimeout + 5*time.Second):
		}
	}
}

// upload runs a recorded upload to its end: every chunk on the relay,
// the description sent, the record replaced by the message.
func (p *Profile) upload(ctx context.Context, id, uid string, rec *uploadRecord, up *files.Upload, src io.ReaderAt, progress Progress) (Message, error) {
	ctx, release, err := p.claimUpload(ctx, id, uid)
	if err != nil {
		return Message{}, err
	}
	defer release()
	progress = plainProgress(progress, rec.Meta.Size)
	if len(rec.Members) > 0 {
		return p.groupUpload(ctx, id, uid, rec, up, src, progress)
	}
	abandon := func(err error) (Message, error) {
		if errors.Is(err, context.Canceled) {
			err = errors.Join(err, p.discard(context.WithoutCancel(ctx), id, uid, up))
		}
		return Message{}, err
	}
	fc, err := p.fileClient(ctx, up.Relay)
	if err != nil {
		return abandon(err)
	}
	desc, _, err := files.Send(ctx, fc, up.Relay, src, rec.Meta.Size, files.SendOptions{
		Progress: files.Progress(progress),
		Upload:   up,
		Uploaded: func(u *files.Upload) error { return p.saveUpload(id, uid, rec, u) },
	})
	if err != nil {
		return abandon(err)
	}
	body := fileBody{Name: rec.Meta.Name, Type: rec.Meta.Type, Size: rec.Meta.Size, Thumb: rec.Meta.Thumbnail, Caption: rec.Meta.Caption}
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
		outer, _, err := files.Redirect(ctx, fc, up.Relay, desc, files.SendOptions{})
		if err != nil {
			return abandon(err)
		}
		if body.Desc, err = outer.MarshalBinary(); err != nil {
			return Message{}, err
		}
		if encoded, err = json.Marshal(body); err != nil {
			return Message{}, err
		}
		if 1+len(encoded) > fileRecordLimit {
			// A long caption and a thumbnail together: the thumbnail goes.
			body.Thumb = nil
			if encoded, err = json.Marshal(body); err != nil {
				return Message{}, err
			}
		}
	}
	agentID, err := p.ag.Send(ctx, agent.ConnID(id), append([]byte{bodyFile}, encoded...))
	if err != nil {
		if errors.Is(err, agent.ErrNoConnection) { // the contact is gone
			return Message{}, errors.Join(fmt.Errorf("%w: %s", ErrNoContact, id), p.discard(context.WithoutCancel(ctx), id, uid, up))
		}
		return abandon(err)
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	meta := rec.Meta
	meta.State = FileSent
	m, err := p.storeOutgoingMessage(id, agentID, Message{Text: meta.Name, File: &meta}, time.Now().UTC())
	if err != nil {
		return m, err
	}
	// The message is out: a crash before this leaves the upload listed,
	// and resuming it would send the file a second time.
	return m, p.st.Delete(uploadKey(id, uid))
}

// PendingUploads lists the contact's unfinished uploads, oldest first. A
// record that no longer decodes is listed as Broken, so that it can be
// discarded.
func (p *Profile) PendingUploads(id string) ([]PendingUpload, error) {
	if !validContactID(id) {
		return nil, fmt.Errorf("%w: %q", ErrNoContact, id)
	}
	keys, err := p.st.List(contactDir(id).Join("up"))
	if err != nil {
		return nil, err
	}
	out := []PendingUpload{}
	for _, k := range keys {
		rec, up, err := p.loadUpload(id, k.Base())
		switch {
		case errors.Is(err, errNoUpload):
			continue // finished or discarded meanwhile
		case errors.Is(err, errBrokenUpload):
			out = append(out, PendingUpload{ID: k.Base(), Contact: id, Name: "unreadable upload", Broken: true})
			continue
		case err != nil:
			return nil, err
		}
		done, total := up.Bytes()
		out = append(out, PendingUpload{ID: k.Base(), Contact: id, Name: rec.Meta.Name, Type: rec.Meta.Type, Size: rec.Meta.Size,
			Thumbnail: rec.Meta.Thumbnail, Modified: rec.Modified, Done: done, Total: total})
	}
	return out, nil
}

// ResumeFile continues an unfinished upload with the file, which must be
// the same one (ErrNotSameFile otherwise, and nothing of it is kept): the
// chunks already on the relay are not uploaded again.
func (p *Profile) ResumeFile(ctx context.Context, id, uid string, src io.ReaderAt, size int64, progress Progress) (Message, error) {
	rec, up, err := p.loadUpload(id, uid)
	if err != nil {
		return Message{}, err
	}
	if size != rec.Meta.Size {
		return Message{}, fmt.Errorf("%w: %d bytes, the interrupted file has %d", ErrNotSameFile, size, rec.Meta.Size)
	}
	if err := p.refuseLeft(id); err != nil {
		return Message{}, err
	}
	return p.upload(ctx, id, uid, rec, up, src, progress)
}

// DiscardUpload drops an unfinished upload: its chunks are deleted from
// the relay, then its record here. When the relay cannot be reached the
// record is kept (its keys are the only way to delete the chunks) and the
// error returned; a record that no longer decodes is simply deleted (its
// chunks expire on the relay).
func (p *Profile) DiscardUpload(ctx context.Context, id, uid string) error {
	_, up, err := p.loadUpload(id, uid)
	if errors.Is(err, errBrokenUpload) {
		return p.st.Delete(uploadKey(id, uid))
	}
	if err != nil {
		return err
	}
	ctx, release, err := p.claimUpload(ctx, id, uid)
	if err != nil {
		return err
	}
	defer release()
	return p.discard(ctx, id, uid, up)
}

// discardTimeout bounds deleting an upload's chunks.
const discardTimeout = 30 * time.Second

// discard deletes an upload's chunks, then (only when they are all gone)
// its record.
func (p *Profile) discard(ctx context.Context, id, uid string, up *files.Upload) error {
	ctx, cancel := context.WithTimeout(ctx, discardTimeout)
	defer cancel()
	fc, err := p.fileClient(ctx, up.Relay)
	if err == nil {
		err = files.DeleteSent(ctx, fc, up.SenderState())
	}
	if err != nil {
		return fmt.Errorf("deleting the upload's chunks from the relay: %w", err)
	}
	return p.st.Delete(uploadKey(id, uid))
}

// dropUploads deletes the chunks of the contact's unfinished uploads from
// the relay, best effort: DeleteContact then deletes the records with
// everything else (chunks it could not delete expire on the relay).
func (p *Profile) dropUploads(ctx context.Context, id string) {
	p.stopUploads(id)
	pending, _ := p.PendingUploads(id)
	for _, u := range pending {
		if _, up, err := p.loadUpload(id, u.ID); err == nil {
			_ = p.discard(ctx, id, u.ID, up)
		}
	}
}

func fileDir(id string, seq uint64) store.Key {
	return contactDir(id).Join("f", fmt.Sprintf("%020d", seq))
}

// DownloadFile fetches, stores (one encrypted record per chunk) and
// verifies a received file. It resumes from the chunks already stored.
func (p *Profile) DownloadFile(ctx context.Context, id string, seq uint64, progress Progress) error {
	ctx, untrack := p.trackDownload(ctx, id, seq) // deleting the message stops it (actionflow.go)
	defer untrack()
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
	fc, err := p.downloadRelay(ctx, desc.Relay)
	if err != nil {
		return p.setFileState(id, seq, FileFailed, err)
	}
	dir := fileDir(id, seq)
	opts := files.ReceiveOptions{Progress: files.Progress(plainProgress(progress, rec.File.Size))}
	if desc.Redirect {
		if desc, err = files.Follow(ctx, fc, desc, p.st, dir.Join("redirect"), files.ReceiveOptions{}); err != nil {
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
	if rec.Digest != nil && !bytes.Equal(rec.Digest, desc.Digest[:]) {
		// A group file: its description came from whoever passed it on,
		// its digest from the author's signed event.
		return p.setFileState(id, seq, FileCorrupted, files.ErrCorrupted)
	}
	if err := files.Receive(ctx, fc, desc, p.st, dir.Join("chunks"), opts); err != nil {
		return p.setFileState(id, seq, fileFailure(err), err)
	}
	if rec.Author != "" {
		p.fileGot(id, rec)
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
	if rec.File == nil { // deleted while it downloaded
		return errors.Join(err, p.discardDeletedFile(id, rec))
	}
	rec.File.State = state
	rec.Reason = ""
	if err != nil {
		rec.Reason = err.Error()
	}
	if perr := putJSON(p.st, msgKey(id, seq), rec); perr != nil {
		return errors.Join(err, perr)
	}
	m := p.view(id, rec)
	p.fillStored(id, rec)
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
