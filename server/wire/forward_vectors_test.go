package wire

import (
	"bytes"
	"crypto/ecdh"
	"crypto/ed25519"
	"crypto/hkdf"
	"crypto/sha256"
	"encoding/hex"
	"testing"

	"github.com/wisp-chat/wisp/crypto/pad"
	"golang.org/x/crypto/chacha20poly1305"
	"golang.org/x/crypto/curve25519"
	"golang.org/x/crypto/nacl/secretbox"
)

// forwardVectors is testdata/forward_vectors.json (SPEC.md §13): one
// route of private routing (SPEC.md §12) and two commands forwarded on it.
// Every input is given (keys as seeds or private keys, IDs, correlation
// IDs, bodies, the proxy layer's nonces); Ed25519 signatures are
// deterministic, so every output follows from them.
type forwardVectors struct {
	Comment       string                 `json:"comment"`
	Sizes         forwardSizes           `json:"sizes"`
	Destination   forwardDestination     `json:"destination"`
	Proxy         forwardProxy           `json:"proxy"`
	Sender        forwardSender          `json:"sender"`
	Transmissions []txVector             `json:"transmissions"`
	Commands      []forwardCommandVector `json:"commands"`
}

type forwardSizes struct {
	ForwardPlain  int `json:"forward_plain_size"`
	ForwardSealed int `json:"forward_sealed_size"`
	AnswerPlain   int `json:"answer_plain_size"`
	AnswerSealed  int `json:"answer_sealed_size"`
	LayerOverhead int `json:"layer_overhead"`
	ForwardLayer  int `json:"forward_layer_size"`
	AnswerLayer   int `json:"answer_layer_size"`
}

type forwardDestination struct {
	IdentitySeed   string `json:"identity_seed"`
	IdentityPublic string `json:"identity_public"`
	Address        string `json:"address"`
	ForwardPrivate string `json:"forward_private"`
	ForwardPublic  string `json:"forward_public"`
	// ForwardKeySig is Ed25519(identity, "wisp forward key v1" || forward public).
	ForwardKeySig string `json:"forward_key_signature"`
}

type forwardProxy struct {
	EphemeralPrivate string `json:"ephemeral_private"`
	EphemeralPublic  string `json:"ephemeral_public"`
	LayerShared      string `json:"layer_shared_secret"`
	LayerKey         string `json:"layer_key"`
	RouteID          string `json:"route_id"`
	Password         string `json:"relay_password"`
}

type forwardSender struct {
	AuthSeed   string `json:"auth_seed"`
	AuthPublic string `json:"auth_public"`
	SenderID   string `json:"sender_id"`
}

// forwardCommandVector is one forwarded command from the client's PFWD
// to the proxy's PRES.
type forwardCommandVector struct {
	Name              string `json:"name"`
	Kind              string `json:"inner_kind"`
	ClientEphPrivate  string `json:"client_ephemeral_private"`
	ClientEphPublic   string `json:"client_ephemeral_public"`
	SharedSecret      string `json:"shared_secret"`
	RequestKey        string `json:"request_key"`
	AnswerKey         string `json:"answer_key"`
	SignatureBinding  string `json:"signature_binding"`
	InnerCorrID       string `json:"inner_corr_id"`
	InnerEntityID     string `json:"inner_entity_id"`
	Body              string `json:"body"`
	SignedDigest      string `json:"signed_digest"`
	InnerTransmission string `json:"inner_transmission"`
	Sealed            string `json:"sealed"`
	PFWDCorrID        string `json:"pfwd_corr_id"`
	PFWDPrefix        string `json:"pfwd_transmission_prefix"`
	PFWDSize          int    `json:"pfwd_transmission_size"`
	PFWDSHA256        string `json:"pfwd_transmission_sha256"`
	RFWDCorrID        string `json:"rfwd_corr_id"`
	RFWDNonce         string `json:"rfwd_layer_nonce"`
	RFWDTransmission  string `json:"rfwd_transmission"`
	Answer            string `json:"answer_transmission"`
	SealedAnswer      string `json:"sealed_answer"`
	RRESNonce         string `json:"rres_layer_nonce"`
	RRESTransmission  string `json:"rres_transmission"`
	PRESTransmission  string `json:"pres_transmission"`
}

