package files

import (
	"context"
	"crypto/subtle"
	"errors"
	"fmt"
	"io"
	"sync"

	"github.com/wisp-chat/wisp/crypto/stream"
	"github.com/wisp-chat/wisp/server/wire"
	"github.com/wisp-chat/wisp/wasm/store"
)

// Errors of receiving.
var (
	// ErrCorrupted means the file's chunks do not decrypt, or the
	// plaintext does not have the described size or digest: the sender's
	// bytes were altered on the relay or in the local store. Receive
	// deletes the stored chunks when it finds this.
	ErrCorrupted = errors.New("files: file corrupted")
	// ErrIncomplete means Open found chunks missing from the store: the
	// file has not been received (completely) yet.
	ErrIncomplete = errors.New("files: file not completely received")
	// ErrExpired means the relay no longer has a chunk (it expired, was
	// deleted by the sender or was already acknowledged).
	ErrExpired = errors.New("files: file no longer on the relay")
	// ErrNotAcknowledged is returned (joined with the cause) when the file
	// was received and verified but some chunks could not be acknowledged
	// on the relay; the file itself is complete and Open works.
	ErrNotAcknowledged = errors.New("files: received, but the relay was not told")
)

// ReceiveOptions tune Receive. The zero value is usable.
type ReceiveOptions struct {
	// InFlight is how many chunks are downloaded at once
	// (DefaultInFlight when 0).
	InFlight int
	// Retries is how many times a download or acknowledgement is tried
	// again after client.ErrConnectionLost (DefaultRetries when 0, none
	// when < 0).
	Retries int
	// Progress, if set, is called once at the start with the chunks
	// already stored and after each chunk is stored.
	Progress Progress
}

// chunkKey is the store record of chunk i under dir.
func chunkKey(dir store.Key, i int) store.Key {
	return dir.Join(fmt.Sprintf("c%04d", i))
}

// missing returns the indexes of the chunks not stored under dir.
func missing(st *store.Store, dir store.Key, n int) ([]int, error) {
	keys, err := st.List(dir)
	if err != nil {
		return nil, fmt.Errorf("files: listing stored chunks: %w", err)
	}
	have := make(map[store.Key]bool, len(keys))
	for _, k := range keys {
		have[k] = true
	}
	var out []int
	for i := range n {
		if !have[chunkKey(dir, i)] {
			out = append(out, i)
		}
	}
	return out, nil
}

// Receive downloads the file of desc from the relay through fc into st,
// one record per chunk under dir, several at once, verifies it and
// acknowledges the chunks on the relay. Chunks already under dir (from an
// interrupted Receive) are not downloaded again. The file is verified
// while it downloads: chunks are decrypted and hashed in file order as
// they arrive (stored ones are read back), so no second pass over the
// store is needed. nil means the whole file is stored and verified; Open
// then returns it. ErrCorrupted means it failed verification (its records
// are deleted: a new Receive downloads it again); ErrExpired that the
// relay no longer has a chunk. fc must be connected to desc.Relay.
func Receive(ctx context.Context, fc Relay, desc *Description, st *store.Store, dir store.Key, opts ReceiveOptions) error {
	if err := desc.validate(); err != nil {
		return err
	}
	if !dir.Valid() || !chunkKey(dir, 0).Valid() {
		return fmt.Errorf("files: %w: %q", store.ErrBadKey, dir)
	}
	todo, err := missing(st, dir, len(desc.Chunks))
	if err != nil {
		return err
	}
	cs := int64(desc.Class.Size())
	prog := &progress{fn: opts.Progress, total: int64(len(desc.Chunks)) * cs}
	prog.add(int64(len(desc.Chunks)-len(todo)) * cs)
	if err := download(ctx, fc, desc, st, dir, todo, opts, prog); err != nil {
		if errors.Is(err, ErrCorrupted) {
			if derr := st.DeleteAll(dir); derr != nil {
				return errors.Join(err, derr)
			}
		}
		return err
	}
	return ack(ctx, fc, desc, opts)
}

