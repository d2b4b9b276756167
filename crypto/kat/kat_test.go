package kat

import (
	"bytes"
	"crypto/mlkem"
	"encoding/hex"
	"testing"

	"github.com/wisp-chat/wisp/crypto/internal/testkit"
	"golang.org/x/crypto/argon2"
	"golang.org/x/crypto/chacha20poly1305"
	"golang.org/x/crypto/curve25519"
	"golang.org/x/crypto/nacl/box"
)

// RFC 7748 section 5.2.
func TestX25519RFC7748Vectors(t *testing.T) {
	for _, v := range []struct{ scalar, u, out string }{
		{
			"a546e36bf0527c9d3b16154b82465edd62144c0ac1fc5a18506a2244ba449ac4",
			"e6db6867583030db3594c1a424b15f7c726624ec26b3353b10a903a6d0ab1c4c",
			"c3da55379de9c6908e94ea4df28d084f32eccf03491c71f754b4075577a28552",
		},
		{
			"4b66e9d4d1b4673c5ad22691957d6af5c11b6421e0ea01d42ca4169e7918ba0d",
			"e5210f12786811d3f4b7959d0538ae2c31dbe7106fc03c3efc4cd549c715a493",
			"95cbde9476e8907d7aade45cb4b873f88b595a68799fa152e6f8f7647aac7957",
		},
	} {
		got, err := curve25519.X25519(testkit.Unhex(t, v.scalar), testkit.Unhex(t, v.u))
		if err != nil {
			t.Fatal(err)
		}
		if want := testkit.Unhex(t, v.out); !bytes.Equal(got, want) {
			t.Errorf("X25519(%s…): got %x, want %x", v.scalar[:8], got, want)
		}
	}
}

// RFC 7748 section 5.2, the iterated test (1 and 1,000 iterations).
func TestX25519RFC7748Iterated(t *testing.T) {
	k := testkit.Unhex(t, "0900000000000000000000000000000000000000000000000000000000000000")
	u := bytes.Clone(k)
	want := map[int]string{
		1:    "422c8e7a6227d7bca1350b3e2bb7279f7897b87bb6854b783c60e80311ae3079",
		1000: "684cf59ba83309552800ef566f2f4d3c1c3887c49360e3875f2eb94d99532c51",
	}
	for i := 1; i <= 1000; i++ {
		out, err := curve25519.X25519(k, u)
		if err != nil {
			t.Fatal(err)
		}
		k, u = out, k
		if w, ok := want[i]; ok && hex.EncodeToString(k) != w {
			t.Fatalf("after %d iterations: got %x, want %s", i, k, w)
		}
	}
}

// RFC 7748 section 6.1.
func TestX25519RFC7748DH(t *testing.T) {
	a := testkit.Unhex(t, "77076d0a7318a57d3c16c17251b26645df4c2f87ebc0992ab177fba51db92c2a")
	b := testkit.Unhex(t, "5dab087e624a8a4b79e17f8b83800ee66f3bb1292618b6fd1c2f8b27ff88e0eb")
	for _, v := range []struct {
		priv []byte
		pub  string
	}{
		{a, "8520f0098930a754748b7ddcb43ef75a0dbf3a0d26381af4eba4a98eaa9b4e6a"},
		{b, "de9edb7d7b7dc1b4d35b61c2ece435373f8343c85b78674dadfc7e146f882b4f"},
	} {
		got, err := curve25519.X25519(v.priv, curve25519.Basepoint)
		if err != nil || hex.EncodeToString(got) != v.pub {
			t.Fatalf("public key: got %x (%v), want %s", got, err, v.pub)
		}
	}
	k1, _ := curve25519.X25519(a, testkit.Unhex(t, "de9edb7d7b7dc1b4d35b61c2ece435373f8343c85b78674dadfc7e146f882b4f"))
	k2, _ := curve25519.X25519(b, testkit.Unhex(t, "8520f0098930a754748b7ddcb43ef75a0dbf3a0d26381af4eba4a98eaa9b4e6a"))
	want := "4a5d9d5ba4ce2de1728e3bf480350f25e07e21c947d19e3376f09b3c1e161742"
	if hex.EncodeToString(k1) != want || hex.EncodeToString(k2) != want {
		t.Fatalf("shared secret: got %x and %x, want %s", k1, k2, want)
	}
}

// RFC 8439 section 2.8.2.
func TestChaCha20Poly1305RFC8439(t *testing.T) {
	key := testkit.Unhex(t, "808182838485868788898a8b8c8d8e8f909192939495969798999a9b9c9d9e9f")
	nonce := testkit.Unhex(t, "070000004041424344454647")
	aad := testkit.Unhex(t, "50515253c0c1c2c3c4c5c6c7")
	pt := []byte("Ladies and Gentlemen of the class of '99: If I could offer you only one tip for the future, sunscreen would be it.")
	want := testkit.Unhex(t, "d31a8d34648e60db7b86afbc53ef7ec2a4aded51296e08fea9e2b5a736ee62d6"+
		"3dbea45e8ca9671282fafb69da92728b1a71de0a9e060b2905d6a5b67ecd3b36"+
		"92ddbd7f2d778b8c9803aee328091b58fab324e4fad675945585808b4831d7bc"+
		"3ff4def08e4b7a9de576d26586cec64b6116"+
		"1ae10b594f09e26a7e902ecbd0600691")
	aead, err := chacha20poly1305.New(key)
	if err != nil {
		t.Fatal(err)
	}
	got := aead.Seal(nil, nonce, pt, aad)
	if !bytes.Equal(got, want) {
		t.Fatalf("seal: got %x, want %x", got, want)
	}
	back, err := aead.Open(nil, nonce, want, aad)
	if err != nil || !bytes.Equal(back, pt) {
		t.Fatalf("open: %v", err)
	}
	want[0] ^= 1
	if _, err := aead.Open(nil, nonce, want, aad); err == nil {
		t.Fatal("tampered ciphertext accepted")
	}
}

