package files

import (
	"bytes"
	"crypto/sha256"
	"testing"
)

// TestDigest checks Digest against the definition, computed here with
// crypto/sha256 directly, at the piece boundaries; in the browser the
// pieces are hashed by WebCrypto, so this also checks that path.
func TestDigest(t *testing.T) {
	plain := randBytes(t, 3*PieceSize+5)
	for _, size := range []int{0, 1, PieceSize - 1, PieceSize, PieceSize + 1, 3*PieceSize + 5} {
		p := plain[:size]
		var sums []byte
		for off := 0; off < size; off += PieceSize {
			s := sha256.Sum256(p[off:min(off+PieceSize, size)])
			sums = append(sums, s[:]...)
		}
		want := sha256.Sum256(sums)
		got, err := Digest(bytes.NewReader(p))
		if err != nil || got != want {
			t.Errorf("%d bytes: Digest = %x, %v; want %x", size, got, err, want)
		}
		// Written in odd, small pieces: the same digest.
		got, err = Digest(smallReads{bytes.NewReader(p)})
		if err != nil || got != want {
			t.Errorf("%d bytes read 4,099 at a time: %x, %v", size, got, err)
		}
	}
	a, _ := Digest(bytes.NewReader(plain))
	plain[PieceSize+3] ^= 1
	if b, _ := Digest(bytes.NewReader(plain)); a == b {
		t.Error("a flipped bit in the second piece leaves the digest unchanged")
	}
}

// smallReads hides bytes.Reader's WriterTo, so io.Copy writes the
// digester in small pieces that straddle the piece boundaries.
type smallReads struct{ r *bytes.Reader }

func (r smallReads) Read(p []byte) (int, error) { return r.r.Read(p[:min(len(p), 4099)]) }
