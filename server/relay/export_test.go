package relay

import (
	dto "github.com/prometheus/client_model/go"
	"github.com/wisp-chat/wisp/server/wire"
)

// OnVerify makes s call f with the key of every signature verification
// it does, before the verification. Call it before s serves.
func OnVerify(s *Server, f func(key []byte)) {
	verify := s.verify
	s.verify = func(t *wire.Transmission, sessID [32]byte, key []byte) bool {
		f(key)
		return verify(t, sessID, key)
	}
}

// DummyKey is the key s verifies against when there is no queue key.
func DummyKey(s *Server) []byte { return s.dummyKey[:] }

// ClosedFor is the number of connections m counted as closed for reason.
func ClosedFor(m *Metrics, reason string) float64 {
	var pb dto.Metric
	if err := m.closed.WithLabelValues(reason).Write(&pb); err != nil {
		panic(err)
	}
	return pb.GetCounter().GetValue()
}

// Delivered is the number of MSGs m counted.
func Delivered(m *Metrics) float64 {
	var pb dto.Metric
	if err := m.deliveries.Write(&pb); err != nil {
		panic(err)
	}
	return pb.GetCounter().GetValue()
}
