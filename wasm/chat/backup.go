package chat

// Backup files.
//
// ExportBackup writes one profile into a single self-contained file that
// ImportBackup turns into a new profile, on another browser or on the same
// one. The records go into the file exactly as they are stored, sealed with
// the profile's data key (export only checks, in memory, that each opens);
// the data key goes in wrapped under a backup passphrase with Argon2id. A
// profile without a passphrase is therefore protected by the backup
// passphrase, and a profile with one may reuse it.
//
// File layout, version 1 (integers big-endian, || is concatenation):
//
//	offset 0    magic      7   "WISPBAK"
//	offset 7    version    1   0x01
//	offset 8    profile    16  ID of the exported profile, lowercase hex ASCII
//	offset 24   key        99  vault.Wrap(data key, backup passphrase, Argon2id)
//	offset 123  count      4   number of records N, 1 ≤ N ≤ MaxBackupRecords
//	offset 127  N records, in strictly increasing byte order of name:
//	              name_len   2   1..519
//	              name       name_len  the record's store key, relative to the
//	                                   profile directory (store.Key.Valid)
//	              sealed_len 4   vault.RecordOverhead .. store.MaxRecordSize + vault.RecordOverhead
//	              sealed     sealed_len  the record file as stored: vault.Seal
//	                                     with the name "p-" || profile || "/" || name
//	then        seal       73  vault.Seal(data key, "wisp/v1/backup/seal",
//	                               SHA-256(every byte before the seal))
//	then        check      32  SHA-256(every byte before the check)
//
// The whole file is at most MaxBackupSize bytes, and one record (the
// "profile" record) must be present. The check detects accidental damage
// (truncation, bit flips, appended bytes) before any costly work. The seal,
// made and opened only with the data key, authenticates every byte before
// it, so reordering, removing, duplicating or replacing records (an older
// version included), or editing the header, is detected too; an altered
// wrapped key fails its own authentication, which cannot be told from a
// wrong passphrase. Each record still opens only under its own name.
// Without the passphrase, the file reveals what the browser's storage does:
// the number, names (random IDs and counters) and sizes of the records, and
// the profile's local ID.
//
// ImportBackup checks everything before writing anything: the size, the
// check, the layout, the Argon2id cost (bounded so that a forged file cannot
// make it run for minutes), the passphrase (ErrWrongPassphrase), the seal,
// and that every record opens. Only then does it create a new profile with a
// fresh ID and a fresh data key, re-sealing each record under its new name
// (records are bound to their full path, which includes the profile's
// directory). A damaged or forged file fails with an error wrapping
// ErrInvalid and writes nothing.
//
// Known property: an imported profile uses the same relay queues as the
// exported one. Running both at once means two devices on the same queues:
// each relay keeps one subscriber per queue, so the one that subscribed last
// receives and the other is told END. A backup is for moving or restoring a
// profile, not for running it twice. Likewise, the export is taken record by
// record while the profile runs: a message arriving at that very moment may
// be missing from the backup. The ratchet states in a backup are older than
// the contacts', so an imported profile re-synchronises its encryption with
// every contact at its first unlock, before it sends anything (SPEC.md
// §7.6, resync.go).

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"path"
	"sort"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/hack-pad/hackpadfs"
	"github.com/wisp-chat/wisp/crypto/vault"
	"github.com/wisp-chat/wisp/wasm/store"
)

// Backup limits.
const (
	// MaxBackupSize is the largest backup file, in bytes.
	MaxBackupSize = 256 << 20
	// MaxBackupRecords is the most records a backup holds.
	MaxBackupRecords = 1 << 20
)

const (
	backupMagic   = "WISPBAK"
	backupVersion = 1
	backupSealAD  = "wisp/v1/backup/seal"

	backupIDOff     = len(backupMagic) + 1
	backupKeyOff    = backupIDOff + 16
	backupCountOff  = backupKeyOff + vault.WrappedSize
	backupHeader    = backupCountOff + 4
	backupSealSize  = vault.RecordOverhead + sha256.Size
	backupCheckSize = sha256.Size
	backupTrailer   = backupSealSize + backupCheckSize

	// maxRecordName is the longest store key: MaxDepth segments of 64
	// characters and the slashes between them.
	maxRecordName = store.MaxDepth*65 - 1
	minSealed     = vault.RecordOverhead
	maxSealed     = store.MaxRecordSize + vault.RecordOverhead
	// recordHeader is the size of name_len and sealed_len.
	recordHeader = 2 + 4
)

