package files

import "time"

// ChunkOpsInUse returns how many of the relay-wide chunk slots are held.
func (s *Server) ChunkOpsInUse() int { return len(s.chunkOps) }

// WithClock makes the server's FNEW budgets use now.
func WithClock(cfg *Config, now func() time.Time) { cfg.now = now }
