//go:build !js

package chat

import (
	"bytes"
	"encoding/json"
	"errors"
	"flag"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/wisp-chat/wisp/crypto/vault"
)

// The vectors of SPEC.md §7.7: testdata/profile-vectors.json.
//
//	go test ./wasm/chat -run VectorsProfile                                check
//	go test ./wasm/chat -run VectorsProfile -args -update-profile-vectors  rewrite

var updateProfileVectors = flag.Bool("update-profile-vectors", false,
	"rewrite testdata/profile-vectors.json from the rules in profilespec_test.go")

var profileVectorsPath = filepath.Join("testdata", "profile-vectors.json")

type pvFile struct {
	Comment   string        `json:"comment"`
	Updates   []pvUpdate    `json:"profile_updates"`
	Malformed []pvMalformed `json:"malformed_updates"`
	Records   []pvRecord    `json:"key_records"`
}

// pvUpdate is a profile update body: its input and its exact bytes.
type pvUpdate struct {
	Name   string `json:"name"`
	Avatar string `json:"avatar_hex"`
	Body   string `json:"body"` // the bytes as a string (UTF-8)
	Hex    string `json:"body_hex"`
	// Applied is the name the receiver keeps (trimmed).
	Applied string `json:"applied_name"`
}

type pvMalformed struct {
	Why  string `json:"why"`
	Body string `json:"body"`
}

// pvRecord is a key record profiles/<id>.json: its inputs and its bytes.
type pvRecord struct {
	What       string    `json:"what"`
	DataKey    string    `json:"data_key_hex"`
	Passphrase string    `json:"passphrase,omitempty"`
	Argon2     *pvArgon2 `json:"argon2,omitempty"`
	Rand       string    `json:"rand_hex,omitempty"` // salt || nonce read by vault.Wrap
	Name       string    `json:"name,omitempty"`
	Avatar     string    `json:"avatar_hex,omitempty"`
	Show       bool      `json:"show,omitempty"`
	Record     string    `json:"record"` // the file's exact bytes
}

const (
	pvID      = "0123456789abcdef"
	pvCreated = "2025-01-02T03:04:05Z"
)

// pvArgon2 is vault.Params in the vectors.
type pvArgon2 struct {
	MemoryKiB uint32 `json:"memory_kib"`
	Time      uint32 `json:"time"`
	Threads   uint8  `json:"threads"`
}

var pvParams = pvArgon2{MemoryKiB: 1024, Time: 1, Threads: 1}

func pvUpdates() []pvUpdate {
	return []pvUpdate{
		{Name: "Ann"},
		{Name: "  Zoë <&> Ünal ", Avatar: gvHex(gvRamp(16, 0xf0))},
	}
}

func pvMalformedInputs() []pvMalformed {
	return []pvMalformed{
		{"not JSON", "p{"},
		{"JSON null", "pnull"},
		{"no name", `p{"avatar":"AAAA"}`},
		{"blank name", `p{"name":"  "}`},
		{"name over 64 bytes", `p{"name":"` + strings.Repeat("é", 33) + `"}`},
		{"control character", `p{"name":"Ann\u0007"}`},
		{"format character (bidi override)", `p{"name":"Ann\u202e"}`},
		{"name not a string", `p{"name":5}`},
		{"avatar not base64", `p{"name":"Ann","avatar":"!!"}`},
		// (An avatar over 8,192 bytes is refused too: TestProfileUpdateBodies.)
	}
}

func pvBuild(t testing.TB) *pvFile {
	f := &pvFile{Comment: "SPEC.md §7. Profile update bodies ('p' || JSON, §1), bodies a receiver refuses, " +
		"and key records profiles/<id>.json (§7.1): the data key wrapped with crypto/vault Wrap " +
		"(rand_hex is the salt and nonce it reads), or stored raw. Regenerate: go test ./wasm/chat -run VectorsProfile -args -update-profile-vectors"}
	for _, u := range pvUpdates() {
		pi := peerInfo{Name: u.Name, Avatar: gvUnhex(t, u.Avatar)}
		if len(pi.Avatar) == 0 {
			pi.Avatar = nil
		}
		body, err := encodeProfileUpdate(pi)
		if err != nil {
			t.Fatal(err)
		}
		got, err := decodeProfileUpdate(body)
		if err != nil {
			t.Fatal(err)
		}
		u.Body, u.Hex, u.Applied = string(body), gvHex(body), got.Name
		f.Updates = append(f.Updates, u)
	}
	f.Malformed = pvMalformedInputs()
	key := gvRamp(vault.KeySize, 0x40)
	created, _ := time.Parse(time.RFC3339, pvCreated)
	for _, in := range []pvRecord{
		{What: "no passphrase: the data key raw", DataKey: gvHex(key)},
		{What: "passphrase", DataKey: gvHex(key), Passphrase: "correct horse battery", Argon2: &pvParams, Rand: gvHex(gvRamp(40, 0x80))},
		{What: "passphrase, shown on the chooser", DataKey: gvHex(key), Passphrase: "correct horse battery", Argon2: &pvParams,
			Rand: gvHex(gvRamp(40, 0x80)), Show: true, Name: "Ann", Avatar: gvHex(gvRamp(8, 0x10))},
	} {
		k, err := vault.KeyFromBytes(key)
		if err != nil {
			t.Fatal(err)
		}
		meta := profileMeta{V: 1, ID: pvID, Created: created, Mode: modeKey, Key: key, Show: in.Show, Name: in.Name}
		if in.Avatar != "" {
			meta.Avatar = gvUnhex(t, in.Avatar)
		}
		if in.Passphrase != "" {
			meta.Mode = modePassphrase
			if meta.Key, err = vault.Wrap(bytes.NewReader(gvUnhex(t, in.Rand)), k, []byte(in.Passphrase),
				vault.Params{MemoryKiB: in.Argon2.MemoryKiB, Time: in.Argon2.Time, Threads: in.Argon2.Threads}); err != nil {
				t.Fatal(err)
			}
		}
		b, err := json.Marshal(meta)
		if err != nil {
			t.Fatal(err)
		}
		in.Record = string(b)
		f.Records = append(f.Records, in)
	}
	return f
}

