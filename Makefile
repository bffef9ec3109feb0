# qmpsh: see README.md. Targets install what they need on a fresh Debian machine.
GO ?= go
BIN := qmpsh
SUDO := $(shell [ "$$(id -u)" = 0 ] || echo sudo)

.PHONY: all build test bench fuzz demo qemu clean

all: build

build:
	$(GO) build -o $(BIN) .

# qemu installs QEMU from Debian's packages when it is missing; the
# integration tests and the demo talk to a real QEMU.
qemu:
	@if ! command -v qemu-system-x86_64 >/dev/null 2>&1 || ! command -v qemu-storage-daemon >/dev/null 2>&1; then \
		echo "installing QEMU from Debian packages"; \
		$(SUDO) apt-get update -qq && DEBIAN_FRONTEND=noninteractive $(SUDO) apt-get install -y -qq qemu-system-x86 >/dev/null; \
	fi

test: qemu
	$(GO) vet ./...
	$(GO) test -race -count=1 ./...

# bench runs the benchmark driver, cmd/qmpsh-bench (see README.md,
# Performance). Its ratio subcommand runs the client's benchmarks
# (pkg/qmp/bench_test.go) against the fake server and QEMU, each beside a
# raw-socket floor measured in the same run, and prints the client/floor
# ratios against their targets; BENCHFLAGS passes options to it, e.g.
# BENCHFLAGS='-rounds 5 -benchtime 2s'. Its proc subcommand times
# `qmpsh exec query-status` as a whole process beside a minimal raw Go
# program (testdata/rawqmp), runs interleaved on one QEMU, and reports the
# peak RSS of qmpsh exec and of an idle shell; BENCHPROCFLAGS passes
# options to it, e.g. BENCHPROCFLAGS='-runs 500 -target 1.5 -strict'.
# Last, BenchmarkExecFanOut200 times exec on 200 fake servers at once.
bench: qemu
	$(GO) run ./cmd/qmpsh-bench ratio $(BENCHFLAGS)
	$(GO) run ./cmd/qmpsh-bench proc $(BENCHPROCFLAGS)
	$(GO) test -run '^$$' -bench FanOut -benchtime 10x ./cmd

# demo opens the shell on a throwaway QEMU: a q35 machine with 128 MiB and
# no disk, paused (-S), so it needs no KVM and burns no CPU. QEMU is
# stopped, and its directory removed, when the shell exits, however it
# exits (Ctrl-D, quit, a lost connection, a closed terminal, make
# interrupted).
#
# -daemonize returns only once QEMU has started, its QMP socket listening,
# so nothing polls for the socket. QEMU is then not our child, so to wait
# for it to be gone after the kill, it inherits the write end of a FIFO
# (fd 4): reading the FIFO meets end-of-file when the last writer, QEMU,
# has exited.
demo: build qemu
	@dir=$$(mktemp -d "$${TMPDIR:-/tmp}/qmpsh-demo.XXXXXX") || exit 1; \
	trap 'if [ -s "$$dir/qemu.pid" ]; then kill "$$(cat "$$dir/qemu.pid")" 2>/dev/null; cat <&5; fi; rm -rf "$$dir"' EXIT; \
	trap 'exit 129' HUP; trap 'exit 130' INT; trap 'exit 143' TERM; \
	mkfifo "$$dir/qemu.alive" && exec 3<>"$$dir/qemu.alive" 5<"$$dir/qemu.alive" && \
	qemu-system-x86_64 -M q35 -m 128 -S -nodefaults -display none \
		-qmp "unix:$$dir/qmp.sock,server=on,wait=off" \
		-daemonize -pidfile "$$dir/qemu.pid" 4>&3 3>&- 5<&- && \
	exec 3>&- && \
	echo "qmpsh demo: QEMU (pid $$(cat "$$dir/qemu.pid")) paused on $$dir/qmp.sock; it stops when the shell exits" >&2 && \
	./$(BIN) connect "$$dir/qmp.sock" 5<&-

clean:
	rm -f $(BIN)

# fuzz runs every fuzz target for FUZZTIME each (go test -fuzz takes one
# target at a time).
FUZZTIME ?= 20s
fuzz:
	@set -e; for pkg in ./pkg/shell ./pkg/qmp; do \
		for f in $$($(GO) test -list '^Fuzz' $$pkg | grep '^Fuzz'); do \
			echo "fuzzing $$pkg $$f for $(FUZZTIME)"; \
			$(GO) test -run '^$$' -fuzz "^$$f$$" -fuzztime $(FUZZTIME) $$pkg; \
		done; \
	done
