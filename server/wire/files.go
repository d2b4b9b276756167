package wire

import (
	"bytes"
	"crypto/ed25519"
	"crypto/rand"
	"encoding/binary"
	"errors"
	"fmt"

	"golang.org/x/crypto/nacl/box"
)

// File chunk limits (SPEC.md, "File chunks").
const (
	// MaxChunkRecipients bounds the recipients of one chunk; clients pad
	// their count to a power of two with dummy recipients.
	MaxChunkRecipients = 128
	// ChunkNonceSize is the size of the nonce in front of a sealed chunk.
	ChunkNonceSize = 24
	// ChunkSealOverhead is what relay re-encryption adds to a chunk.
	ChunkSealOverhead = ChunkNonceSize + box.Overhead
)

// fileSignContext separates file transmission signatures from queue ones.
const fileSignContext = "wisp file transmission v1"

// ChunkID is a sender or recipient ID of a chunk: 24 random bytes from the
// relay, with no relation between the IDs of one chunk.
type ChunkID [IDSize]byte

// FileKind is a command or answer of the file chunk protocol.
type FileKind uint8

// File commands (client → relay) and answers (relay → client). The PING,
// OK, PONG and ERR tags are the queue protocol's.
const (
	CmdFNEW FileKind = iota + 1
	CmdFPUT
	CmdFGET
	CmdFACK
	CmdFDEL
	CmdFPING
	AnsFIDS
	AnsFOK
	AnsCHUNK
	AnsFPONG
	AnsFERR
	// Private routing of FGET and FACK (forward.go, SPEC.md §12.6).
	CmdFPRXY // client → proxy: open a route to a destination's file endpoint
	CmdFPFWD // client → proxy: forward a sealed FGET or FACK
	CmdFRKEY // proxy → destination: ask for the session's forward key
	CmdFRFWD // proxy → destination: a forwarded command
	AnsFPKEY // proxy → client: route ID and the signed forward key
	AnsFPRES // proxy → client: the sealed answer, in a frame of the class
	AnsFFKEY // destination → proxy: the signed forward key
	AnsFRRES // destination → proxy: the sealed answer in the proxy's layer
)

var fileKindNames = [...]string{"", "FNEW", "FPUT", "FGET", "FACK", "FDEL", "PING", "FIDS", "OK", "CHUNK", "PONG", "ERR",
	"PRXY", "PFWD", "RKEY", "RFWD", "PKEY", "PRES", "FKEY", "RRES"}

// String returns the wire tag.
func (k FileKind) String() string {
	if k == 0 || int(k) >= len(fileKindNames) {
		return fmt.Sprintf("FileKind(%d)", uint8(k))
	}
	return fileKindNames[k]
}

// FromClient reports whether clients send this kind.
func (k FileKind) FromClient() bool {
	return (k >= CmdFNEW && k <= CmdFPING) || (k >= CmdFPRXY && k <= CmdFRFWD)
}

// ChunkRecipientKey is one recipient's public keys in FNEW.
type ChunkRecipientKey struct {
	Auth [KeySize]byte // Ed25519: signs FGET and FACK
	DH   [KeySize]byte // X25519: with RelayDH, keys the download box
}

// ChunkRecipientID is one recipient's ID and the relay's X25519 key for
// it, in FIDS (same order as the keys in FNEW).
type ChunkRecipientID struct {
	ID      ChunkID
	RelayDH [KeySize]byte
}

