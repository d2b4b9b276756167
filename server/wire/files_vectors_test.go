package wire

import (
	"bytes"
	"crypto/ed25519"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"fmt"
	"testing"

	"golang.org/x/crypto/chacha20poly1305"
	"golang.org/x/crypto/nacl/box"
)

// fileVectors is testdata/files_vectors.json (SPEC.md §11.5). Every input
// is given: seeds and private keys, IDs, correlation IDs, chunk bytes.
type fileVectors struct {
	Comment       string         `json:"comment"`
	SessionID     string         `json:"session_id"`
	ClientToRelay string         `json:"client_to_relay_chain_key"`
	RelayToClient string         `json:"relay_to_client_chain_key"`
	Keys          fileKeys       `json:"keys"`
	ChunkData     string         `json:"chunk_data"`
	ChunkNonce    string         `json:"chunk_nonce"`
	Transmissions []fileTxVector `json:"transmissions"`
	Frames        []frameVector  `json:"frames"`
	SealedHello   sealedChunk    `json:"sealed_chunk_hello"`
}

type fileKeys struct {
	SenderAuthSeed   string              `json:"sender_auth_seed"`
	SenderAuthPublic string              `json:"sender_auth_public"`
	SenderID         string              `json:"sender_id"`
	Recipients       []fileRecipientKeys `json:"recipients"`
	Password         string              `json:"relay_password"`
	Class            ChunkClass          `json:"class"`
}

type fileRecipientKeys struct {
	AuthSeed       string `json:"auth_seed"`
	AuthPublic     string `json:"auth_public"`
	DHPrivate      string `json:"dh_private"`
	DHPublic       string `json:"dh_public"`
	RecipientID    string `json:"recipient_id"`
	RelayDHPrivate string `json:"relay_dh_private"`
	RelayDHPublic  string `json:"relay_dh_public"`
	BoxKey         string `json:"box_key"`
}

// fileTxVector is one file transmission. SignedBy is "sender",
// "recipient 0", "recipient 1" or empty (unsigned). Transmissions that
// carry a whole chunk (FPUT, CHUNK) are given as the bytes before the
// chunk data (Prefix), the data (Data, described) and the SHA-256 and
// length of the whole; the others in full (Transmission).
type fileTxVector struct {
	Name         string `json:"name"`
	Kind         string `json:"kind"`
	Direction    string `json:"direction"`
	SignedBy     string `json:"signed_by"`
	CorrID       string `json:"corr_id"`
	EntityID     string `json:"entity_id"`
	Transmission string `json:"transmission,omitempty"`
	Prefix       string `json:"transmission_prefix,omitempty"`
	Data         string `json:"data,omitempty"`
	SHA256       string `json:"transmission_sha256,omitempty"`
	Length       int    `json:"length"`
}

// frameVector is one sealed frame: the payload is uint32(length of the
// transmission) || the transmission || zeros up to FrameSize − 16.
type frameVector struct {
	Chain        string `json:"chain"`
	Index        int    `json:"index"`
	Class        int    `json:"class"`
	FrameSize    int    `json:"frame_size"`
	Transmission string `json:"transmission"`
	FrameKey     string `json:"frame_key"`
	FrameSHA256  string `json:"frame_sha256"`
}

type sealedChunk struct {
	BoxKey    string `json:"box_key"`
	Nonce     string `json:"nonce"`
	Plaintext string `json:"plaintext"`
	Sealed    string `json:"sealed"`
}

// Fixed inputs of files_vectors.json.
var (
	fvSessionID  = [32]byte(seq(32, 0x50))
	fvC2R        = seq(32, 0x60)
	fvR2C        = seq(32, 0x70)
	fvSenderSeed = seq(32, 0xA0)
	fvSndID      = ChunkID(seq(IDSize, 0xC0))
	fvNonce      = [ChunkNonceSize]byte(seq(ChunkNonceSize, 0x90))
	fvHelloNonce = [ChunkNonceSize]byte(seq(ChunkNonceSize, 0x08))
	fvPassword   = []byte("pw")
	fvClass      = Class64K
)

