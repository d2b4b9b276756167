package vault

import (
	"bytes"
	_ "embed"
	"encoding/hex"
	"testing"

	"github.com/wisp-chat/wisp/crypto/internal/testkit"
)

//go:embed testdata/vectors.json
var vectorsJSON []byte

type wrapVector struct {
	Passphrase string `json:"passphrase"`
	MemoryKiB  uint32 `json:"memory_kib"`
	Time       uint32 `json:"time"`
	Threads    uint8  `json:"threads"`
	Key        string `json:"data_key"`
	KEK        string `json:"kek"` // Argon2id(passphrase, salt)
	Wrapped    string `json:"wrapped"`
}

type recordVector struct {
	Key       string `json:"key"`
	Name      string `json:"name"`
	Plaintext string `json:"plaintext"`
	Record    string `json:"record"`
}

type vaultVectors struct {
	Wraps   []wrapVector   `json:"wraps"`
	Records []recordVector `json:"records"`
}

func TestVectors(t *testing.T) {
	var v vaultVectors
	h := hex.EncodeToString
	r := testkit.Rand("vectors/vault")
	for _, p := range []Params{fast, DefaultParams()} {
		k, _ := NewKey(r)
		pass := "vector passphrase"
		w, err := Wrap(r, k, []byte(pass), p)
		if err != nil {
			t.Fatal(err)
		}
		kek := deriveKEK([]byte(pass), w[11:11+SaltSize], p)
		v.Wraps = append(v.Wraps, wrapVector{pass, p.MemoryKiB, p.Time, p.Threads, h(k.Bytes()), h(kek), h(w)})
	}
	k, _ := NewKey(r)
	for _, tc := range []struct{ name, pt string }{{"", ""}, {"profile", "{}"}, {"msg/000001", "hello, vault"}} {
		rec, err := Seal(r, k, tc.name, []byte(tc.pt))
		if err != nil {
			t.Fatal(err)
		}
		v.Records = append(v.Records, recordVector{h(k.Bytes()), tc.name, h([]byte(tc.pt)), h(rec)})
	}
	data := testkit.CheckVectors(t, "testdata/vectors.json", vectorsJSON, testkit.JSON(t, v))

	var c vaultVectors
	testkit.Decode(t, data, &c)
	for _, w := range c.Wraps {
		wrapped := testkit.Unhex(t, w.Wrapped)
		if p, err := WrappedParams(wrapped); err != nil || p != (Params{w.MemoryKiB, w.Time, w.Threads}) {
			t.Fatalf("params: %v", err)
		}
		k, err := Unwrap([]byte(w.Passphrase), wrapped)
		if err != nil || h(k.Bytes()) != w.Key {
			t.Fatalf("Unwrap: %v", err)
		}
	}
	for _, rv := range c.Records {
		k, _ := KeyFromBytes(testkit.Unhex(t, rv.Key))
		pt, err := Open(k, rv.Name, testkit.Unhex(t, rv.Record))
		if err != nil || !bytes.Equal(pt, testkit.Unhex(t, rv.Plaintext)) {
			t.Fatalf("record %q: %v", rv.Name, err)
		}
	}
}
