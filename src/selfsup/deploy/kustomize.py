"""A pure-Python renderer for the subset of kustomize that ``k8s/`` uses.

Supported: ``resources`` (files and directories holding a kustomization), ``namespace``,
``labels`` (pairs on ``metadata.labels``, no selectors), ``configMapGenerator`` with ``files``
and ``generatorOptions.disableNameSuffixHash: true``, ``images`` (``newName``/``newTag``) and
``patches`` as JSON 6902 operation lists with a kind/name target. Anything else is an error
naming the key, so the renderer can never silently disagree with kubectl about a feature it
does not know.
"""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import yaml

from selfsup.errors import ConfigError

Object = dict[str, Any]

_KNOWN = {
    "apiVersion", "kind", "resources", "namespace", "labels", "configMapGenerator",
    "generatorOptions", "images", "patches",
}  # fmt: skip
# Kinds without a namespace among those the overlays use.
_CLUSTER_SCOPED = {"Namespace", "ClusterRole", "ClusterRoleBinding", "PersistentVolume"}


def _load_docs(path: Path) -> list[Object]:
    return [doc for doc in yaml.safe_load_all(path.read_text()) if doc]


def _kustomization(root: Path) -> Object:
    path = root / "kustomization.yaml"
    if not path.is_file():
        raise ConfigError(f"{root} has no kustomization.yaml")
    spec = yaml.safe_load(path.read_text()) or {}
    unknown = sorted(set(spec) - _KNOWN)
    if unknown:
        raise ConfigError(f"{path}: kustomize keys {unknown} are not supported by this renderer")
    return dict(spec)


def _pointer(path: str) -> list[str]:
    return [p.replace("~1", "/").replace("~0", "~") for p in path.lstrip("/").split("/")]


def _apply_op(obj: Object, op: Object) -> None:
    *parents, last = _pointer(op["path"])
    node: Any = obj
    for part in parents:
        node = node[int(part)] if isinstance(node, list) else node[part]
    kind = op["op"]
    if kind not in ("add", "replace", "remove"):
        raise ConfigError(f"JSON patch op {kind!r} is not supported by this renderer")
    if isinstance(node, list):
        if kind == "add":
            node.insert(len(node) if last == "-" else int(last), op["value"])
        elif kind == "replace":
            node[int(last)] = op["value"]
        else:
            del node[int(last)]
    elif kind == "remove":
        del node[last]
    else:
        if kind == "replace" and last not in node:
            raise ConfigError(f"JSON patch replaces missing path {op['path']}")
        node[last] = op["value"]


def _matches(obj: Object, target: Object) -> bool:
    return all(
        target.get(field) in (None, value)
        for field, value in (("kind", obj.get("kind")), ("name", obj["metadata"].get("name")))
    )


def _containers(node: Any) -> list[Object]:
    """Every entry of a ``containers``/``initContainers`` list anywhere in ``node`` — kustomize's
    images transformer finds them at any depth (a CronJob's, a TrainingRuntime's JobSet's)."""
    found: list[Object] = []
    if isinstance(node, dict):
        for name, value in node.items():
            if name in ("containers", "initContainers") and isinstance(value, list):
                found += [c for c in value if isinstance(c, dict)]
            else:
                found += _containers(value)
    elif isinstance(node, list):
        for item in node:
            found += _containers(item)
    return found


def _set_image(obj: Object, image: Object) -> None:
    for container in _containers(obj):
        ref = container.get("image", "")
        name = ref.split("@")[0].rsplit(":", 1)[0] if ":" in ref.split("/")[-1] else ref
        if name == image["name"]:
            new = image.get("newName", name)
            tag = image.get("newTag")
            container["image"] = f"{new}:{tag}" if tag else new


def render(root: Path) -> list[Object]:
    """The objects ``kubectl kustomize root`` prints (same content; order not guaranteed)."""
    root = Path(root)
    spec = _kustomization(root)
    objects: list[Object] = []
    for entry in spec.get("resources", []):
        path = root / entry
        objects.extend(render(path) if path.is_dir() else _load_docs(path))
    options = spec.get("generatorOptions", {})
    for generator in spec.get("configMapGenerator", []):
        if not options.get("disableNameSuffixHash"):
            raise ConfigError(f"{root}: set generatorOptions.disableNameSuffixHash: true")
        data = {}
        for item in generator.get("files", []):
            key, _, name = item.partition("=")
            data[key if name else Path(key).name] = (root / (name or key)).read_text()
        objects.append(
            {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": generator["name"]},
             "data": data}
        )  # fmt: skip
    objects = copy.deepcopy(objects)
    for obj in objects:
        meta = obj.setdefault("metadata", {})
        if "namespace" in spec and obj["kind"] not in _CLUSTER_SCOPED:
            meta["namespace"] = spec["namespace"]
            for subject in obj.get("subjects", []):
                if subject.get("kind") == "ServiceAccount":
                    subject["namespace"] = spec["namespace"]
        for label in spec.get("labels", []):
            if label.get("includeSelectors") or label.get("includeTemplates"):
                raise ConfigError(f"{root}: labels on selectors/templates are not supported")
            meta.setdefault("labels", {}).update(label["pairs"])
        for image in spec.get("images", []):
            _set_image(obj, image)
    for patch in spec.get("patches", []):
        ops = yaml.safe_load(patch["patch"])
        hits = [obj for obj in objects if _matches(obj, patch["target"])]
        if not hits:
            raise ConfigError(f"{root}: patch target {patch['target']} matches nothing")
        for obj in hits:
            for op in ops:
                _apply_op(obj, op)
    return objects


def key(obj: Object) -> tuple[str, str, str]:
    """(kind, namespace, name): how kustomize identifies an object."""
    meta = obj.get("metadata", {})
    return obj["kind"], meta.get("namespace", ""), meta["name"]
