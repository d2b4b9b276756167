//go:build !js

package files

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"

	"github.com/wisp-chat/wisp/crypto/stream"
	"github.com/wisp-chat/wisp/server/wire"
	"github.com/wisp-chat/wisp/server/wire/client"
)

// sendMany sends plain to n recipients and returns their descriptions
// after a trip through their encoding, as each recipient gets its own.
func sendMany(t testing.TB, fc Relay, r *testRelay, plain []byte, n int) ([]*Description, *SenderState) {
	t.Helper()
	ds, st, err := SendMany(testContext(t), fc, r.addr, bytes.NewReader(plain), int64(len(plain)), SendOptions{Recipients: n})
	if err != nil {
		t.Fatalf("SendMany of %d bytes to %d: %v", len(plain), n, err)
	}
	return reencode(t, ds), st
}

// reencode passes each description through MarshalBinary and
// UnmarshalDescription.
func reencode(t testing.TB, ds []*Description) []*Description {
	t.Helper()
	out := make([]*Description, len(ds))
	for k, d := range ds {
		b, err := d.MarshalBinary()
		if err != nil {
			t.Fatal(err)
		}
		if out[k], err = UnmarshalDescription(b); err != nil {
			t.Fatal(err)
		}
	}
	return out
}

// receiveAs receives the file of d into a fresh store as one recipient
// and checks it is plain.
func receiveAs(t *testing.T, fc Relay, d *Description, plain []byte, who string) {
	t.Helper()
	st, _ := newMemStore(t)
	if err := Receive(testContext(t), fc, d, st, "files/f", ReceiveOptions{}); err != nil {
		t.Fatalf("%s: Receive: %v", who, err)
	}
	if got, err := readAll(st, "files/f", d); err != nil || !bytes.Equal(got, plain) {
		t.Fatalf("%s: received file differs: %v", who, err)
	}
}

// checkDistinct fails unless the descriptions share the file (size,
// class, key, digest, relay) and no chunk record (recipient ID, key, box
// key) appears in two of them, nor any of its bytes in another
// recipient's encoding.
func checkDistinct(t *testing.T, ds []*Description) {
	t.Helper()
	enc := make([][]byte, len(ds))
	seen := map[string]bool{}
	for k, d := range ds {
		if d.Size != ds[0].Size || d.Class != ds[0].Class || !d.Key.Equal(ds[0].Key) || d.Digest != ds[0].Digest || d.Relay != ds[0].Relay || len(d.Chunks) != len(ds[0].Chunks) {
			t.Fatalf("recipient %d's description is of another file", k)
		}
		enc[k], _ = d.MarshalBinary()
		for i, c := range d.Chunks {
			for _, secret := range [][]byte{c.RcvID[:], c.Key.Seed(), c.BoxKey[:]} {
				if seen[string(secret)] {
					t.Fatalf("recipient %d, chunk %d: a record shared with another recipient", k, i)
				}
				seen[string(secret)] = true
			}
		}
	}
	for k, d := range ds {
		for j := range ds {
			if j == k {
				continue
			}
			for _, c := range d.Chunks {
				if bytes.Contains(enc[j], c.RcvID[:]) || bytes.Contains(enc[j], c.Key.Seed()) || bytes.Contains(enc[j], c.BoxKey[:]) {
					t.Fatalf("recipient %d's description holds a record of recipient %d", j, k)
				}
			}
		}
	}
}

