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

clean:
	rm -f $(BIN)
