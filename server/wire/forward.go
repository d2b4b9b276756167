package wire

import (
	"crypto/ecdh"
	"crypto/ed25519"
	"crypto/hkdf"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/binary"
	"fmt"
	"io"

	"github.com/wisp-chat/wisp/crypto/pad"
	"golang.org/x/crypto/chacha20poly1305"
	"golang.org/x/crypto/nacl/secretbox"
)

// Private routing (SPEC.md §12): a client sends SKEY and SEND for a
// queue on a relay it did not choose (the destination) through a relay it
// did choose (the proxy), so the destination never sees its address.
//
//	client ──PRXY dest──▶ proxy ──RKEY──▶ destination     (once per destination)
//	client ◀──PKEY─────── proxy ◀──FKEY── destination     (signed forward key)
//	client ──PFWD──────▶ proxy ──RFWD──▶ destination      (per command)
//	client ◀──PRES────── proxy ◀──RRES── destination
//
// The client checks the forward key's signature against the key hash in
// the destination's address (VerifyForwardKey), then seals each command
// to it with a fresh ephemeral key (NewForward); the destination opens it
// (OpenForward) and seals the answer back (SealAnswer). The proxy adds its
// own layer (SealLayer) under a key it shares with the destination
// (LayerKey) and learns neither the command nor its queue.

// Sizes of the forwarding layers.
const (
	// ForwardPlainSize is the padded size of a forwarded transmission:
	// the 2-byte length and the largest signed SEND (1 + 64 + 1 + 24 +
	// 1 + 24 + "SEND " + 16,000 = 16,120 bytes).
	ForwardPlainSize = pad.PrefixSize + 1 + SignatureSize + 1 + MaxCorrIDSize + 1 + IDSize + 5 + MaxBodySize
	// ForwardSealedSize is a sealed forwarded transmission (ChaCha20-Poly1305).
	ForwardSealedSize = ForwardPlainSize + chacha20poly1305.Overhead
	// AnswerPlainSize is the padded size of a forwarded command's answer.
	AnswerPlainSize = 128
	// AnswerSealedSize is a sealed answer.
	AnswerSealedSize = AnswerPlainSize + chacha20poly1305.Overhead
	// LayerOverhead is what the proxy's layer adds: a 24-byte nonce and
	// the 16-byte secretbox tag.
	LayerOverhead = 24 + secretbox.Overhead
	// RouteIDSize is the size of the proxy's route ID (the PFWD entity).
	RouteIDSize = IDSize
	// MaxAddressText bounds the destination address in PRXY.
	MaxAddressText = 255
)

// Domain separation strings of private routing.
const (
	forwardKeyContext = "wisp forward key v1"
	forwardInfo       = "wisp forward v1"
	layerInfo         = "wisp forward layer v1"
)

// SignForwardKey signs a destination's forward key with its identity key
// (the FKEY answer's signature).
func SignForwardKey(identity ed25519.PrivateKey, fwd [KeySize]byte) [SignatureSize]byte {
	var sig [SignatureSize]byte
	copy(sig[:], ed25519.Sign(identity, append([]byte(forwardKeyContext), fwd[:]...)))
	return sig
}

// VerifyForwardKey checks, on the client, that the identity key a proxy
// returned is the one the destination's address names (constant time)
// and that it signed the forward key. Errors wrap ErrIdentity or
// ErrSignature.
func VerifyForwardKey(want KeyHash, identity, fwd [KeySize]byte, sig [SignatureSize]byte) error {
	got := HashIdentity(identity[:])
	if subtle.ConstantTimeCompare(got[:], want[:]) != 1 {
		return fmt.Errorf("%w: the proxy returned another relay's key", ErrIdentity)
	}
	if !ed25519.Verify(identity[:], append([]byte(forwardKeyContext), fwd[:]...), sig[:]) {
		return fmt.Errorf("%w: forward key", ErrSignature)
	}
	return nil
}

