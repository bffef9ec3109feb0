# qmpsh: see README.md. Targets install what they need on a fresh Debian machine.
GO ?= go
BIN := qmpsh
SUDO := $(shell [ "$$(id -u)" = 0 ] || echo sudo)

# Where make install puts things: $(DESTDIR)$(PREFIX)/..., nothing outside
# it. Packagers set DESTDIR to their staging tree.
PREFIX ?= /usr/local
DESTDIR ?=
BINDIR = $(PREFIX)/bin
MAN1DIR = $(PREFIX)/share/man/man1
BASHCOMPDIR = $(PREFIX)/share/bash-completion/completions
ZSHCOMPDIR = $(PREFIX)/share/zsh/site-functions
FISHCOMPDIR = $(PREFIX)/share/fish/vendor_completions.d
# BUILDDIR holds the generated manual pages and completions.
BUILDDIR ?= build

# The version qmpsh --version prints: the tag when built from one. The
# commit and its time are stamped too, for builds in which Go embeds no
# version control information (from a git worktree, or with
# -buildvcs=false); where it does, qmpsh prints Go's. Without git, all are
# empty and qmpsh says what its build information knows.
VERSION ?= $(shell git describe --tags --always --dirty 2>/dev/null)
COMMIT = $(shell git rev-parse HEAD 2>/dev/null)
COMMIT_TIME = $(shell git log -1 --format=%cI 2>/dev/null)
LDFLAGS = -X github.com/qmpsh/qmpsh/cmd.buildVersion=$(VERSION) \
	-X github.com/qmpsh/qmpsh/cmd.buildCommit=$(COMMIT) \
	-X github.com/qmpsh/qmpsh/cmd.buildCommitTime=$(COMMIT_TIME)
# The manual pages are dated by the commit, so that one commit's pages
# are the same wherever they are built.
SOURCE_DATE_EPOCH ?= $(shell git log -1 --format=%ct 2>/dev/null)

.PHONY: all build test bench fuzz demo qemu man-tools man completions install uninstall clean

all: build

# qmpsh is built static, without cgo (CGO_ENABLED=0): it needs no C, and
# a static binary starts sooner, with no dynamic loader and C library to
# map first (qmpsh exec query-status ran 13% to 19% faster, 1.7 to 2.9
# ms of 13 to 15, on this project's 2-core VM: qmpsh-bench proc), and
# runs on any Linux whatever its C library. The cost: host names resolve with Go's own
# resolver (/etc/hosts and DNS), not the C library's NSS modules.
# make build CGO_ENABLED=1 links the C library again.
CGO_ENABLED ?= 0

build:
	CGO_ENABLED=$(CGO_ENABLED) $(GO) build -ldflags "$(LDFLAGS)" -o $(BIN) .

# man writes one manual page per command into $(BUILDDIR)/man, generated
# from the command tree by cmd/qmpsh-man.
man:
	rm -rf $(BUILDDIR)/man
	SOURCE_DATE_EPOCH=$(SOURCE_DATE_EPOCH) $(GO) run ./cmd/qmpsh-man -version "$(VERSION)" $(BUILDDIR)/man

# completions asks the binary for its bash, zsh and fish completions.
completions: build
	mkdir -p $(BUILDDIR)/completions
	$(abspath $(BIN)) completion bash >$(BUILDDIR)/completions/qmpsh.bash
	$(abspath $(BIN)) completion zsh >$(BUILDDIR)/completions/_qmpsh
	$(abspath $(BIN)) completion fish >$(BUILDDIR)/completions/qmpsh.fish

