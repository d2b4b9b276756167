package files

import (
	"bytes"
	"errors"
	"testing"
)

// FuzzUnmarshalDescription: any input either fails with
// ErrInvalidDescription or decodes to a description that encodes back to
// exactly the input.
func FuzzUnmarshalDescription(f *testing.F) {
	for _, size := range []int64{0, 70 << 10, 5 << 20} {
		b, err := fakeDescription(f, size, "127.0.0.1").MarshalBinary()
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b)
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		d, err := UnmarshalDescription(b)
		if err != nil {
			if !errors.Is(err, ErrInvalidDescription) {
				t.Fatalf("error not wrapping ErrInvalidDescription: %v", err)
			}
			return
		}
		again, err := d.MarshalBinary()
		if err != nil || !bytes.Equal(again, b) {
			t.Fatalf("decoded but re-encodes differently: %v", err)
		}
	})
}

// FuzzUnmarshalUpload: the same property for the state of a resumable
// upload.
func FuzzUnmarshalUpload(f *testing.F) {
	for _, r := range []int{1, 3} { // version 1 and version 2
		ds := fakeDescriptions(f, 9<<20, "127.0.0.1", r)
		u := &Upload{Size: ds[0].Size, Key: ds[0].Key, Relay: ds[0].Relay, Recipients: r}
		for i := range 2 {
			snd := fakeSenderChunk(f, ds[0].Class)
			u.put(UploadedChunk{Index: i * 2, Sender: snd, Recipients: chunkRecords(ds, i*2)})
			b, err := u.MarshalBinary()
			if err != nil {
				f.Fatal(err)
			}
			f.Add(b)
		}
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		u, err := UnmarshalUpload(b)
		if err != nil {
			if !errors.Is(err, ErrInvalidDescription) {
				t.Fatalf("error not wrapping ErrInvalidDescription: %v", err)
			}
			return
		}
		again, err := u.MarshalBinary()
		if err != nil || !bytes.Equal(again, b) {
			t.Fatalf("decoded but re-encodes differently: %v", err)
		}
	})
}
