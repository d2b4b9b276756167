package chat

import (
	"github.com/wisp-chat/wisp/wasm/files"
)

// Transfers count chunk bytes on the relay: whole padded chunks, so a
// 30 MiB file is 8 chunks of 4 MiB, 32 MiB. The UI speaks of the file:
// these convert to its size.

// plainBytes converts done of total chunk bytes (or chunks) to bytes of a
// size-byte file, in proportion; done == total is the whole file. (Sizes
// are at most MaxFileSize, chunk totals a little more: the product fits.)
func plainBytes(done, total, size int64) int64 {
	switch {
	case total <= 0 || done <= 0:
		return 0
	case done >= total:
		return size
	}
	return done * size / total
}

// plainProgress reports a transfer's progress in bytes of the file
// (total is its size); nil stays nil.
func plainProgress(progress Progress, size int64) Progress {
	if progress == nil {
		return nil
	}
	return func(done, total int64) { progress(plainBytes(done, total, size), size) }
}

// fillStored sets r.File.Stored: for a received file not downloaded, the
// part of it already stored here (its chunk records), in file bytes; 0
// otherwise. p.mu must be held.
func (p *Profile) fillStored(id string, r *messageRecord) {
	f := r.File
	if f == nil {
		return
	}
	f.Stored = 0
	if !r.Incoming || f.State == FileDownloaded || r.FileDesc == nil {
		return
	}
	desc, err := files.UnmarshalDescription(r.FileDesc)
	if err != nil || desc.Redirect || len(desc.Chunks) == 0 {
		return // a redirect is replaced by the real description before any chunk is stored
	}
	keys, err := p.st.List(fileDir(id, r.Seq).Join("chunks"))
	if err != nil {
		return
	}
	n := int64(len(desc.Chunks))
	f.Stored = plainBytes(min(int64(len(keys)), n), n, f.Size)
}
