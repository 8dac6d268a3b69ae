# Quick start: `make demo` and `make test`. Both create .venv when needed.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
# Where torch comes from: empty = pip's configured index (PyPI: on Linux x86-64 the CUDA
# build). TORCH_INDEX=https://download.pytorch.org/whl/cpu gets the small CPU build.
TORCH_INDEX ?=

.PHONY: demo test lint bench clean setup

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	# torch first, pinned, so the CPU build on this machine's disk is used
	$(BIN)/pip install --quiet torch==2.13.0 $(if $(TORCH_INDEX),--index-url $(TORCH_INDEX))
	$(BIN)/pip install --quiet -e '.[dev]'
	touch $(STAMP)

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

# Each benchmark rewrites its own section of benchmarks/RESULTS.md.
BENCHMARKS := gradnorm_overhead balancer_overhead toy_paper storage search_efficiency packing dashboard bad_specs read_commands gpu_step
bench: $(STAMP) $(CHROMIUM)
	for b in $(BENCHMARKS); do $(BIN)/python -m benchmarks.$$b || exit 1; done

lint: $(STAMP)
	$(BIN)/ruff check gradsweep tests benchmarks examples
	$(BIN)/ruff format --check gradsweep tests benchmarks examples
	$(BIN)/mypy

clean:
	rm -rf $(VENV) .pytest_cache .ruff_cache