// FileCommand is one file command or answer. Which fields are used
// depends on Kind:
//
//	FNEW  Class, AuthKey (sender Ed25519), Recipients, Password
//	FIDS  SndID, RcvIDs
//	FPUT  Data (the chunk, exactly Class.Size() bytes)
//	CHUNK Data (SealChunk output)
//	ERR   Code
//	PRXY  Fwd.Relay, Password (entity and signature: a queue of the client's on this relay)
//	PKEY  Fwd.Route, Fwd.Identity, Fwd.DHKey, Fwd.KeySig
//	PFWD  Class (of the answer), Fwd.DHKey (client ephemeral), Data (FileForwardSealedSize)
//	PRES  Data (FileAnswerSealedSize(class)), in a frame of the class
//	RKEY  Fwd.DHKey (proxy ephemeral)
//	FKEY  Fwd.Identity, Fwd.DHKey, Fwd.KeySig
//	RFWD  Class, Data (FileForwardLayerSize)
//	RRES  Data (FileAnswerSealedSize(class) + LayerOverhead), in a frame of the class
type FileCommand struct {
	Kind       FileKind
	Class      ChunkClass
	AuthKey    [KeySize]byte
	Recipients []ChunkRecipientKey
	Password   []byte
	SndID      ChunkID
	RcvIDs     []ChunkRecipientID
	Data       []byte
	Code       ErrCode
	// Fwd holds the private-routing fields shared with the queue
	// protocol's commands of the same names.
	Fwd Command
}

func isPowerOfTwo(n int) bool { return n > 0 && n&(n-1) == 0 }

// appendFileCommand appends the wire form of c.
func appendFileCommand(dst []byte, c *FileCommand) ([]byte, error) {
	if c.Kind == 0 || int(c.Kind) >= len(fileKindNames) {
		return nil, fmt.Errorf("%w: kind %d", ErrCommand, c.Kind)
	}
	dst = append(dst, c.Kind.String()...)
	switch c.Kind {
	case CmdFNEW:
		n := len(c.Recipients)
		switch {
		case !c.Class.Valid():
			return nil, fmt.Errorf("%w: chunk class %d", ErrCommand, c.Class)
		case !isPowerOfTwo(n) || n > MaxChunkRecipients:
			return nil, fmt.Errorf("%w: %d recipients", ErrCommand, n)
		case len(c.Password) > MaxPasswordSize:
			return nil, fmt.Errorf("%w: password", ErrTooLarge)
		}
		dst = append(dst, ' ', byte(c.Class))
		dst = append(dst, c.AuthKey[:]...)
		dst = binary.BigEndian.AppendUint16(dst, uint16(n))
		for _, r := range c.Recipients {
			dst = append(dst, r.Auth[:]...)
			dst = append(dst, r.DH[:]...)
		}
		dst = append(dst, byte(len(c.Password)))
		dst = append(dst, c.Password...)
	case AnsFIDS:
		n := len(c.RcvIDs)
		if !isPowerOfTwo(n) || n > MaxChunkRecipients {
			return nil, fmt.Errorf("%w: %d recipient IDs", ErrCommand, n)
		}
		dst = append(dst, ' ')
		dst = append(dst, c.SndID[:]...)
		dst = binary.BigEndian.AppendUint16(dst, uint16(n))
		for _, r := range c.RcvIDs {
			dst = append(dst, r.ID[:]...)
			dst = append(dst, r.RelayDH[:]...)
		}
	case CmdFPUT, AnsCHUNK:
		if len(c.Data) > MaxChunkSize+ChunkSealOverhead {
			return nil, fmt.Errorf("%w: %d bytes of chunk data", ErrTooLarge, len(c.Data))
		}
		dst = append(dst, ' ')
		dst = append(dst, c.Data...)
	case AnsFERR:
		if _, ok := parseCode(c.Code.String()); !ok {
			return nil, fmt.Errorf("%w: error code %d", ErrCommand, c.Code)
		}
		dst = append(dst, ' ')
		dst = append(dst, c.Code.String()...)
	case CmdFPRXY, AnsFPKEY, CmdFRKEY, AnsFFKEY:
		q := c.Fwd
		q.Kind = map[FileKind]Kind{CmdFPRXY: CmdPRXY, AnsFPKEY: AnsPKEY, CmdFRKEY: CmdRKEY, AnsFFKEY: AnsFKEY}[c.Kind]
		if c.Kind == CmdFPRXY {
			q.Password = c.Password
		}
		b, err := AppendCommand(nil, &q)
		if err != nil {
			return nil, err
		}
		dst = append(dst, b[len(q.Kind.String()):]...)
	case CmdFPFWD:
		if !c.Class.Valid() && c.Class != ClassControl {
			return nil, fmt.Errorf("%w: chunk class %d", ErrCommand, c.Class)
		}
		if len(c.Data) != FileForwardSealedSize {
			return nil, fmt.Errorf("%w: PFWD data is %d bytes", ErrCommand, len(c.Data))
		}
		dst = append(dst, ' ', byte(c.Class))
		dst = append(dst, c.Fwd.DHKey[:]...)
		dst = append(dst, c.Data...)
	case CmdFRFWD:
		if !c.Class.Valid() && c.Class != ClassControl {
			return nil, fmt.Errorf("%w: chunk class %d", ErrCommand, c.Class)
		}
		if len(c.Data) != FileForwardLayerSize {
			return nil, fmt.Errorf("%w: RFWD data is %d bytes", ErrCommand, len(c.Data))
		}
		dst = append(dst, ' ', byte(c.Class))
		dst = append(dst, c.Data...)
	case AnsFPRES, AnsFRRES:
		if !validAnswerSize(c.Kind, len(c.Data)) {
			return nil, fmt.Errorf("%w: %s data is %d bytes", ErrCommand, c.Kind, len(c.Data))
		}
		dst = append(dst, ' ')
		dst = append(dst, c.Data...)
	}
	return dst, nil
}

