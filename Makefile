# Every target sets up what it needs first (system packages, .venv from requirements.lock).
VENV ?= .venv
PY := $(VENV)/bin/python

.PHONY: setup test test-unit test-integration lint demo bench clean

setup:
	@bash deploy/system-deps.sh
	@bash deploy/setup-venv.sh $(VENV)

test: setup
	$(PY) -m pytest

test-unit: setup
	$(PY) -m pytest tests/unit

test-integration: setup
	$(PY) -m pytest tests/integration

lint: setup
	$(PY) -m ruff check .
	$(PY) -m mypy

demo: setup
	$(VENV)/bin/stream-detector demo

bench: setup
	$(VENV)/bin/stream-detector bench

clean:
	rm -rf runs registry reports scores.csv .pytest_cache .mypy_cache .ruff_cache
