package wire

import (
	"bytes"
	"crypto/ecdh"
	"crypto/ed25519"
	"crypto/hkdf"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"testing"

	"golang.org/x/crypto/curve25519"
	"golang.org/x/crypto/nacl/box"
	"golang.org/x/crypto/nacl/secretbox"
)

// fileForwardVectors is testdata/forward_file_vectors.json (SPEC.md §13):
// one route of private routing on the file endpoint (SPEC.md §12.6) and
// three commands forwarded on it (FGET before the upload, FGET, FACK).
// Every input is given (keys as seeds or private keys, IDs, correlation
// IDs, the chunk's seed, the proxy layer's and the chunk's nonces);
// Ed25519 signatures are deterministic, so every output follows from them.
type fileForwardVectors struct {
	Comment       string                     `json:"comment"`
	Sizes         fileForwardSizes           `json:"sizes"`
	Destination   forwardDestination         `json:"destination"`
	Proxy         forwardProxy               `json:"proxy"`
	Proof         fileForwardProof           `json:"proof"`
	Recipient     fileRecipientKeys          `json:"recipient"`
	Chunk         fileForwardChunk           `json:"chunk"`
	Transmissions []txVector                 `json:"transmissions"`
	Commands      []fileForwardCommandVector `json:"commands"`
}

type fileForwardSizes struct {
	ForwardPlain  int                     `json:"file_forward_plain_size"`
	ForwardSealed int                     `json:"file_forward_sealed_size"`
	LayerOverhead int                     `json:"layer_overhead"`
	ForwardLayer  int                     `json:"file_forward_layer_size"`
	Classes       []fileForwardClassSizes `json:"classes"`
}

// fileForwardClassSizes are the answer sizes of one class the client can
// ask for: PRES carries AnswerSealed bytes, RRES AnswerLayer, each in a
// frame of FrameSize.
type fileForwardClassSizes struct {
	Class        int `json:"class"`
	ChunkSize    int `json:"chunk_size"`
	FrameSize    int `json:"frame_size"`
	AnswerPlain  int `json:"answer_plain_size"`
	AnswerSealed int `json:"answer_sealed_size"`
	AnswerLayer  int `json:"answer_layer_size"`
}

// fileForwardProof is the client's proof in PRXY that it holds a queue on
// the proxy: the transmission is signed (file context) over the client's
// file session ID with the proxy by that queue's recipient key, entity =
// its recipient ID.
type fileForwardProof struct {
	SessionID        string `json:"session_id"`
	QueueAuthSeed    string `json:"queue_auth_seed"`
	QueueAuthPublic  string `json:"queue_auth_public"`
	QueueRecipientID string `json:"queue_recipient_id"`
	SignedDigest     string `json:"signed_digest"`
}

// fileForwardChunk is the chunk the destination holds for the recipient,
// given by its rule and seed, with checks on the result.
type fileForwardChunk struct {
	Rule   string `json:"rule"`
	Seed   string `json:"seed"`
	Size   int    `json:"size"`
	Prefix string `json:"prefix"`
	SHA256 string `json:"sha256"`
}

// ffBytes is one output: in full (Hex) when it is at most ffWhole bytes,
// else by its first 64 bytes (Prefix) and the SHA-256 of the whole.
type ffBytes struct {
	Size   int    `json:"size"`
	Hex    string `json:"hex,omitempty"`
	Prefix string `json:"prefix,omitempty"`
	SHA256 string `json:"sha256,omitempty"`
}

const ffWhole = 1024

func ffDescribe(b []byte) ffBytes {
	if len(b) <= ffWhole {
		return ffBytes{Size: len(b), Hex: hex.EncodeToString(b)}
	}
	sum := sha256.Sum256(b)
	return ffBytes{Size: len(b), Prefix: hex.EncodeToString(b[:64]), SHA256: hex.EncodeToString(sum[:])}
}

// check fails unless b is what d describes.
func (d ffBytes) check(t *testing.T, what string, b []byte) {
	t.Helper()
	if len(b) != d.Size {
		t.Fatalf("%s: %d bytes, want %d", what, len(b), d.Size)
	}
	if d.Size <= ffWhole {
		if d.Hex != hex.EncodeToString(b) || d.Prefix != "" || d.SHA256 != "" {
			t.Fatalf("%s: bytes", what)
		}
		return
	}
	sum := sha256.Sum256(b)
	if d.Hex != "" || d.Prefix != hex.EncodeToString(b[:64]) || d.SHA256 != hex.EncodeToString(sum[:]) {
		t.Fatalf("%s: prefix or SHA-256", what)
	}
}

// fileForwardCommandVector is one forwarded file command from the
// client's PFWD to the proxy's PRES.
type fileForwardCommandVector struct {
	Name              string  `json:"name"`
	Kind              string  `json:"inner_kind"`
	Class             int     `json:"class"`
	ClientEphPrivate  string  `json:"client_ephemeral_private"`
	ClientEphPublic   string  `json:"client_ephemeral_public"`
	SharedSecret      string  `json:"shared_secret"`
	RequestKey        string  `json:"request_key"`
	AnswerKey         string  `json:"answer_key"`
	SignatureBinding  string  `json:"signature_binding"`
	InnerCorrID       string  `json:"inner_corr_id"`
	InnerEntityID     string  `json:"inner_entity_id"`
	SignedDigest      string  `json:"signed_digest"`
	InnerTransmission string  `json:"inner_transmission"`
	Sealed            string  `json:"sealed"`
	PFWDCorrID        string  `json:"pfwd_corr_id"`
	PFWDTransmission  string  `json:"pfwd_transmission"`
	RFWDCorrID        string  `json:"rfwd_corr_id"`
	RFWDNonce         string  `json:"rfwd_layer_nonce"`
	RFWDTransmission  string  `json:"rfwd_transmission"`
	AnswerKind        string  `json:"answer_kind"`
	AnswerCode        string  `json:"answer_code,omitempty"`
	ChunkNonce        string  `json:"chunk_nonce,omitempty"`
	Answer            ffBytes `json:"answer_transmission"`
	SealedAnswer      ffBytes `json:"sealed_answer"`
	RRESNonce         string  `json:"rres_layer_nonce"`
	RRESTransmission  ffBytes `json:"rres_transmission"`
	PRESTransmission  ffBytes `json:"pres_transmission"`
}

