//go:build race && !js

package chat

// raceEnabled: the race detector slows the scale tests tenfold; they run
// without it (make test-scale).
const raceEnabled = true
