# Two entry points, both from a fresh clone:
#   make run   — set up, then `dvc repro` the default chain (data → pretrain → evaluate)
#   make test  — set up (Python + system packages the tests need), lint, type-check, test
SHELL := /bin/bash
PYTHON ?= python3.11
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
export PATH := $(abspath $(BIN)):$(PATH)
# DVC must not phone home: this machine (and many clusters) have no internet.
export DVC_NO_ANALYTICS := 1
# Tests of a CLI subprocess run faster without bytecode churn in src/.
export PYTHONDONTWRITEBYTECODE := 1
PYTEST_ARGS ?=

.PHONY: run test venv lint typecheck check-archive system-deps bench clean pipelines kustomize-check k8s-docs image-deps images test-images

$(STAMP): pyproject.toml requirements/constraints.txt
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --disable-pip-version-check \
		-c requirements/constraints.txt -e '.[dev]'
	touch $(STAMP)

venv: $(STAMP)

# The default chain reads real CIFAR-10 (see README). With no archive named (no
# $$SELFSUP_CIFAR10_ARCHIVE, params.yaml's data.archive null or empty) `make run` downloads
# cifar-10-python.tar.gz into $$SELFSUP_CACHE_DIR (~/.cache/selfsup) once; offline it stops here,
# before the minutes of setup, with one line saying what to set. A cifar-10-python.tar.gz given as
# the archive is recognised by its content and read directly (selfsup.data.cifar10_python).
NO_ARCHIVE = [ -z "$$SELFSUP_CIFAR10_ARCHIVE" ] \
	&& ! grep -E '^\s+archive:' params.yaml | grep -qvE 'archive:\s*(null|~)?\s*(\#.*)?$$' \
	&& grep -qE '^\s+source: cifar10-archive' params.yaml

# stdlib only: runs with $(PYTHON) before the venv exists (a 5 s connect probe at most)
check-archive:
	@if $(NO_ARCHIVE); then PYTHONPATH=src $(PYTHON) -m selfsup.data.download --check; fi

run: check-archive venv
	@if $(NO_ARCHIVE); then \
		SELFSUP_CIFAR10_ARCHIVE=$$($(BIN)/python -m selfsup.data.download) || exit 2; \
		export SELFSUP_CIFAR10_ARCHIVE; echo "CIFAR-10: $$SELFSUP_CIFAR10_ARCHIVE"; fi; \
	$(BIN)/dvc repro
	$(BIN)/selfsup summary reports/evaluate.json
	@echo "full metrics: dvc metrics show; report: reports/evaluate/report.html"

# Services the integration tests start (a throw-away Ceph RGW for S3, a Prometheus Pushgateway),
# the browser that screenshots the evaluation report (Chromium's headless shell) and the second
# labelled dataset (Fashion-MNIST, docs/datasets.md): Debian packages, installed only when a
# binary (or, for an absolute path, a file) is missing (needs root or sudo).
SYSTEM_BINARIES := radosgw ceph-mon ceph-osd ceph prometheus-pushgateway chromium-headless-shell \
	/usr/share/datasets/fashion-mnist/train-images-idx3-ubyte.gz
SYSTEM_PACKAGES := radosgw ceph-mon ceph-osd ceph-common prometheus-pushgateway \
	chromium-headless-shell dataset-fashion-mnist
SUDO := $(shell [ "$$(id -u)" = 0 ] || echo sudo)
# $(call install-missing,BINARIES,PACKAGES): apt-install PACKAGES when one of BINARIES is missing.
define install-missing
	@missing=""; for b in $(1); do \
		case $$b in /*) [ -e $$b ] ;; *) command -v $$b >/dev/null ;; esac || missing="$$missing $$b"; \
	done; \
	if [ -n "$$missing" ]; then \
		echo "installing $(2) (missing:$$missing)"; \
		$(SUDO) apt-get update -qq && \
		DEBIAN_FRONTEND=noninteractive $(SUDO) apt-get install -y -qq --no-install-recommends $(2); \
	fi
endef

system-deps:
	$(call install-missing,$(SYSTEM_BINARIES),$(SYSTEM_PACKAGES))

lint: venv
	$(BIN)/ruff check src tests bench
	$(BIN)/ruff format --check src tests bench

typecheck: venv
	$(BIN)/mypy src/selfsup

test: venv system-deps kustomize-check lint typecheck
	$(BIN)/pytest -n 2 --dist loadfile -m "not containers" $(PYTEST_ARGS)

# The images (docker/*.Dockerfile) and the tests that run them. Podman builds (with runc:
# docker/podman.conf), Debian's Docker daemon runs KFP's DockerRunner; all from Debian packages.
# An image whose inputs (Dockerfile, lock, src) are unchanged is reused, not rebuilt.
IMAGE_BINARIES := podman runc mmdebstrap dockerd docker
IMAGE_PACKAGES := podman runc mmdebstrap docker.io
image-deps:
	$(call install-missing,$(IMAGE_BINARIES),$(IMAGE_PACKAGES))

images: venv image-deps
	$(BIN)/python -m selfsup.deploy.images --report build/images.json

test-images: venv system-deps image-deps
	$(BIN)/pytest -m containers tests/containers $(PYTEST_ARGS)

bench: venv system-deps
	$(BIN)/python bench/pretrain_throughput.py
	$(BIN)/python bench/kfp_compile.py
	$(BIN)/python bench/kfp_run_local.py --out /dev/stderr > /dev/null
	$(BIN)/python bench/store_throughput.py

# Recompile the KFP pipelines and refresh the golden copies the tests compare against (and the
# workloads table of docs/kubeflow.md, which shows their task commands).
pipelines: venv kustomize-check
	$(BIN)/selfsup pipeline compile --out pipelines/train.yaml --goldens .
	$(BIN)/python -m selfsup.deploy.workloads --write docs/kubeflow.md

# The k8s/ checks render with the real kustomize, bundled with kubectl (Kustomize >= v5). No
# standalone kustomize comes from PyPI, npm or Debian (bookworm's kubernetes-client is 1.20):
# install kubectl >= 1.27. Missing or old is an error, never a skipped test.
kustomize-check:
	@command -v kubectl >/dev/null || { echo "error: kubectl not found; the k8s/ checks need" \
		"\`kubectl kustomize\` (Kustomize >= v5, kubectl >= 1.27): see docs/kubeflow.md" >&2; exit 2; }
	@v=$$(kubectl version --client -o json | sed -n 's/.*"kustomizeVersion": *"v\([0-9]*\)\..*/\1/p'); \
	if [ -z "$$v" ] || [ "$$v" -lt 5 ]; then echo "error: kubectl bundles Kustomize" \
		"'$${v:-none}', the k8s/ checks need >= v5 (kubectl >= 1.27)" >&2; exit 2; fi

# Rewrite the workloads table of docs/kubeflow.md from the rendered manifests and compiled
# pipelines (a test compares the two).
k8s-docs: venv kustomize-check
	$(BIN)/python -m selfsup.deploy.workloads --write docs/kubeflow.md

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache
