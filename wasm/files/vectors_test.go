package files

import (
	"bytes"
	"crypto/ed25519"
	"crypto/sha256"
	_ "embed"
	"encoding"
	"encoding/hex"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"slices"
	"testing"

	"github.com/wisp-chat/wisp/crypto/stream"
	"github.com/wisp-chat/wisp/server/wire"
	"github.com/wisp-chat/wisp/server/wire/client"
)

// The vectors of SPEC.md §11. They are embedded so that the comparison
// also runs under GOOS=js in a browser, where there is no file system.
//
//go:embed testdata/vectors.json
var vectorsJSON []byte

var update = flag.Bool("update", false, "rewrite testdata/vectors.json (go test ./wasm/files -run TestVectors -args -update)")

const vectorsPath = "testdata/vectors.json"

// fileVectors is the layout of testdata/vectors.json.
type fileVectors struct {
	Comment       string         `json:"comment"`
	PlaintextRule string         `json:"plaintext_rule"`
	Limits        limitsVector   `json:"limits"`
	Digests       []digestVector `json:"digests"`
	RelaySeed     string         `json:"relay_identity_seed"`
	Relay         string         `json:"relay"`
	Sizes         []sizeVector   `json:"sizes"`
	Description   descVector     `json:"description"`
	Redirect      descVector     `json:"redirect"`
	SenderState   senderVector   `json:"sender_state"`
}

type limitsVector struct {
	MaxFileSize        int64 `json:"max_file_size"`
	PieceSize          int   `json:"piece_size"`
	MaxChunks          int   `json:"max_chunks"`
	MaxDescriptionSize int   `json:"max_description_size"`
	MaxRedirectSize    int   `json:"max_redirect_size"`
}

// digestVector: Digest of the first Size bytes of the plaintext rule.
type digestVector struct {
	Size   int64    `json:"size"`
	Pieces []string `json:"piece_sha256"`
	Digest string   `json:"digest"`
}

// sizeVector: what ClassForSize, the chunk count and DescriptionSize (with
// the vectors' relay address) give for a plaintext size.
type sizeVector struct {
	Size            int64 `json:"size"`
	CiphertextSize  int64 `json:"ciphertext_size"`
	Class           int   `json:"class"`
	Chunks          int   `json:"chunks"`
	LastChunkData   int64 `json:"last_chunk_ciphertext"`
	LastChunkPad    int64 `json:"last_chunk_padding"`
	DescriptionSize int   `json:"description_size"`
}

// chunkVector is one client.RecipientChunk (BoxKey set) or
// client.SenderChunk (BoxKey empty).
type chunkVector struct {
	Class  int    `json:"class"`
	ID     string `json:"id"`
	Seed   string `json:"seed"`
	BoxKey string `json:"box_key,omitempty"`
}

// segmentVector is the ciphertext one relay chunk carries before its
// random padding.
type segmentVector struct {
	Length int64  `json:"ciphertext_length"`
	SHA256 string `json:"ciphertext_sha256"`
}

// region is a field of an encoding and what happens to a decoder when
// each of its bytes in turn is XORed with 0xff: "rejected"
// (ErrInvalidDescription) or "accepted", in which case the decoded value
// differs from the original in the field Decodes and nowhere else.
type region struct {
	Field   string `json:"field"`
	Offset  int    `json:"offset"`
	Length  int    `json:"length"`
	Flip    string `json:"flip"`
	Decodes string `json:"decodes,omitempty"`
}

type descVector struct {
	Plaintext       string          `json:"plaintext"`
	Size            int64           `json:"size"`
	CiphertextSize  int64           `json:"ciphertext_size"`
	Class           int             `json:"class"`
	Digest          string          `json:"digest"`
	Key             string          `json:"key"`
	Relay           string          `json:"relay"`
	Redirect        bool            `json:"redirect"`
	Chunks          []chunkVector   `json:"chunks"`
	ChunkCiphertext []segmentVector `json:"chunk_ciphertext"`
	Encoding        string          `json:"encoding"`
	Regions         []region        `json:"regions"`
}

