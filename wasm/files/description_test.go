package files

import (
	"bytes"
	"crypto/ed25519"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"strings"
	"testing"

	"github.com/wisp-chat/wisp/crypto/stream"
	"github.com/wisp-chat/wisp/server/wire"
	"github.com/wisp-chat/wisp/server/wire/client"
)

const (
	kib = 1 << 10
	mib = 1 << 20
)

func randBytes(t testing.TB, n int) []byte {
	t.Helper()
	b := make([]byte, n)
	if _, err := rand.Read(b); err != nil {
		t.Fatal(err)
	}
	return b
}

func testAddress(t testing.TB, host string) wire.Address {
	t.Helper()
	pub, _, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	return wire.Address{KeyHash: wire.HashIdentity(pub), Host: host, Port: 443}
}

// fakeDescription builds a well-formed description with random chunk
// records (no relay involved), for encoding tests.
func fakeDescription(t testing.TB, size int64, host string) *Description {
	t.Helper()
	class, err := ClassForSize(size)
	if err != nil {
		t.Fatal(err)
	}
	key, err := stream.NewKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	d := &Description{Size: size, Class: class, Key: key, Relay: testAddress(t, host), Chunks: make([]client.RecipientChunk, chunkCount(size, class))}
	copy(d.Digest[:], randBytes(t, DigestSize))
	for i := range d.Chunks {
		c := &d.Chunks[i]
		c.Class = class
		copy(c.RcvID[:], randBytes(t, wire.IDSize))
		c.Key = ed25519.NewKeyFromSeed(randBytes(t, ed25519.SeedSize))
		copy(c.BoxKey[:], randBytes(t, 32))
	}
	return d
}

// fakeDescriptions builds the descriptions of one file for r recipients,
// as SendMany returns them: one key, digest and relay, each recipient with
// its own random chunk records.
func fakeDescriptions(t testing.TB, size int64, host string, r int) []*Description {
	t.Helper()
	ds := []*Description{fakeDescription(t, size, host)}
	for range r - 1 {
		d := fakeDescription(t, size, host)
		d.Key, d.Digest, d.Relay = ds[0].Key, ds[0].Digest, ds[0].Relay
		ds = append(ds, d)
	}
	return ds
}

// chunkRecords returns every recipient's record of chunk i, in recipient
// order (what an UploadedChunk holds).
func chunkRecords(ds []*Description, i int) []client.RecipientChunk {
	out := make([]client.RecipientChunk, len(ds))
	for k, d := range ds {
		out[k] = d.Chunks[i]
	}
	return out
}

// fakeSenderChunk is a well-formed sender record with random fields.
func fakeSenderChunk(t testing.TB, class wire.ChunkClass) client.SenderChunk {
	s := client.SenderChunk{Class: class, Key: ed25519.NewKeyFromSeed(randBytes(t, ed25519.SeedSize))}
	copy(s.SndID[:], randBytes(t, wire.IDSize))
	return s
}

func TestClassForSize(t *testing.T) {
	for _, tc := range []struct {
		size   int64
		class  wire.ChunkClass
		chunks int
	}{
		{0, wire.Class64K, 1},
		{1, wire.Class64K, 1},
		{64*kib - stream.TagSize, wire.Class64K, 1},
		{64*kib - stream.TagSize + 1, wire.Class256K, 1},
		{256*kib - 4*stream.TagSize, wire.Class256K, 1},
		{256*kib - 4*stream.TagSize + 1, wire.Class1M, 1},
		{mib, wire.Class4M, 1},
		{4*mib - 64*stream.TagSize, wire.Class4M, 1},
		{4*mib - 64*stream.TagSize + 1, wire.Class4M, 2},
		{20 * mib, wire.Class4M, 6},
		{MaxFileSize, wire.Class4M, MaxChunks},
	} {
		class, err := ClassForSize(tc.size)
		if err != nil || class != tc.class {
			t.Errorf("ClassForSize(%d) = %s, %v, want %s", tc.size, class, err, tc.class)
			continue
		}
		if n := chunkCount(tc.size, class); n != tc.chunks {
			t.Errorf("%d bytes: %d chunks, want %d", tc.size, n, tc.chunks)
		}
	}
	for _, size := range []int64{-1, MaxFileSize + 1} {
		if _, err := ClassForSize(size); !errors.Is(err, ErrTooLarge) {
			t.Errorf("ClassForSize(%d) = %v, want ErrTooLarge", size, err)
		}
	}
}

