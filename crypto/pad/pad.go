// Package pad pads messages to a fixed size so that every envelope of a kind
// has exactly one length on the wire.
//
// A padded buffer of size n is
//
//	length (2 bytes, big-endian) || message (length bytes) || 0x00 fill (n-2-length bytes)
//
// Usage:
//
//	buf, err := pad.Pad(msg, 15960) // len(buf) == 15960
//	msg, err := pad.Unpad(buf)      // errors (never panics) on any malformed buffer
//
// Unpad rejects a buffer shorter than the prefix, a length larger than the
// buffer, and any non-zero fill byte, so each message has exactly one padded
// form. Pad and Unpad are used inside authenticated encryption: the checks
// are about strictness, not secrecy.
package pad

import (
	"encoding/binary"
	"errors"
	"fmt"
)

const (
	// PrefixSize is the size of the length prefix.
	PrefixSize = 2
	// MaxMessage is the longest message the prefix can describe.
	MaxMessage = 1<<16 - 1
)

// Errors returned by Pad and Unpad.
var (
	ErrTooLong  = errors.New("pad: message longer than the padded size allows")
	ErrTooShort = errors.New("pad: buffer shorter than the length prefix")
	ErrLength   = errors.New("pad: length prefix larger than the buffer")
	ErrFill     = errors.New("pad: non-zero fill byte")
)

// Pad returns msg padded to exactly size bytes. It fails with ErrTooLong when
// msg does not fit (len(msg) > size-2 or len(msg) > MaxMessage).
func Pad(msg []byte, size int) ([]byte, error) {
	if len(msg) > MaxMessage || len(msg) > size-PrefixSize {
		return nil, fmt.Errorf("%w: %d bytes into %d", ErrTooLong, len(msg), size)
	}
	out := make([]byte, size)
	binary.BigEndian.PutUint16(out, uint16(len(msg)))
	copy(out[PrefixSize:], msg)
	return out, nil
}

// Unpad returns the message inside a padded buffer. The result aliases buf.
func Unpad(buf []byte) ([]byte, error) {
	if len(buf) < PrefixSize {
		return nil, fmt.Errorf("%w: %d bytes", ErrTooShort, len(buf))
	}
	n := int(binary.BigEndian.Uint16(buf))
	if n > len(buf)-PrefixSize {
		return nil, fmt.Errorf("%w: %d > %d", ErrLength, n, len(buf)-PrefixSize)
	}
	for _, b := range buf[PrefixSize+n:] {
		if b != 0 {
			return nil, ErrFill
		}
	}
	return buf[PrefixSize : PrefixSize+n], nil
}
