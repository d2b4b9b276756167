package box

import (
	"bytes"
	"errors"
	"testing"

	"github.com/wisp-chat/wisp/crypto/internal/testkit"
	"github.com/wisp-chat/wisp/crypto/pad"
	naclbox "golang.org/x/crypto/nacl/box"
)

func keyPair(t testing.TB, label string) (PrivateKey, PublicKey) {
	t.Helper()
	priv, err := GenerateKey(testkit.Rand(label))
	if err != nil {
		t.Fatal(err)
	}
	return priv, priv.PublicKey()
}

func sharedPair(t testing.TB) (SharedKey, SharedKey) {
	t.Helper()
	a, ap := keyPair(t, "box/a")
	b, bp := keyPair(t, "box/b")
	ab, err := Precompute(a, bp)
	if err != nil {
		t.Fatal(err)
	}
	ba, err := Precompute(b, ap)
	if err != nil {
		t.Fatal(err)
	}
	return ab, ba
}

// TestNaClVector is the crypto_box vector of NaCl's tests/box.c and
// tests/box2.c (alicesk, bobpk, nonce, m, c), plus its beforenm key.
func TestNaClVector(t *testing.T) {
	alice, err := PrivateKeyFromBytes(testkit.Unhex(t, "77076d0a7318a57d3c16c17251b26645df4c2f87ebc0992ab177fba51db92c2a"))
	if err != nil {
		t.Fatal(err)
	}
	bob, err := ParsePublicKey(testkit.Unhex(t, "de9edb7d7b7dc1b4d35b61c2ece435373f8343c85b78674dadfc7e146f882b4f"))
	if err != nil {
		t.Fatal(err)
	}
	k, err := Precompute(alice, bob)
	if err != nil {
		t.Fatal(err)
	}
	if want := testkit.Unhex(t, "1b27556473e985d462cd51197a9a46c76009549eac6474f206c4ee0844f68389"); !bytes.Equal(k.Bytes(), want) {
		t.Fatalf("beforenm: got %x, want %x", k.Bytes(), want)
	}
	nonce := Nonce(testkit.Unhex(t, "69696ee955b62b73cd62bda875fc73d68219e0036b7a0b37"))
	m := testkit.Unhex(t, "be075fc53c81f2d5cf141316ebeb0c7b5228c52a4c62cbd44b66849b64244ffc"+
		"e5ecbaaf33bd751a1ac728d45e6c61296cdc3c01233561f41db66cce314adb31"+
		"0e3be8250c46f06dceea3a7fa1348057e2f6556ad6b1318a024a838f21af1fde"+
		"048977eb48f59ffd4924ca1c60902e52f0a089bc76897040e082f93776384864"+
		"5e0705")
	c := testkit.Unhex(t, "f3ffc7703f9400e52a7dfb4b3d3305d98e993b9f48681273c29650ba32fc76ce"+
		"48332ea7164d96a4476fb8c531a1186ac0dfc17c98dce87b4da7f011ec48c972"+
		"71d2c20f9b928fe2270d6fb863d51738b48eeee314a7cc8ab932164548e526ae"+
		"90224368517acfeabd6bb3732bc0e9da99832b61ca01b6de56244a9e88d5f9b3"+
		"7973f622a43d14a6599b1f654cb45a74e355a5")
	kb := [32]byte(k.Bytes())
	nb := [24]byte(nonce)
	if got := naclbox.SealAfterPrecomputation(nil, m, &nb, &kb); !bytes.Equal(got, c) {
		t.Fatalf("box: got %x, want %x", got, c)
	}
	// The padded form: our Open accepts exactly secretbox(pad(m)).
	p, err := pad.Pad(m, len(m)+10)
	if err != nil {
		t.Fatal(err)
	}
	got, err := OpenWithNonce(k, nonce, naclbox.SealAfterPrecomputation(nil, p, &nb, &kb))
	if err != nil || !bytes.Equal(got, m) {
		t.Fatalf("OpenWithNonce: %v", err)
	}
}

func TestSealOpen(t *testing.T) {
	ab, ba := sharedPair(t)
	if !ab.Equal(ba) {
		t.Fatal("shared keys differ")
	}
	r := testkit.Rand("box/seal")
	for _, n := range []int{0, 1, 100, MaxMessagePlaintext} {
		msg := testkit.Bytes(r, n)
		sealed, err := Seal(r, ab, msg, MessageSize)
		if err != nil {
			t.Fatal(err)
		}
		if len(sealed) != MessageSize {
			t.Fatalf("sealed %d bytes, want %d", len(sealed), MessageSize)
		}
		got, err := Open(ba, sealed)
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(got, msg) {
			t.Fatal("round trip mismatch")
		}
	}
	if _, err := Seal(r, ab, make([]byte, MaxMessagePlaintext+1), MessageSize); !errors.Is(err, ErrTooLong) {
		t.Fatalf("one byte too long: %v", err)
	}
	if _, err := Seal(r, ab, nil, Overhead+1); !errors.Is(err, ErrSize) {
		t.Fatalf("size too small: %v", err)
	}
	// Two seals of the same message differ (random nonces).
	s1, _ := Seal(r, ab, []byte("x"), 64)
	s2, _ := Seal(r, ab, []byte("x"), 64)
	if bytes.Equal(s1, s2) {
		t.Fatal("two seals are identical")
	}
}

