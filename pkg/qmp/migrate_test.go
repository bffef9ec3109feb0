package qmp_test

import (
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
