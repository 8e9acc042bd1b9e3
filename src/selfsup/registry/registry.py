"""The model registry, kept in an artifact store (a local directory or ``s3://bucket/prefix``).

Layout (beside the store's ``blobs/`` and ``artifacts/``)::

    artifacts/models/<id>/manifest.json   the model directory, pushed through the store
    registry/models/<id>.json             its record: lineage + evaluation metrics
    registry/aliases.json                 {"champion": id, "challenger": id, "history": [ids]}
    registry/decisions/<time>-<id>.json   every promote/keep/rollback with its reason

A model id is ``m-`` + 16 hex digits of the sha256 of its weights files' sha256s and its params
(:func:`model_id`): registering the same weights trained with the same params is the same model,
whatever the timings in ``metrics.json`` or ``loss.csv``. ``history`` is the champion stack:
``rollback`` pops it.
The registry assumes one writer at a time (a pipeline run); it does not lock.
"""

from __future__ import annotations

import datetime as _dt
import hashlib
import json
from pathlib import Path
from typing import Any

from selfsup.config import RegistryParams
from selfsup.errors import SelfsupError
from selfsup.registry.gate import gate
from selfsup.store import read_manifest
from selfsup.store.artifacts import ArtifactStore

ALIASES_KEY = "registry/aliases.json"
ALIASES = ("champion", "challenger")
# Files of a model directory that hold its weights (``encoder.pt``; every tensor file is a .pt).
WEIGHTS_SUFFIXES = (".pt",)


class RegistryError(SelfsupError):
    """An unknown model or alias, or an action the registry's state does not allow."""


def _now() -> str:
    return _dt.datetime.now(_dt.UTC).isoformat(timespec="microseconds")


def _dumps(obj: Any) -> bytes:
    return (json.dumps(obj, indent=2, sort_keys=True) + "\n").encode()


def model_id(manifest: dict[str, Any]) -> str:
    """The registry id of the model directory with this manifest: ``m-`` + 16 hex digits of the
    sha256 over its weights files (name -> sha256) and its params. Not the manifest's
    ``content_hash``: that covers ``metrics.json`` and ``loss.csv``, which hold timings, so
    bit-identical weights would get a new id on every run."""
    files: dict[str, str] = manifest.get("files", {})
    weights = {name: digest for name, digest in files.items() if name.endswith(WEIGHTS_SUFFIXES)}
    if not weights:
        raise RegistryError(f"the model's manifest lists no weights file ({WEIGHTS_SUFFIXES})")
    identity = {"params": manifest.get("params"), "weights": weights}
    return "m-" + hashlib.sha256(json.dumps(identity, sort_keys=True).encode()).hexdigest()[:16]


