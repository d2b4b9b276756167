// Package files moves files end to end through a relay's file store
// (server/wire SPEC.md §11): the transport under the chat layer's file
// messages. It has no UI and knows nothing of chats.
//
// # Sending
//
//	fc, err := client.DialFiles(ctx, relay, client.Options{})
//	desc, sent, err := files.Send(ctx, fc, relay, blob, size, files.SendOptions{
//		Progress: func(done, total int64) { ... },
//	})
//	b, err := desc.MarshalBinary() // send b in the E2E channel
//	s, err := sent.MarshalBinary() // keep s (encrypted) for DeleteSent
//
// Send refuses a file over MaxFileSize (ErrTooLarge) before reading it.
// It reads src in 1 MiB slices, never whole, two slices ahead on their own
// goroutine (so waiting for a Blob overlaps the work), computes the file's
// Digest and encrypts it with crypto/stream under a fresh random key. The
// digest is SHA-256 over the SHA-256 of each 4 MiB plaintext piece, so the
// browser hashes the pieces with WebCrypto on another thread.
// The ciphertext is cut into relay chunks of one class, ClassForSize: the
// smallest chunk class that holds min(ciphertext size, 4 MiB), so a small
// file is one 64 KiB chunk and a large one is 4 MiB chunks. The last chunk
// is padded with random bytes, so the relay learns the size only to
// within a chunk (the recipient knows the exact ciphertext size from the
// description). Each chunk is created for its recipients (FNEW; one for
// Send) and uploaded (FPUT) by one of SendOptions.InFlight workers, in
// any order; a chunk whose connection drops is tried again. Memory stays near
// InFlight + 3 chunks whatever the file size (see SendOptions.InFlight).
//
// SendOptions.Upload makes a Send resumable: the caller persists the
// Upload (NewUpload, then through SendOptions.Uploaded each time a chunk
// is recorded: before its first byte is sent, and when the relay has it),
// and a later Send with it and the same file uploads only what is
// missing. The file is read and encrypted again (deterministic for the
// key) and every recorded chunk must give its recorded fingerprint, else
// ErrNotSameFile: other bytes are never sent under a key and chunk index
// already used (SPEC.md §7.1).
//
// # Groups
//
// SendMany uploads a file once for up to MaxRecipients (128, the relay's
// FNEW limit) recipients and returns one Description per recipient:
//
//	descs, sent, err := files.SendMany(ctx, fc, relay, blob, size, files.SendOptions{Recipients: len(members)})
//	// descs[k] goes to member k only; sent deletes the chunks for all.
//
// Each chunk is created for all of them (the relay pads the count to a
// power of two with dummy recipients) and uploaded once, so the bytes
// sent do not grow with the count; each description names only its
// recipient's chunk records, so no member can download or acknowledge as
// another. Uploads resume as with Send (NewUploadMany records every
// recipient's records, and a resume keeps the count); RedirectMany gives
// each member a redirect of its own. The relay deletes a chunk with the
// acknowledgement of its last recipient, dummies included, so unless the
// count is a power of two the chunks stay until DeleteSent or their
// expiry, and the relay never tells the sender who acknowledged: the
// sender deletes once every member has said so end to end.
//
// # Receiving
//
//	desc, err := files.UnmarshalDescription(b)
//	err = files.Receive(ctx, fc, desc, st, "files/7c2e", files.ReceiveOptions{})
//	r, err := files.Open(st, "files/7c2e", desc) // verified plaintext
//	_, err = io.Copy(out, r)                     // io.EOF only for the described file
//
// Receive stores each chunk as it arrives as one record of the encrypted
// store (wasm/store, PutOnce: written in place, no temporary copy), named
// dir/cNNNN, so a Receive interrupted by a reload, a lost connection or
// ctx resumes from the chunks already stored (a record torn by a crash
// does not open and is fetched again). While the chunks download, the
// calling goroutine decrypts and hashes the file in order, from the
// downloaded chunks in memory and the stored ones read back, holding at
// most InFlight+2 chunks waiting; the stream authentication, the size and
// the digest must all match, else ErrCorrupted ("file corrupted"): the
// records are deleted and nothing is reported as received. Only then
// does it acknowledge the chunks on the relay (FACK). Open streams the
// plaintext from the records, one chunk in memory at a time, checking it
// again as it goes: its reader returns io.EOF only for the described
// file. st.DeleteAll(dir) removes a received file. The sender removes its
// chunks with DeleteSent.
//
// # Description size
//
// A description is 85 bytes plus the relay address plus 89 bytes per
// chunk: about 23 KB for 1 GiB (257 chunks, MaxDescriptionSize = 23,213
// bytes). A message body of the agent holds about 13,200 bytes, so a bare
// description inline in one message carries at most about 145 chunks
// (about 580 MiB); the chat layer sends it base64 in JSON beside the name
// and thumbnail, which leaves room for about 109 chunks (about 436 MiB,
// less with a thumbnail). Larger files take a second level:
// Redirect uploads the encoded description as a small file of its own and
// returns its description (at most 429 bytes, marked Redirect), which goes
// in the message instead; the recipient calls Follow to get the real
// description, then Receive. DescriptionSize tells a caller which case it
// is in before it sends (the chat layer checks its encoded body instead):
//
//	if n, _ := files.DescriptionSize(size, relay); n > maxBody {
//		desc, redirSent, err = files.Redirect(ctx, fc, relay, desc, files.SendOptions{})
//	}
//	...
//	if desc.Redirect {
//		desc, err = files.Follow(ctx, fc, desc, st, "files/7c2e-d", files.ReceiveOptions{})
//	}
package files
