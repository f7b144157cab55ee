# postern - one plain Makefile.  `make help` lists the targets.
#
# Run as root, it installs the Debian packages a target needs (apt-get
# update first); otherwise it prints the apt-get line to run.

VERSION    := 0.1.0
CC         ?= cc
CFLAGS     ?= -O2 -g
# What every build needs; CFLAGS (optimisation, sanitizers) comes on top.
# DEFAULT_CONFIG: the config read without -c (make install sets
# /etc/postern/postern.conf; the development build reads etc/postern.conf).
# CPPFLAGS and LDFLAGS come from the environment (the Debian build's
# hardening flags).
ALL_CFLAGS := -std=c17 -D_GNU_SOURCE -Wall -Wextra -Isrc -Ibuild/gen \
              -DPOSTERN_VERSION='"$(VERSION)"' -MMD -MP \
              $(if $(DEFAULT_CONFIG),-DCLI_DEFAULT_CONFIG='"$(DEFAULT_CONFIG)"') \
              $(CPPFLAGS) $(CFLAGS)
PKGS       := libevent libevent_pthreads libevent_openssl openssl inih libcares sqlite3 hiredis \
              libseccomp libpsl libcurl zlib
LDLIBS      = $(shell pkg-config --libs $(PKGS) 2>/dev/null) -lcrypt -lpthread
PYTHON     := /usr/bin/python3
BUILD      ?= build

SRC_ALL    := $(shell find src -name '*.c' | sort)
SRC_LIB    := $(filter-out src/main.c,$(SRC_ALL))
OBJ_LIB    := $(SRC_LIB:%.c=$(BUILD)/obj/%.o)
UNIT_SRC   := $(sort $(wildcard tests/unit/test_*.c))
UNIT_BIN   := $(UNIT_SRC:tests/unit/%.c=$(BUILD)/tests/%)
FUZZ_SRC   := $(sort $(wildcard tests/fuzz/fuzz_*.c))
FUZZ_BIN   := $(FUZZ_SRC:tests/fuzz/%.c=build/fuzz/%)
FUZZ_SECONDS ?= 600

# Debian packages: to build, to run the tests.
DEB_BUILD  := build-essential pkg-config openssl libevent-dev libssl-dev libinih-dev \
              libc-ares-dev libsqlite3-dev libhiredis-dev libcrypt-dev \
              libcmocka-dev libseccomp-dev libpsl-dev libcurl4-openssl-dev zlib1g-dev
# To make and check the Debian package (make deb, make package-check;
# systemd-nspawn boots the installed unit in a throw-away root).
DEB_PKG    := debhelper lintian dpkg-dev systemd-container
DEB_TEST   := $(DEB_BUILD) $(DEB_PKG) python3 python3-pytest swaks postfix clang \
              libclang-rt-14-dev openssl dovecot-imapd dovecot-lmtpd chromium testssl.sh redis-server dnsmasq-base \
              opendkim opendkim-tools python3-pytest-xdist python3-spf python3-dkim python3-nacl \
              python3-aiosmtpd python3-cryptography python3-dnspython unbound nsd ldnsutils \
              prometheus

.PHONY: cert all build run test unit integration transcripts asan fuzz fuzz-smoke fuzz-seeds \
        lint format clean help deps deps-test bench man service-user

all build: $(BUILD)/postern

help:
	@echo "make            build build/postern"
	@echo "make run        install what is missing, build, serve etc/postern.conf"
	@echo "make test       install what is missing, build, run every test"
	@echo "make soak       50 rounds of kill -9 under load; reports acked/delivered/lost/duplicated"
	@echo "make install    DESTDIR=D: /usr/sbin/postern, sendmail links, /etc/postern, the unit, man pages"
	@echo "make deb        build/postern_$(VERSION)_<arch>.deb (make package-check: lintian, unit score, install test)"
	@echo "make unit | integration | asan | fuzz | lint | clean"

