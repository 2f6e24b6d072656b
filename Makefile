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

.PHONY: demo test lint typecheck bench install backend phoenix

install: $(STAMP)

# The C speed-ups are compiled by the editable install (hatch_build.py): a change to
# either reinstalls.
$(STAMP): pyproject.toml hatch_build.py src/otel_rerank/_speedups.c
	python3 -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet $(TORCH)
	$(PY) -m pip install --quiet -e '.[test]'
	touch $(STAMP)

# The real back end for the collector-bundle tests, built from Go modules (needs Go and the
# module proxy): our Collector distribution, Jaeger v2, Prometheus 3 (+ promtool) and
# Alertmanager's amtool, into .backend/bin; cached outside the repo, so a rebuild or a
# fresh clone takes seconds. Arize Phoenix (~850 MB) lives in its own venv so its pins never
# touch the project's; the live trace test runs .venv-phoenix/bin/phoenix.
PHOENIX_VENV  ?= .venv-phoenix
PHOENIX_STAMP := $(PHOENIX_VENV)/.installed-stamp
PHOENIX       ?= arize-phoenix==20.26.1

backend:
	@bash scripts/build-backend.sh

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

test: $(STAMP) backend phoenix
	$(VENV)/bin/ruff check src tests benchmarks examples collector hatch_build.py
	$(VENV)/bin/ruff format --check src tests benchmarks examples collector hatch_build.py
	$(VENV)/bin/mypy
	$(VENV)/bin/pytest
	$(MAKE) test-openai2
	$(MAKE) test-llamaindex

lint: $(STAMP)
	$(VENV)/bin/ruff check src tests benchmarks examples collector hatch_build.py
	$(VENV)/bin/ruff format --check src tests benchmarks examples collector hatch_build.py

typecheck: $(STAMP)
	$(VENV)/bin/mypy

bench: $(STAMP)
	$(PY) benchmarks/overhead.py

# The rerank budget guard under a fixed-rate load on the demo pipeline (a few minutes).
.PHONY: bench-budget
bench-budget: $(STAMP)
	$(PY) benchmarks/budget_guard.py

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

# LlamaIndex's OpenAI LLM integrations pin openai < 3, which the main venv cannot have. This
# venv installs only them and openai 2.x; a .pth file puts the main venv's packages (torch,
# sentence-transformers, otel-rerank itself) behind them, so no second torch is installed.
LLAMAINDEX_VENV := .venv-llamaindex
LLAMAINDEX_PKGS := 'openai>=2.45,<3' llama-index-core==0.14.25 llama-index-llms-openai-like==0.8.1 llama-index-embeddings-huggingface==0.8.0
$(LLAMAINDEX_VENV)/.installed-stamp: $(STAMP)
	python3 -m venv $(LLAMAINDEX_VENV)
	$(PY) -c 'import sys; print("\n".join(["$(CURDIR)/src", *(p for p in sys.path if p.endswith("site-packages"))]))' \
		> "$$($(LLAMAINDEX_VENV)/bin/python -c 'import sysconfig; print(sysconfig.get_paths()["purelib"])')/zz_main_venv.pth"
	$(LLAMAINDEX_VENV)/bin/python -m pip install --quiet --disable-pip-version-check $(LLAMAINDEX_PKGS)
	touch $@

.PHONY: test-llamaindex
test-llamaindex: $(LLAMAINDEX_VENV)/.installed-stamp
	$(LLAMAINDEX_VENV)/bin/python -m pytest tests/test_framework_llama_index.py tests/test_framework_instrumentors.py tests/test_framework_report.py tests/test_readme_frameworks.py -k "llama_index or LlamaIndex" -p no:cacheprovider -q

# Overhead on every instrumented library call (bare, A/A, hand-written floor, ours, no SDK)
# and the peers on the calls they instrument, each peer in its own .venv-bench-<name>
# (created on first run over .venv's packages, torch included); all of it in 3 fresh
# processes one after the other, the verdict the median of their ratios (--processes).
# The main measurement alone (--peers none) takes about 5.5 minutes of CPU time.
.PHONY: bench-libraries
bench-libraries: $(STAMP)
	$(PY) benchmarks/library_overhead.py

# The same calls counted instead of timed: Python bytecodes per call for ours and the floor
# (exact and load-free; see the script's docstring for what a count does not say).
.PHONY: bench-opcodes
bench-opcodes: $(STAMP)
	$(PY) benchmarks/opcode_counts.py

# Ours against the floor on CrossEncoder predict/rank with the inference stubbed and a real
# forward pass sweeping the caches before every timed call: the cost after a forward pass,
# at an A/A noise of a microsecond (--pieces: each of ours' readers taken away in turn).
.PHONY: bench-cold
bench-cold: $(STAMP)
	$(PY) benchmarks/cold_call.py --pieces

# What the required duration histogram costs in place on chroma and qdrant (ours and the
# floor with and without it, inner-timed); the peers' side: run the script with a peer's
# .venv-bench-<name>/bin/python and --peer <name> (see its docstring).
.PHONY: bench-histogram
bench-histogram: $(STAMP)
	$(PY) benchmarks/histogram_cost.py