type senderVector struct {
	Relay    string        `json:"relay"`
	Chunks   []chunkVector `json:"chunks"`
	Encoding string        `json:"encoding"`
	Regions  []region      `json:"regions"`
}

const (
	flipRejected = "rejected"
	flipAccepted = "accepted"
)

// rulePlaintext is the plaintext of every vector: byte i is i mod 251.
func rulePlaintext(n int64) []byte {
	b := make([]byte, n)
	for i := range b {
		b[i] = byte(i % 251)
	}
	return b
}

// ramp returns n bytes start, start+1, ... (mod 256): every fixed key,
// ID and seed of the vectors.
func ramp(n int, start byte) []byte {
	b := make([]byte, n)
	for i := range b {
		b[i] = start + byte(i)
	}
	return b
}

func unhex(t testing.TB, s string) []byte {
	t.Helper()
	b, err := hex.DecodeString(s)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// vectorRelay is the relay of server/wire's vectors: identity seed
// 00..1f, host relay.example, port 443.
func vectorRelay() wire.Address {
	pub := ed25519.NewKeyFromSeed(ramp(ed25519.SeedSize, 0)).Public().(ed25519.PublicKey)
	return wire.Address{KeyHash: wire.HashIdentity(pub), Host: "relay.example", Port: 443}
}

// vectorFile is the description of plain on the vectors' relay, with
// key ramp(32, key) and chunk i with recipient ID ramp(24, c+i), seed
// ramp(32, c+10+i) and box key ramp(32, c+20+i) (hex).
func vectorFile(t testing.TB, plain []byte, key, c byte, redirect bool) *Description {
	t.Helper()
	size := int64(len(plain))
	class, err := ClassForSize(size)
	if err != nil {
		t.Fatal(err)
	}
	d := &Description{Size: size, Class: class, Relay: vectorRelay(), Redirect: redirect}
	if d.Key, err = stream.KeyFromBytes(ramp(stream.KeySize, key)); err != nil {
		t.Fatal(err)
	}
	if d.Digest, err = Digest(bytes.NewReader(plain)); err != nil {
		t.Fatal(err)
	}
	for i := range byte(chunkCount(size, class)) {
		d.Chunks = append(d.Chunks, client.RecipientChunk{Class: class, RcvID: wire.ChunkID(ramp(wire.IDSize, c+i)),
			Key: ed25519.NewKeyFromSeed(ramp(32, c+0x10+i)), BoxKey: [32]byte(ramp(32, c+0x20+i))})
	}
	return d
}

// vectorSenderState has two 4 MiB chunks: chunk i with ID
// ramp(24, 10+i) and seed ramp(32, 30+i).
func vectorSenderState() *SenderState {
	s := &SenderState{Relay: vectorRelay()}
	for i := range 2 {
		s.Chunks = append(s.Chunks, client.SenderChunk{Class: wire.Class4M, SndID: wire.ChunkID(ramp(wire.IDSize, 0x10+byte(i))), Key: ed25519.NewKeyFromSeed(ramp(32, 0x30+byte(i)))})
	}
	return s
}

// fieldsOf lists the decoded fields of a Description or SenderState by
// name, so a test can tell which of them a flipped byte changed.
func fieldsOf(v any) map[string]string {
	m := map[string]string{}
	switch v := v.(type) {
	case *Description:
		m["Redirect"] = fmt.Sprint(v.Redirect)
		m["Size"] = fmt.Sprint(v.Size)
		m["Class"] = fmt.Sprint(uint8(v.Class))
		m["Digest"] = hex.EncodeToString(v.Digest[:])
		m["Key"] = hex.EncodeToString(v.Key.Bytes())
		m["Relay"] = v.Relay.String()
		for i, c := range v.Chunks {
			p := chunkFields(m, i, c.Class, "RcvID", c.RcvID, c.Key)
			m[p+"BoxKey"] = hex.EncodeToString(c.BoxKey[:])
		}
	case *SenderState:
		m["Relay"] = v.Relay.String()
		for i, c := range v.Chunks {
			chunkFields(m, i, c.Class, "SndID", c.SndID, c.Key)
		}
	default:
		panic(fmt.Sprintf("fieldsOf(%T)", v))
	}
	return m
}

// chunkFields adds chunk i's class, ID and key to m and returns the
// prefix of their names.
func chunkFields(m map[string]string, i int, class wire.ChunkClass, idName string, id wire.ChunkID, key ed25519.PrivateKey) string {
	p := fmt.Sprintf("Chunks[%d].", i)
	m[p+"Class"] = fmt.Sprint(uint8(class))
	m[p+idName] = hex.EncodeToString(id[:])
	m[p+"Key"] = hex.EncodeToString(key.Seed())
	return p
}

// addressRegions splits an address length byte and canonical wisp://
// address at off into its parts.
func addressRegions(off int, addr wire.Address) []region {
	host := len(addr.Host)
	port := len(fmt.Sprint(addr.Port))
	regs := []region{{Field: "address length", Length: 1}, {Field: "address scheme wisp://", Length: 7},
		{Field: "address key hash", Length: 43}, {Field: "address @", Length: 1},
		{Field: "address host", Length: host, Decodes: "Relay"}, {Field: "address :", Length: 1},
		{Field: "address port", Length: port}}
	for i := range regs {
		regs[i].Offset = off
		off += regs[i].Length
	}
	return regs
}

// descLayout returns the regions of a description's encoding, in order, without outcomes.
func descLayout(d *Description) []region {
	regs := []region{
		{Field: "format", Offset: 0, Length: 1},
		{Field: "size", Offset: 1, Length: 8},
		{Field: "ciphertext size", Offset: 9, Length: 8},
		{Field: "class", Offset: 17, Length: 1},
		{Field: "digest", Offset: 18, Length: DigestSize, Decodes: "Digest"},
		{Field: "key", Offset: 18 + DigestSize, Length: stream.KeySize, Decodes: "Key"},
	}
	regs = append(regs, addressRegions(18+DigestSize+stream.KeySize, d.Relay)...)
	return chunkRegions(regs, len(d.Chunks), RecipientChunkSize, "recipient ID", "RcvID")
}

func senderLayout(s *SenderState) []region {
	regs := append([]region{{Field: "version", Offset: 0, Length: 1}}, addressRegions(1, s.Relay)...)
	return chunkRegions(regs, len(s.Chunks), SenderChunkSize, "sender ID", "SndID")
}

// chunkRegions appends the regions of what both encodings end with: the
// chunk count (2) and n records of size each, class (1) ‖ ID (24) ‖ seed
// (32), then box key (32) for a RecipientChunk.
func chunkRegions(regs []region, n, size int, id, idField string) []region {
	off := regs[len(regs)-1].Offset + regs[len(regs)-1].Length
	regs = append(regs, region{Field: "chunk count", Offset: off, Length: 2})
	off += 2
	for i := range n {
		p, q := fmt.Sprintf("chunk %d ", i), fmt.Sprintf("Chunks[%d].", i)
		regs = append(regs,
			region{Field: p + "class", Offset: off, Length: 1},
			region{Field: p + id, Offset: off + 1, Length: wire.IDSize, Decodes: q + idField},
			region{Field: p + "Ed25519 seed", Offset: off + 1 + wire.IDSize, Length: 32, Decodes: q + "Key"})
		if size == RecipientChunkSize {
			regs = append(regs, region{Field: p + "box key", Offset: off + 1 + wire.IDSize + 32, Length: 32, Decodes: q + "BoxKey"})
		}
		off += size
	}
	return regs
}

type decodeFunc func([]byte) (any, error)

func decodeDesc(b []byte) (any, error)   { return UnmarshalDescription(b) }
func decodeSender(b []byte) (any, error) { return UnmarshalSenderState(b) }

func marshal(v any) ([]byte, error) { return v.(encoding.BinaryMarshaler).MarshalBinary() }

// flipOutcome XORs byte i of enc with 0xff and decodes it: flipRejected
// or flipAccepted with the names of the decoded fields that changed.
func flipOutcome(t testing.TB, enc []byte, i int, decode decodeFunc) (string, []string) {
	t.Helper()
	b := bytes.Clone(enc)
	b[i] ^= 0xff
	v, err := decode(b)
	if err != nil {
		if !errors.Is(err, ErrInvalidDescription) {
			t.Fatalf("byte %d flipped: %v, not ErrInvalidDescription", i, err)
		}
		return flipRejected, nil
	}
	again, err := marshal(v)
	if err != nil || !bytes.Equal(again, b) {
		t.Fatalf("byte %d flipped: accepted, but encodes back differently (%v)", i, err)
	}
	orig, err := decode(enc)
	if err != nil {
		t.Fatal(err)
	}
	was, now := fieldsOf(orig), fieldsOf(v)
	var changed []string
	for k := range now {
		if now[k] != was[k] {
			changed = append(changed, k)
		}
	}
	if len(now) != len(was) {
		changed = append(changed, "number of fields")
	}
	slices.Sort(changed)
	return flipAccepted, changed
}

// withOutcomes fills in each region's outcome from every byte of it; a
// region whose bytes do not all behave alike is a failure.
func withOutcomes(t testing.TB, enc []byte, regs []region, decode decodeFunc) []region {
	t.Helper()
	out := slices.Clone(regs)
	for ri := range out {
		r := &out[ri]
		decodes := r.Decodes
		for i := r.Offset; i < r.Offset+r.Length; i++ {
			flip, changed := flipOutcome(t, enc, i, decode)
			if i == r.Offset {
				r.Flip = flip
				r.Decodes = ""
				if flip == flipAccepted {
					r.Decodes = decodes
				}
			}
			if flip != r.Flip {
				t.Fatalf("region %q: byte %d is %s, byte %d %s", r.Field, r.Offset, r.Flip, i, flip)
			}
			if flip == flipAccepted && !slices.Equal(changed, []string{decodes}) {
				t.Fatalf("region %q, byte %d flipped: fields %v changed, want only %s", r.Field, i, changed, decodes)
			}
		}
	}
	return out
}

// checkRegions checks the committed outcome of every byte of every
// region, that the regions tile the encoding, and that truncated and
// extended encodings are refused.
func checkRegions(t *testing.T, name string, enc []byte, regs []region, decode decodeFunc) {
	t.Helper()
	off := 0
	for _, r := range regs {
		if r.Offset != off || r.Length <= 0 {
			t.Fatalf("%s: region %q at %d+%d, want offset %d", name, r.Field, r.Offset, r.Length, off)
		}
		off += r.Length
		for i := r.Offset; i < r.Offset+r.Length; i++ {
			flip, changed := flipOutcome(t, enc, i, decode)
			want := []string(nil)
			if r.Decodes != "" {
				want = []string{r.Decodes}
			}
			if flip != r.Flip || !slices.Equal(changed, want) {
				t.Errorf("%s: %q byte %d flipped: %s %v, the vectors say %s %v", name, r.Field, i, flip, changed, r.Flip, want)
			}
		}
	}
	if off != len(enc) {
		t.Fatalf("%s: regions cover %d of %d bytes", name, off, len(enc))
	}
	for n := range len(enc) {
		if _, err := decode(enc[:n]); !errors.Is(err, ErrInvalidDescription) {
			t.Errorf("%s truncated to %d bytes: %v", name, n, err)
		}
	}
	for _, extra := range []byte{0x00, 0x01, 0xff} {
		if _, err := decode(append(bytes.Clone(enc), extra)); !errors.Is(err, ErrInvalidDescription) {
			t.Errorf("%s extended by %02x: %v", name, extra, err)
		}
	}
}

func chunkVectors(d *Description) []chunkVector {
	var out []chunkVector
	for _, c := range d.Chunks {
		out = append(out, chunkVector{Class: int(c.Class), ID: hex.EncodeToString(c.RcvID[:]), Seed: hex.EncodeToString(c.Key.Seed()), BoxKey: hex.EncodeToString(c.BoxKey[:])})
	}
	return out
}

// cutCiphertext encrypts plain under key with crypto/stream and cuts the
// ciphertext at multiples of the class size, without padding.
func cutCiphertext(t testing.TB, plain []byte, key stream.Key, class wire.ChunkClass) [][]byte {
	t.Helper()
	var ct bytes.Buffer
	w := stream.NewWriter(&ct, key)
	if _, err := w.Write(plain); err != nil {
		t.Fatal(err)
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	var out [][]byte
	for b := ct.Bytes(); len(b) > 0; {
		n := min(len(b), class.Size())
		out = append(out, b[:n])
		b = b[n:]
	}
	return out
}

func makeDescVector(t testing.TB, d *Description, plain []byte, plainRule string) descVector {
	t.Helper()
	enc, err := d.MarshalBinary()
	if err != nil {
		t.Fatal(err)
	}
	v := descVector{Plaintext: plainRule, Size: d.Size, CiphertextSize: d.CiphertextSize(), Class: int(d.Class),
		Digest: hex.EncodeToString(d.Digest[:]), Key: hex.EncodeToString(d.Key.Bytes()), Relay: d.Relay.String(),
		Redirect: d.Redirect, Chunks: chunkVectors(d), Encoding: hex.EncodeToString(enc),
		Regions: withOutcomes(t, enc, descLayout(d), decodeDesc)}
	for _, seg := range cutCiphertext(t, plain, d.Key, d.Class) {
		sum := sha256.Sum256(seg)
		v.ChunkCiphertext = append(v.ChunkCiphertext, segmentVector{Length: int64(len(seg)), SHA256: hex.EncodeToString(sum[:])})
	}
	return v
}

// generateVectors builds the whole vector file from the rules above.
func generateVectors(t testing.TB) fileVectors {
	t.Helper()
	relay := vectorRelay()
	v := fileVectors{
		Comment: "wasm/files test vectors (SPEC.md §11). Byte strings are hex. Fixed bytes are ramps: ramp(n, s) = s, s+1, ... mod 256. " +
			"Relay: Ed25519 identity seed ramp(32, 00), relay.example:443 (the relay of server/wire/testdata/vectors.json). " +
			"Description: the 5 MiB rule plaintext, stream key ramp(32, 20), chunk i: ID ramp(24, 40+i), seed ramp(32, 50+i), box key ramp(32, 60+i). " +
			"Redirect: its file is the description's encoding, key ramp(32, a0), chunk: ID ramp(24, c0), seed ramp(32, d0), box key ramp(32, e0). " +
			"Sender state: two 4 MiB chunks, chunk i: ID ramp(24, 10+i), seed ramp(32, 30+i). " +
			"Regions: each byte of the region XORed with ff in turn is rejected (ErrInvalidDescription) or accepted, changing only the decoded field named.",
		PlaintextRule: "byte i = i mod 251",
		Limits: limitsVector{MaxFileSize: MaxFileSize, PieceSize: PieceSize, MaxChunks: MaxChunks, MaxDescriptionSize: MaxDescriptionSize,
			MaxRedirectSize: descriptionHeaderSize + maxAddressSize + RecipientChunkSize},
		RelaySeed: hex.EncodeToString(ramp(ed25519.SeedSize, 0)),
		Relay:     relay.String(),
	}
	for _, size := range []int64{0, 1, PieceSize - 1, PieceSize, PieceSize + 1} {
		plain := rulePlaintext(size)
		dv := digestVector{Size: size, Pieces: []string{}}
		for off := int64(0); off < size; off += PieceSize {
			s := sha256.Sum256(plain[off:min(off+PieceSize, size)])
			dv.Pieces = append(dv.Pieces, hex.EncodeToString(s[:]))
		}
		sum, err := Digest(bytes.NewReader(plain))
		if err != nil {
			t.Fatal(err)
		}
		dv.Digest = hex.EncodeToString(sum[:])
		v.Digests = append(v.Digests, dv)
	}
	tag := int64(stream.TagSize)
	for _, size := range []int64{0, 1, 64<<10 - tag, 64<<10 - tag + 1, 256<<10 - 4*tag, 256<<10 - 4*tag + 1,
		1<<20 - 16*tag, 1<<20 - 16*tag + 1, 4<<20 - 64*tag, 4<<20 - 64*tag + 1, 5 << 20, MaxFileSize} {
		class, err := ClassForSize(size)
		if err != nil {
			t.Fatal(err)
		}
		n := chunkCount(size, class)
		ds, err := DescriptionSize(size, relay)
		if err != nil {
			t.Fatal(err)
		}
		ct := stream.CiphertextSize(size)
		last := ct - int64(n-1)*int64(class.Size())
		v.Sizes = append(v.Sizes, sizeVector{Size: size, CiphertextSize: ct, Class: int(class), Chunks: n,
			LastChunkData: last, LastChunkPad: int64(class.Size()) - last, DescriptionSize: ds})
	}
	plain := rulePlaintext(5 << 20)
	v.Description = makeDescVector(t, vectorFile(t, plain, 0x20, 0x40, false), plain, "the rule plaintext of 5242880 bytes")
	inner := unhex(t, v.Description.Encoding)
	v.Redirect = makeDescVector(t, vectorFile(t, inner, 0xa0, 0xc0, true), inner, "the description's encoding")
	s := vectorSenderState()
	enc, err := s.MarshalBinary()
	if err != nil {
		t.Fatal(err)
	}
	v.SenderState = senderVector{Relay: s.Relay.String(), Encoding: hex.EncodeToString(enc), Regions: withOutcomes(t, enc, senderLayout(s), decodeSender)}
	for _, c := range s.Chunks {
		v.SenderState.Chunks = append(v.SenderState.Chunks, chunkVector{Class: int(c.Class), ID: hex.EncodeToString(c.SndID[:]), Seed: hex.EncodeToString(c.Key.Seed())})
	}
	return v
}

// TestVectors regenerates testdata/vectors.json and requires it to equal
// the committed file byte for byte (-update rewrites it), then checks the
// committed values on their own: decoding, field by field, the digest
// definition, the ciphertext of each chunk, Open over records made from
// them, and every flipped, truncated and extended encoding.
func TestVectors(t *testing.T) {
	got, err := json.MarshalIndent(generateVectors(t), "", "  ")
	if err != nil {
		t.Fatal(err)
	}
	got = append(got, '\n')
	committed := vectorsJSON
	if *update {
		if err := os.WriteFile(vectorsPath, got, 0o644); err != nil {
			t.Fatal(err)
		}
		t.Logf("wrote %s (%d bytes)", vectorsPath, len(got))
		committed = got
	} else if !bytes.Equal(got, committed) {
		t.Fatalf("generated vectors differ from %s; if the change is intended, run go test ./wasm/files -run TestVectors -args -update", vectorsPath)
	}
	var v fileVectors
	if err := json.Unmarshal(committed, &v); err != nil {
		t.Fatal(err)
	}
	checkLimits(t, v.Limits)
	checkDigests(t, v.Digests)
	relay, err := wire.ParseAddress(v.Relay)
	if err != nil {
		t.Fatal(err)
	}
	pub := ed25519.NewKeyFromSeed(unhex(t, v.RelaySeed)).Public().(ed25519.PublicKey)
	if relay.KeyHash != wire.HashIdentity(pub) {
		t.Fatal("relay address does not match the identity seed")
	}
	checkSizes(t, v.Sizes, relay)
	checkDescVector(t, "description", v.Description, rulePlaintext(v.Description.Size))
	inner := unhex(t, v.Description.Encoding)
	checkDescVector(t, "redirect", v.Redirect, inner)
	checkSenderVector(t, v.SenderState)
}

func checkLimits(t *testing.T, l limitsVector) {
	t.Helper()
	if l.MaxFileSize != 1<<30 || l.PieceSize != 4<<20 || l.MaxChunks != 257 || l.MaxDescriptionSize != 23213 || l.MaxRedirectSize != 429 {
		t.Errorf("limits %+v differ from SPEC.md §9", l)
	}
}

func checkDigests(t *testing.T, vs []digestVector) {
	t.Helper()
	for _, dv := range vs {
		var cat []byte
		for _, p := range dv.Pieces {
			cat = append(cat, unhex(t, p)...)
		}
		if want := (dv.Size + PieceSize - 1) / PieceSize; int64(len(dv.Pieces)) != want {
			t.Errorf("%d bytes: %d pieces, want %d", dv.Size, len(dv.Pieces), want)
		}
		if sum := sha256.Sum256(cat); hex.EncodeToString(sum[:]) != dv.Digest {
			t.Errorf("%d bytes: digest is not SHA-256 of the pieces' SHA-256", dv.Size)
		}
		got, err := Digest(bytes.NewReader(rulePlaintext(dv.Size)))
		if err != nil || hex.EncodeToString(got[:]) != dv.Digest {
			t.Errorf("%d bytes: Digest = %x, %v; want %s", dv.Size, got, err, dv.Digest)
		}
	}
}

func checkSizes(t *testing.T, vs []sizeVector, relay wire.Address) {
	t.Helper()
	for _, sv := range vs {
		class, err := ClassForSize(sv.Size)
		if err != nil || int(class) != sv.Class || stream.CiphertextSize(sv.Size) != sv.CiphertextSize {
			t.Errorf("%d bytes: class %s, %v", sv.Size, class, err)
			continue
		}
		cs := int64(class.Size())
		if n := chunkCount(sv.Size, class); n != sv.Chunks || int64(n-1)*cs+sv.LastChunkData != sv.CiphertextSize || sv.LastChunkData+sv.LastChunkPad != cs || sv.LastChunkData <= 0 {
			t.Errorf("%d bytes: %d chunks, vectors say %+v", sv.Size, n, sv)
		}
		if ds, err := DescriptionSize(sv.Size, relay); err != nil || ds != sv.DescriptionSize || ds != descriptionHeaderSize+len(relay.String())+sv.Chunks*RecipientChunkSize {
			t.Errorf("%d bytes: DescriptionSize %d, %v; vectors say %d", sv.Size, ds, err, sv.DescriptionSize)
		}
	}
}

func checkDescVector(t *testing.T, name string, v descVector, plain []byte) {
	t.Helper()
	enc := unhex(t, v.Encoding)
	d, err := UnmarshalDescription(enc)
	if err != nil {
		t.Fatalf("%s: %v", name, err)
	}
	if d.Size != v.Size || d.CiphertextSize() != v.CiphertextSize || int(d.Class) != v.Class || hex.EncodeToString(d.Digest[:]) != v.Digest ||
		hex.EncodeToString(d.Key.Bytes()) != v.Key || d.Relay.String() != v.Relay || d.Redirect != v.Redirect || int64(len(plain)) != v.Size {
		t.Fatalf("%s: decoded fields differ from the vector", name)
	}
	if cv := chunkVectors(d); !slices.Equal(cv, v.Chunks) {
		t.Fatalf("%s: decoded chunks %v, vector %v", name, cv, v.Chunks)
	}
	if again, err := d.MarshalBinary(); err != nil || !bytes.Equal(again, enc) {
		t.Fatalf("%s: re-encoding differs: %v", name, err)
	}
	if ds, err := DescriptionSize(d.Size, d.Relay); err != nil || ds != len(enc) {
		t.Errorf("%s: DescriptionSize %d, encoding %d bytes", name, ds, len(enc))
	}
	if sum, err := Digest(bytes.NewReader(plain)); err != nil || sum != d.Digest {
		t.Errorf("%s: digest of the plaintext differs: %v", name, err)
	}
	segs := cutCiphertext(t, plain, d.Key, d.Class)
	if len(segs) != len(v.ChunkCiphertext) || len(segs) != len(d.Chunks) {
		t.Fatalf("%s: %d ciphertext chunks, vector %d, description %d", name, len(segs), len(v.ChunkCiphertext), len(d.Chunks))
	}
	// The receive side over those chunks, padded as Send pads them (any
	// bytes: here 0xa5): Open gives the plaintext, then io.EOF.
	st, _ := newMemStore(t)
	for i, seg := range segs {
		sum := sha256.Sum256(seg)
		if int64(len(seg)) != v.ChunkCiphertext[i].Length || hex.EncodeToString(sum[:]) != v.ChunkCiphertext[i].SHA256 {
			t.Errorf("%s: chunk %d ciphertext differs", name, i)
		}
		rec := append(bytes.Clone(seg), bytes.Repeat([]byte{0xa5}, d.Class.Size()-len(seg))...)
		if err := st.Put(chunkKey("files/v", i), rec); err != nil {
			t.Fatal(err)
		}
	}
	r, err := Open(st, "files/v", d)
	if err != nil {
		t.Fatalf("%s: Open: %v", name, err)
	}
	if got, err := io.ReadAll(r); err != nil || !bytes.Equal(got, plain) {
		t.Errorf("%s: Open read %d bytes, %v", name, len(got), err)
	}
	// A flipped digest or key byte decodes (see the regions) but the file
	// then fails verification.
	for _, off := range []int{18, 18 + DigestSize} {
		b := bytes.Clone(enc)
		b[off] ^= 0xff
		bad, err := UnmarshalDescription(b)
		if err != nil {
			t.Fatalf("%s: byte %d flipped: %v", name, off, err)
		}
		r, err := Open(st, "files/v", bad)
		if err == nil {
			_, err = io.ReadAll(r)
		}
		if !errors.Is(err, ErrCorrupted) {
			t.Errorf("%s: byte %d flipped: Open read %v, want ErrCorrupted", name, off, err)
		}
	}
	if d.Redirect {
		inner, err := UnmarshalDescription(plain)
		if err != nil || inner.Redirect {
			t.Errorf("%s: the redirect's file does not decode as a file description: %v", name, err)
		}
	}
	checkRegions(t, name, enc, v.Regions, decodeDesc)
}

func checkSenderVector(t *testing.T, v senderVector) {
	t.Helper()
	enc := unhex(t, v.Encoding)
	s, err := UnmarshalSenderState(enc)
	if err != nil {
		t.Fatal(err)
	}
	if s.Relay.String() != v.Relay || len(s.Chunks) != len(v.Chunks) {
		t.Fatal("sender state: decoded fields differ from the vector")
	}
	for i, c := range s.Chunks {
		w := v.Chunks[i]
		if int(c.Class) != w.Class || hex.EncodeToString(c.SndID[:]) != w.ID || hex.EncodeToString(c.Key.Seed()) != w.Seed || w.BoxKey != "" {
			t.Fatalf("sender state: chunk %d differs from the vector", i)
		}
	}
	if again, err := s.MarshalBinary(); err != nil || !bytes.Equal(again, enc) {
		t.Fatalf("sender state: re-encoding differs: %v", err)
	}
	checkRegions(t, "sender state", enc, v.Regions, decodeSender)
}
