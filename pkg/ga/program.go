package ga

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"math"
	"time"
)

// Program is a program to run in the guest with guest-exec.
type Program struct {
	Path  string   // the program; the guest's PATH finds a bare name
	Args  []string // its arguments, without the program name
	Env   []string // KEY=VALUE, the whole environment when not empty
	Input []byte   // its standard input, nil for none
}

// Result is how a program ended and what it wrote. The agent keeps at
// most 16 MiB of each stream; what it dropped is flagged as truncated.
type Result struct {
	PID             int64
	ExitCode        int // the program's exit code; 128+Signal when a signal ended it
	Signal          int // the signal that ended it, 0 if none
	Stdout, Stderr  []byte
	StdoutTruncated bool
	StderrTruncated bool
}

// Polling guest-exec-status: at once, then doubling from pollMin up to
// pollMax, so that a short program costs a few round trips and a long
// one a few polls a second.
const (
	pollMin = 500 * time.Microsecond
	pollMax = 200 * time.Millisecond
)

// execArgs are guest-exec's arguments.
type execArgs struct {
	Path          string   `json:"path"`
	Arg           []string `json:"arg,omitempty"`
	Env           []string `json:"env,omitempty"`
	InputData     []byte   `json:"input-data,omitempty"` // encoding/json writes base64
	CaptureOutput bool     `json:"capture-output"`
}

// RequestSize returns the length of the guest-exec request that starts
// p, its id at its longest. Start refuses a request longer than
// MaxRequestSize: the input goes in it base64-encoded, so it may be about
// 48 MiB at most.
func (p Program) RequestSize() int {
	msg, err := encodeRequest("guest-exec", execArgs{p.Path, p.Args, p.Env, nil, true}, math.MaxUint64)
	if err != nil {
		return 0 // Start reports the error
	}
	if len(p.Input) == 0 {
		return len(msg)
	}
	return len(msg) + len(`,"input-data":""`) + base64.StdEncoding.EncodedLen(len(p.Input))
}

// Start starts p with its output captured and returns its guest pid, for
// Wait. A program whose request would be longer than MaxRequestSize (see
// RequestSize) is not started: the error is a *RequestTooLargeError.
func (c *Client) Start(ctx context.Context, p Program) (int64, error) {
	if n := p.RequestSize(); n > MaxRequestSize {
		return 0, &RequestTooLargeError{Command: "guest-exec", Size: n}
	}
	ret, err := c.Exec(ctx, "guest-exec", execArgs{p.Path, p.Args, p.Env, p.Input, true})
	if err != nil {
		return 0, err
	}
	var r struct {
		PID *int64 `json:"pid"`
	}
	if err := json.Unmarshal(ret, &r); err != nil || r.PID == nil {
		return 0, &ProtocolError{Msg: fmt.Sprintf("guest-exec returned %s, not a pid", truncate(ret))}
	}
	return *r.PID, nil
}

// Wait polls guest-exec-status until program pid exits. If ctx ends
// first, the program goes on running in the guest.
func (c *Client) Wait(ctx context.Context, pid int64) (*Result, error) {
	var timer *time.Timer
	delay := time.Duration(0)
	for {
		if delay > 0 {
			if timer == nil {
				timer = time.NewTimer(delay)
				defer timer.Stop()
			} else {
				timer.Reset(delay)
			}
			select {
			case <-timer.C:
			case <-ctx.Done():
				return nil, fmt.Errorf("waiting for guest program %d to exit (it goes on running): %w", pid, ctx.Err())
			}
		}
		ret, err := c.Exec(ctx, "guest-exec-status", map[string]int64{"pid": pid})
		if err != nil {
			return nil, err
		}
		var st struct {
			Exited       bool   `json:"exited"`
			ExitCode     *int   `json:"exitcode"`
			Signal       *int   `json:"signal"`
			OutData      []byte `json:"out-data"`
			ErrData      []byte `json:"err-data"`
			OutTruncated bool   `json:"out-truncated"`
			ErrTruncated bool   `json:"err-truncated"`
		}
		if err := json.Unmarshal(ret, &st); err != nil {
			return nil, &ProtocolError{Msg: "guest-exec-status: " + err.Error()}
		}
		if st.Exited {
			r := &Result{PID: pid, Stdout: st.OutData, Stderr: st.ErrData,
				StdoutTruncated: st.OutTruncated, StderrTruncated: st.ErrTruncated}
			switch {
			case st.Signal != nil:
				r.Signal = *st.Signal
				r.ExitCode = 128 + *st.Signal
			case st.ExitCode != nil:
				r.ExitCode = *st.ExitCode
			}
			return r, nil
		}
		switch {
		case delay == 0:
			delay = pollMin
		case delay < pollMax:
			delay = min(2*delay, pollMax)
		}
	}
}

// Run runs p in the guest and waits for it to exit. A program that
// exits non-zero is no error: see Result.ExitCode.
func (c *Client) Run(ctx context.Context, p Program) (*Result, error) {
	pid, err := c.Start(ctx, p)
	if err != nil {
		return nil, err
	}
	return c.Wait(ctx, pid)
}