// An import writes its records in batches of at most this many records or
// bytes (one IndexedDB transaction each).
const (
	importBatchRecords = 500
	importBatchBytes   = 8 << 20
)

// backupLimits are the bounds a backup is checked against. The exported
// functions use defaultBackupLimits; tests lower them to reach them.
type backupLimits struct {
	size    int          // bytes in the whole file
	records int          // records in the file
	cost    vault.Params // the costliest Argon2id an import runs
}

// defaultBackupLimits accepts files up to MaxBackupSize and
// MaxBackupRecords, and an Argon2id cost up to four times the default in
// memory and time, or the manager's own cost when that is higher.
func (m *Manager) defaultBackupLimits() backupLimits {
	cost := vault.Params{MemoryKiB: 4 * vault.DefaultMemoryKiB, Time: 4 * vault.DefaultTime, Threads: 4}
	own := m.argon2()
	cost.MemoryKiB = max(cost.MemoryKiB, own.MemoryKiB)
	cost.Time = max(cost.Time, own.Time)
	cost.Threads = max(cost.Threads, own.Threads)
	return backupLimits{size: MaxBackupSize, records: MaxBackupRecords, cost: cost}
}

// argon2 returns the passphrase KDF cost of new wrapped keys.
func (m *Manager) argon2() vault.Params {
	if m.cfg.Argon2 == (vault.Params{}) {
		return vault.DefaultParams()
	}
	return m.cfg.Argon2
}

// recordName is the full name of a profile's record, its associated data.
func recordName(id string, k store.Key) string { return path.Join(dataDir(id), string(k)) }

// backupRecord is one record of a backup file.
type backupRecord struct {
	name   store.Key
	sealed []byte
}

// ExportBackup returns a backup file of the unlocked profile id, its data
// key wrapped under backupPassphrase (at least MinPassphrase characters).
// It fails with ErrLocked when the profile is not unlocked, with ErrTooLong
// when the profile exceeds MaxBackupSize or MaxBackupRecords, and with
// store.ErrCorrupt when a stored record does not open (the backup could not
// be imported).
func (m *Manager) ExportBackup(id, backupPassphrase string) ([]byte, error) {
	return m.exportBackup(id, backupPassphrase, m.defaultBackupLimits())
}

func (m *Manager) exportBackup(id, backupPassphrase string, lim backupLimits) ([]byte, error) {
	if utf8.RuneCountInString(backupPassphrase) < MinPassphrase {
		return nil, fmt.Errorf("%w: a backup passphrase needs at least %d characters", ErrInvalid, MinPassphrase)
	}
	if _, err := m.meta(id); err != nil {
		return nil, err
	}
	m.mu.Lock()
	p := m.open[id]
	m.mu.Unlock()
	if p == nil {
		return nil, fmt.Errorf("%w: unlock it to export a backup", ErrLocked)
	}
	wrapped, err := vault.Wrap(rand.Reader, p.key, []byte(backupPassphrase), m.argon2())
	if err != nil {
		return nil, fmt.Errorf("chat: wrapping the backup key: %w", err)
	}
	// Chat records do not change while p.mu is held; the agent's may.
	p.mu.Lock()
	recs, size, err := readRecords(m.fs, dataDir(id), lim)
	p.mu.Unlock()
	if err != nil {
		return nil, err
	}
	// ImportBackup takes only records that open: a damaged one is reported
	// now rather than found when the backup is needed.
	for _, r := range recs {
		pt, err := vault.Open(p.key, recordName(id, r.name), r.sealed)
		if err != nil {
			return nil, fmt.Errorf("%w: %s: %w", store.ErrCorrupt, r.name, err)
		}
		clear(pt)
	}
	out := make([]byte, 0, size)
	out = append(out, backupMagic...)
	out = append(out, backupVersion)
	out = append(out, id...)
	out = append(out, wrapped...)
	out = binary.BigEndian.AppendUint32(out, uint32(len(recs)))
	for _, r := range recs {
		out = binary.BigEndian.AppendUint16(out, uint16(len(r.name)))
		out = append(out, r.name...)
		out = binary.BigEndian.AppendUint32(out, uint32(len(r.sealed)))
		out = append(out, r.sealed...)
	}
	sum := sha256.Sum256(out)
	seal, err := vault.Seal(rand.Reader, p.key, backupSealAD, sum[:])
	if err != nil {
		return nil, fmt.Errorf("chat: sealing the backup: %w", err)
	}
	out = append(out, seal...)
	check := sha256.Sum256(out)
	return append(out, check[:]...), nil
}

