# The README's two commands: `make test` (the test suite) and `make perf` (the perf harness).
# Both install what is missing first, so they work on a fresh Debian machine.

SWIFT ?= swift
APT_PACKAGES = libevent-dev pkg-config curl netcat-openbsd socat
SUDO := $(shell [ "$$(id -u)" = 0 ] || echo sudo)

.PHONY: deps test test-tsan perf perf-full docs build clean

deps:
	@missing=""; \
	pkg-config --exists libevent 2>/dev/null || missing="$$missing libevent-dev pkg-config"; \
	command -v curl >/dev/null || missing="$$missing curl"; \
	command -v nc >/dev/null || missing="$$missing netcat-openbsd"; \
	command -v socat >/dev/null || missing="$$missing socat"; \
	if [ -n "$$missing" ]; then \
		echo "installing:$$missing"; \
		$(SUDO) apt-get update -qq && $(SUDO) env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $$missing; \
	fi

build: deps
	$(SWIFT) build

test: deps
	$(SWIFT) test --no-parallel

test-tsan: deps
	$(SWIFT) test --no-parallel --sanitize=thread --scratch-path .build-tsan

# The harness is a package of its own (Perf/Package.swift, depending on this one): building it builds the
# root's socketserver-demo in release next to it, in Perf/.build/release/. The harness compiles the C peers
# and builds the SwiftNIO peer (Perf/NIOPeer) itself on first use.
PERF = Perf/.build/release/perf

perf: deps
	$(SWIFT) build -c release --package-path Perf
	$(PERF) --profile quick

perf-full: deps
	$(SWIFT) build -c release --package-path Perf
	$(PERF) --profile full

# The DocC documentation: Sources/SocketServer/SocketServer.docc and the doc comments. Any warning (a broken
# symbol link, an undocumented parameter) fails it. Output: .build/plugins/Swift-DocC/outputs/SocketServer.doccarchive;
# `swift package --disable-sandbox preview-documentation --target SocketServer` serves it locally while you write.
docs: deps
	$(SWIFT) package --disable-sandbox generate-documentation --target SocketServer --warnings-as-errors

clean:
	rm -rf .build .build-tsan Perf/.build
