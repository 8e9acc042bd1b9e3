"""NT-Xent, the SimCLR loss (Chen et al., 2020), as cross-entropy over similarity logits.

For 2N projections (two views of N images) each one's positive is the other view of its image
and its 2N−2 negatives are every other projection in the batch. Written as ``cross_entropy`` on
the cosine-similarity logits with the self-similarity masked to −inf, the log-sum-exp is
computed stably by PyTorch; the textbook ``-log(exp(s+)/Σ exp(s))`` form overflows for small
temperatures.

``top_k`` restricts each anchor's negatives to its k most similar ones and stops the gradient on
the non-anchor side: the control that isolates GroCo's sorting from its hard-negative selection
(same candidates, same stop-gradient, softmax instead of a sort).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F


def nt_xent(
    z1: torch.Tensor, z2: torch.Tensor, temperature: float = 0.5, top_k: int | None = None
) -> torch.Tensor:
    """Mean NT-Xent over the 2N anchors of two views ``z1``, ``z2`` (each [N, D]).

    Invariant to the scale of ``z`` (projections are L2-normalised). When all 2N embeddings are
    identical the loss is exactly log(2N − 1): every candidate is equally likely.
    """
    if z1.ndim != 2 or z1.shape != z2.shape:
        raise ValueError(f"z1 and z2 must both be [N, D], got {tuple(z1.shape)}, {tuple(z2.shape)}")
    if temperature <= 0:
        raise ValueError(f"temperature must be > 0, got {temperature}")
    n = z1.shape[0]
    if n < 2:
        raise ValueError("NT-Xent needs >= 2 images per batch (negatives come from the batch)")
    if top_k is not None and not 1 <= top_k <= 2 * n - 2:
        raise ValueError(f"top_k must be in [1, {2 * n - 2}] for N={n}, got {top_k}")
    z = F.normalize(torch.cat([z1, z2]).float(), dim=1)  # [2N, D]
    targets = torch.cat([torch.arange(n, 2 * n), torch.arange(0, n)]).to(z.device)
    if top_k is None:
        logits = z @ z.T / temperature  # [2N, 2N]
        logits.fill_diagonal_(float("-inf"))
        return F.cross_entropy(logits, targets)
    logits = z @ z.detach().T / temperature
    logits.fill_diagonal_(float("-inf"))
    rows = torch.arange(2 * n, device=z.device)
    negatives = logits.detach().clone()
    negatives[rows, targets] = float("-inf")
    keep = torch.zeros_like(negatives, dtype=torch.bool)
    keep.scatter_(1, negatives.topk(top_k, dim=1).indices, True)
    keep[rows, targets] = True
    return F.cross_entropy(logits.masked_fill(~keep, float("-inf")), targets)