func TestDescriptionRoundTrip(t *testing.T) {
	for _, size := range []int64{0, 1, 64*kib - 1, 3*mib + 7, 20 * mib, MaxFileSize} {
		d := fakeDescription(t, size, "relay.example")
		b, err := d.MarshalBinary()
		if err != nil {
			t.Fatal(err)
		}
		if want, _ := DescriptionSize(size, d.Relay); len(b) != want {
			t.Errorf("%d bytes: description is %d bytes, DescriptionSize says %d", size, len(b), want)
		}
		got, err := UnmarshalDescription(b)
		if err != nil {
			t.Fatalf("%d bytes: %v", size, err)
		}
		if got.Size != d.Size || got.Class != d.Class || got.Digest != d.Digest || !got.Key.Equal(d.Key) || got.Relay != d.Relay || len(got.Chunks) != len(d.Chunks) {
			t.Fatalf("%d bytes: fields differ after a round trip", size)
		}
		for i := range d.Chunks {
			if got.Chunks[i].RcvID != d.Chunks[i].RcvID || !got.Chunks[i].Key.Equal(d.Chunks[i].Key) || got.Chunks[i].BoxKey != d.Chunks[i].BoxKey {
				t.Fatalf("%d bytes: chunk %d differs", size, i)
			}
		}
		again, err := got.MarshalBinary()
		if err != nil || !bytes.Equal(again, b) {
			t.Fatalf("%d bytes: re-encoding differs: %v", size, err)
		}
	}
}

// TestMaxDescriptionSize hits the declared limit: a 1 GiB file with the
// longest address the format allows is exactly MaxDescriptionSize, and
// one byte more is refused.
func TestMaxDescriptionSize(t *testing.T) {
	if MaxDescriptionSize != 23213 || MaxChunks != 257 {
		t.Fatalf("MaxDescriptionSize = %d, MaxChunks = %d; the docs say 23,213 and 257", MaxDescriptionSize, MaxChunks)
	}
	prefix := "wisp://" + testAddress(t, "h").KeyHash.String() + "@"
	host := strings.Repeat("a", maxAddressSize-len(prefix)-len(":443"))
	d := fakeDescription(t, MaxFileSize, host)
	b, err := d.MarshalBinary()
	if err != nil {
		t.Fatal(err)
	}
	if len(b) != MaxDescriptionSize {
		t.Fatalf("largest description is %d bytes, want %d", len(b), MaxDescriptionSize)
	}
	if _, err := UnmarshalDescription(b); err != nil {
		t.Fatal(err)
	}
	if _, err := UnmarshalDescription(append(b, 0)); !errors.Is(err, ErrInvalidDescription) {
		t.Fatalf("oversized description: %v", err)
	}
	d.Relay.Host += "a"
	if _, err := d.MarshalBinary(); !errors.Is(err, ErrInvalidDescription) {
		t.Fatalf("address over %d bytes: %v", maxAddressSize, err)
	}
}

