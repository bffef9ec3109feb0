package qmp

import (
	"context"
	"encoding/json"
	"errors"
	"time"
)

// MigrationInfo is the part of query-migrate's answer that a wait
// follows; Raw is the whole answer.
type MigrationInfo struct {
	Status           string          `json:"status"`
	RAM              *MigrationRAM   `json:"ram,omitempty"`
	ExpectedDowntime int64           `json:"expected-downtime,omitempty"` // milliseconds
	ErrorDesc        string          `json:"error-desc,omitempty"`
	Raw              json.RawMessage `json:"-"`
}

// MigrationRAM is query-migrate's "ram": bytes, and the rate in Mbit/s.
type MigrationRAM struct {
	Transferred int64   `json:"transferred"`
	Remaining   int64   `json:"remaining"`
	Total       int64   `json:"total"`
	Mbps        float64 `json:"mbps"`
}

// QueryMigrate returns the state of the current (or last) migration.
func (c *Client) QueryMigrate(ctx context.Context) (MigrationInfo, error) {
	ret, err := c.Execute(ctx, "query-migrate", nil)
	if err != nil {
		return MigrationInfo{}, err
	}
	var info MigrationInfo
	if err := json.Unmarshal(ret, &info); err != nil {
		return MigrationInfo{}, protocolErrorf("query-migrate returned %s: %v", truncate(ret, 80), err)
	}
	info.Raw = ret
	return info, nil
}

// MigrationError is how a migration ended when it did not complete:
// failed, with QEMU's description, or cancelled.
type MigrationError struct {
	Status string // "failed" or "cancelled"
	Desc   string // QEMU's error-desc; may be empty
}

func (e *MigrationError) Error() string {
	if e.Desc == "" {
		return "migration " + e.Status
	}
	return "migration " + e.Status + ": " + e.Desc
}

// ErrNoMigration is returned by MigrationWatch.Wait when QEMU has not
// started any migration.
var ErrNoMigration = errors.New("no migration has been started")

// migrationEnded says whether a migration in status s is over.
func migrationEnded(s string) bool {
	return s == "completed" || s == "failed" || s == "cancelled"
}

// MigrationWatch follows a migration: it listens for MIGRATION events
// from the moment it is made, so make it before starting the migration.
// QEMU sends them only with the "events" migration capability on; without
// it, Wait relies on polling (MigrationWaitOptions.Progress). Close it
// when done.
type MigrationWatch struct {
	c    *Client
	l    *Listener
	info MigrationInfo
	// unasked: an event was taken but the query it calls for did not
	// answer, because a Wait's ctx ended in between. The event is gone
	// from the listener, and it may have been the last (completed), so
	// the next Wait asks first.
	unasked bool
}

// WatchMigration starts following migrations.
func (c *Client) WatchMigration() *MigrationWatch {
	return &MigrationWatch{c: c, l: c.Listen("MIGRATION")}
}

// Close stops listening.
func (m *MigrationWatch) Close() {
	m.l.Close()
}

// MigrationWaitOptions say what MigrationWatch.Wait does on the way.
type MigrationWaitOptions struct {
	// Progress is how often to ask QEMU (query-migrate) while the
	// migration runs; 0 asks only when a MIGRATION event comes.
	Progress time.Duration
	// OnUpdate, if set, is called on Wait's goroutine with each new
	// state: at each status change, in order, and when Progress finds
	// the numbers changed.
	OnUpdate func(MigrationInfo)
}

// Wait follows the migration until it has completed, failed or been
// cancelled, and returns its last state: nil for completed, else a
// *MigrationError, ctx's error, or the connection's. Like
// JobWatch.Wait, it may be called again after ctx ends; one Wait at a
// time.
func (m *MigrationWatch) Wait(ctx context.Context, opts MigrationWaitOptions) (MigrationInfo, error) {
	if m.info.Status == "" {
		// Events queued by the first answer are older than it, or
		// about as old: they are dropped, and the state asked for again
		// if there were any, so that the first report is not followed
		// by older statuses.
		info, err := m.c.QueryMigrate(ctx)
		for err == nil && m.l.Len() > 0 {
			for n := m.l.Len(); n > 0; n-- {
				if _, ok := takeArrived(m.l); !ok {
					break
				}
			}
			info, err = m.c.QueryMigrate(ctx)
		}
		if err != nil {
			return info, err
		}
		if info.Status == "" || info.Status == "none" { // QEMU 7.2 answers {}
			return info, ErrNoMigration
		}
		m.update(info, opts)
	} else if m.unasked {
		info, err := m.c.QueryMigrate(ctx)
		if err != nil {
			return m.info, err
		}
		m.unasked = false
		m.update(info, opts)
	}
	var tick <-chan time.Time
	if opts.Progress > 0 {
		t := time.NewTicker(opts.Progress)
		defer t.Stop()
		tick = t.C
	}
	for !migrationEnded(m.info.Status) {
		ev, ticked, err := m.c.nextEvent(ctx, m.l, tick)
		if err != nil {
			return m.info, err
		}
		m.unasked = true
		info, err := m.c.QueryMigrate(ctx)
		if err != nil {
			return m.info, err
		}
		m.unasked = false
		if !ticked {
			// Statuses in the order of the events; the query may be
			// ahead, and then its own status comes with a later event
			// or, if it is the last, ends the wait below.
			var d struct {
				Status string `json:"status"`
			}
			// Such a passed status is shown with the numbers known
			// before it, and the event's data as its Raw.
			if json.Unmarshal(ev.Data, &d) == nil && d.Status != "" && d.Status != info.Status {
				shown := m.info
				shown.Status, shown.ErrorDesc, shown.Raw = d.Status, "", ev.Data
				m.update(shown, opts)
			}
		}
		m.update(info, opts)
	}
	switch m.info.Status {
	case "failed", "cancelled":
		return m.info, &MigrationError{Status: m.info.Status, Desc: m.info.ErrorDesc}
	}
	return m.info, nil
}

// update records info and reports it if anything a watcher sees changed.
func (m *MigrationWatch) update(info MigrationInfo, opts MigrationWaitOptions) {
	old := m.info
	m.info = info
	same := old.Status == info.Status && old.ExpectedDowntime == info.ExpectedDowntime &&
		(old.RAM == nil) == (info.RAM == nil) && (old.RAM == nil || *old.RAM == *info.RAM)
	if !same && opts.OnUpdate != nil {
		opts.OnUpdate(info)
	}
}
