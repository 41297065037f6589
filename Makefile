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

# The charts whose value paths the tests check (tests/facts/charts); bump with `make chart-facts`.
# The chart version is pinned once, in the model.
CHART_VERSION := $(shell sed -n 's/^VAULT_CHART_VERSION = "\(.*\)"$$/\1/p' components/model/platform.py)
ESO_CHART_VERSION := 2.9.0
# FLAVOR=openbao (or vault) runs the integration tests on one server only; the default runs both.
# TEST_WORKERS=<n>: how many test processes `make test` runs at once (default 6; 0: one process).
export FLAVOR ?= all

# The guardrails policy pack runs on every preview and update, from its own venv. A stack without
# a config file of its own under policy/config gets prod's, where every policy is mandatory.
POLICY_VENV := policy/venv
POLICY_CONFIG ?= $(firstword $(wildcard policy/config/$(STACK).json) policy/config/prod.json)
POLICY_FLAGS := --policy-pack policy --policy-pack-config $(POLICY_CONFIG)

.PHONY: help test test-unit lint up preview refresh destroy teardown stack ca-file vault-server pulumi-engine \
	promtool helm tools system-packages clean bench cluster cluster-down cluster-smoke e2e e2e-up e2e-walkthrough e2e-teardown \
	chart-facts crd-facts migrate

help:
	@echo "make test                  install everything and run the whole suite (FLAVOR=openbao: one server)"
	@echo "make up                    deploy the dev stack to the current kind cluster"
	@echo "make preview STACK=prod    preview a stack (with the guardrails policy pack)"
	@echo "make refresh STACK=prod    refresh a stack, logging in to Vault as the program does"
	@echo "make lint                  ruff and actionlint only"
	@echo "make teardown              delete a dev stack and its data (lifts its destroy guard; not prod)"
	@echo "make bench                 print the benchmark figures"
	@echo "make cluster               build (once) and start a one-node Kubernetes here, no Docker (root)"
	@echo "make cluster-smoke         prove it: a pod, a volume, DNS, a NodePort; make cluster-down stops it"
	@echo "make e2e                   deploy the dev stack for real to the current kube context, walk it through, tear it down"
	@echo "make migrate ARGS=\"plan --map prod/=imported/\"   copy AWS Secrets Manager secrets into Vault KV"

# The program runs from this folder and imports the components from it; the package is not
# installed here, so the tests can prove that a stack's state loads without this checkout.
$(VENV)/.installed: requirements.txt requirements-dev.txt
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --disable-pip-version-check -r requirements-dev.txt
	touch $@

$(POLICY_VENV)/.installed: policy/requirements.txt
	$(PYTHON) -m venv $(POLICY_VENV)
	$(POLICY_VENV)/bin/pip install --quiet --disable-pip-version-check -r policy/requirements.txt
	touch $@

$(TOOLS)/actionlint:
	mkdir -p $(TOOLS)
	GOBIN=$(TOOLS) go install github.com/rhysd/actionlint/cmd/actionlint@$(ACTIONLINT_VERSION)

tools: $(TOOLS)/actionlint

# The Debian/Ubuntu packages the integration tests need (apt-get when root or with sudo -n).
system-packages:
	@bash tools/system-packages.sh

# Builds the HashiCorp Vault test server from Go modules once into a cache outside the repo.
vault-server:
	bash tools/vault-server/build.sh

# Builds the Pulumi CLI the engine tests drive, from Go modules, once into the same cache.
pulumi-engine:
	bash tools/pulumi-engine/build.sh

# Prometheus' promtool for the alert rule tests, built from Go modules once into the same cache.
promtool:
	bash tools/promtool/build.sh

# helm and the Vault chart for the chart tests, both from the Go module proxy, once into the same cache.
helm:
	bash tools/helm/build.sh