// Directions of the private routing vectors.
const (
	c2p = "client_to_proxy"
	p2c = "proxy_to_client"
	p2d = "proxy_to_destination"
	d2p = "destination_to_proxy"
)

// Fixed inputs of forward_vectors.json. The destination is the relay of
// vectors.json (same identity seed) and the sender the sender there.
var (
	prIdentitySeed = seq(32, 0x00)
	prForwardPriv  = seq(32, 0x70)
	prProxyEph     = seq(32, 0x90)
	prSenderSeed   = seq(32, 0xD0)
	prSndID        = seq(IDSize, 0xE0)
	prRouteID      = seq(RouteIDSize, 0x50)
	prPassword     = []byte("pw")
)

// prCommand is one forwarded command's inputs.
type prCommand struct {
	name       string
	eph        []byte // the client's ephemeral X25519 private key
	innerCorr  []byte // random in the reference client
	cmd        Command
	pfwdCorr   []byte // the client's counter on its session with the proxy
	rfwdCorr   []byte // the proxy's counter on its session with the destination
	rfwdNonce  []byte
	rresNonce  []byte
	answerKind Kind
}

func prCommands() []prCommand {
	sAuth := ed25519.NewKeyFromSeed(prSenderSeed).Public().(ed25519.PublicKey)
	return []prCommand{
		{name: "SKEY", eph: seq(32, 0xB0), innerCorr: seq(8, 0xF0), cmd: Command{Kind: CmdSKEY, AuthKey: [KeySize]byte(sAuth)},
			pfwdCorr: corr(2), rfwdCorr: corr(2), rfwdNonce: seq(24, 0x20), rresNonce: seq(24, 0x60), answerKind: AnsOK},
		{name: "SEND", eph: seq(32, 0x30), innerCorr: seq(8, 0xF8), cmd: Command{Kind: CmdSEND, Body: []byte("hello")},
			pfwdCorr: corr(3), rfwdCorr: corr(3), rfwdNonce: seq(24, 0x38), rresNonce: seq(24, 0x78), answerKind: AnsOK},
	}
}

func prAddress() Address {
	pub := ed25519.NewKeyFromSeed(prIdentitySeed).Public().(ed25519.PublicKey)
	return Address{KeyHash: HashIdentity(pub), Host: "relay.example", Port: 443}
}

func x25519Priv(t testing.TB, b []byte) *ecdh.PrivateKey {
	t.Helper()
	k, err := ecdh.X25519().NewPrivateKey(b)
	if err != nil {
		t.Fatal(err)
	}
	return k
}

func mustMarshal(t testing.TB, tr Transmission) []byte {
	t.Helper()
	raw, err := tr.Marshal()
	if err != nil {
		t.Fatal(err)
	}
	return raw
}

// prTransmissions are the route's transmissions outside the commands:
// the route's opening on both legs and two outer errors.
func prTransmissions(t testing.TB) []queueTx {
	t.Helper()
	identity := ed25519.NewKeyFromSeed(prIdentitySeed)
	fwd := [KeySize]byte(x25519Priv(t, prForwardPriv).PublicKey().Bytes())
	proxyEph := [KeySize]byte(x25519Priv(t, prProxyEph).PublicKey().Bytes())
	sig := SignForwardKey(identity, fwd)
	idPub := [KeySize]byte(identity.Public().(ed25519.PublicKey))
	route := prRouteID
	tx := func(name, dir string, c, ent []byte, cmd Command) queueTx {
		return queueTx{name, dir, "", Transmission{CorrID: c, EntityID: ent, Command: cmd}}
	}
	return []queueTx{
		tx("PRXY", c2p, corr(1), nil, Command{Kind: CmdPRXY, Relay: prAddress(), Password: prPassword}),
		tx("RKEY", p2d, corr(1), nil, Command{Kind: CmdRKEY, DHKey: proxyEph}),
		tx("FKEY", d2p, corr(1), nil, Command{Kind: AnsFKEY, Identity: idPub, DHKey: fwd, KeySig: sig}),
		tx("PKEY", p2c, corr(1), nil, Command{Kind: AnsPKEY, Route: [RouteIDSize]byte(route), Identity: idPub, DHKey: fwd, KeySig: sig}),
		tx("ERR ROUTE to PFWD", p2c, corr(4), route, Command{Kind: AnsERR, Code: CodeRoute}),
		tx("ERR PROXY to PFWD", p2c, corr(5), route, Command{Kind: AnsERR, Code: CodeProxy}),
	}
}

