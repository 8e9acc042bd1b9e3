"""Resources, retries, caching and secrets of pipeline tasks, each set by one helper.

Kubernetes schedules by requests and kills at limits, so every task gets both (the k8s tests
enforce the same for the manifests). Retries cover transient failures (node preemption, a
flaky object store); a bad parameter fails the same way each time, so retries are few and
backed off. Secrets reach a task only as environment variables from a Kubernetes Secret
(``kfp.kubernetes.use_secret_as_env``): the compiled YAML names the Secret, never its value.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class Resources:
    """CPU (cores, as Kubernetes quantities) and memory of one task: requests and limits."""

    cpu_request: str
    cpu_limit: str
    memory_request: str
    memory_limit: str


@dataclass(frozen=True)
class Retry:
    """Retry policy for transient failures."""

    attempts: int = 2
    backoff: str = "60s"
    factor: float = 2.0
    max_backoff: str = "600s"


def apply_resources(task: Any, resources: Resources) -> Any:
    """Set requests and limits (both, always) on ``task``."""
    task.set_cpu_request(resources.cpu_request)
    task.set_cpu_limit(resources.cpu_limit)
    task.set_memory_request(resources.memory_request)
    task.set_memory_limit(resources.memory_limit)
    return task


DEFAULT_RETRY = Retry()


def apply_retry(task: Any, retry: Retry = DEFAULT_RETRY) -> Any:
    """Retry ``task`` on failure with exponential backoff."""
    task.set_retry(
        num_retries=retry.attempts,
        backoff_duration=retry.backoff,
        backoff_factor=retry.factor,
        backoff_max_duration=retry.max_backoff,
    )
    return task


# The image's user (docker/*.Dockerfile: USER 10001:10001).
IMAGE_UID = 10001


def run_as_image_user(task: Any) -> Any:
    """Pod Security "restricted" for the task's container: the image's non-root user, stated so
    the kubelet refuses to start it as root. KFP's backend sets the rest of the profile itself
    (``allowPrivilegeEscalation: false``, all capabilities dropped, seccomp ``RuntimeDefault``;
    kfp-kubernetes ``set_security_context``)."""
    from kfp import kubernetes

    kubernetes.set_security_context(
        task, run_as_user=IMAGE_UID, run_as_group=IMAGE_UID, run_as_non_root=True
    )
    return task


# Where tasks push their metrics: a ConfigMap (k8s/base), so the address changes without a
# recompile; optional, so a cluster without it runs the tasks unobserved rather than not at all.
OBSERVE_CONFIG_MAP = "selfsup-observe"


# The Pushgateway's basic-auth client credentials (k8s/secret-templates/selfsup-pushgateway.yaml).
PUSHGATEWAY_SECRET = "selfsup-pushgateway"


def observe(task: Any, pipeline: str) -> Any:
    """``SELFSUP_PUSHGATEWAY`` from the ConfigMap and its credentials from the Secret (both
    optional), ``SELFSUP_PIPELINE`` (the grouping key's pipeline) = ``pipeline``; the run id
    comes as the task's ``run_id`` input."""
    from kfp import kubernetes

    from selfsup.observe.metrics import PASSWORD_ENV, PIPELINE_ENV, PUSHGATEWAY_ENV, USERNAME_ENV

    kubernetes.use_config_map_as_env(
        task, OBSERVE_CONFIG_MAP, {"pushgateway": PUSHGATEWAY_ENV}, optional=True
    )
    credentials = {"username": USERNAME_ENV, "password": PASSWORD_ENV}
    kubernetes.use_secret_as_env(task, PUSHGATEWAY_SECRET, credentials, optional=True)
    task.set_env_variable(PIPELINE_ENV, pipeline)
    return task


def never_cache(task: Any) -> Any:
    """For side-effect tasks (push, promote): KFP caches by default and would skip them."""
    task.set_caching_options(enable_caching=False)
    return task


def use_secret_env(task: Any, secret: str, keys_to_env: Mapping[str, str]) -> Any:
    """Expose keys of the Kubernetes Secret ``secret`` to ``task`` as environment variables."""
    from kfp import kubernetes

    kubernetes.use_secret_as_env(task, secret_name=secret, secret_key_to_env=dict(keys_to_env))
    return task


# The S3 store's Secret (k8s/secret-templates/selfsup-s3.yaml): its keys → the task's environment.
S3_SECRET = "selfsup-s3"
S3_SECRET_ENV = {
    "AWS_ACCESS_KEY_ID": "AWS_ACCESS_KEY_ID",
    "AWS_SECRET_ACCESS_KEY": "AWS_SECRET_ACCESS_KEY",
}


def use_s3(task: Any, endpoint: str) -> Any:
    """Give ``task`` the S3 store: credentials from the Secret, the endpoint (an address, not a
    secret) as ``SELFSUP_S3_ENDPOINT``; no credential value ever enters the compiled YAML."""
    from selfsup.store.s3 import ENDPOINT_ENV

    use_secret_env(task, S3_SECRET, S3_SECRET_ENV)
    task.set_env_variable(ENDPOINT_ENV, endpoint)
    return task
