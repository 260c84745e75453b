# One entry point for people and CI (.ci/run runs `make test`: lint, types, then the tests).
PYTHON ?= python

.PHONY: test check lint pytest slow bench integration fuzz docs

test: lint pytest

check: test

lint:
	$(PYTHON) -m ruff check .
	$(PYTHON) -m ruff format --check .
	$(PYTHON) -m mypy

pytest:
	$(PYTHON) -m pytest

# The documentation site, strictly: a broken link, anchor or missing page fails (site/index.html).
docs:
	NO_MKDOCS_2_WARNING=1 $(PYTHON) -m mkdocs build --strict

slow:
	$(PYTHON) -m pytest -m slow

bench:
	$(PYTHON) benchmarks/fingerprint_speed.py
	$(PYTHON) benchmarks/audit_speed.py
	$(PYTHON) benchmarks/speed.py --scale
	$(PYTHON) benchmarks/run_zoo.py --worlds digits wine cancer
	$(PYTHON) benchmarks/evidence.py
	$(PYTHON) benchmarks/licensing.py
	$(PYTHON) benchmarks/converters.py

# A real Open Inference Protocol server: MLServer 1.7.1 in its own virtualenv (it pins its own deps).
integration:
	test -x .venv-mlserver/bin/mlserver || (python3 -m venv .venv-mlserver && .venv-mlserver/bin/pip install mlserver==1.7.1 onnxruntime)
	IPGUARD_MLSERVER=$(CURDIR)/.venv-mlserver/bin/mlserver $(PYTHON) -m pytest -m integration

# Fuzz the bundle loader (atheris, in the dev extra) for FUZZ_SECONDS; `make slow` runs it for 15 s.
FUZZ_SECONDS ?= 600
fuzz:
	$(PYTHON) tests/fuzz/fuzz_bundle.py -max_total_time=$(FUZZ_SECONDS)
