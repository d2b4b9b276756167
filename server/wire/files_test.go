package wire

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"crypto/sha256"
	"errors"
	"io"
	"testing"
)

func TestChunkClasses(t *testing.T) {
	want := map[ChunkClass]int{Class64K: 65536, Class256K: 262144, Class1M: 1048576, Class4M: 4194304}
	for c, size := range want {
		if c.Size() != size || !c.Valid() || c.FrameSize() != size+BlockSize {
			t.Fatalf("%s: size %d frame %d", c, c.Size(), c.FrameSize())
		}
		if got, ok := FrameClass(size + BlockSize); !ok || got != c {
			t.Fatalf("FrameClass(%d) = %s %v", size+BlockSize, got, ok)
		}
	}
	if ClassControl.Valid() || ClassControl.FrameSize() != BlockSize || ChunkClass(9).FrameSize() != 0 || ChunkClass(9).Valid() {
		t.Fatal("control or unknown class")
	}
	if c, ok := FrameClass(BlockSize); !ok || c != ClassControl {
		t.Fatal("control frame size")
	}
	for _, n := range []int{0, 1, BlockSize - 1, BlockSize + 1, 65536, MaxFrameSize + 1} {
		if _, ok := FrameClass(n); ok {
			t.Fatalf("FrameClass(%d) accepted", n)
		}
	}
	for n, want := range map[int]ChunkClass{0: Class64K, 65536: Class64K, 65537: Class256K, 1 << 20: Class1M, 4 << 20: Class4M} {
		if c, err := ClassFor(n); err != nil || c != want {
			t.Fatalf("ClassFor(%d) = %s %v", n, c, err)
		}
	}
	if _, err := ClassFor(MaxChunkSize + 1); !errors.Is(err, ErrTooLarge) {
		t.Fatalf("ClassFor too large: %v", err)
	}
	if ChunkClass(9).String() != "ChunkClass(9)" || Class1M.String() != "1MiB" {
		t.Fatal("class names")
	}
}

func fileCommands() []FileCommand {
	rk := make([]ChunkRecipientKey, 4)
	ids := make([]ChunkRecipientID, 4)
	for i := range rk {
		rk[i].Auth[0], rk[i].DH[1] = byte(i), byte(i)
		ids[i].ID[2], ids[i].RelayDH[3] = byte(i), byte(i)
	}
	return []FileCommand{
		{Kind: CmdFNEW, Class: Class64K, AuthKey: [32]byte{9}, Recipients: rk, Password: []byte("pw")},
		{Kind: CmdFNEW, Class: Class4M, Recipients: rk[:1]},
		{Kind: AnsFIDS, SndID: ChunkID{5}, RcvIDs: ids},
		{Kind: CmdFPUT, Data: bytes.Repeat([]byte{3}, 65536)},
		{Kind: AnsCHUNK, Data: bytes.Repeat([]byte{4}, ChunkSealOverhead+10)},
		{Kind: CmdFGET}, {Kind: CmdFACK}, {Kind: CmdFDEL}, {Kind: CmdFPING},
		{Kind: AnsFOK}, {Kind: AnsFPONG}, {Kind: AnsFERR, Code: CodeQuota},
	}
}

func TestFileCommandsRoundTrip(t *testing.T) {
	for _, c := range fileCommands() {
		b, err := appendFileCommand(nil, &c)
		if err != nil {
			t.Fatalf("%s: %v", c.Kind, err)
		}
		got, err := ParseFileCommand(b)
		if err != nil {
			t.Fatalf("%s: %v", c.Kind, err)
		}
		again, _ := appendFileCommand(nil, &got)
		if !bytes.Equal(b, again) || got.Kind != c.Kind {
			t.Fatalf("%s does not round-trip", c.Kind)
		}
	}
}

