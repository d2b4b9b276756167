package chat

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"sort"
	"strings"
	"sync"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/hack-pad/hackpadfs"
	"github.com/wisp-chat/wisp/crypto/vault"
	"github.com/wisp-chat/wisp/server/wire"
	"github.com/wisp-chat/wisp/server/wire/client"
	"github.com/wisp-chat/wisp/wasm/agent"
	"github.com/wisp-chat/wisp/wasm/store"
)

// Config configures a Manager.
type Config struct {
	// Origin is the app origin written into invitation links. It also
	// decides which relays may be used: only a page loaded from this
	// machine (agent.LoopbackOrigin: development, tests) uses relays on
	// loopback or private addresses; any other origin refuses them with
	// agent.ErrLocalRelay, in invitations, settings, replies and files.
	Origin string
	// PresetRelays are offered to new profiles (the host's /config.json).
	// Those the origin may not use are left out.
	PresetRelays []string
	// DisablePostQuantum turns the ML-KEM hybrid off (it is on by default).
	DisablePostQuantum bool
	// Rotation is the schedule of automatic queue rotation (zero: about
	// every 7 days or 1,000 received messages; see agent.RotationPolicy).
	// Its Relay is set by the profile.
	Rotation agent.RotationPolicy
	// Client tunes relay connections (zero values: the client's defaults).
	Client client.Options
	// Argon2 overrides the passphrase KDF cost (zero: vault.DefaultParams).
	Argon2 vault.Params
}

// Manager keeps the profiles of one browser (one file system).
type Manager struct {
	fs  hackpadfs.FS
	cfg Config
	// allowLocal: relays on loopback and private addresses may be used.
	allowLocal bool

	mu   sync.Mutex
	open map[string]*Profile
	// ops serialises Unlock, Lock and DeleteProfile, so that one profile is
	// never opened twice at once (two agents on one ratchet state would
	// reuse message keys).
	ops sync.Mutex
	// metaMu serialises the changes of profiles/<id>.json (passphrase,
	// listing) and its removal (listing.go).
	metaMu sync.Mutex
}

// NewManager returns a Manager over fsys.
func NewManager(fsys hackpadfs.FS, cfg Config) *Manager {
	m := &Manager{fs: fsys, cfg: cfg, open: make(map[string]*Profile), allowLocal: agent.LoopbackOrigin(cfg.Origin)}
	m.cfg.PresetRelays = nil
	for _, r := range cfg.PresetRelays {
		if a, err := wire.ParseAddress(strings.TrimSpace(r)); err == nil && m.CheckRelay(a) != nil {
			continue
		}
		m.cfg.PresetRelays = append(m.cfg.PresetRelays, r)
	}
	return m
}

// CheckRelay returns an error wrapping agent.ErrLocalRelay if the
// profiles may not use relay (see Config.Origin).
func (m *Manager) CheckRelay(relay wire.Address) error {
	return agent.CheckRelay(relay, m.allowLocal)
}

// ProfileSummary is what can be shown about a profile before unlocking it.
type ProfileSummary struct {
	ID         string    `json:"id"`
	Created    time.Time `json:"created"`
	Passphrase bool      `json:"passphrase"`
	Unlocked   bool      `json:"unlocked"`
	// Name and Avatar are known for unlocked profiles, for profiles
	// without a passphrase (their data key is stored raw), and for
	// passphrase profiles that opted in to Show (listing.go).
	Name   string `json:"name,omitempty"`
	Avatar []byte `json:"avatar,omitempty"`
	// Show: the profile's name and picture are kept in plaintext on this
	// device for the profile chooser (SetListing).
	Show bool `json:"show"`
}

