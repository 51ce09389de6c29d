# govsocial: the intranet social API suite. `make help` lists the targets.
.DEFAULT_GOAL := help
SHELL := /bin/bash

PYTHON ?= python3
UV_VERSION := 0.13.8
UV := .tools/bin/uv
VENV := .venv
BIN := $(VENV)/bin
PYTEST_ARGS ?=
# pytest-xdist workers for the parallel part of `make test` (a number, or auto: one per CPU).
PYTEST_WORKERS ?= auto
POSTGRES_URL ?= postgresql+asyncpg://postgres@127.0.0.1:5432/postgres
OPENAPI_APPS := identity=services.identity.app:create_app feed=services.feed.app:create_app groups=services.groups.app:create_app moderation=services.moderation.app:create_app records=services.records.app:create_app media=services.media.app:create_app
CONTRACT_EXAMPLES ?= 20
CONTRACT_BACKEND ?= sqlite
RESULTS := var/test-results
# Bytecode compiled once under var/pycache (never beside the sources): the tests and the launcher
# start many Python processes, and without a cache each compiles every module it imports again
# (about 14 s of CPU per start of the seven processes). An environment that sets
# PYTHONDONTWRITEBYTECODE would otherwise disable the cache.
export PYTHONPYCACHEPREFIX := $(CURDIR)/var/pycache
unexport PYTHONDONTWRITEBYTECODE

.PHONY: help setup run migrate test test-postgres browser-test hooks lint format typecheck imports check bench openapi openapi-check openapi-ts contract clients browser clean

help: ## List the targets
	@grep -E '^[a-zA-Z_-]+:.*?## ' $(MAKEFILE_LIST) | awk 'BEGIN {FS = ":.*?## "}; {printf "  \033[36m%-14s\033[0m %s\n", $$1, $$2}'

$(UV):
	$(PYTHON) -m venv .tools
	.tools/bin/pip install --quiet "uv==$(UV_VERSION)"

$(VENV)/.synced: $(UV) pyproject.toml uv.lock
	UV_PYTHON=$(PYTHON) $(UV) sync --frozen --quiet
	@touch $@

setup: $(VENV)/.synced ## Create .venv and install the locked dependencies

run: setup ## Migrate the SQLite databases under var/ and start the gateway and the six services
	$(BIN)/python -m launcher

migrate: setup ## Apply every service's migrations (IDENTITY_/FEED_/GROUPS_/MODERATION_DATABASE_URL, default var/*.db)
	$(BIN)/python -m services.migrate upgrade identity feed groups moderation records media

# $(call pytest-passes,NAME,MARKERS,PREFIX): the tests MARKERS selects, in two runs of
# PREFIX pytest: first the serial ones (they measure time or CPU) alone, while the machine and
# the database server are quiet (right after a parallel run, PostgreSQL is still writing out
# and dropping its databases), then the others on every worker at once (a test file's tests on
# one worker, so that a module's fixtures start once). JUnit XML in $(RESULTS)/NAME-serial.xml
# and NAME.xml. pytest's exit code 5 (no test selected, as when PYTEST_ARGS names tests of one
# kind only) fails neither run; .ci/run checks the XML.
define pytest-passes
	$(3) $(BIN)/pytest -n 0 -m "($(2)) and serial" \
		--junitxml=$(RESULTS)/$(1)-serial.xml $(PYTEST_ARGS) || [ $$? -eq 5 ]
	$(3) $(BIN)/pytest -n $(PYTEST_WORKERS) --dist loadfile -m "($(2)) and not serial" \
		--junitxml=$(RESULTS)/$(1).xml $(PYTEST_ARGS) || [ $$? -eq 5 ]
endef

test: setup ## Run the tests on SQLite (the timing ones alone, then the rest in parallel), then `make test-postgres` when TEST_DATABASE_URL is set; the browser tests are `make browser-test`'s
	@mkdir -p $(RESULTS)
	@rm -f $(RESULTS)/sqlite*.xml $(RESULTS)/postgres*.xml
	$(call pytest-passes,sqlite,not browser,env -u TEST_DATABASE_URL)
	@if [ -n "$$TEST_DATABASE_URL" ]; then $(MAKE) --no-print-directory test-postgres; \
	else echo "== TEST_DATABASE_URL is not set: PostgreSQL run skipped (make test-postgres runs it; CI does)"; fi