// validAnswerSize reports whether n is the size of a PRES or RRES answer
// of some class; the frame it comes in must be of that class.
func validAnswerSize(k FileKind, n int) bool {
	_, ok := AnswerClass(k, n)
	return ok
}

// AnswerClass returns the class whose PRES (or RRES) data is n bytes.
func AnswerClass(k FileKind, n int) (ChunkClass, bool) {
	for _, c := range append([]ChunkClass{ClassControl}, Classes()...) {
		size := FileAnswerSealedSize(c)
		if k == AnsFRRES {
			size += LayerOverhead
		}
		if n == size {
			return c, true
		}
	}
	return 0, false
}

// ParseFileCommand parses the wire form of a file command or answer.
// Data and Password alias b. A chunk larger than MaxChunkSize is
// ErrTooLarge; everything else malformed is ErrCommand.
func ParseFileCommand(b []byte) (FileCommand, error) {
	var c FileCommand
	tag, args, hasArgs := bytes.Cut(b, []byte{' '})
	for i := 1; i < len(fileKindNames); i++ {
		if string(tag) == fileKindNames[i] {
			c.Kind = FileKind(i)
			break
		}
	}
	if c.Kind == 0 {
		return c, fmt.Errorf("%w: unknown tag", ErrCommand)
	}
	bad := func(what string) (FileCommand, error) {
		return c, fmt.Errorf("%w: %s %s", ErrCommand, c.Kind, what)
	}
	switch c.Kind {
	case CmdFNEW:
		const head = 1 + KeySize + 2
		if !hasArgs || len(args) < head+1 {
			return bad("arguments truncated")
		}
		c.Class = ChunkClass(args[0])
		if !c.Class.Valid() {
			return bad("chunk class")
		}
		copy(c.AuthKey[:], args[1:])
		n := int(binary.BigEndian.Uint16(args[1+KeySize:]))
		if !isPowerOfTwo(n) || n > MaxChunkRecipients {
			return bad("recipient count")
		}
		rest := args[head:]
		if len(rest) < n*2*KeySize+1 {
			return bad("recipients truncated")
		}
		c.Recipients = make([]ChunkRecipientKey, n)
		for i := range c.Recipients {
			copy(c.Recipients[i].Auth[:], rest[i*2*KeySize:])
			copy(c.Recipients[i].DH[:], rest[i*2*KeySize+KeySize:])
		}
		rest = rest[n*2*KeySize:]
		pw := rest[1:]
		if len(pw) != int(rest[0]) || len(pw) > MaxPasswordSize {
			return bad("password")
		}
		if len(pw) > 0 {
			c.Password = pw
		}
	case AnsFIDS:
		if !hasArgs || len(args) < IDSize+2 {
			return bad("arguments truncated")
		}
		copy(c.SndID[:], args)
		n := int(binary.BigEndian.Uint16(args[IDSize:]))
		rest := args[IDSize+2:]
		const each = IDSize + KeySize
		if !isPowerOfTwo(n) || n > MaxChunkRecipients || len(rest) != n*each {
			return bad("recipient IDs")
		}
		c.RcvIDs = make([]ChunkRecipientID, n)
		for i := range c.RcvIDs {
			copy(c.RcvIDs[i].ID[:], rest[i*each:])
			copy(c.RcvIDs[i].RelayDH[:], rest[i*each+IDSize:])
		}
	case CmdFPUT:
		if !hasArgs || len(args) == 0 {
			return bad("without a chunk")
		}
		if len(args) > MaxChunkSize {
			return c, fmt.Errorf("%w: chunk of %d bytes", ErrTooLarge, len(args))
		}
		c.Data = args
	case AnsCHUNK:
		if !hasArgs || len(args) < ChunkSealOverhead || len(args) > MaxChunkSize+ChunkSealOverhead {
			return bad("sealed chunk size")
		}
		c.Data = args
	case AnsFERR:
		code, ok := parseCode(string(args))
		if !hasArgs || !ok {
			return bad("unknown error code")
		}
		c.Code = code
	case CmdFPRXY, AnsFPKEY, CmdFRKEY, AnsFFKEY:
		tag := map[FileKind]Kind{CmdFPRXY: CmdPRXY, AnsFPKEY: AnsPKEY, CmdFRKEY: CmdRKEY, AnsFFKEY: AnsFKEY}[c.Kind]
		q, err := ParseCommand(b)
		if err != nil || q.Kind != tag {
			return bad("arguments")
		}
		c.Fwd, c.Password = q, q.Password
	case CmdFPFWD:
		if !hasArgs || len(args) != 1+KeySize+FileForwardSealedSize {
			return bad("arguments")
		}
		c.Class = ChunkClass(args[0])
		if !c.Class.Valid() && c.Class != ClassControl {
			return bad("chunk class")
		}
		copy(c.Fwd.DHKey[:], args[1:])
		c.Data = args[1+KeySize:]
	case CmdFRFWD:
		if !hasArgs || len(args) != 1+FileForwardLayerSize {
			return bad("arguments")
		}
		c.Class = ChunkClass(args[0])
		if !c.Class.Valid() && c.Class != ClassControl {
			return bad("chunk class")
		}
		c.Data = args[1:]
	case AnsFPRES, AnsFRRES:
		if !hasArgs || !validAnswerSize(c.Kind, len(args)) {
			return bad("answer size")
		}
		c.Data = args
	default:
		if hasArgs {
			return bad("takes no arguments")
		}
	}
	return c, nil
}