func TestDescriptionInvalid(t *testing.T) {
	d := fakeDescription(t, 5*mib, "relay.example") // two chunks
	good, err := d.MarshalBinary()
	if err != nil {
		t.Fatal(err)
	}
	bad := func(name string, b []byte) {
		t.Helper()
		if _, err := UnmarshalDescription(b); !errors.Is(err, ErrInvalidDescription) {
			t.Errorf("%s: %v, want ErrInvalidDescription", name, err)
		}
	}
	bad("empty", nil)
	for n := range len(good) {
		bad("truncated", good[:n])
	}
	bad("trailing byte", append(bytes.Clone(good), 0))
	edit := func(name string, off int, v ...byte) {
		t.Helper()
		b := bytes.Clone(good)
		copy(b[off:], v)
		bad(name, b)
	}
	edit("format 0", 0, 0)
	edit("format 3", 0, 3)
	edit("redirect to 5 MiB", 0, FormatRedirect)
	edit("size over 1 GiB", 1, 0, 0, 0, 0, 0x40, 0, 0, 1)
	edit("size changed", 8, 1)
	edit("ciphertext size", 16, 1)
	edit("class", 17, byte(wire.Class1M))
	edit("class 0", 17, 0)
	addrOff := 1 + 8 + 8 + 1 + DigestSize + stream.KeySize
	edit("address length 0", addrOff, 0)
	edit("address scheme", addrOff+1, 'x')
	chunksOff := addrOff + 1 + len(d.Relay.String())
	edit("chunk count", chunksOff, 0, 3)
	edit("chunk class", chunksOff+2, byte(wire.Class1M))
	edit("second chunk class", chunksOff+2+RecipientChunkSize, 9)

	// A non-canonical address (port written differently) is refused.
	nc := bytes.Clone(good[:addrOff])
	addr := strings.Replace(d.Relay.String(), ":443", ":0443", 1)
	nc = append(append(append(nc, byte(len(addr))), addr...), good[chunksOff:]...)
	bad("non-canonical address", nc)

	// Inconsistent descriptions do not encode either.
	for name, mod := range map[string]func(*Description){
		"negative size":  func(d *Description) { d.Size = -1 },
		"over 1 GiB":     func(d *Description) { d.Size = MaxFileSize + 1 },
		"wrong class":    func(d *Description) { d.Class = wire.Class64K },
		"missing chunk":  func(d *Description) { d.Chunks = d.Chunks[1:] },
		"no host":        func(d *Description) { d.Relay.Host = "" },
		"chunk class":    func(d *Description) { d.Chunks[0].Class = wire.Class64K },
		"chunk key":      func(d *Description) { d.Chunks[0].Key = nil },
		"size vs chunks": func(d *Description) { d.Size = 10 },
	} {
		c := fakeDescription(t, 3*mib+7, "relay.example")
		mod(c)
		if _, err := c.MarshalBinary(); !errors.Is(err, ErrInvalidDescription) {
			t.Errorf("MarshalBinary with %s: %v, want ErrInvalidDescription", name, err)
		}
	}
}

// TestDescriptionBitFlips flips every bit of an encoding: each result
// either fails with ErrInvalidDescription or decodes to something that
// encodes back to exactly the flipped bytes (a different key or digest).
func TestDescriptionBitFlips(t *testing.T) {
	good, err := fakeDescription(t, 100*kib, "127.0.0.1").MarshalBinary()
	if err != nil {
		t.Fatal(err)
	}
	for i := range len(good) * 8 {
		b := bytes.Clone(good)
		b[i/8] ^= 1 << (i % 8)
		d, err := UnmarshalDescription(b)
		if err != nil {
			if !errors.Is(err, ErrInvalidDescription) {
				t.Fatalf("bit %d: %v", i, err)
			}
			continue
		}
		if again, err := d.MarshalBinary(); err != nil || !bytes.Equal(again, b) {
			t.Fatalf("bit %d: accepted but re-encodes differently: %v", i, err)
		}
	}
}

func fakeSenderState(t testing.TB, n int) *SenderState {
	t.Helper()
	s := &SenderState{Relay: testAddress(t, "relay.example"), Chunks: make([]client.SenderChunk, n)}
	for i := range s.Chunks {
		s.Chunks[i].Class = wire.Class4M
		copy(s.Chunks[i].SndID[:], randBytes(t, wire.IDSize))
		s.Chunks[i].Key = ed25519.NewKeyFromSeed(randBytes(t, ed25519.SeedSize))
	}
	return s
}

