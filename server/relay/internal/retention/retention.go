// Package retention deletes what a relay store keeps past its retention
// period (queue messages, file chunks), in batches and on a timer, for
// both of the relay's servers.
//
//	n, err := retention.Sweep(ctx, store.Expire, now.Add(-period), 1000)
//	go retention.Loop(ctx, time.Minute, log, "retention sweep", func(now time.Time) (int, error) { ... })
package retention

import (
	"context"
	"log/slog"
	"time"
)

// Expire deletes up to limit items older than cutoff, oldest first, and
// returns how many it deleted.
type Expire func(cutoff time.Time, limit int) (int, error)

// Sweep calls expire batch items at a time until a batch comes back
// short, expire fails or ctx ends, and returns the total deleted.
func Sweep(ctx context.Context, expire Expire, cutoff time.Time, batch int) (int, error) {
	total := 0
	for {
		n, err := expire(cutoff, batch)
		total += n
		if err != nil || n < batch || ctx.Err() != nil {
			return total, err
		}
	}
}

// Loop calls sweep with the time every interval until ctx ends, logging
// under name what it deleted and any failure (counts only).
func Loop(ctx context.Context, interval time.Duration, log *slog.Logger, name string, sweep func(now time.Time) (int, error)) {
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case now := <-t.C:
			if n, err := sweep(now); err != nil {
				log.Error(name+" failed", "err", err)
			} else if n > 0 {
				log.Info(name, "expired", n)
			}
		}
	}
}