// FileTransmission is a file command or answer with its signature,
// correlation ID and entity ID (the sender ID for FPUT and FDEL, a
// recipient ID for FGET and FACK, empty for FNEW and PING). Its envelope
// is the queue protocol's; the signature uses its own context string.
type FileTransmission struct {
	Signature []byte
	CorrID    []byte
	EntityID  []byte
	Command   FileCommand
	signed    []byte
}

// appendTo appends the transmission, with room for a signature when
// signed is true (filled in by signFileInto).
func (t *FileTransmission) appendTo(dst []byte, signed bool) ([]byte, error) {
	if signed {
		dst = append(dst, make([]byte, 1+SignatureSize)...)
	} else {
		dst = append(dst, 0)
	}
	dst, err := appendEnvelope(dst, t.CorrID, t.EntityID)
	if err != nil {
		return nil, err
	}
	return appendFileCommand(dst, &t.Command)
}

// Marshal encodes an unsigned transmission.
func (t *FileTransmission) Marshal() ([]byte, error) { return t.appendTo(nil, false) }

// Sign encodes the transmission signed by key; the signature covers the
// session ID and everything after the signature field.
func (t *FileTransmission) Sign(sessionID [32]byte, key ed25519.PrivateKey) ([]byte, error) {
	raw, err := t.appendTo(nil, true)
	if err != nil {
		return nil, err
	}
	if err := signFileInto(raw, sessionID, key, nil); err != nil {
		return nil, err
	}
	return raw, nil
}

