package wire

import (
	"bytes"
	"crypto/ecdh"
	"crypto/ed25519"
	"crypto/hkdf"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"flag"
	"fmt"
	"os"
	"testing"
	"time"

	"github.com/wisp-chat/wisp/crypto/pad"
	"golang.org/x/crypto/chacha20poly1305"
	"golang.org/x/crypto/curve25519"
	"golang.org/x/crypto/nacl/box"
	"golang.org/x/crypto/nacl/secretbox"
)

var update = flag.Bool("update", false, "rewrite testdata/vectors.json and testdata/files_vectors.json")

// vectors is testdata/vectors.json (SPEC.md §13). Every input is given:
// keys as seeds or private keys, IDs, correlation IDs and plaintexts.
type vectors struct {
	Comment       string              `json:"comment"`
	Handshake     handshakeVector     `json:"handshake"`
	Keys          queueKeys           `json:"keys"`
	Transmissions []txVector          `json:"transmissions"`
	Blocks        []blockVector       `json:"blocks"`
	SealedMessage sealedMessageVector `json:"sealed_message"`
}

type handshakeVector struct {
	IdentitySeed   string `json:"identity_seed"`
	IdentityPublic string `json:"identity_public"`
	Address        string `json:"address"`
	Challenge      string `json:"client_challenge"`
	ClientEphPriv  string `json:"client_ephemeral_private"`
	RelayEphPriv   string `json:"relay_ephemeral_private"`
	ClientHello    string `json:"client_hello_prefix"`
	RelayHello     string `json:"relay_hello_prefix"`
	SessionID      string `json:"session_id"`
	ClientToRelay  string `json:"client_to_relay_chain_key"`
	RelayToClient  string `json:"relay_to_client_chain_key"`
}

type queueKeys struct {
	RecipientAuthSeed   string `json:"recipient_auth_seed"`
	RecipientAuthPublic string `json:"recipient_auth_public"`
	RecipientDHPrivate  string `json:"recipient_dh_private"`
	RecipientDHPublic   string `json:"recipient_dh_public"`
	SenderAuthSeed      string `json:"sender_auth_seed"`
	SenderAuthPublic    string `json:"sender_auth_public"`
	RelayDHPrivate      string `json:"relay_queue_dh_private"`
	RelayDHPublic       string `json:"relay_queue_dh_public"`
	RecipientID         string `json:"recipient_id"`
	SenderID            string `json:"sender_id"`
	Password            string `json:"relay_password"`
}

// txVector is one transmission. Direction is client_to_relay or
// relay_to_client; SignedBy names the key of Keys that signs it
// ("recipient", "sender") or is empty for an unsigned one.
type txVector struct {
	Name         string `json:"name"`
	Kind         string `json:"kind"`
	Direction    string `json:"direction"`
	SignedBy     string `json:"signed_by"`
	CorrID       string `json:"corr_id"`
	EntityID     string `json:"entity_id"`
	Transmission string `json:"transmission"`
}

// blockVector is one sealed block: Index is its position on its chain,
// counted from the chain key of the handshake; Contents names its
// transmissions in order (none for the confirmation).
type blockVector struct {
	Chain         string   `json:"chain"`
	Index         int      `json:"index"`
	Contents      []string `json:"transmissions"`
	PayloadPrefix string   `json:"payload_prefix"`
	BlockKey      string   `json:"block_key"`
	BlockSHA256   string   `json:"block_sha256"`
}

type sealedMessageVector struct {
	BoxKey     string `json:"box_key"`
	MsgID      string `json:"msg_id"`
	Timestamp  int64  `json:"timestamp"`
	Flags      int    `json:"flags"`
	Body       string `json:"body"`
	Plaintext  string `json:"plaintext"`
	PaddedSize int    `json:"padded_size"`
	Sealed     string `json:"sealed"`
}

const (
	c2r = "client_to_relay"
	r2c = "relay_to_client"
)

func seq(n int, start byte) []byte {
	b := make([]byte, n)
	for i := range b {
		b[i] = start + byte(i)
	}
	return b
}