// TestSendOneRecipientUnchanged: Send, and SendMany for 0 or 1 recipient,
// create every chunk for one recipient (FNEW n = 1, as before) and give
// one description of the original format; Send refuses more.
func TestSendOneRecipientUnchanged(t *testing.T) {
	r := startRelay(t)
	fc := &counted{Relay: dialRelay(t, r)}
	ctx := testContext(t)
	plain := randBytes(t, 5*mib)
	want, err := DescriptionSize(int64(len(plain)), r.addr)
	if err != nil {
		t.Fatal(err)
	}
	check := func(name string, d *Description) {
		t.Helper()
		b, err := d.MarshalBinary()
		if err != nil {
			t.Fatal(err)
		}
		if len(b) != want || b[0] != FormatFile || len(d.Chunks) != 2 {
			t.Fatalf("%s: description of %d bytes (want %d), format %d", name, len(b), want, b[0])
		}
		receiveAs(t, fc, d, plain, name)
	}
	d, _ := sendAll(t, fc, r, plain)
	check("Send", d)
	for _, n := range []int{0, 1} {
		ds, _, err := SendMany(ctx, fc, r.addr, bytes.NewReader(plain), int64(len(plain)), SendOptions{Recipients: n})
		if err != nil || len(ds) != 1 {
			t.Fatalf("SendMany to %d recipients: %d descriptions, %v", n, len(ds), err)
		}
		check(fmt.Sprintf("SendMany(%d)", n), ds[0])
	}
	if c, n := fc.creates.Load(), fc.fnewRecipients.Load(); c != 6 || n != c {
		t.Fatalf("%d FNEWs for %d recipients in all, want 6 for one each", c, n)
	}
	// Every recipient acknowledged its only recipient: nothing left.
	if f := r.chunkFiles(t); len(f) != 0 {
		t.Fatalf("%d chunk files left", len(f))
	}
	// Send is for one recipient.
	src := &hugeFile{}
	up, err := NewUploadMany(r.addr, 1000, 3)
	if err != nil {
		t.Fatal(err)
	}
	for _, opts := range []SendOptions{{Recipients: 2}, {Upload: up}} {
		if d, st, err := Send(ctx, fc, r.addr, src, 1000, opts); !errors.Is(err, ErrRecipients) || d != nil || st != nil {
			t.Fatalf("Send to several recipients: %v", err)
		}
	}
	if src.reads.Load() != 0 || fc.creates.Load() != 6 {
		t.Fatal("a refused Send read or created something")
	}
}

// TestSendManyEachRecipient: one upload for three recipients; each
// receives and verifies the file with its own description, which names
// only its own chunk records.
func TestSendManyEachRecipient(t *testing.T) {
	r := startRelay(t)
	fc := &counted{Relay: dialRelay(t, r)}
	plain := randBytes(t, 5*mib) // two 4 MiB chunks
	ds, _ := sendMany(t, fc, r, plain, 3)
	if len(ds) != 3 || len(ds[0].Chunks) != 2 {
		t.Fatalf("%d descriptions of %d chunks", len(ds), len(ds[0].Chunks))
	}
	if fc.creates.Load() != 2 || fc.uploads.Load() != 2 || fc.fnewRecipients.Load() != 2*3 {
		t.Fatalf("%d FNEWs (%d recipients in all) and %d FPUTs, want 2 FNEWs for 3 and 2 FPUTs", fc.creates.Load(), fc.fnewRecipients.Load(), fc.uploads.Load())
	}
	if want, digest := int64(len(plain)), mustDigest(t, plain); ds[0].Size != want || ds[0].Digest != digest {
		t.Fatal("the descriptions do not describe the file")
	}
	checkDistinct(t, ds)
	for k, d := range ds {
		receiveAs(t, fc, d, plain, fmt.Sprintf("recipient %d", k))
	}
}

func mustDigest(t *testing.T, plain []byte) [DigestSize]byte {
	t.Helper()
	d, err := Digest(bytes.NewReader(plain))
	if err != nil {
		t.Fatal(err)
	}
	return d
}