// profileMeta is the only plaintext record of a profile: how to get its
// data key. It holds no personal data unless the user opted in to Show
// (SPEC.md §7.1).
type profileMeta struct {
	V       int       `json:"v"`
	ID      string    `json:"id"`
	Created time.Time `json:"created"`
	Mode    string    `json:"mode"` // "passphrase" or "key"
	Key     []byte    `json:"key"`  // vault.Wrap output, or the raw key in "key" mode
	// Show (opt-in, SetListing): Name and Avatar are written here in
	// plaintext for the profile chooser of a passphrase profile.
	Show   bool   `json:"show,omitempty"`
	Name   string `json:"name,omitempty"`
	Avatar []byte `json:"avatar,omitempty"`
}

const (
	modePassphrase = "passphrase"
	modeKey        = "key"
	metaDir        = "profiles"
)

func metaPath(id string) string { return metaDir + "/" + id + ".json" }
func dataDir(id string) string  { return "p-" + id }

func validProfileID(id string) bool {
	if len(id) != 16 {
		return false
	}
	_, err := hex.DecodeString(id)
	return err == nil && strings.ToLower(id) == id
}

// Profiles lists the profiles, oldest first.
func (m *Manager) Profiles() ([]ProfileSummary, error) {
	// store.FileNames, not hackpadfs.ReadDir: a key record being rewritten
	// (writeMeta's rename) must not make the listing fail or come back
	// empty.
	names, err := store.FileNames(m.fs, metaDir)
	if err != nil {
		return nil, fmt.Errorf("chat: listing profiles: %w", err)
	}
	var out []ProfileSummary
	for _, name := range names {
		id := strings.TrimSuffix(name, ".json")
		if !validProfileID(id) {
			continue
		}
		meta, err := m.meta(id)
		if err != nil {
			return nil, err
		}
		s := ProfileSummary{ID: id, Created: meta.Created, Passphrase: meta.Mode == modePassphrase}
		m.mu.Lock()
		if p := m.open[id]; p != nil {
			s.Unlocked = true
			s.Name = p.Info().DisplayName
		}
		m.mu.Unlock()
		m.fillSummary(&s, meta)
		out = append(out, s)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Created.Before(out[j].Created) })
	return out, nil
}

func (m *Manager) meta(id string) (*profileMeta, error) {
	if !validProfileID(id) {
		return nil, fmt.Errorf("%w: %q", ErrNoProfile, id)
	}
	b, err := hackpadfs.ReadFile(m.fs, metaPath(id))
	if errors.Is(err, fs.ErrNotExist) {
		return nil, fmt.Errorf("%w: %s", ErrNoProfile, id)
	}
	if err != nil {
		return nil, fmt.Errorf("chat: reading profile: %w", err)
	}
	var meta profileMeta
	if err := json.Unmarshal(b, &meta); err != nil || meta.V != 1 || meta.ID != id {
		return nil, fmt.Errorf("chat: profile %s: unreadable key record", id)
	}
	return &meta, nil
}

// NewProfile is what CreateProfile needs.
type NewProfile struct {
	DisplayName string
	Avatar      []byte // a small image (JPEG/PNG/WebP), already resized
	// Passphrase protects the profile. Empty means "no passphrase": the
	// data key is kept next to the data, which only protects against
	// casual reads of the browser's storage.
	Passphrase string
	// Relays to receive on; empty means the preset relays.
	Relays []string
}

