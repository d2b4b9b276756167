package agent

import (
	"bytes"
	"crypto/ed25519"
	"crypto/sha256"
	_ "embed"
	"encoding/base64"
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"flag"
	"os"
	"path/filepath"
	"testing"

	"github.com/wisp-chat/wisp/crypto/box"
	"github.com/wisp-chat/wisp/crypto/ratchet"
	"github.com/wisp-chat/wisp/server/wire"
)

// The vectors of SPEC.md, "Contact address": testdata/address-vectors.json.
//
//	go test ./wasm/agent -run TestAddressVectors                                 check
//	go test ./wasm/agent -run TestAddressVectors -args -update-address-vectors   rewrite

var updateAddressVectors = flag.Bool("update-address-vectors", false,
	"rewrite testdata/address-vectors.json from the rules in address_vectors_test.go")

//go:embed testdata/address-vectors.json
var addressVectorsJSON []byte

type avFile struct {
	Comment  string      `json:"comment"`
	Links    []avLink    `json:"address_links"`
	Requests []avRequest `json:"requests"`
}

// avLink is an address link: every field, and the payload.
type avLink struct {
	What           string `json:"what"`
	VersionMin     uint8  `json:"version_min"`
	VersionMax     uint8  `json:"version_max"`
	RelayKeyHash   string `json:"relay_keyhash_hex"`
	Host           string `json:"host"`
	Port           uint16 `json:"port"`
	SenderID       string `json:"sender_id_hex"`
	SenderSeed     string `json:"sender_seed_hex"`
	SenderPublic   string `json:"sender_public_key_hex"` // the key the owner sets with SKEY
	AddressPrivate string `json:"address_private_key_hex"`
	AddressPublic  string `json:"address_public_key_hex"`
	Tag            string `json:"tag_hex"`
	PayloadHex     string `json:"payload_hex"`
	Payload        string `json:"payload"`
	Origin         string `json:"origin"`
	Link           string `json:"link"`
}

// avRequest is a request: every input, the intermediate values and the
// SEND body.
type avRequest struct {
	What             string `json:"what"`
	AddressPrivate   string `json:"address_private_key_hex"`
	AddressPublic    string `json:"address_public_key_hex"`
	EphemeralPrivate string `json:"ephemeral_private_key_hex"`
	EphemeralPublic  string `json:"ephemeral_public_key_hex"`
	SharedKey        string `json:"shared_key_hex"` // crypto_box_beforenm
	Nonce            string `json:"nonce_hex"`
	Version          uint8  `json:"version"`
	Invitation       string `json:"invitation_hex"`
	Info             string `json:"info_hex"`
	Tag              string `json:"tag_hex"`
	Plaintext        string `json:"plaintext_hex"`
	Body             string `json:"body_hex"` // exactly 16,000 bytes
	BodySHA256       string `json:"body_sha256_hex"`
}

// avRand is the source of the vectors' inputs: SHA-256(label || counter)
// blocks. Every input is written out in the file, so nobody needs it.
type avRand struct {
	label string
	n     uint64
	buf   []byte
}

func (r *avRand) Read(p []byte) (int, error) {
	for len(r.buf) < len(p) {
		h := sha256.Sum256(binary.BigEndian.AppendUint64([]byte(r.label), r.n))
		r.n++
		r.buf = append(r.buf, h[:]...)
	}
	copy(p, r.buf)
	r.buf = r.buf[len(p):]
	return len(p), nil
}

func (r *avRand) bytes(n int) []byte {
	b := make([]byte, n)
	_, _ = r.Read(b)
	return b
}

func avHex(b []byte) string { return hex.EncodeToString(b) }

