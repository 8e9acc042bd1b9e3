"""NT-Xent, the SimCLR loss (Chen et al., 2020), as cross-entropy over similarity logits.

For 2N projections (two views of N images) each one's positive is the other view of its image
and its 2N−2 negatives are every other projection in the batch. Written as ``cross_entropy`` on
the cosine-similarity logits with the self-similarity masked to −inf, the log-sum-exp is
computed stably by PyTorch; the textbook ``-log(exp(s+)/Σ exp(s))`` form overflows for small
temperatures.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F


def nt_xent(z1: torch.Tensor, z2: torch.Tensor, temperature: float = 0.5) -> torch.Tensor:
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
    z = F.normalize(torch.cat([z1, z2]).float(), dim=1)  # [2N, D]
    logits = z @ z.T / temperature  # [2N, 2N]
    logits.fill_diagonal_(float("-inf"))
    targets = torch.cat([torch.arange(n, 2 * n), torch.arange(0, n)]).to(z.device)
    return F.cross_entropy(logits, targets)
