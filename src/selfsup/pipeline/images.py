"""Default image references (built from docker/; override with ``--image``/``--gpu-image`` or
``$SELFSUP_IMAGE``/``$SELFSUP_GPU_IMAGE``).

Fully qualified: a bare ``selfsup:…`` resolves to Docker Hub on a node, or is refused under a
short-name policy. ``localhost:5000`` is the dev overlay's registry (the local registry of kind
or minikube), which ``make images`` tags for: ``podman push`` sends them there. Tags are
versioned, never ``:latest``: a re-pushed tag must not silently change what a compiled pipeline
runs.
"""

from selfsup import __version__

IMAGE_REPOSITORY = "localhost:5000/selfsup"


def image_of(variant: str) -> str:
    """The default image of ``variant`` (``cpu`` or ``cuda``)."""
    return f"{IMAGE_REPOSITORY}:{__version__}-{variant}"


DEFAULT_IMAGE = image_of("cpu")
DEFAULT_GPU_IMAGE = image_of("cuda")
