package files

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"io"
	"sync"
	"time"

	"github.com/wisp-chat/wisp/crypto/stream"
	"github.com/wisp-chat/wisp/server/wire"
	"github.com/wisp-chat/wisp/server/wire/client"
	"github.com/wisp-chat/wisp/wasm/internal/webcrypto"
)

// Relay is the part of *client.FileClient this package uses; a
// FileClient connected to the relay named in the description satisfies it.
type Relay interface {
	CreateChunk(ctx context.Context, class wire.ChunkClass, n int, password []byte) (client.SenderChunk, []client.RecipientChunk, error)
	Upload(ctx context.Context, s client.SenderChunk, data []byte) error
	Download(ctx context.Context, r client.RecipientChunk) ([]byte, error)
	Ack(ctx context.Context, r client.RecipientChunk) error
	DeleteChunk(ctx context.Context, s client.SenderChunk) error
}

// MaxRecipients is the most recipients SendMany uploads one file for: the
// relay's limit on the recipients of one chunk (FNEW, server/wire SPEC.md
// §11.2), which the client pads to the next power of two with dummy
// recipients (client.PaddedRecipients; 128 is one).
const MaxRecipients = wire.MaxChunkRecipients

// ErrRecipients is returned, before anything is read or uploaded, for a
// recipient count below 1 or over MaxRecipients, for Send given more than
// one recipient, and for a resumed Send given another count than its
// Upload's.
var ErrRecipients = errors.New("files: bad recipient count")

// checkRecipients refuses a recipient count outside 1..MaxRecipients.
func checkRecipients(n int) error {
	if n < 1 || n > MaxRecipients {
		return fmt.Errorf("%w: %d, want 1 to %d", ErrRecipients, n, MaxRecipients)
	}
	return nil
}

// Defaults of SendOptions and ReceiveOptions.
const (
	DefaultInFlight = 4
	DefaultRetries  = 3
	// readSlice is how much of the source Send reads at a time, and
	// readAhead how many slices it reads before they are needed.
	readSlice = 1 << 20
	readAhead = 2
)

// Progress reports transferred bytes. done and total count relay chunk
// bytes (whole padded chunks), so total is the chunk count times the class
// size; done reaches total when every chunk is on the relay (Send) or in
// the store (Receive). It is called from several goroutines, never
// concurrently.
type Progress func(done, total int64)

// SendOptions tune Send. The zero value is usable.
type SendOptions struct {
	// InFlight is how many chunks are uploaded at once (DefaultInFlight
	// when 0). Send holds InFlight+1 chunk buffers of the class size,
	// a 4 MiB digest piece and five 1 MiB read buffers: about 9 MiB for
	// a small file, about (InFlight+3) × 4 MiB for a large one.
	InFlight int
	// Retries is how many times a chunk is tried again after
	// client.ErrConnectionLost (DefaultRetries when 0, none when < 0).
	Retries int
	// Password is the relay's password for FNEW, if it has one.
	Password []byte
	// Progress, if set, is called after each chunk is uploaded (and, when
	// resuming, once for each chunk already on the relay).
	Progress Progress
	// Upload makes the Send resumable (see NewUpload): Send encrypts under
	// its key and does not upload again the chunks it records, after
	// checking that the file gives the same bytes for them (else
	// ErrNotSameFile); when Send fails, the chunks uploaded so far stay on
	// the relay for a later Send with the same Upload (DeleteSent with
	// Upload.SenderState removes them). nil: a one-shot Send that deletes
	// what it uploaded when it fails.
	Upload *Upload
	// Recipients is how many recipients SendMany uploads the file for
	// (1..MaxRecipients): the file is encrypted and uploaded once, each
	// chunk created for all of them, and each recipient gets its own
	// Description naming only its own chunk records. 0 means 1, or the
	// count of Upload when resuming (another count is ErrRecipients).
	// Send takes one recipient only.
	Recipients int
	// Uploaded, if set, is called with a copy of Upload for the caller
	// to persist: before the first byte of a chunk is sent, and before
	// its upload is reported to Progress, the chunk's record is in a copy
	// Uploaded has returned nil for (one call can carry several chunks).
	// Calls are serialised; an error stops the Send.
	Uploaded func(*Upload) error
}

func inFlight(n int) int {
	if n <= 0 {
		return DefaultInFlight
	}
	return n
}

func retries(n int) int {
	switch {
	case n == 0:
		return DefaultRetries
	case n < 0:
		return 0
	}
	return n
}