func TestFileCommandErrors(t *testing.T) {
	bad := []FileCommand{
		{Kind: 0}, {Kind: 99},
		{Kind: CmdFNEW, Class: ClassControl, Recipients: make([]ChunkRecipientKey, 1)},
		{Kind: CmdFNEW, Class: Class64K, Recipients: make([]ChunkRecipientKey, 3)},
		{Kind: CmdFNEW, Class: Class64K},
		{Kind: CmdFNEW, Class: Class64K, Recipients: make([]ChunkRecipientKey, 256)},
		{Kind: CmdFNEW, Class: Class64K, Recipients: make([]ChunkRecipientKey, 1), Password: make([]byte, MaxPasswordSize+1)},
		{Kind: AnsFIDS, RcvIDs: make([]ChunkRecipientID, 5)},
		{Kind: CmdFPUT, Data: make([]byte, MaxChunkSize+ChunkSealOverhead+1)},
		{Kind: AnsFERR, Code: 0},
	}
	for i, c := range bad {
		if _, err := appendFileCommand(nil, &c); err == nil {
			t.Fatalf("case %d (%s) encoded", i, c.Kind)
		}
	}
	fnew, _ := appendFileCommand(nil, &fileCommands()[0])
	cases := map[string][]byte{
		"empty":             {},
		"unknown tag":       []byte("FOO"),
		"queue tag":         []byte("SEND x"),
		"FNEW no args":      []byte("FNEW"),
		"FNEW truncated":    fnew[:len(fnew)-1],
		"FNEW extra":        append(append([]byte{}, fnew...), 0),
		"FNEW class 0":      append([]byte("FNEW \x00"), fnew[6:]...),
		"FNEW class 5":      append([]byte("FNEW \x05"), fnew[6:]...),
		"FNEW 3 recipients": append(append([]byte("FNEW \x01"), fnew[6:6+32]...), append([]byte{0, 3}, fnew[6+34:]...)...),
		"FNEW 0 recipients": append(append([]byte("FNEW \x01"), fnew[6:6+32]...), 0, 0, 0),
		"FIDS short":        []byte("FIDS 123"),
		"FIDS count":        append([]byte("FIDS "), make([]byte, IDSize+2+IDSize+KeySize)...),
		"FPUT empty":        []byte("FPUT "),
		"FPUT no separator": []byte("FPUT"),
		"CHUNK short":       append([]byte("CHUNK "), make([]byte, ChunkSealOverhead-1)...),
		"FGET args":         []byte("FGET x"),
		"PING space":        []byte("PING "),
		"ERR unknown":       []byte("ERR NOPE"),
		"ERR no code":       []byte("ERR"),
	}
	for name, b := range cases {
		if _, err := ParseFileCommand(b); !errors.Is(err, ErrCommand) {
			t.Fatalf("%s: %v", name, err)
		}
	}
	if _, err := ParseFileCommand(append([]byte("FPUT "), make([]byte, MaxChunkSize+1)...)); !errors.Is(err, ErrTooLarge) {
		t.Fatalf("oversized FPUT: %v", err)
	}
}

func TestFileTransmission(t *testing.T) {
	_, key, _ := ed25519.GenerateKey(rand.Reader)
	pub := key.Public().(ed25519.PublicKey)
	sid := [32]byte{1}
	tr := FileTransmission{CorrID: []byte("c1"), EntityID: make([]byte, IDSize), Command: FileCommand{Kind: CmdFGET}}
	raw, err := tr.Sign(sid, key)
	if err != nil {
		t.Fatal(err)
	}
	got, err := ParseFileTransmission(raw)
	if err != nil || !got.Verify(sid, pub) || got.Verify([32]byte{2}, pub) || string(got.CorrID) != "c1" {
		t.Fatalf("signed transmission: %v", err)
	}
	// A queue signature of the same bytes does not verify as a file one.
	qt := Transmission{Signature: got.Signature, signed: got.signed}
	if qt.Verify(sid, pub) {
		t.Fatal("file signature verified in the queue context")
	}
	for i := range raw {
		flipped := bytes.Clone(raw)
		flipped[i] ^= 1
		if p, err := ParseFileTransmission(flipped); err == nil && p.Verify(sid, pub) {
			t.Fatalf("bit flip at %d still verifies", i)
		}
	}
	unsigned, _ := tr.Marshal()
	if u, err := ParseFileTransmission(unsigned); err != nil || u.Signature != nil || u.Verify(sid, pub) {
		t.Fatal("unsigned transmission")
	}
	if _, err := tr.Sign(sid, key[:10]); !errors.Is(err, ErrSignature) {
		t.Fatalf("short key: %v", err)
	}
	for name, b := range map[string][]byte{"empty": {}, "sig length": {5}, "corr past end": {0, 30}, "entity length": {0, 0, 3, 1, 2, 3}} {
		if _, err := ParseFileTransmission(b); !errors.Is(err, ErrTransmission) {
			t.Fatalf("%s: %v", name, err)
		}
	}
	// A command error keeps the IDs so the relay can answer them.
	bad := append(bytes.Clone(unsigned[:len(unsigned)-4]), "NOPE"...)
	if p, err := ParseFileTransmission(bad); !errors.Is(err, ErrCommand) || string(p.CorrID) != "c1" {
		t.Fatalf("bad command: %v", err)
	}
}

