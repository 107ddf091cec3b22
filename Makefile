# Swintormer-RT: the two commands of the README, and a few more.
#   make demo   set up .venv and run the main job on the bundled model and sample image
#   make test   set up .venv and run the test suite (what .ci/run calls)
#   make tools  install haproxy and kubectl from the system's packages if missing (root; the
#               replica failover and manifest tests skip, with the reason, without them)
PYTHON ?= python3
VENV ?= .venv
# The CPU wheel by default (a bare `torch` may pull a multi-GB CUDA build). On a GPU machine:
#   make demo TORCH=torch
TORCH ?= torch==2.13.0
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed-stamp

.PHONY: demo test bench bench-quick setup tools clean

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

tools:
	@missing=""; command -v haproxy >/dev/null || test -x /usr/sbin/haproxy || missing="haproxy"; \
	command -v kubectl >/dev/null || missing="$$missing kubectl"; \
	if [ -n "$$missing" ]; then \
	  echo "installing:$$missing"; apt-get update -qq && \
	  for p in $$missing; do apt-get install -y -qq $$p >/dev/null || { test $$p = kubectl && apt-get install -y -qq kubernetes-client >/dev/null; } || exit 1; done; \
	fi; haproxy -v | head -1; kubectl version --client 2>/dev/null | head -1

clean:
	rm -rf $(VENV) out artifacts .pytest_cache
