# selfsup project image, CPU variant: every pipeline task (a KFP lightweight component) runs in it.
#   docker build -f docker/cpu.Dockerfile -t $REGISTRY/selfsup:0.1.0-cpu .
# Multi-stage: the build stage resolves the pinned lock (requirements/constraints.txt) into a
# virtualenv; the runtime stage copies only that venv, runs as a non-root user and has no pip,
# so nothing can be installed at run time (air-gapped clusters fail on runtime installs anyway).

FROM python:3.11.14-slim-bookworm AS build
ENV PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PYTHONDONTWRITEBYTECODE=1
WORKDIR /src
RUN python -m venv /opt/venv
COPY requirements/constraints.txt requirements/constraints.txt
COPY pyproject.toml README.md ./
COPY src ./src
# CPU-only torch (the same 2.14.1, without the CUDA libraries) from PyTorch's CPU index.
RUN /opt/venv/bin/pip install --no-cache-dir \
        --index-url https://download.pytorch.org/whl/cpu \
        --extra-index-url https://pypi.org/simple \
        -c requirements/constraints.txt . \
    && /opt/venv/bin/pip uninstall --yes pip \
    && /opt/venv/bin/selfsup --help >/dev/null

FROM python:3.11.14-slim-bookworm AS runtime
LABEL org.opencontainers.image.title="selfsup" \
      org.opencontainers.image.description="selfsup stages (CPU)" \
      org.opencontainers.image.licenses="Apache-2.0"
RUN groupadd --system --gid 10001 selfsup \
    && useradd --system --uid 10001 --gid selfsup --create-home --home-dir /home/selfsup selfsup \
    && python -m pip uninstall --yes pip
COPY --from=build /opt/venv /opt/venv
ENV PATH=/opt/venv/bin:$PATH \
    PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    DVC_NO_ANALYTICS=1 \
    HOME=/home/selfsup
WORKDIR /home/selfsup
USER 10001:10001
ENTRYPOINT ["selfsup"]
CMD ["--help"]