func buildForwardVectors(t *testing.T) forwardVectors {
	t.Helper()
	h := hex.EncodeToString
	identity := ed25519.NewKeyFromSeed(prIdentitySeed)
	idPub := identity.Public().(ed25519.PublicKey)
	fwdPriv := x25519Priv(t, prForwardPriv)
	fwd := [KeySize]byte(fwdPriv.PublicKey().Bytes())
	proxyEph := x25519Priv(t, prProxyEph)
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
	sender := ed25519.NewKeyFromSeed(prSenderSeed)
	v := forwardVectors{
		Comment: "Wisp private routing v1 test vectors; see SPEC.md §12 and §13. Hex unless said otherwise. " +
			"The destination is the relay of vectors.json. A pfwd_transmission is pfwd_transmission_prefix || sealed.",
		Sizes: forwardSizes{ForwardPlainSize, ForwardSealedSize, AnswerPlainSize, AnswerSealedSize, LayerOverhead, ForwardLayerSize, AnswerLayerSize},
		Destination: forwardDestination{
			IdentitySeed: h(prIdentitySeed), IdentityPublic: h(idPub), Address: prAddress().String(),
			ForwardPrivate: h(prForwardPriv), ForwardPublic: h(fwd[:]), ForwardKeySig: h(sig[:]),
		},
		Proxy: forwardProxy{
			EphemeralPrivate: h(prProxyEph), EphemeralPublic: h(proxyEphPub[:]),
			LayerShared: h(layerShared), LayerKey: h(layer[:]), RouteID: h(prRouteID), Password: h(prPassword),
		},
		Sender: forwardSender{AuthSeed: h(prSenderSeed), AuthPublic: h(sender.Public().(ed25519.PublicKey)), SenderID: h(prSndID)},
	}
	for _, q := range prTransmissions(t) {
		raw := mustMarshal(t, q.t)
		v.Transmissions = append(v.Transmissions, txVector{
			Name: q.name, Kind: q.t.Command.Kind.String(), Direction: q.dir,
			CorrID: h(q.t.CorrID), EntityID: h(q.t.EntityID), Transmission: h(raw),
		})
	}
	for _, pc := range prCommands() {
		eph := x25519Priv(t, pc.eph)
		inner := Transmission{CorrID: pc.innerCorr, EntityID: prSndID, Command: pc.cmd}
		f, err := newForward(eph, fwd, &inner, sender)
		if err != nil {
			t.Fatal(pc.name, err)
		}
		shared, err := eph.ECDH(fwdPriv.PublicKey())
		if err != nil {
			t.Fatal(err)
		}
		innerRaw, err := inner.Sign(f.keys.sess, sender)
		if err != nil {
			t.Fatal(err)
		}
		digest := signedDigest(signContext, f.keys.sess, innerRaw[1+SignatureSize:])
		pfwd := mustMarshal(t, Transmission{CorrID: pc.pfwdCorr, EntityID: prRouteID, Command: Command{Kind: CmdPFWD, DHKey: f.Eph, Body: f.Sealed}})
		pfwdSum := sha256.Sum256(pfwd)
		layered, err := SealLayer(bytes.NewReader(pc.rfwdNonce), layer, append(f.Eph[:], f.Sealed...))
		if err != nil {
			t.Fatal(err)
		}
		rfwd := mustMarshal(t, Transmission{CorrID: pc.rfwdCorr, Command: Command{Kind: CmdRFWD, Body: layered}})
		// The destination's side, by the code: open, answer, seal.
		opened, err := OpenForward(fwdPriv, f.Eph, f.Sealed)
		if err != nil {
			t.Fatal(pc.name, err)
		}
		answer := mustMarshal(t, Transmission{CorrID: pc.innerCorr, EntityID: prSndID, Command: Command{Kind: pc.answerKind}})
		sealedAns, err := opened.SealAnswer(Command{Kind: pc.answerKind})
		if err != nil {
			t.Fatal(err)
		}
		ansLayered, err := SealLayer(bytes.NewReader(pc.rresNonce), layer, sealedAns)
		if err != nil {
			t.Fatal(err)
		}
		rres := mustMarshal(t, Transmission{CorrID: pc.rfwdCorr, Command: Command{Kind: AnsRRES, Body: ansLayered}})
		pres := mustMarshal(t, Transmission{CorrID: pc.pfwdCorr, EntityID: prRouteID, Command: Command{Kind: AnsPRES, Body: sealedAns}})
		v.Commands = append(v.Commands, forwardCommandVector{
			Name: pc.name, Kind: pc.cmd.Kind.String(),
			ClientEphPrivate: h(pc.eph), ClientEphPublic: h(f.Eph[:]), SharedSecret: h(shared),
			RequestKey: h(f.keys.req[:]), AnswerKey: h(f.keys.ans[:]), SignatureBinding: h(f.keys.sess[:]),
			InnerCorrID: h(pc.innerCorr), InnerEntityID: h(prSndID), Body: h(pc.cmd.Body),
			SignedDigest: h(digest[:]), InnerTransmission: h(innerRaw), Sealed: h(f.Sealed),
			PFWDCorrID: h(pc.pfwdCorr), PFWDPrefix: h(pfwd[:len(pfwd)-len(f.Sealed)]), PFWDSize: len(pfwd), PFWDSHA256: h(pfwdSum[:]),
			RFWDCorrID: h(pc.rfwdCorr), RFWDNonce: h(pc.rfwdNonce), RFWDTransmission: h(rfwd),
			Answer: h(answer), SealedAnswer: h(sealedAns), RRESNonce: h(pc.rresNonce), RRESTransmission: h(rres), PRESTransmission: h(pres),
		})
	}
	return v
}

