# Set-up and checks. `make demo` and `make test` work on a fresh machine: each installs what
# it needs first (a virtualenv in .venv, torch's CPU wheel, the package with its test extra).
VENV    ?= .venv
PY      := $(VENV)/bin/python
STAMP   := $(VENV)/.installed-stamp
# torch is pinned because this exact release resolves to a local CPU wheel here; any other
# spec pulls several GB of CUDA packages.
TORCH   ?= torch==2.13.0
export HF_HUB_OFFLINE := 1
export TOKENIZERS_PARALLELISM := false

.PHONY: demo test lint typecheck check bench install prometheus-tools phoenix

install: $(STAMP)

$(STAMP): pyproject.toml
	python3 -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet $(TORCH)
	$(PY) -m pip install --quiet -e '.[test]'
	touch $(STAMP)

# Debian's prometheus (server + promtool) and alertmanager (amtool) for the collector-bundle
# tests; skipped when already on PATH. Arize Phoenix (~850 MB) lives in its own venv so its
# pins never touch the project's; the live trace test runs .venv-phoenix/bin/phoenix.
PHOENIX_VENV  ?= .venv-phoenix
PHOENIX_STAMP := $(PHOENIX_VENV)/.installed-stamp
PHOENIX       ?= arize-phoenix==20.26.1

prometheus-tools:
	@bash scripts/install-prometheus-tools.sh

phoenix: $(PHOENIX_STAMP)

$(PHOENIX_STAMP):
	python3 -m venv $(PHOENIX_VENV)
	$(PHOENIX_VENV)/bin/pip install --quiet --disable-pip-version-check '$(PHOENIX)'
	touch $(PHOENIX_STAMP)

# The demo's corpus index and proxy cross-encoder are built once, at set-up time, so the
# demo itself runs in well under a minute.
DEMO_STAMP := $(VENV)/.demo-prepared-stamp
$(DEMO_STAMP): $(STAMP)
	$(VENV)/bin/otel-rerank demo --prepare
	touch $(DEMO_STAMP)

demo: $(DEMO_STAMP)
	$(VENV)/bin/otel-rerank demo

test: $(STAMP) prometheus-tools phoenix
	$(VENV)/bin/ruff check src tests benchmarks examples collector
	$(VENV)/bin/ruff format --check src tests benchmarks examples collector
	$(VENV)/bin/mypy
	$(VENV)/bin/pytest
	$(MAKE) test-openai2

lint: $(STAMP)
	$(VENV)/bin/ruff check src tests benchmarks examples collector
	$(VENV)/bin/ruff format --check src tests benchmarks examples collector

typecheck: $(STAMP)
	$(VENV)/bin/mypy

bench: $(STAMP)
	$(PY) benchmarks/overhead.py

# openai 2.x compatibility: the main venv has openai 3.x, so tests/test_openai.py also runs
# in a small venv with 2.x (no torch; conftest imports only otel_rerank and opentelemetry).
OPENAI2_VENV := .venv-openai2
$(OPENAI2_VENV)/.installed-stamp: pyproject.toml
	python3 -m venv $(OPENAI2_VENV)
	$(OPENAI2_VENV)/bin/pip install --quiet -e . 'openai>=2,<3' httpx pytest pytest-asyncio pyyaml opentelemetry-instrumentation-httpx
	touch $@

.PHONY: test-openai2 bench-openai
test-openai2: $(OPENAI2_VENV)/.installed-stamp
	$(OPENAI2_VENV)/bin/pytest tests/test_openai.py -p no:cacheprovider -q

# openai client overhead: ours vs the official, OpenInference and Traceloop instrumentations
# (each peer in its own .venv-bench-<name>, created on first run; none pulls torch).
bench-openai: $(STAMP)
	$(PY) benchmarks/openai_overhead.py

# Overhead on every instrumented library call (bare, A/A, hand-written floor, ours, no SDK)
# and the peers on the calls they instrument, each peer in its own .venv-bench-<name>
# (created on first run over .venv's packages, torch included). About 8 minutes of CPU time.
.PHONY: bench-libraries
bench-libraries: $(STAMP)
	$(PY) benchmarks/library_overhead.py
