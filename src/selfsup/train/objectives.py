"""Which loss each ``pretrain.method`` puts on a batch of two views, and on a mined-pair batch.

Kept apart from the training loop so that the loop stays one code path for every method: it
embeds a batch of views and asks :func:`view_loss`; methods that also train on mined pairs add
their mined term (the triplet loss, or GroCo with graph positives).
"""

from __future__ import annotations

import torch

from selfsup.config import PretrainParams
from selfsup.losses import nt_xent
from selfsup.losses.groco import groco_loss, same_image_mask

MINED_METHODS = ("triplet", "simclr+triplet", "groco+mined")
"""Methods that read a mined dataset (``triplet``: only that; the others: ``--pairs``)."""

MIXED_METHODS = ("simclr+triplet", "groco+mined")
"""Methods that add a mined-pair term to the loss of a batch of image views."""


def view_loss(z1: torch.Tensor, z2: torch.Tensor, params: PretrainParams) -> torch.Tensor:
    """Loss of projections ``z1``, ``z2`` ``[N, D]`` of two views of the same N images."""
    if params.method in ("groco", "groco+mined"):
        return groco_loss(
            torch.cat([z1, z2]),
            same_image_mask(len(z1), device=z1.device),
            k=params.groco_k,
            steepness=params.groco_steepness,
            max_positives=params.groco_max_positives,
        )
    top_k = params.groco_k if params.method == "simclr-topk" else None
    return nt_xent(z1, z2, temperature=params.temperature, top_k=top_k)


def mined_groco_loss(
    za: torch.Tensor,
    zb: torch.Tensor,
    positives: torch.Tensor,
    views: torch.Tensor,
    params: PretrainParams,
) -> torch.Tensor:
    """GroCo of the 2B ends of B mined pairs; ``positives`` ``[2B, 2B]`` marks graph neighbours.

    Each anchor's group is its pair partner plus every other batch item on the same node or one
    mined edge away (:func:`selfsup.train.pairs.graph_positive_mask`); its negative candidates are
    the other mined items and the step's image ``views`` ``[2N, D]`` (a mined graph can link most
    of a small batch, which would leave nothing to sort against).
    """
    mined = torch.cat([za, zb])
    m, n = len(mined), len(views)
    mask = torch.zeros(m + n, m + n, dtype=torch.bool, device=mined.device)
    mask[:m, :m] = positives.to(mined.device)
    return params.groco_mined_weight * groco_loss(
        torch.cat([mined, views]),
        mask,
        k=params.groco_k,
        steepness=params.groco_steepness,
        max_positives=params.groco_max_positives,
        anchors=m,
    )
