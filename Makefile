# Quick start: `make demo` and `make test`. Both create .venv when needed.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
# Where torch comes from: empty = pip's configured index (PyPI: on Linux x86-64 the CUDA
# build). TORCH_INDEX=https://download.pytorch.org/whl/cpu gets the small CPU build.
TORCH_INDEX ?=

.PHONY: demo test test-min lint bench clean setup

# An environment with the project and its dev extra: $(1) its folder, $(2) more pip
# arguments (the lowest versions' constraints). torch first, pinned, so the CPU build on
# this machine's disk is used.
define install_env
	test -x $(1)/bin/python || $(PYTHON) -m venv $(1)
	$(1)/bin/pip install --quiet torch==2.13.0 $(if $(TORCH_INDEX),--index-url $(TORCH_INDEX))
	$(1)/bin/pip install --quiet $(2) -e '.[dev]'
	touch $(1)/.installed
endef

$(STAMP): pyproject.toml
	$(call install_env,$(VENV),)

setup: $(STAMP)

demo: $(STAMP)
	$(BIN)/python -m gradsweep.demo

# Debian's Chromium for the browser tests (Playwright's own browser download does not work
# everywhere); without root or apt the browser tests skip with the reason.
CHROMIUM := /usr/bin/chromium
$(CHROMIUM):
	-(apt-get update -qq && apt-get install -y -qq chromium) >/dev/null 2>&1 || \
		echo "chromium not installed: the browser tests will skip"

test: lint $(CHROMIUM)
	$(BIN)/python -m pytest -q

# The lowest versions pyproject declares (constraints/lowest.txt; tests/test_packaging.py keeps
# them equal to pyproject's floors), in their own environment: the storage, spec, plan,
# results, trainer and notebook tests and two real studies on Ray (SQLite and PostgreSQL).
LOWEST := .venv-lowest
LOWEST_STAMP := $(LOWEST)/.installed
LOWEST_TESTS := tests/spec tests/plan tests/results tests/storage tests/trainers \
	tests/test_notebook.py tests/test_packaging.py \
	tests/search/test_launch.py::test_a_study_with_every_arm_completes \
	tests/search/test_launch.py::test_optuna_trials_run_concurrently_and_live_in_the_results_database
$(LOWEST_STAMP): pyproject.toml constraints/lowest.txt
	$(call install_env,$(LOWEST),-c constraints/lowest.txt)

test-min: $(LOWEST_STAMP)
	$(LOWEST)/bin/python -m pytest -q -p no:cacheprovider $(LOWEST_TESTS)

# Each benchmark rewrites its own section of benchmarks/RESULTS.md.
BENCHMARKS := gradnorm_overhead balancer_overhead toy_paper storage search_efficiency packing dashboard optuna_export bad_specs read_commands gpu_step
bench: $(STAMP) $(CHROMIUM)
	for b in $(BENCHMARKS); do $(BIN)/python -m benchmarks.$$b || exit 1; done

lint: $(STAMP)
	$(BIN)/ruff check gradsweep tests benchmarks examples
	$(BIN)/ruff format --check gradsweep tests benchmarks examples
	$(BIN)/mypy

clean:
	rm -rf $(VENV) $(LOWEST) .pytest_cache .ruff_cache
