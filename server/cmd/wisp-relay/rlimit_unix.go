//go:build unix

package main

import "syscall"

// descriptorLimit returns the process's open-file limit (the Go runtime
// has already raised the soft limit to the hard one); an unlimited one counts as none.
func descriptorLimit() (uint64, bool) {
	var r syscall.Rlimit
	if err := syscall.Getrlimit(syscall.RLIMIT_NOFILE, &r); err != nil || r.Cur >= 1<<62 {
		return 0, false
	}
	return uint64(r.Cur), true
}
