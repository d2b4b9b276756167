//go:build race && !js

package agent

// raceEnabled: the race detector slows the ratchet about tenfold, so the
// throughput test sends fewer messages under it.
const raceEnabled = true