func TestSealWithNonce(t *testing.T) {
	ab, ba := sharedPair(t)
	var id Nonce
	copy(id[:], "message-id-24-bytes-long")
	sealed, err := SealWithNonce(ab, id, []byte("relay"), 100)
	if err != nil {
		t.Fatal(err)
	}
	if len(sealed) != 100 {
		t.Fatalf("got %d bytes", len(sealed))
	}
	got, err := OpenWithNonce(ba, id, sealed)
	if err != nil || string(got) != "relay" {
		t.Fatalf("OpenWithNonce: %q, %v", got, err)
	}
	id[0] ^= 1
	if _, err := OpenWithNonce(ba, id, sealed); !errors.Is(err, ErrDecrypt) {
		t.Fatalf("wrong nonce: %v", err)
	}
}

func TestLowOrder(t *testing.T) {
	priv, _ := keyPair(t, "box/low")
	for _, s := range []string{
		"0000000000000000000000000000000000000000000000000000000000000000", // 0
		"0100000000000000000000000000000000000000000000000000000000000000", // 1
		"ecffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff7f", // p-1
		"e0eb7a7c3b41b8ae1656e3faf19fc46ada098deb9c32b1fd866205165f49b800", // order 8
		"5f9c95bca3508c24b1d0b1559c83ef5b04445cc4581c8e86d8224eddd09f1157", // order 8
		"edffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff7f", // p
	} {
		pub, err := ParsePublicKey(testkit.Unhex(t, s))
		if err != nil {
			t.Fatal(err)
		}
		if _, err := Precompute(priv, pub); !errors.Is(err, ErrLowOrder) {
			t.Errorf("%s: err = %v, want ErrLowOrder", s, err)
		}
	}
}

func TestKeySizes(t *testing.T) {
	for _, n := range []int{0, 31, 33} {
		if _, err := ParsePublicKey(make([]byte, n)); !errors.Is(err, ErrKeySize) {
			t.Errorf("ParsePublicKey(%d): %v", n, err)
		}
		if _, err := PrivateKeyFromBytes(make([]byte, n)); !errors.Is(err, ErrKeySize) {
			t.Errorf("PrivateKeyFromBytes(%d): %v", n, err)
		}
		if _, err := SharedKeyFromBytes(make([]byte, n)); !errors.Is(err, ErrKeySize) {
			t.Errorf("SharedKeyFromBytes(%d): %v", n, err)
		}
	}
	ab, _ := sharedPair(t)
	k2, err := SharedKeyFromBytes(ab.Bytes())
	if err != nil || !k2.Equal(ab) {
		t.Fatal("SharedKeyFromBytes does not restore the key")
	}
	priv, _ := keyPair(t, "box/a")
	p2, err := PrivateKeyFromBytes(priv.Bytes())
	if err != nil || !p2.Equal(priv) {
		t.Fatal("PrivateKeyFromBytes does not restore the key")
	}
	other, _ := keyPair(t, "box/b")
	if priv.Equal(other) {
		t.Fatal("different keys are Equal")
	}
}

func TestNoSecretInFormat(t *testing.T) {
	ab, _ := sharedPair(t)
	priv, _ := keyPair(t, "box/a")
	testkit.CheckRedacted(t, ab.Bytes(), ab, &ab, struct{ K SharedKey }{ab})
	testkit.CheckRedacted(t, priv.Bytes(), priv, &priv, struct{ K PrivateKey }{priv})
}

// TestTamper: every single-bit flip, truncation and extension of a sealed
// message is rejected.
func TestTamper(t *testing.T) {
	ab, ba := sharedPair(t)
	r := testkit.Rand("box/tamper")
	size := MessageSize
	if testing.Short() {
		size = 512
	}
	sealed, err := Seal(r, ab, testkit.Bytes(r, 100), size)
	if err != nil {
		t.Fatal(err)
	}
	for i := range len(sealed) * 8 {
		sealed[i/8] ^= 1 << (i % 8)
		if _, err := Open(ba, sealed); err == nil {
			t.Fatalf("bit %d flip accepted", i)
		}
		sealed[i/8] ^= 1 << (i % 8)
	}
	for n := range len(sealed) {
		if _, err := Open(ba, sealed[:n]); err == nil {
			t.Fatalf("truncation to %d accepted", n)
		}
	}
	for _, extra := range [][]byte{{0}, {1}, make([]byte, 16)} {
		if _, err := Open(ba, append(bytes.Clone(sealed), extra...)); err == nil {
			t.Fatalf("extension by %d accepted", len(extra))
		}
	}
	if _, err := Open(ba, sealed); err != nil {
		t.Fatalf("untouched message rejected: %v", err)
	}
}
