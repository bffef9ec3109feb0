//go:build linux

package cmd

import "testing"

// ptyBarBytes is an amount as the bar shows it (formatBytes, SI units).
const ptyBarBytes = `\d+(\.\d+)? [kMG]?B`

// ptyBarPart is a bar part done, as bar.draw draws it: a percentage
// below 100, the bar, the bytes done of the total, a rate and the time
// left, then the status.
const ptyBarPart = `\r +([1-9]|[1-9][0-9])% \|█+ *\| ` + ptyBarBytes + `/` + ptyBarBytes + ` ` +
	ptyBarBytes + `/s (\d+[hms])+ left `

// ptyBarFull is the full bar: 100%, 28 blocks between the borders.
const ptyBarFull = `\r100% \|█{28}\| ` + ptyBarBytes + `/` + ptyBarBytes + ` [^\r\n]* `

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
	s.expect(ptyBarPart + `job b0 running\x1b\[0K`)
	s.expect(ptyBarFull + `job b0 concluded\x1b\[0K\r\njob b0 completed\r\n`)
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
	s.expect(ptyBarPart +
		`migration active \(remaining \d+(\.\d)? [kM]?B(, \d+\.\d Mbit/s)?, expected downtime \d+ ms\)\x1b\[0K`)
	// Full only once QEMU says completed.
	s.expect(ptyBarFull + `migration completed[^\r\n]*\x1b\[0K\r\nmigration completed\r\n`)
	s.expectExit(0)
}
