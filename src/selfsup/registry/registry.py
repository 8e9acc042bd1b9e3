"""The model registry, kept in an artifact store (a local directory or ``s3://bucket/prefix``).

Layout (beside the store's ``blobs/`` and ``artifacts/``)::

    artifacts/models/<id>/manifest.json   the model directory, pushed through the store
    registry/models/<id>.json             its record: lineage + evaluation metrics
    registry/models/<id>.card.md          its model card (selfsup.serve.card), from the record
    registry/log/<seq>.json               every register/promote/keep/rollback/failed, in order

A model id is ``m-`` + 16 hex digits of the sha256 of its weights files' sha256s and its params
(:func:`model_id`): registering the same weights trained with the same params is the same model,
whatever the timings in ``metrics.json`` or ``loss.csv``.

The log is the registry's only mutable state, and it is append-only: entry ``seq`` is created
once (:func:`selfsup.registry.log.create_once`), so concurrent writers (the retrain CronJob, the
forget pipeline, people) are put in one total order and no decision is lost. Each entry carries
the aliases after it (``{"champion", "challenger", "history"}``, ``history`` being the champion
stack that ``rollback`` pops), computed from the entry before it; a writer that loses the race
for a slot re-reads the log and decides again against the new state (a promotion is re-gated
against the new champion), so what it reports is exactly what the log holds at its ``seq``.

Registries written before the log (``registry/aliases.json``, ``registry/decisions/``) are read
as its starting state and first decisions; nothing writes those files any more.
"""

from __future__ import annotations

import datetime as _dt
import hashlib
import json
import random
import time
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

from selfsup.config import GateParams
from selfsup.errors import SelfsupError
from selfsup.registry.gate import gate
from selfsup.registry.log import create_once, read_slot, slot_key, slots
from selfsup.serve.card import CARD_SUFFIX, card_from_record
from selfsup.store import read_manifest
from selfsup.store.artifacts import ArtifactStore

LEGACY_ALIASES_KEY = "registry/aliases.json"
LEGACY_DECISIONS = "registry/decisions"
ALIASES = ("champion", "challenger")
# Files of a model directory that hold its weights (``encoder.pt``; every tensor file is a .pt).
WEIGHTS_SUFFIXES = (".pt",)
# How often one append may lose the race for a slot before the writer gives up and says so.
MAX_APPEND_ATTEMPTS = 50

Aliases = dict[str, Any]
# Given the aliases before an entry: the entry's fields and the aliases after it.
Decide = Callable[[Aliases], tuple[dict[str, Any], Aliases]]


class RegistryError(SelfsupError):
    """An unknown model or alias, or an action the registry's state does not allow."""


def _now() -> str:
    return _dt.datetime.now(_dt.UTC).isoformat(timespec="microseconds")


def _dumps(obj: Any) -> bytes:
    return (json.dumps(obj, indent=2, sort_keys=True) + "\n").encode()


def _empty() -> Aliases:
    return {"champion": None, "challenger": None, "history": []}


