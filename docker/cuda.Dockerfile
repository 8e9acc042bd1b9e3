# selfsup project image, CUDA variant: the GPU tasks (pretrain, distill, unlearn) run in it.
#   make images            (or: docker build -f docker/cuda.Dockerfile --build-arg REVISION=$(git rev-parse HEAD) -t $REGISTRY/selfsup:0.1.0-cuda .)
# PyPI's torch 2.14.1 wheel is the CUDA 13.0 build and brings the CUDA runtime, cuDNN and NCCL as
# pinned nvidia-* wheels (all in requirements/constraints.txt), so the base needs no CUDA toolkit:
# only the node's NVIDIA driver (>= 580 for CUDA 13), mounted by the NVIDIA container toolkit.
# The layers are the CPU image's, line for line, with PyPI's torch: a machine whose CPU image
# also takes PyPI's torch (no PyTorch index reachable) builds the dependencies once for both.
# One stage, three layers that change at different rates: the venv with the pinned lock's
# dependencies (requirements/constraints.txt; ~6 GB with PyPI's CUDA torch, changes with the
# lock), then the project (changes with src/, a few MB), then the metadata. A code change
# rebuilds only the small layers. Nothing compiles, so there are no build tools to leave out;
# pip is removed in the project's layer, so nothing can be installed at run time. Runs as a
# non-root user.
#
# Build arguments (defaults are the public ones):
#   BASE         the Python 3.11 base, pinned by digest (refresh: docs/kubeflow.md "Images").
#                Offline, `make images` passes a Debian bookworm base made by mmdebstrap.
#   TORCH_INDEX  empty: PyPI's torch, the CUDA 13.0 build.
#   PIP_EXTRA    more pip arguments, e.g. local wheel indexes mounted into the build.
#   REVISION     the code revision (git commit) this image is built from.
#   INPUTS       the hash of what the image is built from (Dockerfile, lock, src): `make images`
#                reuses an image whose label equals it instead of building again.
ARG BASE=python:3.11.14-slim-bookworm@sha256:65a93d69fa75478d554f4ad27c85c1e69fa184956261b4301ebaf6dbb0a3543d
FROM ${BASE}
ARG TORCH_INDEX=
ARG PIP_EXTRA=
ENV PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    DVC_NO_ANALYTICS=1 \
    PATH=/opt/venv/bin:$PATH \
    HOME=/home/selfsup
# The base's own pip goes (Debian's python3 has none); the user the pods run as.
RUN groupadd --system --gid 10001 selfsup \
    && useradd --system --uid 10001 --gid selfsup --create-home --home-dir /home/selfsup selfsup \
    && if python3 -m pip --version >/dev/null 2>&1; then python3 -m pip uninstall --yes pip; fi \
    && python3 -m venv /opt/venv
WORKDIR /src
COPY requirements/constraints.txt requirements/constraints.txt
COPY pyproject.toml ./
# The dependencies, from the lock (pyproject's list, pinned by constraints.txt). The lock's
# torch pin is 2.14.1 either way; the CPU index serves it as 2.14.1+cpu, which the `==2.14.1`
# constraint accepts (a local version label).
RUN python3 -c "import tomllib; print('\n'.join(tomllib.load(open('pyproject.toml', 'rb'))['project']['dependencies']))" > /tmp/dependencies.txt \
    && pip install --no-cache-dir --no-compile \
        ${TORCH_INDEX:+--index-url $TORCH_INDEX --extra-index-url https://pypi.org/simple} \
        ${PIP_EXTRA} -c requirements/constraints.txt -r /tmp/dependencies.txt \
    && rm /tmp/dependencies.txt
COPY README.md ./
COPY src ./src
# The project (nothing left to resolve), then pip goes: no installs at run time.
RUN pip install --no-cache-dir --no-compile --no-deps ${PIP_EXTRA} . \
    && pip uninstall --yes pip \
    && find /opt/venv -name '__pycache__' -prune -exec rm -rf {} + \
    && selfsup --help >/dev/null
ARG REVISION=unknown
ARG VERSION=0.1.0
ARG INPUTS=unknown
LABEL io.selfsup.inputs="${INPUTS}" \
      org.opencontainers.image.title="selfsup" \
      org.opencontainers.image.description="selfsup stages (CUDA 13.0)" \
      org.opencontainers.image.version="${VERSION}" \
      org.opencontainers.image.revision="${REVISION}" \
      org.opencontainers.image.source="https://github.com/selfsup/selfsup" \
      org.opencontainers.image.licenses="Apache-2.0"
ENV SELFSUP_CODE_REVISION=${REVISION} \
    NVIDIA_VISIBLE_DEVICES=all \
    NVIDIA_DRIVER_CAPABILITIES=compute,utility
WORKDIR /home/selfsup
USER 10001:10001
# A batch image (KFP tasks exit when done): the health check says the code imports.
HEALTHCHECK --interval=60s --timeout=30s --retries=1 CMD ["selfsup", "--help"]
ENTRYPOINT ["selfsup"]
CMD ["--help"]
