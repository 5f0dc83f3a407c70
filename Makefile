# winops.remoting: the two commands are `make demo` and `make test`; everything they need is
# installed from here (Debian packages and PyPI), never by hand.
SHELL := /bin/bash
.SHELLFLAGS := -eu -o pipefail -c
PYTHON ?= python3
VENV := $(CURDIR)/.venv
VENV_OLDEST := $(CURDIR)/.venv-2.17
# ansible-core 2.18, between the oldest and the newest: its own unit run.
VENV_2_18 := $(CURDIR)/.venv-2.18
# Galaxy / Automation Hub review tools (ansible-lint, antsibull-*, ansible-builder), apart from
# the versions the collection is tested with.
VENV_LINT := $(CURDIR)/.venv-lint
BIN := $(VENV)/bin
# Unit tests import the working tree as ansible_collections.winops.remoting through this link.
DEV_COLLECTIONS := $(CURDIR)/build/dev
# Integration tests, Molecule and the demo use the built and installed tarball.
COLLECTIONS := $(CURDIR)/build/collections
VERSION := $(shell sed -n 's/^version: *//p' galaxy.yml)
TARBALL := $(CURDIR)/dist/winops-remoting-$(VERSION).tar.gz
STATE_DIR ?= $(CURDIR)/build/demo-state
export PYTHONDONTWRITEBYTECODE := 1

.PHONY: test demo deps system-deps lint unit unit-oldest unit-2.18 units build install integration molecule \
	integration-and-molecule benchmark clean \
	galaxy changelog docs-lint ansible-lint execution-environment sanity

test: deps lint units install galaxy integration-and-molecule

# `make test` runs Molecule in shard 1 of the integration stage, after the persistence-off pass,
# while shard 2 still runs (integration's comment says why that is safe).
integration-and-molecule: WITH_MOLECULE := yes
integration-and-molecule: integration

# --- set-up ---------------------------------------------------------------------------------
system-deps: build/.system-deps
build/.system-deps: tests/system-packages.txt
	@mkdir -p build
	@missing=$$(for p in $$(grep -v '^#' $< | xargs); do dpkg -s $$p >/dev/null 2>&1 || echo $$p; done); \
	if [ -n "$$missing" ]; then \
	  echo "installing Debian packages: $$missing"; \
	  if [ "$$(id -u)" = 0 ]; then SUDO=; else SUDO=sudo; fi; \
	  $$SUDO apt-get update -qq && DEBIAN_FRONTEND=noninteractive $$SUDO apt-get install -y -qq --no-install-recommends $$missing >/dev/null; \
	fi
	@touch $@

deps: system-deps $(VENV)/.installed $(VENV_OLDEST)/.installed $(VENV_2_18)/.installed $(DEV_COLLECTIONS)/ansible_collections/winops/remoting

$(VENV)/.installed: requirements.txt requirements-dev.txt
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	$(BIN)/pip install -q -r requirements-dev.txt
	@touch $@

$(VENV_OLDEST)/.installed: requirements.txt tests/requirements-ansible-2.17.txt
	$(PYTHON) -m venv $(VENV_OLDEST)
	$(VENV_OLDEST)/bin/pip install -q -r tests/requirements-ansible-2.17.txt
	@touch $@

$(VENV_2_18)/.installed: requirements.txt tests/requirements-ansible-2.18.txt
	$(PYTHON) -m venv $(VENV_2_18)
	$(VENV_2_18)/bin/pip install -q -r tests/requirements-ansible-2.18.txt
	@touch $@

$(VENV_LINT)/.installed: tests/requirements-lint.txt
	$(PYTHON) -m venv $(VENV_LINT)
	$(VENV_LINT)/bin/pip install -q -r tests/requirements-lint.txt
	@touch $@

$(DEV_COLLECTIONS)/ansible_collections/winops/remoting:
	mkdir -p $(DEV_COLLECTIONS)/ansible_collections/winops
	ln -sfn $(CURDIR) $@

# --- checks ---------------------------------------------------------------------------------
lint: deps
	$(BIN)/ruff check plugins tests benchmarks
	$(BIN)/ruff format --check plugins tests benchmarks
	$(BIN)/mypy

unit: deps
	$(BIN)/python -m pytest tests/unit -q -p no:cacheprovider

unit-oldest: deps
	$(VENV_OLDEST)/bin/python -m pytest tests/unit/plugins -q -p no:cacheprovider

