# viralab — `make run` sets up and trains on the embedded default; `make test` sets up and tests.
SHELL := /bin/bash
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
TRACKING_URI := sqlite:///$(CURDIR)/mlruns/mlflow.db
MODEL ?= ridge
# the experiment `python -m viralab.train` would use for MODEL (conf/task/*.yaml)
EXPERIMENT ?= $(if $(filter lstm,$(MODEL)),YouTube LSTM Models,preference)

export MLFLOW_TRACKING_URI ?= $(TRACKING_URI)
export MLFLOW_DISABLE_TELEMETRY ?= true
export TF_CPP_MIN_LOG_LEVEL ?= 2
export GIT_PYTHON_REFRESH ?= quiet
export MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR ?= false
# `mlflow run --env-manager local` runs `python -m viralab.train` from PATH: use the venv.
export PATH := $(CURDIR)/$(BIN):$(PATH)

.PHONY: setup system-deps run ui test test-fast lint format clean services-up services-down compose-config

setup: $(VENV)/.installed

# The venv's activate script also exports MLFLOW_TRACKING_URI, so after
# `source .venv/bin/activate` a bare `mlflow run .` / `mlflow ui` use mlruns/ too.
$(VENV)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e ".[dev]"
	grep -q MLFLOW_TRACKING_URI $(BIN)/activate || { \
	  echo 'export MLFLOW_TRACKING_URI="$${MLFLOW_TRACKING_URI:-$(TRACKING_URI)}"'; \
	  echo 'export MLFLOW_DISABLE_TELEMETRY="$${MLFLOW_DISABLE_TELEMETRY:-true}"'; \
	  echo 'export TF_CPP_MIN_LOG_LEVEL="$${TF_CPP_MIN_LOG_LEVEL:-2}"'; \
	  echo 'export MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR="$${MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR:-false}"'; \
	} >> $(BIN)/activate
	touch $@

run: setup
	$(BIN)/mlflow run . -P model=$(MODEL) --env-manager local --experiment-name "$(EXPERIMENT)"
	@echo
	@echo "Tracking store: $(MLFLOW_TRACKING_URI)  (artifacts under mlruns/artifacts/)"
	@echo "Open the UI:    make ui   (or: source $(BIN)/activate && mlflow ui --port 5000)"

ui: setup
	$(BIN)/mlflow ui --app-name viralab --backend-store-uri "$(MLFLOW_TRACKING_URI)" --host 127.0.0.1 --port 5000

# Integration tests start their own PostgreSQL from the Debian package's binaries.
system-deps:
	@if ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1 || command -v initdb >/dev/null; then :; \
	elif [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null; then \
	  echo "installing PostgreSQL (Debian package) for the integration tests"; \
	  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq postgresql >/dev/null; \
	else echo "PostgreSQL server binaries not found: install the 'postgresql' package," \
	  "or integration tests will skip (and fail under CI=true)" >&2; fi

test: setup system-deps
	$(BIN)/pytest

test-fast: setup
	$(BIN)/pytest -m "not integration and not slow"

# .pre-commit-config.yaml (local hooks, offline): ruff check, ruff format --check, yaml/toml,
# end of files, configs compose. Without pre-commit or outside a git checkout: plain ruff (as CI).
lint: setup
	@if [ -x $(BIN)/pre-commit ] && git rev-parse --is-inside-work-tree >/dev/null 2>&1; then \
	  echo "$(BIN)/pre-commit run --all-files"; $(BIN)/pre-commit run --all-files; \
	else \
	  echo "$(BIN)/ruff check . && $(BIN)/ruff format --check ."; \
	  $(BIN)/ruff check . && $(BIN)/ruff format --check .; \
	fi
	$(BIN)/lint-imports

format: setup
	$(BIN)/ruff format .
	$(BIN)/ruff check --fix .

clean:
	rm -rf outputs multirun .pytest_cache .ruff_cache

# Team stack (docker/compose.yaml): postgres, minio + bucket, mlflow server.
COMPOSE ?= $(shell docker compose version >/dev/null 2>&1 && echo "docker compose" || echo docker-compose)
COMPOSE_ARGS := -f docker/compose.yaml --env-file docker/.env

docker/.env:
	@echo "docker/.env missing: cp docker/.env.example docker/.env and change its secrets" >&2; exit 1

services-up: docker/.env
	$(COMPOSE) $(COMPOSE_ARGS) up -d --build postgres minio create-bucket mlflow
	@echo "MLflow server: http://127.0.0.1:$${MLFLOW_PORT:-5000}  (export MLFLOW_TRACKING_URI=...)"

services-down: docker/.env
	$(COMPOSE) $(COMPOSE_ARGS) down

compose-config:
	$(COMPOSE) -f docker/compose.yaml --env-file docker/.env.example config -q