// Fixed inputs of forward_file_vectors.json. The destination is the relay
// of vectors.json (same identity seed) with the forward key of a file
// session; the recipient is recipient 0 of files_vectors.json.
var (
	ffForwardPriv  = seq(32, 0x74)
	ffProxyEph     = seq(32, 0x94)
	ffRouteID      = seq(RouteIDSize, 0x58)
	ffPassword     = []byte("pw")
	ffProofSession = [32]byte(seq(32, 0x44))
	ffQueueSeed    = seq(32, 0x18)
	ffQueueRcvID   = seq(IDSize, 0xC8)
	ffChunkSeed    = seq(32, 0x11)
	ffChunkNonce   = [ChunkNonceSize]byte(seq(ChunkNonceSize, 0x98))
	ffClass        = Class64K
)

const ffChunkRule = "SHA-256(seed || uint32 big-endian i) for i = 0, 1, 2 ..., concatenated: 65,536 bytes (2,048 hashes)"

// ffChunk is the chunk: a SHA-256 counter stream from ffChunkSeed.
func ffChunk(seed []byte, size int) []byte {
	out := make([]byte, 0, size)
	for i := uint32(0); len(out) < size; i++ {
		sum := sha256.Sum256(binary.BigEndian.AppendUint32(bytes.Clone(seed), i))
		out = append(out, sum[:]...)
	}
	return out[:size]
}

// ffRecipient is the chunk's recipient on the destination: recipient 0
// of files_vectors.json.
type ffRecipient struct {
	auth                ed25519.PrivateKey
	id                  []byte
	dhPriv, relayPriv   *ecdh.PrivateKey
	dhPub, relayPub     []byte
	boxKey              [32]byte
	dhSeed, relaySecret []byte
}

func newFFRecipient(t testing.TB) ffRecipient {
	t.Helper()
	r := ffRecipient{auth: ed25519.NewKeyFromSeed(seq(32, 0x10)), id: seq(IDSize, 0xE0), dhSeed: seq(32, 0x20), relaySecret: seq(32, 0x30)}
	r.dhPriv, r.relayPriv = x25519Priv(t, r.dhSeed), x25519Priv(t, r.relaySecret)
	r.dhPub, r.relayPub = r.dhPriv.PublicKey().Bytes(), r.relayPriv.PublicKey().Bytes()
	box.Precompute(&r.boxKey, (*[32]byte)(r.relayPub), (*[32]byte)(r.dhSeed))
	return r
}

// ffCommand is one forwarded file command's inputs.
type ffCommand struct {
	name      string
	kind      FileKind
	class     ChunkClass
	eph       []byte // the client's ephemeral X25519 private key
	innerCorr []byte // random in the reference client
	pfwdCorr  []byte // the client's counter on its file session with the proxy
	rfwdCorr  []byte // the proxy's counter on its file session with the destination
	rfwdNonce []byte
	rresNonce []byte
	answer    FileCommand
}

func ffCommands(t testing.TB) []ffCommand {
	t.Helper()
	r := newFFRecipient(t)
	chunk := sealChunkWithNonce(&r.boxKey, &ffChunkNonce, ffChunk(ffChunkSeed, ffClass.Size()))
	return []ffCommand{
		{name: "FGET before the upload", kind: CmdFGET, class: ffClass, eph: seq(32, 0x58), innerCorr: seq(8, 0xC8),
			pfwdCorr: corr(2), rfwdCorr: corr(2), rfwdNonce: seq(24, 0x2C), rresNonce: seq(24, 0x6C),
			answer: FileCommand{Kind: AnsFERR, Code: CodeNoMsg}},
		{name: "FGET", kind: CmdFGET, class: ffClass, eph: seq(32, 0x38), innerCorr: seq(8, 0xA8),
			pfwdCorr: corr(3), rfwdCorr: corr(3), rfwdNonce: seq(24, 0x24), rresNonce: seq(24, 0x64),
			answer: FileCommand{Kind: AnsCHUNK, Data: chunk}},
		{name: "FACK", kind: CmdFACK, class: ClassControl, eph: seq(32, 0x48), innerCorr: seq(8, 0xB8),
			pfwdCorr: corr(4), rfwdCorr: corr(4), rfwdNonce: seq(24, 0x28), rresNonce: seq(24, 0x68),
			answer: FileCommand{Kind: AnsFOK}},
	}
}

// ffTx is a transmission of the route, before encoding; signer is
// "queue" (the proof key) or empty.
type ffTx struct {
	name, dir, signer string
	t                 FileTransmission
}

