// Package qr reads a QR code from a picture (PNG, JPEG or GIF: a
// screenshot, a camera photo), for the page's "I have a link" screen.
//
//	link, err := qr.DecodeQR(pictureBytes) // ErrTooLong, ErrInvalid, ErrNoQR
//
// It is built into its own WebAssembly module (wasm/qrworker), loaded
// only when someone picks a picture, and not into the core: its reader
// (github.com/makiuchi-d/gozxing) brings golang.org/x/text's character
// set tables, about 375 KB of brotli that every start-up of the core
// would otherwise pay for.
package qr

import (
	"bytes"
	"errors"
	"fmt"
	"image"
	"image/color"
	_ "image/gif" // the formats DecodeQR reads
	_ "image/jpeg"
	_ "image/png"
	"strings"
	"unicode/utf8"

	"github.com/makiuchi-d/gozxing"
	"github.com/makiuchi-d/gozxing/qrcode"
)

// Errors of DecodeQR.
var (
	ErrTooLong = errors.New("the picture is too large")
	ErrInvalid = errors.New("not a picture that can be read")
	ErrNoQR    = errors.New("no QR code found in the picture")
)

// Limits of DecodeQR, checked before the picture is decoded.
const (
	// MaxQRImageBytes is the largest picture file DecodeQR reads.
	MaxQRImageBytes = 8 << 20
	// MaxQRImagePixels is the most pixels it decodes (16 megapixels,
	// 4096 × 4096): the decoded picture and its luminance take about 5
	// bytes a pixel.
	MaxQRImagePixels = 1 << 24
)

// DecodeQR finds a QR code in a picture (PNG, JPEG or GIF: a screenshot,
// a camera photo) and returns its text, for the caller to check as an
// invitation link. A picture over MaxQRImageBytes, or whose header
// announces more than MaxQRImagePixels, is refused with ErrTooLong before
// it is decoded; one that does not decode with ErrInvalid; one without a
// readable QR code with ErrNoQR.
func DecodeQR(img []byte) (string, error) {
	switch {
	case len(img) == 0:
		return "", fmt.Errorf("%w: the picture is empty", ErrInvalid)
	case len(img) > MaxQRImageBytes:
		return "", fmt.Errorf("%w: the picture is %d bytes, the limit is %d", ErrTooLong, len(img), MaxQRImageBytes)
	}
	cfg, format, err := image.DecodeConfig(bytes.NewReader(img))
	if err != nil {
		return "", fmt.Errorf("%w: not a PNG, JPEG or GIF picture: %w", ErrInvalid, err)
	}
	if format != "png" && format != "jpeg" && format != "gif" {
		return "", fmt.Errorf("%w: a %s picture (PNG, JPEG or GIF only)", ErrInvalid, format)
	}
	if cfg.Width <= 0 || cfg.Height <= 0 {
		return "", fmt.Errorf("%w: a picture of %d × %d pixels", ErrInvalid, cfg.Width, cfg.Height)
	}
	if int64(cfg.Width)*int64(cfg.Height) > MaxQRImagePixels {
		return "", fmt.Errorf("%w: the picture has %d × %d pixels, the limit is %d", ErrTooLong, cfg.Width, cfg.Height, MaxQRImagePixels)
	}
	m, _, err := image.Decode(bytes.NewReader(img))
	if err != nil {
		return "", fmt.Errorf("%w: the picture does not decode: %w", ErrInvalid, err)
	}
	b := m.Bounds()
	if b.Dx() <= 0 || b.Dy() <= 0 || int64(b.Dx())*int64(b.Dy()) > MaxQRImagePixels {
		return "", fmt.Errorf("%w: a picture of %d × %d pixels", ErrInvalid, b.Dx(), b.Dy())
	}
	return scanQR(luminance(m), b.Dx(), b.Dy())
}

// scanQR looks for a QR code in a luminance plane: dark on light, then
// light on dark (a screenshot in dark mode).
func scanQR(lum []byte, w, h int) (string, error) {
	src, err := gozxing.NewPlanarYUVLuminanceSource(lum, w, h, 0, 0, w, h, false)
	if err != nil {
		return "", fmt.Errorf("%w: %w", ErrInvalid, err)
	}
	for _, s := range []gozxing.LuminanceSource{src, src.Invert()} {
		if text, ok := readQR(s); ok {
			return text, nil
		}
	}
	return "", ErrNoQR
}

// readQR runs the reader on one source. The reader is not ours and reads
// pictures from anywhere: a panic in it is taken as "no code".
func readQR(src gozxing.LuminanceSource) (text string, ok bool) {
	defer func() {
		if recover() != nil {
			text, ok = "", false
		}
	}()
	bmp, err := gozxing.NewBinaryBitmap(gozxing.NewHybridBinarizer(src))
	if err != nil {
		return "", false
	}
	hints := map[gozxing.DecodeHintType]any{gozxing.DecodeHintType_TRY_HARDER: true}
	res, err := qrcode.NewQRCodeReader().Decode(bmp, hints)
	if err != nil {
		return "", false
	}
	text = strings.TrimSpace(res.GetText())
	return text, text != "" && utf8.ValidString(text)
}

// luminance returns the picture's gray levels, row by row, with
// transparent parts over white: (R + 2G + B) / 4, as the reader's own
// conversion, with direct paths for the types the decoders return.
func luminance(m image.Image) []byte {
	b := m.Bounds()
	w, h := b.Dx(), b.Dy()
	out := make([]byte, w*h)
	switch m := m.(type) {
	case *image.YCbCr:
		for y := range h {
			copy(out[y*w:(y+1)*w], m.Y[m.YOffset(b.Min.X, b.Min.Y+y):])
		}
	case *image.Gray:
		for y := range h {
			copy(out[y*w:(y+1)*w], m.Pix[m.PixOffset(b.Min.X, b.Min.Y+y):])
		}
	case *image.NRGBA:
		for y := range h {
			row := m.Pix[m.PixOffset(b.Min.X, b.Min.Y+y):]
			for x := range w {
				p := row[4*x : 4*x+4]
				l := (uint32(p[0]) + 2*uint32(p[1]) + uint32(p[2])) / 4
				a := uint32(p[3])
				out[y*w+x] = byte((l*a + 255*(255-a)) / 255)
			}
		}
	case *image.RGBA: // premultiplied
		for y := range h {
			row := m.Pix[m.PixOffset(b.Min.X, b.Min.Y+y):]
			for x := range w {
				p := row[4*x : 4*x+4]
				l := (uint32(p[0])+2*uint32(p[1])+uint32(p[2]))/4 + 255 - uint32(p[3])
				out[y*w+x] = byte(min(l, 255))
			}
		}
	case *image.Paletted:
		var pal [256]byte
		for i, c := range m.Palette {
			pal[i] = lum16(c)
		}
		for y := range h {
			row := m.Pix[m.PixOffset(b.Min.X, b.Min.Y+y):]
			for x := range w {
				out[y*w+x] = pal[row[x]]
			}
		}
	default:
		for y := range h {
			for x := range w {
				out[y*w+x] = lum16(m.At(b.Min.X+x, b.Min.Y+y))
			}
		}
	}
	return out
}

// lum16 is the gray level of one color over white.
func lum16(c color.Color) byte {
	r, g, bl, a := c.RGBA() // premultiplied, 16 bits
	return byte(min((r+2*g+bl)/4+0xffff-a, 0xffff) >> 8)
}
