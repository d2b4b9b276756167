//go:build !race && !js

package agent

const raceEnabled = false