# A one-node Kubernetes 1.34 on this machine without Docker (tools/cluster/README.md): built once
# into the cache (~25 min cold), started in about a minute; cluster-down leaves nothing behind.
cluster:
	bash tools/cluster/packages.sh
	bash tools/cluster/build.sh >/dev/null
	bash tools/cluster/up.sh

cluster-down:
	bash tools/cluster/down.sh

cluster-smoke:
	bash tools/cluster/smoke.sh

# The dev stack (with tests/e2e/stack.yaml over it) through the real engine and plugins, to the
# current kube context, checked in the cluster, walked through (tests/e2e/walkthrough.py) and torn
# down. e2e-up keeps it; e2e-walkthrough (STEPS="failover ...") walks a kept one; e2e-teardown
# destroys it. Not in CI: too slow cold.
e2e: $(VENV)/.installed
	$(PY) -m tests.e2e.run all

e2e-up: $(VENV)/.installed
	$(PY) -m tests.e2e.run up

e2e-walkthrough: $(VENV)/.installed
	$(PY) -m tests.e2e.run walkthrough $(STEPS)

e2e-teardown: $(VENV)/.installed
	$(PY) -m tests.e2e.run teardown

# Everything a fresh clone needs, then the whole suite. The tool builds start first, in the
# background, so they overlap the venv's install as well as the tests (PREPARE).
test: system-packages
	PY=$(PY) PREPARE="$(MAKE) --no-print-directory $(VENV)/.installed tools" bash tools/run-tests.sh $(PYTEST_ARGS)

test-unit: system-packages $(VENV)/.installed tools
	$(PY) -m pytest -m "not integration" $(PYTEST_ARGS)

lint: $(VENV)/.installed tools
	$(VENV)/bin/ruff check .
	actionlint

bench: $(VENV)/.installed vault-server
	$(PY) benchmarks/run_all.py

# Copy secrets from AWS Secrets Manager into Vault KV v2 (docs/migrating-from-aws-secrets-manager.md):
#   make migrate ARGS="plan --map prod/=imported/"      then apply, verify, status
# Vault from VAULT_ADDR, VAULT_TOKEN and VAULT_CACERT; AWS from the standard credential chain.
migrate: $(VENV)/.installed
	$(PY) -m migration $(ARGS)

# A new prod stack encrypts its secrets with a KMS key, not a passphrase: whoever holds a passphrase
# could decrypt the whole state. PULUMI_SECRETS_PROVIDER=awskms://alias/<key>?region=<region> says
# which; Pulumi records it in Pulumi.<stack>.yaml.
stack: $(VENV)/.installed
	@case "$(PULUMI_BACKEND_URL)" in file://*) mkdir -p "$${PULUMI_BACKEND_URL#file://}";; esac
	pulumi login $(PULUMI_BACKEND_URL)
	@pulumi stack select $(STACK) 2>/dev/null || { \
	  if [ "$(STACK)" = prod ] && [ -z "$(PULUMI_SECRETS_PROVIDER)" ]; then \
	    echo "make stack: creating the prod stack needs PULUMI_SECRETS_PROVIDER=awskms://alias/<key>?region=<region>" \
	      "(a KMS secrets provider, not a passphrase)" >&2; exit 2; \
	  fi; \
	  pulumi stack init $(STACK) $(if $(PULUMI_SECRETS_PROVIDER),--secrets-provider '$(PULUMI_SECRETS_PROVIDER)'); }

# The Vault provider reads the stack's CA from .vault-ca/<stack>-ca.pem, relative to this folder.
# The program writes it on every run; on a fresh clone, refresh and destroy need it first. Before
# the first deploy there is no output, and nothing to do.
ca-file: stack
	@mkdir -p .vault-ca
	@pulumi stack output caCertificate --stack $(STACK) > .vault-ca/$(STACK)-ca.pem.tmp 2>/dev/null \
		&& mv .vault-ca/$(STACK)-ca.pem.tmp .vault-ca/$(STACK)-ca.pem || rm -f .vault-ca/$(STACK)-ca.pem.tmp