class Registry:
    def __init__(self, store: ArtifactStore) -> None:
        self.store = store
        self.objects = store.backend

    # --- state -----------------------------------------------------------------------------
    def aliases(self) -> dict[str, Any]:
        if not self.objects.exists(ALIASES_KEY):
            return {"champion": None, "challenger": None, "history": []}
        aliases: dict[str, Any] = json.loads(self.objects.get_bytes(ALIASES_KEY))
        return aliases

    def _set_aliases(self, aliases: dict[str, Any]) -> None:
        self.objects.put_bytes(ALIASES_KEY, _dumps(aliases))

    def ids(self) -> list[str]:
        keys = self.objects.list_keys("registry/models")
        return [Path(k).stem for k in keys if k.endswith(".json")]

    def resolve(self, ref: str) -> str:
        """A model id from an id or an alias (``champion``, ``challenger``)."""
        if ref in ALIASES:
            found = self.aliases().get(ref)
            if not found:
                raise RegistryError(f"no model is {ref} yet in {self.store.describe()}")
            return str(found)
        if not self.objects.exists(f"registry/models/{ref}.json"):
            raise RegistryError(f"no model {ref!r} in {self.store.describe()}")
        return ref

    def record(self, ref: str) -> dict[str, Any]:
        model_id = self.resolve(ref)
        record: dict[str, Any] = json.loads(
            self.objects.get_bytes(f"registry/models/{model_id}.json")
        )
        return record

    def decisions(self) -> list[dict[str, Any]]:
        keys = self.objects.list_keys("registry/decisions")
        return [json.loads(self.objects.get_bytes(k)) for k in sorted(keys)]

    def _decide(self, action: str, model_id: str, reason: str, **fields: Any) -> dict[str, Any]:
        decision = {"time": _now(), "action": action, "model": model_id, "reason": reason, **fields}
        stamp = decision["time"].replace(":", "").replace("+", "Z")
        self.objects.put_bytes(f"registry/decisions/{stamp}-{model_id}.json", _dumps(decision))
        return decision

    # --- actions ---------------------------------------------------------------------------
    def register(
        self, model_dir: Path, metrics: dict[str, Any], lineage: dict[str, Any]
    ) -> dict[str, Any]:
        """Push the model, record it with its lineage and metrics, make it ``challenger``."""
        from selfsup.models.artifact import MODEL_KIND  # imports torch: only when registering

        manifest = read_manifest(Path(model_dir), kind=MODEL_KIND)
        new_id = model_id(manifest)
        artifact = f"models/{new_id}"
        self.store.push(Path(model_dir), artifact)
        aliases = self.aliases()
        record = {
            "id": new_id,
            "artifact": artifact,
            "registered": _now(),
            "metrics": metrics,
            "lineage": {
                "model_content_hash": manifest["content_hash"],
                "data_content_hash": manifest.get("data"),
                "params": manifest.get("params"),
                "parent": aliases.get("champion"),
                **lineage,
            },
        }
        self.objects.put_bytes(f"registry/models/{new_id}.json", _dumps(record))
        aliases["challenger"] = new_id
        self._set_aliases(aliases)
        return record

    def promote(self, ref: str, params: RegistryParams, force: str | None = None) -> dict[str, Any]:
        """Run the gate for ``ref`` against the champion; ``force`` (a reason) skips the gate."""
        model_id = self.resolve(ref)
        aliases = self.aliases()
        champion = aliases.get("champion")
        if champion == model_id:
            return self._decide("keep", model_id, "already the champion", champion=champion)
        if force:
            promote, reason, gate_info = True, f"forced: {force}", None
        else:
            champ_metrics = self.record(champion)["metrics"] if champion else None
            result = gate(self.record(model_id)["metrics"], champ_metrics, params)
            promote, reason = result.promote, result.reason
            gate_info = {"knn_margin": params.knn_margin, "rankme_margin": params.rankme_margin}
        if promote:
            aliases["history"] = [*aliases.get("history", []), model_id]
            aliases["champion"] = model_id
            if aliases.get("challenger") == model_id:
                aliases["challenger"] = None
            self._set_aliases(aliases)
        return self._decide(
            "promote" if promote else "keep",
            model_id,
            reason,
            champion_before=champion,
            champion_after=aliases["champion"],
            gate=gate_info,
        )

    def reject(self, ref: str, reason: str, **fields: Any) -> dict[str, Any]:
        """Record that ``ref`` stays out of ``champion`` (it remains a registered challenger)."""
        model_id = self.resolve(ref)
        champion = self.aliases().get("champion")
        return self._decide(
            "keep", model_id, reason, champion_before=champion, champion_after=champion, **fields
        )

    def record_failure(self, run: str, reason: str) -> dict[str, Any]:
        """Record that pipeline run ``run`` failed before it could decide (no model changes):
        a broken schedule shows in the decision history, not only in the KFP UI."""
        champion = self.aliases().get("champion")
        return self._decide(
            "failed", "-", reason, run=run, champion_before=champion, champion_after=champion
        )

    def rollback(self, reason: str) -> dict[str, Any]:
        """Make the previous champion champion again (the current one is demoted)."""
        aliases = self.aliases()
        history = list(aliases.get("history", []))
        if len(history) < 2:
            raise RegistryError("nothing to roll back to: fewer than two champions so far")
        demoted = history.pop()
        aliases.update(history=history, champion=history[-1])
        self._set_aliases(aliases)
        return self._decide(
            "rollback", history[-1], reason, champion_before=demoted, champion_after=history[-1]
        )

    def pull(self, ref: str, dest: Path) -> dict[str, Any]:
        """Download a model (by id or alias) into ``dest``, verified."""
        return self.store.pull(self.record(ref)["artifact"], dest)
