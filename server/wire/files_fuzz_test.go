package wire

import (
	"bytes"
	"testing"
)

// FuzzParseFileTransmission: the file transmission and command decoder
// never panics, and whatever it accepts re-encodes to the same bytes.
func FuzzParseFileTransmission(f *testing.F) {
	for _, c := range fileCommands() {
		if c.Kind == CmdFPUT {
			c.Data = c.Data[:100]
		}
		tr := FileTransmission{CorrID: []byte("c"), Command: c}
		if raw, err := tr.Marshal(); err == nil {
			f.Add(raw)
		}
	}
	f.Add([]byte{0, 1, 'c', 0, 'F', 'N', 'E', 'W', ' ', 1})
	f.Add([]byte{64})
	f.Fuzz(func(t *testing.T, b []byte) {
		tr, err := ParseFileTransmission(b)
		if err != nil {
			return
		}
		out, err := tr.appendTo(nil, tr.Signature != nil)
		if err != nil {
			t.Fatalf("accepted transmission does not encode: %v", err)
		}
		if tr.Signature != nil {
			copy(out[1:], tr.Signature)
			out[0] = SignatureSize
		}
		if !bytes.Equal(out, b) {
			t.Fatalf("re-encoded transmission differs:\n%x\n%x", out, b)
		}
	})
}
