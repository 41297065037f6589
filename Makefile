# vault-platform: the two commands that matter are `make test` and `make up`.
SHELL := /bin/bash
PYTHON ?= python3.11
VENV ?= venv
PY := $(VENV)/bin/python
STACK ?= dev
ACTIONLINT_VERSION := v1.7.12
TOOLS := $(CURDIR)/.tools/bin

# A local file backend inside the repo (git-ignored): no Pulumi Cloud account needed.
export PULUMI_BACKEND_URL ?= file://$(CURDIR)/.pulumi-state
# The dev stack's secrets (root token, unseal keys) are encrypted with this passphrase in the local
# state. Set your own; prod stacks use their own backend and a KMS secrets provider instead.
export PULUMI_CONFIG_PASSPHRASE ?= vault-platform-dev
export PATH := $(TOOLS):$(PATH)

CHART_VERSION := 0.34.1

.PHONY: help test test-unit lint up preview destroy stack vault-server tools clean bench chart-reference

help:
	@echo "make test                  install everything into $(VENV) and run the whole test suite"
	@echo "make up                    deploy the dev stack to the current kind cluster"
	@echo "make preview STACK=prod    preview a stack"
	@echo "make lint                  ruff and actionlint only"
	@echo "make bench                 print the benchmark figures"

$(VENV)/.installed: requirements.txt requirements-dev.txt
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --disable-pip-version-check -r requirements-dev.txt
	touch $@

$(TOOLS)/actionlint:
	mkdir -p $(TOOLS)
	GOBIN=$(TOOLS) go install github.com/rhysd/actionlint/cmd/actionlint@$(ACTIONLINT_VERSION)

tools: $(TOOLS)/actionlint

# Builds a Vault server from Go modules once into a cache outside the repo, unless one is given
# (VAULT_PLATFORM_VAULT_BIN) or a `vault`/`bao` binary is on PATH.
vault-server:
	@if [ -n "$$VAULT_PLATFORM_VAULT_BIN" ] || command -v vault >/dev/null || command -v bao >/dev/null; then \
		echo "using an existing server binary"; \
	else \
		bash tools/vault-server/build.sh; \
	fi

test: $(VENV)/.installed tools vault-server
	$(PY) -m pytest $(PYTEST_ARGS)

test-unit: $(VENV)/.installed tools
	$(PY) -m pytest -m "not integration" $(PYTEST_ARGS)

lint: $(VENV)/.installed tools
	$(VENV)/bin/ruff check .
	actionlint

bench: $(VENV)/.installed vault-server
	$(PY) benchmarks/run_all.py

stack: $(VENV)/.installed
	@case "$(PULUMI_BACKEND_URL)" in file://*) mkdir -p "$${PULUMI_BACKEND_URL#file://}";; esac
	pulumi login $(PULUMI_BACKEND_URL)
	pulumi stack select $(STACK) 2>/dev/null || pulumi stack init $(STACK)

up: stack
	pulumi up --stack $(STACK) --yes

preview: stack
	pulumi preview --stack $(STACK) --diff

destroy: stack
	pulumi destroy --stack $(STACK)

# The pinned chart's value paths and schema, for the values tests, made from the chart itself (needs
# helm and network). CI machines without network use the copy beside the repo instead.
chart-reference: $(VENV)/.installed
	rm -rf .tools/chart .tools/chart-reference && mkdir -p .tools/chart .tools/chart-reference
	helm pull vault --repo https://helm.releases.hashicorp.com --version $(CHART_VERSION) --untar --untardir .tools/chart
	$(PY) scripts/chart_value_paths.py .tools/chart/vault > .tools/chart-reference/value-paths.txt
	cp .tools/chart/vault/values.yaml .tools/chart/vault/values.schema.json .tools/chart-reference/

clean:
	rm -rf $(VENV) .pytest_cache .ruff_cache
