# The one entry point: `make install`, `make test`, `make run`, `make lint`.
SHELL := bash
.SHELLFLAGS := -euo pipefail -c
.DEFAULT_GOAL := help

# The interpreter the virtual environment is made with: 3.11 if installed, else python3.
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV := .venv
BIN := $(VENV)/bin
# Reinstall when the dependencies change.
INSTALLED := $(VENV)/.installed
PYTEST_ARGS ?=

.PHONY: help install services test screenshot lint fmt data classifier run bench-quality bench-adaptation bench-speed bench-pipeline bench-queue bench-retrain bench-actions bench-webhooks bench-akismet

help:
	@echo "make install     create $(VENV) and install the service with its dev tools"
	@echo "make test        install, find or start PostgreSQL and Redis, run the tests"
	@echo "make lint        ruff check, ruff format --check, mypy --strict"
	@echo "make screenshot  retake docs/images/moderation-queue.png in the browser test"
	@echo "make fmt         ruff format and the safe ruff fixes"
	@echo "make run         the API and a worker on SQLite, nothing else to install"
	@echo "make services    find or start the PostgreSQL and Redis the tests use"
	@echo "make data        download the corpora data/manifest.json names (github.com), check by sha256"
	@echo "make classifier  train the bundled classifier"
	@echo "make bench-quality   leave one corpus out: the classifier vs plain baselines"
	@echo "make bench-adaptation a new site: cold start, then a retrain on its first 50-200 labels"
	@echo "make bench-speed     classifier latency, batch rate, training time, artifact"
	@echo "make bench-pipeline  API + workers on PostgreSQL and Redis vs the machine's ceiling"
	@echo "make bench-queue     queue and thread view latency on 1,000,000 comments vs a ceiling"
	@echo "make bench-retrain   retraining on 100,000 labels from PostgreSQL vs a bare train()"
	@echo "make bench-actions   moderators' single and 500-comment bulk actions vs a bare UPDATE"
	@echo "make bench-webhooks  webhooks' cost to the verdict transaction; deliveries vs bare POSTs"
	@echo "make bench-akismet   Akismet comment-check at 200/s on SQLite and PostgreSQL vs a bare endpoint"

install: $(INSTALLED)

# pip 25.1 is the first to install PEP 735 dependency groups (--group dev).
$(INSTALLED): pyproject.toml
	@if [ -z "$(PYTHON)" ]; then echo "install: no python3 found; install Python 3.11 or newer" >&2; exit 1; fi
	@$(PYTHON) -c 'import sys; sys.exit(sys.version_info < (3, 11))' || { \
		echo "install: $(PYTHON) is Python $$($(PYTHON) -c 'import platform; print(platform.python_version())'); Commentguard needs 3.11 or newer (PYTHON=/path/to/python3.11 make install)" >&2; exit 1; }
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade 'pip>=25.1'
	$(BIN)/python -m pip install --quiet -e . --group dev
	@touch $@

services:
	@scripts/services.sh

test: install services
	@scripts/test_tools.sh
	@scripts/oidc_provider.sh
	$(BIN)/pytest $(PYTEST_ARGS)

# The queue's screenshot in docs/moderation-ui.md, taken by the browser test.
screenshot: install services
	@scripts/test_tools.sh
	@scripts/oidc_provider.sh
	COMMENTGUARD_UI_SCREENSHOT=docs/images/moderation-queue.png \
		$(BIN)/pytest tests/ui/test_browser.py -k works_the_queue_by_keyboard

lint: install
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy --strict

fmt: install
	$(BIN)/ruff format .
	$(BIN)/ruff check --fix .

# The corpora of data/manifest.json (data/README.md: where each comes from); YOUTUBE says
# where the YouTube files are when not at ../shared/data/youtube-spam (if it exists) or
# data/youtube-spam.
YOUTUBE ?=
CORPUS_ROOTS := $(if $(YOUTUBE),--root youtube=$(YOUTUBE))

# Downloads the corpora that are missing (from github.com, at the commits the manifest
# names) and checks them by sha256.
data: install
	$(BIN)/commentguard classifier fetch-corpora --manifest data/manifest.json $(CORPUS_ROOTS)

classifier: install
	$(BIN)/commentguard classifier train --manifest data/manifest.json $(CORPUS_ROOTS) --seed 0 --out service/classifier/bundled/classifier.skops

run: install
	$(BIN)/python scripts/dev_run.py

# Benchmarks print their figures (docs/benchmarks.md); they are never run as tests.
bench-quality: install
	$(BIN)/python -m bench.classifier_quality $(if $(YOUTUBE),--youtube $(YOUTUBE))

bench-adaptation: install
	$(BIN)/python -m bench.site_adaptation $(if $(YOUTUBE),--youtube $(YOUTUBE))

bench-speed: install
	$(BIN)/python -m bench.classifier_speed $(if $(YOUTUBE),--youtube $(YOUTUBE))

bench-pipeline: install services
	$(BIN)/python -m bench.pipeline

bench-queue: install services
	$(BIN)/python -m bench.queue

bench-retrain: install services
	$(BIN)/python -m bench.retrain $(if $(YOUTUBE),--youtube $(YOUTUBE))

bench-actions: install services
	$(BIN)/python -m bench.actions

bench-webhooks: install services
	$(BIN)/python -m bench.webhooks
bench-akismet: install services
	$(BIN)/python -m bench.akismet
