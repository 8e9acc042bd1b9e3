"""Registry over a local store: lineage, aliases, gate decisions, rollback, verified pull, model
ids from weights + params, and the decision log under concurrent writers."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any

import pytest
import torch
from fixtures.registry_writers import check_told_the_truth, race, register_models

from selfsup.config import PretrainParams, RegistryParams
from selfsup.models.artifact import load_encoder, save_encoder
from selfsup.models.encoders import build_encoder
from selfsup.registry import registry as registry_module
from selfsup.registry.log import create_once, slot_key
from selfsup.registry.registry import Registry, RegistryError, model_id
from selfsup.store import sha256_file
from selfsup.store.artifacts import ArtifactStore
from selfsup.store.backend import LocalBackend

PARAMS = RegistryParams(knn_margin=0.01, rankme_margin=0.0)
TINY = PretrainParams(
    convnet_width=8, projector_hidden=16, projector_out=8, epochs=1, warmup_epochs=0
)


def model_dir(
    root: Path, seed: int, params: PretrainParams = TINY, extra: dict[str, str] | None = None
) -> Path:
    """A model directory with weights from ``seed``; ``extra`` files (metrics.json, loss.csv)
    are written first, so the manifest lists them as a trained model's does."""
    root.mkdir(parents=True, exist_ok=True)
    for name, text in (extra or {}).items():
        (root / name).write_text(text)
    torch.manual_seed(seed)
    save_encoder(root, build_encoder(params), params, data="d" * 64)
    return root


def manifest_of(root: Path) -> dict[str, Any]:
    manifest: dict[str, Any] = json.loads((root / "manifest.json").read_text())
    return manifest


def evaluation(rankme: float, knn: float) -> dict[str, Any]:
    return {"labeled": True, "trained": {"rankme": rankme, "knn_top1": knn}}


@pytest.fixture
def registry(tmp_path: Path) -> Registry:
    return Registry(ArtifactStore(LocalBackend(tmp_path / "registry")))


def test_register_records_lineage_and_makes_a_challenger(
    registry: Registry, tmp_path: Path
) -> None:
    record = registry.register(model_dir(tmp_path / "m1", 1), evaluation(5, 0.5), {"code": "abc"})
    manifest = manifest_of(tmp_path / "m1")
    identity = {
        "params": manifest["params"],
        "weights": {"encoder.pt": manifest["files"]["encoder.pt"]},
    }
    digest = hashlib.sha256(json.dumps(identity, sort_keys=True).encode()).hexdigest()
    assert record["id"] == "m-" + digest[:16]
    lineage = record["lineage"]
    assert lineage["data_content_hash"] == "d" * 64 and lineage["parent"] is None
    assert lineage["params"] == manifest["params"] and lineage["code"] == "abc"
    assert registry.aliases()["challenger"] == record["id"]
    assert registry.record("challenger") == record == registry.record(record["id"])


def test_gate_promotes_keeps_and_rollback_restores(registry: Registry, tmp_path: Path) -> None:
    first = registry.register(model_dir(tmp_path / "m1", 1), evaluation(5, 0.50), {})["id"]
    assert registry.promote(first, PARAMS)["action"] == "promote"
    worse = registry.register(model_dir(tmp_path / "m2", 2), evaluation(6, 0.505), {})
    assert worse["lineage"]["parent"] == first
    kept = registry.promote(worse["id"], PARAMS)
    assert kept["action"] == "keep" and "knn_top1" in kept["reason"]
    assert registry.aliases()["champion"] == first
    better = registry.register(model_dir(tmp_path / "m3", 3), evaluation(6, 0.60), {})["id"]
    assert registry.promote("challenger", PARAMS)["action"] == "promote"
    assert registry.aliases()["champion"] == better
    back = registry.rollback("regression seen in production")
    assert back["model"] == first and back["champion_before"] == better
    assert registry.aliases()["champion"] == first
    actions = [d["action"] for d in registry.decisions()]
    assert actions == ["promote", "keep", "promote", "rollback"]
    assert registry.decisions()[-1]["reason"] == "regression seen in production"
    forced = registry.promote(worse["id"], PARAMS, force="manual override")
    assert forced["action"] == "promote" and registry.aliases()["champion"] == worse["id"]


