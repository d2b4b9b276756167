package box

import (
	"bytes"
	_ "embed"
	"encoding/hex"
	"testing"

	"github.com/wisp-chat/wisp/crypto/internal/testkit"
)

//go:embed testdata/vectors.json
var vectorsJSON []byte

type boxVector struct {
	AlicePrivate string `json:"alice_private"`
	AlicePublic  string `json:"alice_public"`
	BobPrivate   string `json:"bob_private"`
	BobPublic    string `json:"bob_public"`
	Shared       string `json:"shared_key"`
	Message      string `json:"message"`
	Size         int    `json:"size"`
	Sealed       string `json:"sealed"`         // Seal: nonce || secretbox(pad(message))
	MessageID    string `json:"message_id"`     // SealWithNonce nonce
	SealedWithID string `json:"sealed_with_id"` // SealWithNonce output, same size
}

func generateBoxVectors(t *testing.T) []boxVector {
	var out []boxVector
	r := testkit.Rand("vectors/box")
	for _, tc := range []struct{ msgLen, size int }{{0, 64}, {5, 64}, {100, 256}, {MaxMessagePlaintext, MessageSize}} {
		a, _ := GenerateKey(r)
		b, _ := GenerateKey(r)
		k, err := Precompute(a, b.PublicKey())
		if err != nil {
			t.Fatal(err)
		}
		msg := testkit.Bytes(r, tc.msgLen)
		sealed, err := Seal(r, k, msg, tc.size)
		if err != nil {
			t.Fatal(err)
		}
		id := Nonce(testkit.Bytes(r, NonceSize))
		withID, err := SealWithNonce(k, id, msg, tc.size)
		if err != nil {
			t.Fatal(err)
		}
		h := hex.EncodeToString
		out = append(out, boxVector{
			h(a.Bytes()), h(a.PublicKey().Bytes()), h(b.Bytes()), h(b.PublicKey().Bytes()),
			h(k.Bytes()), h(msg), tc.size, h(sealed), h(id[:]), h(withID),
		})
	}
	return out
}

func TestVectors(t *testing.T) {
	data := testkit.CheckVectors(t, "testdata/vectors.json", vectorsJSON, testkit.JSON(t, generateBoxVectors(t)))
	var vs []boxVector
	testkit.Decode(t, data, &vs)
	for n, v := range vs {
		a, _ := PrivateKeyFromBytes(testkit.Unhex(t, v.AlicePrivate))
		b, _ := PrivateKeyFromBytes(testkit.Unhex(t, v.BobPrivate))
		if hex.EncodeToString(a.PublicKey().Bytes()) != v.AlicePublic || hex.EncodeToString(b.PublicKey().Bytes()) != v.BobPublic {
			t.Fatalf("vector %d: public keys", n)
		}
		k, err := Precompute(b, a.PublicKey())
		if err != nil || hex.EncodeToString(k.Bytes()) != v.Shared {
			t.Fatalf("vector %d: shared key", n)
		}
		sealed := testkit.Unhex(t, v.Sealed)
		msg, err := Open(k, sealed)
		if err != nil || !bytes.Equal(msg, testkit.Unhex(t, v.Message)) || len(sealed) != v.Size {
			t.Fatalf("vector %d: Open: %v", n, err)
		}
		msg, err = OpenWithNonce(k, Nonce(testkit.Unhex(t, v.MessageID)), testkit.Unhex(t, v.SealedWithID))
		if err != nil || !bytes.Equal(msg, testkit.Unhex(t, v.Message)) {
			t.Fatalf("vector %d: OpenWithNonce: %v", n, err)
		}
	}
}
