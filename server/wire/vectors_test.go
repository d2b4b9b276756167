package wire

import (
	"bytes"
	"crypto/ecdh"
	"crypto/ed25519"
	"crypto/sha256"
	"encoding/hex"
	"flag"
	"testing"
	"time"
)

var update = flag.Bool("update", false, "rewrite testdata/vectors.json")

// vectors is the byte-level test vector file described in SPEC.md.
type vectors struct {
	Comment        string            `json:"comment"`
	IdentitySeed   string            `json:"identity_seed"`
	IdentityPublic string            `json:"identity_public"`
	Address        string            `json:"address"`
	Challenge      string            `json:"client_challenge"`
	ClientEphPriv  string            `json:"client_ephemeral_private"`
	RelayEphPriv   string            `json:"relay_ephemeral_private"`
	ClientHello    string            `json:"client_hello_prefix"`
	RelayHello     string            `json:"relay_hello_prefix"`
	SessionID      string            `json:"session_id"`
	ConfirmSHA256  string            `json:"confirm_block_sha256"`
	SignerSeed     string            `json:"signer_seed"`
	Transmissions  map[string]string `json:"transmissions"`
	BlockPayload   string            `json:"second_block_payload_prefix"`
	BlockSHA256    string            `json:"second_block_sha256"`
	BoxKey         string            `json:"box_key"`
	MsgID          string            `json:"msg_id"`
	SealedMessage  string            `json:"sealed_message"`
}

func seq(n int, start byte) []byte {
	b := make([]byte, n)
	for i := range b {
		b[i] = start + byte(i)
	}
	return b
}

func trimZeros(b []byte) []byte { return bytes.TrimRight(b, "\x00") }