def test_an_unapplied_gate_records_its_verdict_and_changes_no_alias(
    registry: Registry, tmp_path: Path
) -> None:
    """What `dvc repro` / `dvc exp run` do (register --no-promote): the verdict is logged, the
    champion stays, and an explicit promote then applies the same gate."""
    first = registry.register(model_dir(tmp_path / "m1", 1), evaluation(5, 0.50), {})["id"]
    registry.promote(first, PARAMS)
    better = registry.register(model_dir(tmp_path / "m2", 2), evaluation(6, 0.60), {})["id"]
    before = registry.aliases()
    verdict = registry.promote(better, PARAMS, apply=False)
    assert verdict["action"] == "keep" and verdict["gate_admits"] is True
    assert f"selfsup registry promote {better}" in verdict["reason"]
    assert registry.aliases() == before and before["champion"] == first
    worse = registry.register(model_dir(tmp_path / "m3", 3), evaluation(6, 0.40), {})["id"]
    assert registry.promote(worse, PARAMS, apply=False)["gate_admits"] is False
    assert registry.promote(better, PARAMS)["action"] == "promote"
    assert registry.aliases()["champion"] == better


def test_pull_returns_the_registered_weights(registry: Registry, tmp_path: Path) -> None:
    src = model_dir(tmp_path / "m1", 1)
    model_id = registry.register(src, evaluation(5, 0.5), {})["id"]
    registry.promote(model_id, PARAMS)
    registry.pull("champion", tmp_path / "back")
    original, _ = load_encoder(src)
    loaded, _ = load_encoder(tmp_path / "back")
    for (name, a), (_, b) in zip(
        original.state_dict().items(), loaded.state_dict().items(), strict=True
    ):
        assert torch.equal(a, b), name


def test_errors_name_the_problem(registry: Registry, tmp_path: Path) -> None:
    with pytest.raises(RegistryError, match="no model is champion"):
        registry.record("champion")
    with pytest.raises(RegistryError, match="no model 'm-x'"):
        registry.record("m-x")
    model_id = registry.register(model_dir(tmp_path / "m1", 1), evaluation(5, 0.5), {})["id"]
    registry.promote(model_id, PARAMS)
    with pytest.raises(RegistryError, match="nothing to roll back"):
        registry.rollback("why")


def test_model_id_comes_from_weights_and_params_not_timings(tmp_path: Path) -> None:
    run1 = {"metrics.json": '{"wall_seconds": 12.5}', "loss.csv": "epoch,loss\n1,0.9\n"}
    run2 = {"metrics.json": '{"wall_seconds": 13.1}', "loss.csv": "epoch,loss\n1,0.8\n"}
    a = manifest_of(model_dir(tmp_path / "a", 1, extra=run1))
    b = manifest_of(model_dir(tmp_path / "b", 1, extra=run2))
    assert a["files"]["encoder.pt"] == b["files"]["encoder.pt"], "same seed, same weights"
    assert a["content_hash"] != b["content_hash"], "the manifests differ (timings)"
    assert model_id(a) == model_id(b)
    other_weights = manifest_of(model_dir(tmp_path / "c", 2, extra=run1))
    assert model_id(other_weights) != model_id(a)
    other_params = TINY.model_copy(update={"epochs": 2})  # same architecture, same weights
    d = manifest_of(model_dir(tmp_path / "d", 1, params=other_params, extra=run1))
    assert d["files"]["encoder.pt"] == a["files"]["encoder.pt"]
    assert model_id(d) != model_id(a)
    assert sha256_file(tmp_path / "a/encoder.pt") == a["files"]["encoder.pt"]


def test_registering_the_same_weights_again_is_the_same_model(
    registry: Registry, tmp_path: Path
) -> None:
    first = registry.register(
        model_dir(tmp_path / "a", 1, extra={"metrics.json": '{"wall_seconds": 1}'}), {}, {}
    )
    again = registry.register(
        model_dir(tmp_path / "b", 1, extra={"metrics.json": '{"wall_seconds": 2}'}), {}, {}
    )
    assert first["id"] == again["id"] and registry.ids() == [first["id"]]