// TestSendManyIsolation: recipient A's description cannot fetch or
// acknowledge recipient B's chunks (the relay checks each recipient ID
// against its own key), and A's acknowledgement leaves B's copy alone.
func TestSendManyIsolation(t *testing.T) {
	r := startRelay(t)
	fc := &counted{Relay: dialRelay(t, r)}
	ctx := testContext(t)
	plain := randBytes(t, 300*kib)
	ds, sent := sendMany(t, fc, r, plain, 3)
	a, b := ds[0], ds[1]
	// A, knowing B's recipient IDs (it does not: checkDistinct), still
	// holds only its own keys: the relay answers AUTH.
	forged := *a
	forged.Chunks = append([]client.RecipientChunk(nil), a.Chunks...)
	for i := range forged.Chunks {
		forged.Chunks[i].RcvID = b.Chunks[i].RcvID
	}
	st, _ := newMemStore(t)
	if err := Receive(ctx, fc, &forged, st, "files/forged", ReceiveOptions{}); !errors.Is(err, ErrExpired) || !errors.Is(err, wire.CodeAuth) {
		t.Fatalf("A fetching B's chunks: %v, want ErrExpired (AUTH)", err)
	}
	if err := fc.Ack(ctx, forged.Chunks[0]); !errors.Is(err, wire.CodeAuth) {
		t.Fatalf("A acknowledging B's chunk: %v, want AUTH", err)
	}
	// A receives and acknowledges: its own records are spent, B's are not.
	receiveAs(t, fc, a, plain, "A")
	st, _ = newMemStore(t)
	if err := Receive(ctx, fc, a, st, "files/again", ReceiveOptions{}); !errors.Is(err, ErrExpired) {
		t.Fatalf("A fetching again after its acknowledgement: %v, want ErrExpired", err)
	}
	receiveAs(t, fc, b, plain, "B")
	receiveAs(t, fc, ds[2], plain, "C")
	if err := DeleteSent(ctx, fc, sent); err != nil {
		t.Fatal(err)
	}
}

// TestSendManyAckDeletion records how chunks for several recipients leave
// the relay: with a power-of-two count (no dummies) the last
// acknowledgement deletes each chunk; otherwise the dummy recipients
// never acknowledge and the chunks stay until DeleteSent (or expiry).
func TestSendManyAckDeletion(t *testing.T) {
	r := startRelay(t)
	fc := dialRelay(t, r)
	plain := randBytes(t, 100*kib)
	for _, tc := range []struct {
		n         int
		autoClean bool
	}{{3, false}, {4, true}, {2, true}, {5, false}} {
		ds, sent := sendMany(t, fc, r, plain, tc.n)
		for k, d := range ds {
			receiveAs(t, fc, d, plain, fmt.Sprintf("%d recipients: recipient %d", tc.n, k))
		}
		left := len(r.chunkFiles(t))
		if tc.autoClean && left != 0 || !tc.autoClean && left != len(ds[0].Chunks) {
			t.Fatalf("%d recipients (%d on the wire), all acknowledged: %d of %d chunk files left", tc.n, client.PaddedRecipients(tc.n), left, len(ds[0].Chunks))
		}
		if err := DeleteSent(testContext(t), fc, sent); err != nil {
			t.Fatal(err)
		}
		if left := len(r.chunkFiles(t)); left != 0 {
			t.Fatalf("%d chunk files left after DeleteSent", left)
		}
	}
}

// TestSendManyUploadsOnce: a 20 MiB file to 10 recipients uploads its
// chunks once: the same bytes as to one recipient, the ciphertext padded
// to whole chunks.
func TestSendManyUploadsOnce(t *testing.T) {
	r := startRelay(t)
	fc := &counted{Relay: dialRelay(t, r)}
	plain := randBytes(t, 20*mib)
	ct := stream.CiphertextSize(int64(len(plain)))
	one, sentOne := sendMany(t, fc, r, plain, 1)
	bytesOne := fc.uploadedBytes.Swap(0)
	ds, sent := sendMany(t, fc, r, plain, 10)
	bytesTen := fc.uploadedBytes.Load()
	cs := int64(ds[0].Class.Size())
	t.Logf("20 MiB file (ciphertext %d bytes, %d chunks of %d): %d bytes uploaded to 10 recipients, %d to 1 (%.3f × the ciphertext)",
		ct, len(ds[0].Chunks), cs, bytesTen, bytesOne, float64(bytesTen)/float64(ct))
	if bytesTen != bytesOne || bytesTen != int64(len(ds[0].Chunks))*cs || bytesTen < ct || bytesTen >= ct+cs {
		t.Fatalf("%d bytes uploaded to 10 recipients, %d to one, ciphertext %d", bytesTen, bytesOne, ct)
	}
	if n := fc.fnewRecipients.Load() - int64(len(one[0].Chunks)); n != 10*int64(len(ds[0].Chunks)) {
		t.Fatalf("FNEWs asked for %d recipients in all", n)
	}
	receiveAs(t, fc, ds[0], plain, "recipient 0")
	receiveAs(t, fc, ds[9], plain, "recipient 9")
	for _, st := range []*SenderState{sentOne, sent} {
		if err := DeleteSent(testContext(t), fc, st); err != nil {
			t.Fatal(err)
		}
	}
}

