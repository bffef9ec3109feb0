package cmd

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"

	"github.com/spf13/cobra"

	"github.com/qmpsh/qmpsh/pkg/qmp"
)

// MigrateOptions are the inputs of qmpsh migrate.
type MigrateOptions struct {
	*GlobalOptions
	Socket            string
	URI               string
	Wait              bool
	CancelOnInterrupt bool
}

func newMigrateCmd(g *GlobalOptions, runF func(context.Context, *MigrateOptions) error) *cobra.Command {
	opts := &MigrateOptions{GlobalOptions: g}
	c := &cobra.Command{
		Use:   "migrate [-s ADDR] URI [--wait] [--timeout D]",
		Short: "Start a migration and, with --wait, follow it to the end",
		Long: `Start migrating the VM to URI (migrate uri=URI): tcp:HOST:PORT,
unix:PATH, exec:COMMAND, fd:NAME... Without --wait, print migrate's
return value and exit.

With --wait, follow the migration (query-migrate and the MIGRATION
events, for which qmpsh turns on the "events" migration capability
before starting) until it has completed, failed or been cancelled. On a
terminal, a progress bar shows the RAM transferred of the total, the
speed, what remains and the expected downtime. Otherwise stdout gets one
JSON line per status change, query-migrate's answer, and a last line
{"outcome": completed, failed, cancelled, timeout, interrupted or
disconnected}, with "error" when there is one.

--timeout bounds the whole wait when given (otherwise only connecting
and starting). Ctrl-C stops waiting and leaves the migration running,
unless --cancel-on-interrupt is given: then it is cancelled
(migrate_cancel) and waited for.

The exit status is 0 when the migration completed (or, without --wait,
started), 1 when it failed or was cancelled (QEMU's error description on
stderr) or QEMU refused to start it, 4 when --timeout ran out, 3 when
the connection was lost, and 130 when Ctrl-C stopped the wait.

` + exitStatusHelp,
		Example: `  qmpsh migrate -s /tmp/qmp.sock "exec:cat > /tmp/vm.state" --wait
  qmpsh migrate tcp:dest.example:4444 --wait --timeout 30m`,
		Args: func(c *cobra.Command, args []string) error {
			if len(args) != 1 {
				return usageErrorf("migrate takes one URI, got %d arguments", len(args))
			}
			return nil
		},
		RunE: func(c *cobra.Command, args []string) error {
			opts.URI = args[0]
			return runF(c.Context(), opts)
		},
	}
	f := c.Flags()
	oneSocketFlag(f, &opts.Socket, "QMP server `ADDR` (default $QMP_SOCKET)")
	f.BoolVar(&opts.Wait, "wait", false, "follow the migration to its end, with progress")
	f.BoolVar(&opts.CancelOnInterrupt, "cancel-on-interrupt", false, "with --wait, on Ctrl-C (or SIGTERM, SIGHUP) cancel the migration and wait for it to end")
	return c
}

// migrationOutcome is the last JSON line of a migration's wait.
type migrationOutcome struct {
	Outcome string `json:"outcome"`
	Error   string `json:"error,omitempty"`
}

func migrateRun(ctx context.Context, opts *MigrateOptions) error {
	if ctx == nil {
		ctx = context.Background()
	}
	if err := opts.check(); err != nil {
		return err
	}
	if opts.URI == "" {
		return usageErrorf("migrate needs a URI")
	}
	if opts.CancelOnInterrupt && !opts.Wait {
		return usageErrorf("--cancel-on-interrupt needs --wait")
	}
	client, addr, done, err := opts.connectOne(ctx, opts.Socket)
	if err != nil {
		return err
	}
	defer done()
	// Listening before starting: a small VM migrates within the reply.
	var m *qmp.MigrationWatch
	if opts.Wait {
		m = client.WatchMigration()
		defer m.Close()
	}
	cctx, cancel := context.WithTimeout(ctx, opts.Timeout)
	ret, err := opts.startMigration(cctx, client)
	cancel()
	var ee *qmp.ExecuteError
	switch {
	case err == nil:
	case errors.As(err, &ee):
		return err
	default:
		return connectionError(addr, err)
	}
	if !opts.Wait || !opts.IO.OutTTY {
		opts.IO.Out.Write(opts.format().JSON(ret))
	}
	if !opts.Wait {
		return nil
	}
	return opts.followMigration(ctx, client, addr, m)
}