// TestForwardVectors checks testdata/forward_vectors.json both ways, as
// TestVectors does: the code generates exactly the file, and every entry
// is rebuilt from the file's own inputs with the primitives SPEC.md §12
// names (X25519, HKDF-SHA256, Ed25519, crypto/pad, ChaCha20-Poly1305,
// secretbox); then the destination's and the client's code open what the
// other side sealed.
func TestForwardVectors(t *testing.T) {
	v := checkVectorFile(t, "testdata/forward_vectors.json", buildForwardVectors(t))
	d, p, s := v.Destination, v.Proxy, v.Sender
	if v.Sizes != (forwardSizes{16122, 16138, 128, 144, 40, 16210, 184}) {
		t.Fatalf("sizes: %+v", v.Sizes)
	}

	// The forward key and its signature; the client's check of both.
	identity := ed25519.NewKeyFromSeed(unhex(t, d.IdentitySeed))
	idPub := identity.Public().(ed25519.PublicKey)
	if hex.EncodeToString(idPub) != d.IdentityPublic {
		t.Fatal("identity public key")
	}
	addr, err := ParseAddress(d.Address)
	if err != nil || addr.KeyHash != HashIdentity(idPub) || addr.String() != d.Address {
		t.Fatalf("address: %v", err)
	}
	fwdPrivRaw := unhex(t, d.ForwardPrivate)
	fwd := [KeySize]byte(x25519Public(t, fwdPrivRaw))
	if hex.EncodeToString(fwd[:]) != d.ForwardPublic {
		t.Fatal("forward public key")
	}
	sig := [SignatureSize]byte(unhex(t, d.ForwardKeySig))
	if !ed25519.Verify(idPub, append([]byte("wisp forward key v1"), fwd[:]...), sig[:]) ||
		!bytes.Equal(ed25519.Sign(identity, append([]byte("wisp forward key v1"), fwd[:]...)), sig[:]) {
		t.Fatal("forward key signature")
	}
	if err := VerifyForwardKey(addr.KeyHash, [KeySize]byte(idPub), fwd, sig); err != nil {
		t.Fatal(err)
	}

	// The proxy layer key, from either side.
	proxyEphRaw := unhex(t, p.EphemeralPrivate)
	proxyEphPub := [KeySize]byte(x25519Public(t, proxyEphRaw))
	if hex.EncodeToString(proxyEphPub[:]) != p.EphemeralPublic {
		t.Fatal("proxy ephemeral public key")
	}
	shared, err := curve25519.X25519(proxyEphRaw, fwd[:])
	if err != nil || hex.EncodeToString(shared) != p.LayerShared {
		t.Fatalf("layer shared secret: %v", err)
	}
	if other, _ := curve25519.X25519(fwdPrivRaw, proxyEphPub[:]); !bytes.Equal(other, shared) {
		t.Fatal("layer shared secret from the destination's side")
	}
	lk, err := hkdf.Key(sha256.New, shared, append(proxyEphPub[:], fwd[:]...), "wisp forward layer v1", 32)
	if err != nil || hex.EncodeToString(lk) != p.LayerKey {
		t.Fatalf("layer key: %v", err)
	}
	layer := (*[32]byte)(lk)
	fwdPriv := x25519Priv(t, fwdPrivRaw)
	if dk, err := LayerKey(fwdPriv, proxyEphPub, proxyEphPub, fwd); err != nil || *dk != *layer {
		t.Fatalf("LayerKey on the destination: %v", err)
	}
	if pk, err := LayerKey(x25519Priv(t, proxyEphRaw), fwd, proxyEphPub, fwd); err != nil || *pk != *layer {
		t.Fatalf("LayerKey on the proxy: %v", err)
	}
	route := unhex(t, p.RouteID)
	sender := ed25519.NewKeyFromSeed(unhex(t, s.AuthSeed))
	sPub := sender.Public().(ed25519.PublicKey)
	if hex.EncodeToString(sPub) != s.AuthPublic || len(route) != RouteIDSize {
		t.Fatal("sender key or route ID")
	}
	sndID := unhex(t, s.SenderID)

	// The route's transmissions: exact bytes from the inputs, parse and
	// encode back.
	for _, tv := range v.Transmissions {
		raw := unhex(t, tv.Transmission)
		tr, err := ParseTransmission(raw)
		if err != nil || tr.Command.Kind.String() != tv.Kind || tr.Signature != nil {
			t.Fatalf("%s: %v", tv.Name, err)
		}
		if hex.EncodeToString(tr.CorrID) != tv.CorrID || hex.EncodeToString(tr.EntityID) != tv.EntityID {
			t.Fatalf("%s: corrID or entity ID", tv.Name)
		}
		if tr.Command.Kind.FromClient() != (tv.Direction == c2p || tv.Direction == p2d) {
			t.Fatalf("%s: direction", tv.Name)
		}
		if again := mustMarshal(t, Transmission{CorrID: tr.CorrID, EntityID: tr.EntityID, Command: tr.Command}); !bytes.Equal(again, raw) {
			t.Fatalf("%s: does not encode back", tv.Name)
		}
		env := bytes.Join([][]byte{{0, byte(len(tr.CorrID))}, tr.CorrID, {byte(len(tr.EntityID))}, tr.EntityID, []byte(tv.Kind + " ")}, nil)
		var args []byte
		switch tr.Command.Kind {
		case CmdPRXY:
			a := []byte(d.Address)
			pw := unhex(t, p.Password)
			args = bytes.Join([][]byte{{byte(len(a))}, a, {byte(len(pw))}, pw}, nil)
		case CmdRKEY:
			args = proxyEphPub[:]
		case AnsFKEY:
			args = bytes.Join([][]byte{idPub, fwd[:], sig[:]}, nil)
		case AnsPKEY:
			args = bytes.Join([][]byte{route, idPub, fwd[:], sig[:]}, nil)
			if !bytes.Equal(tr.CorrID, unhex(t, v.Transmissions[0].CorrID)) {
				t.Fatal("PKEY does not answer PRXY")
			}
		case AnsERR:
			args = []byte(tr.Command.Code.String())
			if !bytes.Equal(tr.EntityID, route) {
				t.Fatalf("%s: not on the route", tv.Name)
			}
		default:
			t.Fatalf("%s: unexpected kind", tv.Name)
		}
		if !bytes.Equal(raw, append(env, args...)) {
			t.Fatalf("%s: bytes", tv.Name)
		}
	}

	for _, cv := range v.Commands {
		what := cv.Name
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

		// The inner transmission: signed over the binding (§4 digest).
		innerRaw := unhex(t, cv.InnerTransmission)
		corrID, body := unhex(t, cv.InnerCorrID), unhex(t, cv.Body)
		unsigned := bytes.Join([][]byte{{byte(len(corrID))}, corrID, {IDSize}, sndID, []byte(cv.Kind)}, nil)
		switch cv.Kind {
		case "SKEY":
			unsigned = append(append(unsigned, ' '), sPub...)
		case "SEND":
			unsigned = append(append(unsigned, ' '), body...)
		default:
			t.Fatalf("%s: inner kind %s", what, cv.Kind)
		}
		h := sha256.New()
		h.Write([]byte("wisp transmission v1"))
		h.Write(binding[:])
		h.Write(unsigned)
		digest := h.Sum(nil)
		if hex.EncodeToString(digest) != cv.SignedDigest || hex.EncodeToString(sndID) != cv.InnerEntityID {
			t.Fatalf("%s: signed digest", what)
		}
		if !bytes.Equal(innerRaw, bytes.Join([][]byte{{SignatureSize}, ed25519.Sign(sender, digest), unsigned}, nil)) {
			t.Fatalf("%s: inner transmission", what)
		}

		// Sealed: Pad to 16,122, ChaCha20-Poly1305 under the request key,
		// zero nonce.
		padded, err := pad.Pad(innerRaw, ForwardPlainSize)
		if err != nil {
			t.Fatal(err)
		}
		sealed := chachaSeal(t, k[:32], padded)
		if !bytes.Equal(sealed, unhex(t, cv.Sealed)) || len(sealed) != 16138 {
			t.Fatalf("%s: sealed", what)
		}

		// PFWD (client → proxy), RFWD (proxy → destination).
		pfwdPrefix := bytes.Join([][]byte{{0, byte(len(unhex(t, cv.PFWDCorrID)))}, unhex(t, cv.PFWDCorrID), {RouteIDSize}, route, []byte("PFWD "), eph[:]}, nil)
		pfwd := append(bytes.Clone(pfwdPrefix), sealed...)
		pfwdSum := sha256.Sum256(pfwd)
		if hex.EncodeToString(pfwdPrefix) != cv.PFWDPrefix || len(pfwd) != cv.PFWDSize || hex.EncodeToString(pfwdSum[:]) != cv.PFWDSHA256 {
			t.Fatalf("%s: PFWD", what)
		}
		nonce := [24]byte(unhex(t, cv.RFWDNonce))
		layered := secretbox.Seal(nonce[:], append(eph[:], sealed...), &nonce, layer)
		rfwdCorr := unhex(t, cv.RFWDCorrID)
		rfwd := bytes.Join([][]byte{{0, byte(len(rfwdCorr))}, rfwdCorr, {0}, []byte("RFWD "), layered}, nil)
		if !bytes.Equal(rfwd, unhex(t, cv.RFWDTransmission)) || len(layered) != ForwardLayerSize {
			t.Fatalf("%s: RFWD", what)
		}

		// The proxy parses PFWD and wraps its arguments as RFWD.
		ptr, err := ParseTransmission(pfwd)
		if err != nil || ptr.Command.Kind != CmdPFWD || ptr.Command.DHKey != eph || !bytes.Equal(ptr.Command.Body, sealed) || !bytes.Equal(ptr.EntityID, route) {
			t.Fatalf("%s: PFWD does not parse: %v", what, err)
		}
		if again, err := SealLayer(bytes.NewReader(nonce[:]), layer, append(ptr.Command.DHKey[:], ptr.Command.Body...)); err != nil || !bytes.Equal(again, layered) {
			t.Fatalf("%s: SealLayer: %v", what, err)
		}

		// The destination: parse RFWD, open the layer and the command,
		// verify the signature against the binding, answer.
		dtr, err := ParseTransmission(rfwd)
		if err != nil || dtr.Command.Kind != CmdRFWD || len(dtr.EntityID) != 0 {
			t.Fatalf("%s: RFWD does not parse: %v", what, err)
		}
		inner, err := OpenLayer(layer, dtr.Command.Body)
		if err != nil || !bytes.Equal(inner, append(eph[:], sealed...)) {
			t.Fatalf("%s: OpenLayer: %v", what, err)
		}
		f, err := OpenForward(fwdPriv, [KeySize]byte(inner[:KeySize]), inner[KeySize:])
		if err != nil {
			t.Fatalf("%s: OpenForward: %v", what, err)
		}
		if f.SessionID != binding || f.T.Command.Kind.String() != cv.Kind || !bytes.Equal(f.T.EntityID, sndID) || !bytes.Equal(f.T.CorrID, corrID) {
			t.Fatalf("%s: opened command", what)
		}
		if !f.T.Verify(f.SessionID, sPub) {
			t.Fatalf("%s: signature does not verify against the binding", what)
		}
		var sid [32]byte
		if f.T.Verify(sid, sPub) {
			t.Fatalf("%s: signature verifies outside its binding", what)
		}

		// The answer: unsigned, corrID and entity ID of the command, Pad
		// to 128, ChaCha20-Poly1305 under the answer key, zero nonce.
		answer := unhex(t, cv.Answer)
		atr, err := ParseTransmission(answer)
		if err != nil || atr.Signature != nil || !bytes.Equal(atr.CorrID, corrID) || !bytes.Equal(atr.EntityID, sndID) {
			t.Fatalf("%s: answer transmission: %v", what, err)
		}
		apadded, err := pad.Pad(answer, AnswerPlainSize)
		if err != nil {
			t.Fatal(err)
		}
		sealedAns := chachaSeal(t, k[32:64], apadded)
		if !bytes.Equal(sealedAns, unhex(t, cv.SealedAnswer)) || len(sealedAns) != 144 {
			t.Fatalf("%s: sealed answer", what)
		}
		if got, err := f.SealAnswer(atr.Command); err != nil || !bytes.Equal(got, sealedAns) {
			t.Fatalf("%s: SealAnswer: %v", what, err)
		}
		anonce := [24]byte(unhex(t, cv.RRESNonce))
		ansLayered := secretbox.Seal(anonce[:], sealedAns, &anonce, layer)
		rres := bytes.Join([][]byte{{0, byte(len(rfwdCorr))}, rfwdCorr, {0}, []byte("RRES "), ansLayered}, nil)
		if !bytes.Equal(rres, unhex(t, cv.RRESTransmission)) || len(ansLayered) != AnswerLayerSize {
			t.Fatalf("%s: RRES", what)
		}
		pfwdCorr := unhex(t, cv.PFWDCorrID)
		pres := bytes.Join([][]byte{{0, byte(len(pfwdCorr))}, pfwdCorr, {RouteIDSize}, route, []byte("PRES "), sealedAns}, nil)
		if !bytes.Equal(pres, unhex(t, cv.PRESTransmission)) {
			t.Fatalf("%s: PRES", what)
		}

		// The proxy opens RRES's layer into PRES; the client opens PRES.
		rtr, err := ParseTransmission(rres)
		if err != nil || rtr.Command.Kind != AnsRRES {
			t.Fatalf("%s: RRES does not parse: %v", what, err)
		}
		if out, err := OpenLayer(layer, rtr.Command.Body); err != nil || !bytes.Equal(out, sealedAns) {
			t.Fatalf("%s: OpenLayer of RRES: %v", what, err)
		}
		ctr, err := ParseTransmission(pres)
		if err != nil || ctr.Command.Kind != AnsPRES || !bytes.Equal(ctr.Command.Body, sealedAns) {
			t.Fatalf("%s: PRES does not parse: %v", what, err)
		}
		cf, err := newForward(x25519Priv(t, ephRaw), fwd, &Transmission{CorrID: corrID, EntityID: sndID, Command: f.T.Command}, sender)
		if err != nil || cf.Eph != eph || !bytes.Equal(cf.Sealed, sealed) {
			t.Fatalf("%s: the client's Forward: %v", what, err)
		}
		got, err := cf.OpenAnswer(ctr.Command.Body)
		if err != nil || got.Kind != atr.Command.Kind {
			t.Fatalf("%s: OpenAnswer: %v %s", what, err, got.Kind)
		}
	}
}

func chachaSeal(t testing.TB, key, plain []byte) []byte {
	t.Helper()
	aead, err := chacha20poly1305.New(key)
	if err != nil {
		t.Fatal(err)
	}
	return aead.Seal(nil, make([]byte, chacha20poly1305.NonceSize), plain, nil)
}