func pvEncode(t testing.TB, f *pvFile) []byte {
	var buf bytes.Buffer
	e := json.NewEncoder(&buf)
	e.SetEscapeHTML(false)
	e.SetIndent("", "  ")
	if err := e.Encode(f); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

// TestVectorsProfileFile regenerates the vectors with the package's
// functions and compares them with the committed file.
func TestVectorsProfileFile(t *testing.T) {
	got := pvEncode(t, pvBuild(t))
	if *updateProfileVectors {
		if err := os.WriteFile(profileVectorsPath, got, 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	want, err := os.ReadFile(profileVectorsPath)
	if err != nil {
		t.Fatalf("%v (generate with -args -update-profile-vectors)", err)
	}
	if !bytes.Equal(got, want) {
		t.Fatalf("%s differs from what the rules give (regenerate with -args -update-profile-vectors)", profileVectorsPath)
	}
}

// TestVectorsProfileCommitted checks the committed values on their own:
// each body decodes to its input, each malformed body is refused, and
// each key record gives the data key with its passphrase (and not with
// another), and parses and re-encodes to the same bytes.
func TestVectorsProfileCommitted(t *testing.T) {
	b, err := os.ReadFile(profileVectorsPath)
	if err != nil {
		t.Fatal(err)
	}
	var f pvFile
	d := json.NewDecoder(bytes.NewReader(b))
	d.DisallowUnknownFields()
	if err := d.Decode(&f); err != nil {
		t.Fatal(err)
	}
	if len(f.Updates) == 0 || len(f.Malformed) == 0 || len(f.Records) == 0 {
		t.Fatal("empty vectors")
	}
	for _, u := range f.Updates {
		if gvHex([]byte(u.Body)) != u.Hex || u.Body[0] != bodyProfile {
			t.Errorf("%q: body and hex differ", u.Name)
		}
		pi, err := decodeProfileUpdate([]byte(u.Body))
		if err != nil || pi.Name != u.Applied || pi.Name != strings.TrimSpace(u.Name) || gvHex(pi.Avatar) != u.Avatar {
			t.Errorf("%q: decodes to %+v, %v", u.Name, pi, err)
		}
	}
	for _, m := range f.Malformed {
		if _, err := decodeProfileUpdate([]byte(m.Body)); !errors.Is(err, ErrInvalid) && !errors.Is(err, ErrTooLong) {
			t.Errorf("%s: %v", m.Why, err)
		}
	}
	for _, r := range f.Records {
		var meta profileMeta
		if err := json.Unmarshal([]byte(r.Record), &meta); err != nil {
			t.Fatalf("%s: %v", r.What, err)
		}
		if re, _ := json.Marshal(meta); string(re) != r.Record {
			t.Errorf("%s: re-encodes as %s", r.What, re)
		}
		key, err := dataKey(&meta, r.Passphrase)
		if err != nil || gvHex(key.Bytes()) != r.DataKey {
			t.Errorf("%s: the data key does not come back (%v)", r.What, err)
		}
		if _, err := dataKey(&meta, r.Passphrase+"x"); !errors.Is(err, ErrWrongPassphrase) {
			t.Errorf("%s: another passphrase: %v", r.What, err)
		}
		if meta.Show != r.Show || meta.Name != r.Name || gvHex(meta.Avatar) != r.Avatar {
			t.Errorf("%s: listing fields %v %q %x", r.What, meta.Show, meta.Name, meta.Avatar)
		}
	}
}