const fvChunkRule = "65,536 bytes; byte i is i mod 251"
const fvSealedRule = "chunk_nonce || box(recipient 0 box_key, chunk_nonce, the 65,536-byte chunk): 65,576 bytes"

// fvRecipient is recipient i's keys, relay key and ID.
type fvRecipient struct {
	auth                ed25519.PrivateKey
	dhPriv, dhPub       []byte
	relayPriv, relayPub []byte
	id                  ChunkID
	boxKey              [32]byte
}

func fileVectorRecipients(t *testing.T) []fvRecipient {
	t.Helper()
	rs := make([]fvRecipient, 2)
	for i := range rs {
		r := &rs[i]
		r.auth = ed25519.NewKeyFromSeed(seq(32, byte(0x10+0x40*i)))
		r.dhPriv = seq(32, byte(0x20+0x40*i))
		r.dhPub = x25519Public(t, r.dhPriv)
		r.relayPriv = seq(32, byte(0x30+0x40*i))
		r.relayPub = x25519Public(t, r.relayPriv)
		r.id = ChunkID(seq(IDSize, byte(0xE0+0x08*i)))
		// The recipient's side: its private key and the relay's key in FIDS.
		box.Precompute(&r.boxKey, (*[32]byte)(r.relayPub), (*[32]byte)(r.dhPriv))
	}
	return rs
}

func fvChunk() []byte {
	chunk := make([]byte, fvClass.Size())
	for i := range chunk {
		chunk[i] = byte(i % 251)
	}
	return chunk
}

type fileTx struct {
	name, dir, signer string
	t                 FileTransmission
}

func fileTransmissions(t *testing.T) []fileTx {
	t.Helper()
	rs := fileVectorRecipients(t)
	sender := ed25519.NewKeyFromSeed(fvSenderSeed)
	fnew := FileCommand{Kind: CmdFNEW, Class: fvClass, AuthKey: [32]byte(sender.Public().(ed25519.PublicKey)), Password: fvPassword}
	fids := FileCommand{Kind: AnsFIDS, SndID: fvSndID}
	for _, r := range rs {
		fnew.Recipients = append(fnew.Recipients, ChunkRecipientKey{Auth: [32]byte(r.auth.Public().(ed25519.PublicKey)), DH: [32]byte(r.dhPub)})
		fids.RcvIDs = append(fids.RcvIDs, ChunkRecipientID{ID: r.id, RelayDH: [32]byte(r.relayPub)})
	}
	sealed := sealChunkWithNonce(&rs[0].boxKey, &fvNonce, fvChunk())
	snd, rcv0, rcv1 := fvSndID[:], rs[0].id[:], rs[1].id[:]
	tx := func(name, dir, signer string, c, ent []byte, cmd FileCommand) fileTx {
		return fileTx{name, dir, signer, FileTransmission{CorrID: c, EntityID: ent, Command: cmd}}
	}
	return []fileTx{
		tx("FNEW", c2r, "sender", corr(1), nil, fnew),
		tx("FIDS", r2c, "", corr(1), nil, fids),
		tx("FPUT", c2r, "sender", corr(2), snd, FileCommand{Kind: CmdFPUT, Data: fvChunk()}),
		tx("OK to FPUT", r2c, "", corr(2), snd, FileCommand{Kind: AnsFOK}),
		tx("FGET", c2r, "recipient 0", corr(3), rcv0, FileCommand{Kind: CmdFGET}),
		tx("CHUNK", r2c, "", corr(3), rcv0, FileCommand{Kind: AnsCHUNK, Data: sealed}),
		tx("FACK", c2r, "recipient 0", corr(4), rcv0, FileCommand{Kind: CmdFACK}),
		tx("FDEL", c2r, "sender", corr(5), snd, FileCommand{Kind: CmdFDEL}),
		tx("PING", c2r, "", corr(6), nil, FileCommand{Kind: CmdFPING}),
		tx("PONG", r2c, "", corr(6), nil, FileCommand{Kind: AnsFPONG}),
		tx("ERR AUTH", r2c, "", corr(7), rcv1, FileCommand{Kind: AnsFERR, Code: CodeAuth}),
	}
}

