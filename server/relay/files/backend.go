package files

import "time"

// Backend is the durable chunk store behind a Server: chunk records,
// their recipients and the chunk bytes. *Store keeps them in a bbolt file
// and a directory of one relay process; pgfiles.Store keeps the records in
// PostgreSQL and the bytes in a directory that several relay processes
// share. Package filestest checks an implementation against the rules
// below; both run it.
//
// Every implementation is safe for concurrent use (pgfiles also by
// several processes at once) and keeps these semantics:
//
//   - Chunks and recipients are addressed by SenderKey and RecipientKey,
//     hashes of their IDs: no ID is stored, nor anything about a client
//     (address, session).
//   - Quota: a chunk costs MetadataCost(number of recipients at Create)
//     from Create until it is deleted, plus its class size from the Put
//     that stores its bytes. A charge that would take the bytes charged
//     above the quota fails with ErrQuota and changes nothing; reaching
//     the quota exactly is allowed. Deleting a chunk (Delete, the last
//     Ack, expiry) gives back all it costs.
//   - Create stores a chunk record (Class, SenderAuth, Created; Created
//     now when zero, kept to the second) and one record per recipient. It
//     fails, storing nothing, for an invalid class, no recipients or more
//     than wire.MaxChunkRecipients, a sender key or a recipient key that
//     exists, and ErrQuota.
//   - BySender and ByRecipient return the records (Uploaded, Digest and
//     Remaining as they are now), or ErrNotFound.
//   - Put stores the chunk's bytes, durably before it returns nil, and
//     never leaves a torn file that Read could return: ErrNotFound for no
//     chunk, ErrSize for a length other than the class size, ErrQuota
//     (nothing recorded, no file left). The first Put that succeeds sets
//     Uploaded and Digest (SHA-256 of the bytes); a Put of the same bytes
//     again succeeds and charges nothing more, other bytes are
//     ErrUploaded. Of concurrent Puts of one chunk, exactly one stores.
//   - Read takes a record from BySender or ByRecipient of the same
//     backend and returns its bytes after checking their length and
//     digest: ErrNotReady if the record is not Uploaded, ErrNotFound if
//     the chunk was deleted since, ErrCorrupt if the bytes changed.
//   - Ack removes one recipient: ErrNotFound for an unknown or already
//     acknowledged recipient, ErrNotReady (changing nothing) while the
//     chunk is not uploaded. The last recipient's Ack deletes the chunk
//     as Delete does.
//   - Delete deletes a chunk, its recipients and its file (the file
//     first, so that a crash leaves a record to expire, not a file nobody
//     knows), or returns ErrNotFound.
//   - Expire deletes up to limit chunks Created before cutoff (compared
//     in whole seconds), oldest first (ties in SenderKey order), and
//     returns how many it deleted; ExpireUnfilled does the same for the
//     chunks not uploaded. A chunk deleted meanwhile is skipped.
//   - After the implementation's Close, every method returns ErrClosed.
type Backend interface {
	Create(k SenderKey, c Chunk, rcpts map[RecipientKey]Recipient) error
	BySender(k SenderKey) (Chunk, error)
	ByRecipient(rk RecipientKey) (Recipient, Chunk, error)
	Put(k SenderKey, data []byte) error
	Read(c *Chunk) ([]byte, error)
	Ack(rk RecipientKey) error
	Delete(k SenderKey) error
	Expire(cutoff time.Time, limit int) (int, error)
	ExpireUnfilled(cutoff time.Time, limit int) (int, error)
}
