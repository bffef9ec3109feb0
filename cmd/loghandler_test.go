package cmd

import (
	"bytes"
	"log/slog"
	"sync"
	"testing"
	"time"
)

// The client's warnings and the proxy's log lines come out of one handler:
// "qmpsh: " first, "warning: " on warnings, attributes but the logger's
// name after, nothing under the level.
func TestLineHandler(t *testing.T) {
	var mu sync.Mutex
	var buf bytes.Buffer
	h := &lineHandler{mu: &mu, w: &buf, level: slog.LevelInfo}
	l := slog.New(h).With("logger", "qmp")
	l.Debug("hidden")
	l.Info("client connected", "who", "c1")
	l.Warn("dropped events", "n", 3)
	want := "qmpsh: client connected who=c1\nqmpsh: warning: dropped events n=3\n"
	if buf.String() != want {
		t.Errorf("lineHandler wrote %q, want %q", buf.String(), want)
	}

	// A client of one target among many names it.
	buf.Reset()
	slog.New(&lineHandler{mu: &mu, w: &buf, level: slog.LevelWarn, target: "/run/vm/a.qmp"}).Warn("dropped events", "n", 3)
	if want := "qmpsh: warning: /run/vm/a.qmp: dropped events n=3\n"; buf.String() != want {
		t.Errorf("lineHandler with a target wrote %q, want %q", buf.String(), want)
	}

	buf.Reset()
	h.level = slog.LevelWarn
	l.Info("not shown")
	if buf.Len() != 0 {
		t.Errorf("at warning level, an info record wrote %q", buf.String())
	}
}

func TestLogLine(t *testing.T) {
	var buf bytes.Buffer
	now := time.Date(2026, 12, 6, 1, 2, 3, 40_000_000, time.FixedZone("X", 3600))
	logLine(&buf, now, []byte("--> {}\n"))
	if want := "2026-12-06T00:02:03.040000Z --> {}\n"; buf.String() != want {
		t.Errorf("logLine wrote %q, want %q", buf.String(), want)
	}
}