// readRecords reads the sealed records under dir, sorted by name, and
// returns them with the size of the backup file holding them. Temporary
// files and anything that is not a record name are skipped.
func readRecords(fsys hackpadfs.FS, dir string, lim backupLimits) ([]backupRecord, int, error) {
	var recs []backupRecord
	size := backupHeader + backupTrailer
	err := hackpadfs.WalkDir(fsys, dir, func(name string, d fs.DirEntry, err error) error {
		if errors.Is(err, fs.ErrNotExist) && name != dir {
			return nil // deleted while we walk
		}
		if err != nil {
			return err
		}
		if name == dir {
			return nil
		}
		rel := store.Key(strings.TrimPrefix(name, dir+"/"))
		if strings.HasPrefix(d.Name(), ".") || !rel.Valid() {
			if d.IsDir() {
				return fs.SkipDir
			}
			return nil
		}
		if d.IsDir() {
			return nil
		}
		sealed, err := hackpadfs.ReadFile(fsys, name)
		if errors.Is(err, fs.ErrNotExist) {
			return nil
		}
		if err != nil {
			return err
		}
		if len(sealed) < minSealed || len(sealed) > maxSealed {
			return fmt.Errorf("%w: %s: a record of %d bytes", store.ErrCorrupt, rel, len(sealed))
		}
		if len(recs) == lim.records {
			return fmt.Errorf("%w: the profile has more than %d records", ErrTooLong, lim.records)
		}
		if size += recordHeader + len(rel) + len(sealed); size > lim.size {
			return fmt.Errorf("%w: the backup would be over %d bytes", ErrTooLong, lim.size)
		}
		recs = append(recs, backupRecord{name: rel, sealed: sealed})
		return nil
	})
	if err != nil {
		if errors.Is(err, ErrTooLong) || errors.Is(err, store.ErrCorrupt) {
			return nil, 0, err
		}
		return nil, 0, fmt.Errorf("chat: reading the profile's records: %w", err)
	}
	sort.Slice(recs, func(i, j int) bool { return recs[i].name < recs[j].name })
	return recs, size, nil
}

// backupFile is a parsed backup whose layout and check are valid.
type backupFile struct {
	id      string // the exported profile's ID
	wrapped []byte
	records []backupRecord // aliasing the file
	body    []byte         // what the seal covers
	seal    []byte
}

func badBackup(format string, args ...any) error {
	return fmt.Errorf("%w: not a valid Wisp backup: %s", ErrInvalid, fmt.Sprintf(format, args...))
}

