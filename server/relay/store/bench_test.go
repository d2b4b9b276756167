package store

import (
	"crypto/rand"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/wisp-chat/wisp/server/wire"
)

// BenchmarkPutAck measures group-committed Put+Ack pairs from 100
// concurrent queues with 16,000-byte bodies.
func BenchmarkPutAck(b *testing.B) {
	s, err := Open(filepath.Join(b.TempDir(), "q.db"))
	if err != nil {
		b.Fatal(err)
	}
	defer s.Close()
	const nq = 100
	keys := make([]QueueKey, nq)
	for i := range keys {
		var id wire.QueueID
		_, _ = rand.Read(id[:])
		keys[i] = RecipientKey(id)
		if err := s.Create(keys[i], SenderKeyOf(id), Queue{}); err != nil {
			b.Fatal(err)
		}
	}
	body := make([]byte, wire.MaxBodySize)
	b.ResetTimer()
	var wg sync.WaitGroup
	per := b.N/nq + 1
	for _, k := range keys {
		wg.Go(func() {
			for range per {
				m := Message{Time: time.Now(), Body: body}
				_, _ = rand.Read(m.ID[:])
				if err := s.Put(k, m, 128); err != nil {
					b.Error(err)
					return
				}
				if _, _, err := s.Ack(k, m.ID); err != nil {
					b.Error(err)
					return
				}
			}
		})
	}
	wg.Wait()
}