// ack acknowledges every chunk of a received file, several at once.
func ack(ctx context.Context, fc Relay, desc *Description, opts ReceiveOptions) error {
	tries := retries(opts.Retries)
	errs := make([]error, len(desc.Chunks))
	each(len(desc.Chunks), inFlight(opts.InFlight), func(i int) {
		err := retry(ctx, tries, func() error { return fc.Ack(ctx, desc.Chunks[i]) })
		// AUTH: acknowledged by an earlier Receive, or gone anyway.
		if err != nil && !errors.Is(err, wire.CodeAuth) {
			errs[i] = fmt.Errorf("chunk %d: %w", i, err)
		}
	})
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("%w: %w", ErrNotAcknowledged, err)
	}
	return nil
}

// each calls fn(i) for i in [0, n) from up to workers goroutines.
func each(n, workers int, fn func(i int)) {
	next := make(chan int)
	var wg sync.WaitGroup
	for range min(workers, n) {
		wg.Go(func() {
			for i := range next {
				fn(i)
			}
		})
	}
	for i := range n {
		next <- i
	}
	close(next)
	wg.Wait()
}

// download fetches and stores the chunks in todo with several workers
// while the calling goroutine decrypts and hashes the whole file in order
// (plainReader over a chunkReader fed from the downloads and, for chunks
// stored earlier, from the store). Memory stays bounded: a chunk is only
// requested while fewer than window downloaded chunks wait to be
// verified.
func download(ctx context.Context, fc Relay, desc *Description, st *store.Store, dir store.Key, todo []int, opts ReceiveOptions, prog *progress) error {
	ctx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	workers := inFlight(opts.InFlight)
	window := make(chan struct{}, workers+2)
	ready := make(map[int]chan []byte, len(todo))
	for _, i := range todo {
		ready[i] = make(chan []byte, 1)
	}
	jobs := make(chan int)
	tries := retries(opts.Retries)
	var wg sync.WaitGroup
	for range min(workers, len(todo)) {
		wg.Go(func() {
			for i := range jobs {
				data, err := fetch(ctx, fc, desc, i, tries)
				if err == nil {
					if err = st.PutOnce(chunkKey(dir, i), data); err != nil {
						err = fmt.Errorf("files: storing chunk %d: %w", i, err)
					}
				}
				if err != nil {
					cancel(err)
					continue
				}
				prog.add(int64(len(data)))
				ready[i] <- data
			}
		})
	}
	wg.Go(func() {
		defer close(jobs)
		for _, i := range todo {
			select {
			case window <- struct{}{}:
			case <-ctx.Done():
				return
			}
			select {
			case jobs <- i:
			case <-ctx.Done():
				return
			}
		}
	})
	load := func(i int) ([]byte, error) {
		if err := context.Cause(ctx); err != nil {
			return nil, err // cancelled, or a worker failed
		}
		c, fresh := ready[i]
		if !fresh {
			b, err := loadChunk(st, dir, i)
			if errors.Is(err, store.ErrCorrupt) {
				// A record torn by a crash during PutOnce: fetch it again.
				if b, err = fetch(ctx, fc, desc, i, tries); err == nil {
					err = st.PutOnce(chunkKey(dir, i), b)
				}
			}
			return b, err
		}
		select {
		case b := <-c:
			<-window
			return b, nil
		case <-ctx.Done():
			return nil, context.Cause(ctx)
		}
	}
	_, err := io.Copy(io.Discard, newPlainReader(desc, load))
	if err == nil {
		err = context.Cause(ctx) // nil unless a worker failed after the last chunk
	}
	cancel(err)
	wg.Wait()
	return err
}

// fetch downloads chunk i, trying again after lost connections.
func fetch(ctx context.Context, fc Relay, desc *Description, i, tries int) ([]byte, error) {
	var data []byte
	err := retry(ctx, tries, func() error {
		var err error
		data, err = fc.Download(ctx, desc.Chunks[i])
		return err
	})
	switch {
	case errors.Is(err, wire.CodeAuth):
		return nil, fmt.Errorf("%w: chunk %d: %w", ErrExpired, i, err)
	case err != nil:
		return nil, fmt.Errorf("files: downloading chunk %d: %w", i, err)
	case len(data) != desc.Class.Size():
		return nil, fmt.Errorf("%w: chunk %d has %d bytes", ErrCorrupted, i, len(data))
	}
	return data, nil
}

