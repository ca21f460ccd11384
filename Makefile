# The two commands a newcomer needs:
#   make up     build everything, start the stack, run the pipeline over recent days
#   make test   every test: lint, Rust unit+integration, DAG tests, the real stack end to end
# `make help` lists every target.

SHELL := /bin/bash
.SHELLFLAGS := -euo pipefail -c
.DEFAULT_GOAL := help

CARGO ?= cargo
VENV := .venv
PY := $(VENV)/bin/python
DATE ?= $(shell date -u +%F)

.PHONY: help
help: ## list every target
	@grep -hE '^[a-zA-Z_-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  make %-16s %s\n", $$1, $$2}'

## ---- main job ---------------------------------------------------------------

.PHONY: up
up: preflight images ## build binaries and images, start the stack, run the pipeline over recent days
	scripts/stack.sh up
	python3 scripts/run_pipeline.py

.PHONY: up-celery
up-celery: preflight images ## like up, on the CeleryExecutor with Redis and two workers (profile celery)
	ML_STACK_PROFILE=celery scripts/stack.sh up
	python3 scripts/run_pipeline.py

.PHONY: preflight
preflight: ## check docker, compose, cargo, disk and ports before a long build (under make test: the test stacks' ports)
	scripts/preflight.sh $(PREFLIGHT_MODE)

.PHONY: screenshots
screenshots: venv images browser ## regenerate docs/screenshots/*.png with headless Chromium
	scripts/screenshots.sh

.PHONY: down
down: ## stop the stack, keep data and volumes
	scripts/stack.sh down

.PHONY: clean
clean: ## stop the stack and remove its volumes (the host data dir is kept)
	scripts/stack.sh clean

.PHONY: images
images: ## build the stage binaries and every image (no registry needed)
	scripts/images.sh

.PHONY: build
build: ## release-build the static stage binaries
	$(CARGO) build --release --bins

.PHONY: pipeline-local
pipeline-local: build ## run generate -> preprocess -> split -> train -> validate -> predict for DATE into ./data, no Docker
	scripts/pipeline-local.sh $(DATE)

## ---- tests ------------------------------------------------------------------

.PHONY: test
test: PREFLIGHT_MODE := test
test: preflight lint test-rust test-mlflow test-dags test-system drills ## every test (what CI runs), after the preflight

.PHONY: browser
browser: ## headless Chromium + chromedriver from Debian's packages (screenshot test)
	scripts/install-browser.sh

.PHONY: venv
venv: ## host virtualenv with the locked test tooling
	scripts/dev-env.sh

.PHONY: lint
lint: venv ## rustfmt, clippy, ruff
	$(CARGO) fmt --all -- --check
	$(CARGO) clippy --release --all-targets -- -D warnings
	$(VENV)/bin/ruff check airflow_ml_dags tests scripts
	$(VENV)/bin/ruff format --check airflow_ml_dags tests scripts
	$(CARGO) clippy --release --workspace --test 'mlflow_*' -- -D warnings
	$(VENV)/bin/shellcheck scripts/*.sh images/base/build.sh images/postgres/entrypoint.sh images/redis/entrypoint.sh images/redis/redis-ping .ci/run

.PHONY: test-rust
test-rust: ## Rust unit and integration tests (release profile, shared with the images)
	$(CARGO) test --release --workspace

.PHONY: test-mlflow
test-mlflow: ## Rust MLflow client and stages against a real, throwaway MLflow server on loopback
	scripts/mlflow-test-server.sh $(CARGO) test --release --workspace --test 'mlflow_*'

.PHONY: test-dags
test-dags: venv ## DagBag integrity, structure, rendered templates, parse times
	$(VENV)/bin/pytest -q airflow_ml_dags/tests

.PHONY: test-stack
test-stack: venv images ## the compose stack alone: health, login, secrets, stage images, task network
	$(VENV)/bin/pytest -q tests/system/test_stack.py

.PHONY: test-system
test-system: venv images browser ## the real compose stack: health, login, stage images, DAGs end to end, alerts, screenshots
	$(VENV)/bin/pytest -q -s tests/system

.PHONY: drills
drills: venv images browser ## fault drills on one real stack: kills, restarts, bad data, determinism, a 30-day backfill, the monitoring loop
	$(VENV)/bin/pytest -q -s tests/drills

.PHONY: test-celery
test-celery: venv images ## the pipeline on the celery profile, tasks spread over both workers (part of test-system)
	$(VENV)/bin/pytest -q -s tests/system/test_celery.py

.PHONY: lock
lock: venv ## re-lock the Python packages of the Airflow and MLflow images
	scripts/images.sh lock

## ---- measurements -----------------------------------------------------------

.PHONY: bench
bench: build ## rows/s and peak memory of every stage on large inputs
	scripts/bench.sh

.PHONY: bench-orchestration
bench-orchestration: venv images ## per-task overhead, 30-day backfill wall time, idle memory: LocalExecutor vs Celery
	$(PY) scripts/bench_orchestration.py

.PHONY: bench-docker-api
bench-docker-api: venv images ## a task's Docker API calls through ml-docker-guard vs straight to the socket
	$(PY) scripts/bench_docker_api.py

.PHONY: compare
compare: venv ## our logistic regression vs scikit-learn's on the same split of DATE (run pipeline-local first)
	$(VENV)/bin/python scripts/compare_sklearn.py --processed-dir data/processed/$(DATE)
