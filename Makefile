# The README's two commands: `make test` (the test suite) and `make perf` (the perf harness).
# Both install what is missing first, so they work on a fresh Debian machine.

SWIFT ?= swift
APT_PACKAGES = libevent-dev pkg-config curl netcat-openbsd socat wrk haproxy libssl-dev openssl systemd
SUDO := $(shell [ "$$(id -u)" = 0 ] || echo sudo)

.PHONY: deps test test-tsan perf perf-full docs build clean

deps:
	@missing=""; \
	pkg-config --exists libevent 2>/dev/null || missing="$$missing libevent-dev pkg-config"; \
	command -v curl >/dev/null || missing="$$missing curl"; \
	command -v nc >/dev/null || missing="$$missing netcat-openbsd"; \
	command -v socat >/dev/null || missing="$$missing socat"; \
	command -v wrk >/dev/null || missing="$$missing wrk"; \
	pkg-config --exists openssl 2>/dev/null || missing="$$missing libssl-dev pkg-config"; \
	command -v openssl >/dev/null || missing="$$missing openssl"; \
	command -v python3 >/dev/null || missing="$$missing python3"; \
	command -v haproxy >/dev/null || [ -x /usr/sbin/haproxy ] || missing="$$missing haproxy"; \
	command -v systemd-socket-activate >/dev/null || missing="$$missing systemd"; \
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

# Hardening (README, "Hardening"): AddressSanitizer with LeakSanitizer, the libFuzzer targets, the soak run.
.PHONY: test-asan fuzz soak

# The suite under AddressSanitizer with LeakSanitizer on, in the test process and in every socketserver-demo it
# starts (they inherit this environment). .ci/lsan-suppressions.txt lists the leaks outside the project, each
# with its reason; forked children leave with _exit, which runs no leak check. The Swift crash backtracer is
# off (its memory reader trips ASan); lld links, as gold warns about every ASan check symbol.
ASAN_ENV = SWIFT_BACKTRACE=enable=no ASAN_OPTIONS=detect_leaks=1:halt_on_error=1 \
	LSAN_OPTIONS=suppressions=$(CURDIR)/.ci/lsan-suppressions.txt:print_suppressions=0

test-asan: deps
	$(ASAN_ENV) $(SWIFT) test --no-parallel --sanitize=address --scratch-path .build-asan -Xswiftc -use-ld=lld

# Each libFuzzer target (Fuzz/) for FUZZ_SECONDS from its committed seeds; fails on a crash, leak or timeout.
FUZZ_SECONDS ?= 60

fuzz: deps
	FUZZ_SECONDS=$(FUZZ_SECONDS) Fuzz/run

# The soak (Soak/soak.py): socketserver-demo, built in release, in every mode for SOAK_SECONDS each, under
# well-behaved and abusive clients; fails when a well-behaved request fails, a server dies or does not exit 0,
# or its RSS, descriptors or threads grow. CI runs a short one.
SOAK_SECONDS ?= 60
SOAK_SCRATCH ?= .build-soak

soak: deps
	$(SWIFT) build -c release --product socketserver-demo --scratch-path $(SOAK_SCRATCH)
	python3 Soak/soak.py --demo $(SOAK_SCRATCH)/release/socketserver-demo --seconds $(SOAK_SECONDS)

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
