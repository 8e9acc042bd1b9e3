"""A malicious pickle in place of a tensor file never runs and is one IntegrityError line."""

from __future__ import annotations

import json
import pickle
from pathlib import Path

import pytest
import torch

from selfsup.config import PretrainParams
from selfsup.errors import IntegrityError
from selfsup.models.artifact import WEIGHTS_NAME, load_encoder, save_encoder
from selfsup.models.encoders import build_encoder
from selfsup.store.manifest import MANIFEST_NAME, write_manifest
from selfsup.store.tensors import load_tensors


class _WritesAFile:
    """Unpickling this calls ``Path.touch(marker)``: code that must never run."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self) -> tuple[object, tuple[str]]:
        return (Path.touch, (str(self.marker),))  # type: ignore[return-value]


def test_a_code_carrying_pickle_is_refused_without_running(tmp_path: Path) -> None:
    marker, evil = tmp_path / "ran", tmp_path / "evil.pt"
    torch.save({"weight": _WritesAFile(marker)}, evil)
    with pytest.raises(IntegrityError, match=r"evil\.pt was refused: not a plain tensor file"):
        load_tensors(evil)
    assert not marker.exists()
    # ... and a plain pickle (not a torch zip) the same way
    evil.write_bytes(pickle.dumps(_WritesAFile(marker)))
    with pytest.raises(IntegrityError, match="was refused"):
        load_tensors(evil)
    assert not marker.exists()


def test_truncated_and_missing_tensor_files_are_integrity_errors(tmp_path: Path) -> None:
    good = tmp_path / "t.pt"
    torch.save({"x": torch.arange(1000)}, good)
    assert torch.equal(load_tensors(good)["x"], torch.arange(1000))
    good.write_bytes(good.read_bytes()[:200])
    with pytest.raises(IntegrityError, match="or it is corrupt"):
        load_tensors(good)
    with pytest.raises(IntegrityError, match="is missing"):
        load_tensors(tmp_path / "absent.pt")


def test_an_encoder_whose_manifest_was_forged_too_is_still_refused(tmp_path: Path) -> None:
    """The checksums catch a swapped file; an attacker who rewrites the manifest as well is
    stopped by weights_only."""
    params = PretrainParams(encoder="convnet")
    save_encoder(tmp_path / "m", build_encoder(params), params, metrics={})
    manifest = json.loads((tmp_path / "m" / MANIFEST_NAME).read_text())
    marker = tmp_path / "ran"
    torch.save({"weight": _WritesAFile(marker)}, tmp_path / "m" / WEIGHTS_NAME)
    own = {"kind", "selfsup_version", "created", "params", "files", "content_hash"}
    extra = {k: v for k, v in manifest.items() if k not in own}
    write_manifest(tmp_path / "m", manifest["kind"], manifest["params"], **extra)
    with pytest.raises(IntegrityError, match="was refused"):
        load_encoder(tmp_path / "m")
    assert not marker.exists()