// LayerKey is the key of the proxy's layer between proxy and destination:
// HKDF-SHA256 of X25519(proxy ephemeral, forward key), salted with both
// public keys. The proxy calls it with its ephemeral private key and the
// forward key, the destination with the forward private key and the
// proxy's ephemeral public key.
func LayerKey(priv *ecdh.PrivateKey, peer [KeySize]byte, proxyEph, fwd [KeySize]byte) (*[32]byte, error) {
	k, err := agree(priv, peer, proxyEph, fwd, layerInfo, 32)
	if err != nil {
		return nil, err
	}
	var out [32]byte
	copy(out[:], k)
	return &out, nil
}

// agree runs X25519 and HKDF-SHA256 with salt eph || fwd.
func agree(priv *ecdh.PrivateKey, peer [KeySize]byte, eph, fwd [KeySize]byte, info string, n int) ([]byte, error) {
	pub, err := ecdh.X25519().NewPublicKey(peer[:])
	if err != nil {
		return nil, fmt.Errorf("%w: forward key", ErrCommand)
	}
	shared, err := priv.ECDH(pub)
	if err != nil || allZero(shared) {
		return nil, fmt.Errorf("%w: low-order forward key", ErrCommand)
	}
	salt := append(append(make([]byte, 0, 2*KeySize), eph[:]...), fwd[:]...)
	return hkdf.Key(sha256.New, shared, salt, info, n)
}

// SealLayer seals b under the proxy layer key with a random nonce:
// nonce (24) || secretbox(b).
func SealLayer(rand io.Reader, key *[32]byte, b []byte) ([]byte, error) {
	var nonce [24]byte
	if _, err := io.ReadFull(rand, nonce[:]); err != nil {
		return nil, err
	}
	return secretbox.Seal(nonce[:], b, &nonce, key), nil
}

// OpenLayer opens what SealLayer sealed. Errors wrap ErrDecrypt.
func OpenLayer(key *[32]byte, b []byte) ([]byte, error) {
	if len(b) < LayerOverhead {
		return nil, fmt.Errorf("%w: layer is %d bytes", ErrDecrypt, len(b))
	}
	var nonce [24]byte
	copy(nonce[:], b)
	out, ok := secretbox.Open(nil, b[24:], &nonce, key)
	if !ok {
		return nil, fmt.Errorf("%w: proxy layer", ErrDecrypt)
	}
	return out, nil
}

// forwardKeys are what one command's key agreement gives: the request
// and answer keys (each used once, so the nonce is zero) and the 32 bytes
// that stand for the session ID in the forwarded transmission's signature.
type forwardKeys struct {
	req, ans, sess [32]byte
}

func deriveForward(priv *ecdh.PrivateKey, peer, eph, fwd [KeySize]byte) (forwardKeys, error) {
	var k forwardKeys
	b, err := agree(priv, peer, eph, fwd, forwardInfo, 96)
	if err != nil {
		return k, err
	}
	copy(k.req[:], b[0:32])
	copy(k.ans[:], b[32:64])
	copy(k.sess[:], b[64:96])
	clear(b)
	return k, nil
}

// padWide pads like a file frame: length (4) || msg || zero bytes, for
// forwarded file answers, which are longer than crypto/pad's 2-byte length
// can say.
func padWide(msg []byte, size int) ([]byte, error) {
	if len(msg) > size-frameLenSize {
		return nil, fmt.Errorf("%w: %d bytes into %d", ErrTooLarge, len(msg), size)
	}
	out := make([]byte, size)
	binary.BigEndian.PutUint32(out, uint32(len(msg)))
	copy(out[frameLenSize:], msg)
	return out, nil
}

func unpadWide(b []byte) ([]byte, error) {
	if len(b) < frameLenSize {
		return nil, fmt.Errorf("%w: padded part too short", ErrDecrypt)
	}
	n := binary.BigEndian.Uint32(b)
	if uint64(n) > uint64(len(b)-frameLenSize) || !allZero(b[frameLenSize+int(n):]) {
		return nil, fmt.Errorf("%w: bad length or fill", ErrDecrypt)
	}
	return b[frameLenSize : frameLenSize+int(n)], nil
}