install: build man completions
	install -d $(DESTDIR)$(BINDIR) $(DESTDIR)$(MAN1DIR) \
		$(DESTDIR)$(BASHCOMPDIR) $(DESTDIR)$(ZSHCOMPDIR) $(DESTDIR)$(FISHCOMPDIR)
	install -m 0755 $(BIN) $(DESTDIR)$(BINDIR)/qmpsh
	install -m 0644 $(BUILDDIR)/man/*.1 $(DESTDIR)$(MAN1DIR)/
	install -m 0644 $(BUILDDIR)/completions/qmpsh.bash $(DESTDIR)$(BASHCOMPDIR)/qmpsh
	install -m 0644 $(BUILDDIR)/completions/_qmpsh $(DESTDIR)$(ZSHCOMPDIR)/_qmpsh
	install -m 0644 $(BUILDDIR)/completions/qmpsh.fish $(DESTDIR)$(FISHCOMPDIR)/qmpsh.fish

# uninstall removes the files install installs, the manual pages named
# from the same command tree. Under a DESTDIR, a staging tree that is the
# caller's alone, it also removes the directories left empty, up to
# DESTDIR (DESTDIR=/ is no staging tree); under the real PREFIX it leaves directories such as
# /usr/local/bin, which other software shares, in place.
uninstall: man
	rm -f $(DESTDIR)$(BINDIR)/qmpsh
	for f in $(BUILDDIR)/man/*.1; do rm -f "$(DESTDIR)$(MAN1DIR)/$${f##*/}"; done
	rm -f $(DESTDIR)$(BASHCOMPDIR)/qmpsh $(DESTDIR)$(ZSHCOMPDIR)/_qmpsh $(DESTDIR)$(FISHCOMPDIR)/qmpsh.fish
	@stage="$(patsubst %/,%,$(DESTDIR))"; \
	if [ -n "$$stage" ]; then \
		for d in $(BINDIR) $(MAN1DIR) $(BASHCOMPDIR) $(ZSHCOMPDIR) $(FISHCOMPDIR); do \
			d="$$stage$$d"; \
			while [ "$$d" != "$$stage" ] && rmdir "$$d" 2>/dev/null; do d="$${d%/*}"; d="$${d%/}"; done; \
		done; \
	fi

# qemu installs QEMU and its guest agent from Debian's packages when
# missing: the tests and the demo talk to a real QEMU, and the ga tests
# to a real qemu-ga run on this host (it lives in /usr/sbin, which is not
# on every user's PATH). Its messages go to stderr, so that
# `printf ... | make demo | jq` sees only the shell's JSON.
qemu:
	@if ! command -v qemu-system-x86_64 >/dev/null 2>&1 || ! command -v qemu-storage-daemon >/dev/null 2>&1; then \
		echo "installing QEMU from Debian packages" >&2; \
		$(SUDO) apt-get update -qq && DEBIAN_FRONTEND=noninteractive $(SUDO) apt-get install -y -qq qemu-system-x86 >/dev/null; \
	fi
	@if ! command -v qemu-ga >/dev/null 2>&1 && ! [ -x /usr/sbin/qemu-ga ]; then \
		echo "installing the QEMU guest agent from Debian packages" >&2; \
		$(SUDO) apt-get update -qq && DEBIAN_FRONTEND=noninteractive $(SUDO) apt-get install -y -qq qemu-guest-agent >/dev/null; \
	fi
	@if ! command -v socat >/dev/null 2>&1; then \
		echo "installing socat from Debian packages (a proxy test's raw client)" >&2; \
		$(SUDO) apt-get update -qq && DEBIAN_FRONTEND=noninteractive $(SUDO) apt-get install -y -qq socat >/dev/null; \
	fi

# man-tools installs man and groff from Debian's packages when missing: a
# test renders the manual pages with them.
man-tools:
	@if ! command -v man >/dev/null 2>&1 || ! command -v groff >/dev/null 2>&1; then \
		echo "installing man-db and groff from Debian packages"; \
		$(SUDO) apt-get update -qq && DEBIAN_FRONTEND=noninteractive $(SUDO) apt-get install -y -qq man-db groff-base >/dev/null; \
	fi

test: qemu man-tools
	$(GO) vet ./...
	$(GO) test -race -count=1 ./...