up: stack $(POLICY_VENV)/.installed
	pulumi up --stack $(STACK) --yes $(POLICY_FLAGS)

preview: stack ca-file $(POLICY_VENV)/.installed
	pulumi preview --stack $(STACK) --diff $(POLICY_FLAGS)

# --run-program: the Vault provider logs in as the program says (a CI login, or your VAULT_TOKEN
# after the root token's revocation), not with a short-lived token recorded by an earlier run.
refresh: stack ca-file
	pulumi refresh --stack $(STACK) --run-program

# Everything that holds data is protected (the namespace and release with the Raft volumes, every
# secrets engine mount, the KMS keys, the snapshot bucket): `pulumi destroy` stops at them. To throw
# a dev stack away for real, `make teardown` unprotects it first and runs the program with
# VAULT_PLATFORM_TEARDOWN=1, which protects nothing (otherwise `--run-program` would protect the
# destroy guard again). Never for prod: the program refuses it there too.
destroy: stack ca-file
	pulumi destroy --stack $(STACK) --run-program

# A stack that holds nothing (torn down already) is left alone: a destroy that runs the program on
# it would register the program's components and providers and keep them in the state.
teardown: stack ca-file
	@if [ "$(STACK)" = "prod" ]; then echo "make teardown refuses the prod stack"; exit 2; fi
	@if pulumi stack export --stack $(STACK) | $(PY) scripts/stack_holds.py --nothing; then \
	  echo "make teardown: the $(STACK) stack holds nothing; nothing to tear down"; \
	else \
	  set -x; pulumi state unprotect --all --yes --stack $(STACK) && \
	  VAULT_PLATFORM_TEARDOWN=1 pulumi destroy --yes --stack $(STACK) --run-program; \
	fi

# Regenerate the committed chart facts (value paths, types, free-form prefixes) after bumping a
# chart: from the chart repositories (needs helm and network), or REFERENCE=<folder> holding
# vault-helm-<version>/ and external-secrets-<version>/ unpacked charts or reference copies.
chart-facts: $(VENV)/.installed
	@set -e; src="$(REFERENCE)"; \
	if [ -z "$$src" ]; then \
		src=.tools/charts; rm -rf "$$src"; mkdir -p "$$src"; \
		helm pull vault --repo https://helm.releases.hashicorp.com --version $(CHART_VERSION) --untar --untardir "$$src/v"; \
		mv "$$src/v/vault" "$$src/vault-helm-$(CHART_VERSION)"; \
		helm pull external-secrets --repo https://charts.external-secrets.io --version $(ESO_CHART_VERSION) --untar --untardir "$$src/e"; \
		mv "$$src/e/external-secrets" "$$src/external-secrets-$(ESO_CHART_VERSION)"; \
	fi; \
	$(PY) scripts/chart_facts.py "$$src/vault-helm-$(CHART_VERSION)" > tests/facts/charts/vault-$(CHART_VERSION).json; \
	$(PY) scripts/chart_facts.py "$$src/external-secrets-$(ESO_CHART_VERSION)" \
		> tests/facts/charts/external-secrets-$(ESO_CHART_VERSION).json; \
	echo "wrote tests/facts/charts/: commit them, and remove the files of versions no longer pinned"

# Regenerate the committed CRD facts from a folder of CustomResourceDefinition manifests:
#   make crd-facts CRDS=<folder>
crd-facts: $(VENV)/.installed
	@test -n "$(CRDS)" || { echo "usage: make crd-facts CRDS=<folder of CRD yaml files>"; exit 2; }
	@set -e; for f in "$(CRDS)"/*.yaml; do \
		$(PY) scripts/crd_facts.py "$$f" > "tests/facts/crds/$$(basename "$$f" .yaml).json"; done; \
	echo "wrote tests/facts/crds/"

clean:
	rm -rf $(VENV) $(POLICY_VENV) .pytest_cache .ruff_cache