-include mk/*.mk

# deps: install missing Debian packages (as root), or say how.
define install_debs
	@missing=""; for p in $(1); do \
	  dpkg -s $$p >/dev/null 2>&1 || missing="$$missing $$p"; done; \
	if [ -n "$$missing" ]; then \
	  if [ "$$(id -u)" = 0 ]; then \
	    echo "installing:$$missing"; \
	    apt-get update -qq && DEBIAN_FRONTEND=noninteractive \
	      apt-get install -y -qq --no-install-recommends $$missing >/dev/null \
	      || { echo "apt-get install failed for:$$missing" >&2; exit 1; }; \
	  else \
	    echo "missing packages; run: sudo apt-get install$$missing" >&2; \
	    exit 1; \
	  fi; \
	fi
endef

deps:
	$(call install_debs,$(DEB_BUILD))

deps-test:
	$(call install_debs,$(DEB_TEST))

# As root, the system user the server runs as (etc/postern.conf's
# [server] user; the package's postinst makes the same one).
service-user:
	@if [ "$$(id -u)" = 0 ] && ! getent passwd postern >/dev/null; then \
	  useradd --system --user-group --no-create-home \
	    --home-dir /nonexistent --shell /usr/sbin/nologin postern && \
	  echo "made the system user postern"; fi

# A build stops at once, with the line to run, when the compiler or a
# library it needs is missing, rather than in the middle of the compiler.
# Checked once per build directory (the stamp), so an incremental make
# pays nothing.  $(1): pkg-config modules; $(2): the Debian packages.
define check_build_deps
	@if ! command -v $(firstword $(CC)) >/dev/null 2>&1; then \
	  echo "postern: cannot build: no compiler '$(CC)'; run: make deps" \
	    "(as root), or: sudo apt-get install build-essential" >&2; exit 1; fi; \
	if ! pkg-config --exists $(1) >/dev/null 2>&1; then \
	  missing=""; for p in $(2); do \
	    dpkg -s $$p >/dev/null 2>&1 || missing="$$missing $$p"; done; \
	  if [ -z "$$missing" ]; then \
	    for m in $(1); do pkg-config --exists $$m >/dev/null 2>&1 || \
	      missing="$$missing $$m"; done; \
	    echo "postern: cannot build: pkg-config finds no$$missing;" \
	      "install their development files" >&2; \
	  else \
	    echo "postern: cannot build: missing$$missing; run: make deps" \
	      "(as root), or: sudo apt-get install$$missing" >&2; \
	  fi; exit 1; fi
	@mkdir -p $(dir $@) && touch $@
endef

$(BUILD)/.build-deps:
	$(call check_build_deps,$(PKGS) libcrypt,$(filter-out build-essential openssl libcmocka-dev,$(DEB_BUILD)))

$(BUILD)/.test-deps:
	$(call check_build_deps,cmocka,libcmocka-dev)

$(BUILD)/postern: $(BUILD)/obj/src/main.o $(BUILD)/libpostern.a
	$(CC) $(ALL_CFLAGS) $(LDFLAGS) -o $@ $^ $(LDLIBS)

$(BUILD)/libpostern.a: $(OBJ_LIB)
	@rm -f $@
	ar rcs $@ $^

$(BUILD)/obj/%.o: %.c | $(BUILD)/.build-deps
	@mkdir -p $(dir $@)
	$(CC) $(ALL_CFLAGS) -c -o $@ $<

$(BUILD)/tests/%: tests/unit/%.c $(BUILD)/libpostern.a | $(BUILD)/.test-deps
	@mkdir -p $(dir $@)
	$(CC) $(ALL_CFLAGS) $(LDFLAGS) -Itests/unit -o $@ $< $(BUILD)/libpostern.a $(LDLIBS) -lcmocka

run: deps service-user cert
	$(MAKE) $(BUILD)/postern
	@mkdir -p var
	./$(BUILD)/postern serve -c etc/postern.conf

unit: $(BUILD)/.test-deps $(UNIT_BIN)
	@fail=0; for t in $(UNIT_BIN); do echo "== $$t"; ./$$t || fail=1; done; \
	exit $$fail

# pytest-xdist: most tests wait (timeouts, retries, polls) rather than
# compute, so 4 workers on 2 cores; loadgroup keeps a module marked
# xdist_group (one shared fixture, e.g. a private Postfix) in one worker.
XDIST      ?= -n 4 --dist loadgroup
integration: $(BUILD)/postern
	POSTERN=$(abspath $(BUILD)/postern) $(PYTHON) -m pytest -q $(XDIST) tests/integration tests/transcripts tests/peer

# The fuzz targets (libFuzzer + ASan + UBSan).  Those over src/proto/ link
# the pure parsers; fuzz_segment and fuzz_maildrop add the spool files they
# test; fuzz_session links the whole library, built with clang and
# -fsanitize=fuzzer-no-link into build/fuzzlib.  `make fuzz-smoke` (in
# `make test`) runs each FUZZ_SMOKE_SECONDS, `make fuzz` FUZZ_SECONDS.
FUZZ_SMOKE_SECONDS ?= 15
FUZZ_CFLAGS := -std=c17 -D_GNU_SOURCE -Isrc -g -O1 \
               -fsanitize=fuzzer,address,undefined -fno-sanitize-recover=undefined
FUZZ_LIB_CFLAGS := -O1 -g -fno-omit-frame-pointer \
               -fsanitize=fuzzer-no-link,address,undefined -fno-sanitize-recover=undefined
FUZZ_OPTS  := -artifact_prefix=build/fuzz/ -timeout=30
FUZZ_SPOOL_SRC := src/spool/record.c src/spool/msg.c src/util/crc32.c src/util/str.c
FUZZ_DROP_SRC  := src/spool/maildrop.c src/spool/msg.c src/util/fs.c src/util/str.c
build/fuzz/%: tests/fuzz/%.c $(wildcard src/proto/*.c src/proto/*.h)
	@mkdir -p build/fuzz
	clang $(FUZZ_CFLAGS) -o $@ $< $(wildcard src/proto/*.c)

build/fuzz/fuzz_segment: tests/fuzz/fuzz_segment.c $(FUZZ_SPOOL_SRC) $(wildcard src/spool/*.h src/util/*.h)
	@mkdir -p build/fuzz
	clang $(FUZZ_CFLAGS) -o $@ $< $(FUZZ_SPOOL_SRC)

build/fuzz/fuzz_maildrop: tests/fuzz/fuzz_maildrop.c $(FUZZ_DROP_SRC) $(wildcard src/spool/*.h src/util/*.h)
	@mkdir -p build/fuzz
	clang $(FUZZ_CFLAGS) -o $@ $< $(FUZZ_DROP_SRC)

# fuzz_auth_*: the pure checks of src/auth/ (SPF, DKIM, DMARC, SRS), with
# OpenSSL and libpsl.
FUZZ_AUTH_SRC := $(wildcard src/auth/*.c) src/util/str.c
build/fuzz/fuzz_auth_%: tests/fuzz/fuzz_auth_%.c $(FUZZ_AUTH_SRC) $(wildcard src/auth/*.h)
	@mkdir -p build/fuzz
	clang $(FUZZ_CFLAGS) -o $@ $< $(FUZZ_AUTH_SRC) $$(pkg-config --libs openssl libpsl)

build/fuzz/fuzz_session: tests/fuzz/fuzz_session.c $(SRC_LIB) $(wildcard src/*/*.h src/*/*.def)
	@mkdir -p build/fuzz
	$(MAKE) --no-print-directory BUILD=build/fuzzlib CC=clang \
	  CFLAGS="$(FUZZ_LIB_CFLAGS)" build/fuzzlib/libpostern.a
	clang $(FUZZ_CFLAGS) -o $@ $< \
	  build/fuzzlib/libpostern.a $(LDLIBS)

# The seeds of fuzz_segment are real segments: regenerate them after a
# change of the record or envelope format.
build/fuzz/seed_segment: tests/fuzz/seed_segment.c $(FUZZ_SPOOL_SRC)
	@mkdir -p build/fuzz
	$(CC) $(ALL_CFLAGS) -o $@ $< $(FUZZ_SPOOL_SRC)

fuzz-seeds: build/fuzz/seed_segment
	./build/fuzz/seed_segment tests/fuzz/seeds/fuzz_segment
	$(PYTHON) tests/fuzz/seed_session.py tests/fuzz/seeds/fuzz_session

# A crash fails the smoke run (its log's tail is shown); otherwise the
# final stats (runs, coverage, exec/s) of each target are.
fuzz-smoke: $(FUZZ_BIN)
	@for f in $(FUZZ_BIN); do n=$$(basename $$f); \
	  mkdir -p build/fuzz/corpus-$$n; \
	  echo "== $$n (smoke, $(FUZZ_SMOKE_SECONDS) s)"; \
	  ./$$f $(FUZZ_OPTS) -max_total_time=$(FUZZ_SMOKE_SECONDS) \
	    -print_final_stats=0 build/fuzz/corpus-$$n tests/fuzz/seeds/$$n \
	    >build/fuzz/smoke-$$n.log 2>&1; rc=$$?; \
	  if [ $$rc -ne 0 ]; then tail -40 build/fuzz/smoke-$$n.log; \
	    echo "$$n failed (exit $$rc): build/fuzz/smoke-$$n.log"; exit 1; fi; \
	  grep -E '^(#[0-9]+[[:space:]]+DONE|Done )' build/fuzz/smoke-$$n.log; done

fuzz: $(FUZZ_BIN)
	@for f in $(FUZZ_BIN); do n=$$(basename $$f); \
	  mkdir -p build/fuzz/corpus-$$n; \
	  ./$$f $(FUZZ_OPTS) -max_total_time=$(FUZZ_SECONDS) \
	    build/fuzz/corpus-$$n tests/fuzz/seeds/$$n || exit 1; done

# The whole suite again under AddressSanitizer + UndefinedBehaviorSanitizer.
asan:
	$(MAKE) BUILD=build-asan CC=clang \
	  CFLAGS="-O1 -g -fsanitize=address,undefined -fno-omit-frame-pointer -fno-sanitize-recover=undefined" \
	  build-asan/postern unit integration

test: deps-test service-user cert
	$(MAKE) $(BUILD)/postern
	$(MAKE) unit
	$(MAKE) integration
	$(MAKE) package-check
	$(MAKE) fuzz-smoke
	$(MAKE) asan

# Include direction, banned functions, stray reply codes; then the
# compiler with -Werror and clang-tidy (.clang-tidy) on every source.
lint:
	$(PYTHON) tools/lint.py
	$(PYTHON) tools/gen_conf_man.py --check
	$(MAKE) BUILD=build-lint CFLAGS="-O2 -g -Werror" build-lint/postern
	clang-tidy -quiet $(SRC_ALL) -- -std=c17 -D_GNU_SOURCE -Isrc \
	  -DPOSTERN_VERSION='"$(VERSION)"'

man:
	$(PYTHON) tools/gen_conf_man.py

format:
	clang-format -i $(SRC_ALL) $(wildcard src/*/*.h) $(UNIT_SRC)

clean:
	rm -rf build build-asan build-lint

-include $(OBJ_LIB:.o=.d) $(BUILD)/obj/src/main.d

# A self-signed certificate for the embedded default (etc/postern.conf's
# [tls]), so make run offers STARTTLS, smtps and submission at once.  As
# root, the key is left readable by the group postern: the server reads it
# again on a reload, after it has become that user.
cert: etc/tls/cert.pem
	@if [ "$$(id -u)" = 0 ] && getent group postern >/dev/null; then \
	  chgrp postern etc/tls/key.pem && chmod 640 etc/tls/key.pem; fi

etc/tls/cert.pem:
	@mkdir -p etc/tls
	openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes \
	  -days 825 -subj "/CN=mx.example.test" \
	  -addext "subjectAltName=DNS:mx.example.test,DNS:localhost,IP:127.0.0.1" \
	  -keyout etc/tls/key.pem -out etc/tls/cert.pem 2>/dev/null
	@chmod 600 etc/tls/key.pem
	@echo "made etc/tls/cert.pem and etc/tls/key.pem (self-signed, mx.example.test)"