// TestResumeSendMany interrupts an upload to three recipients and resumes
// it from the persisted Upload (version 2): only with the same count,
// uploading only what is missing, and each recipient receives the file.
func TestResumeSendMany(t *testing.T) {
	r := startRelay(t)
	fc := &counted{Relay: dialRelay(t, r)}
	ctx := testContext(t)
	plain := randBytes(t, 18*mib) // 5 chunks
	up, err := NewUploadMany(r.addr, int64(len(plain)), 3)
	if err != nil {
		t.Fatal(err)
	}
	saved := new([]byte)
	persist := func(u *Upload) (err error) {
		*saved, err = u.MarshalBinary()
		return err
	}
	if *saved, err = up.MarshalBinary(); err != nil {
		t.Fatal(err)
	}
	_, _, err = SendMany(ctx, fc, r.addr, failingSource{plain, 9 * mib}, int64(len(plain)), SendOptions{Upload: up, Uploaded: persist})
	if !errors.Is(err, errSourceFailed) {
		t.Fatalf("interrupted SendMany: %v", err)
	}
	if (*saved)[0] != uploadVersionMany {
		t.Fatalf("upload for 3 recipients saved as version %d", (*saved)[0])
	}
	resumed, err := UnmarshalUpload(*saved)
	if err != nil {
		t.Fatal(err)
	}
	if resumed.Recipients != 3 || len(resumed.Chunks) == 0 || len(resumed.Chunks) >= 5 {
		t.Fatalf("resumed upload for %d recipients with %d of 5 chunks", resumed.Recipients, len(resumed.Chunks))
	}
	done := 0
	for _, c := range resumed.Chunks {
		if len(c.Recipients) != 3 {
			t.Fatalf("chunk %d recorded with %d recipient records", c.Index, len(c.Recipients))
		}
		if c.Done {
			done++
		}
	}

	// Another count: refused before anything is read or created.
	creates := fc.creates.Load()
	for _, opts := range []SendOptions{{Upload: resumed, Recipients: 2}, {Upload: resumed, Recipients: 4}} {
		if _, _, err := SendMany(ctx, fc, r.addr, &hugeFile{}, int64(len(plain)), opts); !errors.Is(err, ErrRecipients) {
			t.Fatalf("resume for %d recipients: %v", opts.Recipients, err)
		}
	}
	if _, _, err := Send(ctx, fc, r.addr, &hugeFile{}, int64(len(plain)), SendOptions{Upload: resumed}); !errors.Is(err, ErrRecipients) {
		t.Fatalf("Send resuming an upload for 3: %v", err)
	}
	if fc.creates.Load() != creates {
		t.Fatal("a refused resume created chunks")
	}

	uploads := fc.uploads.Load()
	ds, sent, err := SendMany(ctx, fc, r.addr, bytes.NewReader(plain), int64(len(plain)), SendOptions{Upload: resumed, Uploaded: persist, Recipients: 3})
	if err != nil {
		t.Fatal(err)
	}
	if len(ds) != 3 {
		t.Fatalf("%d descriptions", len(ds))
	}
	if got, want := fc.uploads.Load()-uploads, int64(len(ds[0].Chunks)-done); got != want {
		t.Fatalf("the resumed SendMany uploaded %d chunks, want the %d not confirmed", got, want)
	}
	if fc.fnewRecipients.Load() != 3*fc.creates.Load() {
		t.Fatal("a chunk was created for another count than 3")
	}
	final, err := UnmarshalUpload(*saved)
	if err != nil || len(final.Chunks) != len(ds[0].Chunks) {
		t.Fatalf("final record: %v", err)
	}
	ds = reencode(t, ds)
	checkDistinct(t, ds)
	for k, d := range ds {
		for i, c := range d.Chunks {
			if c.RcvID != final.Chunks[i].Recipients[k].RcvID {
				t.Fatalf("recipient %d, chunk %d: not the recorded record", k, i)
			}
		}
		receiveAs(t, fc, d, plain, fmt.Sprintf("recipient %d", k))
	}
	if err := DeleteSent(ctx, fc, sent); err != nil {
		t.Fatal(err)
	}
	if n := len(r.chunkFiles(t)); n != 0 {
		t.Errorf("%d chunk files left", n)
	}
}