// retry runs op until it succeeds, fails with an error other than
// client.ErrConnectionLost, or has failed 1+tries times.
func retry(ctx context.Context, tries int, op func() error) error {
	for attempt := 0; ; attempt++ {
		err := op()
		if err == nil || !errors.Is(err, client.ErrConnectionLost) || attempt >= tries {
			return err
		}
		select {
		case <-time.After(time.Duration(attempt+1) * 50 * time.Millisecond):
		case <-ctx.Done():
			return ctx.Err()
		}
	}
}

// progress serialises callbacks and counts bytes.
type progress struct {
	mu    sync.Mutex
	fn    Progress
	done  int64
	total int64
}

func (p *progress) add(n int64) {
	if p.fn == nil {
		return
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	p.done += n
	p.fn(p.done, p.total)
}

// job is one relay chunk to transfer.
type job struct {
	index int
	data  []byte
}

// chunker collects the stream ciphertext into whole relay chunks and
// hands each to out, taking buffers from free.
type chunker struct {
	ctx   context.Context
	size  int
	free  chan []byte
	out   chan<- job
	cur   []byte
	index int
}

func (c *chunker) Write(p []byte) (int, error) {
	n := 0
	for len(p) > 0 {
		if c.cur == nil {
			select {
			case c.cur = <-c.free:
				c.cur = c.cur[:0]
			case <-c.ctx.Done():
				return n, c.ctx.Err()
			}
		}
		k := copy(c.cur[len(c.cur):c.size], p)
		c.cur = c.cur[:len(c.cur)+k]
		p, n = p[k:], n+k
		if len(c.cur) == c.size {
			if err := c.emit(); err != nil {
				return n, err
			}
		}
	}
	return n, nil
}

// emit sends the current chunk.
func (c *chunker) emit() error {
	select {
	case c.out <- job{index: c.index, data: c.cur}:
		c.cur = nil
		c.index++
		return nil
	case <-c.ctx.Done():
		return c.ctx.Err()
	}
}

// finish pads the last chunk with random bytes, so the relay cannot tell
// where the ciphertext ends, and sends it.
func (c *chunker) finish() error {
	if c.cur == nil {
		return nil
	}
	pad := c.cur[len(c.cur):c.size]
	if _, err := rand.Read(pad); err != nil {
		return fmt.Errorf("files: padding: %w", err)
	}
	c.cur = c.cur[:c.size]
	return c.emit()
}

// slice is one read of the source.
type slice struct {
	b   []byte
	err error
}

// prefetcher reads a source on its own goroutine, readAhead slices ahead
// of its reader, so that waiting for the source (in the browser, a Blob
// read through the browser process) overlaps hashing and encryption.
type prefetcher struct {
	in   <-chan slice
	free chan<- []byte
	cur  slice
	off  int // read position in cur.b
}

// prefetch starts reading size bytes of src. The goroutine ends when the
// source is read, fails, or ctx ends.
func prefetch(ctx context.Context, src io.ReaderAt, size int64) io.Reader {
	in := make(chan slice, readAhead)
	free := make(chan []byte, readAhead+2)
	for range readAhead + 2 {
		free <- make([]byte, readSlice)
	}
	go func() {
		defer close(in)
		for off := int64(0); off < size; {
			var b []byte
			select {
			case b = <-free:
			case <-ctx.Done():
				return
			}
			b = b[:min(int64(readSlice), size-off)]
			n, err := src.ReadAt(b, off)
			switch {
			case err == io.EOF && n == len(b):
				err = nil
			case err == nil && n < len(b):
				err = io.ErrUnexpectedEOF // a ReaderAt that breaks its contract
			}
			off += int64(n)
			select {
			case in <- slice{b: b[:n], err: err}:
			case <-ctx.Done():
				return
			}
			if err != nil {
				return
			}
		}
	}()
	return &prefetcher{in: in, free: free}
}

func (p *prefetcher) Read(b []byte) (int, error) {
	for p.off == len(p.cur.b) {
		if p.cur.err != nil {
			return 0, p.cur.err
		}
		if p.cur.b != nil {
			p.free <- p.cur.b[:cap(p.cur.b)]
		}
		next, ok := <-p.in
		if !ok {
			return 0, io.EOF
		}
		p.cur, p.off = next, 0
	}
	n := copy(b, p.cur.b[p.off:])
	p.off += n
	return n, nil
}

// encrypt reads src in slices, hashes the plaintext and encrypts it into
// relay chunks.
func encrypt(src io.Reader, size int64, key stream.Key, h io.Writer, c *chunker) error {
	w := stream.NewWriter(c, key)
	buf := make([]byte, readSlice)
	n, err := io.CopyBuffer(w, io.TeeReader(io.LimitReader(src, size), h), buf)
	if err != nil {
		return fmt.Errorf("files: reading or encrypting the file: %w", err)
	}
	if n != size {
		return fmt.Errorf("files: the file has %d bytes, expected %d", n, size)
	}
	if err := w.Close(); err != nil {
		return fmt.Errorf("files: encrypting: %w", err)
	}
	return c.finish()
}

// Send encrypts size bytes of src under a fresh random key (or the key of
// opts.Upload) and uploads them to relay through fc as chunks of one class
// (ClassForSize), several at once. It returns the Description to send to
// the recipient and the SenderState to keep for DeleteSent. A file over
// MaxFileSize is ErrTooLarge before anything is read or uploaded. When
// Send fails, nothing is returned and the chunks it created are deleted
// (best effort), except those recorded in opts.Upload. fc must be
// connected to relay, whose address goes in the description. Send is for
// one recipient (opts.Recipients 0 or 1, an Upload for one); SendMany
// uploads a file once for several.
func Send(ctx context.Context, fc Relay, relay wire.Address, src io.ReaderAt, size int64, opts SendOptions) (*Description, *SenderState, error) {
	n, err := recipientCount(&opts)
	if err != nil {
		return nil, nil, err
	}
	if n != 1 {
		return nil, nil, fmt.Errorf("%w: Send takes one recipient, not %d (SendMany takes several)", ErrRecipients, n)
	}
	ds, st, err := SendMany(ctx, fc, relay, src, size, opts)
	if err != nil {
		return nil, nil, err
	}
	return ds[0], st, nil
}

// recipientCount returns the recipient count of a Send: opts.Recipients,
// else the Upload's, else 1.
func recipientCount(opts *SendOptions) (int, error) {
	n := opts.Recipients
	if n == 0 {
		n = 1
		if opts.Upload != nil {
			n = opts.Upload.recipients()
		}
	}
	if err := checkRecipients(n); err != nil {
		return 0, err
	}
	if opts.Upload != nil && opts.Upload.recipients() != n {
		return 0, fmt.Errorf("%w: %d recipients, the upload is for %d", ErrRecipients, n, opts.Upload.recipients())
	}
	return n, nil
}

// SendMany is Send for opts.Recipients recipients (1..MaxRecipients, 0
// meaning 1 or the count of opts.Upload). The file is read, encrypted and
// uploaded once: each chunk is created (FNEW) for all the recipients, the
// relay padding the count to a power of two with dummy recipients, and
// uploaded (FPUT) once. It returns one Description per recipient, in
// recipient order, each naming only that recipient's chunk records (IDs
// and keys), so a recipient can neither download nor acknowledge as
// another; they share the file's key and digest. The SenderState (and
// DeleteSent) covers the chunks for every recipient. A count out of range
// is ErrRecipients before anything is read or uploaded. For one recipient
// the Description is exactly Send's.
func SendMany(ctx context.Context, fc Relay, relay wire.Address, src io.ReaderAt, size int64, opts SendOptions) ([]*Description, *SenderState, error) {
	recipients, err := recipientCount(&opts)
	if err != nil {
		return nil, nil, err
	}
	up, resumable := opts.Upload, opts.Upload != nil
	if !resumable {
		if up, err = NewUploadMany(relay, size, recipients); err != nil {
			return nil, nil, err
		}
	}
	if size < 0 || size > MaxFileSize {
		return nil, nil, fmt.Errorf("%w: %d bytes", ErrTooLarge, size)
	}
	if err := up.validate(); err != nil {
		return nil, nil, err
	}
	if up.Size != size || up.Relay != relay {
		return nil, nil, fmt.Errorf("%w: %d bytes, the upload is of %d bytes (or to another relay)", ErrNotSameFile, size, up.Size)
	}
	class, err := ClassForSize(size)
	if err != nil {
		return nil, nil, err
	}
	n := chunkCount(size, class)
	ds := make([]*Description, recipients)
	for k := range ds {
		ds[k] = &Description{Size: size, Class: class, Key: up.Key, Relay: relay, Chunks: make([]client.RecipientChunk, n)}
		for i := range ds[k].Chunks {
			ds[k].Chunks[i].Class = class // until CreateChunk fills it in
		}
	}
	if err := ds[0].validate(); err != nil { // the relay address, before any upload
		return nil, nil, err
	}
	// setChunk gives each recipient its own record of chunk i.
	setChunk := func(i int, rcpts []client.RecipientChunk) {
		for k, d := range ds {
			d.Chunks[i] = rcpts[k]
		}
	}
	if resumable && len(up.Chunks) > 0 {
		if err := checkSame(ctx, src, up, class); err != nil {
			return nil, nil, err
		}
	}
	st := &SenderState{Relay: relay, Chunks: make([]client.SenderChunk, n)}
	created := make([]bool, n) // created by this Send and not recorded in up: deleted if Send fails
	var upMu sync.Mutex        // up, created and version
	workers := min(inFlight(opts.InFlight), n)
	tries := retries(opts.Retries)
	prog := &progress{fn: opts.Progress, total: int64(n) * int64(class.Size())}
	ctSize := stream.CiphertextSize(size)
	// Persisting up: each change bumps version; flush(v) returns once a
	// write of a state at least as new as v is done. Writes are coalesced:
	// one write can carry several workers' records and confirmations.
	var (
		version int        // of up; upMu
		saved   int        // version last written; flushMu
		flushMu sync.Mutex // one write at a time
	)
	flush := func(v int) error {
		if opts.Uploaded == nil {
			return nil
		}
		flushMu.Lock()
		defer flushMu.Unlock()
		if saved >= v {
			return nil
		}
		upMu.Lock()
		cur, snap := version, up.clone()
		upMu.Unlock()
		if err := opts.Uploaded(snap); err != nil {
			return err
		}
		saved = cur
		return nil
	}

	ctx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	jobs := make(chan job)
	free := make(chan []byte, workers+1)
	for range workers + 1 {
		free <- make([]byte, class.Size())
	}
	// upload puts one chunk on the relay; in a resumable Send it records
	// the chunk with its fingerprint before sending it, and again once
	// the relay has it.
	upload := func(j job) error {
		var sum [32]byte
		if resumable {
			var err error
			if sum, err = fingerprint(j, ctSize); err != nil {
				return err
			}
			upMu.Lock()
			old, started := up.chunk(j.index)
			upMu.Unlock()
			if started {
				if sum != old.Fingerprint {
					return fmt.Errorf("%w: chunk %d differs", ErrNotSameFile, j.index)
				}
				if old.Done {
					st.Chunks[j.index] = old.Sender
					setChunk(j.index, old.Recipients)
					return nil
				}
				// Started, not confirmed: the same bytes go to a new chunk
				// and the old one, if it got there, is deleted.
				_ = fc.DeleteChunk(ctx, old.Sender)
			}
		}
		var snd client.SenderChunk
		var rcpts []client.RecipientChunk
		err := retry(ctx, tries, func() error {
			var err error
			if snd, rcpts, err = createChunk(ctx, fc, class, recipients, opts.Password); err != nil {
				return fmt.Errorf("files: creating chunk %d: %w", j.index, err)
			}
			return nil
		})
		if err != nil {
			return err
		}
		upMu.Lock()
		st.Chunks[j.index], created[j.index] = snd, true
		setChunk(j.index, rcpts)
		if resumable {
			up.put(UploadedChunk{Index: j.index, Sender: snd, Recipients: rcpts, Fingerprint: sum})
			version++
		}
		v := version
		upMu.Unlock()
		if resumable {
			// The record, fingerprint included, is written before any
			// byte of the chunk is sent.
			if err := flush(v); err != nil {
				return err
			}
			upMu.Lock()
			created[j.index] = false // recorded: kept for a resumed Send
			upMu.Unlock()
		}
		err = retry(ctx, tries, func() error {
			if err := fc.Upload(ctx, snd, j.data); err != nil {
				return fmt.Errorf("files: uploading chunk %d: %w", j.index, err)
			}
			return nil
		})
		if err != nil || !resumable {
			return err
		}
		upMu.Lock()
		up.put(UploadedChunk{Index: j.index, Done: true, Sender: snd, Recipients: rcpts, Fingerprint: sum})
		version++
		v = version
		upMu.Unlock()
		// Written before the progress reports it, so what the user saw
		// sent survives a reload.
		return flush(v)
	}
	// Each chunk index is written by the one worker that has its job and
	// read only after wg.Wait.
	var wg sync.WaitGroup
	for range workers {
		wg.Go(func() {
			for j := range jobs {
				err := upload(j)
				free <- j.data
				if err != nil {
					cancel(err)
					continue
				}
				prog.add(int64(class.Size()))
			}
		})
	}
	h := newDigester()
	encErr := encrypt(prefetch(ctx, src, size), size, up.Key, h, &chunker{ctx: ctx, size: class.Size(), free: free, out: jobs})
	close(jobs)
	wg.Wait()
	err = context.Cause(ctx)
	if err == nil {
		err = encErr
	}
	var sum [DigestSize]byte
	if err == nil {
		sum, err = h.Sum()
	}
	if err != nil {
		cleanup(ctx, fc, st.Chunks, created)
		return nil, nil, err
	}
	for _, d := range ds {
		d.Digest = sum
	}
	return ds, st, nil
}

// fingerprint returns the SHA-256 of a chunk's ciphertext, without the
// random padding of the last chunk; ctSize is the file's ciphertext size.
func fingerprint(j job, ctSize int64) ([32]byte, error) {
	start := int64(j.index) * int64(len(j.data))
	return webcrypto.Start(j.data[:min(int64(len(j.data)), ctSize-start)])()
}

// errChecked ends checkSame's pass once the last recorded chunk is checked.
var errChecked = errors.New("files: recorded chunks checked")

// checkSame reads and encrypts the file up to the last chunk up records,
// uploading nothing, and compares each recorded chunk's fingerprint: a
// resumed Send given another file stops here, before any byte of it
// reaches the relay or the record.
func checkSame(ctx context.Context, src io.ReaderAt, up *Upload, class wire.ChunkClass) error {
	last := up.Chunks[len(up.Chunks)-1].Index
	ctSize := stream.CiphertextSize(up.Size)
	ctx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	jobs := make(chan job)
	free := make(chan []byte, 2)
	for range 2 {
		free <- make([]byte, class.Size())
	}
	encErr := make(chan error, 1)
	go func() {
		encErr <- encrypt(prefetch(ctx, src, up.Size), up.Size, up.Key, io.Discard, &chunker{ctx: ctx, size: class.Size(), free: free, out: jobs})
		close(jobs)
	}()
	var result error
	for j := range jobs {
		if result == nil {
			if c, ok := up.chunk(j.index); ok {
				sum, err := fingerprint(j, ctSize)
				switch {
				case err != nil:
					result = err
				case sum != c.Fingerprint:
					result = fmt.Errorf("%w: chunk %d differs", ErrNotSameFile, j.index)
				}
			}
			if result == nil && j.index >= last {
				result = errChecked
			}
			if result != nil {
				cancel(result)
			}
		}
		free <- j.data
	}
	err := <-encErr
	switch {
	case result == errChecked:
		return nil
	case result != nil:
		return result
	}
	return err
}

// createTimeout bounds a CreateChunk that Send lets finish after ctx ends.
const createTimeout = 15 * time.Second

// createChunk creates one chunk for n recipients and returns their n
// records, in recipient order. Once sent, FNEW is not abandoned when ctx
// ends (only bounded by createTimeout): a created chunk whose answer was
// dropped would hold quota on the relay until it expires, while a
// finished one is deleted by cleanup. (An answer lost with the connection
// has the same cost; the retry creates a new chunk.)
func createChunk(ctx context.Context, fc Relay, class wire.ChunkClass, n int, password []byte) (client.SenderChunk, []client.RecipientChunk, error) {
	if err := ctx.Err(); err != nil {
		return client.SenderChunk{}, nil, err
	}
	cctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), createTimeout)
	defer cancel()
	snd, rcpts, err := fc.CreateChunk(cctx, class, n, password)
	if err != nil {
		return client.SenderChunk{}, nil, err
	}
	if len(rcpts) != n {
		return client.SenderChunk{}, nil, fmt.Errorf("%w: %d recipient records for %d", client.ErrUnexpected, len(rcpts), n)
	}
	return snd, rcpts, nil
}

// cleanup deletes the chunks a failed Send created, with a short budget
// that outlives ctx's cancellation.
func cleanup(ctx context.Context, fc Relay, chunks []client.SenderChunk, created []bool) {
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 10*time.Second)
	defer cancel()
	for i, c := range chunks {
		if created[i] {
			_ = fc.DeleteChunk(ctx, c)
		}
	}
}

// DeleteSent deletes the sender's chunks from the relay, several at once,
// e.g. once the recipients have the file or it is cancelled. A chunk gone
// already (every recipient acknowledged it, it expired or was deleted)
// counts as deleted. fc must be connected to st.Relay.
func DeleteSent(ctx context.Context, fc Relay, st *SenderState) error {
	errs := make([]error, len(st.Chunks))
	each(len(st.Chunks), DefaultInFlight, func(i int) {
		err := retry(ctx, DefaultRetries, func() error { return fc.DeleteChunk(ctx, st.Chunks[i]) })
		if err != nil && !errors.Is(err, wire.CodeAuth) {
			errs[i] = fmt.Errorf("files: deleting chunk %d: %w", i, err)
		}
	})
	if err := ctx.Err(); err != nil {
		return err
	}
	return errors.Join(errs...)
}