func buildVectors(t *testing.T) vectors {
	t.Helper()
	h := hex.EncodeToString
	identity := ed25519.NewKeyFromSeed(seq(32, 0x00))
	pub := identity.Public().(ed25519.PublicKey)
	addr := Address{KeyHash: HashIdentity(pub), Host: "relay.example", Port: 443}
	cEph, err := ecdh.X25519().NewPrivateKey(seq(32, 0x40))
	if err != nil {
		t.Fatal(err)
	}
	rEph, err := ecdh.X25519().NewPrivateKey(seq(32, 0x80))
	if err != nil {
		t.Fatal(err)
	}
	challenge := [32]byte(seq(32, 0x20))
	hs, hello, err := newClientHandshake(addr.KeyHash, challenge, cEph)
	if err != nil {
		t.Fatal(err)
	}
	ch, err := ParseClientHello(hello)
	if err != nil {
		t.Fatal(err)
	}
	pending, rhello, err := relayRespond(identity, SupportedVersions(), ch, rEph)
	if err != nil {
		t.Fatal(err)
	}
	sess, confirm, err := hs.Finish(rhello, SupportedVersions())
	if err != nil {
		t.Fatal(err)
	}
	confirmSum := sha256.Sum256(confirm) // Confirm decrypts in place
	rsess, err := pending.Confirm(confirm)
	if err != nil {
		t.Fatal(err)
	}
	if rsess.ID != sess.ID {
		t.Fatal("session IDs differ")
	}
	signer := ed25519.NewKeyFromSeed(seq(32, 0xA0))
	corr, ent := seq(8, 0x01), seq(IDSize, 0xC0)
	var k32 [32]byte
	copy(k32[:], seq(32, 0x60))
	cmds := map[string]struct {
		ent    []byte
		cmd    Command
		signed bool
	}{
		"NEW":  {nil, Command{Kind: CmdNEW, AuthKey: k32, DHKey: k32, Password: []byte("pw")}, true},
		"SKEY": {ent, Command{Kind: CmdSKEY, AuthKey: k32}, true},
		"SEND": {ent, Command{Kind: CmdSEND, Body: []byte("hello")}, true},
		"SUB":  {ent, Command{Kind: CmdSUB}, true},
		"ACK":  {ent, Command{Kind: CmdACK, MsgID: MsgID(seq(IDSize, 0xE0))}, true},
		"GET":  {ent, Command{Kind: CmdGET}, true},
		"OFF":  {ent, Command{Kind: CmdOFF}, true},
		"DEL":  {ent, Command{Kind: CmdDEL}, true},
		"PING": {nil, Command{Kind: CmdPING}, false},
		"IDS":  {nil, Command{Kind: AnsIDS, RcvID: QueueID(seq(IDSize, 1)), SndID: QueueID(seq(IDSize, 2)), DHKey: k32}, false},
		"OK":   {ent, Command{Kind: AnsOK}, false},
		"END":  {ent, Command{Kind: AnsEND}, false},
		"PONG": {nil, Command{Kind: AnsPONG}, false},
		"ERR":  {ent, Command{Kind: AnsERR, Code: CodeAuth}, false},
	}
	v := vectors{
		Comment:        "Wisp relay protocol v1 test vectors; see SPEC.md. Hex. Prefixes are followed by zero bytes up to the block size.",
		IdentitySeed:   h(seq(32, 0)),
		IdentityPublic: h(pub),
		Address:        addr.String(),
		Challenge:      h(challenge[:]),
		ClientEphPriv:  h(cEph.Bytes()),
		RelayEphPriv:   h(rEph.Bytes()),
		ClientHello:    h(hello[:clientHelloLen]),
		RelayHello:     h(rhello[:relayHelloLen]),
		SessionID:      h(sess.ID[:]),
		SignerSeed:     h(seq(32, 0xA0)),
		Transmissions:  map[string]string{},
	}
	v.ConfirmSHA256 = h(confirmSum[:])
	var b BlockBuilder
	for name, c := range cmds {
		tr := Transmission{CorrID: corr, EntityID: c.ent, Command: c.cmd}
		var raw []byte
		if c.signed {
			raw, err = tr.Sign(sess.ID, signer)
		} else {
			raw, err = tr.Marshal()
		}
		if err != nil {
			t.Fatal(name, err)
		}
		v.Transmissions[name] = h(raw)
	}
	for _, name := range []string{"SUB", "PING"} {
		raw, _ := hex.DecodeString(v.Transmissions[name])
		b.Add(raw)
	}
	v.BlockPayload = h(trimZeros(b.Payload()))
	block, err := sess.Seal(b.Payload())
	if err != nil {
		t.Fatal(err)
	}
	sum := sha256.Sum256(block)
	v.BlockSHA256 = h(sum[:])
	box := BoxKey(&k32, (*[32]byte)(seq(32, 0x10)))
	v.BoxKey = h(box[:])
	id := MsgID(seq(IDSize, 0x30))
	v.MsgID = h(id[:])
	v.SealedMessage = h(SealMessage(box, id, time.Unix(1_700_000_000, 0), false, []byte("hello")))
	return v
}

func TestVectors(t *testing.T) {
	want := checkVectorFile(t, "testdata/vectors.json", buildVectors(t))
	// Parse every transmission vector back.
	for name, hx := range want.Transmissions {
		b, _ := hex.DecodeString(hx)
		tr, err := ParseTransmission(b)
		if err != nil || tr.Command.Kind.String() != name {
			t.Fatalf("%s: %v %s", name, err, tr.Command.Kind)
		}
		if tr.Signature != nil {
			sid, _ := hex.DecodeString(want.SessionID)
			signer := ed25519.NewKeyFromSeed(seq(32, 0xA0))
			if !tr.Verify([32]byte(sid), signer.Public().(ed25519.PublicKey)) {
				t.Fatalf("%s: signature does not verify", name)
			}
		}
	}
	box, _ := hex.DecodeString(want.BoxKey)
	sealed, _ := hex.DecodeString(want.SealedMessage)
	id, _ := hex.DecodeString(want.MsgID)
	m, err := OpenMessage((*[32]byte)(box), MsgID(id), sealed)
	if err != nil || string(m.Body) != "hello" || m.Time.Unix() != 1_700_000_000 || m.Quota {
		t.Fatalf("sealed message: %+v %v", m, err)
	}
}