// TestSendManyLimits: the recipient count must be 1..MaxRecipients (0
// meaning 1); out of range is ErrRecipients before anything is read or
// created; MaxRecipients itself works.
func TestSendManyLimits(t *testing.T) {
	if MaxRecipients != 128 || MaxRecipients < 100 {
		t.Fatalf("MaxRecipients = %d", MaxRecipients)
	}
	r := startRelay(t)
	fc := &counted{Relay: dialRelay(t, r)}
	ctx := testContext(t)
	src := &hugeFile{}
	for _, n := range []int{MaxRecipients + 1, 1000, -1, -MaxRecipients} {
		ds, st, err := SendMany(ctx, fc, r.addr, src, 1000, SendOptions{Recipients: n})
		if !errors.Is(err, ErrRecipients) || ds != nil || st != nil {
			t.Fatalf("SendMany to %d recipients: %v", n, err)
		}
		if !strings.Contains(err.Error(), fmt.Sprint(MaxRecipients)) {
			t.Errorf("the error does not give the limit: %v", err)
		}
		if _, err := NewUploadMany(r.addr, 1000, n); !errors.Is(err, ErrRecipients) {
			t.Fatalf("NewUploadMany for %d: %v", n, err)
		}
	}
	if _, err := NewUploadMany(r.addr, 1000, 0); !errors.Is(err, ErrRecipients) {
		t.Fatalf("NewUploadMany for 0: %v", err)
	}
	for _, n := range []int{0, MaxRecipients + 1} {
		if _, _, err := RedirectMany(ctx, fc, r.addr, make([]*Description, n), SendOptions{}); !errors.Is(err, ErrRecipients) {
			t.Fatalf("RedirectMany of %d descriptions: %v", n, err)
		}
	}
	if src.reads.Load() != 0 || fc.creates.Load() != 0 || fc.uploads.Load() != 0 {
		t.Fatalf("refused sends read %d times, created %d chunks", src.reads.Load(), fc.creates.Load())
	}

	plain := randBytes(t, 1000)
	ds, sent := sendMany(t, fc, r, plain, MaxRecipients)
	if len(ds) != MaxRecipients || fc.fnewRecipients.Load() != MaxRecipients {
		t.Fatalf("%d descriptions, FNEW for %d", len(ds), fc.fnewRecipients.Load())
	}
	checkDistinct(t, ds)
	receiveAs(t, fc, ds[0], plain, "recipient 0")
	receiveAs(t, fc, ds[MaxRecipients-1], plain, "the last recipient")
	if err := DeleteSent(ctx, fc, sent); err != nil {
		t.Fatal(err)
	}
}

