//go:build qmpshdeps

package main

// Built with -tags qmpshdeps, rawqmp links and initialises every package
// the qmpsh binary does and makes the same exchange as without the tag:
// qmpsh-bench proc times it beside both, to show how much of qmpsh
// exec's time goes to starting a program with qmpsh's dependencies,
// before any code of qmpsh's runs.
import _ "github.com/qmpsh/qmpsh/cmd"