// corr is the 8-byte correlation ID n, as the Go client numbers them.
func corr(n uint64) []byte { return binary.BigEndian.AppendUint64(nil, n) }

func x25519Public(t *testing.T, priv []byte) []byte {
	t.Helper()
	pub, err := curve25519.X25519(priv, curve25519.Basepoint)
	if err != nil {
		t.Fatal(err)
	}
	return pub
}

func unhex(t *testing.T, s string) []byte {
	t.Helper()
	b, err := hex.DecodeString(s)
	if err != nil {
		t.Fatalf("hex %q: %v", s, err)
	}
	return b
}

// Fixed inputs of vectors.json.
var (
	vecIdentitySeed  = seq(32, 0x00)
	vecChallenge     = seq(32, 0x20)
	vecClientEph     = seq(32, 0x40)
	vecRelayEph      = seq(32, 0x80)
	vecRecipientSeed = seq(32, 0xA0)
	vecRecipientDH   = seq(32, 0x60)
	vecSenderSeed    = seq(32, 0xD0)
	vecRelayQueueDH  = seq(32, 0x10)
	vecRcvID         = QueueID(seq(IDSize, 0xC0))
	vecSndID         = QueueID(seq(IDSize, 0xE0))
	vecMsgID         = MsgID(seq(IDSize, 0x30))
	vecMsgTime       = int64(1_700_000_000)
	vecMsgBody       = []byte("hello")
	vecPassword      = []byte("pw")
)

// queueTx is a transmission of the vector file before encoding.
type queueTx struct {
	name, dir, signer string
	t                 Transmission
}

func queueTransmissions(t *testing.T) []queueTx {
	t.Helper()
	rAuth := ed25519.NewKeyFromSeed(vecRecipientSeed).Public().(ed25519.PublicKey)
	sAuth := ed25519.NewKeyFromSeed(vecSenderSeed).Public().(ed25519.PublicKey)
	rcv, snd := vecRcvID[:], vecSndID[:]
	boxKey := BoxKey((*[32]byte)(x25519Public(t, vecRecipientDH)), (*[32]byte)(vecRelayQueueDH))
	sealed := SealMessage(boxKey, vecMsgID, time.Unix(vecMsgTime, 0), false, vecMsgBody)
	tx := func(name, dir, signer string, c []byte, ent []byte, cmd Command) queueTx {
		return queueTx{name, dir, signer, Transmission{CorrID: c, EntityID: ent, Command: cmd}}
	}
	return []queueTx{
		tx("NEW", c2r, "recipient", corr(1), nil, Command{Kind: CmdNEW, AuthKey: [32]byte(rAuth), DHKey: [32]byte(x25519Public(t, vecRecipientDH)), Password: vecPassword}),
		tx("IDS", r2c, "", corr(1), nil, Command{Kind: AnsIDS, RcvID: vecRcvID, SndID: vecSndID, DHKey: [32]byte(x25519Public(t, vecRelayQueueDH))}),
		tx("SKEY", c2r, "sender", corr(2), snd, Command{Kind: CmdSKEY, AuthKey: [32]byte(sAuth)}),
		tx("OK to SKEY", r2c, "", corr(2), snd, Command{Kind: AnsOK}),
		tx("SEND", c2r, "sender", corr(3), snd, Command{Kind: CmdSEND, Body: vecMsgBody}),
		tx("SUB", c2r, "recipient", corr(4), rcv, Command{Kind: CmdSUB}),
		tx("PING", c2r, "", corr(5), nil, Command{Kind: CmdPING}),
		tx("OK to SUB", r2c, "", corr(4), rcv, Command{Kind: AnsOK}),
		tx("PONG", r2c, "", corr(5), nil, Command{Kind: AnsPONG}),
		tx("MSG push", r2c, "", nil, rcv, Command{Kind: AnsMSG, MsgID: vecMsgID, Body: sealed}),
		tx("ACK", c2r, "recipient", corr(6), rcv, Command{Kind: CmdACK, MsgID: vecMsgID}),
		tx("GET", c2r, "recipient", corr(7), rcv, Command{Kind: CmdGET}),
		tx("ERR PROHIBITED to GET", r2c, "", corr(7), rcv, Command{Kind: AnsERR, Code: CodeProhibited}),
		tx("OFF", c2r, "recipient", corr(8), rcv, Command{Kind: CmdOFF}),
		tx("DEL", c2r, "recipient", corr(9), rcv, Command{Kind: CmdDEL}),
		tx("END push", r2c, "", nil, rcv, Command{Kind: AnsEND}),
		tx("ERR AUTH", r2c, "", corr(10), snd, Command{Kind: AnsERR, Code: CodeAuth}),
		tx("ERR BLOCK", r2c, "", nil, nil, Command{Kind: AnsERR, Code: CodeBlock}),
	}
}