# The server to test on: TEST_DATABASE_URL as given, or the local default (the README's).
test-postgres: export TEST_DATABASE_URL := $(or $(TEST_DATABASE_URL),$(POSTGRES_URL))
test-postgres: setup ## Run the database-backed tests (marker database, all but e2e) on PostgreSQL: TEST_DATABASE_URL, default postgresql+asyncpg://postgres@127.0.0.1:5432/postgres
	@mkdir -p $(RESULTS)
	@rm -f $(RESULTS)/postgres*.xml
	@echo "== the database-backed tests on PostgreSQL ($$TEST_DATABASE_URL)"
	$(call pytest-passes,postgres,database and not e2e,)

browser-test: setup browser ## Install chromium (make browser) and run the browser tests (marker browser) on SQLite
	@mkdir -p $(RESULTS)
	env -u TEST_DATABASE_URL $(BIN)/pytest -m browser --junitxml=$(RESULTS)/browser.xml $(PYTEST_ARGS)

hooks: ## Use the git hooks in .githooks/: ruff and mypy before a commit (.pre-commit-config.yaml, run by pre-commit through uv), the message's form after
	git config core.hooksPath .githooks

lint: setup ## ruff: formatting and lint rules
	$(BIN)/ruff format --check .
	$(BIN)/ruff check .

format: setup ## Format the code with ruff
	$(BIN)/ruff format .
	$(BIN)/ruff check --fix .

typecheck: setup ## mypy --strict
	$(BIN)/mypy kit domain gateway services launcher socialctl

imports: setup ## import-linter: kit is domain-free, services and gateway never import each other
	$(BIN)/lint-imports

check: lint typecheck imports deploy-check openapi-check test browser-test ## lint, typecheck, imports, deploy-check, openapi-check, test (and test-postgres when TEST_DATABASE_URL is set), browser-test: CI's checks but make contract

BENCH_ARGS ?=
bench: setup ## Benchmark the home timeline, posting and search with wrk on PostgreSQL and SQLite; results in bench/results/
	@command -v wrk >/dev/null || (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq wrk)
	UV_PYTHON=$(PYTHON) $(UV) sync --frozen --quiet --group bench
	$(BIN)/python -m bench $(BENCH_ARGS)

openapi: setup ## Write openapi.json, the gateway's merged OpenAPI document, from the code (no process runs)
	$(BIN)/python -m gateway.export $(OPENAPI_APPS) --output openapi.json

openapi-check: setup ## Fail if the committed openapi.json differs from what the code publishes
	$(BIN)/python -m gateway.export $(OPENAPI_APPS) --output openapi.json --check

openapi-ts: ## Check that openapi-typescript (npm) turns openapi.json into TypeScript that compiles
	@mkdir -p var/openapi-ts
	npm exec --yes --package=openapi-typescript@7.13.0 -- openapi-typescript openapi.json -o var/openapi-ts/govsocial.d.ts
	npm exec --yes --package=typescript@5 -- tsc --noEmit --strict var/openapi-ts/govsocial.d.ts

contract: setup ## schemathesis (all checks) and hostile inputs against a live suite on free ports (CONTRACT_BACKEND=postgresql: on TEST_DATABASE_URL's server); reports in var/contract/
	$(BIN)/python -m tests.gateway.contract --backend $(CONTRACT_BACKEND) --max-examples $(CONTRACT_EXAMPLES)

clients: setup ## Clients generated from openapi.json (Python; TypeScript with openapi-fetch and with hey-api; npm) run a whole flow against a live suite; generated code in var/clients/
	$(BIN)/python -m tests.clients

browser: ## Install Debian's chromium for the browser tests (idempotent; needs root and apt)
	@if [ -x /usr/bin/chromium ]; then echo "chromium: $$(/usr/bin/chromium --version)"; \
	else apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium \
		&& /usr/bin/chromium --version; fi

.PHONY: deploy-check
deploy-check: setup ## Validate docker-compose.yml (compose spec) and the rendered Kubernetes manifests (strict), offline
	$(BIN)/check-jsonschema --builtin-schema vendor.compose-spec docker-compose.yml
	sh -n deploy/entrypoint.sh
	sh -n deploy/postgres/init.sh
	@mkdir -p var/deploy
	@set -e; for dir in deploy/k8s/base deploy/k8s/overlays/*/; do \
		out="var/deploy/$$(basename $$dir).yaml"; \
		echo "== kustomize $$dir -> $$out"; \
		$(BIN)/kubectl kustomize "$$dir" > "$$out"; \
		$(BIN)/kubernetes-validate --strict --quiet "$$out"; \
	done

clean: ## Remove the virtual environments, databases and caches
	rm -rf .venv .tools var .pytest_cache .mypy_cache .ruff_cache