unit-2.18: deps
	$(VENV_2_18)/bin/python -m pytest tests/unit/plugins -q -p no:cacheprovider

# The unit runs side by side (two at a time); each one's output is shown when it ends.
units: deps
	$(MAKE) --no-print-directory -j2 --output-sync=target unit unit-oldest unit-2.18

build: deps
	@mkdir -p dist
	$(BIN)/ansible-galaxy collection build --force --output-path dist .

install: build
	rm -rf $(COLLECTIONS)
	$(BIN)/ansible-galaxy collection install --no-deps --force -p $(COLLECTIONS) $(TARBALL)

# The integration suites run with kept sessions (the default, docs/sessions.md) in two pytest
# processes side by side: they spend much of their time waiting (on WinRM restarts, reboots,
# timeouts, ansible-playbook start-up), so on CI's two cores two sessions finish well before
# one. They cannot collide: every suite's hosts have a block of addresses of their own
# (tests/integration/address_blocks.py, checked by tests/unit/test_address_blocks.py), and
# KDCs take free ports. Shard 1 runs the suites in INTEGRATION_SHARD and then the connection
# matrix, the fault cases and Kerberos again with session_persist off, on blocks of their own
# (the e2e and kerberos blocks moved by E2E_FIRST and KERBEROS_FIRST), beside shard 2's
# sessions of the same suites (not the builtin plugins' cases: the setting is ours alone), and
# under `make test` Molecule on its own block. Shard 2 runs every other suite, so a new suite is
# never left out. Each line is prefixed with its shard (python -u: pytest's progress reaches the
# log as it happens, not when a pipe buffer fills); the stage fails if any run in either shard
# fails, after all have finished. Suites that import from their `conftest` by that bare name
# (tls, doctor, e2e) must not share a pytest process: pytest would hand one suite the other's
# conftest.
INTEGRATION_SHARD := $(addprefix tests/integration/,brownfield playbooks certauth tls)
PERSIST_OFF_SUITES := $(addprefix tests/integration/,e2e/test_matrix.py e2e/test_faults.py kerberos)
PYTEST_INTEGRATION = WINOPS_COLLECTIONS_PATH=$(COLLECTIONS) $(BIN)/python -u -m pytest -q -p no:cacheprovider \
	--durations=10
BLOCK_FIRST = $(BIN)/python tests/integration/address_blocks.py
# CI keeps only the end of the log, and the shards' summaries scroll past it: repeat what failed
# (pytest's FAILED/ERROR lines and result counts, Molecule's errors and its count) as the
# stage's last lines.
INTEGRATION_FAILURES = grep -hE '\] (FAILED|ERROR) |\] [0-9]+ (passed|failed|errors?)\b.* in [0-9.]+s|\] CRITICAL |Molecule executed ' \
	build/integration-1.log build/integration-2.log | sed -e 's/\x1b\[[0-9;]*m//g' -e 's/^/integration: /' \
	| tail -n 40 || true

integration: install
	@mkdir -p build; echo "integration: shard 1 runs $(INTEGRATION_SHARD), then $(PERSIST_OFF_SUITES) with session_persist off; shard 2 the other suites"; \
	( { status=0; $(PYTEST_INTEGRATION) $(INTEGRATION_SHARD) || status=$$?; \
	    echo "integration: $(PERSIST_OFF_SUITES) with session_persist off"; \
	    E2E_FIRST=$$($(BLOCK_FIRST) e2e_persist_off) KERBEROS_FIRST=$$($(BLOCK_FIRST) kerberos_persist_off) \
	    WINOPS_REMOTING_SESSION_PERSIST=false $(PYTEST_INTEGRATION) -k "not ansible.builtin" $(PERSIST_OFF_SUITES) || status=$$?; \
	    $(if $(WITH_MOLECULE),echo "integration: molecule"; { $(MOLECULE_RUN); } || status=$$?;) \
	    exit $$status; } 2>&1 | sed -u 's/^/[integration 1] /' | tee build/integration-1.log ) & one=$$!; \
	( $(PYTEST_INTEGRATION) tests/integration $(addprefix --ignore=,$(INTEGRATION_SHARD)) 2>&1 \
	  | sed -u 's/^/[integration 2] /' | tee build/integration-2.log ) & two=$$!; \
	status_one=0; wait $$one || status_one=$$?; status_two=0; wait $$two || status_two=$$?; \
	$(INTEGRATION_FAILURES); \
	echo "integration: shard 1 exited $$status_one, shard 2 exited $$status_two"; \
	test $$status_one -eq 0 && test $$status_two -eq 0

