# mk/soak.mk - `make soak`: the kill -9 soak (issue 14), tests/soak/soak.py
# with SOAK_ROUNDS rounds (default 50, a few minutes) against build/postern.
# Each round kills the server mid-traffic on the same spool; at the end
# every acknowledged message must be in its local Maildirs exactly once and
# at its remote peer at least once.  Prints one line per round and the
# totals line; exit 1 when a promise broke (the seed is printed to replay).
# Not part of `make test`: tests/integration/test_soak.py runs a few rounds.
#
#   make soak                          50 rounds, 4 clients, 64 KiB segments
#   make soak SOAK_ROUNDS=200 SOAK_ARGS="--clients 6 --seed 7 --keep"
#   make soak SOAK_POSTERN=build-asan/postern   (build that one first)

SOAK_ROUNDS  ?= 50
# Small segments, so that every round rolls over and compacts.
SOAK_ARGS    ?= --segment-size 65536
SOAK_POSTERN ?= $(BUILD)/postern

soak: $(BUILD)/postern
	POSTERN=$(abspath $(SOAK_POSTERN)) $(PYTHON) tests/soak/soak.py \
	  --rounds $(SOAK_ROUNDS) $(SOAK_ARGS)

.PHONY: soak
