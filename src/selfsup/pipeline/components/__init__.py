"""One module per stage component: the container component and its local twin, side by side.

Each module exports ``container(image)`` (the component that runs ``selfsup pipeline task
<stage>`` in the project image), ``twin`` (a lightweight component with the same signature that
calls the same :mod:`selfsup.pipeline.tasks` function in-process, for ``run-local``) and
``RESOURCES``. Adding a stage (mine, compress, promote) is one more module of this shape.
"""

from selfsup.pipeline.components import data, evaluate, pretrain

__all__ = ["data", "evaluate", "pretrain"]