func TestFrames(t *testing.T) {
	c, r := newPair(t)
	_, key, _ := ed25519.GenerateKey(rand.Reader)
	for _, class := range append([]ChunkClass{ClassControl}, Classes()...) {
		data := make([]byte, max(class.Size(), 1000))
		_, _ = rand.Read(data)
		tr := FileTransmission{CorrID: []byte{1}, EntityID: make([]byte, IDSize), Command: FileCommand{Kind: CmdFPUT, Data: data[:min(len(data), 1000)]}}
		if class != ClassControl {
			tr.Command.Data = data
		}
		frame, err := c.SealFrame(class, &tr, key)
		if err != nil {
			t.Fatalf("%s: %v", class, err)
		}
		if len(frame) != class.FrameSize() || bytes.Contains(frame, tr.Command.Data[:64]) {
			t.Fatalf("%s: frame of %d bytes or plaintext visible", class, len(frame))
		}
		raw, got, err := r.OpenFrame(frame)
		if err != nil || got != class {
			t.Fatalf("%s: open: %v %s", class, err, got)
		}
		p, err := ParseFileTransmission(raw)
		if err != nil || !bytes.Equal(p.Command.Data, tr.Command.Data) || !p.Verify(r.ID, key.Public().(ed25519.PublicKey)) {
			t.Fatalf("%s: parse: %v", class, err)
		}
	}
	// A session hasher (WebCrypto in the browser) computes the same
	// digest: the relay verifies the signature with crypto/sha256. A
	// hasher that fails makes the seal fail without using a chain key.
	var calls int
	c.SHA256 = func(parts ...[]byte) ([32]byte, error) {
		calls++
		h := sha256.New()
		for _, p := range parts {
			h.Write(p)
		}
		return [32]byte(h.Sum(nil)), nil
	}
	tr := FileTransmission{CorrID: []byte{3}, EntityID: make([]byte, IDSize), Command: FileCommand{Kind: CmdFPUT, Data: make([]byte, Class256K.Size())}}
	frame, err := c.SealFrame(Class256K, &tr, key)
	if err != nil || calls != 1 {
		t.Fatalf("seal with a session hasher: %v, %d calls", err, calls)
	}
	if raw, _, err := r.OpenFrame(frame); err != nil {
		t.Fatal(err)
	} else if p, err := ParseFileTransmission(raw); err != nil || !p.Verify(r.ID, key.Public().(ed25519.PublicKey)) {
		t.Fatalf("signature made with the session hasher does not verify: %v", err)
	}
	c.SHA256 = func(...[]byte) ([32]byte, error) { return [32]byte{}, errors.New("no WebCrypto") }
	if _, err := c.SealFrame(Class256K, &tr, key); !errors.Is(err, ErrSignature) {
		t.Fatalf("failing hasher: %v", err)
	}
	c.SHA256 = nil
	// A chunk that does not fit its frame, an unknown class.
	big := FileTransmission{CorrID: []byte{1}, Command: FileCommand{Kind: CmdFPUT, Data: make([]byte, 65536)}}
	if _, err := c.SealFrame(ClassControl, &big, nil); !errors.Is(err, ErrTooLarge) {
		t.Fatalf("oversized control frame: %v", err)
	}
	if _, err := c.SealFrame(9, &big, nil); !errors.Is(err, ErrCommand) {
		t.Fatalf("unknown class: %v", err)
	}
	if _, err := c.SealRawFrame(ClassControl, nil); !errors.Is(err, ErrTooLarge) {
		t.Fatalf("empty raw frame: %v", err)
	}
	// Failed seals used no chain key: the next frame still opens.
	ping := FileTransmission{CorrID: []byte{2}, Command: FileCommand{Kind: CmdFPING}}
	f, _ := c.SealFrame(ClassControl, &ping, nil)
	if _, _, err := r.OpenFrame(f); err != nil {
		t.Fatalf("after failed seals: %v", err)
	}
	// Wrong size, bit flips, bad length prefix and padding.
	if _, _, err := r.OpenFrame(make([]byte, BlockSize+1)); !errors.Is(err, ErrBlockSize) {
		t.Fatalf("odd size: %v", err)
	}
	f, _ = c.SealFrame(ClassControl, &ping, nil)
	f[100] ^= 1
	if _, _, err := r.OpenFrame(f); !errors.Is(err, ErrDecrypt) {
		t.Fatalf("bit flip: %v", err)
	}
	c2, r2 := newPair(t)
	for name, payload := range map[string][]byte{
		"zero length":  {0, 0, 0, 0},
		"length past":  {0, 0, 0x40, 0},
		"non-zero pad": {0, 0, 0, 1, 'x', 0, 1},
	} {
		raw := make([]byte, BlockPayloadSize)
		copy(raw, payload)
		frame, err := c2.sealFramePayload(append(raw, make([]byte, 0, 16)...))
		if err != nil {
			t.Fatal(err)
		}
		if _, _, err := r2.OpenFrame(frame); !errors.Is(err, ErrBlock) {
			t.Fatalf("%s: %v", name, err)
		}
	}
}

