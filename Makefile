# aci-research: `make help` lists the targets.
SHELL := /bin/bash
.DEFAULT_GOAL := help

PYTHON ?= python3
VENV ?= .venv
IMAGE_PREFIX ?= aci-research
TAG ?= latest
# A PEM bundle that apt, pip and npm trust inside image builds (a TLS-intercepting
# proxy). Used in builder stages only, never copied into a final image.
EXTRA_CA_CERTS ?=
DEBIAN_IMAGE ?= debian:trixie-slim
# The images and their build order are in images/images.toml (the catalogue).
CATALOGUE = $(VENV)/bin/python -m deployer.imagebuild

COMPOSE_FILE := compose/docker-compose.yml
ENV_FILE := compose/.env
SECRETS_DIR := compose/secrets
COMPOSE ?= $(shell docker compose version >/dev/null 2>&1 && echo "docker compose" || echo docker-compose)
DC := $(COMPOSE) -f $(COMPOSE_FILE)
UP_TIMEOUT ?= 180

# The stack's Azurite is this build's, unless you name another image.
AZURITE_IMAGE ?= $(IMAGE_PREFIX)/azurite:$(TAG)

export IMAGE_PREFIX TAG EXTRA_CA_CERTS DEBIAN_IMAGE VENV AZURITE_IMAGE

.PHONY: help venv base build lock secrets up down logs ps test test-unit test-run fuzz soak lint bench bench-run bench-run-direct bench-run-scale bench-autoscale-cost clean emulator

help: ## List the targets
	@awk 'BEGIN {FS = ":.*## "} /^[a-zA-Z_-]+:.*## / {printf "  \033[36m%-10s\033[0m %s\n", $$1, $$2}' $(MAKEFILE_LIST)

$(VENV)/.installed: pyproject.toml images/blast-client/pyproject.toml images/blast-worker/pyproject.toml images/blast-web/pyproject.toml emulator/pyproject.toml testbed/pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(VENV)/bin/pip install --quiet --upgrade pip
	@# blast-client first: the deployer and the worker depend on it, and it is not on PyPI.
	$(VENV)/bin/pip install --quiet -e images/blast-client -e '.[dev]' -e images/blast-worker \
		-e images/blast-web -e emulator -e testbed
	@touch $@

venv: $(VENV)/.installed ## Create the development virtualenv (.venv): the deployer, the emulator, the test tools

base: ## Provide debian:trixie-slim: docker pull, or build it from Debian's mirror offline
	BASE_IMAGE=$(DEBIAN_IMAGE) images/debian-slim/mkimage.sh

build: base $(VENV)/.installed ## Build every image of images/images.toml (EXTRA_CA_CERTS=<bundle> behind a TLS proxy)
	@set -e; images=$$($(CATALOGUE) order); for image in $$images; do images/build.sh $$image; done
	@docker images --filter 'reference=$(IMAGE_PREFIX)/*:$(TAG)' --format '{{.Repository}}:{{.Tag}}  {{.Size}}'

lock: ## Pin new packages in images/base/constraints.txt, the one Python lock (UPGRADE=1: re-resolve all)
	images/build.sh base-builder
	docker run --rm --user 0 -v $(CURDIR)/images:/images -e LOCK_UPGRADE=$(UPGRADE) \
		$(if $(EXTRA_CA_CERTS),-v $(abspath $(EXTRA_CA_CERTS)):/tmp/build-ca/extra.crt:ro) \
		$(IMAGE_PREFIX)/base-builder:$(TAG) bash /images/base/lock.sh

secrets: $(VENV)/.installed ## Create compose/secrets/ (random secrets, 0600) and compose/.env (kept if they exist)
	$(VENV)/bin/deployer local secrets $(ENV_FILE)

up: build secrets ## Start the local stack, wait until healthy, print the notebook and BLAST page URLs
	$(DC) up -d --remove-orphans
	@$(VENV)/bin/deployer local wait --timeout $(UP_TIMEOUT) --env-file $(ENV_FILE)
	@source <(grep -E '^(NOTEBOOK_PORT|WEB_PORT)=' $(ENV_FILE)); token=$$(cat $(SECRETS_DIR)/notebook_token); \
		echo "Notebook:   http://127.0.0.1:$${NOTEBOOK_PORT:-8888}/lab?token=$$token"; \
		echo "BLAST page: http://127.0.0.1:$${WEB_PORT:-8080}/?token=$$token"

down: ## Stop the local stack (keeps its volumes)
	$(DC) down --remove-orphans