def card_key(model: str) -> str:
    """Where the model card of ``model`` is kept: beside its record."""
    return f"registry/models/{model}{CARD_SUFFIX}"


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
    def _legacy_aliases(self) -> Aliases:
        """The state a registry from before the log left (its start), or an empty one."""
        if not self.objects.exists(LEGACY_ALIASES_KEY):
            return _empty()
        aliases: Aliases = {**_empty(), **json.loads(self.objects.get_bytes(LEGACY_ALIASES_KEY))}
        return aliases

    def _entry(self, seq: int) -> dict[str, Any]:
        entry: dict[str, Any] = json.loads(read_slot(self.objects, seq))
        return entry

    def _head(self) -> tuple[int, Aliases]:
        """The last log entry's ``seq`` (0 for an empty log) and the aliases after it."""
        present = slots(self.objects)
        if not present:
            return 0, self._legacy_aliases()
        last = present[-1]
        aliases: Aliases = self._entry(last)["aliases"]
        return last, aliases

    def aliases(self) -> Aliases:
        """``champion``, ``challenger`` and ``history`` (the champion stack), as of the log's
        last entry."""
        return self._head()[1]

    def log(self) -> list[dict[str, Any]]:
        """Every log entry (registrations included), in ``seq`` order."""
        return [self._entry(seq) for seq in slots(self.objects)]

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
        model = self.resolve(ref)
        record: dict[str, Any] = json.loads(self.objects.get_bytes(f"registry/models/{model}.json"))
        return record

    def decisions(self) -> list[dict[str, Any]]:
        """Every promote/keep/rollback/failed decision, oldest first (a pre-log registry's
        decisions, then the log's; registrations are not decisions)."""
        legacy = sorted(self.objects.list_keys(LEGACY_DECISIONS))
        old = [json.loads(self.objects.get_bytes(k)) for k in legacy]
        return old + [e for e in self.log() if e["action"] != "register"]

    def _append(self, decide: Decide) -> dict[str, Any]:
        """Append the entry ``decide`` makes from the current aliases, as log entry last + 1.

        When another writer took that slot first, re-read and decide again (the decision may
        change: it is made against the state it follows). ``decide`` may raise RegistryError
        (nothing is written). Returns the entry as logged; ``attempts`` says how many tries
        it took."""
        for attempt in range(1, MAX_APPEND_ATTEMPTS + 1):
            seq, before = self._head()
            fields, after = decide(before)
            entry = {
                "time": _now(),
                **fields,
                "seq": seq + 1,
                "aliases": after,
                "attempts": attempt,
                "claim": uuid.uuid4().hex,  # makes the bytes unique: create_once compares them
            }
            if create_once(self.objects, slot_key(seq + 1), _dumps(entry)):
                return entry
            time.sleep(random.uniform(0.0, 0.01 * attempt))  # de-synchronise the racers
        raise RegistryError(
            f"{self.store.describe()}: other writers took every log slot this writer tried "
            f"({MAX_APPEND_ATTEMPTS} attempts); nothing was recorded, try again"
        )

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
        record = {
            "id": new_id,
            "artifact": artifact,
            "registered": _now(),
            "metrics": metrics,
            "lineage": {
                "model_content_hash": manifest["content_hash"],
                "data_content_hash": manifest.get("data"),
                "params": manifest.get("params"),
                "parent": self.aliases().get("champion"),
                **lineage,
            },
        }
        # The record first: a log entry never names a model without one. Its model card beside it.
        self.objects.put_bytes(f"registry/models/{new_id}.json", _dumps(record))
        self.objects.put_bytes(card_key(new_id), card_from_record(record, manifest).encode())

        def decide(before: Aliases) -> tuple[dict[str, Any], Aliases]:
            fields = {"action": "register", "model": new_id, "reason": "registered"}
            return fields, {**before, "challenger": new_id}

        self._append(decide)
        return record

    def promote(
        self, ref: str, params: GateParams, force: str | None = None, apply: bool = True
    ) -> dict[str, Any]:
        """Run the gate for ``ref`` against the champion; ``force`` (a reason) skips the gate.
        ``apply=False`` records the gate's verdict (``gate_admits``) and changes no alias."""
        model = self.resolve(ref)
        model_metrics = self.record(model)["metrics"]

        def decide(before: Aliases) -> tuple[dict[str, Any], Aliases]:
            champion = before.get("champion")
            if champion == model:
                kept = {"action": "keep", "model": model, "reason": "already the champion"}
                return {**kept, "champion_before": champion, "champion_after": champion}, before
            if force:
                promote, reason, gate_info = True, f"forced: {force}", None
            else:
                champ_metrics = self.record(champion)["metrics"] if champion else None
                result = gate(model_metrics, champ_metrics, params)
                promote, reason = result.promote, result.reason
                gate_info = {"knn_margin": params.knn_margin, "rankme_margin": params.rankme_margin}
            after = dict(before)
            admitted = promote
            if not apply:
                promote = False
                verdict = "would promote" if admitted else "would keep the champion"
                reason = f"{verdict} ({reason}); not applied: `selfsup registry promote {model}`"
            if promote:
                after["history"] = [*before.get("history", []), model]
                after["champion"] = model
                if before.get("challenger") == model:
                    after["challenger"] = None
            fields: dict[str, Any] = {
                "action": "promote" if promote else "keep",
                "model": model,
                "reason": reason,
                "champion_before": champion,
                "champion_after": after["champion"],
                "gate": gate_info,
                "gate_admits": admitted,
            }
            return fields, after

        return self._append(decide)

    def reject(self, ref: str, reason: str, **extra: Any) -> dict[str, Any]:
        """Record that ``ref`` stays out of ``champion`` (it remains a registered challenger)."""
        model = self.resolve(ref)

        def decide(before: Aliases) -> tuple[dict[str, Any], Aliases]:
            champion = before.get("champion")
            fields = {"action": "keep", "model": model, "reason": reason, **extra}
            return {**fields, "champion_before": champion, "champion_after": champion}, before

        return self._append(decide)

    def record_failure(self, run: str, reason: str) -> dict[str, Any]:
        """Record that pipeline run ``run`` failed before it could decide (no model changes):
        a broken schedule shows in the decision history, not only in the KFP UI."""

        def decide(before: Aliases) -> tuple[dict[str, Any], Aliases]:
            champion = before.get("champion")
            fields = {"action": "failed", "model": "-", "reason": reason, "run": run}
            return {**fields, "champion_before": champion, "champion_after": champion}, before

        return self._append(decide)

    def rollback(self, reason: str) -> dict[str, Any]:
        """Make the previous champion champion again (the current one is demoted)."""

        def decide(before: Aliases) -> tuple[dict[str, Any], Aliases]:
            history = list(before.get("history", []))
            if len(history) < 2:
                raise RegistryError("nothing to roll back to: fewer than two champions so far")
            demoted = history.pop()
            fields = {
                "action": "rollback",
                "model": history[-1],
                "reason": reason,
                "champion_before": demoted,
                "champion_after": history[-1],
            }
            return fields, {**before, "history": history, "champion": history[-1]}

        return self._append(decide)

    def card(self, ref: str) -> str:
        """The model card (Markdown) kept beside the record of ``ref``."""
        return self.objects.get_bytes(card_key(self.resolve(ref))).decode()

    def pull(self, ref: str, dest: Path) -> dict[str, Any]:
        """Download a model (by id or alias) into ``dest``, verified."""
        return self.store.pull(self.record(ref)["artifact"], dest)