// TestRedirectMany: each recipient gets its own redirect, a one-chunk
// file for it alone, which leads to its own description only.
func TestRedirectMany(t *testing.T) {
	r := startRelay(t)
	fc := &counted{Relay: dialRelay(t, r)}
	ctx := testContext(t)
	plain := randBytes(t, 9*mib)
	inners, sent := sendMany(t, fc, r, plain, 3)
	creates, uploads := fc.creates.Load(), fc.uploads.Load()
	var calls []int64
	outers, redirSent, err := RedirectMany(ctx, fc, r.addr, inners, SendOptions{Progress: func(done, total int64) {
		if total != 3*64*kib {
			t.Errorf("redirect progress total %d", total)
		}
		calls = append(calls, done)
	}})
	if err != nil {
		t.Fatal(err)
	}
	if len(outers) != 3 || len(redirSent.Chunks) != 3 || fc.creates.Load()-creates != 3 || fc.uploads.Load()-uploads != 3 {
		t.Fatalf("%d redirects, %d sender chunks, %d FNEWs", len(outers), len(redirSent.Chunks), fc.creates.Load()-creates)
	}
	if len(calls) != 3 || calls[2] != 3*64*kib {
		t.Fatalf("redirect progress %v", calls)
	}
	outers = reencode(t, outers)
	for k, o := range outers {
		if !o.Redirect || o.Class != wire.Class64K || len(o.Chunks) != 1 {
			t.Fatalf("redirect %d: %v, class %s, %d chunks", k, o.Redirect, o.Class, len(o.Chunks))
		}
		for j := range k {
			if o.Chunks[0].RcvID == outers[j].Chunks[0].RcvID || o.Key.Equal(outers[j].Key) {
				t.Fatalf("redirects %d and %d share a chunk or a key", j, k)
			}
		}
	}
	for k, o := range outers {
		st, _ := newMemStore(t)
		inner, err := Follow(ctx, fc, o, st, "files/r", ReceiveOptions{})
		if err != nil {
			t.Fatalf("recipient %d follows its redirect: %v", k, err)
		}
		for i, c := range inner.Chunks {
			if c.RcvID != inners[k].Chunks[i].RcvID {
				t.Fatalf("recipient %d's redirect leads to another description", k)
			}
		}
		receiveAs(t, fc, inner, plain, fmt.Sprintf("recipient %d", k))
	}
	// Each redirect chunk had one recipient: followed, it is gone.
	if err := DeleteSent(ctx, fc, sent); err != nil {
		t.Fatal(err)
	}
	if n := len(r.chunkFiles(t)); n != 0 {
		t.Fatalf("%d chunk files left", n)
	}

	loop := *inners[1]
	loop.Redirect = true
	creates = fc.creates.Load()
	if _, _, err := RedirectMany(ctx, fc, r.addr, []*Description{inners[0], &loop}, SendOptions{}); !errors.Is(err, ErrInvalidDescription) {
		t.Fatalf("RedirectMany with a redirect inside: %v", err)
	}
	up, _ := NewUpload(r.addr, 1000)
	if _, _, err := RedirectMany(ctx, fc, r.addr, inners, SendOptions{Upload: up}); err == nil {
		t.Fatal("RedirectMany with an Upload")
	}
	if _, _, err := RedirectMany(ctx, fc, r.addr, inners, SendOptions{Recipients: 2}); !errors.Is(err, ErrRecipients) {
		t.Fatalf("RedirectMany with 2 recipients per redirect: %v", err)
	}
	if fc.creates.Load() != creates {
		t.Fatal("a refused RedirectMany created chunks")
	}
}

// TestRedirectManyFails: when one redirect fails, those uploaded are
// deleted and nothing is returned.
func TestRedirectManyFails(t *testing.T) {
	r := startRelay(t)
	fc := &counted{Relay: dialRelay(t, r)}
	plain := randBytes(t, 100*kib)
	inners, sent := sendMany(t, fc, r, plain, 4)
	if err := DeleteSent(testContext(t), fc, sent); err != nil {
		t.Fatal(err)
	}
	bad := &failAfter{counted: fc, ok: fc.uploads.Load() + 2} // two redirects, then a failure
	deletes := fc.deletes.Load()
	outs, st, err := RedirectMany(testContext(t), bad, r.addr, inners, SendOptions{InFlight: 1})
	if !errors.Is(err, errUploadRefused) || outs != nil || st != nil {
		t.Fatalf("RedirectMany with a failing upload: %v", err)
	}
	// One at a time: two redirects uploaded, the third failed (its Send
	// deletes its chunk), the fourth never started.
	if n := fc.deletes.Load() - deletes; n != 3 {
		t.Fatalf("%d chunks deleted after the failure, want 3", n)
	}
	if n := len(r.chunkFiles(t)); n != 0 {
		t.Fatalf("%d redirect chunks left after the failure", n)
	}
}

var errUploadRefused = errors.New("test: upload refused")

// failAfter lets ok uploads through, then refuses every other.
type failAfter struct {
	*counted
	ok int64
}

func (f *failAfter) Upload(ctx context.Context, s client.SenderChunk, data []byte) error {
	if f.counted.uploads.Load() >= f.ok {
		return errUploadRefused
	}
	return f.counted.Upload(ctx, s, data)
}

