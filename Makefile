# The two commands of the README: `make run` and `make test`. Each does its own set-up on a
# fresh machine (a virtual environment in .venv with the pinned requirements).

PYTHON ?= python3
VENV ?= .venv
PORT ?= 5000
WORKERS ?= 2
BIN := $(VENV)/bin
FLASK := $(BIN)/flask --app wsgi

.PHONY: run test lint format setup translations messages cyrillic clean bench

run: $(VENV)/.runtime translations
	$(FLASK) db upgrade
	$(FLASK) survey seed
	PORT=$(PORT) WORKERS=$(WORKERS) $(BIN)/gunicorn -c gunicorn.conf.py wsgi:app

test: $(VENV)/.dev translations node_modules/axe-core/axe.min.js
	$(BIN)/python -m pytest $(PYTEST_ARGS)

# Benchmarks against the machine's own ceilings (issue 7): a PostgreSQL database of its own on
# 127.0.0.1:5432, dropped afterwards; writes bench/report.md. QUICK=1: under two minutes. Not part of CI.
bench: $(VENV)/.dev
	$(BIN)/python -m bench $(if $(QUICK),--quick) $(BENCH_ARGS)

# axe-core for the accessibility scan of the browser tests (which also need Debian's chromium).
node_modules/axe-core/axe.min.js: package.json package-lock.json
	@if command -v npm >/dev/null 2>&1; then npm ci --no-audit --no-fund --loglevel=error; \
	else echo "npm not found: the browser tests will be skipped"; fi

lint: $(VENV)/.dev
	$(BIN)/ruff check survey tests migrations
	$(BIN)/ruff format --check survey tests

format: $(VENV)/.dev
	$(BIN)/ruff format survey tests
	$(BIN)/ruff check --fix survey tests

setup: $(VENV)/.dev

# Compiled message catalogs (.mo) are build output, made from the committed .po files.
translations: $(VENV)/.runtime
	$(FLASK) survey compile-translations

# After changing page texts: extract them, merge into the catalogs, translate sq and sr_Latn,
# then `make cyrillic` (sr_Cyrl is always transliterated from sr_Latn, never edited by hand).
messages: $(VENV)/.runtime
	$(BIN)/pybabel extract -F babel.cfg -k gettext -k _ --no-location -o survey/translations/messages.pot .
	$(BIN)/pybabel update -i survey/translations/messages.pot -d survey/translations -l sq --no-fuzzy-matching
	$(BIN)/pybabel update -i survey/translations/messages.pot -d survey/translations -l sr_Latn --no-fuzzy-matching

cyrillic: $(VENV)/.runtime
	$(FLASK) survey cyrillic-catalog

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)

$(VENV)/.runtime: requirements.txt | $(BIN)/python
	$(BIN)/python -m pip install --quiet --disable-pip-version-check -r requirements.txt
	touch $@

$(VENV)/.dev: requirements-dev.txt requirements.txt | $(BIN)/python
	$(BIN)/python -m pip install --quiet --disable-pip-version-check -r requirements-dev.txt
	touch $@ $(VENV)/.runtime

clean:
	rm -rf $(VENV) .pytest_cache .ruff_cache