// fvFrames lists the frames of the vector file, by transmission name.
var fvFrames = []struct {
	chain string
	index int
	class ChunkClass
	name  string
}{
	{c2r, 0, ClassControl, "PING"},
	{c2r, 1, fvClass, "FPUT"},
	{r2c, 0, ClassControl, "PONG"},
	{r2c, 1, fvClass, "CHUNK"},
}

func fileSigners(t *testing.T) map[string]ed25519.PrivateKey {
	t.Helper()
	rs := fileVectorRecipients(t)
	return map[string]ed25519.PrivateKey{"sender": ed25519.NewKeyFromSeed(fvSenderSeed), "recipient 0": rs[0].auth, "recipient 1": rs[1].auth}
}

func buildFileVectors(t *testing.T) fileVectors {
	t.Helper()
	h := hex.EncodeToString
	rs := fileVectorRecipients(t)
	sender := ed25519.NewKeyFromSeed(fvSenderSeed)
	v := fileVectors{
		Comment: "Wisp file chunk protocol v1 test vectors; see SPEC.md §11.5. Hex unless said otherwise. " +
			"The session ID and chain keys are given directly (a real session takes them from the handshake of §2; " +
			"there the client→relay chain has already sealed the confirmation). All transmissions are in this one session.",
		SessionID: h(fvSessionID[:]), ClientToRelay: h(fvC2R), RelayToClient: h(fvR2C),
		Keys: fileKeys{
			SenderAuthSeed: h(fvSenderSeed), SenderAuthPublic: h(sender.Public().(ed25519.PublicKey)),
			SenderID: h(fvSndID[:]), Password: h(fvPassword), Class: fvClass,
		},
		ChunkData: fvChunkRule, ChunkNonce: h(fvNonce[:]),
	}
	for _, r := range rs {
		v.Keys.Recipients = append(v.Keys.Recipients, fileRecipientKeys{
			AuthSeed: h(r.auth.Seed()), AuthPublic: h(r.auth.Public().(ed25519.PublicKey)),
			DHPrivate: h(r.dhPriv), DHPublic: h(r.dhPub), RecipientID: h(r.id[:]),
			RelayDHPrivate: h(r.relayPriv), RelayDHPublic: h(r.relayPub), BoxKey: h(r.boxKey[:]),
		})
	}
	signers := fileSigners(t)
	txs := map[string]fileTx{}
	for _, f := range fileTransmissions(t) {
		txs[f.name] = f
		var raw []byte
		var err error
		if f.signer != "" {
			raw, err = f.t.Sign(fvSessionID, signers[f.signer])
		} else {
			raw, err = f.t.Marshal()
		}
		if err != nil {
			t.Fatal(f.name, err)
		}
		tv := fileTxVector{Name: f.name, Kind: f.t.Command.Kind.String(), Direction: f.dir, SignedBy: f.signer,
			CorrID: h(f.t.CorrID), EntityID: h(f.t.EntityID), Length: len(raw)}
		if d := f.t.Command.Data; len(d) > 0 {
			sum := sha256.Sum256(raw)
			tv.Prefix, tv.SHA256 = h(raw[:len(raw)-len(d)]), h(sum[:])
			tv.Data = fvChunkRule
			if f.t.Command.Kind == AnsCHUNK {
				tv.Data = fvSealedRule
			}
		} else {
			tv.Transmission = h(raw)
		}
		v.Transmissions = append(v.Transmissions, tv)
	}
	c2rSess := &Session{ID: fvSessionID, send: newChain(fvC2R)}
	r2cSess := &Session{ID: fvSessionID, send: newChain(fvR2C)}
	for _, fr := range fvFrames {
		s, ck := c2rSess, fvC2R
		if fr.chain == r2c {
			s, ck = r2cSess, fvR2C
		}
		f := txs[fr.name]
		frame, err := s.SealFrame(fr.class, &f.t, signers[f.signer])
		if err != nil {
			t.Fatal(fr.name, err)
		}
		sum := sha256.Sum256(frame)
		v.Frames = append(v.Frames, frameVector{Chain: fr.chain, Index: fr.index, Class: int(fr.class), FrameSize: len(frame),
			Transmission: fr.name, FrameKey: h(chainBlockKey(t, ck, fr.index)), FrameSHA256: h(sum[:])})
	}
	v.SealedHello = sealedChunk{BoxKey: h(rs[1].boxKey[:]), Nonce: h(fvHelloNonce[:]), Plaintext: h([]byte("hello")),
		Sealed: h(sealChunkWithNonce(&rs[1].boxKey, &fvHelloNonce, []byte("hello")))}
	return v
}

