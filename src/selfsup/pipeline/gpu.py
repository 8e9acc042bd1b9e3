"""The one place that sends a task to the GPU node pool.

Every GPU task goes through :func:`use_gpu_pool`, so the accelerator request, the node selector
and the toleration of the pool's ``nvidia.com/gpu:NoSchedule`` taint cannot drift apart between
tasks (a GPU request without the toleration never schedules on a tainted pool; a toleration
without the selector lets a CPU-only task squat on a GPU node). ``k8s/overlays/gpu`` taints and
labels the pool to match :data:`DEFAULT_POOL`.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from selfsup.pipeline.errors import PipelineError


@dataclass(frozen=True)
class GpuPool:
    """How GPU nodes are requested and selected on the cluster."""

    accelerator: str = "nvidia.com/gpu"
    count: int = 1
    node_label: str = "nvidia.com/gpu.present"
    node_value: str = "true"
    taint_key: str = "nvidia.com/gpu"
    taint_effect: str = "NoSchedule"
    # A GPU model, as GPU feature discovery labels nodes (e.g. NVIDIA-H100-80GB-HBM3); None: any.
    product: str | None = None
    product_label: str = "nvidia.com/gpu.product"

    def __post_init__(self) -> None:
        if self.count < 1:
            raise PipelineError(f"a GPU task needs at least 1 GPU, got {self.count}")


DEFAULT_POOL = GpuPool()


def use_gpu_pool(task: Any, pool: GpuPool = DEFAULT_POOL) -> Any:
    """Request ``pool.count`` GPUs for ``task`` and pin it to the (tainted) GPU pool."""
    from kfp import kubernetes

    task.set_accelerator_type(pool.accelerator)
    task.set_accelerator_limit(pool.count)
    kubernetes.add_node_selector(task, label_key=pool.node_label, label_value=pool.node_value)
    if pool.product is not None:
        kubernetes.add_node_selector(task, label_key=pool.product_label, label_value=pool.product)
    kubernetes.add_toleration(task, key=pool.taint_key, operator="Exists", effect=pool.taint_effect)
    return task