// vecBlocks lists the blocks of the vector file: the confirmation, then
// transmissions named as in queueTransmissions.
var vecBlocks = []struct {
	chain    string
	index    int
	contents []string
}{
	{c2r, 0, nil},
	{c2r, 1, []string{"SUB", "PING"}},
	{r2c, 0, []string{"OK to SUB", "PONG"}},
	{r2c, 1, []string{"MSG push"}},
}

// chainBlockKey derives the key of block index of a chain that starts at
// ck, straight from SPEC.md §3 (independent of chain.next).
func chainBlockKey(t *testing.T, ck []byte, index int) []byte {
	t.Helper()
	for range index {
		next, err := hkdf.Expand(sha256.New, ck, "wisp chain key", 32)
		if err != nil {
			t.Fatal(err)
		}
		ck = next
	}
	k, err := hkdf.Expand(sha256.New, ck, "wisp block key", 32)
	if err != nil {
		t.Fatal(err)
	}
	return k
}

func buildVectors(t *testing.T) vectors {
	t.Helper()
	h := hex.EncodeToString
	identity := ed25519.NewKeyFromSeed(vecIdentitySeed)
	pub := identity.Public().(ed25519.PublicKey)
	addr := Address{KeyHash: HashIdentity(pub), Host: "relay.example", Port: 443}
	cEph, err := ecdh.X25519().NewPrivateKey(vecClientEph)
	if err != nil {
		t.Fatal(err)
	}
	rEph, err := ecdh.X25519().NewPrivateKey(vecRelayEph)
	if err != nil {
		t.Fatal(err)
	}
	hs, hello, err := newClientHandshake(addr.KeyHash, [32]byte(vecChallenge), cEph)
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
	// Fresh copies of both sides' chains before any block is sealed.
	fresh, err := deriveSession(cEph, rEph.PublicKey().Bytes(), hello[:clientHelloLen], rhello[:relayHelloLen], false)
	if err != nil {
		t.Fatal(err)
	}
	c2rKey, r2cKey := bytes.Clone(fresh.send.key), bytes.Clone(fresh.recv.key)
	sess, confirm, err := hs.Finish(rhello, SupportedVersions())
	if err != nil {
		t.Fatal(err)
	}
	rsess, err := pending.Confirm(bytes.Clone(confirm))
	if err != nil {
		t.Fatal(err)
	}
	if rsess.ID != sess.ID {
		t.Fatal("session IDs differ")
	}
	v := vectors{
		Comment: "Wisp relay protocol v1 test vectors; see SPEC.md §13. Hex unless said otherwise. " +
			"A prefix is followed by zero bytes up to the block (hello) or payload size. " +
			"All transmissions are in the one session of the handshake.",
		Handshake: handshakeVector{
			IdentitySeed: h(vecIdentitySeed), IdentityPublic: h(pub), Address: addr.String(),
			Challenge: h(vecChallenge), ClientEphPriv: h(vecClientEph), RelayEphPriv: h(vecRelayEph),
			ClientHello: h(hello[:clientHelloLen]), RelayHello: h(rhello[:relayHelloLen]),
			SessionID: h(sess.ID[:]), ClientToRelay: h(c2rKey), RelayToClient: h(r2cKey),
		},
		Keys: queueKeys{
			RecipientAuthSeed: h(vecRecipientSeed), RecipientAuthPublic: h(ed25519.NewKeyFromSeed(vecRecipientSeed).Public().(ed25519.PublicKey)),
			RecipientDHPrivate: h(vecRecipientDH), RecipientDHPublic: h(x25519Public(t, vecRecipientDH)),
			SenderAuthSeed: h(vecSenderSeed), SenderAuthPublic: h(ed25519.NewKeyFromSeed(vecSenderSeed).Public().(ed25519.PublicKey)),
			RelayDHPrivate: h(vecRelayQueueDH), RelayDHPublic: h(x25519Public(t, vecRelayQueueDH)),
			RecipientID: h(vecRcvID[:]), SenderID: h(vecSndID[:]), Password: h(vecPassword),
		},
	}
	signers := map[string]ed25519.PrivateKey{
		"recipient": ed25519.NewKeyFromSeed(vecRecipientSeed),
		"sender":    ed25519.NewKeyFromSeed(vecSenderSeed),
	}
	raws := map[string][]byte{}
	for _, q := range queueTransmissions(t) {
		var raw []byte
		if q.signer != "" {
			raw, err = q.t.Sign(sess.ID, signers[q.signer])
		} else {
			raw, err = q.t.Marshal()
		}
		if err != nil {
			t.Fatal(q.name, err)
		}
		raws[q.name] = raw
		v.Transmissions = append(v.Transmissions, txVector{
			Name: q.name, Kind: q.t.Command.Kind.String(), Direction: q.dir, SignedBy: q.signer,
			CorrID: h(q.t.CorrID), EntityID: h(q.t.EntityID), Transmission: h(raw),
		})
	}
	// Blocks: the confirmation is the first client→relay block; the
	// sessions then seal the named transmissions in order.
	confirmPayload := binary.BigEndian.AppendUint16(append([]byte(magic), typeClientConfirm), sess.Version)
	sum := sha256.Sum256(confirm)
	v.Blocks = append(v.Blocks, blockVector{Chain: c2r, Index: 0, Contents: []string{}, PayloadPrefix: h(confirmPayload),
		BlockKey: h(chainBlockKey(t, c2rKey, 0)), BlockSHA256: h(sum[:])})
	for _, bv := range vecBlocks[1:] {
		var b BlockBuilder
		for _, name := range bv.contents {
			if !b.Add(raws[name]) {
				t.Fatalf("%s does not fit", name)
			}
		}
		s, ck := sess, c2rKey
		if bv.chain == r2c {
			s, ck = rsess, r2cKey
		}
		block, err := s.Seal(b.Payload())
		if err != nil {
			t.Fatal(err)
		}
		sum := sha256.Sum256(block)
		v.Blocks = append(v.Blocks, blockVector{Chain: bv.chain, Index: bv.index, Contents: bv.contents,
			PayloadPrefix: h(b.Payload()[:b.n]), BlockKey: h(chainBlockKey(t, ck, bv.index)), BlockSHA256: h(sum[:])})
	}
	boxKey := BoxKey((*[32]byte)(x25519Public(t, vecRecipientDH)), (*[32]byte)(vecRelayQueueDH))
	plain := binary.BigEndian.AppendUint64(nil, uint64(vecMsgTime))
	plain = append(append(plain, 0), vecMsgBody...)
	v.SealedMessage = sealedMessageVector{
		BoxKey: h(boxKey[:]), MsgID: h(vecMsgID[:]), Timestamp: vecMsgTime, Flags: 0, Body: h(vecMsgBody),
		Plaintext: h(plain), PaddedSize: sealedPlainSize,
		Sealed: h(SealMessage(boxKey, vecMsgID, time.Unix(vecMsgTime, 0), false, vecMsgBody)),
	}
	return v
}