def test_the_log_holds_every_action_in_order(registry: Registry, tmp_path: Path) -> None:
    ids = register_models(registry, tmp_path, 3)
    told = [[registry.promote(ids[0], PARAMS, force="first")]]
    told[0].append(registry.promote(ids[1], PARAMS, force="second"))
    told[0].append(registry.promote(ids[1], PARAMS))  # already the champion: keep
    told[0].append(registry.rollback("bad in production"))
    told[0].append(registry.record_failure("run-9", "OOMKilled"))
    figures = check_told_the_truth(registry, told)
    assert [e["action"] for e in registry.log()] == [
        *["register"] * 3, "promote", "promote", "keep", "rollback", "failed",
    ]  # fmt: skip
    assert figures["decisions_in_log"] == 5 and registry.aliases()["history"] == [ids[0]]
    assert len(list((tmp_path / "registry").rglob(".*"))) == 0, "no temp file is left"


def test_a_slot_is_created_once(tmp_path: Path) -> None:
    backend = LocalBackend(tmp_path)
    assert create_once(backend, slot_key(1), b"first")
    assert not create_once(backend, slot_key(1), b"second")
    assert backend.get_bytes(slot_key(1)) == b"first"


def test_a_writer_that_loses_its_slot_decides_again_against_the_new_champion(
    registry: Registry, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Another writer promotes a better model between this writer's read and its write: the
    first try loses the slot, the gate runs again against the new champion and keeps it, and
    the writer is told that (not the promotion it computed first)."""
    first = registry.register(model_dir(tmp_path / "m1", 1), evaluation(5, 0.50), {})["id"]
    promoted = registry.promote(first, PARAMS)
    good = registry.register(model_dir(tmp_path / "m2", 2), evaluation(6, 0.56), {})["id"]
    best = registry.register(model_dir(tmp_path / "m3", 3), evaluation(6, 0.60), {})["id"]
    other = Registry(ArtifactStore(LocalBackend(tmp_path / "registry")))
    real = registry_module.create_once
    interloped: list[dict[str, Any]] = []

    def interloper_first(backend: Any, key: str, data: bytes) -> bool:
        if not interloped:
            with monkeypatch.context() as inner:
                inner.setattr(registry_module, "create_once", real)
                interloped.append(other.promote(best, PARAMS))
        return real(backend, key, data)

    monkeypatch.setattr(registry_module, "create_once", interloper_first)
    told = registry.promote(good, PARAMS)
    assert interloped[0]["action"] == "promote"
    assert told["action"] == "keep" and told["attempts"] == 2
    assert told["champion_before"] == best and "knn_top1" in told["reason"]
    assert registry.aliases()["champion"] == best
    check_told_the_truth(registry, [[promoted, told], interloped])


def test_two_processes_promoting_into_one_folder_lose_nothing(tmp_path: Path) -> None:
    root = tmp_path / "registry"
    registry = Registry(ArtifactStore(LocalBackend(root)))
    ids = register_models(registry, tmp_path / "models", 4)
    told = race(("local", str(root)), [ids[:2], ids[2:]], 25, tmp_path)
    figures = check_told_the_truth(registry, told)
    assert figures["decisions_made"] == figures["decisions_in_log"] == 50
    assert figures["promotions_in_history"] == 50
    before = registry.aliases()["history"]
    back = registry.rollback("follows the full history")
    assert back["model"] == before[-2] and registry.aliases()["history"] == before[:-1]


def test_a_registry_from_before_the_log_is_its_starting_state(
    registry: Registry, tmp_path: Path
) -> None:
    """Old registries kept ``aliases.json`` and ``decisions/``: the log starts from them."""
    ids = register_models(registry, tmp_path, 2)
    (tmp_path / "registry/registry/log").rename(tmp_path / "log-of-the-registrations")
    legacy = {"champion": ids[0], "challenger": ids[1], "history": [ids[0]]}
    objects = registry.objects
    objects.put_bytes("registry/aliases.json", json.dumps(legacy).encode())
    old = {"action": "promote", "model": ids[0], "reason": "before the log"}
    objects.put_bytes("registry/decisions/2024-01-01T000000-x.json", json.dumps(old).encode())
    assert registry.aliases() == legacy
    promoted = registry.promote(ids[1], PARAMS, force="after the log")
    assert promoted["seq"] == 1 and promoted["champion_before"] == ids[0]
    assert registry.aliases()["history"] == [ids[0], ids[1]]
    assert registry.decisions() == [old, promoted]
    assert registry.rollback("back")["model"] == ids[0]
