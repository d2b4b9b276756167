//go:build !js

package qr

import (
	"bytes"
	"errors"
	"flag"
	"fmt"
	"image"
	"image/color"
	"image/draw"
	"image/gif"
	"image/jpeg"
	"image/png"
	"os"
	"path/filepath"
	"testing"

	"github.com/wisp-chat/wisp/wasm/agent"
)

var updateQRCorpus = flag.Bool("update-qr-corpus", false, "rewrite testdata/fuzz/FuzzDecodeQR")

// qrLink is an invitation link as CreateInvitation makes them.
const qrLink = "https://wisp.example/#/invite/AQEBZXhhbXBsZS1yZWxheS1hZGRyZXNzLWZvci1hLXFyLWNvZGUtdGVzdA"

// qrImage is the QR code of link as invitations draw it (a PNG), decoded.
func qrImage(t testing.TB, link string, size int) image.Image {
	t.Helper()
	b, err := agent.QRCode(link, size)
	if err != nil {
		t.Fatal(err)
	}
	m, err := png.Decode(bytes.NewReader(b))
	if err != nil {
		t.Fatal(err)
	}
	return m
}

func qrPNG(t testing.TB, m image.Image) []byte {
	t.Helper()
	var buf bytes.Buffer
	if err := png.Encode(&buf, m); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

func qrJPEG(t testing.TB, m image.Image, quality int) []byte {
	t.Helper()
	var buf bytes.Buffer
	if err := jpeg.Encode(&buf, m, &jpeg.Options{Quality: quality}); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

func qrGIF(t testing.TB, m image.Image) []byte {
	t.Helper()
	var buf bytes.Buffer
	if err := gif.Encode(&buf, m, nil); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

// qrScaled scales m up by k (nearest neighbour) inside a border of
// border pixels of the colour bg, as a screenshot of a page shows it.
func qrScaled(m image.Image, k, border int, bg color.Color) *image.NRGBA {
	b := m.Bounds()
	out := image.NewNRGBA(image.Rect(0, 0, b.Dx()*k+2*border, b.Dy()*k+2*border))
	draw.Draw(out, out.Bounds(), image.NewUniform(bg), image.Point{}, draw.Src)
	for y := range b.Dy() * k {
		for x := range b.Dx() * k {
			out.Set(border+x, border+y, m.At(b.Min.X+x/k, b.Min.Y+y/k))
		}
	}
	return out
}

// qrMap applies f to every pixel (inverting, making white transparent).
func qrMap(m image.Image, f func(c color.Color) color.Color) *image.NRGBA {
	b := m.Bounds()
	out := image.NewNRGBA(b)
	for y := b.Min.Y; y < b.Max.Y; y++ {
		for x := b.Min.X; x < b.Max.X; x++ {
			out.Set(x, y, f(m.At(x, y)))
		}
	}
	return out
}

func dark(c color.Color) bool { r, g, b, _ := c.RGBA(); return r+g+b < 3*0x8000 }

func TestDecodeQR(t *testing.T) {
	code := qrImage(t, qrLink, 512)
	gray := image.NewGray(code.Bounds())
	draw.Draw(gray, gray.Bounds(), code, code.Bounds().Min, draw.Src)
	rgba := image.NewRGBA(code.Bounds())
	draw.Draw(rgba, rgba.Bounds(), code, code.Bounds().Min, draw.Src)
	own, err := agent.QRCode(qrLink, 512)
	if err != nil {
		t.Fatal(err)
	}
	for name, img := range map[string][]byte{
		"the invitation's own PNG": own,
		"gray PNG":                 qrPNG(t, gray),
		"RGBA PNG":                 qrPNG(t, rgba),
		"scaled up, with a border": qrPNG(t, qrScaled(code, 2, 100, color.White)),
		"on a gray page":           qrPNG(t, qrScaled(code, 1, 150, color.Gray{0xd0})),
		"JPEG":                     qrJPEG(t, code, 75),
		"JPEG, low quality":        qrJPEG(t, qrScaled(code, 2, 40, color.White), 30),
		"GIF":                      qrGIF(t, code),
		"dark mode": qrPNG(t, qrMap(qrScaled(code, 1, 60, color.White), func(c color.Color) color.Color {
			if dark(c) {
				return color.White
			}
			return color.Gray{0x20}
		})),
		"transparent background": qrPNG(t, qrMap(qrScaled(code, 1, 60, color.White), func(c color.Color) color.Color {
			if dark(c) {
				return color.Black
			}
			return color.NRGBA{}
		})),
	} {
		got, err := DecodeQR(img)
		if err != nil || got != qrLink {
			t.Errorf("%s (%d bytes): %q, %v", name, len(img), got, err)
		}
	}
}

func TestDecodeQRRefuses(t *testing.T) {
	code := qrImage(t, qrLink, 256)
	good := qrPNG(t, code)
	plain := image.NewNRGBA(image.Rect(0, 0, 300, 200))
	for y := range 200 {
		for x := range 300 {
			plain.Set(x, y, color.NRGBA{uint8(x), uint8(y), 0x80, 0xff})
		}
	}
	// A picture whose header announces 5000 × 4000 pixels of one colour:
	// small, but over the limit before anything is decoded.
	huge := qrPNG(t, image.NewGray(image.Rect(0, 0, 5000, 4000)))
	// Just at the limit, 4096 × 4096: decoded, no code.
	limit := qrPNG(t, image.NewGray(image.Rect(0, 0, 4096, 4096)))
	for _, tc := range []struct {
		name string
		img  []byte
		want error
	}{
		{"empty", nil, ErrInvalid},
		{"zero bytes", []byte{}, ErrInvalid},
		{"not a picture", []byte("https://wisp.example/#/invite/abc"), ErrInvalid},
		{"truncated PNG", good[:len(good)/2], ErrInvalid},
		{"PNG header only", good[:40], ErrInvalid},
		{"truncated JPEG", qrJPEG(t, code, 80)[:300], ErrInvalid},
		{"no code", qrPNG(t, plain), ErrNoQR},
		{"no code, JPEG", qrJPEG(t, plain, 80), ErrNoQR},
		{"white", qrPNG(t, image.NewGray(image.Rect(0, 0, 64, 64))), ErrNoQR},
		{"over the pixel limit", huge, ErrTooLong},
		{"at the pixel limit", limit, ErrNoQR},
		{"over the byte limit", append(bytes.Clone(good), make([]byte, MaxQRImageBytes)...), ErrTooLong},
		{"a BMP header", []byte("BM\x00\x00\x00\x00"), ErrInvalid},
	} {
		got, err := DecodeQR(tc.img)
		if !errors.Is(err, tc.want) || got != "" {
			t.Errorf("%s: %q, %v; want %v", tc.name, got, err, tc.want)
		}
	}
	if len(huge) > 1<<20 {
		t.Errorf("the over-the-limit picture is %d bytes: not a header test", len(huge))
	}
}

// TestDecodeQRBitFlips flips bits all over a PNG and a JPEG of a code:
// each decodes to the link, or fails with one of DecodeQR's errors.
func TestDecodeQRBitFlips(t *testing.T) {
	code := qrImage(t, qrLink, 256)
	for name, img := range map[string][]byte{"PNG": qrPNG(t, code), "JPEG": qrJPEG(t, code, 80)} {
		step := max(1, len(img)/300)
		outcomes := map[string]int{}
		for i := 0; i < len(img); i += step {
			b := bytes.Clone(img)
			b[i] ^= 1 << (i % 8)
			got, err := DecodeQR(b)
			switch {
			case err == nil && got == qrLink:
				outcomes["link"]++
			case errors.Is(err, ErrInvalid):
				outcomes["invalid"]++
			case errors.Is(err, ErrNoQR):
				outcomes["no code"]++
			case errors.Is(err, ErrTooLong):
				outcomes["too long"]++ // a flipped size in the header
			default:
				t.Errorf("%s, byte %d flipped: %q, %v", name, i, got, err)
			}
		}
		t.Logf("%s: %v", name, outcomes)
	}
}

// FuzzDecodeQR: DecodeQR never panics, and returns text or one of its
// errors.
func FuzzDecodeQR(f *testing.F) {
	for _, s := range qrSeeds(f) {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		got, err := DecodeQR(b)
		switch {
		case err == nil:
			if got == "" {
				t.Error("no error and no text")
			}
		case errors.Is(err, ErrInvalid), errors.Is(err, ErrNoQR), errors.Is(err, ErrTooLong):
			if got != "" {
				t.Errorf("text %q with %v", got, err)
			}
		default:
			t.Errorf("unexpected error %v", err)
		}
	})
}

// qrSeeds are small pictures: codes in each format, a picture without
// one, a truncated one.
func qrSeeds(t testing.TB) map[string][]byte {
	code := qrImage(t, "wisp", 64)
	small := qrPNG(t, code)
	return map[string][]byte{
		"png":       small,
		"jpeg":      qrJPEG(t, code, 60),
		"gif":       qrGIF(t, code),
		"no_code":   qrPNG(t, image.NewGray(image.Rect(0, 0, 16, 16))),
		"truncated": small[:len(small)/2],
	}
}

// TestQRCorpus writes the committed seed corpus of FuzzDecodeQR
// (testdata/fuzz/FuzzDecodeQR, which go test runs as part of the fuzz
// test) from qrSeeds: go test ./wasm/chat -run TestQRCorpus -args
// -update-qr-corpus. Otherwise it checks that the corpus is there (the
// encoders' bytes may change with Go, so they are not compared).
func TestQRCorpus(t *testing.T) {
	dir := filepath.Join("testdata", "fuzz", "FuzzDecodeQR")
	for name, b := range qrSeeds(t) {
		path := filepath.Join(dir, "seed_"+name)
		if !*updateQRCorpus {
			if _, err := os.Stat(path); err != nil {
				t.Errorf("%v: go test ./wasm/chat -run TestQRCorpus -args -update-qr-corpus", err)
			}
			continue
		}
		if err := os.MkdirAll(dir, 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(path, fmt.Appendf(nil, "go test fuzz v1\n[]byte(%q)\n", b), 0o644); err != nil {
			t.Fatal(err)
		}
	}
}
