package pad

import (
	"bytes"
	"errors"
	"testing"
)

func TestRoundTrip(t *testing.T) {
	for _, tc := range []struct {
		msg  []byte
		size int
	}{
		{nil, 2},
		{[]byte{}, 10},
		{[]byte("a"), 3},
		{[]byte("hello"), 64},
		{bytes.Repeat([]byte{0}, 100), 102}, // zero bytes inside the message are fine
		{bytes.Repeat([]byte{7}, MaxMessage), MaxMessage + 2},
	} {
		p, err := Pad(tc.msg, tc.size)
		if err != nil {
			t.Fatalf("Pad(%d bytes, %d): %v", len(tc.msg), tc.size, err)
		}
		if len(p) != tc.size {
			t.Fatalf("Pad: got %d bytes, want %d", len(p), tc.size)
		}
		got, err := Unpad(p)
		if err != nil {
			t.Fatalf("Unpad: %v", err)
		}
		if !bytes.Equal(got, tc.msg) {
			t.Fatalf("Unpad: got %x, want %x", got, tc.msg)
		}
	}
}

func TestLayout(t *testing.T) {
	p, err := Pad([]byte("ab"), 6)
	if err != nil {
		t.Fatal(err)
	}
	if want := []byte{0, 2, 'a', 'b', 0, 0}; !bytes.Equal(p, want) {
		t.Fatalf("got %x, want %x", p, want)
	}
}

func TestPadTooLong(t *testing.T) {
	for _, tc := range []struct{ n, size int }{
		{1, 2}, {0, 1}, {0, 0}, {0, -5}, {10, 11}, {MaxMessage + 1, MaxMessage + 100},
	} {
		if _, err := Pad(make([]byte, tc.n), tc.size); !errors.Is(err, ErrTooLong) {
			t.Errorf("Pad(%d, %d): err = %v, want ErrTooLong", tc.n, tc.size, err)
		}
	}
	// Exactly at the limit is accepted.
	if _, err := Pad(make([]byte, 9), 11); err != nil {
		t.Errorf("Pad(9, 11): %v", err)
	}
}

func TestUnpadErrors(t *testing.T) {
	for _, tc := range []struct {
		name string
		buf  []byte
		want error
	}{
		{"nil", nil, ErrTooShort},
		{"empty", []byte{}, ErrTooShort},
		{"one byte", []byte{0}, ErrTooShort},
		{"length past end", []byte{0, 3, 'a', 'b'}, ErrLength},
		{"length 0xffff", []byte{0xff, 0xff, 0}, ErrLength},
		{"length one past", []byte{0, 1}, ErrLength},
		{"bad fill", []byte{0, 1, 'a', 0, 1}, ErrFill},
		{"bad fill first", []byte{0, 0, '#'}, ErrFill},
	} {
		if _, err := Unpad(tc.buf); !errors.Is(err, tc.want) {
			t.Errorf("%s: err = %v, want %v", tc.name, err, tc.want)
		}
	}
}

// TestSingleBitFlips checks that every bit flip of a padded buffer either
// fails or changes the message (padding has exactly one form per message).
func TestSingleBitFlips(t *testing.T) {
	msg := []byte("padding")
	p, err := Pad(msg, 16)
	if err != nil {
		t.Fatal(err)
	}
	for i := range len(p) * 8 {
		q := bytes.Clone(p)
		q[i/8] ^= 1 << (i % 8)
		got, err := Unpad(q)
		if err == nil && bytes.Equal(got, msg) {
			t.Fatalf("bit %d: flipped buffer unpads to the same message", i)
		}
	}
}