// signFileInto signs an encoded transmission in place, with sum (when not
// nil) computing the signed digest.
func signFileInto(raw []byte, sessionID [32]byte, key ed25519.PrivateKey, sum func(parts ...[]byte) ([32]byte, error)) error {
	if len(key) != ed25519.PrivateKeySize {
		return fmt.Errorf("%w: signing key is %d bytes", ErrSignature, len(key))
	}
	if sum == nil {
		signInto(raw, fileSignContext, sessionID, key)
		return nil
	}
	d, err := sum([]byte(fileSignContext), sessionID[:], raw[1+SignatureSize:])
	if err != nil {
		return fmt.Errorf("%w: digest: %w", ErrSignature, err)
	}
	raw[0] = SignatureSize
	copy(raw[1:], ed25519.Sign(key, d[:]))
	return nil
}

// ParseFileTransmission parses one file transmission. As with
// ParseTransmission, CorrID and EntityID are set when the error wraps
// ErrCommand or ErrTooLarge; ErrTransmission means the framing is broken.
// Slices alias b.
func ParseFileTransmission(b []byte) (FileTransmission, error) {
	var t FileTransmission
	env, rest, err := parseEnvelope(b)
	t.Signature, t.CorrID, t.EntityID, t.signed = env.sig, env.corrID, env.entityID, env.signed
	if err != nil {
		return t, err
	}
	t.Command, err = ParseFileCommand(rest)
	return t, err
}

// Verify checks the signature by pub in this session, doing the same work
// whatever the input, so an AUTH answer costs the same either way.
func (t *FileTransmission) Verify(sessionID [32]byte, pub []byte) bool {
	return verifyEnvelope(fileSignContext, sessionID, t.signed, t.Signature, pub)
}

// CodeForParseError is the code a relay answers a transmission that does
// not parse with: LARGE for ErrTooLarge, CMD for ErrCommand, and BLOCK for
// a broken envelope, which must be answered with empty IDs.
func CodeForParseError(err error) ErrCode {
	switch {
	case errors.Is(err, ErrTooLarge):
		return CodeLarge
	case errors.Is(err, ErrCommand):
		return CodeCmd
	}
	return CodeBlock
}

// SealChunk re-encrypts a stored chunk for one recipient: a fresh random
// nonce, then NaCl box with the precomputed relay↔recipient key. The
// output is nonce (24) || box(chunk), so two downloads of one chunk differ
// from each other and from the uploaded bytes.
func SealChunk(boxKey *[32]byte, chunk []byte) ([]byte, error) {
	var nonce [ChunkNonceSize]byte
	if _, err := rand.Read(nonce[:]); err != nil {
		return nil, fmt.Errorf("wire: chunk nonce: %w", err)
	}
	return sealChunkWithNonce(boxKey, &nonce, chunk), nil
}

func sealChunkWithNonce(boxKey *[32]byte, nonce *[ChunkNonceSize]byte, chunk []byte) []byte {
	out := make([]byte, ChunkNonceSize, ChunkSealOverhead+len(chunk))
	copy(out, nonce[:])
	return box.SealAfterPrecomputation(out, chunk, nonce, boxKey)
}

// OpenChunk opens the data of a CHUNK answer with the recipient's box key
// (BoxKey of the relay's FIDS key and the recipient's X25519 key).
func OpenChunk(boxKey *[32]byte, sealed []byte) ([]byte, error) {
	if len(sealed) < ChunkSealOverhead {
		return nil, fmt.Errorf("%w: sealed chunk of %d bytes", ErrDecrypt, len(sealed))
	}
	nonce := [ChunkNonceSize]byte(sealed[:ChunkNonceSize])
	out, ok := box.OpenAfterPrecomputation(nil, sealed[ChunkNonceSize:], &nonce, boxKey)
	if !ok {
		return nil, fmt.Errorf("%w: chunk", ErrDecrypt)
	}
	return out, nil
}