// TestFileVectors checks testdata/files_vectors.json both ways: the code
// generates exactly the file, and every transmission and frame of the file
// parses, verifies and rebuilds from the file's own inputs.
func TestFileVectors(t *testing.T) {
	v := checkVectorFile(t, "testdata/files_vectors.json", buildFileVectors(t))
	k := v.Keys
	sid := [32]byte(unhex(t, v.SessionID))
	sender := ed25519.NewKeyFromSeed(unhex(t, k.SenderAuthSeed))
	if hex.EncodeToString(sender.Public().(ed25519.PublicKey)) != k.SenderAuthPublic {
		t.Fatal("sender key")
	}
	signers := map[string]ed25519.PrivateKey{"sender": sender}
	var boxKeys [][32]byte
	for i, r := range k.Recipients {
		auth := ed25519.NewKeyFromSeed(unhex(t, r.AuthSeed))
		signers[fmt.Sprintf("recipient %d", i)] = auth
		var bk, relaySide [32]byte
		box.Precompute(&bk, (*[32]byte)(unhex(t, r.RelayDHPublic)), (*[32]byte)(unhex(t, r.DHPrivate)))
		box.Precompute(&relaySide, (*[32]byte)(unhex(t, r.DHPublic)), (*[32]byte)(unhex(t, r.RelayDHPrivate)))
		if hex.EncodeToString(auth.Public().(ed25519.PublicKey)) != r.AuthPublic || hex.EncodeToString(x25519Public(t, unhex(t, r.DHPrivate))) != r.DHPublic ||
			hex.EncodeToString(x25519Public(t, unhex(t, r.RelayDHPrivate))) != r.RelayDHPublic || bk != relaySide || hex.EncodeToString(bk[:]) != r.BoxKey {
			t.Fatalf("recipient %d keys", i)
		}
		boxKeys = append(boxKeys, bk)
	}
	if v.ChunkData != fvChunkRule {
		t.Fatal("chunk rule")
	}
	chunk := fvChunk()
	nonce := [24]byte(unhex(t, v.ChunkNonce))

	raws := map[string][]byte{}
	for _, tv := range v.Transmissions {
		var raw []byte
		if tv.Transmission != "" {
			raw = unhex(t, tv.Transmission)
		} else {
			// The data of FPUT is the chunk; that of CHUNK is the chunk
			// sealed for recipient 0 with chunk_nonce.
			data := chunk
			if tv.Kind == "CHUNK" {
				data = box.SealAfterPrecomputation(nonce[:], chunk, &nonce, &boxKeys[0])
			}
			raw = append(unhex(t, tv.Prefix), data...)
			if sum := sha256.Sum256(raw); hex.EncodeToString(sum[:]) != tv.SHA256 {
				t.Fatalf("%s: SHA-256 of the whole transmission", tv.Name)
			}
		}
		if len(raw) != tv.Length {
			t.Fatalf("%s: length", tv.Name)
		}
		raws[tv.Name] = raw
		tr, err := ParseFileTransmission(raw)
		if err != nil || tr.Command.Kind.String() != tv.Kind || tr.Command.Kind.FromClient() != (tv.Direction == c2r) {
			t.Fatalf("%s: %v", tv.Name, err)
		}
		if hex.EncodeToString(tr.CorrID) != tv.CorrID || hex.EncodeToString(tr.EntityID) != tv.EntityID {
			t.Fatalf("%s: corrID or entity ID", tv.Name)
		}
		fresh := FileTransmission{CorrID: tr.CorrID, EntityID: tr.EntityID, Command: tr.Command}
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
		case CmdFNEW:
			if hex.EncodeToString(c.AuthKey[:]) != k.SenderAuthPublic || tv.SignedBy != "sender" || c.Class != k.Class ||
				len(c.Recipients) != len(k.Recipients) || hex.EncodeToString(c.Password) != k.Password {
				t.Fatal("FNEW does not carry the sender's key")
			}
			for i, r := range c.Recipients {
				if hex.EncodeToString(r.Auth[:]) != k.Recipients[i].AuthPublic || hex.EncodeToString(r.DH[:]) != k.Recipients[i].DHPublic {
					t.Fatalf("FNEW recipient %d", i)
				}
			}
		case AnsFIDS:
			if hex.EncodeToString(c.SndID[:]) != k.SenderID || len(c.RcvIDs) != len(k.Recipients) {
				t.Fatal("FIDS")
			}
			for i, r := range c.RcvIDs {
				if hex.EncodeToString(r.ID[:]) != k.Recipients[i].RecipientID || hex.EncodeToString(r.RelayDH[:]) != k.Recipients[i].RelayDHPublic {
					t.Fatalf("FIDS recipient %d", i)
				}
			}
		case CmdFPUT:
			if !bytes.Equal(c.Data, chunk) || tv.EntityID != k.SenderID || tv.SignedBy != "sender" {
				t.Fatal("FPUT")
			}
		case AnsCHUNK:
			got, err := OpenChunk(&boxKeys[0], c.Data)
			if err != nil || !bytes.Equal(got, chunk) || tv.EntityID != k.Recipients[0].RecipientID {
				t.Fatalf("CHUNK: %v", err)
			}
		}
	}

	for _, fv := range v.Frames {
		what := fmt.Sprintf("%s frame %d", fv.Chain, fv.Index)
		class := ChunkClass(fv.Class)
		if class.FrameSize() != fv.FrameSize {
			t.Fatalf("%s: size", what)
		}
		raw := raws[fv.Transmission]
		payload := make([]byte, fv.FrameSize-chacha20poly1305.Overhead)
		binary.BigEndian.PutUint32(payload, uint32(len(raw)))
		copy(payload[4:], raw)
		ck := unhex(t, v.ClientToRelay)
		if fv.Chain == r2c {
			ck = unhex(t, v.RelayToClient)
		}
		fk := chainBlockKey(t, ck, fv.Index)
		if hex.EncodeToString(fk) != fv.FrameKey {
			t.Fatalf("%s: key", what)
		}
		aead, err := chacha20poly1305.New(fk)
		if err != nil {
			t.Fatal(err)
		}
		frame := aead.Seal(nil, make([]byte, 12), payload, nil)
		if sum := sha256.Sum256(frame); hex.EncodeToString(sum[:]) != fv.FrameSHA256 {
			t.Fatalf("%s: SHA-256", what)
		}
		rc := newChain(ck)
		for range fv.Index {
			if _, err := rc.next(); err != nil {
				t.Fatal(err)
			}
		}
		got, gotClass, err := (&Session{recv: rc}).OpenFrame(frame)
		if err != nil || gotClass != class || !bytes.Equal(got, raw) {
			t.Fatalf("%s: open: %v", what, err)
		}
	}

	sh := v.SealedHello
	hn := [24]byte(unhex(t, sh.Nonce))
	bk := [32]byte(unhex(t, sh.BoxKey))
	if bk != boxKeys[1] || hn == nonce {
		t.Fatal("hello: box key is recipient 1's, nonce differs from chunk_nonce")
	}
	sealed := unhex(t, sh.Sealed)
	if !bytes.Equal(sealed, box.SealAfterPrecomputation(hn[:], unhex(t, sh.Plaintext), &hn, &bk)) {
		t.Fatal("sealed hello bytes")
	}
	if m, err := OpenChunk(&bk, sealed); err != nil || string(m) != "hello" {
		t.Fatalf("sealed chunk: %q %v", m, err)
	}
}
