"""The linear head (features → class logits) as an artifact, and its supervised fine-tune.

The repo's encoders are label-free; a classifier is the encoder plus a linear head. A head
directory holds ``head.pt`` (``{"weight": [C, D], "bias": [C]}``) and a ``linear-head``
manifest naming the encoder it was fitted on. When a deletion request comes without a head, the
"original model's" head is fitted here with the repo's linear probe
(:func:`selfsup.evaluate.linear_probe.fit_linear_probe`) on the full (labelled) training split,
its standardisation folded into the weights, so head and probe are one implementation.
"""

from __future__ import annotations

import io
from pathlib import Path
from typing import Any

import torch
from torch import nn
from torch.nn import functional as F

from selfsup.evaluate.linear_probe import LinearProbe
from selfsup.store import atomic_write_bytes, read_manifest, write_manifest
from selfsup.store.tensors import load_tensors

HEAD_KIND = "linear-head"
HEAD_WEIGHTS = "head.pt"


def head_from_probe(probe: LinearProbe) -> nn.Linear:
    """``nn.Linear`` equal to ``probe.logits``: ``W (x − μ)/σ + b = (W/σ) x + (b − W μ/σ)``."""
    weight = (probe.weight / probe.std).float()
    bias = (probe.bias - (probe.weight * (probe.mean / probe.std)).sum(dim=1)).float()
    head = nn.Linear(weight.shape[1], weight.shape[0])
    with torch.no_grad():
        head.weight.copy_(weight)
        head.bias.copy_(bias)
    return head


def save_head(root: Path, head: nn.Linear, **fields: Any) -> dict[str, Any]:
    """Write ``head.pt`` and the manifest (last) into ``root``."""
    buffer = io.BytesIO()
    torch.save({"weight": head.weight.detach().cpu(), "bias": head.bias.detach().cpu()}, buffer)
    atomic_write_bytes(Path(root) / HEAD_WEIGHTS, buffer.getvalue())
    return write_manifest(
        Path(root),
        HEAD_KIND,
        {},
        in_dim=head.in_features,
        classes=head.out_features,
        **fields,
    )


def load_head(root: Path) -> tuple[nn.Linear, dict[str, Any]]:
    """The head in ``root`` (checksums verified) and its manifest."""
    manifest = read_manifest(Path(root), kind=HEAD_KIND)
    state = load_tensors(Path(root) / HEAD_WEIGHTS)
    head = nn.Linear(int(manifest["in_dim"]), int(manifest["classes"]))
    head.load_state_dict(state)
    return head, manifest


def finetune_head(
    head: nn.Linear,
    features: torch.Tensor,
    labels: torch.Tensor,
    *,
    epochs: int,
    lr: float,
    batch_size: int,
    generator: torch.Generator,
) -> nn.Linear:
    """A copy of ``head`` after ``epochs`` of Adam on cross-entropy over frozen ``features``.

    LAF's "+R" step: the only place labels are used, and only those of the remaining data.
    """
    tuned = nn.Linear(head.in_features, head.out_features).to(features.device)
    tuned.load_state_dict(head.state_dict())
    optimizer = torch.optim.Adam(tuned.parameters(), lr=lr)
    for _ in range(epochs):
        order = torch.randperm(len(features), generator=generator).to(features.device)
        for start in range(0, len(features), batch_size):
            idx = order[start : start + batch_size]
            loss = F.cross_entropy(tuned(features[idx]), labels[idx])
            optimizer.zero_grad(set_to_none=True)
            loss.backward()  # type: ignore[no-untyped-call]
            optimizer.step()
    return tuned.requires_grad_(False)