// startMigration turns on MIGRATION events, under --wait, and starts
// the migration.
func (opts *MigrateOptions) startMigration(ctx context.Context, client *qmp.Client) (json.RawMessage, error) {
	if opts.Wait {
		caps := map[string]any{"capabilities": []any{map[string]any{"capability": "events", "state": true}}}
		if _, err := client.Execute(ctx, "migrate-set-capabilities", caps); err != nil {
			return nil, err
		}
	}
	return client.Execute(ctx, "migrate", map[string]any{"uri": opts.URI})
}

func (opts *MigrateOptions) followMigration(ctx context.Context, client *qmp.Client, addr string, m *qmp.MigrationWatch) error {
	if opts.TimeoutSet {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, opts.Timeout)
		defer cancel()
	}
	r := newReporter(opts.IO)
	wopts := qmp.MigrationWaitOptions{
		OnUpdate: func(info qmp.MigrationInfo) {
			var done, total int64
			extra := ""
			if info.RAM != nil {
				done, total = info.RAM.Total-info.RAM.Remaining, info.RAM.Total
				extra = "remaining " + bytesText(info.RAM.Remaining)
				if info.RAM.Mbps > 0 { // QEMU's measure of the wire, beside the bar's of the RAM
					extra += fmt.Sprintf(", %.1f Mbit/s", info.RAM.Mbps)
				}
			}
			if info.ExpectedDowntime > 0 {
				if extra != "" {
					extra += ", "
				}
				extra += fmt.Sprintf("expected downtime %d ms", info.ExpectedDowntime)
			}
			r.update("migration", info.Status, done, total, extra, info.Raw)
		},
	}
	if opts.IO.OutTTY {
		wopts.Progress = progressEvery
	}
	ictx, stop := opts.signalContext(ctx, stopSignals...)
	_, err := m.Wait(ictx, wopts)
	stop()
	interrupted := errors.Is(err, context.Canceled) && ctx.Err() == nil
	if interrupted && opts.CancelOnInterrupt {
		fmt.Fprintln(opts.IO.ErrOut, "qmpsh: interrupted: cancelling the migration")
		_, err = client.Execute(ctx, "migrate_cancel", nil)
		if err == nil {
			_, err = m.Wait(ctx, wopts)
		}
		interrupted = false
	}
	out := migrationOutcome{Outcome: "completed"}
	var me *qmp.MigrationError
	var ee *qmp.ExecuteError
	switch {
	case err == nil:
	case interrupted:
		out.Outcome = "interrupted"
		err = &ExitError{Code: signalStatus(ictx), Err: errors.New("interrupted: stopped waiting; the migration goes on")}
	case errors.As(err, &me):
		out.Outcome, out.Error = me.Status, me.Desc
		err = &ExitError{Code: ExitQMPError, Err: err}
	case errors.As(err, &ee):
		out.Outcome, out.Error = "failed", err.Error()
	case errors.Is(err, qmp.ErrNoMigration):
		out.Outcome, out.Error = "failed", err.Error()
		err = &ExitError{Code: ExitQMPError, Err: err}
	case errors.Is(err, context.DeadlineExceeded):
		out.Outcome = "timeout"
		err = &wrapped{fmt.Sprintf("migration: timed out after %v waiting; the migration goes on", opts.Timeout), err}
	default:
		err = lostConnection(client, err)
		out.Outcome, out.Error = "disconnected", err.Error()
		err = connectionError(addr, err)
	}
	text := "migration " + out.Outcome
	if out.Error != "" {
		text += ": " + out.Error
	}
	r.finish(err == nil, text, out)
	return err
}

// bytesText is n bytes for people: 1.5 MB.
func bytesText(n int64) string {
	const unit = 1000
	if n < unit {
		return fmt.Sprintf("%d B", n)
	}
	f, u := float64(n), 0
	for f >= unit && u < 4 {
		f /= unit
		u++
	}
	return fmt.Sprintf("%.1f %cB", f, "kMGTP"[u-1])
}
