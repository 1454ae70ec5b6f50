# llmfleet.deepseek — the two commands are `make lab` and `make test` (see README.md).
SHELL := /bin/bash
.DEFAULT_GOAL := help

VENV      := .venv
BIN       := $(CURDIR)/$(VENV)/bin
PY        ?= python3
export PATH := $(BIN):$(PATH)
export ANSIBLE_CONFIG := $(CURDIR)/ansible.cfg
# Plain logs (CI reads them as text).
export NO_COLOR := 1
export PY_COLORS := 0
export ANSIBLE_NOCOLOR := 1
STAGE     := scripts/stage.sh
TESTBED   := scripts/testbed.sh
SCENARIOS := $(sort $(notdir $(patsubst %/molecule.yml,%,$(wildcard molecule/*/molecule.yml))))
SCENARIO  ?=

.PHONY: help venv sslyze lock deps tools lint sanity unit integration molecule test lab lab-down clean build build-check bench-fleet

help:
	@echo "make lab        start the lab (local hosts over SSH) and run site.yml against it"
	@echo "make lab-down   remove the lab and stop everything it started"
	@echo "make test       everything CI runs: lint, sanity, unit, every Molecule scenario"
	@echo "make bench-fleet no-op site.yml over 1/4/8/16 lab hosts: defaults, tuned, Mitogen (docs/performance.md)"
	@echo "make venv | lint | sanity | build-check | unit | integration | molecule [SCENARIO=name] | build | clean"

# The pinned toolchain. Rebuilt when requirements.txt or constraints.txt change. Also links this
# repository as .cache/collections/ansible_collections/llmfleet/deepseek (ansible.cfg's
# collections_path), so the collection's modules resolve when playbooks run from here.
COLLECTION_LINK := .cache/collections/ansible_collections/llmfleet/deepseek
venv: $(VENV)/.stamp $(COLLECTION_LINK)
$(COLLECTION_LINK):
	mkdir -p $(dir $@) && ln -sfn ../../../.. $@

$(VENV)/.stamp: requirements.txt constraints.txt
	test -x $(BIN)/python || $(PY) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip
	$(BIN)/python -m pip install -q -r requirements.txt -c constraints.txt
	touch $@

# Re-resolve the toolchain from requirements.txt and write the exact versions to constraints.txt.
lock:
	rm -rf .lock-venv && $(PY) -m venv .lock-venv
	.lock-venv/bin/python -m pip install -q --upgrade pip
	.lock-venv/bin/python -m pip install -q -r requirements.txt
	{ echo '# Exact toolchain versions (pip freeze of `make venv`); regenerate with `make lock`.'; \
	  .lock-venv/bin/python -m pip freeze --all | grep -vE '^(pip|setuptools|wheel)=='; } > constraints.txt
	rm -rf .lock-venv

# sslyze (the TLS edge's profile check) in its own virtualenv: its cryptography pin is older
# than the toolchain's.
SSLYZE := .venv-sslyze
sslyze: $(SSLYZE)/.stamp
$(SSLYZE)/.stamp: tests/requirements-sslyze.txt
	test -x $(SSLYZE)/bin/python || $(PY) -m venv $(SSLYZE)
	$(SSLYZE)/bin/python -m pip install -q -r tests/requirements-sslyze.txt
	touch $@

# Debian packages of the test bed (Docker engine, mmdebstrap, apt-cacher-ng, shellcheck for
# sanity); needs root.
deps:
	$(TESTBED) deps

lint: venv
	yamllint --strict .
	ansible-lint --profile production
	antsibull-changelog lint
	$(BIN)/python scripts/role_docs.py --check
	$(BIN)/python scripts/support_matrix.py --check

sanity: venv deps
	scripts/sanity.sh

# promtool and mtail from Debian's packages (scripts/tools.sh) for the monitoring role's tests.
tools:
	scripts/tools.sh

unit: venv tools
	pytest -q tests/unit

# Needs root: the firewall module in front of a real Docker engine, in network namespaces.
integration: venv deps
	tests/integration/docker_allowlist.sh

# One scenario (SCENARIO=name) or all of them, on one test bed started once.
# Scenarios run under Mitogen's strategy unless LLMFLEET_STRATEGY=linear (docs/performance.md).
LLMFLEET_STRATEGY ?= mitogen_linear
export LLMFLEET_STRATEGY
molecule: venv deps sslyze
	@set -euo pipefail; was_up=0; $(TESTBED) status && was_up=1; \
	export LLMFLEET_STRATEGY_PLUGINS=$$($(BIN)/python -c 'import os, ansible_mitogen; print(os.path.dirname(ansible_mitogen.__file__) + "/plugins/strategy")'); \
	eval "$$($(TESTBED) up)"; trap '[ $$was_up = 1 ] || $(TESTBED) down' EXIT; \
	rc=0; for s in $(if $(SCENARIO),$(SCENARIO),$(SCENARIOS)); do \
	  $(STAGE) "molecule $$s" molecule test -s $$s || rc=1; \
	done; exit $$rc

test:
	@export LLMFLEET_TIMINGS=$$(mktemp) LLMFLEET_FAILURES=$$(mktemp); rc=0; \
	$(STAGE) venv $(MAKE) --no-print-directory venv || exit 1; \
	$(STAGE) deps $(MAKE) --no-print-directory deps || exit 1; \
	$(STAGE) lint $(MAKE) --no-print-directory lint || rc=1; \
	$(STAGE) sanity $(MAKE) --no-print-directory sanity || rc=1; \
	$(STAGE) build $(MAKE) --no-print-directory build-check || rc=1; \
	$(STAGE) unit $(MAKE) --no-print-directory unit || rc=1; \
	$(STAGE) integration $(MAKE) --no-print-directory integration || rc=1; \
	$(STAGE) molecule $(MAKE) --no-print-directory molecule || rc=1; \
	echo "== timings"; cat $$LLMFLEET_TIMINGS; cat $$LLMFLEET_FAILURES; rm -f $$LLMFLEET_TIMINGS $$LLMFLEET_FAILURES; exit $$rc

lab: venv deps
	scripts/lab.sh up

lab-down:
	scripts/lab.sh down

# Not part of `make test` (about 40 minutes here): LLMFLEET_BENCH_HOSTS="1 4" for a shorter run.
bench-fleet: venv deps
	scripts/bench_fleet.sh

build: venv
	ansible-galaxy collection build --force

# The built artifact installs, its playbook resolves and its docs render (scripts/build_check.sh).
build-check: venv
	scripts/build_check.sh

clean: lab-down
	$(TESTBED) clean
	rm -rf .sanity tests/output .pytest_cache llmfleet-deepseek-*.tar.gz
