# `make soak` (included by the Makefile): simulated agents at the busy mix through the offline
# stack, with hostile records and delivery chaos; the last line is the contract (docs/benchmarks.md).
.PHONY: soak

soak: venv ## N agents at the busy mix + hostile records + reordering through the offline stack (SOAK_HOSTS, SOAK_SECONDS, SOAK_HOSTILE, SOAK_CHAOS)
	$(BIN)/python benchmarks/soak.py $(SOAK_ARGS)