// CreateProfile creates a profile and returns its ID. It is not unlocked.
func (m *Manager) CreateProfile(ctx context.Context, np NewProfile) (string, error) {
	name, err := cleanName(np.DisplayName)
	if err != nil {
		return "", err
	}
	if len(np.Avatar) > MaxAvatarBytes {
		return "", fmt.Errorf("%w: the avatar is %d bytes, the limit is %d", ErrTooLong, len(np.Avatar), MaxAvatarBytes)
	}
	if np.Passphrase != "" && utf8.RuneCountInString(np.Passphrase) < MinPassphrase {
		return "", fmt.Errorf("%w: a passphrase needs at least %d characters", ErrInvalid, MinPassphrase)
	}
	relays := np.Relays
	if len(relays) == 0 {
		relays = m.cfg.PresetRelays
	}
	relays, err = cleanRelays(relays, m.allowLocal)
	if err != nil {
		return "", err
	}
	key, err := vault.NewKey(rand.Reader)
	if err != nil {
		return "", err
	}
	meta := profileMeta{V: 1, ID: randomHex(8), Created: time.Now().UTC(), Mode: modeKey, Key: key.Bytes()}
	if np.Passphrase != "" {
		params := m.cfg.Argon2
		if params == (vault.Params{}) {
			params = vault.DefaultParams()
		}
		meta.Mode = modePassphrase
		if meta.Key, err = vault.Wrap(rand.Reader, key, []byte(np.Passphrase), params); err != nil {
			return "", err
		}
	}
	st, err := store.Open(m.fs, dataDir(meta.ID), store.VaultSealer(key))
	if err != nil {
		return "", err
	}
	rec := profileRecord{DisplayName: name, Avatar: np.Avatar, Relays: relays}
	if len(relays) > 0 {
		rec.Receive = relays[0]
	}
	// The key record last: a profile without it does not exist. On any
	// failure the data written so far is removed again.
	b, err := json.Marshal(meta)
	if err == nil {
		err = putJSON(st, "profile", rec)
	}
	if err == nil {
		err = hackpadfs.MkdirAll(m.fs, metaDir, 0o700)
	}
	if err == nil {
		err = hackpadfs.WriteFullFile(m.fs, metaPath(meta.ID), b, 0o600)
	}
	if err != nil {
		_ = hackpadfs.RemoveAll(m.fs, dataDir(meta.ID))
		return "", fmt.Errorf("chat: saving the profile: %w", err)
	}
	return meta.ID, nil
}

// Unlock opens a profile, connects to its relays and starts delivering
// events to l. A wrong passphrase fails with ErrWrongPassphrase and changes
// nothing. Unlocking an open profile returns it.
func (m *Manager) Unlock(ctx context.Context, id, passphrase string, l Listener) (*Profile, error) {
	m.ops.Lock()
	defer m.ops.Unlock()
	meta, err := m.meta(id)
	if err != nil {
		return nil, err
	}
	m.mu.Lock()
	if p := m.open[id]; p != nil {
		m.mu.Unlock()
		return p, nil
	}
	m.mu.Unlock()
	var key vault.Key
	switch meta.Mode {
	case modeKey:
		key, err = vault.KeyFromBytes(meta.Key)
	case modePassphrase:
		key, err = vault.Unwrap([]byte(passphrase), meta.Key)
		if errors.Is(err, vault.ErrWrongPassphrase) {
			return nil, ErrWrongPassphrase
		}
	default:
		err = fmt.Errorf("chat: unknown key mode %q", meta.Mode)
	}
	if err != nil {
		return nil, err
	}
	p, err := openProfile(ctx, m, id, key, l)
	if err != nil {
		return nil, err
	}
	m.mu.Lock()
	m.open[id] = p
	m.mu.Unlock()
	return p, nil
}

// CheckPassphrase reports whether passphrase unlocks the profile, without
// opening it: ErrWrongPassphrase, or nil. Profiles without a passphrase
// accept any.
func (m *Manager) CheckPassphrase(id, passphrase string) error {
	meta, err := m.meta(id)
	if err != nil {
		return err
	}
	if meta.Mode != modePassphrase {
		return nil
	}
	if _, err := vault.Unwrap([]byte(passphrase), meta.Key); errors.Is(err, vault.ErrWrongPassphrase) {
		return ErrWrongPassphrase
	} else if err != nil {
		return err
	}
	return nil
}