// parseBackup checks the size, the check and the layout of a backup file.
func parseBackup(data []byte, lim backupLimits) (*backupFile, error) {
	if len(data) > lim.size {
		return nil, fmt.Errorf("%w: %w: the backup is %d bytes, the limit is %d", ErrInvalid, ErrTooLong, len(data), lim.size)
	}
	if len(data) < backupHeader+backupTrailer || !bytes.HasPrefix(data, []byte(backupMagic)) {
		if bytes.HasPrefix(data, []byte(backupMagic)) {
			return nil, badBackup("truncated (%d bytes)", len(data))
		}
		return nil, badBackup("not a backup file")
	}
	if v := data[len(backupMagic)]; v != backupVersion {
		return nil, badBackup("unsupported version %d", v)
	}
	body := data[:len(data)-backupCheckSize]
	if sum := sha256.Sum256(body); !bytes.Equal(sum[:], data[len(body):]) {
		return nil, badBackup("damaged or truncated (checksum mismatch)")
	}
	f := &backupFile{
		id:      string(data[backupIDOff:backupKeyOff]),
		wrapped: data[backupKeyOff:backupCountOff],
		body:    body[:len(body)-backupSealSize],
		seal:    body[len(body)-backupSealSize:],
	}
	if !validProfileID(f.id) {
		return nil, badBackup("bad profile ID")
	}
	n := binary.BigEndian.Uint32(data[backupCountOff:])
	if n == 0 || uint64(n) > uint64(lim.records) {
		return nil, badBackup("%d records, the limit is %d", n, lim.records)
	}
	// Each record takes at least recordHeader+1+minSealed bytes: a count
	// the file cannot hold is refused before anything is allocated for it.
	rest := f.body[backupHeader:]
	if uint64(n)*(recordHeader+1+minSealed) > uint64(len(rest)) {
		return nil, badBackup("%d records do not fit in %d bytes", n, len(rest))
	}
	f.records = make([]backupRecord, 0, n)
	for i := range n {
		if len(rest) < 2 {
			return nil, badBackup("record %d: truncated", i)
		}
		nameLen := int(binary.BigEndian.Uint16(rest))
		if nameLen == 0 || nameLen > maxRecordName || len(rest) < 2+nameLen+4 {
			return nil, badBackup("record %d: bad name length", i)
		}
		name := store.Key(rest[2 : 2+nameLen])
		if !name.Valid() {
			return nil, badBackup("record %d: bad name", i)
		}
		if i > 0 && name <= f.records[i-1].name {
			return nil, badBackup("record %d: out of order or repeated", i)
		}
		rest = rest[2+nameLen:]
		sealedLen := binary.BigEndian.Uint32(rest)
		if sealedLen < minSealed || sealedLen > maxSealed || uint64(sealedLen) > uint64(len(rest)-4) {
			return nil, badBackup("record %d: bad length", i)
		}
		f.records = append(f.records, backupRecord{name: name, sealed: rest[4 : 4+sealedLen]})
		rest = rest[4+sealedLen:]
	}
	if len(rest) != 0 {
		return nil, badBackup("%d unexpected bytes after the records", len(rest))
	}
	return f, nil
}

// ImportBackup creates a new profile from a backup file made by
// ExportBackup and returns its ID. backupPassphrase is the one the backup
// was exported with (ErrWrongPassphrase otherwise); newPassphrase protects
// the new profile, or "" for no passphrase. A damaged or forged file fails
// with an error wrapping ErrInvalid (and ErrTooLong when it is over
// MaxBackupSize). Nothing is written unless the whole file is valid. The new
// profile is locked. It receives on the same relay queues as the exported
// profile: whichever of the two subscribed last gets the messages and the
// other is told END, so a backup is for moving or restoring a profile, not
// for running it on two devices.
func (m *Manager) ImportBackup(ctx context.Context, data []byte, backupPassphrase, newPassphrase string) (string, error) {
	return m.importBackup(ctx, data, backupPassphrase, newPassphrase, m.defaultBackupLimits())
}

func (m *Manager) importBackup(ctx context.Context, data []byte, backupPassphrase, newPassphrase string, lim backupLimits) (string, error) {
	if newPassphrase != "" && utf8.RuneCountInString(newPassphrase) < MinPassphrase {
		return "", fmt.Errorf("%w: a passphrase needs at least %d characters", ErrInvalid, MinPassphrase)
	}
	f, err := parseBackup(data, lim)
	if err != nil {
		return "", err
	}
	params, err := vault.WrappedParams(f.wrapped)
	if err != nil {
		return "", badBackup("the wrapped key: %v", err)
	}
	if params.MemoryKiB > lim.cost.MemoryKiB || params.Time > lim.cost.Time || params.Threads > lim.cost.Threads {
		return "", badBackup("the key derivation is too costly (%d KiB, %d passes, %d lanes)", params.MemoryKiB, params.Time, params.Threads)
	}
	key, err := vault.Unwrap([]byte(backupPassphrase), f.wrapped)
	if errors.Is(err, vault.ErrWrongPassphrase) {
		return "", ErrWrongPassphrase
	}
	if err != nil {
		return "", badBackup("the wrapped key: %v", err)
	}
	sum := sha256.Sum256(f.body)
	got, err := vault.Open(key, backupSealAD, f.seal)
	if err != nil || subtle.ConstantTimeCompare(got, sum[:]) != 1 {
		return "", badBackup("the file was altered")
	}
	if err := f.verifyRecords(ctx, key); err != nil {
		return "", err
	}
	return m.writeImport(ctx, f, key, newPassphrase)
}

