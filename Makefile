# One entry point for developers and CI. Nothing here overrides a variable the caller exported.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed-stamp
PROTOS := $(wildcard protos/checkout/v1/*.proto)
GEN    := checkout/v1/checkout_service_pb2.py

.PHONY: all install proto run sandbox test bench check lint typecheck buf fmt clean

all: proto

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	touch $@

install: $(STAMP)

# Generated code is an artifact of the build, never edited by hand (DESIGN §3).
$(GEN): $(PROTOS) $(STAMP)
	rm -rf checkout
	$(BIN)/python -m grpc_tools.protoc -I protos \
		--plugin=protoc-gen-mypy=$(BIN)/protoc-gen-mypy \
		--plugin=protoc-gen-mypy_grpc=$(BIN)/protoc-gen-mypy_grpc \
		--python_out=. --mypy_out=. --grpc_python_out=. --mypy_grpc_out=. \
		$(PROTOS)
	touch $@

proto: $(GEN)

# Starts the Stripe sandbox (unless STRIPE_API_KEY points at real Stripe) and the service.
run: proto
	$(BIN)/python -m service.devrun

sandbox: proto
	$(BIN)/python -m service.sandbox

test: proto
	$(BIN)/python -m pytest

# Timings live here, printed as a table; tests never assert them.
bench: proto
	$(BIN)/python -m bench.checkout_bench

lint: $(STAMP)
	$(BIN)/ruff check service tests bench
	$(BIN)/ruff format --check service tests bench

typecheck: proto
	$(BIN)/mypy service

# `buf breaking` compares the contract with main's: a renamed or renumbered field fails it.
buf: $(STAMP)
	$(BIN)/buf lint
	$(BIN)/buf format --exit-code -d
	$(BIN)/buf breaking --against '.git#branch=main'

check: lint typecheck buf

fmt: $(STAMP)
	$(BIN)/ruff format service tests bench
	$(BIN)/ruff check --fix service tests bench
	$(BIN)/buf format -w

clean:
	rm -rf $(VENV) checkout .mypy_cache .ruff_cache .pytest_cache
