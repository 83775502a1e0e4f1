# Victim Updates — one command to run it locally, one to test it.
PYTHON ?= python3.11
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed
NODE_STAMP := node_modules/.installed
IAC_VENV := .venv-iac
IAC_STAMP := $(IAC_VENV)/.installed
DEMO := out/demo
FROM ?= 2026-01-01
TO ?= 2027-12-31

.PHONY: help install demo test lint typecheck unit schemas clean bench iac report catalogue chromium serve azurite bank-holidays

help:
	@echo "make demo   - generate a sample and run the whole service locally"
	@echo "make test   - lint, type-check and run the tests"
	@echo "make schemas - regenerate the feed contracts' JSON Schema files"
	@echo "make iac    - checkov and the Bicep-vs-code tests"
	@echo "make report - the compliance report (CSV + HTML) of the demo run (FROM=, TO=, GO_LIVE= dates)"
	@echo "make catalogue - every message in every variant on one HTML page (out/catalogue/index.html)"
	@echo "make chromium - install Debian's chromium (as root) for the report's screenshot test and the page's browser tests"
	@echo "make serve  - serve the victim's page over the demo run (python -m shared.local serve)"
	@echo "make azurite - Azurite in the foreground, in memory (AZURITE_BLOB_PORT=10000, AZURITE_TABLE_PORT=10002)"
	@echo "make bench  - the benchmark: a force-year through the local host (slow; not part of make test;"
	@echo "              BENCH_SIZES=1000,3000, BENCH_COMPARE=REF: a git ref's code side by side,"
	@echo "              BENCH_REPEAT=5 with it: each code 5 times, alternated, medians and every run,"
	@echo "              BENCH_JOBS=2 with it: both codes at once, one on each core,"
	@echo "              BENCH_STATE=sqlite,azurite: the state in SQLite and in Azurite side by side,"
	@echo "              BENCH_PROCESSES=2: each run in two processes at once, split by crime)"

$(STAMP): requirements.txt requirements-ops.txt requirements-dev.txt
	@command -v $(PYTHON) >/dev/null 2>&1 || { echo "$(PYTHON) not found; set PYTHON=/path/to/python3.11"; exit 1; }
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --disable-pip-version-check -r requirements-dev.txt
	touch $(STAMP)

# Azurite (the Table Storage emulator) for the adapter tests, and for the victim's page GOV.UK Frontend
# (its stylesheet, fonts and images) and axe-core (the browser tests' accessibility check), pinned by
# package-lock.json.
$(NODE_STAMP): package.json package-lock.json
	@command -v npm >/dev/null 2>&1 || { echo "npm not found: Node.js 20 is needed for Azurite"; exit 1; }
	npm ci --no-audit --no-fund --ignore-scripts --loglevel=error
	touch $(NODE_STAMP)

# pycep-parser and checkov for tests/integration/test_infra.py, in their own venv (their pins never meet the app's).
$(IAC_STAMP): requirements-iac.txt
	@command -v $(PYTHON) >/dev/null 2>&1 || { echo "$(PYTHON) not found; set PYTHON=/path/to/python3.11"; exit 1; }
	test -x $(IAC_VENV)/bin/python || $(PYTHON) -m venv $(IAC_VENV)
	$(IAC_VENV)/bin/python -m pip install --quiet --disable-pip-version-check -r requirements-iac.txt
	touch $(IAC_STAMP)

