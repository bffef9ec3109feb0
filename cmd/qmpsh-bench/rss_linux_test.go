package main

import (
	"os"
	"testing"
)

// vmHWM is the one reader of VmHWM for the shell, exec and proxy tables.
func TestVMHWMOfSelf(t *testing.T) {
	hwm, err := vmHWM(os.Getpid())
	if err != nil {
		t.Fatal(err)
	}
	// A Go test binary has touched at least a megabyte; a value off by
	// 1024 (kB read as bytes) would be below it.
	if hwm < 1<<20 {
		t.Errorf("vmHWM(self) = %v bytes, want at least 1 MiB", hwm)
	}
	if _, err := vmHWM(-1); err == nil {
		t.Error("vmHWM(-1) succeeded")
	}
}
