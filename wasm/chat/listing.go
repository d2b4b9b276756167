package chat

import (
	"crypto/rand"
	"encoding/json"
	"errors"
	"fmt"
	"unicode/utf8"

	"github.com/hack-pad/hackpadfs"
	"github.com/wisp-chat/wisp/crypto/vault"
)

// The key record profiles/<id>.json: changing the passphrase and the
// profile chooser's listing (SPEC.md §7).

// metaTmpPath is where a new key record is written before it is renamed
// over the old one. Profiles skips it (it is not <id>.json).
func metaTmpPath(id string) string { return metaPath(id) + ".tmp" }

// writeMeta replaces the key record atomically: a temporary file, then a
// rename over the old one, so that after a crash either the old or the
// new record is there, whole. m.metaMu must be held.
func (m *Manager) writeMeta(meta *profileMeta) error {
	b, err := json.Marshal(meta)
	if err != nil {
		return err
	}
	tmp := metaTmpPath(meta.ID)
	if err := hackpadfs.WriteFullFile(m.fs, tmp, b, 0o600); err != nil {
		_ = hackpadfs.Remove(m.fs, tmp)
		return fmt.Errorf("chat: saving the key record: %w", err)
	}
	if err := hackpadfs.Rename(m.fs, tmp, metaPath(meta.ID)); err != nil {
		_ = hackpadfs.Remove(m.fs, tmp)
		return fmt.Errorf("chat: saving the key record: %w", err)
	}
	return nil
}

// dataKey returns the profile's data key from its key record and the
// passphrase ("" for a profile without one): ErrWrongPassphrase when it
// does not match.
func dataKey(meta *profileMeta, passphrase string) (vault.Key, error) {
	switch meta.Mode {
	case modeKey:
		if passphrase != "" {
			return vault.Key{}, ErrWrongPassphrase
		}
		return vault.KeyFromBytes(meta.Key)
	case modePassphrase:
		key, err := vault.Unwrap([]byte(passphrase), meta.Key)
		if errors.Is(err, vault.ErrWrongPassphrase) {
			return vault.Key{}, ErrWrongPassphrase
		}
		return key, err
	}
	return vault.Key{}, fmt.Errorf("chat: unknown key mode %q", meta.Mode)
}

// ChangePassphrase sets, changes or removes a profile's passphrase. old
// must unlock the profile ("" for a profile without a passphrase), else
// it fails with ErrWrongPassphrase and changes nothing; newPassphrase
// needs MinPassphrase characters, or is "" to remove the passphrase (the
// data key is then stored raw). The same data key is wrapped again: no
// record is re-encrypted, and an unlocked profile stays unlocked. The key
// record is replaced atomically: after a crash either the old or the new
// passphrase works, never neither.
func (m *Manager) ChangePassphrase(id, old, newPassphrase string) error {
	if newPassphrase != "" && utf8.RuneCountInString(newPassphrase) < MinPassphrase {
		return fmt.Errorf("%w: a passphrase needs at least %d characters", ErrInvalid, MinPassphrase)
	}
	m.metaMu.Lock()
	defer m.metaMu.Unlock()
	meta, err := m.meta(id)
	if err != nil {
		return err
	}
	key, err := dataKey(meta, old)
	if err != nil {
		return err
	}
	nm := *meta
	if newPassphrase == "" {
		if meta.Mode == modeKey {
			return nil // no passphrase, and none wanted
		}
		nm.Mode, nm.Key = modeKey, key.Bytes()
		// The name is read from the profile record now.
		nm.Name, nm.Avatar = "", nil
	} else {
		nm.Mode = modePassphrase
		if nm.Key, err = vault.Wrap(rand.Reader, key, []byte(newPassphrase), m.argon2()); err != nil {
			return err
		}
		if nm.Show && meta.Mode == modeKey {
			// Opted in earlier: the chooser keeps showing the name.
			pr, err := m.readProfileRecord(id, key)
			if err != nil {
				return err
			}
			nm.Name, nm.Avatar = pr.DisplayName, pr.Avatar
		}
	}
	return m.writeMeta(&nm)
}

// SetListing turns on or off, for one profile, showing its name and
// picture on this device's profile chooser while it is locked. On, they
// are written in plaintext into profiles/<id>.json (anyone with this
// browser's storage can read them); off, they are removed from it. A
// profile without a passphrase is always shown (its data key is stored
// raw anyway): the choice is kept for when a passphrase is set. The
// profile must be unlocked (ErrLocked).
func (m *Manager) SetListing(id string, show bool) error {
	m.mu.Lock()
	p := m.open[id]
	m.mu.Unlock()
	if p == nil {
		if _, err := m.meta(id); err != nil {
			return err
		}
		return fmt.Errorf("%w: unlock it to change its listing", ErrLocked)
	}
	m.metaMu.Lock()
	defer m.metaMu.Unlock()
	meta, err := m.meta(id)
	if err != nil {
		return err
	}
	meta.Show = show
	return m.writeMeta(listed(meta, p.Info()))
}

// listed sets the plaintext name and picture of a key record from the
// profile's information: kept only for a passphrase profile that opted in.
func listed(meta *profileMeta, info ProfileInfo) *profileMeta {
	meta.Name, meta.Avatar = "", nil
	if meta.Show && meta.Mode == modePassphrase {
		meta.Name, meta.Avatar = info.DisplayName, info.Avatar
	}
	return meta
}

// refreshListing rewrites the plaintext name and picture of an opted-in
// profile after Profile.Update.
func (m *Manager) refreshListing(p *Profile) error {
	m.metaMu.Lock()
	defer m.metaMu.Unlock()
	meta, err := m.meta(p.id)
	if err != nil {
		return err
	}
	if !meta.Show || meta.Mode != modePassphrase {
		return nil
	}
	return m.writeMeta(listed(meta, p.Info()))
}

// readProfileRecord reads a profile's own record with its data key,
// straight from the file (store.Open would clear the temporary files of
// an open store).
func (m *Manager) readProfileRecord(id string, key vault.Key) (*profileRecord, error) {
	name := recordName(id, "profile")
	sealed, err := hackpadfs.ReadFile(m.fs, name)
	if err != nil {
		return nil, fmt.Errorf("chat: reading the profile: %w", err)
	}
	b, err := vault.Open(key, name, sealed)
	if err != nil {
		return nil, fmt.Errorf("chat: reading the profile: %w", err)
	}
	var pr profileRecord
	if err := json.Unmarshal(b, &pr); err != nil {
		return nil, fmt.Errorf("chat: reading the profile: %w", err)
	}
	return &pr, nil
}

// fillSummary sets what the chooser may show of a profile: the open
// profile's own information, the record of a profile without a
// passphrase, or the opted-in plaintext copy of a passphrase profile.
func (m *Manager) fillSummary(s *ProfileSummary, meta *profileMeta) {
	s.Show = meta.Show
	m.mu.Lock()
	p := m.open[s.ID]
	m.mu.Unlock()
	switch {
	case p != nil:
		info := p.Info()
		s.Name, s.Avatar = info.DisplayName, info.Avatar
	case meta.Mode == modeKey:
		key, err := vault.KeyFromBytes(meta.Key)
		if err != nil {
			return
		}
		if pr, err := m.readProfileRecord(s.ID, key); err == nil {
			s.Name, s.Avatar = pr.DisplayName, pr.Avatar
		} // unreadable: listed without a name
	case meta.Show:
		s.Name, s.Avatar = meta.Name, meta.Avatar
	}
}
