# Victim Updates — one command to run it locally, one to test it.
PYTHON ?= python3.11
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed
NODE_STAMP := node_modules/.installed
DEMO := out/demo

.PHONY: help install demo test lint typecheck unit schemas clean bench

help:
	@echo "make demo   - generate a sample and run the whole service locally"
	@echo "make test   - lint, type-check and run the tests"
	@echo "make schemas - regenerate the feed contracts' JSON Schema files"
	@echo "make bench  - the benchmark: a force-year through the local host (slow; not part of make test)"

$(STAMP): requirements.txt requirements-dev.txt
	@command -v $(PYTHON) >/dev/null 2>&1 || { echo "$(PYTHON) not found; set PYTHON=/path/to/python3.11"; exit 1; }
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --disable-pip-version-check -r requirements-dev.txt
	touch $(STAMP)

# Azurite (the Table Storage emulator) for the adapter tests, pinned by package-lock.json.
$(NODE_STAMP): package.json package-lock.json
	@command -v npm >/dev/null 2>&1 || { echo "npm not found: Node.js 20 is needed for Azurite"; exit 1; }
	npm ci --no-audit --no-fund --ignore-scripts --loglevel=error
	touch $(NODE_STAMP)

install: $(STAMP) $(NODE_STAMP)

demo: $(STAMP)
	rm -rf $(DEMO)
	$(PY) -m shared.local generate --crimes 3000 --days 30 --seed 7 --out $(DEMO)/feeds
	$(PY) -m shared.local run --feeds $(DEMO)/feeds --officers $(DEMO)/feeds/officers.json --out $(DEMO)/run

lint: $(STAMP)
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .

typecheck: $(STAMP)
	$(VENV)/bin/mypy

unit: $(STAMP) $(NODE_STAMP)
	$(VENV)/bin/pytest -q

test: lint typecheck unit

schemas: $(STAMP)
	$(PY) -m shared.contracts.schemas

clean:
	rm -rf out .pytest_cache .mypy_cache .ruff_cache node_modules

# The benchmark (not part of `make test`): a force-year and its growth curve; see README.
BENCH_SIZES ?= 10000,30000,110000
bench: $(STAMP)
	$(PY) -m shared.local.bench --sizes $(BENCH_SIZES) --out out/bench
