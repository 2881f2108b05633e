# Common paths. `make demo` and `make test` set up .venv from the lock file when needed.
VENV ?= .venv
PY := $(VENV)/bin/python
UV := $(VENV)/bin/uv
STAMP := $(VENV)/.installed

.PHONY: venv demo test test-fast lint format lock bench clean-state

$(STAMP): pyproject.toml requirements.lock
	test -x $(PY) || python3 -m venv $(VENV)
	$(PY) -m pip install -q --disable-pip-version-check uv==0.13.9
	$(UV) pip install --python $(PY) -q -r requirements.lock
	$(UV) pip install --python $(PY) -q --no-deps -e .
	touch $(STAMP)

venv: $(STAMP)

## The main job: the whole loop on embedded defaults.
demo: venv
	$(VENV)/bin/interest demo

## Lint, format check and the whole test suite.
test: venv
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .
	$(PY) -m pytest

## Unit tests only (no slow end-to-end runs).
test-fast: venv
	$(PY) -m pytest -m "not slow"

lint: venv
	$(VENV)/bin/ruff check .

format: venv
	$(VENV)/bin/ruff format .
	$(VENV)/bin/ruff check --fix .

## Re-resolve the lock file after changing dependencies in pyproject.toml.
lock: venv
	$(UV) pip compile pyproject.toml --extra dev --python-version 3.11 \
		--python-platform x86_64-unknown-linux-gnu -o requirements.lock

bench: venv
	$(PY) benchmarks/features.py

clean-state:
	rm -rf .state