// ffTransmissions are the route's transmissions outside the commands: the
// route's opening on both legs (PRXY with the queue proof), PRXY with the
// password instead, and an outer error.
func ffTransmissions(t testing.TB) []ffTx {
	t.Helper()
	identity := ed25519.NewKeyFromSeed(prIdentitySeed)
	fwd := [KeySize]byte(x25519Priv(t, ffForwardPriv).PublicKey().Bytes())
	proxyEph := [KeySize]byte(x25519Priv(t, ffProxyEph).PublicKey().Bytes())
	sig := SignForwardKey(identity, fwd)
	idPub := [KeySize]byte(identity.Public().(ed25519.PublicKey))
	tx := func(name, dir, signer string, c, ent []byte, kind FileKind, q Command, pw []byte) ffTx {
		return ffTx{name, dir, signer, FileTransmission{CorrID: c, EntityID: ent, Command: FileCommand{Kind: kind, Fwd: q, Password: pw}}}
	}
	return []ffTx{
		tx("PRXY (queue proof)", c2p, "queue", corr(1), ffQueueRcvID, CmdFPRXY, Command{Relay: prAddress()}, nil),
		tx("RKEY", p2d, "", corr(1), nil, CmdFRKEY, Command{DHKey: proxyEph}, nil),
		tx("FKEY", d2p, "", corr(1), nil, AnsFFKEY, Command{Identity: idPub, DHKey: fwd, KeySig: sig}, nil),
		tx("PKEY", p2c, "", corr(1), nil, AnsFPKEY, Command{Route: [RouteIDSize]byte(ffRouteID), Identity: idPub, DHKey: fwd, KeySig: sig}, nil),
		tx("PRXY (password)", c2p, "", corr(5), nil, CmdFPRXY, Command{Relay: prAddress()}, ffPassword),
		{"ERR ROUTE to PFWD", p2c, "", FileTransmission{CorrID: corr(6), EntityID: ffRouteID, Command: FileCommand{Kind: AnsFERR, Code: CodeRoute}}},
	}
}

func mustMarshalFile(t testing.TB, tr FileTransmission) []byte {
	t.Helper()
	raw, err := tr.Marshal()
	if err != nil {
		t.Fatal(err)
	}
	return raw
}

