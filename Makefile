# One entry point for people and CI (.ci/run runs `make check`).
PYTHON ?= python

.PHONY: check lint test slow bench

check: lint test

lint:
	$(PYTHON) -m ruff check .
	$(PYTHON) -m ruff format --check .
	$(PYTHON) -m mypy

test:
	$(PYTHON) -m pytest

slow:
	$(PYTHON) -m pytest -m slow

bench:
	$(PYTHON) benchmarks/fingerprint_speed.py
	$(PYTHON) benchmarks/converters.py