// draft-irtf-cfrg-xchacha-03 appendix A.3.1 (XChaCha20-Poly1305, used by
// crypto/vault).
func TestXChaCha20Poly1305(t *testing.T) {
	key := testkit.Unhex(t, "808182838485868788898a8b8c8d8e8f909192939495969798999a9b9c9d9e9f")
	nonce := testkit.Unhex(t, "404142434445464748494a4b4c4d4e4f5051525354555657")
	aad := testkit.Unhex(t, "50515253c0c1c2c3c4c5c6c7")
	pt := []byte("Ladies and Gentlemen of the class of '99: If I could offer you only one tip for the future, sunscreen would be it.")
	want := testkit.Unhex(t, "bd6d179d3e83d43b9576579493c0e939572a1700252bfaccbed2902c21396cbb"+
		"731c7f1b0b4aa6440bf3a82f4eda7e39ae64c6708c54c216cb96b72e1213b452"+
		"2f8c9ba40db5d945b11b69b982c1bb9e3f3fac2bc369488f76b2383565d3fff9"+
		"21f9664c97637da9768812f615c68b13b52e"+
		"c0875924c1c7987947deafd8780acf49")
	aead, err := chacha20poly1305.NewX(key)
	if err != nil {
		t.Fatal(err)
	}
	if got := aead.Seal(nil, nonce, pt, aad); !bytes.Equal(got, want) {
		t.Fatalf("seal: got %x, want %x", got, want)
	}
}

// Argon2id (version 0x13) output of the reference argon2 command line tool:
// echo -n 123 | argon2 ABCDEFGHIJKLMNOP -id -v 13 -k 1024 -t 5 -p 1 -l 32.
func TestArgon2id(t *testing.T) {
	got := argon2.IDKey([]byte("123"), []byte("ABCDEFGHIJKLMNOP"), 5, 1024, 1, 32)
	if want := "3c5d010180ba0cf5b6b858cba23b318e42d33088983c404598599c3b029ecac6"; hex.EncodeToString(got) != want {
		t.Fatalf("got %x, want %s", got, want)
	}
}

// NaCl tests/box.c: crypto_box with alicesk, bobpk and the fixed nonce.
func TestNaClBox(t *testing.T) {
	var alicesk, bobpk [32]byte
	copy(alicesk[:], testkit.Unhex(t, "77076d0a7318a57d3c16c17251b26645df4c2f87ebc0992ab177fba51db92c2a"))
	copy(bobpk[:], testkit.Unhex(t, "de9edb7d7b7dc1b4d35b61c2ece435373f8343c85b78674dadfc7e146f882b4f"))
	var nonce [24]byte
	copy(nonce[:], testkit.Unhex(t, "69696ee955b62b73cd62bda875fc73d68219e0036b7a0b37"))
	m := testkit.Unhex(t, "be075fc53c81f2d5cf141316ebeb0c7b5228c52a4c62cbd44b66849b64244ffc"+
		"e5ecbaaf33bd751a1ac728d45e6c61296cdc3c01233561f41db66cce314adb31"+
		"0e3be8250c46f06dceea3a7fa1348057e2f6556ad6b1318a024a838f21af1fde"+
		"048977eb48f59ffd4924ca1c60902e52f0a089bc76897040e082f93776384864"+
		"5e0705")
	want := testkit.Unhex(t, "f3ffc7703f9400e52a7dfb4b3d3305d98e993b9f48681273c29650ba32fc76ce"+
		"48332ea7164d96a4476fb8c531a1186ac0dfc17c98dce87b4da7f011ec48c972"+
		"71d2c20f9b928fe2270d6fb863d51738b48eeee314a7cc8ab932164548e526ae"+
		"90224368517acfeabd6bb3732bc0e9da99832b61ca01b6de56244a9e88d5f9b3"+
		"7973f622a43d14a6599b1f654cb45a74e355a5")
	if got := box.Seal(nil, m, &nonce, &bobpk, &alicesk); !bytes.Equal(got, want) {
		t.Fatalf("box: got %x, want %x", got, want)
	}
}

// ML-KEM-768: a seed-derived key pair round trip (the implementation is
// covered by the standard library's own FIPS 203 vectors).
func TestMLKEM768RoundTrip(t *testing.T) {
	seed := bytes.Repeat([]byte{0x42}, mlkem.SeedSize)
	dk, err := mlkem.NewDecapsulationKey768(seed)
	if err != nil {
		t.Fatal(err)
	}
	ek, err := mlkem.NewEncapsulationKey768(dk.EncapsulationKey().Bytes())
	if err != nil {
		t.Fatal(err)
	}
	ss, ct := ek.Encapsulate()
	if len(ct) != mlkem.CiphertextSize768 || len(ek.Bytes()) != mlkem.EncapsulationKeySize768 {
		t.Fatalf("sizes: ct %d, ek %d", len(ct), len(ek.Bytes()))
	}
	got, err := dk.Decapsulate(ct)
	if err != nil || !bytes.Equal(got, ss) {
		t.Fatalf("decapsulate: %v", err)
	}
}
