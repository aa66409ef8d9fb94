# `make bench-cost` (issue 14): AWS cost per monitored vCPU-month on the real ingest path (offline
# stack), quiet and busy fleets; the last line is a contract. Writes cli/vigil_cli/usage_model.json,
# the measured rates `vigil usage` prices with. Model and numbers: docs/cost.md.
.PHONY: bench-cost

bench-cost: venv ## AWS cost per vCPU-month, counted on the offline stack (a few minutes); last line is the contract
	$(BIN)/python benchmarks/cost.py --save $(BENCH_COST_ARGS)
