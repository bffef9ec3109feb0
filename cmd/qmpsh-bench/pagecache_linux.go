package main

import (
	"os"

	"golang.org/x/sys/unix"
)

// evict writes path's pages out and drops them from the page cache, so
// that the next run of the program reads it back from disk.
func evict(path string) error {
	f, err := os.Open(path)
	if err != nil {
		return err
	}
	defer f.Close()
	if err := f.Sync(); err != nil {
		return err
	}
	return unix.Fadvise(int(f.Fd()), 0, 0, unix.FADV_DONTNEED)
}
