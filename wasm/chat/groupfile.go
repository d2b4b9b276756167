package chat

import (
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"math"
	"time"

	"github.com/wisp-chat/wisp/wasm/files"
	"github.com/wisp-chat/wisp/wasm/store"
)

// Group files. A file is encrypted and uploaded once, with one recipient
// ID per member (files.SendMany); the signed file event carries what every
// member sees and the file's digest, and each member's copy of the event
// carries that member's own download description beside it. A member who
// downloaded the file tells its author ("got"); when every member still in
// the group has, the author deletes the chunks (the relay's dummy
// recipients never acknowledge, so it would otherwise keep them until they
// expire).

// sentFile is an uploaded group file whose chunks are still on the relay,
// in c/<id>/gf/<event seq>.
type sentFile struct {
	State   []byte     `json:"state"`   // files.SenderState
	Waiting []memberID `json:"waiting"` // members who have not downloaded it
}

func sentFileKey(id string, seq uint64) store.Key {
	return contactDir(id).Join("gf", fmt.Sprintf("%020d", seq))
}

// SendGroupFile uploads a file once for every member and sends it to the
// group. Like SendFile it is resumable (PendingUploads, ResumeFile).
func (p *Profile) SendGroupFile(ctx context.Context, id string, meta FileMeta, src io.ReaderAt, progress Progress) (Message, error) {
	var rnd [12]byte
	if _, err := rand.Read(rnd[:]); err != nil {
		return Message{}, err
	}
	return p.SendGroupFileAs(ctx, id, hex.EncodeToString(rnd[:]), 0, meta, src, progress)
}

// SendGroupFileAs is SendGroupFile with the caller's upload ID (see
// SendFileAs).
func (p *Profile) SendGroupFileAs(ctx context.Context, id, uid string, modified int64, meta FileMeta, src io.ReaderAt, progress Progress) (Message, error) {
	body := fileBody{Name: meta.Name, Type: meta.Type, Size: meta.Size, Thumb: meta.Thumbnail}
	if err := body.validate(); err != nil {
		return Message{}, err
	}
	if !validUploadID(uid) {
		return Message{}, fmt.Errorf("%w: upload ID %q", ErrInvalid, uid)
	}
	relay, err := p.receiveRelay()
	if err != nil {
		return Message{}, err
	}
	p.mu.Lock()
	g, err := p.loadGroup(id)
	var to []memberID
	if err == nil {
		to, err = g.postTo()
	}
	p.mu.Unlock()
	if err != nil {
		return Message{}, err
	}
	up, err := files.NewUploadMany(relay, meta.Size, len(to))
	if err != nil {
		return Message{}, err
	}
	rec := &uploadRecord{Meta: meta, Modified: modified, Members: to}
	if ok, err := p.st.Has(uploadKey(id, uid)); err != nil || ok {
		return Message{}, errors.Join(err, fmt.Errorf("%w: upload %s exists", ErrInvalid, uid))
	}
	if err := p.saveUpload(id, uid, rec, up); err != nil {
		return Message{}, err
	}
	return p.upload(ctx, id, uid, rec, up, src, progress)
}

// postTo checks we may post and returns who a post goes to.
func (g *groupRecord) postTo() ([]memberID, error) {
	if g.State != GroupActive {
		return nil, ErrGroupClosed
	}
	if me := g.Roster.Members[g.Me]; me == nil || me.Role.rank() < RoleMember.rank() {
		return nil, fmt.Errorf("%w: observers cannot post", ErrNotAllowed)
	}
	to := g.others()
	if len(to) == 0 {
		return nil, fmt.Errorf("%w: nobody else is in the group yet", ErrInvalid)
	}
	if len(to) > files.MaxRecipients {
		return nil, fmt.Errorf("%w: %d members", ErrTooLong, len(to))
	}
	return to, nil
}

