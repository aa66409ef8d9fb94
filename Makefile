# Vigil. `make help` lists the targets; CI runs `make test` (see .ci/run).
SHELL := /bin/bash
PY ?= python3
VENV := .venv
BIN := $(VENV)/bin
export AWS_ACCESS_KEY_ID ?= testing
export AWS_SECRET_ACCESS_KEY ?= testing
export AWS_DEFAULT_REGION ?= us-east-1
export SAM_CLI_TELEMETRY := 0
export POWERTOOLS_TRACE_DISABLED := 1

.DEFAULT_GOAL := help
.PHONY: help venv test test-unit lint typecheck demo bench replay

help: ## list the targets
	@grep -hE '^[a-zA-Z0-9_-]+:.*## ' $(MAKEFILE_LIST) | sort | awk -F':.*## ' '{printf "  \033[36m%-16s\033[0m %s\n", $$1, $$2}'

$(VENV)/.installed: requirements-dev.txt pyproject.toml
	@echo "==> setting up $(VENV) (first run: about a minute; pinned in requirements-dev.txt)"
	@test -x $(BIN)/python || $(PY) -m venv $(VENV)
	@$(BIN)/pip install -q --upgrade pip
	@echo "==> installing dev/test requirements"
	@$(BIN)/pip install -q -r requirements-dev.txt
	@$(BIN)/pip install -q --no-deps -e . > $(VENV)/editable.log 2>&1 || { cat $(VENV)/editable.log; exit 1; }
	@touch $@
	@echo "==> $(VENV) ready"

venv: $(VENV)/.installed ## create .venv and install the dev/test environment

test: venv lint agent-bpf-if-tools ## lint, then all tests (unit, functional, integration on moto, agent tests when root)
	$(BIN)/pytest

test-unit: venv ## fast pure tests only
	$(BIN)/pytest tests/unit

lint: venv ## ruff + mypy --strict on the core and adapters
	$(BIN)/ruff check .
	$(BIN)/mypy layers/core/vigil layers/aws/vigil_aws

demo: venv ## offline stack: deploy template.yaml to emulated AWS on loopback, replay events/, show findings
	$(BIN)/python -m local.demo

bench: venv ## ingest-path throughput on one core; last line is the contract
	$(BIN)/python benchmarks/ingest.py

-include mk/*.mk
