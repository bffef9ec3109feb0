//go:build linux

package cmd

import "testing"

// TestPtyJobWait: on a terminal, job wait draws a progress bar that
// moves, with rate and time left, and ends with the outcome.
func TestPtyJobWait(t *testing.T) {
	bin := ptyBuildQmpsh(t)
	sock := jobVM(t, 1)[0]
	run(t, "", "exec", "-s", sock, "blockdev-backup", "job-id=b0", "device=src", "target=dst",
		"sync=full", "speed="+jobSpeed).mustExit(t, ExitOK)
	s := ptyStart(t, bin, "job", "wait", "-s", sock, "b0")
	// Part done: a percentage below 100, the bytes, the rate and the
	// time left, then the description.
	s.expect(`\r +([1-9]|[1-9][0-9])% \|█+ +\| \(\d+(\.\d+)?( [kMG]?B)?/1\.1 GB, \d+(\.\d+)? [kMG]?B/s\) \[\d+s:\d+s\] job b0 running\x1b\[0K`)
	s.expect(`\r 100% \|█{30}\| \(1\.1/1\.1 GB, [^)]*\) job b0 concluded\x1b\[0K\r\njob b0 completed\r\n`)
	s.expectExit(0)
}

// TestPtyMigrate: on a terminal, migrate --wait draws a bar of the RAM
// transferred, with what remains and the expected downtime.
func TestPtyMigrate(t *testing.T) {
	bin := ptyBuildQmpsh(t)
	sock, _ := migrateVM(t)
	// About two seconds for the few hundred kB a stopped 16 MB PC sends.
	run(t, "", "exec", "-s", sock, "migrate-set-parameters", "max-bandwidth=100000").mustExit(t, ExitOK)
	s := ptyStart(t, bin, "migrate", "-s", sock, "exec:cat > /dev/null", "--wait")
	s.expect(`\r +([1-9]|[1-9][0-9])% \|█+ +\| \(\d+(\.\d+)?( [kMG]?B)?/17 MB, \d+(\.\d+)? [kMG]?B/s\) \[\d+s:\d+s\] ` +
		`migration active \(remaining \d+(\.\d)? [kM]?B(, \d+\.\d Mbit/s)?, expected downtime \d+ ms\)\x1b\[0K`)
	// Full only once QEMU says completed.
	s.expect(`\r 100% \|█{30}\| \(17/17 MB, [^)]*\) migration completed[^\r\n]*\x1b\[0K\r\nmigration completed\r\n`)
	s.expectExit(0)
}