// TestVectors checks testdata/vectors.json both ways: the reference
// implementation generates exactly the file, and everything in the file
// parses and verifies from the file's own inputs, using the primitives
// directly where SPEC.md defines the bytes (HKDF, X25519, ChaCha20-Poly1305,
// secretbox, crypto/pad) rather than the code that generated them.
func TestVectors(t *testing.T) {
	v := checkVectorFile(t, "testdata/vectors.json", buildVectors(t))
	hs, k := v.Handshake, v.Keys

	// Handshake: hellos from their inputs, the relay's signature, the
	// session ID and both chain keys from the key agreement.
	identity := ed25519.NewKeyFromSeed(unhex(t, hs.IdentitySeed))
	idPub := identity.Public().(ed25519.PublicKey)
	if !bytes.Equal(idPub, unhex(t, hs.IdentityPublic)) {
		t.Fatal("identity public key")
	}
	addr, err := ParseAddress(hs.Address)
	if err != nil || addr.KeyHash != HashIdentity(idPub) {
		t.Fatalf("address: %v", err)
	}
	cPriv, rPriv := unhex(t, hs.ClientEphPriv), unhex(t, hs.RelayEphPriv)
	cPub, rPub := x25519Public(t, cPriv), x25519Public(t, rPriv)
	ch := unhex(t, hs.ClientHello)
	if !bytes.Equal(ch, bytes.Join([][]byte{[]byte("wisp\x01"), unhex(t, hs.Challenge), cPub}, nil)) {
		t.Fatal("client hello")
	}
	rh := unhex(t, hs.RelayHello)
	if !bytes.Equal(rh[:73], bytes.Join([][]byte{[]byte("wisp\x02\x00\x01\x00\x01"), idPub, rPub}, nil)) || len(rh) != 137 {
		t.Fatal("relay hello")
	}
	if !ed25519.Verify(idPub, bytes.Join([][]byte{[]byte("wisp relay handshake v1"), ch, rh[:73]}, nil), rh[73:]) {
		t.Fatal("relay hello signature")
	}
	shared, err := curve25519.X25519(cPriv, rPub)
	if err != nil {
		t.Fatal(err)
	}
	salt := sha256.Sum256(append(bytes.Clone(ch), rh...))
	keys, err := hkdf.Key(sha256.New, shared, salt[:], "wisp session keys v1", 96)
	if err != nil {
		t.Fatal(err)
	}
	if hex.EncodeToString(keys[:32]) != hs.SessionID || hex.EncodeToString(keys[32:64]) != hs.ClientToRelay || hex.EncodeToString(keys[64:]) != hs.RelayToClient {
		t.Fatal("session ID or chain keys")
	}
	sid := [32]byte(keys[:32])

	// Keys: every public key from its seed or private key.
	rKey, sKey := ed25519.NewKeyFromSeed(unhex(t, k.RecipientAuthSeed)), ed25519.NewKeyFromSeed(unhex(t, k.SenderAuthSeed))
	if hex.EncodeToString(rKey.Public().(ed25519.PublicKey)) != k.RecipientAuthPublic ||
		hex.EncodeToString(sKey.Public().(ed25519.PublicKey)) != k.SenderAuthPublic ||
		hex.EncodeToString(x25519Public(t, unhex(t, k.RecipientDHPrivate))) != k.RecipientDHPublic ||
		hex.EncodeToString(x25519Public(t, unhex(t, k.RelayDHPrivate))) != k.RelayDHPublic {
		t.Fatal("a public key does not match its private key")
	}
	signers := map[string]ed25519.PrivateKey{"recipient": rKey, "sender": sKey}

	// Sealed message: box key from either side, plaintext, padded box.
	sm := v.SealedMessage
	var boxKey, other [32]byte
	box.Precompute(&boxKey, (*[32]byte)(unhex(t, k.RecipientDHPublic)), (*[32]byte)(unhex(t, k.RelayDHPrivate)))
	box.Precompute(&other, (*[32]byte)(unhex(t, k.RelayDHPublic)), (*[32]byte)(unhex(t, k.RecipientDHPrivate)))
	if boxKey != other || hex.EncodeToString(boxKey[:]) != sm.BoxKey {
		t.Fatal("box key")
	}
	plain := binary.BigEndian.AppendUint64(nil, uint64(sm.Timestamp))
	plain = append(append(plain, byte(sm.Flags)), unhex(t, sm.Body)...)
	if !bytes.Equal(plain, unhex(t, sm.Plaintext)) || sm.PaddedSize != 16011 {
		t.Fatal("sealed message plaintext")
	}
	padded, err := pad.Pad(plain, sm.PaddedSize)
	if err != nil {
		t.Fatal(err)
	}
	msgID := MsgID(unhex(t, sm.MsgID))
	nonce := [24]byte(msgID)
	sealed := unhex(t, sm.Sealed)
	if !bytes.Equal(secretbox.Seal(nil, padded, &nonce, &boxKey), sealed) || len(sealed) != 16027 {
		t.Fatal("sealed message bytes")
	}
	m, err := OpenMessage(&boxKey, msgID, sealed)
	if err != nil || m.Time.Unix() != sm.Timestamp || m.Quota || !bytes.Equal(m.Body, unhex(t, sm.Body)) {
		t.Fatalf("OpenMessage: %+v %v", m, err)
	}

	// Transmissions: each parses to its fields, encodes back to the same
	// bytes, and its signature verifies by the named key (for NEW and SKEY,
	// the key the command carries: what a relay checks).
	raws := map[string][]byte{}
	for _, tv := range v.Transmissions {
		raw := unhex(t, tv.Transmission)
		raws[tv.Name] = raw
		tr, err := ParseTransmission(raw)
		if err != nil || tr.Command.Kind.String() != tv.Kind {
			t.Fatalf("%s: %v %s", tv.Name, err, tr.Command.Kind)
		}
		if hex.EncodeToString(tr.CorrID) != tv.CorrID || hex.EncodeToString(tr.EntityID) != tv.EntityID {
			t.Fatalf("%s: corrID or entity ID", tv.Name)
		}
		if tr.Command.Kind.FromClient() != (tv.Direction == c2r) {
			t.Fatalf("%s: direction", tv.Name)
		}
		fresh := Transmission{CorrID: tr.CorrID, EntityID: tr.EntityID, Command: tr.Command}
		var again []byte
		if tv.SignedBy != "" {
			key := signers[tv.SignedBy]
			if key == nil || !tr.Verify(sid, key.Public().(ed25519.PublicKey)) {
				t.Fatalf("%s: signature by %q", tv.Name, tv.SignedBy)
			}
			again, err = fresh.Sign(sid, key)
		} else {
			if tr.Signature != nil {
				t.Fatalf("%s: signed", tv.Name)
			}
			again, err = fresh.Marshal()
		}
		if err != nil || !bytes.Equal(again, raw) {
			t.Fatalf("%s: does not encode back: %v", tv.Name, err)
		}
		c := tr.Command
		switch c.Kind {
		case CmdNEW:
			if hex.EncodeToString(c.AuthKey[:]) != k.RecipientAuthPublic || tv.SignedBy != "recipient" ||
				hex.EncodeToString(c.DHKey[:]) != k.RecipientDHPublic || hex.EncodeToString(c.Password) != k.Password {
				t.Fatal("NEW does not carry the recipient's keys")
			}
		case CmdSKEY:
			if hex.EncodeToString(c.AuthKey[:]) != k.SenderAuthPublic || tv.SignedBy != "sender" || tv.EntityID != k.SenderID {
				t.Fatal("SKEY is not the sender's")
			}
		case AnsIDS:
			if hex.EncodeToString(c.RcvID[:]) != k.RecipientID || hex.EncodeToString(c.SndID[:]) != k.SenderID || hex.EncodeToString(c.DHKey[:]) != k.RelayDHPublic {
				t.Fatal("IDS")
			}
		case CmdACK:
			if c.MsgID != msgID {
				t.Fatal("ACK message ID")
			}
		case AnsMSG:
			if c.MsgID != msgID || !bytes.Equal(c.Body, sealed) || len(tr.CorrID) != 0 {
				t.Fatal("MSG push")
			}
		case AnsEND:
			if len(tr.CorrID) != 0 || tv.EntityID != k.RecipientID {
				t.Fatal("END push")
			}
		case AnsERR:
			if c.Code == CodeBlock && (len(tr.CorrID) != 0 || len(tr.EntityID) != 0) {
				t.Fatal("ERR BLOCK echoes IDs")
			}
		}
		if tv.SignedBy == "sender" && tv.Kind != "SKEY" && tv.EntityID != k.SenderID ||
			tv.SignedBy == "recipient" && tv.Kind != "NEW" && tv.EntityID != k.RecipientID {
			t.Fatalf("%s: entity ID is not the signer's queue ID", tv.Name)
		}
	}

	// Blocks: payload from the named transmissions, key from the chain,
	// ChaCha20-Poly1305 with a zero nonce; the session opens and splits it.
	for _, bv := range v.Blocks {
		what := fmt.Sprintf("%s block %d", bv.Chain, bv.Index)
		payload := make([]byte, BlockPayloadSize)
		prefix := unhex(t, bv.PayloadPrefix)
		copy(payload, prefix)
		if len(bv.Contents) == 0 {
			if !bytes.Equal(prefix, []byte("wisp\x03\x00\x01")) || bv.Chain != c2r || bv.Index != 0 {
				t.Fatalf("%s: confirmation", what)
			}
		} else {
			built := []byte{byte(len(bv.Contents))}
			for _, name := range bv.Contents {
				built = binary.BigEndian.AppendUint16(built, uint16(len(raws[name])))
				built = append(built, raws[name]...)
			}
			if !bytes.Equal(built, prefix) {
				t.Fatalf("%s: payload", what)
			}
		}
		ck := unhex(t, hs.ClientToRelay)
		if bv.Chain == r2c {
			ck = unhex(t, hs.RelayToClient)
		}
		bk := chainBlockKey(t, ck, bv.Index)
		if hex.EncodeToString(bk) != bv.BlockKey {
			t.Fatalf("%s: block key", what)
		}
		aead, err := chacha20poly1305.New(bk)
		if err != nil {
			t.Fatal(err)
		}
		block := aead.Seal(nil, make([]byte, 12), payload, nil)
		if sum := sha256.Sum256(block); hex.EncodeToString(sum[:]) != bv.BlockSHA256 || len(block) != BlockSize {
			t.Fatalf("%s: block", what)
		}
		// The receiving side's session opens it at that chain position.
		rc := newChain(ck)
		for range bv.Index {
			if _, err := rc.next(); err != nil {
				t.Fatal(err)
			}
		}
		p, err := (&Session{recv: rc}).Open(block)
		if err != nil {
			t.Fatalf("%s: open: %v", what, err)
		}
		if len(bv.Contents) > 0 {
			ts, err := SplitBlock(p)
			if err != nil || len(ts) != len(bv.Contents) {
				t.Fatalf("%s: split: %v", what, err)
			}
			for i, name := range bv.Contents {
				if !bytes.Equal(ts[i], raws[name]) {
					t.Fatalf("%s: transmission %d", what, i)
				}
			}
		}
	}
}

// checkVectorFile rewrites path from got with -update, then checks that
// the file holds exactly got and returns what the file holds.
func checkVectorFile[T any](t *testing.T, path string, got T) T {
	t.Helper()
	gb, err := json.MarshalIndent(got, "", "  ")
	if err != nil {
		t.Fatal(err)
	}
	gb = append(gb, '\n')
	if *update {
		if err := os.WriteFile(path, gb, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	raw, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var want T
	if err := json.Unmarshal(raw, &want); err != nil {
		t.Fatal(err)
	}
	wb, _ := json.MarshalIndent(want, "", "  ")
	if wb = append(wb, '\n'); !bytes.Equal(gb, wb) {
		i := 0
		for i < len(gb) && i < len(wb) && gb[i] == wb[i] {
			i++
		}
		line := bytes.Count(wb[:i], []byte("\n")) + 1
		t.Fatalf("%s differs from what the code generates at line %d:\n got %.200s\nwant %.200s\n(run go test -run Vectors -update after a deliberate change)",
			path, line, gb[max(0, i-60):], wb[max(0, i-60):])
	}
	return want
}
