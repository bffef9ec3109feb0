package cmd

import (
	"regexp"
	"testing"

	"github.com/qmpsh/qmpsh/pkg/ga/gatest"
)

// Tab completes the commands the agent has enabled, from guest-info.
func TestGAPtyTabCompletes(t *testing.T) {
	bin := ptyBuildQmpsh(t)
	a := gatest.StartAgent(t)
	s := ptyStart(t, bin, "ga", "connect", "--color", "never", a.Path)
	s.expect(`Connected to the guest agent at ` + regexp.QuoteMeta(a.Path) + `\. `)
	s.expect(regexp.QuoteMeta("(QGA) ") + `(?: \x08)?$`)
	s.send("guest-get-osin\t")
	s.expect(regexp.QuoteMeta("(QGA) guest-get-osinfo") + `(?: \x08)?$`)
	s.send("\r")
	s.expect(`"kernel-release"`)
	s.send("quit\r")
	s.expectExit(0)
}
