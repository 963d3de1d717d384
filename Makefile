# FlowSense: the two commands a new user needs are `make demo` and `make test`.
SHELL := /bin/bash
PYTHON ?= python3.11
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed-$(shell sha256sum requirements.lock pyproject.toml 2>/dev/null | sha256sum | cut -c1-12)
export FLOWSENSE_HOME ?= $(CURDIR)/.flowsense
# torch==2.13.0+cpu: uv does not read pip's config; this machine kind keeps the CPU wheel in /opt/wheels
UV_FIND_LINKS ?= $(if $(wildcard /opt/wheels),--find-links /opt/wheels,)

.PHONY: setup demo test lint services bench lock dagster-dev clean vendor-charts api prod-up prod-down prod-check prod-status

setup: $(STAMP)

$(STAMP): requirements.lock pyproject.toml
	@command -v $(PYTHON) >/dev/null || { echo "error: $(PYTHON) not found (FlowSense needs Python 3.11)"; exit 1; }
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --disable-pip-version-check uv==0.13.9
	$(VENV)/bin/uv pip install -q --python $(PY) $(UV_FIND_LINKS) -r requirements.lock
	$(VENV)/bin/uv pip install -q --python $(PY) --no-deps -e .
	rm -f $(VENV)/.installed-* && touch $@

## The main job: simulate sample data, ingest it, materialize every Dagster asset, print where results are.
demo: export PYTHONWARNINGS = ignore::DeprecationWarning
demo: setup
	$(PY) -m flowsense_dagster.run

## The whole test suite (what CI runs): lint, services up, pytest.
test: setup services lint
	$(PY) -m pytest -n 2 --dist loadfile

lint: setup
	$(VENV)/bin/ruff check .

services:
	@bash scripts/ensure-services.sh
	@bash scripts/ensure-system-packages.sh

bench: setup
	$(PY) bench/ingest.py
	$(PY) bench/features.py
	$(PY) bench/backtest.py --section all

## Re-resolve the lock file after editing pyproject.toml dependencies.
lock: setup
	$(VENV)/bin/uv pip compile pyproject.toml --extra dev --python-version 3.11 $(UV_FIND_LINKS) -o requirements.lock

dagster-dev: setup
	DAGSTER_HOME=$${DAGSTER_HOME:-$(FLOWSENSE_HOME)/dagster} $(VENV)/bin/dagster dev -w workspace.yaml

## The production stack on this machine (PostgreSQL, RabbitMQ + Celery workers, Dagster daemon, MLflow server).
prod-up: setup services
	$(PY) -m flowsense_dagster.stack up

prod-down: setup
	$(PY) -m flowsense_dagster.stack down

prod-status: setup
	$(PY) -m flowsense_dagster.stack status

## With the stack up: backfill the demo partitions through the Celery executor; prints one JSON object.
prod-check: setup
	$(PY) -m flowsense_dagster.stack check

clean:
	rm -rf $(VENV) .flowsense .pytest_cache .ruff_cache

## The dashboard's charting library (TradingView lightweight-charts, pinned in frontend/package-lock.json),
## copied from the npm registry into flowsense_api/static/vendor/ (committed: nothing from a CDN at run time).
vendor-charts:
	cd frontend && npm ci --ignore-scripts --no-audit --no-fund
	cp frontend/node_modules/lightweight-charts/dist/lightweight-charts.standalone.production.js flowsense_api/static/vendor/
	cp frontend/node_modules/lightweight-charts/LICENSE flowsense_api/static/vendor/lightweight-charts.LICENSE

## The API and dashboard on http://127.0.0.1:8000/dashboard/ (create a key: .venv/bin/flowsense api keys create)
api: setup
	$(VENV)/bin/flowsense api