// groupUpload runs a recorded group upload to its end (the caller holds
// the upload's claim).
func (p *Profile) groupUpload(ctx context.Context, id, uid string, rec *uploadRecord, up *files.Upload, src io.ReaderAt, progress Progress) (Message, error) {
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
	descs, state, err := files.SendMany(ctx, fc, up.Relay, src, rec.Meta.Size, files.SendOptions{
		Progress:   files.Progress(progress),
		Upload:     up,
		Recipients: len(rec.Members),
		Uploaded:   func(u *files.Upload) error { return p.saveUpload(id, uid, rec, u) },
	})
	if err != nil {
		return abandon(err)
	}
	digest := descs[0].Digest
	encode := func(ds []*files.Description) (map[memberID][]byte, error) {
		out := make(map[memberID][]byte, len(ds))
		for i, d := range ds {
			b, err := d.MarshalBinary()
			if err != nil {
				return nil, err
			}
			out[rec.Members[i]] = b
		}
		return out, nil
	}
	encoded, err := encode(descs)
	if err != nil {
		return Message{}, err
	}
	meta := rec.Meta
	event := func() *groupEvent {
		return &groupEvent{Kind: evFile, File: &groupFile{Name: meta.Name, Type: meta.Type, Size: meta.Size, Thumb: meta.Thumbnail, Digest: digest[:]}}
	}
	// Fit the event and its largest description in one message: first as
	// it is, then without the thumbnail, then with each member's
	// description uploaded as a file of its own (a redirect).
	fits := func() error {
		// The longest the real event can be: the largest seq and time.
		ev := event()
		ev.V, ev.Seq, ev.Time = 1, math.MaxUint64, math.MaxInt64
		se, err := signEvent(ed25519.NewKeyFromSeed(make([]byte, ed25519.SeedSize)), ev)
		if err != nil {
			return err
		}
		var largest []byte
		for _, d := range encoded {
			if len(d) > len(largest) {
				largest = d
			}
		}
		return checkFits(groupID{}, se, largest)
	}
	if err := fits(); errors.Is(err, ErrTooLong) && meta.Thumbnail != nil {
		meta.Thumbnail = nil
	}
	if err := fits(); errors.Is(err, ErrTooLong) {
		outer, extra, err := files.RedirectMany(ctx, fc, up.Relay, descs, files.SendOptions{})
		if err != nil {
			return abandon(err)
		}
		state.Chunks = append(state.Chunks, extra.Chunks...)
		if encoded, err = encode(outer); err != nil {
			return Message{}, err
		}
	}
	stateBytes, err := state.MarshalBinary()
	if err != nil {
		return Message{}, err
	}
	rec.Ready = &readyFile{Digest: digest[:], Descs: encoded, State: stateBytes}
	rec.Meta.Thumbnail = meta.Thumbnail
	if err := p.saveUpload(id, uid, rec, up); err != nil {
		return Message{}, err
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	g, err := p.loadGroup(id)
	if err != nil {
		return Message{}, err
	}
	if g.State != GroupActive {
		return abandon(context.Canceled) // the chunks go: nobody will fetch them
	}
	ev, pos, err := p.authorWith(id, g, event(), true, encoded)
	if err != nil {
		return Message{}, err
	}
	meta.State = FileSent
	msg := Message{Contact: id, Seq: pos, Text: meta.Name, File: &meta, Time: time.UnixMilli(ev.Time).UTC(), Status: StatusPending,
		Recipients: len(g.others())}
	if err := p.showMessage(id, &msg, nil); err != nil {
		return Message{}, err
	}
	if err := putJSON(p.st, sentFileKey(id, ev.Seq), sentFile{State: stateBytes, Waiting: rec.Members}); err != nil {
		return Message{}, err
	}
	if err := p.saveGroup(id, g); err != nil {
		return Message{}, err
	}
	// The message is out: a crash before this leaves the upload listed.
	return msg, p.st.Delete(uploadKey(id, uid))
}

// fileGot tells a group file's author that we downloaded it.
func (p *Profile) fileGot(id string, rec *messageRecord) {
	author, err := parseMember(rec.Author)
	if err != nil || rec.EventSeq == 0 {
		return
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	g, err := p.loadGroup(id)
	if err != nil || g.State != GroupActive {
		return
	}
	// Over our own connection only (the author ignores a forwarded got).
	err = p.enqueueDirect(id, g, &groupWire{T: wGot, Group: g.Roster.ID, Ref: &eventRef{Author: author, Seq: rec.EventSeq}}, author, false)
	if err == nil {
		err = p.saveGroup(id, g)
	}
	if err != nil {
		p.groupProblem("could not tell the sender the file arrived")
	}
}

// gotFile: a member downloaded one of our files; p.mu held.
func (p *Profile) gotFile(id string, from memberID, seq uint64) error {
	var sf sentFile
	err := getJSON(p.st, sentFileKey(id, seq), &sf)
	if errors.Is(err, store.ErrNotFound) {
		return nil
	}
	if err != nil {
		return err
	}
	rest := sf.Waiting[:0]
	for _, m := range sf.Waiting {
		if m != from {
			rest = append(rest, m)
		}
	}
	sf.Waiting = rest
	if err := putJSON(p.st, sentFileKey(id, seq), sf); err != nil {
		return err
	}
	p.pokeGroups(id)
	return nil
}

// sweepFiles deletes the chunks of our files every member still in the
// group has downloaded.
func (p *Profile) sweepFiles(ctx context.Context, id string) (bool, error) {
	p.mu.Lock()
	g, err := p.loadGroup(id)
	if err != nil {
		p.mu.Unlock()
		return false, err
	}
	keys, err := p.st.List(contactDir(id).Join("gf"))
	type done struct {
		key   store.Key
		state []byte
	}
	var ready []done
	for _, k := range keys {
		var sf sentFile
		if err := getJSON(p.st, k, &sf); err != nil {
			p.mu.Unlock()
			return true, err
		}
		waiting := false
		for _, m := range sf.Waiting {
			if it := g.Roster.Members[m]; it != nil && it.active() && g.State == GroupActive {
				waiting = true
			}
		}
		if !waiting {
			ready = append(ready, done{k, sf.State})
		}
	}
	p.mu.Unlock()
	if err != nil {
		return true, err
	}
	more := false
	for _, d := range ready {
		st, err := files.UnmarshalSenderState(d.state)
		if err == nil {
			var fc files.Relay
			if fc, err = p.fileClient(ctx, st.Relay); err == nil {
				err = files.DeleteSent(ctx, fc, st)
			}
		}
		if err != nil {
			more = true
			continue
		}
		p.mu.Lock()
		err = p.st.Delete(d.key)
		p.mu.Unlock()
		if err != nil {
			return true, err
		}
	}
	return more, nil
}
