"""Default image references (built from docker/; override with ``--image``/``--gpu-image``).

Tags are versioned, never ``:latest``: a re-pushed tag must not silently change what a
compiled pipeline runs.
"""

from selfsup import __version__

DEFAULT_IMAGE = f"selfsup:{__version__}-cpu"
DEFAULT_GPU_IMAGE = f"selfsup:{__version__}-cuda"
