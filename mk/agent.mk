# vigil-agent targets (included by the main Makefile). Owner: the agent.
.PHONY: agent-package demo-live bench-agent test-agent

AGENT_VERSION := $(shell sed -n 's/^__version__ = "\(.*\)"/\1/p' agent/vigil_agent/__init__.py)

agent-package: venv ## build the agent artifact build/agent/vigil-agent-<version>.tar.gz (+ .sha256)
	$(BIN)/python agent/packaging/build.py --out build/agent $(if $(AGENT_WHEELS),--wheels $(AGENT_WHEELS))

test-agent: venv ## agent tests (kernel tests need root; they skip with a reason otherwise)
	$(BIN)/pytest tests/agent

demo-live: venv ## the agent on this host feeds the offline stack; a loopback reverse shell becomes a finding
	$(BIN)/python benchmarks/agent_demo_live.py

bench-agent: venv ## agent overhead at 200 exec/s + 500 connects/s + 100 DNS/s for 60 s (root)
	$(BIN)/python benchmarks/agent_bench.py $(if $(BENCH_SECONDS),--seconds $(BENCH_SECONDS))
