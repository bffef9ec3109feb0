package qmp_test

import (
	"context"
	"errors"
	"slices"
	"testing"
	"time"

	"github.com/qmpsh/qmpsh/pkg/qmp"
	"github.com/qmpsh/qmpsh/pkg/qmp/qmptest"
)

func TestMigrationWatch(t *testing.T) {
	c := connect(t, qmptest.StartQEMU(t, "-M", "pc", "-m", "16", "-S"))
	ctx := testContext(t)

	t.Run("NoMigration", func(t *testing.T) {
		m := c.WatchMigration()
		defer m.Close()
		if _, err := m.Wait(ctx, qmp.MigrationWaitOptions{}); !errors.Is(err, qmp.ErrNoMigration) {
			t.Fatalf("Wait = %v, want ErrNoMigration", err)
		}
	})
	t.Run("FailedWithoutEvents", func(t *testing.T) {
		// Without the events capability, polling finds the end.
		m := c.WatchMigration()
		defer m.Close()
		mustExec(t, c, "migrate", map[string]any{"uri": "exec:exit 0"})
		info, err := m.Wait(ctx, qmp.MigrationWaitOptions{Progress: 10 * time.Millisecond})
		var me *qmp.MigrationError
		if !errors.As(err, &me) || me.Status != "failed" || err.Error() != "migration failed: Unable to write to command: Broken pipe" ||
			info.Status != "failed" {
			t.Fatalf("Wait = %+v, %v", info, err)
		}
	})
	t.Run("CompletedWithEvents", func(t *testing.T) {
		mustExec(t, c, "migrate-set-capabilities", map[string]any{
			"capabilities": []any{map[string]any{"capability": "events", "state": true}}})
		m := c.WatchMigration()
		defer m.Close()
		mustExec(t, c, "migrate", map[string]any{"uri": "exec:cat > /dev/null"})
		var seen []string
		info, err := m.Wait(ctx, qmp.MigrationWaitOptions{OnUpdate: func(i qmp.MigrationInfo) { seen = append(seen, i.Status) }})
		if err != nil || info.Status != "completed" || info.RAM == nil || info.RAM.Total < 16<<20 || info.RAM.Remaining != 0 ||
			seen[len(seen)-1] != "completed" || slices.Index(seen, "completed") != len(seen)-1 {
			t.Fatalf("Wait = %+v, %v; saw %v", info, err, seen)
		}
	})
}

// TestMigrationWaitAsksAgainAfterInterrupt: a Wait whose ctx ends while
// it asks about the MIGRATION event it just took (the last one,
// completed) leaves the question to the next Wait, which must not wait
// for another event: none comes after completed, and migrate_cancel on
// a completed migration sends none. A fake server holds that
// query-migrate's reply until the next request, as a slow QEMU would.
func TestMigrationWaitAsksAgainAfterInterrupt(t *testing.T) {
	emit := make(chan struct{}, 1) // the first update was reported
	asked := make(chan struct{})   // the query after the event is held
	s := fakeServer(t, func(c *qmptest.Conn) {
		if !negotiated(c) {
			return
		}
		var held *qmptest.Request
		queries := 0
		for {
			req, err := c.ReadRequest()
			if err != nil {
				return
			}
			if held != nil {
				c.Reply(held.ID, map[string]any{"status": "completed"})
				held = nil
			}
			if req.Execute != "query-migrate" {
				c.ReplyError(req.ID, "CommandNotFound", "The command "+req.Execute+" has not been found")
				continue
			}
			switch queries++; queries {
			case 1:
				c.Reply(req.ID, map[string]any{"status": "active"})
				select {
				case <-emit:
				case <-c.Done():
					return
				}
				c.Event("MIGRATION", map[string]any{"status": "completed"})
			case 2:
				held = req
				close(asked)
			default:
				c.Reply(req.ID, map[string]any{"status": "completed"})
			}
		}
	})
	c := connect(t, s.Addr)
	m := c.WatchMigration()
	defer m.Close()
	ctx, cancel := context.WithCancel(testContext(t))
	go func() {
		select {
		case <-asked:
		case <-ctx.Done():
		}
		cancel()
	}()
	var seen []string
	opts := qmp.MigrationWaitOptions{OnUpdate: func(i qmp.MigrationInfo) {
		seen = append(seen, i.Status)
		select {
		case emit <- struct{}{}:
		default:
		}
	}}
	if _, err := m.Wait(ctx, opts); !errors.Is(err, context.Canceled) {
		t.Fatalf("first Wait = %v, want context.Canceled", err)
	}
	info, err := m.Wait(testContext(t), opts)
	if err != nil || info.Status != "completed" || !slices.Equal(seen, []string{"active", "completed"}) {
		t.Fatalf("second Wait = %+v, %v; saw %v", info, err, seen)
	}
}