// sealOnce pads plain to size (crypto/pad's 2-byte length, or padWide's
// 4-byte one when wide) and seals it with a key used once.
func sealOnce(key *[32]byte, plain []byte, size int, wide bool) ([]byte, error) {
	var padded []byte
	var err error
	if wide {
		padded, err = padWide(plain, size)
	} else {
		padded, err = pad.Pad(plain, size)
	}
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrTooLarge, err)
	}
	aead, err := chacha20poly1305.New(key[:])
	if err != nil {
		return nil, err
	}
	return aead.Seal(padded[:0], zeroNonce[:], padded, nil), nil
}

func openOnce(key *[32]byte, sealed []byte, size int, wide bool) ([]byte, error) {
	if len(sealed) != size+chacha20poly1305.Overhead {
		return nil, fmt.Errorf("%w: sealed part is %d bytes, want %d", ErrDecrypt, len(sealed), size+chacha20poly1305.Overhead)
	}
	aead, err := chacha20poly1305.New(key[:])
	if err != nil {
		return nil, err
	}
	plain, err := aead.Open(nil, zeroNonce[:], sealed, nil)
	if err != nil {
		return nil, fmt.Errorf("%w: forwarded part", ErrDecrypt)
	}
	if wide {
		return unpadWide(plain)
	}
	out, err := pad.Unpad(plain)
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrDecrypt, err)
	}
	return out, nil
}

// Sizes of forwarded file commands (FGET and FACK). Their plaintexts are
// padded like a file frame's payload (a 4-byte length, padWide), since a
// forwarded chunk is longer than crypto/pad's 2-byte length can say.
const (
	// FileForwardPlainSize is the padded size of a forwarded file
	// transmission: the 4-byte length and the largest signed FGET or FACK
	// (1 + 64 + 1 + 24 + 1 + 24 + 4 = 119 bytes), rounded up.
	FileForwardPlainSize = 256
	// FileForwardSealedSize is a sealed forwarded file transmission.
	FileForwardSealedSize = FileForwardPlainSize + chacha20poly1305.Overhead
	// FileForwardLayerSize is the file RFWD's data: the proxy's layer
	// around the ephemeral key and the sealed command.
	FileForwardLayerSize = LayerOverhead + KeySize + FileForwardSealedSize
	// fileAnswerMargin is what a forwarded answer of a chunk class holds
	// beyond the chunk: the CHUNK transmission around the sealed chunk
	// (1 + 1 + 24 + 1 + 24 + "CHUNK " + 40 = 97 bytes) and the length.
	fileAnswerMargin = 256
)

// FileAnswerPlainSize is the padded size of a forwarded file command's
// answer when the client asked for the class: AnswerPlainSize for
// ClassControl (FACK, or an FGET's error), the chunk size + 256 otherwise.
func FileAnswerPlainSize(c ChunkClass) int {
	if c == ClassControl {
		return AnswerPlainSize
	}
	return c.Size() + fileAnswerMargin
}

// FileAnswerSealedSize is FileAnswerPlainSize with the AEAD tag.
func FileAnswerSealedSize(c ChunkClass) int {
	return FileAnswerPlainSize(c) + chacha20poly1305.Overhead
}

// Forward is one command a client forwards: PFWD's arguments and the key
// that opens the answer.
type Forward struct {
	Eph     [KeySize]byte // the ephemeral public key (PFWD)
	Sealed  []byte        // ForwardSealedSize or FileForwardSealedSize bytes (PFWD)
	corrID  []byte
	entity  []byte
	keys    forwardKeys
	ansSize int
	wide    bool // a file command: 4-byte lengths (padWide)
}

// NewForward seals t, signed by key (nil: unsigned), for the destination
// whose verified forward key is fwd. The signature is bound to this one
// forwarded command instead of a session.
func NewForward(rand io.Reader, fwd [KeySize]byte, t *Transmission, key ed25519.PrivateKey) (*Forward, error) {
	eph, err := ecdh.X25519().GenerateKey(rand)
	if err != nil {
		return nil, err
	}
	return newForward(eph, fwd, t, key)
}

