//go:build !js

package agent

import (
	"bytes"
	"encoding/hex"
	"encoding/json"
	"flag"
	"os"
	"testing"

	"github.com/wisp-chat/wisp/crypto/box"
	"github.com/wisp-chat/wisp/server/wire"
)

// The rotation vectors (SPEC.md, "Queue rotation"):
//
//	go test ./wasm/agent -run RotationVectors                                  check
//	go test ./wasm/agent -run RotationVectors -args -update-rotation-vectors  rewrite
var updateRotationVectors = flag.Bool("update-rotation-vectors", false, "rewrite testdata/rotation-vectors.json")

type rotationVector struct {
	Name     string `json:"name"`
	Kind     string `json:"kind"`
	MsgID    uint64 `json:"msg_id"`
	PrevHash string `json:"prev_hash"`
	// For Q: the new queue.
	Relay    string `json:"relay,omitempty"`
	SenderID string `json:"sender_id,omitempty"`
	QueueKey string `json:"queue_key,omitempty"`
	// Expected bytes.
	Body      string `json:"body"`
	Plaintext string `json:"plaintext"`
}

func rotationVectors(t *testing.T) []rotationVector {
	t.Helper()
	seq := func(n, start byte) []byte {
		b := make([]byte, n)
		for i := range b {
			b[i] = start + byte(i)
		}
		return b
	}
	relay := "wisp://yN0TuxMt65b-WNXTKo3QvvD0coURXXuM6Rukx_NLnNw@relay.example.org:5223"
	addr, err := wire.ParseAddress(relay)
	if err != nil {
		t.Fatal(err)
	}
	qk, err := box.ParsePublicKey(seq(32, 0x40))
	if err != nil {
		t.Fatal(err)
	}
	q := replyQueue{Relay: addr, SenderID: wire.QueueID(seq(24, 0x10)), QueueKey: qk}
	qBody, err := encodeReply(q, nil)
	if err != nil {
		t.Fatal(err)
	}
	prev := seq(32, 0xa0)
	var out []rotationVector
	for _, v := range []struct {
		name string
		kind Kind
		id   uint64
		body []byte
	}{{"new queue", KindQueueNew, 42, qBody}, {"queue test", KindQueueTest, 43, nil}} {
		pt, err := encodeMessage(header{ID: v.id, PrevHash: [32]byte(prev), Kind: v.kind}, v.body)
		if err != nil {
			t.Fatal(err)
		}
		rv := rotationVector{Name: v.name, Kind: string(rune(v.kind)), MsgID: v.id, PrevHash: hex.EncodeToString(prev),
			Body: hex.EncodeToString(v.body), Plaintext: hex.EncodeToString(pt)}
		if v.kind == KindQueueNew {
			rv.Relay, rv.SenderID, rv.QueueKey = relay, hex.EncodeToString(q.SenderID[:]), hex.EncodeToString(qk.Bytes())
		}
		out = append(out, rv)
	}
	return out
}

func TestRotationVectorsFile(t *testing.T) {
	got, err := json.MarshalIndent(rotationVectors(t), "", "  ")
	if err != nil {
		t.Fatal(err)
	}
	got = append(got, '\n')
	const path = "testdata/rotation-vectors.json"
	if *updateRotationVectors {
		if err := os.WriteFile(path, got, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (generate with -args -update-rotation-vectors)", err)
	}
	if !bytes.Equal(got, want) {
		t.Fatalf("%s is stale: regenerate with -args -update-rotation-vectors", path)
	}
	// The file decodes back to the inputs it names.
	var vs []rotationVector
	if err := json.Unmarshal(want, &vs); err != nil {
		t.Fatal(err)
	}
	for _, v := range vs {
		pt, _ := hex.DecodeString(v.Plaintext)
		h, body, err := decodeMessage(pt)
		if err != nil || h.ID != v.MsgID || string(rune(h.Kind)) != v.Kind || hex.EncodeToString(body) != v.Body {
			t.Errorf("%s: decodes to %+v %x %v", v.Name, h, body, err)
		}
		if h.Kind == KindQueueNew {
			q, rest, err := decodeReply(body)
			if err != nil || len(rest) != 0 || q.Relay.String() != v.Relay || hex.EncodeToString(q.SenderID[:]) != v.SenderID {
				t.Errorf("%s: new queue %+v rest %x %v", v.Name, q, rest, err)
			}
		}
	}
}
