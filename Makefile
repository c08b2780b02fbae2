# Parsec node. `make run` and `make test` are the two commands; both install what is missing.
SHELL := /bin/bash
.DEFAULT_GOAL := help

PYTHON ?= python3.11
VENV := .venv
PY := $(VENV)/bin/python
NODES ?= 4

.PHONY: help install system-packages native static contracts run stop test lint format bench soak clean

help:
	@echo "make run     start the local network (NODES=$(NODES)); Ctrl-C or 'make stop' stops it"
	@echo "make test    lint, types, import contracts and the whole test suite on throw-away services"
	@echo "make bench   the benchmarks; tables on screen, JSON in bench/results/"
	@echo "make lint    ruff, ruff format --check, mypy, import-linter, makemigrations --check"

install: system-packages $(VENV)/.installed native node_modules/.installed static contracts

system-packages:
	@bash devstack/install-system-packages.sh

$(VENV)/.installed: requirements/base.txt requirements/dev.txt requirements/lock.txt
	@command -v $(PYTHON) >/dev/null || { echo "[parsec] $(PYTHON) is required"; exit 1; }
	$(PYTHON) -m venv $(VENV)
	$(VENV)/bin/pip install --quiet --disable-pip-version-check -r requirements/dev.txt -c requirements/lock.txt
	@touch $@

# The one compiled module (a whole Merkle level hashed per call); rebuilt when its source changes.
native: $(VENV)/.installed
	@$(PY) -m devstack.native

node_modules/.installed: package.json package-lock.json
	npm ci --no-audit --no-fund --loglevel=error
	@touch $@

# Front-end files come from npm, never from a CDN.
static: node_modules/.installed
	@mkdir -p static/vendor/swagger-ui
	@cp node_modules/htmx.org/dist/htmx.min.js static/vendor/htmx.min.js
	@cp node_modules/htmx-ext-ws/dist/ws.min.js static/vendor/htmx-ext-ws.min.js
	@cp node_modules/swagger-ui-dist/swagger-ui.css node_modules/swagger-ui-dist/swagger-ui-bundle.js \
	    node_modules/swagger-ui-dist/swagger-ui-standalone-preset.js static/vendor/swagger-ui/

contracts: node_modules/.installed
	@node contracts/build.mjs

run: install
	$(PY) -m devstack run --nodes $(NODES)

stop:
	$(PY) -m devstack stop

test: install
	$(PY) -m devstack test

# mypy's Django plugin and makemigrations import the settings, which insist on a SECRET_KEY.
lint: export SECRET_KEY ?= lint-only-not-a-secret
lint: $(VENV)/.installed
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .
	$(VENV)/bin/mypy
	$(VENV)/bin/lint-imports
	$(PY) manage.py makemigrations --check --dry-run

format: $(VENV)/.installed
	$(VENV)/bin/ruff check --fix .
	$(VENV)/bin/ruff format .

bench: install
	$(PY) -m devstack exec -- $(PY) -m bench

soak: install
	$(PY) -m consensus.simulate --soak 10000

clean:
	rm -rf $(VENV) node_modules static/vendor contracts/build