// loadChunk reads chunk i of a stored file.
func loadChunk(st *store.Store, dir store.Key, i int) ([]byte, error) {
	b, err := st.Get(chunkKey(dir, i))
	switch {
	case errors.Is(err, store.ErrNotFound):
		return nil, fmt.Errorf("%w: chunk %d missing", ErrIncomplete, i)
	case errors.Is(err, store.ErrCorrupt):
		return nil, fmt.Errorf("%w: chunk %d: %w", ErrCorrupted, i, err)
	case err != nil:
		return nil, fmt.Errorf("files: reading chunk %d: %w", i, err)
	}
	return b, nil
}

// chunkReader reads the ciphertext of a file chunk by chunk, one chunk in
// memory at a time, without the padding of the last chunk.
type chunkReader struct {
	load func(i int) ([]byte, error)
	n    int   // chunks
	next int   // next chunk to load
	left int64 // ciphertext bytes not yet returned
	cur  []byte
}

func (r *chunkReader) Read(p []byte) (int, error) {
	for len(r.cur) == 0 {
		if r.left == 0 || r.next == r.n {
			return 0, io.EOF
		}
		b, err := r.load(r.next)
		if err != nil {
			return 0, err
		}
		r.next++
		r.cur = b[:min(int64(len(b)), r.left)]
	}
	k := copy(p, r.cur)
	r.cur = r.cur[k:]
	r.left -= int64(k)
	return k, nil
}

// plainReader decrypts a stored file and checks its size and digest when
// it reaches the end: it returns io.EOF only for the described file.
type plainReader struct {
	src  io.Reader // stream.Reader over a chunkReader
	h    *digester
	n    int64
	desc *Description
	err  error
}

// newPlainReader decrypts the file of desc from its chunks, which load
// returns in order.
func newPlainReader(desc *Description, load func(i int) ([]byte, error)) *plainReader {
	cr := &chunkReader{load: load, n: len(desc.Chunks), left: desc.CiphertextSize()}
	return &plainReader{src: stream.NewReader(cr, desc.Key), h: newDigester(), desc: desc}
}

func (r *plainReader) Read(p []byte) (int, error) {
	if r.err != nil {
		return 0, r.err
	}
	k, err := r.src.Read(p)
	r.h.Write(p[:k])
	r.n += int64(k)
	switch {
	case r.n > r.desc.Size:
		r.err = fmt.Errorf("%w: longer than described", ErrCorrupted)
		return 0, r.err
	case err == io.EOF:
		sum, herr := r.h.Sum()
		if herr != nil {
			r.err = herr
			return 0, r.err
		}
		if r.n != r.desc.Size || subtle.ConstantTimeCompare(sum[:], r.desc.Digest[:]) != 1 {
			r.err = fmt.Errorf("%w: size or digest differs from the description", ErrCorrupted)
			return 0, r.err
		}
		r.err = io.EOF
	case errors.Is(err, stream.ErrDecrypt):
		r.err = fmt.Errorf("%w: %w", ErrCorrupted, err)
		return 0, r.err
	case err != nil:
		r.err = err
		return 0, err
	}
	return k, nil
}

// Open returns the plaintext of a file Receive stored under dir, for the
// UI to save: a reader that decrypts it from the records, one chunk in
// memory at a time, and checks it as it goes. Open itself only checks
// that every chunk record is there (ErrIncomplete); the reader's Read
// returns io.EOF only after the whole file has matched the description
// (ErrCorrupted otherwise), so the caller must read it to io.EOF before
// it trusts or shows any of it. Receive has verified the file once
// already; this second check costs no extra pass.
func Open(st *store.Store, dir store.Key, desc *Description) (io.Reader, error) {
	if err := desc.validate(); err != nil {
		return nil, err
	}
	if !dir.Valid() || !chunkKey(dir, 0).Valid() {
		return nil, fmt.Errorf("files: %w: %q", store.ErrBadKey, dir)
	}
	switch todo, err := missing(st, dir, len(desc.Chunks)); {
	case err != nil:
		return nil, err
	case len(todo) > 0:
		return nil, fmt.Errorf("%w: %d of %d chunks missing", ErrIncomplete, len(todo), len(desc.Chunks))
	}
	return newPlainReader(desc, func(i int) ([]byte, error) { return loadChunk(st, dir, i) }), nil
}
