# The two commands of the README are `make demo` and `make test`; both install first.
SHELL := /bin/bash
PYTHON ?= python3
UV := $(shell command -v uv 2>/dev/null || echo $(HOME)/.local/bin/uv)
VENV := .venv
BIN := $(VENV)/bin
export DAGSTER_HOME ?= $(CURDIR)/.dagster
export UV_LINK_MODE ?= copy

.PHONY: install demo test dev lint fmt check bench bench-foundation clean

$(UV):
	$(PYTHON) -m pip install --user --quiet uv || $(PYTHON) -m pip install --quiet --break-system-packages --user uv

# The venv is rebuilt from the committed uv.lock whenever it, pyproject.toml or this file
# changes. --compile-bytecode writes every package's .pyc at install: where
# PYTHONDONTWRITEBYTECODE is set (this development machine sets it) Python otherwise compiles
# dagster, dbt and scikit-learn from source in every process, about 10 s of CPU for each run
# worker, dbt invocation and test process.
$(VENV)/.installed: pyproject.toml uv.lock Makefile | $(UV)
	$(UV) sync --frozen --compile-bytecode --python $(PYTHON)
	@[ -f .env ] || cp .env.example .env
	@touch $@

install: $(VENV)/.installed

demo: install
	$(BIN)/cdp demo --out data/demo

test: install
	$(BIN)/pytest -n 2 --dist loadfile -q

dev: install
	@mkdir -p $(DAGSTER_HOME) && [ -f $(DAGSTER_HOME)/dagster.yaml ] || cp orchestration/dagster.yaml $(DAGSTER_HOME)/dagster.yaml
	@cmp -s orchestration/dagster.yaml $(DAGSTER_HOME)/dagster.yaml || echo "note: $(DAGSTER_HOME)/dagster.yaml differs from orchestration/dagster.yaml (it is copied only when absent); merge the changes you want, such as the run queue's tag_concurrency_limits"
	$(BIN)/dagster dev -w workspace.yaml

lint: install
	$(BIN)/ruff check . && $(BIN)/ruff format --check .

fmt: install
	$(BIN)/ruff check --fix . && $(BIN)/ruff format .

check: lint test

# The nightly pipeline at scale with its ratios (benchmarks/README.md); about 25 minutes at 1M once the data is generated.
# `make bench CUSTOMERS=100000 DAYS=365`; generated data is reused per seed and scale.
CUSTOMERS ?= 1000000
DAYS ?= 365
bench: install
	$(BIN)/python benchmarks/bench_pipeline.py --customers $(CUSTOMERS) --days $(DAYS) $(BENCH_ARGS)

# Generation and ingestion only, through Dagster and with the bare loader.
bench-foundation: install
	$(BIN)/python benchmarks/bench_foundation.py --customers $(CUSTOMERS) --days $(DAYS)

clean:
	rm -rf data .dagster $(VENV)

manifest: install
	cd dbt_project && ../$(BIN)/dbt parse --quiet
