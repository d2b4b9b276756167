package files

import (
	"context"
	"crypto/sha256"
	"crypto/subtle"
	"errors"
	"fmt"
	"hash"
	"io"
	"sync"

	"github.com/wisp-chat/wisp/crypto/stream"
	"github.com/wisp-chat/wisp/server/wire"
	"github.com/wisp-chat/wisp/wasm/store"
)

// Errors of receiving.
var (
	// ErrCorrupted means the file's chunks do not decrypt, or the
	// plaintext does not have the described size or SHA-256: the sender's
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
// one record per chunk under dir, several at once, then verifies it and
// acknowledges the chunks on the relay. Chunks already under dir (from an
// interrupted Receive) are not downloaded again. nil means the whole file
// is stored and verified; Open then returns it. ErrCorrupted means it
// failed verification (its records are deleted: a new Receive downloads
// it again); ErrExpired that the relay no longer has a chunk. fc must be
// connected to desc.Relay.
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
		return err
	}
	if err := verify(st, dir, desc, io.Discard); err != nil {
		if errors.Is(err, ErrCorrupted) {
			if derr := st.DeleteAll(dir); derr != nil {
				return errors.Join(err, derr)
			}
		}
		return err
	}
	var errs []error
	tries := retries(opts.Retries)
	for i, c := range desc.Chunks {
		err := retry(ctx, tries, func() error { return fc.Ack(ctx, c) })
		// AUTH: acknowledged by an earlier Receive, or gone anyway.
		if err != nil && !errors.Is(err, wire.CodeAuth) {
			errs = append(errs, fmt.Errorf("chunk %d: %w", i, err))
		}
	}
	if len(errs) > 0 {
		return fmt.Errorf("%w: %w", ErrNotAcknowledged, errors.Join(errs...))
	}
	return nil
}

// download fetches the chunks in todo with several workers.
func download(ctx context.Context, fc Relay, desc *Description, st *store.Store, dir store.Key, todo []int, opts ReceiveOptions, prog *progress) error {
	ctx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	jobs := make(chan int)
	tries := retries(opts.Retries)
	var wg sync.WaitGroup
	for range min(inFlight(opts.InFlight), len(todo)) {
		wg.Go(func() {
			for i := range jobs {
				var data []byte
				err := retry(ctx, tries, func() error {
					var err error
					data, err = fc.Download(ctx, desc.Chunks[i])
					return err
				})
				switch {
				case errors.Is(err, wire.CodeAuth):
					err = fmt.Errorf("%w: chunk %d: %w", ErrExpired, i, err)
				case err != nil:
					err = fmt.Errorf("files: downloading chunk %d: %w", i, err)
				case len(data) != desc.Class.Size():
					err = fmt.Errorf("%w: chunk %d has %d bytes", ErrCorrupted, i, len(data))
				default:
					if err = st.Put(chunkKey(dir, i), data); err != nil {
						err = fmt.Errorf("files: storing chunk %d: %w", i, err)
					}
				}
				if err != nil {
					cancel(err)
					continue
				}
				prog.add(int64(len(data)))
			}
		})
	}
feed:
	for _, i := range todo {
		select {
		case jobs <- i:
		case <-ctx.Done():
			break feed
		}
	}
	close(jobs)
	wg.Wait()
	return context.Cause(ctx)
}

// chunkReader reads the ciphertext of a file from its chunk records, one
// record in memory at a time, without the padding of the last chunk.
type chunkReader struct {
	st   *store.Store
	dir  store.Key
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
		b, err := r.st.Get(chunkKey(r.dir, r.next))
		switch {
		case errors.Is(err, store.ErrNotFound):
			return 0, fmt.Errorf("%w: chunk %d missing", ErrIncomplete, r.next)
		case errors.Is(err, store.ErrCorrupt):
			return 0, fmt.Errorf("%w: chunk %d: %w", ErrCorrupted, r.next, err)
		case err != nil:
			return 0, fmt.Errorf("files: reading chunk %d: %w", r.next, err)
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
	h    hash.Hash
	n    int64
	desc *Description
	err  error
}

func newPlainReader(st *store.Store, dir store.Key, desc *Description) *plainReader {
	cr := &chunkReader{st: st, dir: dir, n: len(desc.Chunks), left: desc.CiphertextSize()}
	return &plainReader{src: stream.NewReader(cr, desc.Key), h: sha256.New(), desc: desc}
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
		if r.n != r.desc.Size || subtle.ConstantTimeCompare(r.h.Sum(nil), r.desc.Digest[:]) != 1 {
			r.err = fmt.Errorf("%w: size or SHA-256 differs from the description", ErrCorrupted)
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

// verify decrypts the whole stored file into w and checks it.
func verify(st *store.Store, dir store.Key, desc *Description, w io.Writer) error {
	_, err := io.Copy(w, newPlainReader(st, dir, desc))
	return err
}

// Open returns the plaintext of a file Receive stored under dir, for the
// UI to save. It first decrypts and checks the whole file (ErrCorrupted,
// ErrIncomplete), then returns a reader that decrypts it again from the
// records, one chunk in memory at a time, and checks it again: its Read
// returns io.EOF only after the whole file has matched the description.
// The reader must be read to io.EOF before the file is trusted.
func Open(st *store.Store, dir store.Key, desc *Description) (io.Reader, error) {
	if err := desc.validate(); err != nil {
		return nil, err
	}
	if !dir.Valid() {
		return nil, fmt.Errorf("files: %w: %q", store.ErrBadKey, dir)
	}
	if err := verify(st, dir, desc, io.Discard); err != nil {
		return nil, err
	}
	return newPlainReader(st, dir, desc), nil
}