func newForward(eph *ecdh.PrivateKey, fwd [KeySize]byte, t *Transmission, key ed25519.PrivateKey) (*Forward, error) {
	return sealForward(eph, fwd, t.CorrID, t.EntityID, ForwardPlainSize, AnswerPlainSize, false, func(sess [32]byte) ([]byte, error) {
		if key != nil {
			return t.Sign(sess, key)
		}
		return t.Marshal()
	})
}

// NewFileForward seals a file transmission (FGET or FACK) signed by key
// for the destination's file endpoint; class is the class of the answer
// the client asks for (the chunk's for FGET, ClassControl for FACK).
func NewFileForward(rand io.Reader, fwd [KeySize]byte, class ChunkClass, t *FileTransmission, key ed25519.PrivateKey) (*Forward, error) {
	eph, err := ecdh.X25519().GenerateKey(rand)
	if err != nil {
		return nil, err
	}
	return newFileForward(eph, fwd, class, t, key)
}

func newFileForward(eph *ecdh.PrivateKey, fwd [KeySize]byte, class ChunkClass, t *FileTransmission, key ed25519.PrivateKey) (*Forward, error) {
	if !class.Valid() && class != ClassControl {
		return nil, fmt.Errorf("%w: chunk class %d", ErrCommand, class)
	}
	return sealForward(eph, fwd, t.CorrID, t.EntityID, FileForwardPlainSize, FileAnswerPlainSize(class), true, func(sess [32]byte) ([]byte, error) {
		if key != nil {
			return t.Sign(sess, key)
		}
		return t.Marshal()
	})
}

func sealForward(eph *ecdh.PrivateKey, fwd [KeySize]byte, corrID, entity []byte, size, ansSize int, wide bool, encode func(sess [32]byte) ([]byte, error)) (*Forward, error) {
	f := &Forward{corrID: corrID, entity: entity, ansSize: ansSize, wide: wide}
	copy(f.Eph[:], eph.PublicKey().Bytes())
	var err error
	f.keys, err = deriveForward(eph, fwd, f.Eph, fwd)
	if err != nil {
		return nil, err
	}
	raw, err := encode(f.keys.sess)
	if err != nil {
		return nil, err
	}
	f.Sealed, err = sealOnce(&f.keys.req, raw, size, wide)
	return f, err
}

// openAnswer opens the sealed answer and checks its envelope: unsigned,
// and for this command (same corrID and entity ID).
func (f *Forward) openAnswer(sealed []byte) ([]byte, error) {
	raw, err := openOnce(&f.keys.ans, sealed, f.ansSize, f.wide)
	if err != nil {
		return nil, err
	}
	env, _, err := parseEnvelope(raw)
	if err != nil {
		return nil, err
	}
	if env.sig != nil || subtle.ConstantTimeCompare(env.corrID, f.corrID) != 1 || subtle.ConstantTimeCompare(env.entityID, f.entity) != 1 {
		return nil, fmt.Errorf("%w: the answer is not for this command", ErrTransmission)
	}
	return raw, nil
}

// OpenAnswer opens the destination's sealed answer (PRES) and checks that
// it answers this command (same corrID and entity ID). Errors wrap
// ErrDecrypt or ErrTransmission.
func (f *Forward) OpenAnswer(sealed []byte) (Command, error) {
	raw, err := f.openAnswer(sealed)
	if err != nil {
		return Command{}, err
	}
	t, err := ParseTransmission(raw)
	if err != nil {
		return Command{}, err
	}
	if t.Command.Kind.FromClient() {
		return Command{}, fmt.Errorf("%w: %s is not an answer", ErrCommand, t.Command.Kind)
	}
	return t.Command, nil
}

