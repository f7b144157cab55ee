# mk/bench.mk - `make bench`: postern against Postfix, side by side
# (bench/README.md).  Not part of `make test`: it measures, asserts nothing.
# Needs root and Postfix's smtp-source/smtp-sink (package postfix, which
# `make deps-test` installs); valgrind for the instruction count.
#
#   make bench                       everything, about 5 minutes
#   make bench BENCH_ARGS="--rounds 1 --only load"
#   make bench BENCH_ARGS="--rounds 1 --only auth"
#                                    message authentication: SPF/DKIM/DMARC
#                                    verification, DKIM-signed relay against
#                                    Postfix + OpenDKIM (bench/auth.py)
#   make bench-outbound              the outbound relay step alone (issue 8:
#                                    postern and Postfix relaying the same
#                                    queue to smtp-sink), about 2 minutes;
#                                    BENCH_ARGS still apply (--rounds 1)

BENCH_DIR  ?= build/bench
BENCH_ARGS ?=
BENCH_ONLY ?=

$(BUILD)/bench/latency: bench/latency.c
	@mkdir -p $(dir $@)
	$(CC) -std=c17 -D_GNU_SOURCE -Wall -Wextra -O2 -o $@ $<

bench: $(BUILD)/postern $(BUILD)/bench/latency $(BUILD)/bench/submit
	@command -v smtp-source >/dev/null || test -x /usr/sbin/smtp-source || \
	  { echo "bench: smtp-source missing; run make deps-test" >&2; exit 1; }
	$(PYTHON) bench/run.py --postern $(abspath $(BUILD)/postern) \
	  --latency $(abspath $(BUILD)/bench/latency) \
	  --submit $(abspath $(BUILD)/bench/submit) \
	  --dir $(abspath $(BENCH_DIR)) $(BENCH_ONLY) $(BENCH_ARGS)

bench-outbound: BENCH_ONLY = --only outbound
bench-outbound: bench

.PHONY: bench-outbound

# The auth step's load client (bench/auth.py): STARTTLS, AUTH PLAIN and a
# message from a file, which smtp-source does not do.
$(BUILD)/bench/submit: bench/submit.c
	@mkdir -p $(dir $@)
	$(CC) -std=c17 -D_GNU_SOURCE -Wall -Wextra -O2 -pthread -o $@ $< -lssl -lcrypto