func TestSealChunk(t *testing.T) {
	k := BoxKey((*[32]byte)(bytes.Repeat([]byte{1}, 32)), (*[32]byte)(bytes.Repeat([]byte{2}, 32)))
	chunk := make([]byte, 65536)
	_, _ = rand.Read(chunk)
	a, err := SealChunk(k, chunk)
	if err != nil {
		t.Fatal(err)
	}
	b, _ := SealChunk(k, chunk)
	if len(a) != len(chunk)+ChunkSealOverhead || bytes.Equal(a, b) || bytes.Contains(a, chunk[:64]) {
		t.Fatal("sealed chunks must differ from each other and from the chunk")
	}
	if got, err := OpenChunk(k, a); err != nil || !bytes.Equal(got, chunk) {
		t.Fatalf("open: %v", err)
	}
	for _, i := range []int{0, 23, 24, len(a) - 1} {
		f := bytes.Clone(a)
		f[i] ^= 1
		if _, err := OpenChunk(k, f); !errors.Is(err, ErrDecrypt) {
			t.Fatalf("flip at %d: %v", i, err)
		}
	}
	if _, err := OpenChunk(k, a[:ChunkSealOverhead-1]); !errors.Is(err, ErrDecrypt) {
		t.Fatalf("truncated: %v", err)
	}
}

func TestReadFrame(t *testing.T) {
	sizes := []int{BlockSize, Class64K.FrameSize(), Class256K.FrameSize(), Class1M.FrameSize(), MaxFrameSize}
	var msgs [][]byte
	for _, n := range sizes {
		m := make([]byte, n)
		m[0], m[n-1] = 1, 2
		msgs = append(msgs, m)
	}
	msgs = append(msgs, make([]byte, BlockSize+1), make([]byte, 100), make([]byte, MaxFrameSize+1))
	src := &messages{msgs: msgs, err: io.ErrClosedPipe}
	ctx := context.Background()
	for _, n := range sizes {
		_, b, err := ReadFrame(ctx, src)
		if err != nil || len(b) != n || b[0] != 1 || b[n-1] != 2 {
			t.Fatalf("frame of %d: %v %d", n, err, len(b))
		}
	}
	for _, what := range []string{"block+1", "short", "too long"} {
		if _, _, err := ReadFrame(ctx, src); !errors.Is(err, ErrBlockSize) {
			t.Fatalf("%s: %v", what, err)
		}
	}
	if _, _, err := ReadFrame(ctx, src); !errors.Is(err, io.ErrClosedPipe) {
		t.Fatalf("reader error: %v", err)
	}
}

func TestFilesURL(t *testing.T) {
	for host, want := range map[string]string{"127.0.0.1": "ws://127.0.0.1:5223/wisp/files", "relay.example": "wss://relay.example:5223/wisp/files"} {
		if got := (Address{Host: host, Port: 5223}).FilesURL(); got != want {
			t.Fatalf("%s: %s", host, got)
		}
	}
}

func TestCodeForParseError(t *testing.T) {
	for _, tc := range []struct {
		in   []byte
		want ErrCode
	}{
		{append([]byte{0, 1, 'c', 0}, append([]byte("FPUT "), make([]byte, MaxChunkSize+1)...)...), CodeLarge},
		{[]byte{0, 1, 'c', 0, 'F', 'O', 'O'}, CodeCmd},
		{[]byte{0, 30}, CodeBlock},
	} {
		_, err := ParseFileTransmission(tc.in)
		if err == nil || CodeForParseError(err) != tc.want {
			t.Fatalf("%.10x: %v → %s, want %s", tc.in, err, CodeForParseError(err), tc.want)
		}
	}
}