// OpenFileAnswer is OpenAnswer for a forwarded file command.
func (f *Forward) OpenFileAnswer(sealed []byte) (FileCommand, error) {
	raw, err := f.openAnswer(sealed)
	if err != nil {
		return FileCommand{}, err
	}
	t, err := ParseFileTransmission(raw)
	if err != nil {
		return FileCommand{}, err
	}
	if t.Command.Kind.FromClient() {
		return FileCommand{}, fmt.Errorf("%w: %s is not an answer", ErrCommand, t.Command.Kind)
	}
	return t.Command, nil
}

// Forwarded is a forwarded command the destination opened.
type Forwarded struct {
	// T (queue endpoint) or FT (file endpoint) is the transmission;
	// verify its signature against SessionID.
	T         Transmission
	FT        FileTransmission
	SessionID [32]byte
	keys      forwardKeys
	ansSize   int
	wide      bool
}

// OpenForward opens a forwarded command with the destination's forward
// key pair. Errors wrap ErrCommand (a low-order ephemeral key), ErrDecrypt
// (it was not sealed to this key), or the parse errors of
// ParseTransmission (then T has what could be read and SealAnswer works).
func OpenForward(fwd *ecdh.PrivateKey, eph [KeySize]byte, sealed []byte) (*Forwarded, error) {
	f, raw, err := openForward(fwd, eph, sealed, ForwardPlainSize, AnswerPlainSize, false)
	if err != nil {
		return nil, err
	}
	f.T, err = ParseTransmission(raw)
	return f, err
}

// OpenFileForward is OpenForward on the file endpoint; class is the
// answer's class from RFWD.
func OpenFileForward(fwd *ecdh.PrivateKey, class ChunkClass, eph [KeySize]byte, sealed []byte) (*Forwarded, error) {
	if !class.Valid() && class != ClassControl {
		return nil, fmt.Errorf("%w: chunk class %d", ErrCommand, class)
	}
	f, raw, err := openForward(fwd, eph, sealed, FileForwardPlainSize, FileAnswerPlainSize(class), true)
	if err != nil {
		return nil, err
	}
	f.FT, err = ParseFileTransmission(raw)
	return f, err
}

func openForward(fwd *ecdh.PrivateKey, eph [KeySize]byte, sealed []byte, size, ansSize int, wide bool) (*Forwarded, []byte, error) {
	var fwdPub [KeySize]byte
	copy(fwdPub[:], fwd.PublicKey().Bytes())
	keys, err := deriveForward(fwd, eph, eph, fwdPub)
	if err != nil {
		return nil, nil, err
	}
	raw, err := openOnce(&keys.req, sealed, size, wide)
	if err != nil {
		return nil, nil, err
	}
	return &Forwarded{SessionID: keys.sess, keys: keys, ansSize: ansSize, wide: wide}, raw, nil
}

// answerIDs are the IDs an answer echoes: none when the command's own
// could not be read (broken framing), as for ERR BLOCK on a session.
func answerIDs(corr, ent []byte) ([]byte, []byte) {
	if len(corr) > MaxCorrIDSize || (len(ent) != 0 && len(ent) != IDSize) {
		return nil, nil
	}
	return corr, ent
}

// SealAnswer seals the answer to a forwarded command (corrID and entity
// ID echoed from the command) for the client.
func (f *Forwarded) SealAnswer(ans Command) ([]byte, error) {
	corr, ent := answerIDs(f.T.CorrID, f.T.EntityID)
	t := Transmission{CorrID: corr, EntityID: ent, Command: ans}
	raw, err := t.Marshal()
	if err != nil {
		return nil, err
	}
	return sealOnce(&f.keys.ans, raw, f.ansSize, f.wide)
}

// SealFileAnswer seals the answer to a forwarded file command. An answer
// that does not fit the class the client asked for is ErrTooLarge.
func (f *Forwarded) SealFileAnswer(ans FileCommand) ([]byte, error) {
	corr, ent := answerIDs(f.FT.CorrID, f.FT.EntityID)
	t := FileTransmission{CorrID: corr, EntityID: ent, Command: ans}
	raw, err := t.Marshal()
	if err != nil {
		return nil, err
	}
	return sealOnce(&f.keys.ans, raw, f.ansSize, f.wide)
}
