//go:build !linux

package main

// peakRSS needs Linux's ptrace and /proc; elsewhere the table says n/a.
func (p *prog) peakRSS(env []string) (float64, error) { return 0, errNoPtrace }
