//go:build !js

package chat

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/binary"
	"errors"
	"fmt"
	"io/fs"
	"path"
	"reflect"
	"slices"
	"strings"
	"testing"

	"github.com/hack-pad/hackpadfs"
	"github.com/hack-pad/hackpadfs/mem"
	"github.com/wisp-chat/wisp/crypto/vault"
	"github.com/wisp-chat/wisp/server/wire"
	"github.com/wisp-chat/wisp/wasm/internal/relaytest"
	"github.com/wisp-chat/wisp/wasm/store"
)

const (
	bkPass    = "the profile passphrase"
	bkBackup  = "a separate backup passphrase"
	bkNewPass = "the passphrase on the new browser"
)

// bkManager is a Manager over a fresh in-memory file system, without relays.
func bkManager(t testing.TB) *Manager {
	t.Helper()
	fsys, err := mem.NewFS()
	if err != nil {
		t.Fatal(err)
	}
	m := NewManager(fsys, Config{Origin: "http://127.0.0.1:8080", Argon2: fastArgon})
	t.Cleanup(m.Close)
	return m
}

// bkFiles returns every file of fsys with its content.
func bkFiles(t testing.TB, fsys hackpadfs.FS) map[string]string {
	t.Helper()
	out := map[string]string{}
	err := hackpadfs.WalkDir(fsys, ".", func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		b, err := hackpadfs.ReadFile(fsys, p)
		out[p] = string(b)
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// bkRelay is a well-formed relay address; nothing listens there.
func bkRelay(n byte) string {
	return wire.Address{KeyHash: wire.KeyHash{n, 1, 2, 3}, Host: fmt.Sprintf("relay%d.example", n), Port: 443}.String()
}

// bkLongest returns the longest record name.
func bkLongest() string {
	return strings.TrimSuffix(strings.Repeat(strings.Repeat("k", 64)+"/", store.MaxDepth), "/")
}

// bkExtra returns records to put beside the profile record: empty, nested
// to the deepest and longest key, and larger ones.
func bkExtra() map[store.Key][]byte {
	return map[store.Key][]byte{
		"x/empty":              {},
		"x/a/b/c/d/e/f/g":      []byte("deep"),
		store.Key(bkLongest()): []byte("long"),
		"x/big":                bytes.Repeat([]byte("0123456789"), 3000),
		"x/Z_-9":               []byte("names use the whole alphabet"),
		"c-1":                  []byte("sorts before c/…"),
		"c/x0123456789/msg":    []byte("{}"),
	}
}

// bkProfile creates and unlocks a profile with an avatar, relays and extra
// records, and returns it.
func bkProfile(t testing.TB, m *Manager, pass string) *Profile {
	t.Helper()
	ctx := context.Background()
	id, err := m.CreateProfile(ctx, NewProfile{DisplayName: "Ada", Passphrase: pass})
	if err != nil {
		t.Fatal(err)
	}
	p, err := m.Unlock(ctx, id, pass, nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := p.Update("Ada Lovelace", []byte("\x89PNG avatar bytes")); err != nil {
		t.Fatal(err)
	}
	if err := p.SetRelays([]string{bkRelay(1), bkRelay(2)}, bkRelay(2)); err != nil {
		t.Fatal(err)
	}
	for k, v := range bkExtra() {
		if err := p.st.Put(k, v); err != nil {
			t.Fatal(err)
		}
	}
	return p
}

// bkRecords opens every record of an unlocked profile.
func bkRecords(t testing.TB, p *Profile) map[store.Key]string {
	t.Helper()
	dir := dataDir(p.id)
	out := map[store.Key]string{}
	err := hackpadfs.WalkDir(p.m.fs, dir, func(name string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() || strings.Contains(name, "/.") {
			return err
		}
		k := store.Key(strings.TrimPrefix(name, dir+"/"))
		b, err := p.st.Get(k)
		out[k] = string(b)
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	return out
}

func bkExport(t testing.TB, m *Manager, id, pass string) []byte {
	t.Helper()
	b, err := m.ExportBackup(id, pass)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// bkImportUnlock imports a backup made with bkBackup without a passphrase
// and unlocks it.
func bkImportUnlock(t testing.TB, m *Manager, data []byte) *Profile {
	t.Helper()
	id, err := m.ImportBackup(context.Background(), data, bkBackup, "")
	if err != nil {
		t.Fatal(err)
	}
	p, err := m.Unlock(context.Background(), id, "", nil)
	if err != nil {
		t.Fatal(err)
	}
	return p
}

func TestBackupRoundTrip(t *testing.T) {
	ctx := context.Background()
	for _, tc := range []struct {
		name, pass, backup, newPass string
	}{
		{"passphrase profile, same passphrase, new passphrase", bkPass, bkPass, bkNewPass},
		{"passphrase profile, backup passphrase, no passphrase", bkPass, bkBackup, ""},
		{"no-passphrase profile, backup passphrase, new passphrase", "", bkBackup, bkNewPass},
		{"no-passphrase profile, backup passphrase, no passphrase", "", bkBackup, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			src := bkManager(t)
			p := bkProfile(t, src, tc.pass)
			want, wantInfo := bkRecords(t, p), p.Info()
			data := bkExport(t, src, p.id, tc.backup)

			// Nothing readable in the file: not the name, the avatar, a
			// relay, a record, nor (without a passphrase) the data key.
			raw, err := hackpadfs.ReadFile(src.fs, metaPath(p.id))
			if err != nil {
				t.Fatal(err)
			}
			for _, s := range []string{"Ada Lovelace", "avatar bytes", "relay1.example", "deep", "90123456789012", string(p.key.Bytes())} {
				if bytes.Contains(data, []byte(s)) {
					t.Errorf("the backup contains %q", s)
				}
			}
			if tc.pass == "" && !bytes.Contains(raw, []byte(`"mode":"key"`)) {
				t.Errorf("the source profile is not in key mode: %s", raw)
			}

			dst := bkManager(t)
			id, err := dst.ImportBackup(ctx, data, tc.backup, tc.newPass)
			if err != nil {
				t.Fatal(err)
			}
			if id == p.id || !validProfileID(id) {
				t.Errorf("imported profile ID %q (source %q)", id, p.id)
			}
			list, err := dst.Profiles()
			if err != nil || len(list) != 1 || list[0].ID != id || list[0].Passphrase != (tc.newPass != "") || list[0].Unlocked {
				t.Fatalf("profiles after import: %+v %v", list, err)
			}
			if tc.newPass != "" {
				for _, wrong := range []string{"", tc.backup, tc.pass} {
					if wrong == tc.newPass {
						continue
					}
					if _, err := dst.Unlock(ctx, id, wrong, nil); !errors.Is(err, ErrWrongPassphrase) {
						t.Errorf("unlock with %q: %v", wrong, err)
					}
				}
			}
			q, err := dst.Unlock(ctx, id, tc.newPass, nil)
			if err != nil {
				t.Fatal(err)
			}
			if q.key.Equal(p.key) {
				t.Error("the imported profile reuses the data key")
			}
			gotInfo := q.Info()
			gotInfo.ID, wantInfo.ID = "", ""
			if !reflect.DeepEqual(gotInfo, wantInfo) {
				t.Errorf("info %+v, want %+v", gotInfo, wantInfo)
			}
			if got := bkRecords(t, q); !reflect.DeepEqual(got, want) {
				t.Errorf("records differ:\n got %d: %q\nwant %d: %q", len(got), bkKeys(got), len(want), bkKeys(want))
			}
			// The imported profile exports again, and that imports too.
			r := bkImportUnlock(t, src, bkExport(t, dst, id, bkBackup))
			if got := bkRecords(t, r); !reflect.DeepEqual(got, want) {
				t.Errorf("records after a second round trip differ")
			}
		})
	}
}

func bkKeys(m map[store.Key]string) []store.Key {
	var out []store.Key
	for k := range m {
		out = append(out, k)
	}
	return out
}

func TestBackupRestoresConversation(t *testing.T) {
	r1, r2 := relaytest.Start(t), relaytest.Start(t)
	alice := newUser(t, "Alice", "alice's passphrase", r1)
	bob := newUser(t, "Bob", "", r2)
	ab, ba := connect(t, alice, bob, false)
	for i := range 3 {
		if _, err := alice.p.SendText(ctxT(t), ab, fmt.Sprintf("from alice %d", i)); err != nil {
			t.Fatal(err)
		}
		if _, err := bob.p.SendText(ctxT(t), ba, fmt.Sprintf("from bob %d", i)); err != nil {
			t.Fatal(err)
		}
	}
	waitFor(t, "both conversations delivered", func() (bool, error) {
		for _, side := range []struct {
			u  *user
			id string
		}{{alice, ab}, {bob, ba}} {
			msgs, err := side.u.p.Messages(side.id, 0, 50)
			if err != nil || len(msgs) != 6 {
				return false, err
			}
			for _, m := range msgs {
				if !m.Incoming && m.Status != StatusDelivered {
					return false, nil
				}
			}
		}
		return true, nil
	})
	wantContact, err := alice.p.Contact(ab)
	if err != nil {
		t.Fatal(err)
	}
	wantMsgs, err := alice.p.Messages(ab, 0, 50)
	if err != nil {
		t.Fatal(err)
	}
	data := bkExport(t, alice.m, alice.id, bkBackup)
	alice.m.Close() // alice moves to a new browser

	moved := &user{t: t, pass: bkNewPass}
	if moved.fs, err = mem.NewFS(); err != nil {
		t.Fatal(err)
	}
	moved.m = NewManager(moved.fs, moved.config(r1))
	t.Cleanup(moved.m.Close)
	if moved.id, err = moved.m.ImportBackup(ctxT(t), data, bkBackup, bkNewPass); err != nil {
		t.Fatal(err)
	}
	moved.unlock()
	// Written before the contact's answer: it waits, and goes out under
	// the new keys.
	if _, err := moved.p.SendText(ctxT(t), ab, "sent before the re-sync"); err != nil {
		t.Fatal(err)
	}
	gotContact, err := moved.p.Contact(ab)
	if err != nil {
		t.Fatal(err)
	}
	gotContact.LastText, gotContact.LastTime, gotContact.Unread, gotContact.NextSeq = wantContact.LastText, wantContact.LastTime, wantContact.Unread, wantContact.NextSeq
	if !reflect.DeepEqual(gotContact, wantContact) {
		t.Errorf("contact %+v, want %+v", gotContact, wantContact)
	}
	gotMsgs, err := moved.p.Messages(ab, 0, 50)
	if err != nil || !reflect.DeepEqual(gotMsgs[:len(wantMsgs)], wantMsgs) {
		t.Errorf("messages %+v, want %+v (%v)", gotMsgs, wantMsgs, err)
	}
	// The restored ratchet states may be older than bob's: both sides
	// agree on new keys before the restored side sends anything, and say
	// so in the conversation.
	for _, side := range []struct {
		u  *user
		id string
	}{{moved, ab}, {bob, ba}} {
		waitFor(t, "the re-sync notices", func() (bool, error) {
			m, err := side.u.p.Messages(side.id, 0, 50)
			return hasNotice(m, "Re-synchronising encryption…") && hasNotice(m, "Encryption re-synced. The security code changed: compare it again if you had verified it."), err
		})
	}
	codeA, err := moved.p.SecurityCode(ab)
	if err != nil || len(codeA) != 71 {
		t.Errorf("security code after import: %q %v", codeA, err)
	}
	if codeB, err := bob.p.SecurityCode(ba); err != nil || codeB != codeA {
		t.Errorf("security codes differ after the re-sync: %q / %q (%v)", codeA, codeB, err)
	}
	if enc, err := moved.p.Encryption(ab); err != nil || enc.State != EncryptionOK {
		t.Errorf("encryption after the re-sync: %+v %v", enc, err)
	}
	// The conversation goes on from the restored profile, both ways.
	if _, err := bob.p.SendText(ctxT(t), ba, "welcome back"); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "a message to the restored profile", func() (bool, error) {
		m, err := moved.p.Messages(ab, 0, 50)
		got := textMessage(m, "welcome back")
		return got != nil && got.Missing == 0 && !got.BadHash, err
	})
	if _, err := moved.p.SendText(ctxT(t), ab, "thanks"); err != nil {
		t.Fatal(err)
	}
	for _, text := range []string{"sent before the re-sync", "thanks"} {
		waitFor(t, "messages from the restored profile", func() (bool, error) {
			m, err := bob.p.Messages(ba, 0, 50)
			got := textMessage(m, text)
			return got != nil && got.Missing == 0 && !got.BadHash, err
		})
		waitFor(t, "delivered", func() (bool, error) {
			m, err := moved.p.Messages(ab, 0, 50)
			got := textMessage(m, text)
			return got != nil && got.Status == StatusDelivered, err
		})
	}
}

func hasNotice(msgs []Message, text string) bool {
	for _, m := range msgs {
		if m.Notice && m.Text == text {
			return true
		}
	}
	return false
}

// textMessage finds a message (not a notice) by its text.
func textMessage(msgs []Message, text string) *Message {
	for i, m := range msgs {
		if !m.Notice && m.Text == text {
			return &msgs[i]
		}
	}
	return nil
}

// bkRecheck replaces the file's check with the right one, as a forger would.
func bkRecheck(b []byte) []byte {
	b = bytes.Clone(b)
	sum := sha256.Sum256(b[:len(b)-sha256.Size])
	copy(b[len(b)-sha256.Size:], sum[:])
	return b
}

// bkReseal replaces the seal and the check, as someone holding the data key
// would.
func bkReseal(t testing.TB, b []byte, key vault.Key) []byte {
	t.Helper()
	body := b[:len(b)-backupTrailer]
	sum := sha256.Sum256(body)
	seal, err := vault.Seal(rand.Reader, key, "wisp/v1/backup/seal", sum[:])
	if err != nil {
		t.Fatal(err)
	}
	out := append(append(bytes.Clone(body), seal...), make([]byte, sha256.Size)...)
	return bkRecheck(out)
}

// bkEncode builds a backup file from its parts, following the layout in the
// documentation of backup.go, independently of ExportBackup.
func bkEncode(t testing.TB, id string, wrapped []byte, names []string, sealed [][]byte, key vault.Key) []byte {
	t.Helper()
	b := append([]byte("WISPBAK\x01"), id...)
	b = append(b, wrapped...)
	b = binary.BigEndian.AppendUint32(b, uint32(len(names)))
	for i, n := range names {
		b = binary.BigEndian.AppendUint16(b, uint16(len(n)))
		b = append(b, n...)
		b = binary.BigEndian.AppendUint32(b, uint32(len(sealed[i])))
		b = append(b, sealed[i]...)
	}
	return bkReseal(t, append(b, make([]byte, backupTrailer)...), key)
}

// bkImportFails imports data, expects an error matching one of want, and
// checks that nothing was written.
func bkImportFails(t *testing.T, m *Manager, what string, data []byte, pass string, want ...error) {
	t.Helper()
	before := bkFiles(t, m.fs)
	id, err := m.ImportBackup(context.Background(), data, pass, "")
	if !slices.ContainsFunc(want, func(w error) bool { return errors.Is(err, w) }) {
		t.Errorf("%s: %q, %v, want %v", what, id, err, want)
	}
	if after := bkFiles(t, m.fs); !reflect.DeepEqual(before, after) {
		t.Errorf("%s: files changed: %d → %d", what, len(before), len(after))
	}
}

func TestBackupWrongPassphrase(t *testing.T) {
	m := bkManager(t)
	p := bkProfile(t, m, bkPass)
	data := bkExport(t, m, p.id, bkBackup)
	for _, pass := range []string{"", bkPass, bkBackup + " ", strings.ToUpper(bkBackup), bkBackup[1:]} {
		bkImportFails(t, m, fmt.Sprintf("passphrase %q", pass), data, pass, ErrWrongPassphrase)
	}
}

func TestBackupDamaged(t *testing.T) {
	m := bkManager(t)
	p := bkProfile(t, m, "")
	if err := p.st.Delete("x/big"); err != nil { // a small file keeps this test fast
		t.Fatal(err)
	}
	data := bkExport(t, m, p.id, bkBackup)
	// A second, empty manager: a failed import must leave it empty.
	dst := bkManager(t)

	bkImportFails(t, dst, "nil", nil, bkBackup, ErrInvalid)
	bkImportFails(t, dst, "empty", []byte{}, bkBackup, ErrInvalid)
	for n := range len(data) {
		bkImportFails(t, dst, fmt.Sprintf("truncated to %d bytes", n), data[:n], bkBackup, ErrInvalid)
	}
	for _, tail := range [][]byte{{0}, make([]byte, 73), data} {
		bkImportFails(t, dst, fmt.Sprintf("%d bytes appended", len(tail)), append(bytes.Clone(data), tail...), bkBackup, ErrInvalid)
	}
	for i := range data {
		for _, bit := range []byte{1, 0x80} {
			b := bytes.Clone(data)
			b[i] ^= bit
			bkImportFails(t, dst, fmt.Sprintf("bit %#x of byte %d flipped", bit, i), b, bkBackup, ErrInvalid)
		}
	}
	// The same flips by a forger who fixes the check.
	for i := range len(data) - sha256.Size {
		b := bytes.Clone(data)
		b[i] ^= 1 << (i % 8)
		want := []error{ErrInvalid}
		if i >= 24 && i < 123 {
			// The wrapped key: bad parameters are invalid; otherwise its
			// own authentication fails, as with a wrong passphrase.
			want = append(want, ErrWrongPassphrase)
		}
		bkImportFails(t, dst, fmt.Sprintf("byte %d flipped, check fixed", i), bkRecheck(b), bkBackup, want...)
	}
	bkImportFails(t, dst, "other file", []byte("PK\x03\x04 a zip file, not a backup"), bkBackup, ErrInvalid)
	if list, err := dst.Profiles(); err != nil || len(list) != 0 {
		t.Errorf("profiles after failed imports: %+v %v", list, err)
	}
	if files := bkFiles(t, dst.fs); len(files) != 0 {
		t.Errorf("files after failed imports: %d", len(files))
	}
	// The intact file still imports.
	if _, err := dst.ImportBackup(context.Background(), data, bkBackup, ""); err != nil {
		t.Fatal(err)
	}
}

func TestBackupSizeLimits(t *testing.T) {
	ctx := context.Background()
	m := bkManager(t)
	p := bkProfile(t, m, bkPass)
	data := bkExport(t, m, p.id, bkBackup)
	_, names, _ := bkParse(t, data)
	n := len(names)
	if n != len(bkExtra())+1 {
		t.Fatalf("%d records, want %d", n, len(bkExtra())+1)
	}

	// The real limits: a file over MaxBackupSize, a count over MaxBackupRecords.
	big := make([]byte, MaxBackupSize+1)
	copy(big, data)
	bkImportFails(t, m, "a file over MaxBackupSize", big, bkBackup, ErrTooLong)
	bkImportFails(t, m, "a file over MaxBackupSize", big, bkBackup, ErrInvalid)
	b := bytes.Clone(data)
	binary.BigEndian.PutUint32(b[123:], MaxBackupRecords+1)
	bkImportFails(t, m, "a count over MaxBackupRecords", bkRecheck(b), bkBackup, ErrInvalid)

	// Lowered limits: exactly at the limit passes, one over fails, on both sides.
	lim := m.defaultBackupLimits()
	lim.size, lim.records = len(data), n
	if _, err := m.exportBackup(p.id, bkBackup, lim); err != nil {
		t.Errorf("export at the limits: %v", err)
	}
	if _, err := m.importBackup(ctx, data, bkBackup, "", lim); err != nil {
		t.Errorf("import at the limits: %v", err)
	}
	for _, tc := range []struct {
		name string
		lim  backupLimits
	}{
		{"one byte under the size", backupLimits{size: len(data) - 1, records: n, cost: lim.cost}},
		{"one record under the count", backupLimits{size: len(data), records: n - 1, cost: lim.cost}},
	} {
		if _, err := m.exportBackup(p.id, bkBackup, tc.lim); !errors.Is(err, ErrTooLong) {
			t.Errorf("export with %s: %v", tc.name, err)
		}
		before := bkFiles(t, m.fs)
		if _, err := m.importBackup(ctx, data, bkBackup, "", tc.lim); !errors.Is(err, ErrInvalid) {
			t.Errorf("import with %s: %v", tc.name, err)
		}
		if after := bkFiles(t, m.fs); !reflect.DeepEqual(before, after) {
			t.Errorf("import with %s wrote files", tc.name)
		}
	}
}

func TestBackupRecordLimits(t *testing.T) {
	m := bkManager(t)
	p := bkProfile(t, m, "")
	if len(bkLongest()) != maxRecordName {
		t.Fatalf("the longest name has %d bytes, the limit is %d", len(bkLongest()), maxRecordName)
	}
	// The largest record the store takes goes through.
	largest := bytes.Repeat([]byte{7}, store.MaxRecordSize)
	if err := p.st.Put("x/largest", largest); err != nil {
		t.Fatal(err)
	}
	data := bkExport(t, m, p.id, bkBackup)
	q := bkImportUnlock(t, m, data)
	if got, err := q.st.Get("x/largest"); err != nil || !bytes.Equal(got, largest) {
		t.Fatalf("the largest record: %d bytes, %v", len(got), err)
	}
	// One byte more, or a name one byte longer, is refused, even sealed
	// with the data key.
	f, names, sealed := bkParse(t, data)
	i := slices.Index(names, "x/largest")
	names, sealed = slices.Delete(names, i, i+1), slices.Delete(sealed, i, i+1)
	for _, tc := range []struct {
		what, name string
		size       int
	}{
		{"a record over the size limit", "x/largest", store.MaxRecordSize + 1},
		{"a name over the length limit", bkLongest() + "k", 1},
	} {
		rec, err := vault.Seal(rand.Reader, p.key, dataDir(p.id)+"/"+tc.name, make([]byte, tc.size))
		if err != nil {
			t.Fatal(err)
		}
		n, s := bkInsert(names, sealed, tc.name, rec)
		bkImportFails(t, m, tc.what, bkEncode(t, f.id, f.wrapped, n, s, p.key), bkBackup, ErrInvalid)
	}
}

func TestBackupForged(t *testing.T) {
	m := bkManager(t)
	p := bkProfile(t, m, bkPass)
	data := bkExport(t, m, p.id, bkBackup)
	f, names, sealed := bkParse(t, data)
	at := func(name string) int {
		for i, n := range names {
			if n == name {
				return i
			}
		}
		t.Fatalf("no record %q", name)
		return -1
	}
	without := func(i int) ([]string, [][]byte) {
		return append(names[:i:i], names[i+1:]...), append(sealed[:i:i], sealed[i+1:]...)
	}
	// The layout is the documented one: rebuilt from its parts, it imports.
	if _, err := m.ImportBackup(context.Background(), bkEncode(t, f.id, f.wrapped, names, sealed, p.key), bkBackup, ""); err != nil {
		t.Fatalf("the file rebuilt from its documented layout: %v", err)
	}
	other := bkProfile(t, bkManager(t), bkPass)
	otherData := bkExport(t, other.m, other.id, bkBackup)

	// Edits by someone without the data key: the check is right, the seal is not.
	edit := func(f func(b []byte) []byte) []byte { return bkRecheck(f(bytes.Clone(data))) }
	prof := at("profile")
	for _, tc := range []struct {
		name string
		data []byte
		want error
	}{
		{"a flipped bit in a record", edit(func(b []byte) []byte { b[len(b)-backupTrailer-1] ^= 1; return b }), ErrInvalid},
		{"another profile ID", edit(func(b []byte) []byte { copy(b[8:], other.id); return b }), ErrInvalid},
		{"a profile ID that is not hex", edit(func(b []byte) []byte { b[8] = 'g'; return b }), ErrInvalid},
		{"version 2", edit(func(b []byte) []byte { b[7] = 2; return b }), ErrInvalid},
		{"another magic", edit(func(b []byte) []byte { b[0] = 'X'; return b }), ErrInvalid},
		{"a count one lower", edit(func(b []byte) []byte { b[126]--; return b }), ErrInvalid},
		{"a count of zero", edit(func(b []byte) []byte { copy(b[123:], []byte{0, 0, 0, 0}); return b }), ErrInvalid},
		{"another backup's seal", edit(func(b []byte) []byte {
			copy(b[len(b)-backupTrailer:], otherData[len(otherData)-backupTrailer:])
			return b
		}), ErrInvalid},
		{"another backup's key", edit(func(b []byte) []byte { copy(b[24:123], otherData[24:123]); return b }), ErrInvalid},
		{"costlier Argon2id than accepted", edit(func(b []byte) []byte {
			binary.BigEndian.PutUint32(b[24+2:], 4*vault.DefaultMemoryKiB+1)
			return b
		}), ErrInvalid},
		{"another Argon2id time", edit(func(b []byte) []byte { b[24+9]++; return b }), ErrWrongPassphrase},
		{"the records without the profile record", edit(func(b []byte) []byte {
			n, s := without(prof)
			return bkEncode(t, f.id, f.wrapped, n, s, other.key)
		}), ErrInvalid},
		{"records repeated", edit(func(b []byte) []byte {
			return bkEncode(t, f.id, f.wrapped, append(names[:1:1], names...), append(sealed[:1:1], sealed...), p.key)
		}), ErrInvalid},
		{"records reordered", edit(func(b []byte) []byte {
			n := append([]string(nil), names...)
			s := append([][]byte(nil), sealed...)
			n[0], n[1], s[0], s[1] = n[1], n[0], s[1], s[0]
			return bkEncode(t, f.id, f.wrapped, n, s, p.key)
		}), ErrInvalid},
		{"a bad record name", edit(func(b []byte) []byte {
			n := append([]string{"../x"}, names...)
			return bkEncode(t, f.id, f.wrapped, n, append(sealed[:1:1], sealed...), p.key)
		}), ErrInvalid},
	} {
		bkImportFails(t, m, tc.name, tc.data, bkBackup, tc.want)
	}

	// Files sealed with the data key (by someone holding it) are still
	// checked record by record.
	short := sealed[prof][:vault.RecordOverhead]
	for _, tc := range []struct {
		name   string
		names  []string
		sealed [][]byte
	}{
		{"no profile record", func() []string { n, _ := without(prof); return n }(), func() [][]byte { _, s := without(prof); return s }()},
		{"a record under another name", append(append(names[:prof:prof], "profilf"), names[prof+1:]...), sealed},
		{"a record of another profile", names, append(append(sealed[:prof:prof], bkSealedProfile(t, other)), sealed[prof+1:]...)},
		{"an empty sealed record", names, append(append(sealed[:prof:prof], short), sealed[prof+1:]...)},
	} {
		bkImportFails(t, m, tc.name, bkEncode(t, f.id, f.wrapped, tc.names, tc.sealed, p.key), bkBackup, ErrInvalid)
	}
	// A profile record that opens but is not a profile.
	bad, err := vault.Seal(rand.Reader, p.key, path.Join(dataDir(p.id), "profile"), []byte(`{"name":""}`))
	if err != nil {
		t.Fatal(err)
	}
	bkImportFails(t, m, "an unreadable profile record", bkEncode(t, f.id, f.wrapped, names, append(append(sealed[:prof:prof], bad), sealed[prof+1:]...), p.key), bkBackup, ErrInvalid)
	// A record sealed under a name that is not a store key.
	odd, err := vault.Seal(rand.Reader, p.key, path.Join(dataDir(p.id), "x//y"), []byte("v"))
	if err != nil {
		t.Fatal(err)
	}
	n, s := bkInsert(names, sealed, "x//y", odd)
	bkImportFails(t, m, "a name that is not a store key", bkEncode(t, f.id, f.wrapped, n, s, p.key), bkBackup, ErrInvalid)
	// Bytes between the records and the seal, sealed with the data key.
	b := bkEncode(t, f.id, f.wrapped, names, sealed, p.key)
	b = slices.Insert(b, len(b)-backupTrailer, 0, 0, 0, 0)
	bkImportFails(t, m, "bytes after the records", bkReseal(t, b, p.key), bkBackup, ErrInvalid)

	// The genuine seal over other contents: a record dropped, or an older
	// version of a record put back (a rollback).
	keepSeal := func(b, from []byte) []byte {
		copy(b[len(b)-backupTrailer:], from[len(from)-backupTrailer:])
		return bkRecheck(b)
	}
	n, s = without(at("x/empty"))
	bkImportFails(t, m, "a record dropped, the seal kept", keepSeal(bkEncode(t, f.id, f.wrapped, n, s, p.key), data), bkBackup, ErrInvalid)
	if err := p.Update("Ada Byron", nil); err != nil {
		t.Fatal(err)
	}
	newer := bkExport(t, m, p.id, bkBackup)
	g, _, gs := bkParse(t, newer)
	if bytes.Equal(gs[prof], sealed[prof]) {
		t.Fatal("the profile record did not change")
	}
	gs[prof] = sealed[prof]
	rolled := keepSeal(bkEncode(t, g.id, g.wrapped, names, gs, p.key), newer)
	bkImportFails(t, m, "an older record, the seal kept", rolled, bkBackup, ErrInvalid)
}

func TestBackupImportCleansUp(t *testing.T) {
	src := bkManager(t)
	p := bkProfile(t, src, "")
	data := bkExport(t, src, p.id, bkBackup)
	// A file where the profiles directory should be: the records are
	// written, then the key record cannot be.
	m := bkManager(t)
	if err := hackpadfs.WriteFullFile(m.fs, metaDir, []byte("in the way"), 0o600); err != nil {
		t.Fatal(err)
	}
	before := bkFiles(t, m.fs)
	if _, err := m.ImportBackup(context.Background(), data, bkBackup, ""); err == nil {
		t.Fatal("the import succeeded without a profiles directory")
	}
	if after := bkFiles(t, m.fs); !reflect.DeepEqual(before, after) {
		t.Errorf("a failed import left files: %d → %d", len(before), len(after))
	}
	var dirs []string
	if err := hackpadfs.WalkDir(m.fs, ".", func(p string, d fs.DirEntry, err error) error {
		if err == nil && d.IsDir() && p != "." {
			dirs = append(dirs, p)
		}
		return err
	}); err != nil || len(dirs) != 0 {
		t.Errorf("a failed import left directories %q (%v)", dirs, err)
	}
}

// bkParse parses a backup and returns its record names and sealed records.
func bkParse(t testing.TB, data []byte) (*backupFile, []string, [][]byte) {
	t.Helper()
	f, err := parseBackup(data, backupLimits{size: MaxBackupSize, records: MaxBackupRecords})
	if err != nil {
		t.Fatal(err)
	}
	names := make([]string, len(f.records))
	sealed := make([][]byte, len(f.records))
	for i, r := range f.records {
		names[i], sealed[i] = string(r.name), r.sealed
	}
	return f, names, sealed
}

// bkInsert returns names and sealed with one more record, in name order.
func bkInsert(names []string, sealed [][]byte, name string, rec []byte) ([]string, [][]byte) {
	i, _ := slices.BinarySearch(names, name)
	return slices.Insert(slices.Clone(names), i, name), slices.Insert(slices.Clone(sealed), i, rec)
}

// bkSealedProfile is the stored profile record of p.
func bkSealedProfile(t testing.TB, p *Profile) []byte {
	t.Helper()
	b, err := hackpadfs.ReadFile(p.m.fs, path.Join(dataDir(p.id), "profile"))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func TestBackupExportErrors(t *testing.T) {
	m := bkManager(t)
	p := bkProfile(t, m, bkPass)
	for _, pass := range []string{"", "short", "1234567", "ééééééé"} {
		if _, err := m.ExportBackup(p.id, pass); !errors.Is(err, ErrInvalid) {
			t.Errorf("backup passphrase %q: %v", pass, err)
		}
	}
	if _, err := m.ExportBackup(p.id, "éééééééé"); err != nil {
		t.Errorf("an 8-character backup passphrase: %v", err)
	}
	if _, err := m.ExportBackup("0123456789abcdef", bkBackup); !errors.Is(err, ErrNoProfile) {
		t.Errorf("unknown profile: %v", err)
	}
	if _, err := m.ExportBackup("../p", bkBackup); !errors.Is(err, ErrNoProfile) {
		t.Errorf("bad profile ID: %v", err)
	}
	// Damaged records are reported, not exported.
	name := path.Join(dataDir(p.id), "x", "a", "b", "c", "d", "e", "f", "g")
	good, err := hackpadfs.ReadFile(m.fs, name)
	if err != nil {
		t.Fatal(err)
	}
	for _, bad := range [][]byte{good[:3], append(slices.Clone(good[:len(good)-1]), good[len(good)-1]^1)} {
		if err := hackpadfs.WriteFullFile(m.fs, name, bad, 0o600); err != nil {
			t.Fatal(err)
		}
		if _, err := m.ExportBackup(p.id, bkBackup); !errors.Is(err, store.ErrCorrupt) {
			t.Errorf("a damaged %d-byte record: %v", len(bad), err)
		}
	}
	m.Lock(p.id)
	if _, err := m.ExportBackup(p.id, bkBackup); !errors.Is(err, ErrLocked) {
		t.Errorf("locked profile: %v", err)
	}
}

func TestBackupImportRefusals(t *testing.T) {
	m := bkManager(t)
	p := bkProfile(t, m, bkPass)
	data := bkExport(t, m, p.id, bkBackup)
	before := bkFiles(t, m.fs)
	if _, err := m.ImportBackup(context.Background(), data, bkBackup, "short"); !errors.Is(err, ErrInvalid) {
		t.Errorf("a short new passphrase: %v", err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := m.ImportBackup(ctx, data, bkBackup, ""); !errors.Is(err, context.Canceled) {
		t.Errorf("a cancelled import: %v", err)
	}
	if after := bkFiles(t, m.fs); !reflect.DeepEqual(before, after) {
		t.Errorf("refused imports wrote files")
	}
	// Importing into the browser that holds the original gives a second,
	// independent profile.
	id, err := m.ImportBackup(context.Background(), data, bkBackup, "")
	if err != nil {
		t.Fatal(err)
	}
	if list, err := m.Profiles(); err != nil || len(list) != 2 || id == p.id {
		t.Errorf("profiles: %+v %v", list, err)
	}
}

func TestBackupCostBound(t *testing.T) {
	m := NewManager(nil, Config{})
	if c := m.defaultBackupLimits().cost; c != (vault.Params{MemoryKiB: 256 << 10, Time: 12, Threads: 4}) {
		t.Errorf("default import cost bound %+v", c)
	}
	m = NewManager(nil, Config{Argon2: vault.Params{MemoryKiB: 512 << 10, Time: 2, Threads: 8}})
	if c := m.defaultBackupLimits().cost; c != (vault.Params{MemoryKiB: 512 << 10, Time: 12, Threads: 8}) {
		t.Errorf("import cost bound with a costlier configuration %+v", c)
	}
}

// bkFuzzPass is the backup passphrase of the seed corpus.
const bkFuzzPass = "fuzzing passphrase"

// FuzzImportBackup imports arbitrary files, as they are and with their
// check recomputed (to reach the layout and crypto checks): the import
// either succeeds or fails with ErrInvalid or ErrWrongPassphrase and writes
// nothing.
func FuzzImportBackup(f *testing.F) {
	src := bkManager(f)
	p := bkProfile(f, src, "")
	f.Add(bkExport(f, src, p.id, bkFuzzPass))
	f.Add([]byte("WISPBAK\x01"))
	lim := src.defaultBackupLimits()
	lim.cost = vault.Params{MemoryKiB: 4 * fastArgon.MemoryKiB, Time: 4, Threads: 4}
	f.Fuzz(func(t *testing.T, data []byte) {
		inputs := [][]byte{data}
		if len(data) >= sha256.Size {
			inputs = append(inputs, bkRecheck(data))
		}
		for _, in := range inputs {
			fsys, err := mem.NewFS()
			if err != nil {
				t.Fatal(err)
			}
			m := NewManager(fsys, Config{Argon2: fastArgon})
			id, err := m.importBackup(context.Background(), in, bkFuzzPass, "", lim)
			if err != nil {
				if !errors.Is(err, ErrInvalid) && !errors.Is(err, ErrWrongPassphrase) {
					t.Fatalf("unexpected error: %v", err)
				}
				if files := bkFiles(t, fsys); len(files) != 0 {
					t.Fatalf("a failed import wrote %d files: %v", len(files), err)
				}
				continue
			}
			if list, err := m.Profiles(); err != nil || len(list) != 1 || list[0].ID != id {
				t.Fatalf("imported %q, profiles %+v %v", id, list, err)
			}
		}
	})
}

// TestBackupImportBatches imports a profile whose records fill several of
// the import's batches, ending one by the record count and one by the
// byte count (importBatchRecords, importBatchBytes), and finds every
// record as it was.
func TestBackupImportBatches(t *testing.T) {
	src := bkManager(t)
	p := bkProfile(t, src, "")
	for i := range 2*importBatchRecords + 7 {
		if err := p.st.Put(store.Key(fmt.Sprintf("bulk/small/%05d", i)), []byte(fmt.Sprintf("record %d", i))); err != nil {
			t.Fatal(err)
		}
	}
	big := importBatchBytes/3 + 1 // three of them end a batch by size
	for i := range 4 {
		if err := p.st.Put(store.Key(fmt.Sprintf("bulk/big/%d", i)), bytes.Repeat([]byte{byte('a' + i)}, big)); err != nil {
			t.Fatal(err)
		}
	}
	want := bkRecords(t, p)
	q := bkImportUnlock(t, bkManager(t), bkExport(t, src, p.id, bkBackup))
	if got := bkRecords(t, q); !reflect.DeepEqual(got, want) {
		t.Errorf("records differ: got %d, want %d", len(got), len(want))
	}
}