# bench runs the benchmark driver, cmd/qmpsh-bench (see README.md,
# Performance). Its qemu subcommand runs query-status on a real QEMU from
# three programs, each its own process: a raw floor sending the cheapest
# bytes (testdata/rawqmp), go-qemu (testdata/goqemu, a module of its own)
# and qmpsh's library (testdata/qmpshlib), with one caller and with 8, in
# interleaved rounds, and prints the ratios against their targets;
# BENCHQEMUFLAGS passes options to it, e.g. BENCHQEMUFLAGS='-rounds 5'. Its
# ratio subcommand runs the client's benchmarks (pkg/qmp/bench_test.go)
# against the fake server, each beside a raw-socket floor measured in the
# same run, and prints the client/floor ratios against their targets;
# BENCHFLAGS passes options to it, e.g. BENCHFLAGS='-rounds 5 -benchtime 2s'.
# Its proc subcommand times `qmpsh exec query-status` as a whole process
# beside a minimal raw Go program (testdata/rawqmp), runs interleaved on
# one QEMU, and reports the peak RSS of qmpsh exec and of an idle shell;
# BENCHPROCFLAGS passes options to it, e.g. BENCHPROCFLAGS='-runs 500
# -strict'; it also times rawqmp built with qmpsh's packages linked, to
# show how much of exec's time they cost before any qmpsh code runs.
# Its ga subcommand times qmpsh ga run and ga cp against qemu-ga on this
# host beside testdata/rawga; BENCHGAFLAGS passes options to it, e.g.
# BENCHGAFLAGS='-runs 200 -rounds 5 -strict'.
# Its proxy subcommand compares query-status through qmpsh proxy with a
# direct client on the same QEMU, and reads the proxy's peak RSS with 100
# idle clients; BENCHPROXYFLAGS passes options to it.
# Last, BenchmarkExecFanOut200 times exec on 200 fake servers at once.
bench: qemu
	$(GO) run ./cmd/qmpsh-bench qemu $(BENCHQEMUFLAGS)
	$(GO) run ./cmd/qmpsh-bench ratio $(BENCHFLAGS)
	$(GO) run ./cmd/qmpsh-bench proc $(BENCHPROCFLAGS)
	$(GO) run ./cmd/qmpsh-bench ga $(BENCHGAFLAGS)
	$(GO) run ./cmd/qmpsh-bench proxy $(BENCHPROXYFLAGS)
	$(GO) test -run '^$$' -bench FanOut -benchtime 10x ./cmd

# demo opens the shell on a throwaway QEMU: a q35 machine with 128 MiB and
# no disk, paused (-S), so it needs no KVM and burns no CPU. Everything but
# the shell's output (the build's command line included) goes to stderr. QEMU is
# stopped, and its directory removed, when the shell exits, however it
# exits (Ctrl-D, quit, a lost connection, a closed terminal, make
# interrupted).
#
# -daemonize returns only once QEMU has started, its QMP socket listening,
# so nothing polls for the socket. QEMU is then not our child, so to wait
# for it to be gone after the kill, it inherits the write end of a FIFO
# (fd 4): reading the FIFO meets end-of-file when the last writer, QEMU,
# has exited.
demo: qemu
	@$(MAKE) --no-print-directory build >&2
	@dir=$$(mktemp -d "$${TMPDIR:-/tmp}/qmpsh-demo.XXXXXX") || exit 1; \
	trap 'if [ -s "$$dir/qemu.pid" ]; then kill "$$(cat "$$dir/qemu.pid")" 2>/dev/null; cat <&5; fi; rm -rf "$$dir"' EXIT; \
	trap 'exit 129' HUP; trap 'exit 130' INT; trap 'exit 143' TERM; \
	mkfifo "$$dir/qemu.alive" && exec 3<>"$$dir/qemu.alive" 5<"$$dir/qemu.alive" && \
	qemu-system-x86_64 -M q35 -m 128 -S -nodefaults -display none \
		-qmp "unix:$$dir/qmp.sock,server=on,wait=off" \
		-daemonize -pidfile "$$dir/qemu.pid" 4>&3 3>&- 5<&- && \
	exec 3>&- && \
	echo "qmpsh demo: QEMU (pid $$(cat "$$dir/qemu.pid")) paused on $$dir/qmp.sock; it stops when the shell exits" >&2 && \
	$(abspath $(BIN)) connect "$$dir/qmp.sock" 5<&-

clean:
	rm -f $(BIN)
	rm -rf $(BUILDDIR)

# fuzz runs every fuzz target for FUZZTIME each (go test -fuzz takes one
# target at a time).
FUZZTIME ?= 20s
fuzz:
	@set -e; for pkg in ./pkg/qapi ./pkg/shell ./pkg/qmp; do \
		for f in $$($(GO) test -list '^Fuzz' $$pkg | grep '^Fuzz'); do \
			echo "fuzzing $$pkg $$f for $(FUZZTIME)"; \
			$(GO) test -run '^$$' -fuzz "^$$f$$" -fuzztime $(FUZZTIME) $$pkg; \
		done; \
	done