// TestUploadEncodingMany: an Upload for several recipients encodes as
// version 2 and round-trips; one recipient stays version 1 (old records
// decode as one recipient); a bad recipient count is refused.
func TestUploadEncodingMany(t *testing.T) {
	ds := fakeDescriptions(t, 20*mib, "relay.example", 3)
	d := ds[0]
	u := &Upload{Size: d.Size, Key: d.Key, Relay: d.Relay, Recipients: 3}
	for _, i := range []int{3, 0, 4} {
		u.put(UploadedChunk{Index: i, Done: i != 4, Sender: fakeSenderChunk(t, d.Class), Recipients: chunkRecords(ds, i), Fingerprint: [32]byte{byte(i)}})
	}
	b, err := u.MarshalBinary()
	if err != nil {
		t.Fatal(err)
	}
	addr := len(d.Relay.String())
	if b[0] != 2 || b[42+addr] != 3 || len(b) != 1+8+32+1+addr+1+2+3*(UploadedChunkSize+2*RecipientChunkSize) {
		t.Fatalf("version %d, %d bytes", b[0], len(b))
	}
	got, err := UnmarshalUpload(b)
	if err != nil {
		t.Fatal(err)
	}
	again, _ := got.MarshalBinary()
	if !bytes.Equal(again, b) || got.Recipients != 3 || got.Chunks[1].Index != 3 || got.Chunks[1].Recipients[2].RcvID != ds[2].Chunks[3].RcvID || !got.Chunks[1].Done || got.Chunks[2].Done {
		t.Fatalf("round trip changed the upload: %v", got)
	}
	for k := range len(b) {
		if _, err := UnmarshalUpload(b[:k]); !errors.Is(err, ErrInvalidDescription) {
			t.Fatalf("truncated to %d bytes: %v", k, err)
		}
	}
	for _, change := range []func([]byte) []byte{
		func(b []byte) []byte { return append(b, 0) },
		func(b []byte) []byte { b[0] = 1; return b },
		func(b []byte) []byte { b[0] = 3; return b },
		func(b []byte) []byte { b[42+addr] = 1; return b }, // one recipient is version 1
		func(b []byte) []byte { b[42+addr] = 0; return b },
		func(b []byte) []byte { b[42+addr] = MaxRecipients + 1; return b },
		func(b []byte) []byte { b[42+addr] = 2; return b }, // records no longer fit
	} {
		if _, err := UnmarshalUpload(change(bytes.Clone(b))); !errors.Is(err, ErrInvalidDescription) {
			t.Errorf("changed encoding decoded: %v", err)
		}
	}
	if s := fmt.Sprint(u); !strings.Contains(s, "3 recipients") || strings.Contains(s, fmt.Sprint(d.Key)) {
		t.Errorf("Upload prints %q", s)
	}

	// One recipient, written with Recipients 0 (as before the field) or
	// 1: version 1, decoding as one recipient.
	var v1 []byte
	for _, r := range []int{0, 1} {
		u1 := &Upload{Size: d.Size, Key: d.Key, Relay: d.Relay, Recipients: r}
		u1.put(UploadedChunk{Index: 2, Sender: fakeSenderChunk(t, d.Class), Recipients: chunkRecords(ds[:1], 2)})
		e, err := u1.MarshalBinary()
		if err != nil || e[0] != 1 || len(e) != 1+8+32+1+addr+2+UploadedChunkSize {
			t.Fatalf("upload for %d recipient: version %d, %d bytes, %v", r, e[0], len(e), err)
		}
		v1 = e
	}
	old, err := UnmarshalUpload(v1)
	if err != nil || old.Recipients != 1 || len(old.Chunks[0].Recipients) != 1 || old.Chunks[0].Recipients[0].RcvID != ds[0].Chunks[2].RcvID {
		t.Fatalf("version 1 record: %v, %v", old, err)
	}
	if up, err := NewUploadMany(d.Relay, d.Size, 7); err != nil || up.Recipients != 7 {
		t.Fatalf("NewUploadMany: %v", err)
	}
	if up, err := NewUpload(d.Relay, d.Size); err != nil || up.Recipients != 1 {
		t.Fatalf("NewUpload: %v", err)
	}
}