func buildFileForwardVectors(t *testing.T) fileForwardVectors {
	t.Helper()
	h := hex.EncodeToString
	identity := ed25519.NewKeyFromSeed(prIdentitySeed)
	idPub := identity.Public().(ed25519.PublicKey)
	fwdPriv := x25519Priv(t, ffForwardPriv)
	fwd := [KeySize]byte(fwdPriv.PublicKey().Bytes())
	proxyEph := x25519Priv(t, ffProxyEph)
	proxyEphPub := [KeySize]byte(proxyEph.PublicKey().Bytes())
	sig := SignForwardKey(identity, fwd)
	layerShared, err := proxyEph.ECDH(fwdPriv.PublicKey())
	if err != nil {
		t.Fatal(err)
	}
	layer, err := LayerKey(proxyEph, fwd, proxyEphPub, fwd)
	if err != nil {
		t.Fatal(err)
	}
	queue := ed25519.NewKeyFromSeed(ffQueueSeed)
	r := newFFRecipient(t)
	chunk := ffChunk(ffChunkSeed, ffClass.Size())
	chunkSum := sha256.Sum256(chunk)
	v := fileForwardVectors{
		Comment: "Wisp private routing of file chunks (FGET, FACK) v1 test vectors; see SPEC.md §12.6 and §13. Hex unless said otherwise. " +
			"The destination is the relay of vectors.json, the recipient is recipient 0 of files_vectors.json. " +
			"An output of more than 1,024 bytes is given by its size, its first 64 bytes (prefix) and the SHA-256 of the whole.",
		Sizes: fileForwardSizes{ForwardPlain: FileForwardPlainSize, ForwardSealed: FileForwardSealedSize, LayerOverhead: LayerOverhead, ForwardLayer: FileForwardLayerSize},
		Destination: forwardDestination{
			IdentitySeed: h(prIdentitySeed), IdentityPublic: h(idPub), Address: prAddress().String(),
			ForwardPrivate: h(ffForwardPriv), ForwardPublic: h(fwd[:]), ForwardKeySig: h(sig[:]),
		},
		Proxy: forwardProxy{
			EphemeralPrivate: h(ffProxyEph), EphemeralPublic: h(proxyEphPub[:]),
			LayerShared: h(layerShared), LayerKey: h(layer[:]), RouteID: h(ffRouteID), Password: h(ffPassword),
		},
		Proof: fileForwardProof{SessionID: h(ffProofSession[:]), QueueAuthSeed: h(ffQueueSeed),
			QueueAuthPublic: h(queue.Public().(ed25519.PublicKey)), QueueRecipientID: h(ffQueueRcvID)},
		Recipient: fileRecipientKeys{
			AuthSeed: h(r.auth.Seed()), AuthPublic: h(r.auth.Public().(ed25519.PublicKey)),
			DHPrivate: h(r.dhSeed), DHPublic: h(r.dhPub), RecipientID: h(r.id),
			RelayDHPrivate: h(r.relaySecret), RelayDHPublic: h(r.relayPub), BoxKey: h(r.boxKey[:]),
		},
		Chunk: fileForwardChunk{Rule: ffChunkRule, Seed: h(ffChunkSeed), Size: len(chunk), Prefix: h(chunk[:64]), SHA256: h(chunkSum[:])},
	}
	for _, c := range append([]ChunkClass{ClassControl}, Classes()...) {
		v.Sizes.Classes = append(v.Sizes.Classes, fileForwardClassSizes{Class: int(c), ChunkSize: c.Size(), FrameSize: c.FrameSize(),
			AnswerPlain: FileAnswerPlainSize(c), AnswerSealed: FileAnswerSealedSize(c), AnswerLayer: FileAnswerSealedSize(c) + LayerOverhead})
	}
	for _, q := range ffTransmissions(t) {
		raw := mustMarshalFile(t, q.t)
		if q.signer == "queue" {
			if raw, err = q.t.Sign(ffProofSession, queue); err != nil {
				t.Fatal(err)
			}
			d := signedDigest(fileSignContext, ffProofSession, raw[1+SignatureSize:])
			v.Proof.SignedDigest = h(d[:])
		}
		v.Transmissions = append(v.Transmissions, txVector{
			Name: q.name, Kind: q.t.Command.Kind.String(), Direction: q.dir, SignedBy: q.signer,
			CorrID: h(q.t.CorrID), EntityID: h(q.t.EntityID), Transmission: h(raw),
		})
	}
	for _, pc := range ffCommands(t) {
		eph := x25519Priv(t, pc.eph)
		inner := FileTransmission{CorrID: pc.innerCorr, EntityID: r.id, Command: FileCommand{Kind: pc.kind}}
		f, err := newFileForward(eph, fwd, pc.class, &inner, r.auth)
		if err != nil {
			t.Fatal(pc.name, err)
		}
		shared, err := eph.ECDH(fwdPriv.PublicKey())
		if err != nil {
			t.Fatal(err)
		}
		innerRaw, err := inner.Sign(f.keys.sess, r.auth)
		if err != nil {
			t.Fatal(err)
		}
		digest := signedDigest(fileSignContext, f.keys.sess, innerRaw[1+SignatureSize:])
		pfwdCmd := FileCommand{Kind: CmdFPFWD, Class: pc.class, Data: f.Sealed}
		pfwdCmd.Fwd.DHKey = f.Eph
		pfwd := mustMarshalFile(t, FileTransmission{CorrID: pc.pfwdCorr, EntityID: ffRouteID, Command: pfwdCmd})
		layered, err := SealLayer(bytes.NewReader(pc.rfwdNonce), layer, append(f.Eph[:], f.Sealed...))
		if err != nil {
			t.Fatal(err)
		}
		rfwd := mustMarshalFile(t, FileTransmission{CorrID: pc.rfwdCorr, Command: FileCommand{Kind: CmdFRFWD, Class: pc.class, Data: layered}})
		// The destination's side, by the code: open, answer, seal.
		opened, err := OpenFileForward(fwdPriv, pc.class, f.Eph, f.Sealed)
		if err != nil {
			t.Fatal(pc.name, err)
		}
		answer := mustMarshalFile(t, FileTransmission{CorrID: pc.innerCorr, EntityID: r.id, Command: pc.answer})
		sealedAns, err := opened.SealFileAnswer(pc.answer)
		if err != nil {
			t.Fatal(pc.name, err)
		}
		ansLayered, err := SealLayer(bytes.NewReader(pc.rresNonce), layer, sealedAns)
		if err != nil {
			t.Fatal(err)
		}
		rres := mustMarshalFile(t, FileTransmission{CorrID: pc.rfwdCorr, Command: FileCommand{Kind: AnsFRRES, Data: ansLayered}})
		pres := mustMarshalFile(t, FileTransmission{CorrID: pc.pfwdCorr, EntityID: ffRouteID, Command: FileCommand{Kind: AnsFPRES, Data: sealedAns}})
		cv := fileForwardCommandVector{
			Name: pc.name, Kind: pc.kind.String(), Class: int(pc.class),
			ClientEphPrivate: h(pc.eph), ClientEphPublic: h(f.Eph[:]), SharedSecret: h(shared),
			RequestKey: h(f.keys.req[:]), AnswerKey: h(f.keys.ans[:]), SignatureBinding: h(f.keys.sess[:]),
			InnerCorrID: h(pc.innerCorr), InnerEntityID: h(r.id),
			SignedDigest: h(digest[:]), InnerTransmission: h(innerRaw), Sealed: h(f.Sealed),
			PFWDCorrID: h(pc.pfwdCorr), PFWDTransmission: h(pfwd),
			RFWDCorrID: h(pc.rfwdCorr), RFWDNonce: h(pc.rfwdNonce), RFWDTransmission: h(rfwd),
			AnswerKind: pc.answer.Kind.String(),
			Answer:     ffDescribe(answer), SealedAnswer: ffDescribe(sealedAns),
			RRESNonce: h(pc.rresNonce), RRESTransmission: ffDescribe(rres), PRESTransmission: ffDescribe(pres),
		}
		switch pc.answer.Kind {
		case AnsFERR:
			cv.AnswerCode = pc.answer.Code.String()
		case AnsCHUNK:
			cv.ChunkNonce = h(ffChunkNonce[:])
		}
		v.Commands = append(v.Commands, cv)
	}
	return v
}

// ffPadWide is SPEC.md §12.6's padding, written out: uint32(len(m)) || m
// || zeros, size bytes in all.
func ffPadWide(t *testing.T, m []byte, size int) []byte {
	t.Helper()
	if 4+len(m) > size {
		t.Fatalf("%d bytes do not pad to %d", len(m), size)
	}
	out := make([]byte, size)
	binary.BigEndian.PutUint32(out, uint32(len(m)))
	copy(out[4:], m)
	return out
}