# Molecule scenarios (extensions/molecule) against winhost hosts on 127.0.10.80-99. molecule
# finds ansible-config through PATH. The windows scenario needs real hosts: it runs only when
# WINOPS_MOLECULE_WINDOWS_HOSTS names some, and otherwise is reported as not run.
MOLECULE_SCENARIOS := default hardening tls12
MOLECULE = PATH=$(BIN):$$PATH ANSIBLE_COLLECTIONS_PATH=$(COLLECTIONS) $(BIN)/molecule
MOLECULE_RUN = $(MOLECULE) test $(addprefix -s ,$(MOLECULE_SCENARIOS)) && \
	if [ -n "$${WINOPS_MOLECULE_WINDOWS_HOSTS:-}" ]; then $(MOLECULE) test -s windows; else \
	  echo "molecule scenario windows: NOT RUN (no real hosts named; set WINOPS_MOLECULE_WINDOWS_HOSTS, _USER and _PASSWORD)"; \
	fi
molecule: install
	$(MOLECULE_RUN)

# --- Galaxy and Automation Hub readiness -----------------------------------------------------
# ansible.windows for ansible-doc and ansible-lint: the copy in the `ansible` package of .venv.
ANSIBLE_SITE = $$($(BIN)/python -c 'import sysconfig; print(sysconfig.get_paths()["purelib"])')

galaxy: changelog docs-lint ansible-lint execution-environment sanity

# antsibull-changelog lint, then a release of the fragments in a scratch copy laid out as
# ansible_collections/winops/remoting (ansible-doc must find the plugins there).
changelog: deps $(VENV_LINT)/.installed
	$(VENV_LINT)/bin/antsibull-changelog lint
	@scratch=$$(mktemp -d) && trap 'rm -rf "$$scratch"' EXIT && \
	  copy=$$scratch/ansible_collections/winops/remoting && mkdir -p $$copy && \
	  cp -r galaxy.yml changelogs meta plugins roles $$copy/ && cd $$copy && \
	  PATH=$(VENV_LINT)/bin:$$PATH ANSIBLE_COLLECTIONS_PATH=$$scratch:$(ANSIBLE_SITE) \
	    $(VENV_LINT)/bin/antsibull-changelog release --date 2000-01-01 && \
	  grep -q '^v$(VERSION)$$' CHANGELOG.rst && \
	  test -z "$$(find changelogs/fragments -name '*.yml')" && \
	  echo "changelog: antsibull-changelog release of $(VERSION) works (tried in a scratch copy)"

docs-lint: deps $(VENV_LINT)/.installed
	PATH=$(VENV_LINT)/bin:$$PATH ANSIBLE_COLLECTIONS_PATH=$(DEV_COLLECTIONS):$(ANSIBLE_SITE) \
	  $(VENV_LINT)/bin/antsibull-docs lint-collection-docs --plugin-docs \
	  $(DEV_COLLECTIONS)/ansible_collections/winops/remoting

ansible-lint: deps $(VENV_LINT)/.installed
	ANSIBLE_COLLECTIONS_PATH=$(DEV_COLLECTIONS):$(ANSIBLE_SITE) $(VENV_LINT)/bin/ansible-lint

execution-environment: install $(VENV_LINT)/.installed
	$(VENV_LINT)/bin/python tests/execution_environment/check.py \
	  --builder $(VENV_LINT)/bin/ansible-builder --collections $(COLLECTIONS)

# ansible-test sanity on the built tarball, for the newest and the oldest ansible-core tested.
sanity: build
	$(BIN)/python tests/sanity/run.py --ansible-bin $(BIN) --tarball $(TARBALL)
	$(BIN)/python tests/sanity/run.py --ansible-bin $(VENV_OLDEST)/bin --tarball $(TARBALL)

benchmark: install
	WINOPS_COLLECTIONS_PATH=$(COLLECTIONS) $(BIN)/python benchmarks/run.py

demo: install
	WINOPS_COLLECTIONS_PATH=$(COLLECTIONS) STATE_DIR=$(STATE_DIR) $(BIN)/python tests/demo.py

clean:
	rm -rf build dist .venv .venv-2.17 .venv-2.18 .venv-lint .ansible