# Headless Chromium for the compliance page's screenshot test (tests/e2e/test_report_screenshot.py)
# and the victim page's browser tests (tests/e2e/test_web_browser.py and test_victim_page_browser.py,
# through Playwright's pip package):
# Debian's package, installed (as root, with apt-get) when /usr/bin/chromium is missing.
chromium:
	@if test -x /usr/bin/chromium; then :; \
	elif [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then \
		apt-get update && DEBIAN_FRONTEND=noninteractive apt-get install -y chromium; \
	else \
		echo "chromium: /usr/bin/chromium is missing and only root can install it (apt-get install -y chromium);" \
			"the screenshot test will be skipped"; \
	fi

install: $(STAMP) $(NODE_STAMP) $(IAC_STAMP) chromium

iac: $(STAMP) $(IAC_STAMP)
	$(IAC_VENV)/bin/checkov --config-file infra/bicep/.checkov.yaml -d infra/bicep
	$(VENV)/bin/pytest -q tests/integration/test_infra.py

demo: $(STAMP) $(NODE_STAMP)
	rm -rf $(DEMO)
	$(PY) -m shared.local generate --crimes 3000 --days 30 --seed 7 --out $(DEMO)/feeds
	$(PY) -m shared.local run --feeds $(DEMO)/feeds --officers $(DEMO)/feeds/officers.json --out $(DEMO)/run \
		--delivery-reports $(DEMO)/feeds/delivery-reports.json
	$(PY) -m shared.ops compliance --from $(FROM) --to $(TO) --data $(DEMO)/run --out $(DEMO)/report
	@$(PY) -c 'from shared.local.report import print_page; print_page("$(DEMO)/run")'

# The compliance report of the demo run again (CSV and a self-contained HTML page with charts).
report: $(STAMP)
	$(PY) -m shared.ops compliance --from $(FROM) --to $(TO) --data $(DEMO)/run --out $(DEMO)/report \
		$(if $(GO_LIVE),--go-live $(GO_LIVE))

# Every message the service can send, in every variant, on one self-contained page for a
# force's communications team (CATALOGUE_OUT= another folder, POLICY= another policy file).
CATALOGUE_OUT ?= out/catalogue
catalogue: $(STAMP)
	$(PY) -m shared.ops.catalogue --out $(CATALOGUE_OUT) $(if $(POLICY),--policy $(POLICY))

# The victim's page over the demo run's state, on http://127.0.0.1:8080/ (PORT= another port).
PORT ?= 8080
# Azurite for a replay against Table Storage (README, "The local host"): in memory, so its state
# lasts until it stops. Other ports: make azurite AZURITE_TABLE_PORT=20002 AZURITE_BLOB_PORT=20000
# AZURITE_QUEUE_PORT=20001. --skipApiVersionCheck: the pinned SDKs may be newer than Azurite.
AZURITE_BLOB_PORT ?= 10000
AZURITE_QUEUE_PORT ?= 10001
AZURITE_TABLE_PORT ?= 10002
azurite: $(NODE_STAMP)
	mkdir -p out/azurite-workspace  # its debug and lock files; the data stays in memory
	cd out/azurite-workspace && $(CURDIR)/node_modules/.bin/azurite --inMemoryPersistence --disableTelemetry --skipApiVersionCheck --loose \
		--blobPort $(AZURITE_BLOB_PORT) --queuePort $(AZURITE_QUEUE_PORT) --tablePort $(AZURITE_TABLE_PORT)

serve: $(STAMP) $(NODE_STAMP)
	$(PY) -m shared.local serve --data $(DEMO)/run --port $(PORT)

lint: $(STAMP)
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .

typecheck: $(STAMP)
	$(VENV)/bin/mypy

# Every layer (tests/unit, tests/integration, tests/e2e) on both cores (pytest-xdist); each worker
# starts its own Azurite on a free port.
unit: $(STAMP) $(NODE_STAMP) $(IAC_STAMP) chromium
	$(VENV)/bin/pytest -q -n 2 --dist worksteal

test: lint typecheck unit

schemas: $(STAMP)
	$(PY) -m shared.contracts.schemas

# shared/domain/bank_holidays.py from the pinned holidays package (after upgrading it;
# tests/unit/test_bank_holidays.py fails until it is run).
bank-holidays: $(STAMP)
	$(PY) -m shared.local.bank_holidays

clean:
	rm -rf out .pytest_cache .mypy_cache .ruff_cache node_modules $(IAC_VENV)

# The benchmark (not part of `make test`): a force-year and its growth curve; see README.
# BENCH_COMPARE=REF also runs a git ref's code on the same samples, side by side (docs/benchmark.md),
# BENCH_REPEAT=N with it each code N times, alternated, with medians and every run's CPU, and
# BENCH_JOBS=2 with it both codes at once, one on each core;
# BENCH_STATE=sqlite,azurite runs each sample with the state in SQLite and in Azurite, side by side;
# BENCH_PROCESSES=2 replays each sample in two processes at once (run --processes; a --compare ref
# without it runs in one).
BENCH_SIZES ?= 10000,30000,110000
BENCH_JOBS ?= 1
bench: $(STAMP) $(if $(findstring azurite,$(BENCH_STATE)),$(NODE_STAMP))
	$(PY) -m shared.local.bench --sizes $(BENCH_SIZES) --jobs $(BENCH_JOBS) --out out/bench \
		$(if $(BENCH_COMPARE),--compare $(BENCH_COMPARE)) $(if $(BENCH_REPEAT),--repeat $(BENCH_REPEAT)) \
		$(if $(BENCH_STATE),--state $(BENCH_STATE)) $(if $(BENCH_PROCESSES),--processes $(BENCH_PROCESSES))
