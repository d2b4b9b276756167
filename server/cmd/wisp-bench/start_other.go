//go:build !(linux && (amd64 || arm64))

package main

import "errors"

// dropFileCache is available on Linux (amd64, arm64) only: start then
// skips its cold-cache rows.
func dropFileCache(string) error {
	return errors.New("dropping a file's page cache is not supported here")
}
