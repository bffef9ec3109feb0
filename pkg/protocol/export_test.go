package protocol

import "time"

// SetHandshakeTimeout sets handshakeTimeout for a test and returns a
// function that restores it.
func SetHandshakeTimeout(d time.Duration) (restore func()) {
	old := handshakeTimeout
	handshakeTimeout = d
	return func() { handshakeTimeout = old }
}
