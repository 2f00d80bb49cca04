# Inference Ledger — the targets the README names.
PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed
# SparkSubmitOperator's provider, without its pyspark-client requirement: pyspark-client 4.2
# installs into the same `pyspark` package as pyspark 4.1.4 and replaces it. What the provider
# needs at run time (requests, tenacity, the common-compat provider) comes with Airflow.
SPARK_PROVIDER := apache-airflow-providers-apache-spark==6.3.4

.PHONY: demo test test-fast lint format setup db-stop clean azurite

# The Spark JVMs' class-data archive (src/inference_ledger/spark_archive.py), once per venv and
# pyspark version: every Spark JVM maps it instead of loading ~16,000 classes from the jars.
ARCHIVE := $(VENV)/share/inference-ledger/spark-$(shell sed -n 's/.*"pyspark==\([0-9.]*\)".*/\1/p' pyproject.toml).jsa

setup: $(STAMP) $(ARCHIVE)

# The venv is rebuilt only when pyproject.toml changes.
$(STAMP): pyproject.toml
	@$(PYTHON) -c 'import sys; sys.exit("Python 3.11+ is required, found " + sys.version.split()[0]) if sys.version_info < (3, 11) else None'
	@command -v java >/dev/null || { echo "Java 17 is required for Spark (apt-get install openjdk-17-jre-headless)"; exit 1; }
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e ".[dev]"
	$(BIN)/pip install --quiet --no-deps $(SPARK_PROVIDER)
	$(BIN)/python -c 'import pyspark, sys; sys.exit(0 if pyspark.__version__ == "4.1.4" else "pyspark " + pyspark.__version__ + " is not 4.1.4")'
	@touch $(STAMP)

$(ARCHIVE): $(STAMP)
	$(BIN)/python -m inference_ledger.spark_archive --force

demo: setup
	$(BIN)/ledger demo

# The whole suite on two worker processes (pytest-xdist), each a test session with its own Spark
# and embedded Postgres: a small pipeline run in a subprocess keeps ~1 of the 2 cores busy
# (planning is single-threaded), so two sessions side by side fill the machine (a clean clone:
# 30:06 -> 22:13). Groups and their order: tests/xdist_support.py. The fast tier stays in one
# process: its in-process Spark jobs already use both cores (4:07 either way).
TEST_WORKERS ?= 2

test: setup
	@if command -v npm >/dev/null; then $(MAKE) --no-print-directory azurite; else echo "npm not found: the Azurite (object-storage landing) tests will skip"; fi
	$(BIN)/pytest -n $(TEST_WORKERS) --dist loadgroup --no-loadscope-reorder

test-fast: setup
	$(BIN)/pytest -m "not slow"

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

format: $(STAMP)
	$(BIN)/ruff format .
	$(BIN)/ruff check --fix .

# Azurite (the Azure Storage emulator) for the object-storage landing tests, from the npm
# registry into .tools/ (never global). Without it those tests skip (CI requires them).
AZURITE := azurite@3.37.0
azurite:
	@command -v npm >/dev/null || { echo "npm is required for Azurite (apt-get install npm)"; exit 1; }
	@test -x .tools/node_modules/.bin/azurite-blob || npm install --prefix .tools --no-audit --no-fund --silent $(AZURITE)

db-stop: $(STAMP)
	$(BIN)/python -c 'from inference_ledger.db import stop_embedded; print("stopped" if stop_embedded() else "not running")'

clean: db-stop
	rm -rf var spark-warehouse

# Benchmark (bench/README.md): one night at SIZES usage results (1m, 10m, 50m; quick = smoke size)
# against DuckDB and a bare COPY, plus one more night on HISTORY nights. DuckDB is installed
# here, not by `make setup`: it is a reference, never a dependency of the pipeline.
SIZES   ?= 1m,10m
HISTORY ?= 365
.PHONY: bench
bench: setup
	$(BIN)/pip install --quiet -e ".[bench]"
	$(BIN)/python bench/run.py --sizes $(SIZES) --history-nights $(HISTORY) $(BENCH_ARGS)
