# BayLink: `make run` serves it, `make test` tests it. Both set everything up first.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed-stamp
PYTEST_ARGS ?=

.PHONY: install migrate seed run test lint bench clean

$(STAMP): pyproject.toml
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[test]'
	@touch $(STAMP)

install: $(STAMP)

migrate: install
	$(BIN)/baylink migrate

seed: migrate
	$(BIN)/baylink seed

run: seed
	$(BIN)/baylink demo
	BAYLINK_CELERY_EAGER=true $(BIN)/baylink serve

lint: install
	$(BIN)/lint-imports
	$(BIN)/ruff check .

test: seed lint
	$(BIN)/pytest $(PYTEST_ARGS)

bench: migrate
	$(BIN)/python bench/run.py
	$(BIN)/python bench/referral_bench.py
	$(BIN)/python bench/ingest_bench.py

clean:
	rm -rf $(VENV) var .pytest_cache
