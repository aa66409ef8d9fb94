# vigil-agent targets (included by the main Makefile). Owner: the agent.
.PHONY: agent-package agent-bpf agent-native agent-bpf-if-tools demo-live bench-agent test-agent

# The eBPF sensor: CO-RE object compiled against the build host's BTF, relocated by libbpf at load
# on any BTF kernel. Needs clang, bpftool (vmlinux.h) and libbpf's headers (libbpf-dev); without
# them the agent runs on audit alone (and says so).
BPF_SRC := agent/bpf/vigil.bpf.c
BPF_OBJ := agent/vigil_agent/vigil.bpf.o
BPF_ARCH := $(shell uname -m | sed -e 's/x86_64/x86/' -e 's/aarch64/arm64/')
CLANG ?= $(shell command -v clang 2>/dev/null || command -v clang-14 2>/dev/null || echo clang)
BPFTOOL ?= $(shell command -v bpftool 2>/dev/null || echo /usr/sbin/bpftool)

agent-bpf: $(BPF_OBJ) ## compile the agent's eBPF sensor (clang, bpftool, libbpf-dev)

build/bpf/vigil.bpf.o: $(BPF_SRC)
	@mkdir -p build/bpf
	@test -r /sys/kernel/btf/vmlinux || { echo "agent-bpf: /sys/kernel/btf/vmlinux missing (a BTF kernel is needed to build)"; exit 1; }
	$(BPFTOOL) btf dump file /sys/kernel/btf/vmlinux format c > build/bpf/vmlinux.h
	$(CLANG) -g -O2 -Wall -target bpf -D__TARGET_ARCH_$(BPF_ARCH) -Ibuild/bpf -c $(BPF_SRC) -o $@

# The ring's native fast path (execs, connects/accepts of known processes as wire lines, in C) and
# the DNS capture's reader: plain C and libc, loaded with ctypes. Without it the agent handles
# every record and packet in Python.
FAST_SRC := agent/native/fastpath.c agent/native/dnsfast.c
FAST_LIB := agent/vigil_agent/libvigilfast.so
NATIVE_CC ?= $(shell command -v cc 2>/dev/null || command -v gcc 2>/dev/null || echo $(CLANG))

agent-native: $(FAST_LIB) ## compile the agent's native ring consumer and DNS reader (a C compiler)

$(FAST_LIB): $(FAST_SRC) agent/native/put.h
	$(NATIVE_CC) -O2 -g0 -Wall -Wextra -Werror -std=c11 -shared -fPIC -o $@ $(FAST_SRC)

# `make test` builds the sensor when the toolchain is there; without it the eBPF tests skip, saying
# why (CI sets VIGIL_REQUIRE_BPF=1, which turns that skip into a failure).
agent-bpf-if-tools:
	@if command -v $(CLANG) >/dev/null && command -v $(BPFTOOL) >/dev/null && [ -r /usr/include/bpf/bpf_helpers.h ]; then \
	  $(MAKE) --no-print-directory agent-bpf; \
	else echo "note: clang/bpftool/libbpf-dev missing: the eBPF sensor is not built (agent tests use audit only)"; fi
	@if command -v $(NATIVE_CC) >/dev/null; then $(MAKE) --no-print-directory agent-native; \
	else echo "note: no C compiler: the native fast path is not built (eBPF records and DNS packets are handled in Python)"; fi

$(BPF_OBJ): build/bpf/vigil.bpf.o
	llvm-strip -g -o $@ $< 2>/dev/null || cp $< $@

AGENT_VERSION := $(shell sed -n 's/^__version__ = "\(.*\)"/\1/p' agent/vigil_agent/__init__.py)

agent-package: venv $(BPF_OBJ) $(FAST_LIB) ## build the agent artifact build/agent/vigil-agent-<version>.tar.gz (+ .sha256)
	$(BIN)/python agent/packaging/build.py --out build/agent $(if $(AGENT_WHEELS),--wheels $(AGENT_WHEELS))

test-agent: venv ## agent tests (kernel tests need root; they skip with a reason otherwise)
	$(BIN)/pytest tests/agent

demo-live: venv ## the agent on this host feeds the offline stack; a loopback reverse shell becomes a finding
	$(BIN)/python benchmarks/agent_demo_live.py

bench-agent: venv ## agent overhead at 200 exec/s + 500 connects/s + 100 DNS/s for 60 s (root)
	$(BIN)/python benchmarks/agent_bench.py $(if $(BENCH_SECONDS),--seconds $(BENCH_SECONDS))