// TestFileForwardVectors checks testdata/forward_file_vectors.json both
// ways, as TestForwardVectors does: the code generates exactly the file,
// and every entry is rebuilt from the file's own inputs with the
// primitives SPEC.md §12.3 and §12.6 name (X25519, HKDF-SHA256, Ed25519,
// the 4-byte padding, ChaCha20-Poly1305, secretbox, NaCl box); then the
// proxy's, the destination's and the client's code handle what the others
// sent.
func TestFileForwardVectors(t *testing.T) {
	v := checkVectorFile(t, "testdata/forward_file_vectors.json", buildFileForwardVectors(t))
	d, p, pr, rc := v.Destination, v.Proxy, v.Proof, v.Recipient

	// Sizes, as SPEC.md §12.6 states them.
	sz := v.Sizes
	if sz.ForwardPlain != 256 || sz.ForwardSealed != 272 || sz.LayerOverhead != 40 || sz.ForwardLayer != 344 || len(sz.Classes) != 5 {
		t.Fatalf("sizes: %+v", sz)
	}
	// The longest signed FGET or FACK: 1 + 64 + 1 + 24 + 1 + 24 + 4.
	if longest := 1 + SignatureSize + 1 + MaxCorrIDSize + 1 + IDSize + 4; longest != 119 || 4+longest > sz.ForwardPlain {
		t.Fatal("the longest forwarded file command does not fit")
	}
	ansSize := map[int]int{}
	for i, c := range sz.Classes {
		chunk := []int{0, 65536, 262144, 1048576, 4194304}[i]
		plain := 128
		if i > 0 {
			plain = chunk + 256
		}
		if c != (fileForwardClassSizes{i, chunk, chunk + 16384, plain, plain + 16, plain + 56}) {
			t.Fatalf("class %d sizes: %+v", i, c)
		}
		ansSize[i] = plain
	}

	// The destination's forward key, its signature, the client's check.
	identity := ed25519.NewKeyFromSeed(unhex(t, d.IdentitySeed))
	idPub := identity.Public().(ed25519.PublicKey)
	addr, err := ParseAddress(d.Address)
	if err != nil || addr.KeyHash != HashIdentity(idPub) || addr.String() != d.Address || hex.EncodeToString(idPub) != d.IdentityPublic {
		t.Fatalf("identity or address: %v", err)
	}
	fwdPrivRaw := unhex(t, d.ForwardPrivate)
	fwd := [KeySize]byte(x25519Public(t, fwdPrivRaw))
	sig := [SignatureSize]byte(unhex(t, d.ForwardKeySig))
	if hex.EncodeToString(fwd[:]) != d.ForwardPublic ||
		!bytes.Equal(ed25519.Sign(identity, append([]byte("wisp forward key v1"), fwd[:]...)), sig[:]) {
		t.Fatal("forward key or its signature")
	}
	if err := VerifyForwardKey(addr.KeyHash, [KeySize]byte(idPub), fwd, sig); err != nil {
		t.Fatal(err)
	}
	fwdPriv := x25519Priv(t, fwdPrivRaw)

	// The proxy layer key, from either side.
	proxyEphRaw := unhex(t, p.EphemeralPrivate)
	proxyEphPub := [KeySize]byte(x25519Public(t, proxyEphRaw))
	shared, err := curve25519.X25519(proxyEphRaw, fwd[:])
	if err != nil || hex.EncodeToString(proxyEphPub[:]) != p.EphemeralPublic || hex.EncodeToString(shared) != p.LayerShared {
		t.Fatalf("proxy ephemeral key or layer shared secret: %v", err)
	}
	if other, _ := curve25519.X25519(fwdPrivRaw, proxyEphPub[:]); !bytes.Equal(other, shared) {
		t.Fatal("layer shared secret from the destination's side")
	}
	lk, err := hkdf.Key(sha256.New, shared, append(proxyEphPub[:], fwd[:]...), "wisp forward layer v1", 32)
	if err != nil || hex.EncodeToString(lk) != p.LayerKey {
		t.Fatalf("layer key: %v", err)
	}
	layer := (*[32]byte)(lk)
	if dk, err := LayerKey(fwdPriv, proxyEphPub, proxyEphPub, fwd); err != nil || *dk != *layer {
		t.Fatalf("LayerKey on the destination: %v", err)
	}
	route := unhex(t, p.RouteID)
	if len(route) != RouteIDSize {
		t.Fatal("route ID")
	}

	// The proof key and the chunk's recipient (recipient 0 of
	// files_vectors.json; box key from either side).
	queue := ed25519.NewKeyFromSeed(unhex(t, pr.QueueAuthSeed))
	queuePub := queue.Public().(ed25519.PublicKey)
	proofSID := [32]byte(unhex(t, pr.SessionID))
	queueRcvID := unhex(t, pr.QueueRecipientID)
	if hex.EncodeToString(queuePub) != pr.QueueAuthPublic || len(queueRcvID) != IDSize {
		t.Fatal("queue key or recipient ID")
	}
	rcpt := ed25519.NewKeyFromSeed(unhex(t, rc.AuthSeed))
	rcptPub := rcpt.Public().(ed25519.PublicKey)
	rcvID := unhex(t, rc.RecipientID)
	var boxKey, relaySide [32]byte
	box.Precompute(&boxKey, (*[32]byte)(unhex(t, rc.RelayDHPublic)), (*[32]byte)(unhex(t, rc.DHPrivate)))
	box.Precompute(&relaySide, (*[32]byte)(unhex(t, rc.DHPublic)), (*[32]byte)(unhex(t, rc.RelayDHPrivate)))
	if hex.EncodeToString(rcptPub) != rc.AuthPublic || hex.EncodeToString(x25519Public(t, unhex(t, rc.DHPrivate))) != rc.DHPublic ||
		hex.EncodeToString(x25519Public(t, unhex(t, rc.RelayDHPrivate))) != rc.RelayDHPublic || boxKey != relaySide || hex.EncodeToString(boxKey[:]) != rc.BoxKey {
		t.Fatal("recipient keys")
	}
	if fv := fileVectorRecipients(t)[0]; !bytes.Equal(fv.auth, rcpt) || !bytes.Equal(fv.id[:], rcvID) || fv.boxKey != boxKey {
		t.Fatal("the recipient is not recipient 0 of files_vectors.json")
	}

	// The chunk, from its seed.
	if v.Chunk.Rule != ffChunkRule || v.Chunk.Size != 65536 {
		t.Fatal("chunk rule")
	}
	var chunk []byte
	for i := uint32(0); len(chunk) < v.Chunk.Size; i++ {
		h := sha256.New()
		h.Write(unhex(t, v.Chunk.Seed))
		h.Write([]byte{byte(i >> 24), byte(i >> 16), byte(i >> 8), byte(i)})
		chunk = h.Sum(chunk)
	}
	if sum := sha256.Sum256(chunk); len(chunk) != v.Chunk.Size || hex.EncodeToString(chunk[:64]) != v.Chunk.Prefix || hex.EncodeToString(sum[:]) != v.Chunk.SHA256 {
		t.Fatal("chunk")
	}

	// The route's transmissions: exact bytes from the inputs, parse,
	// verify the proof, encode back.
	for _, tv := range v.Transmissions {
		raw := unhex(t, tv.Transmission)
		tr, err := ParseFileTransmission(raw)
		if err != nil || tr.Command.Kind.String() != tv.Kind {
			t.Fatalf("%s: %v", tv.Name, err)
		}
		if hex.EncodeToString(tr.CorrID) != tv.CorrID || hex.EncodeToString(tr.EntityID) != tv.EntityID {
			t.Fatalf("%s: corrID or entity ID", tv.Name)
		}
		if tr.Command.Kind.FromClient() != (tv.Direction == c2p || tv.Direction == p2d) {
			t.Fatalf("%s: direction", tv.Name)
		}
		corrID := tr.CorrID
		unsigned := bytes.Join([][]byte{{byte(len(corrID))}, corrID, {byte(len(tr.EntityID))}, tr.EntityID, []byte(tv.Kind + " ")}, nil)
		a := []byte(d.Address)
		switch tr.Command.Kind {
		case CmdFPRXY:
			pw := []byte(nil)
			if tv.SignedBy == "" {
				pw = unhex(t, p.Password)
			}
			unsigned = append(unsigned, bytes.Join([][]byte{{byte(len(a))}, a, {byte(len(pw))}, pw}, nil)...)
			if tr.Command.Fwd.Relay != addr || !bytes.Equal(tr.Command.Password, pw) {
				t.Fatalf("%s: address or password", tv.Name)
			}
		case CmdFRKEY:
			unsigned = append(unsigned, proxyEphPub[:]...)
		case AnsFFKEY:
			unsigned = append(unsigned, bytes.Join([][]byte{idPub, fwd[:], sig[:]}, nil)...)
		case AnsFPKEY:
			unsigned = append(unsigned, bytes.Join([][]byte{route, idPub, fwd[:], sig[:]}, nil)...)
			if !bytes.Equal(corrID, unhex(t, v.Transmissions[0].CorrID)) {
				t.Fatal("PKEY does not answer PRXY")
			}
		case AnsFERR:
			unsigned = append(unsigned, tr.Command.Code.String()...)
			if !bytes.Equal(tr.EntityID, route) {
				t.Fatalf("%s: not on the route", tv.Name)
			}
		default:
			t.Fatalf("%s: unexpected kind", tv.Name)
		}
		fresh := FileTransmission{CorrID: tr.CorrID, EntityID: tr.EntityID, Command: tr.Command}
		var again []byte
		switch tv.SignedBy {
		case "":
			if !bytes.Equal(raw, append([]byte{0}, unsigned...)) || tr.Signature != nil {
				t.Fatalf("%s: bytes", tv.Name)
			}
			again, err = fresh.Marshal()
		case "queue":
			// The proof: Ed25519 over SHA-256 of the file context, the
			// client's session ID with the proxy and the unsigned part;
			// entity = the queue's recipient ID.
			h := sha256.New()
			h.Write([]byte("wisp file transmission v1"))
			h.Write(proofSID[:])
			h.Write(unsigned)
			digest := h.Sum(nil)
			if hex.EncodeToString(digest) != pr.SignedDigest || !bytes.Equal(tr.EntityID, queueRcvID) || tv.Kind != "PRXY" {
				t.Fatalf("%s: signed digest or entity", tv.Name)
			}
			if !bytes.Equal(raw, bytes.Join([][]byte{{SignatureSize}, ed25519.Sign(queue, digest), unsigned}, nil)) {
				t.Fatalf("%s: bytes", tv.Name)
			}
			var other [32]byte
			if !tr.Verify(proofSID, queuePub) || tr.Verify(other, queuePub) || tr.Verify(proofSID, rcptPub) {
				t.Fatalf("%s: the proof verifies only in its session by its key", tv.Name)
			}
			// Not a queue transmission's signature (another context).
			if ed25519.Verify(queuePub, func() []byte { d := signedDigest(signContext, proofSID, unsigned); return d[:] }(), tr.Signature) {
				t.Fatalf("%s: verifies in the queue context", tv.Name)
			}
			again, err = fresh.Sign(proofSID, queue)
		default:
			t.Fatalf("%s: signer %q", tv.Name, tv.SignedBy)
		}
		if err != nil || !bytes.Equal(again, raw) {
			t.Fatalf("%s: does not encode back: %v", tv.Name, err)
		}
	}

	for _, cv := range v.Commands {
		what := cv.Name
		class := ChunkClass(cv.Class)
		// Key agreement of the command.
		ephRaw := unhex(t, cv.ClientEphPrivate)
		eph := [KeySize]byte(x25519Public(t, ephRaw))
		if hex.EncodeToString(eph[:]) != cv.ClientEphPublic {
			t.Fatalf("%s: ephemeral public key", what)
		}
		ss, err := curve25519.X25519(ephRaw, fwd[:])
		if err != nil || hex.EncodeToString(ss) != cv.SharedSecret {
			t.Fatalf("%s: shared secret: %v", what, err)
		}
		if other, _ := curve25519.X25519(fwdPrivRaw, eph[:]); !bytes.Equal(other, ss) {
			t.Fatalf("%s: shared secret from the destination's side", what)
		}
		k, err := hkdf.Key(sha256.New, ss, append(eph[:], fwd[:]...), "wisp forward v1", 96)
		if err != nil || hex.EncodeToString(k[:32]) != cv.RequestKey || hex.EncodeToString(k[32:64]) != cv.AnswerKey ||
			hex.EncodeToString(k[64:]) != cv.SignatureBinding {
			t.Fatalf("%s: request key, answer key or signature binding: %v", what, err)
		}
		binding := [32]byte(k[64:])

		// The inner transmission: signed by the recipient key over the
		// binding in the file context (§11.2 digest).
		corrID := unhex(t, cv.InnerCorrID)
		if cv.InnerEntityID != rc.RecipientID || (cv.Kind != "FGET" && cv.Kind != "FACK") {
			t.Fatalf("%s: entity or kind", what)
		}
		unsigned := bytes.Join([][]byte{{byte(len(corrID))}, corrID, {IDSize}, rcvID, []byte(cv.Kind)}, nil)
		h := sha256.New()
		h.Write([]byte("wisp file transmission v1"))
		h.Write(binding[:])
		h.Write(unsigned)
		digest := h.Sum(nil)
		innerRaw := unhex(t, cv.InnerTransmission)
		if hex.EncodeToString(digest) != cv.SignedDigest ||
			!bytes.Equal(innerRaw, bytes.Join([][]byte{{SignatureSize}, ed25519.Sign(rcpt, digest), unsigned}, nil)) {
			t.Fatalf("%s: signed digest or inner transmission", what)
		}

		// Sealed: the 4-byte padding to 256, ChaCha20-Poly1305 under the
		// request key, zero nonce.
		sealed := chachaSeal(t, k[:32], ffPadWide(t, innerRaw, 256))
		if !bytes.Equal(sealed, unhex(t, cv.Sealed)) || len(sealed) != 272 {
			t.Fatalf("%s: sealed", what)
		}

		// PFWD (client → proxy): class || eph || sealed on the route ID.
		pfwdCorr := unhex(t, cv.PFWDCorrID)
		pfwd := bytes.Join([][]byte{{0, byte(len(pfwdCorr))}, pfwdCorr, {RouteIDSize}, route, []byte("PFWD "), {byte(class)}, eph[:], sealed}, nil)
		if !bytes.Equal(pfwd, unhex(t, cv.PFWDTransmission)) {
			t.Fatalf("%s: PFWD", what)
		}
		// RFWD (proxy → destination): class || layer(eph || sealed).
		nonce := [24]byte(unhex(t, cv.RFWDNonce))
		layered := secretbox.Seal(nonce[:], append(eph[:], sealed...), &nonce, layer)
		rfwdCorr := unhex(t, cv.RFWDCorrID)
		rfwd := bytes.Join([][]byte{{0, byte(len(rfwdCorr))}, rfwdCorr, {0}, []byte("RFWD "), {byte(class)}, layered}, nil)
		if !bytes.Equal(rfwd, unhex(t, cv.RFWDTransmission)) || len(layered) != 344 {
			t.Fatalf("%s: RFWD", what)
		}

		// The proxy parses PFWD and wraps its arguments as RFWD.
		ptr, err := ParseFileTransmission(pfwd)
		if err != nil || ptr.Command.Kind != CmdFPFWD || ptr.Command.Class != class || ptr.Command.Fwd.DHKey != eph ||
			!bytes.Equal(ptr.Command.Data, sealed) || !bytes.Equal(ptr.EntityID, route) {
			t.Fatalf("%s: PFWD does not parse: %v", what, err)
		}
		if again, err := SealLayer(bytes.NewReader(nonce[:]), layer, append(ptr.Command.Fwd.DHKey[:], ptr.Command.Data...)); err != nil || !bytes.Equal(again, layered) {
			t.Fatalf("%s: SealLayer: %v", what, err)
		}

		// The destination: parse RFWD, open the layer and the command,
		// verify the signature against the binding.
		dtr, err := ParseFileTransmission(rfwd)
		if err != nil || dtr.Command.Kind != CmdFRFWD || dtr.Command.Class != class || len(dtr.EntityID) != 0 {
			t.Fatalf("%s: RFWD does not parse: %v", what, err)
		}
		inner, err := OpenLayer(layer, dtr.Command.Data)
		if err != nil || !bytes.Equal(inner, append(eph[:], sealed...)) {
			t.Fatalf("%s: OpenLayer: %v", what, err)
		}
		f, err := OpenFileForward(fwdPriv, dtr.Command.Class, [KeySize]byte(inner[:KeySize]), inner[KeySize:])
		if err != nil {
			t.Fatalf("%s: OpenFileForward: %v", what, err)
		}
		if f.SessionID != binding || f.FT.Command.Kind.String() != cv.Kind || !bytes.Equal(f.FT.EntityID, rcvID) || !bytes.Equal(f.FT.CorrID, corrID) {
			t.Fatalf("%s: opened command", what)
		}
		if !f.FT.Verify(f.SessionID, rcptPub) {
			t.Fatalf("%s: signature does not verify against the binding", what)
		}
		var zero [32]byte
		if f.FT.Verify(zero, rcptPub) || f.FT.Verify(proofSID, rcptPub) || f.FT.Verify(f.SessionID, queuePub) {
			t.Fatalf("%s: signature verifies outside its binding or by another key", what)
		}

		// The answer: unsigned, corrID and entity ID of the command.
		env := bytes.Join([][]byte{{0, byte(len(corrID))}, corrID, {IDSize}, rcvID, []byte(cv.AnswerKind)}, nil)
		var answer []byte
		switch cv.AnswerKind {
		case "CHUNK":
			cn := [24]byte(unhex(t, cv.ChunkNonce))
			answer = bytes.Join([][]byte{env, {' '}, box.SealAfterPrecomputation(cn[:], chunk, &cn, &boxKey)}, nil)
			if cv.Kind != "FGET" || class != Class64K || cv.AnswerCode != "" {
				t.Fatalf("%s: CHUNK", what)
			}
		case "ERR":
			answer = append(append(env, ' '), cv.AnswerCode...)
			if cv.ChunkNonce != "" {
				t.Fatalf("%s: ERR with a nonce", what)
			}
		case "OK":
			answer = env
			if cv.ChunkNonce != "" || cv.AnswerCode != "" {
				t.Fatalf("%s: OK", what)
			}
		default:
			t.Fatalf("%s: answer kind %s", what, cv.AnswerKind)
		}
		cv.Answer.check(t, what+": answer transmission", answer)
		atr, err := ParseFileTransmission(answer)
		if err != nil || atr.Signature != nil || atr.Command.Kind.String() != cv.AnswerKind {
			t.Fatalf("%s: answer transmission: %v", what, err)
		}

		// Sealed answer: the 4-byte padding to the class's answer size,
		// ChaCha20-Poly1305 under the answer key, zero nonce; an ERR is
		// padded to the same size as a CHUNK of the class.
		sealedAns := chachaSeal(t, k[32:64], ffPadWide(t, answer, ansSize[cv.Class]))
		cv.SealedAnswer.check(t, what+": sealed answer", sealedAns)
		if got, err := f.SealFileAnswer(atr.Command); err != nil || !bytes.Equal(got, sealedAns) {
			t.Fatalf("%s: SealFileAnswer: %v", what, err)
		}
		anonce := [24]byte(unhex(t, cv.RRESNonce))
		ansLayered := secretbox.Seal(anonce[:], sealedAns, &anonce, layer)
		rres := bytes.Join([][]byte{{0, byte(len(rfwdCorr))}, rfwdCorr, {0}, []byte("RRES "), ansLayered}, nil)
		cv.RRESTransmission.check(t, what+": RRES", rres)
		pres := bytes.Join([][]byte{{0, byte(len(pfwdCorr))}, pfwdCorr, {RouteIDSize}, route, []byte("PRES "), sealedAns}, nil)
		cv.PRESTransmission.check(t, what+": PRES", pres)
		// Each in a frame of the class: it fits, and its size names the
		// class.
		for _, b := range [][]byte{rres, pres} {
			if 4+len(b) > class.FrameSize()-16 || (class != ClassControl && 4+len(b) <= ClassControl.FrameSize()-16) {
				t.Fatalf("%s: %d bytes in a %s frame", what, len(b), class)
			}
		}
		if c, ok := AnswerClass(AnsFRRES, len(ansLayered)); !ok || c != class {
			t.Fatalf("%s: RRES class", what)
		}
		if c, ok := AnswerClass(AnsFPRES, len(sealedAns)); !ok || c != class {
			t.Fatalf("%s: PRES class", what)
		}

		// The proxy opens RRES's layer into PRES; the client opens PRES.
		rtr, err := ParseFileTransmission(rres)
		if err != nil || rtr.Command.Kind != AnsFRRES {
			t.Fatalf("%s: RRES does not parse: %v", what, err)
		}
		if out, err := OpenLayer(layer, rtr.Command.Data); err != nil || !bytes.Equal(out, sealedAns) {
			t.Fatalf("%s: OpenLayer of RRES: %v", what, err)
		}
		ctr, err := ParseFileTransmission(pres)
		if err != nil || ctr.Command.Kind != AnsFPRES || !bytes.Equal(ctr.Command.Data, sealedAns) || !bytes.Equal(ctr.EntityID, route) {
			t.Fatalf("%s: PRES does not parse: %v", what, err)
		}
		ct := FileTransmission{CorrID: corrID, EntityID: rcvID, Command: FileCommand{Kind: f.FT.Command.Kind}}
		cf, err := newFileForward(x25519Priv(t, ephRaw), fwd, class, &ct, rcpt)
		if err != nil || cf.Eph != eph || !bytes.Equal(cf.Sealed, sealed) {
			t.Fatalf("%s: the client's Forward: %v", what, err)
		}
		got, err := cf.OpenFileAnswer(ctr.Command.Data)
		if err != nil || got.Kind.String() != cv.AnswerKind {
			t.Fatalf("%s: OpenFileAnswer: %v %s", what, err, got.Kind)
		}
		switch got.Kind {
		case AnsCHUNK:
			if data, err := OpenChunk(&boxKey, got.Data); err != nil || !bytes.Equal(data, chunk) {
				t.Fatalf("%s: OpenChunk: %v", what, err)
			}
		case AnsFERR:
			if got.Code.String() != cv.AnswerCode {
				t.Fatalf("%s: code %s", what, got.Code)
			}
		}
	}
}