// verifyRecords checks that every record opens and that the profile record
// is readable.
func (f *backupFile) verifyRecords(ctx context.Context, key vault.Key) error {
	found := false
	for i, r := range f.records {
		if err := ctx.Err(); err != nil {
			return err
		}
		pt, err := vault.Open(key, recordName(f.id, r.name), r.sealed)
		if err != nil {
			return badBackup("record %d does not open: %v", i, err)
		}
		if r.name == "profile" {
			var rec profileRecord
			if err := json.Unmarshal(pt, &rec); err != nil {
				return badBackup("the profile record: %v", err)
			}
			if _, err := cleanName(rec.DisplayName); err != nil {
				return badBackup("the profile record: %v", err)
			}
			found = true
		}
		clear(pt)
	}
	if !found {
		return badBackup("no profile record")
	}
	return nil
}

// writeImport writes a verified backup as a new profile with a fresh ID and
// data key: its records, then its key record, which makes it exist. On any
// failure it removes what it wrote.
func (m *Manager) writeImport(ctx context.Context, f *backupFile, oldKey vault.Key, newPassphrase string) (id string, err error) {
	key, err := vault.NewKey(rand.Reader)
	if err != nil {
		return "", err
	}
	meta := profileMeta{V: 1, ID: randomHex(8), Created: time.Now().UTC(), Mode: modeKey, Key: key.Bytes()}
	if newPassphrase != "" {
		meta.Mode = modePassphrase
		if meta.Key, err = vault.Wrap(rand.Reader, key, []byte(newPassphrase), m.argon2()); err != nil {
			return "", err
		}
	}
	b, err := json.Marshal(meta)
	if err != nil {
		return "", err
	}
	defer func() {
		if err != nil {
			_ = hackpadfs.Remove(m.fs, metaPath(meta.ID))
			_ = hackpadfs.RemoveAll(m.fs, dataDir(meta.ID))
		}
	}()
	st, err := store.Open(m.fs, dataDir(meta.ID), store.VaultSealer(key))
	if err != nil {
		return "", err
	}
	// In batches: on IndexedDB a batch is one transaction, where a record
	// each made an import of a year of history take most of a minute. A
	// crash midway leaves records without the profile's key file (written
	// last), which nothing lists.
	var batch store.Batch
	var plain [][]byte // cleared once written
	size := 0
	flush := func() error {
		err := st.Apply(&batch)
		for _, pt := range plain {
			clear(pt)
		}
		batch, plain, size = store.Batch{}, plain[:0], 0
		return err
	}
	for _, r := range f.records {
		if err := ctx.Err(); err != nil {
			return "", err
		}
		pt, err := vault.Open(oldKey, recordName(f.id, r.name), r.sealed)
		if err != nil {
			return "", fmt.Errorf("chat: importing: %w", err) // verified above: unreachable
		}
		batch.Put(r.name, pt)
		plain = append(plain, pt)
		if size += len(pt); batch.Len() >= importBatchRecords || size >= importBatchBytes {
			if err := flush(); err != nil {
				return "", fmt.Errorf("chat: importing: %w", err)
			}
		}
	}
	if err := flush(); err != nil {
		return "", fmt.Errorf("chat: importing: %w", err)
	}
	// Its connections re-sync their encryption at the first unlock: the
	// ratchet states in a backup may be older than the contacts' (resync.go).
	if err := st.Put(restoredKey, []byte(time.Now().UTC().Format(time.RFC3339))); err != nil {
		return "", fmt.Errorf("chat: importing: %w", err)
	}
	if err := hackpadfs.MkdirAll(m.fs, metaDir, 0o700); err != nil {
		return "", fmt.Errorf("chat: importing: %w", err)
	}
	if err := hackpadfs.WriteFullFile(m.fs, metaPath(meta.ID), b, 0o600); err != nil {
		return "", fmt.Errorf("chat: saving the imported profile: %w", err)
	}
	return meta.ID, nil
}
