package pad

import (
	"bytes"
	_ "embed"
	"encoding/hex"
	"testing"

	"github.com/wisp-chat/wisp/crypto/internal/testkit"
)

//go:embed testdata/vectors.json
var vectorsJSON []byte

type padVector struct {
	Message string `json:"message"`
	Size    int    `json:"size"`
	Padded  string `json:"padded"`
}

func TestVectors(t *testing.T) {
	var got []padVector
	for _, tc := range []struct {
		msg  string
		size int
	}{{"", 2}, {"", 8}, {"wisp", 6}, {"wisp", 16}, {"\x00\x01", 5}} {
		p, err := Pad([]byte(tc.msg), tc.size)
		if err != nil {
			t.Fatal(err)
		}
		got = append(got, padVector{hex.EncodeToString([]byte(tc.msg)), tc.size, hex.EncodeToString(p)})
	}
	data := testkit.CheckVectors(t, "testdata/vectors.json", vectorsJSON, testkit.JSON(t, got))

	var committed []padVector
	testkit.Decode(t, data, &committed)
	for _, v := range committed {
		p, _ := hex.DecodeString(v.Padded)
		m, _ := hex.DecodeString(v.Message)
		out, err := Unpad(p)
		if err != nil || !bytes.Equal(out, m) || len(p) != v.Size {
			t.Fatalf("vector %+v: %v", v, err)
		}
	}
}
