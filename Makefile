# The two commands README.md starts with: `make demo` and `make test`.
SHELL := /bin/bash
VENV := .venv
PY := $(VENV)/bin/python
PYTEST_ARGS ?=
BOARD ?= qemu-x86_64

.PHONY: demo demo-artifact test dev lint test-fast test-qemu bench clean buildroot-image buildroot-test

dev:
	ci/install-deps.sh

demo: dev
	$(PY) ci/demo.py

demo-artifact: dev
	$(PY) ci/demo_artifact.py

# The whole suite, QEMU tests included, the QEMU scenarios beside the rest (one core
# each: ci/pytest-split.sh). pytest's exit code 5 (nothing collected) is a failure like
# any other: the recipe never masks it.
test: dev
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .
	ci/pytest-split.sh $(PY) $(PYTEST_ARGS)

test-fast: dev
	$(PY) -m pytest -m "not qemu" $(PYTEST_ARGS)

test-qemu: dev
	PYUPDATE_BOARD=$(BOARD) $(PY) -m pytest -m qemu tests/qemu $(PYTEST_ARGS)

# Opt-in, an hour or more: buildroot-ext's defconfig built with the real
# Buildroot (BUILDROOT=path to a 2026.05.x tree), offline (docs/buildroot.md),
# then the QEMU scenarios on what it built.
BUILDROOT ?=
BR_WORK ?= build/buildroot
buildroot-image: dev
	@test -n "$(BUILDROOT)" || { echo "error: set BUILDROOT=path/to/buildroot (2026.05.x)" >&2; exit 2; }
	ci/buildroot/build.sh $(BOARD) $(BUILDROOT) $(BR_WORK)

buildroot-test: dev
	PYUPDATE_BUILDROOT_OUT=$(BR_WORK)/$(BOARD) PYUPDATE_BOARD=$(BOARD) $(PY) -m pytest -m qemu tests/qemu/test_buildroot_built.py $(PYTEST_ARGS)

lint: dev
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .

clean:
	rm -rf $(VENV) .pytest_cache .ruff_cache
