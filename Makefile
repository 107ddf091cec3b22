# Swintormer-RT: the two commands of the README, and a few more.
#   make demo   set up .venv and run the main job on the bundled model and sample image
#   make test   set up .venv and run the test suite (what .ci/run calls)
PYTHON ?= python3
VENV ?= .venv
# The CPU wheel by default (a bare `torch` may pull a multi-GB CUDA build). On a GPU machine:
#   make demo TORCH=torch
TORCH ?= torch==2.13.0
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed-stamp

.PHONY: demo test bench bench-quick setup clean

$(STAMP): pyproject.toml Makefile
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --disable-pip-version-check "$(TORCH)"
	$(BIN)/python -m pip install --quiet --disable-pip-version-check -e ".[all]"
	touch $@

setup: $(STAMP)

demo: $(STAMP)
	$(BIN)/swintormer demo

test: $(STAMP)
	$(BIN)/python -m pytest tests

bench: $(STAMP)
	$(BIN)/python -m pytest benchmarks

# What CI runs after the tests: every benchmark, fewer repeats and sizes (numbers marked quick).
bench-quick: $(STAMP)
	$(BIN)/python -m pytest benchmarks --quick

clean:
	rm -rf $(VENV) out artifacts .pytest_cache
