package ratchet

import (
	"crypto/rand"
	"testing"
)

// connectReal connects with crypto/rand and the production KEM path.
func connectReal(b *testing.B, pq bool) (joiner, inviter *State) {
	j, i := connect(b, rand.Reader, pq)
	j.encapsulateHook, i.encapsulateHook = nil, nil
	return j, i
}

func benchModes(b *testing.B, f func(b *testing.B, pq bool)) {
	b.Run("x25519", func(b *testing.B) { f(b, false) })
	b.Run("pq", func(b *testing.B) { f(b, true) })
}

// BenchmarkSeal seals full envelopes (MaxPlaintext) in one sending chain.
func BenchmarkSeal(b *testing.B) {
	benchModes(b, func(b *testing.B, pq bool) {
		j, _ := connectReal(b, pq)
		pt := make([]byte, MaxPlaintext)
		b.SetBytes(EnvelopeSize)
		for b.Loop() {
			if _, err := j.Seal(rand.Reader, pt); err != nil {
				b.Fatal(err)
			}
		}
	})
}

// BenchmarkOpen opens full envelopes of one receiving chain, in order.
func BenchmarkOpen(b *testing.B) {
	benchModes(b, func(b *testing.B, pq bool) {
		j, i := connectReal(b, pq)
		pt := make([]byte, MaxPlaintext)
		const batch = 256
		envs := make([][]byte, batch)
		for k := range envs {
			envs[k] = seal(b, j, rand.Reader, pt)
		}
		snapshot := marshal(b, i)
		b.SetBytes(EnvelopeSize)
		k := 0
		for b.Loop() {
			if k == batch {
				b.StopTimer()
				i, k = restore(b, snapshot), 0
				b.StartTimer()
			}
			if _, err := i.Open(envs[k]); err != nil {
				b.Fatal(err)
			}
			k++
		}
	})
}

// BenchmarkDHRatchetStep measures one direction change: a Seal that does
// the sending half of a DH ratchet step (new X25519 key, and with pq a new
// ML-KEM key and an encapsulation) and the Open that does the receiving
// half (and with pq a decapsulation), each with a full envelope.
func BenchmarkDHRatchetStep(b *testing.B) {
	benchModes(b, func(b *testing.B, pq bool) {
		j, i := connectReal(b, pq)
		pt := make([]byte, MaxPlaintext)
		from, to := i, j
		for b.Loop() {
			env, err := from.Seal(rand.Reader, pt)
			if err != nil {
				b.Fatal(err)
			}
			if _, err := to.Open(env); err != nil {
				b.Fatal(err)
			}
			from, to = to, from
		}
	})
}

func BenchmarkMarshal(b *testing.B) {
	j, i := connect(b, rand.Reader, true)
	open(b, j, seal(b, i, rand.Reader, nil))
	for b.Loop() {
		if _, err := j.MarshalBinary(); err != nil {
			b.Fatal(err)
		}
	}
}
