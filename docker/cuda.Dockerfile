# selfsup project image, CUDA variant: the GPU tasks (pretrain, distill, unlearn) run in it.
#   docker build -f docker/cuda.Dockerfile -t $REGISTRY/selfsup:0.1.0-cuda .
# PyPI's torch 2.14.1 wheel is the CUDA 13.0 build and brings the CUDA runtime, cuDNN and NCCL as
# pinned nvidia-* wheels (all in requirements/constraints.txt), so the base needs no CUDA toolkit:
# only the node's NVIDIA driver (>= 580 for CUDA 13), mounted by the NVIDIA container toolkit.
# Same layout as the CPU image: multi-stage, pinned, non-root, no pip at run time.

FROM python:3.11.14-slim-bookworm AS build
ENV PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PYTHONDONTWRITEBYTECODE=1
WORKDIR /src
RUN python -m venv /opt/venv
COPY requirements/constraints.txt requirements/constraints.txt
COPY pyproject.toml README.md ./
COPY src ./src
RUN /opt/venv/bin/pip install --no-cache-dir -c requirements/constraints.txt . \
    && /opt/venv/bin/pip uninstall --yes pip \
    && /opt/venv/bin/selfsup --help >/dev/null

FROM python:3.11.14-slim-bookworm AS runtime
LABEL org.opencontainers.image.title="selfsup" \
      org.opencontainers.image.description="selfsup stages (CUDA 13.0)" \
      org.opencontainers.image.licenses="Apache-2.0"
RUN groupadd --system --gid 10001 selfsup \
    && useradd --system --uid 10001 --gid selfsup --create-home --home-dir /home/selfsup selfsup \
    && python -m pip uninstall --yes pip
COPY --from=build /opt/venv /opt/venv
ENV PATH=/opt/venv/bin:$PATH \
    PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    DVC_NO_ANALYTICS=1 \
    HOME=/home/selfsup \
    NVIDIA_VISIBLE_DEVICES=all \
    NVIDIA_DRIVER_CAPABILITIES=compute,utility
WORKDIR /home/selfsup
USER 10001:10001
ENTRYPOINT ["selfsup"]
CMD ["--help"]
