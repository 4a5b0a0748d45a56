# One entry point for developers and CI. Nothing here overrides a variable the caller exported.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed-stamp
PROTOS := $(wildcard protos/checkout/v1/*.proto)
GEN    := checkout/v1/checkout_service_pb2.py

.PHONY: all install proto run sandbox test test-unit bench chaos soak check lint typecheck layers \
	buf fmt clean deploy-check image chromium screenshots dashboard

all: proto

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[dev,local]'
	touch $@

install: $(STAMP)

# Generated code is an artifact of the build, never edited by hand; the wheel build runs the
# same script (setup.py).
$(GEN): $(PROTOS) protos/generate.py $(STAMP)
	$(BIN)/python protos/generate.py
	touch $@

proto: $(GEN)

# Starts an embedded Postgres (unless DATABASE_URL is set), the Stripe sandbox (unless
# STRIPE_API_KEY points at real Stripe) and the service.
run: proto
	$(BIN)/python -m localdev

sandbox: proto
	$(BIN)/python -m sandbox

# The whole suite, two workers per core (pytest-xdist): each worker starts a Postgres and a
# sandbox of its own and takes a test file at a time. Two, because the longest files mostly
# wait (the short soak, chaos and failover runs, alerts firing in Prometheus): one per core left
# the cores idle for a third of the run (the README's Tests has the figures). TEST_WORKERS=0
# runs it in one process, in order. tests/e2e/test_prometheus_alerts.py runs the alerts in a
# real Prometheus: installed here when missing and apt-get can (deploy/install-prometheus),
# else that test skips saying why.
TEST_WORKERS ?= $(shell echo $$(( $$(nproc) * 2 )))
test: proto chromium
	@deploy/install-prometheus || true
	$(BIN)/python -m pytest -n $(TEST_WORKERS)

# The unit tests alone: the domain over in-memory fakes, no Postgres, sandbox or server.
test-unit: proto
	$(BIN)/python -m pytest tests/unit

# tests/browser drives Debian's Chromium through Playwright, which cannot download a browser of
# its own here. As root, install it when it is missing; anywhere else the browser tests skip,
# saying why.
CHROMIUM ?= /usr/bin/chromium
chromium:
	@if [ ! -x "$(CHROMIUM)" ] && [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then \
		echo "make: installing chromium with apt-get for tests/browser"; \
		{ apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium \
			>/dev/null; } || echo "make: apt-get could not install chromium: tests/browser will skip"; \
	fi

# The hosted page's screenshots in docs/images/ (README, "The Stripe sandbox"), taken by the
# browser tests: before paying, the 3D Secure challenge, and after paying.
screenshots: proto chromium
	SCREENSHOTS=docs/images $(BIN)/python -m pytest tests/browser -q

# Timings live here: the service side by side with a bare grpc.aio server and with direct
# stripe-python calls, printed as tables and written to bench/results.json; tests never assert
# them. QUICK=1: shorter runs. PROFILE=1: only a py-spy profile of the service creating
# sessions (bench/create-profile.txt).
bench: proto
	$(BIN)/python -m bench $(if $(QUICK),--quick) $(if $(PROFILE),--profile)

# Three replicas on one Postgres and the sandbox, under Stripe faults, a Postgres restart and a
# SIGKILLed replica; then a Postgres failover that loses the last commits (a primary and its
# asynchronous standby). Each time the ledger is checked against Stripe and a table printed.
# Fails if an invariant broke. About 5 minutes; QUICK=1: about 2; RUN=faults or RUN=failover
# for one of the two. Short runs of both are in `make test`.
chaos: proto
	$(BIN)/python -m chaos $(if $(QUICK),--quick) $(if $(RUN),--run $(RUN))

# Two replicas under a fixed, mixed load for SOAK_MINUTES (30), each one's memory, file
# descriptors, asyncio tasks and Postgres connections sampled every 30 s; fails if one grows
# without bound after a 5-minute warm-up (the README says how that is judged). A short soak is
# in `make test`.
SOAK_MINUTES ?= 30
soak: proto
	$(BIN)/python -m soak --minutes $(SOAK_MINUTES)

PY_DIRS := service sandbox localdev tests bench chaos soak dashboard protos setup.py clients/python

lint: $(STAMP)
	$(BIN)/ruff check $(PY_DIRS)
	$(BIN)/ruff format --check $(PY_DIRS)

typecheck: proto
	$(BIN)/mypy service sandbox localdev tests bench chaos soak dashboard clients/python/checkout_client

# The layers (docs/architecture.md), as import-linter contracts in pyproject.toml.
layers: proto
	$(BIN)/lint-imports

# `buf breaking` compares the contract with main's: a renamed or renumbered field fails it.
buf: $(STAMP)
	$(BIN)/buf lint
	$(BIN)/buf format --exit-code -d
	$(BIN)/buf breaking --against '.git#branch=main'

# Every overlay renders and validates strictly; promtool checks the alerts and runs their unit
# tests (installing Debian's prometheus package if missing); yamllint, hadolint, shellcheck.
deploy-check: $(STAMP)
	deploy/check-manifests

# The Grafana dashboard, from dashboard/ (grafana-foundation-sdk) into the monitoring component;
# tests/deploy/test_dashboard.py fails while the committed JSON differs from what this writes.
dashboard: $(STAMP)
	$(BIN)/python -m dashboard

# The image (deploy/Dockerfile), with docker if an engine answers, else podman. BASE_IMAGE
# substitutes the base (see deploy/smoke-image for a machine without registry access).
IMAGE ?= checkout-service:dev
image:
	@if docker info >/dev/null 2>&1; then engine=docker; \
	elif command -v podman >/dev/null 2>&1; then engine=podman; \
	else echo "make image: no container engine here: docker has no engine answering (docker info fails) and podman is not installed" >&2; exit 1; fi; \
	echo "make image: building $(IMAGE) with $$engine"; \
	$$engine build -f deploy/Dockerfile $(if $(BASE_IMAGE),--build-arg BASE_IMAGE=$(BASE_IMAGE)) -t $(IMAGE) .

check: lint typecheck layers buf deploy-check

fmt: $(STAMP)
	$(BIN)/ruff format $(PY_DIRS)
	$(BIN)/ruff check --fix $(PY_DIRS)
	$(BIN)/buf format -w

clean:
	rm -rf $(VENV) checkout .mypy_cache .ruff_cache .pytest_cache
