//go:build !race && !js

package chat

const raceEnabled = false