// DeleteProfile closes the profile if it is open and deletes everything
// stored for it. Its contacts are not told (their messages will fail).
func (m *Manager) DeleteProfile(id string) error {
	m.ops.Lock()
	defer m.ops.Unlock()
	if _, err := m.meta(id); err != nil {
		return err
	}
	m.lock(id)
	m.metaMu.Lock()
	err := hackpadfs.Remove(m.fs, metaPath(id))
	_ = hackpadfs.Remove(m.fs, metaTmpPath(id)) // a crash's leftover (listing.go)
	m.metaMu.Unlock()
	if err != nil {
		return fmt.Errorf("chat: deleting the profile: %w", err)
	}
	if err := hackpadfs.RemoveAll(m.fs, dataDir(id)); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("chat: deleting the profile's data: %w", err)
	}
	return nil
}

// Lock closes an open profile.
func (m *Manager) Lock(id string) {
	m.ops.Lock()
	defer m.ops.Unlock()
	m.lock(id)
}

func (m *Manager) lock(id string) {
	m.mu.Lock()
	p := m.open[id]
	delete(m.open, id)
	m.mu.Unlock()
	if p != nil {
		p.close()
	}
}

// Close locks every profile.
func (m *Manager) Close() {
	m.ops.Lock()
	defer m.ops.Unlock()
	m.mu.Lock()
	ps := make([]*Profile, 0, len(m.open))
	for id, p := range m.open {
		ps = append(ps, p)
		delete(m.open, id)
	}
	m.mu.Unlock()
	for _, p := range ps {
		p.close()
	}
}

func randomHex(n int) string {
	b := make([]byte, n)
	if _, err := rand.Read(b); err != nil {
		panic("chat: crypto/rand failed: " + err.Error()) // unreachable on supported platforms
	}
	return hex.EncodeToString(b)
}

// cleanName validates a display name.
func cleanName(s string) (string, error) {
	s = strings.TrimSpace(s)
	switch {
	case s == "":
		return "", fmt.Errorf("%w: the display name is empty", ErrInvalid)
	case !utf8.ValidString(s):
		return "", fmt.Errorf("%w: the display name is not valid text", ErrInvalid)
	case len(s) > MaxDisplayName:
		return "", fmt.Errorf("%w: the display name is %d bytes, the limit is %d", ErrTooLong, len(s), MaxDisplayName)
	case strings.ContainsFunc(s, func(r rune) bool {
		// Control, format (bidi overrides, zero-width) and separator
		// characters would let a name pose as another one.
		return unicode.IsControl(r) || unicode.In(r, unicode.Cf, unicode.Zl, unicode.Zp)
	}):
		return "", fmt.Errorf("%w: the display name has control or invisible characters", ErrInvalid)
	}
	return s, nil
}

// cleanRelays validates and canonicalises relay addresses; unless
// allowLocal, relays on loopback or private addresses are refused.
func cleanRelays(in []string, allowLocal bool) ([]string, error) {
	if len(in) > MaxRelays {
		return nil, fmt.Errorf("%w: %d relays, the limit is %d", ErrTooLong, len(in), MaxRelays)
	}
	out := make([]string, 0, len(in))
	seen := map[string]bool{}
	for _, r := range in {
		a, err := wire.ParseAddress(strings.TrimSpace(r))
		if err != nil {
			return nil, fmt.Errorf("%w: %w", ErrInvalid, err)
		}
		if err := agent.CheckRelay(a, allowLocal); err != nil {
			return nil, err
		}
		if s := a.String(); !seen[s] {
			seen[s] = true
			out = append(out, s)
		}
	}
	return out, nil
}

func putJSON(st *store.Store, k store.Key, v any) error {
	b, err := json.Marshal(v)
	if err != nil {
		return err
	}
	return st.Put(k, b)
}

// addJSON adds the write of v, as JSON, under k to b.
func addJSON(b *store.Batch, k store.Key, v any) error {
	rec, err := json.Marshal(v)
	if err != nil {
		return err
	}
	b.Put(k, rec)
	return nil
}

func getJSON(st *store.Store, k store.Key, v any) error {
	b, err := st.Get(k)
	if err != nil {
		return err
	}
	return json.Unmarshal(b, v)
}
