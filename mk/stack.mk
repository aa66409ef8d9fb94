# Offline stack and SAM targets (included by the Makefile). aws-sam-cli lives in its own venv:
# it pins boto3, cfn-lint and pyopenssl differently from the test environment.
SAM_VENV := .venv-sam
SAM := $(SAM_VENV)/bin/sam
.PHONY: stack lint-sam sam-build

stack: venv ## offline stack on 127.0.0.1:5000 until Ctrl-C (state in local/.state/stack.json)
	$(BIN)/python -m local.stack

$(SAM):
	@test -x $(SAM_VENV)/bin/python || $(PY) -m venv $(SAM_VENV)
	$(SAM_VENV)/bin/pip install -q aws-sam-cli

lint-sam: venv $(SAM) ## sam validate --lint and cfn-lint on template.yaml
	$(SAM) validate --lint --region $(AWS_DEFAULT_REGION)
	$(BIN)/cfn-lint template.yaml

sam-build: $(SAM) ## sam build (python3.11, no Docker) into .aws-sam/build
	$(SAM) build