logs: ## Follow the local stack's logs
	$(DC) logs --follow --tail=100

ps: ## Show the local stack's containers and their health
	$(DC) ps

# Test processes: the integration tests wait on containers most of the time, so two processes
# take far less wall time on 2 cores. Tests of one session (a stack) stay in one process.
TEST_PROCESSES ?= 2

test: venv build ## Run every test: unit tests, a clean install, then the image and compose integration tests (prints the 30 slowest)
	$(VENV)/bin/pytest -n $(TEST_PROCESSES) --dist loadgroup --durations 30 tests/unit tests/packaging tests/integration

test-unit: venv ## Run the fast unit tests (no Docker needed)
	$(VENV)/bin/pytest -m "not docker" tests

fuzz: venv ## The property tests at full budget: 2,000 random examples each (make test runs a fixed 300)
	HYPOTHESIS_PROFILE=fuzz $(VENV)/bin/pytest tests/unit/test_fuzz_parsers.py

soak: venv build ## The full chaos soak: 300 jobs, 4 workers, kills every 10 s (prints its figures)
	BLAST_SOAK_JOBS=$${BLAST_SOAK_JOBS:-300} BLAST_SOAK_VISIBILITY=$${BLAST_SOAK_VISIBILITY:-60} \
		$(VENV)/bin/pytest -s --timeout 3600 tests/integration/blast/test_blast_soak.py

# Scripts without a .py or .sh name (healthchecks, start-ipengines, .ci/run), found by their #! line.
first_line_matches = git ls-files ':!*.py' ':!*.sh' ':!*.ipynb' | xargs awk 'FNR == 1 { if ($(1)) print FILENAME; nextfile }'
PY_SCRIPTS = $(shell $(call first_line_matches,/^\#!.*python/))
SH_SCRIPTS = $(shell git ls-files '*.sh'; $(call first_line_matches,/^\#!.*[\/ ](ba|da)?sh( |$$$$)/))

lint: venv ## ruff, mypy (strict) and shellcheck; any finding fails
	$(VENV)/bin/ruff check deployer emulator testbed tests bench images $(PY_SCRIPTS)
	$(VENV)/bin/ruff format --check deployer emulator testbed tests bench images $(PY_SCRIPTS)
	$(VENV)/bin/mypy deployer emulator/aci_emulator testbed tests bench \
		images/blast-client/blast_client images/blast-worker/blast_worker images/blast-web/blast_web
	@# One run per script: several are called healthcheck, one module name for mypy.
	@set -e; for script in $(PY_SCRIPTS); do echo "mypy $$script"; $(VENV)/bin/mypy $$script; done
	shellcheck $(SH_SCRIPTS)

emulator: venv ## Run the local ACI emulator (groups run on Docker); prints DEPLOYER_ARM_ENDPOINT
	$(VENV)/bin/aci-emulator --image-prefix $(IMAGE_PREFIX) --tag $(TAG) $(EMULATOR_ARGS)

test-run: venv ## deployer run end to end on the local ACI emulator (needs make build)
	$(VENV)/bin/pytest tests/integration/run

bench-run: venv ## deployer run: idle tail and run overhead on the emulator (needs make build)
	$(VENV)/bin/python bench/bench_run.py

bench-run-direct: venv ## deployer run end to end vs one direct blastn on the same cores: tuned, untuned, sharded (needs make build)
	$(VENV)/bin/python bench/bench_run_direct.py

bench-run-scale: venv ## The run machinery at 1,000, 3,000 and 10,000 batches on Azurite: submit, janitor, status, merge, memory, requests (needs make build)
	$(VENV)/bin/python bench/bench_run_scale.py

bench-autoscale-cost: venv ## Autoscaled run vs a fixed pool: billed worker-seconds and wall time on the emulator (needs make build)
	$(VENV)/bin/python bench/bench_autoscale_cost.py

bench: venv ## Run every benchmark, printing its figures (BENCH_ARGS=--smoke: seconds each); lists the failed ones
	@failed=""; for script in bench/bench_*.py; do \
		echo "== $$script"; $(VENV)/bin/python $$script $(BENCH_ARGS) || failed="$$failed $$script"; \
	done; \
	if [ -n "$$failed" ]; then echo "benchmarks that failed:$$failed" >&2; exit 1; fi

clean: ## Remove the local stack with its volumes and secrets, and the virtualenv
	-$(DC) down --volumes --remove-orphans
	rm -rf $(ENV_FILE) $(SECRETS_DIR)
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache
