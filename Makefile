# SkyVault: the README's two commands are `make demo` and `make test`.
# `make setup` installs what is missing and is a fast no-op when everything is there.

SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
DEBIAN_PACKAGES := postgresql-15 postgresql-15-q3c postgresql-15-pgsphere stilts chromium chromium-driver nginx
SETUP_STAMP := $(VENV)/.setup-$(shell cat setup.cfg setup.py pyproject.toml | sha1sum | cut -c1-12)
# The browser libraries the web pages serve themselves (Aladin Lite, plotly.js), pinned with their
# integrity hashes in package-lock.json and installed from the npm registry (server/web/assets).
WEB_ASSETS := server/web/assets
WEB_STAMP := $(WEB_ASSETS)/node_modules/.installed-$(shell cat $(WEB_ASSETS)/package-lock.json | sha1sum | cut -c1-12)

.PHONY: setup demo test lint bench load clean-var

setup: $(SETUP_STAMP) $(WEB_STAMP)

$(WEB_STAMP): $(WEB_ASSETS)/package.json $(WEB_ASSETS)/package-lock.json
	@command -v npm >/dev/null || bash deploy/install-system-packages.sh npm
	@npm ci --prefix $(WEB_ASSETS) --ignore-scripts --no-audit --no-fund --loglevel=error
	@touch $@

$(SETUP_STAMP): setup.cfg setup.py pyproject.toml
	@bash deploy/install-system-packages.sh $(DEBIAN_PACKAGES)
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	@$(BIN)/pip install --quiet --upgrade pip
	@$(BIN)/pip install --quiet -e '.[test]'
	@rm -f $(VENV)/.setup-*
	@touch $@

demo: setup
	@$(BIN)/skyvault demo

test: setup
	@$(BIN)/ruff check .
	@$(BIN)/python -m pytest -q $(PYTEST_ARGS)

lint: setup
	@$(BIN)/ruff check .
	@$(BIN)/ruff format --check .

bench: setup
	@$(BIN)/python -m benchmarks $(BENCH_ARGS)

# The Locust load test against the demo's archive (`skyvault demo --no-serve` first); LOAD_ARGS
# e.g. "--minutes 6 --faults". Figures go to BENCHMARKS.md.
load: setup
	@$(BIN)/pip install --quiet -e '.[bench]'
	@$(BIN)/python -m benchmarks.load $(LOAD_ARGS)