func avUnhex(t testing.TB, s string) []byte {
	t.Helper()
	b, err := hex.DecodeString(s)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// avInvitation is a deterministic invitation payload on host.
func avInvitation(t testing.TB, r *avRand, host string) []byte {
	inv := Invitation{Versions: Versions, Relay: wire.Address{Host: host, Port: 5223}}
	copy(inv.Relay.KeyHash[:], r.bytes(32))
	copy(inv.SenderID[:], r.bytes(QueueIDSize))
	qk, _ := box.GenerateKey(r)
	copy(inv.QueueKey[:], qk.PublicKey().Bytes())
	_, rinv, err := ratchet.NewInvitation(r, true)
	if err != nil {
		t.Fatal(err)
	}
	rb, _ := rinv.MarshalBinary()
	copy(inv.Ratchet[:], rb)
	p, err := inv.Payload()
	if err != nil {
		t.Fatal(err)
	}
	b, _ := base64.RawURLEncoding.DecodeString(p)
	return b
}

func avBuild(t testing.TB) *avFile {
	f := &avFile{Comment: "wasm/agent SPEC.md, \"Contact address\". address_links: every field of an address link and its payload " +
		"(base64url, unpadded); the address private key is the owner's, for the requests. requests: the SEND body of a contact " +
		"request, sealed to the address public key: ephemeral public key || nonce || XSalsa20-Poly1305 under shared_key of " +
		"pad(plaintext, 15928). Regenerate: go test ./wasm/agent -run TestAddressVectors -args -update-address-vectors"}
	r := &avRand{label: "wisp agent address vectors v1"}
	type linkCase struct {
		what, host string
		tag        Tag
	}
	var group Tag
	group.Type = TagGroup
	copy(group.Group[:], r.bytes(GroupIDSize))
	var owners []box.PrivateKey
	for _, lc := range []linkCase{
		{"a person's address on an IPv4 relay", "127.0.0.1", Tag{}},
		{"a person's address on a named relay", "relay.example.org", Tag{}},
		{"a group link (tag 'G' and the group ID)", "relay.example.org", group},
	} {
		c := ContactAddress{Versions: Versions, Relay: wire.Address{Host: lc.host, Port: 443}, Tag: lc.tag}
		copy(c.Relay.KeyHash[:], r.bytes(32))
		copy(c.SenderID[:], r.bytes(QueueIDSize))
		copy(c.SenderSeed[:], r.bytes(seedSize))
		priv, _ := box.GenerateKey(r)
		owners = append(owners, priv)
		copy(c.Key[:], priv.PublicKey().Bytes())
		b, err := c.payloadBytes()
		if err != nil {
			t.Fatal(err)
		}
		const origin = "https://wisp.example"
		link, _ := c.Link(origin)
		p, _ := c.Payload()
		f.Links = append(f.Links, avLink{
			What: lc.what, VersionMin: c.Versions.Min, VersionMax: c.Versions.Max, RelayKeyHash: avHex(c.Relay.KeyHash[:]),
			Host: c.Relay.Host, Port: c.Relay.Port, SenderID: avHex(c.SenderID[:]), SenderSeed: avHex(c.SenderSeed[:]),
			SenderPublic:   avHex(ed25519.NewKeyFromSeed(c.SenderSeed[:]).Public().(ed25519.PublicKey)),
			AddressPrivate: avHex(priv.Bytes()), AddressPublic: avHex(c.Key[:]), Tag: avHex(c.Tag.appendTo(nil)),
			PayloadHex: avHex(b), Payload: p, Origin: origin, Link: link,
		})
	}
	type reqCase struct {
		what  string
		owner int
		info  []byte
		tag   Tag
	}
	for _, rc := range []reqCase{
		{"a request with a profile", 0, []byte(`{"name":"Bob"}`), Tag{}},
		{"a request with empty info", 1, nil, Tag{}},
		{"a request through a group link", 2, []byte(`{"name":"Zoë"}`), group},
	} {
		inv := avInvitation(t, r, "relay.example.org")
		pt, err := request{Version: Version, Invitation: inv, Info: rc.info, Tag: rc.tag}.encode()
		if err != nil {
			t.Fatal(err)
		}
		eph := r.bytes(KeySize)
		nonce := r.bytes(box.NonceSize)
		owner := owners[rc.owner]
		body, err := sealRequest(bytes.NewReader(append(bytes.Clone(eph), nonce...)), [KeySize]byte(owner.PublicKey().Bytes()), pt)
		if err != nil {
			t.Fatal(err)
		}
		ek, _ := box.PrivateKeyFromBytes(eph)
		shared, err := box.Precompute(ek, owner.PublicKey())
		if err != nil {
			t.Fatal(err)
		}
		sum := sha256.Sum256(body)
		f.Requests = append(f.Requests, avRequest{
			What: rc.what, AddressPrivate: avHex(owner.Bytes()), AddressPublic: avHex(owner.PublicKey().Bytes()),
			EphemeralPrivate: avHex(eph), EphemeralPublic: avHex(ek.PublicKey().Bytes()), SharedKey: avHex(shared.Bytes()),
			Nonce: avHex(nonce), Version: Version, Invitation: avHex(inv), Info: avHex(rc.info), Tag: avHex(rc.tag.appendTo(nil)),
			Plaintext: avHex(pt), Body: avHex(body), BodySHA256: avHex(sum[:]),
		})
	}
	return f
}

// TestAddressVectors regenerates the vectors, compares them with the
// committed file, and checks the committed file without the generator:
// each link parses to its fields, each body opens to its plaintext.
func TestAddressVectors(t *testing.T) {
	got, err := json.MarshalIndent(avBuild(t), "", "  ")
	if err != nil {
		t.Fatal(err)
	}
	got = append(got, '\n')
	data := addressVectorsJSON
	if *updateAddressVectors {
		if err := os.WriteFile(filepath.Join("testdata", "address-vectors.json"), got, 0o644); err != nil {
			t.Fatal(err)
		}
		data = got
	} else if !bytes.Equal(got, data) {
		t.Fatal("generated vectors differ from testdata/address-vectors.json; rerun with -args -update-address-vectors if the change is intended")
	}
	var f avFile
	if err := json.Unmarshal(data, &f); err != nil {
		t.Fatal(err)
	}
	if len(f.Links) == 0 || len(f.Requests) == 0 {
		t.Fatal("no vectors")
	}
	for _, l := range f.Links {
		c, err := ParseAddress(l.Link, Versions)
		if err != nil {
			t.Fatalf("%s: %v", l.What, err)
		}
		if avHex(c.Relay.KeyHash[:]) != l.RelayKeyHash || c.Relay.Host != l.Host || c.Relay.Port != l.Port ||
			avHex(c.SenderID[:]) != l.SenderID || avHex(c.SenderSeed[:]) != l.SenderSeed || avHex(c.Key[:]) != l.AddressPublic ||
			avHex(c.Tag.appendTo(nil)) != l.Tag || c.Versions != (VersionRange{l.VersionMin, l.VersionMax}) {
			t.Errorf("%s: the link does not parse to its fields", l.What)
		}
		if p, _ := base64.RawURLEncoding.DecodeString(l.Payload); avHex(p) != l.PayloadHex {
			t.Errorf("%s: payload and payload_hex differ", l.What)
		}
		priv, _ := box.PrivateKeyFromBytes(avUnhex(t, l.AddressPrivate))
		if avHex(priv.PublicKey().Bytes()) != l.AddressPublic {
			t.Errorf("%s: the address key pair does not match", l.What)
		}
	}
	for _, v := range f.Requests {
		body := avUnhex(t, v.Body)
		if len(body) != wire.MaxBodySize {
			t.Fatalf("%s: %d-byte body", v.What, len(body))
		}
		if sum := sha256.Sum256(body); avHex(sum[:]) != v.BodySHA256 {
			t.Errorf("%s: body_sha256 does not match", v.What)
		}
		if avHex(body[:KeySize]) != v.EphemeralPublic || avHex(body[KeySize:KeySize+box.NonceSize]) != v.Nonce {
			t.Errorf("%s: the body does not start with the ephemeral key and the nonce", v.What)
		}
		priv, _ := box.PrivateKeyFromBytes(avUnhex(t, v.AddressPrivate))
		req, err := openRequest(priv, body)
		if err != nil {
			t.Fatalf("%s: %v", v.What, err)
		}
		again, _ := req.encode()
		if avHex(again) != v.Plaintext || req.Version != v.Version || avHex(req.Invitation) != v.Invitation ||
			avHex(req.Info) != v.Info || avHex(req.Tag.appendTo(nil)) != v.Tag {
			t.Errorf("%s: the body does not open to its plaintext", v.What)
		}
		if _, err := ParseLink(base64.RawURLEncoding.EncodeToString(req.Invitation), Versions); err != nil {
			t.Errorf("%s: the invitation does not parse: %v", v.What, err)
		}
		eph, _ := box.PrivateKeyFromBytes(avUnhex(t, v.EphemeralPrivate))
		if shared, _ := box.Precompute(eph, priv.PublicKey()); avHex(shared.Bytes()) != v.SharedKey {
			t.Errorf("%s: shared key", v.What)
		}
	}
}
