//go:build linux && (amd64 || arm64)

package main

import (
	"os"
	"syscall"
)

// posixFadvDontNeed is POSIX_FADV_DONTNEED.
const posixFadvDontNeed = 4

// dropFileCache evicts one file's pages from the kernel's page cache
// (posix_fadvise DONTNEED after an fsync), so that the next reader reads
// it from the disk, as after a reboot. Nothing else is evicted.
func dropFileCache(path string) error {
	f, err := os.Open(path)
	if err != nil {
		return err
	}
	defer f.Close()
	if err := f.Sync(); err != nil {
		return err
	}
	if _, _, e := syscall.Syscall6(syscall.SYS_FADVISE64, f.Fd(), 0, 0, posixFadvDontNeed, 0, 0); e != 0 {
		return e
	}
	return nil
}
