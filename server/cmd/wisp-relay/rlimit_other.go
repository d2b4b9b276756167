//go:build !unix

package main

// descriptorLimit: no descriptor limit is known on this system.
func descriptorLimit() (uint64, bool) { return 0, false }