func TestSenderState(t *testing.T) {
	s := fakeSenderState(t, 3)
	b, err := s.MarshalBinary()
	if err != nil {
		t.Fatal(err)
	}
	got, err := UnmarshalSenderState(b)
	if err != nil {
		t.Fatal(err)
	}
	if got.Relay != s.Relay || len(got.Chunks) != 3 || got.Chunks[2].SndID != s.Chunks[2].SndID || !got.Chunks[2].Key.Equal(s.Chunks[2].Key) {
		t.Fatal("sender state differs after a round trip")
	}
	for n := range len(b) {
		if _, err := UnmarshalSenderState(b[:n]); !errors.Is(err, ErrInvalidDescription) {
			t.Fatalf("truncated to %d: %v", n, err)
		}
	}
	for name, v := range map[string][]byte{
		"trailing":  append(bytes.Clone(b), 1),
		"version":   append([]byte{2}, b[1:]...),
		"bad class": func() []byte { c := bytes.Clone(b); c[len(c)-SenderChunkSize] = 0; return c }(),
	} {
		if _, err := UnmarshalSenderState(v); !errors.Is(err, ErrInvalidDescription) {
			t.Errorf("%s: %v", name, err)
		}
	}
	if _, err := fakeSenderState(t, MaxChunks+1).MarshalBinary(); !errors.Is(err, ErrInvalidDescription) {
		t.Errorf("%d chunks: %v", MaxChunks+1, err)
	}
	full, err := fakeSenderState(t, MaxChunks).MarshalBinary()
	if err != nil {
		t.Fatal(err)
	}
	if _, err := UnmarshalSenderState(full); err != nil {
		t.Errorf("%d chunks: %v", MaxChunks, err)
	}
}

func TestRedirectDescription(t *testing.T) {
	d := fakeDescription(t, MaxDescriptionSize, "relay.example")
	d.Redirect = true
	b, err := d.MarshalBinary()
	if err != nil {
		t.Fatal(err)
	}
	if b[0] != FormatRedirect || len(b) > 429 {
		t.Fatalf("redirect: format %d, %d bytes", b[0], len(b))
	}
	got, err := UnmarshalDescription(b)
	if err != nil || !got.Redirect || got.Size != MaxDescriptionSize {
		t.Fatalf("redirect round trip: %v", err)
	}
	b[0] = FormatFile
	if got, err := UnmarshalDescription(b); err != nil || got.Redirect {
		t.Fatalf("same bytes as a file description: %v", err)
	}
	big := fakeDescription(t, MaxDescriptionSize+1, "relay.example")
	big.Redirect = true
	if _, err := big.MarshalBinary(); !errors.Is(err, ErrInvalidDescription) {
		t.Fatalf("redirect to %d bytes: %v", MaxDescriptionSize+1, err)
	}
	big.Redirect = false
	b, err = big.MarshalBinary()
	if err != nil {
		t.Fatal(err)
	}
	b[0] = FormatRedirect
	if _, err := UnmarshalDescription(b); !errors.Is(err, ErrInvalidDescription) {
		t.Fatalf("decoding a redirect to %d bytes: %v", MaxDescriptionSize+1, err)
	}
}

// TestFormatHidesSecrets: printing a description or sender state with any
// verb shows no key, ID or digest.
func TestFormatHidesSecrets(t *testing.T) {
	d := fakeDescription(t, 5*mib, "relay.example")
	st := fakeSenderState(t, 2)
	secrets := [][]byte{d.Key.Bytes(), d.Digest[:], d.Chunks[1].RcvID[:], d.Chunks[0].Key.Seed(), d.Chunks[0].BoxKey[:], st.Chunks[0].SndID[:], st.Chunks[1].Key.Seed()}
	for _, verb := range []string{"%v", "%+v", "%#v", "%s", "%x", "%q"} {
		for _, v := range []any{d, st, *d, *st} {
			out := fmt.Sprintf(verb, v)
			for _, sec := range secrets {
				if strings.Contains(strings.ToLower(out), hex.EncodeToString(sec[:8])) || strings.Contains(out, string(sec[:8])) {
					t.Fatalf("%s of %T prints a secret: %s", verb, v, out)
				}
			}
		}
	}
}
