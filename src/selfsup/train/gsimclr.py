"""G-SimCLR batching (Chakraborty et al., 2020): batches without two images of one pseudo-class.

SimCLR treats every other image in the batch as a negative, including images of the same class
("false negatives"). G-SimCLR guesses classes without labels: a denoising autoencoder is trained
on the images, its latent codes are clustered by k-means with K = batch size, and each batch
draws at most one image per cluster. The loss stays NT-Xent; only the batches change.

The sampler keeps the step count of a plain epoch (``len(images) // batch_size`` batches): each
batch picks ``batch_size`` distinct clusters (with probability proportional to their size) and
takes the next image of each cluster's own shuffled stream, reshuffling a cluster when it runs
out. With K = batch size every batch holds one image of every cluster, so images of small
clusters are seen more often than once per epoch (they would otherwise cap the epoch at the size
of the smallest cluster).
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn
from torch.utils.data import Sampler

from selfsup.config import PretrainParams
from selfsup.data.shards import Split
from selfsup.errors import DataError
from selfsup.evaluate.nmi import normalized_mutual_info
from selfsup.mining.cluster import kmeans, l2_normalise


class DenoisingAutoencoder(nn.Module):
    """Two stride-2 convolutions to a ``latent``-dim code and back (images of side ``size``)."""

    def __init__(self, size: int, latent: int) -> None:
        super().__init__()
        if size % 4:
            raise ValueError(f"image size must be a multiple of 4, got {size}")
        side = size // 4
        self.encode = nn.Sequential(
            nn.Conv2d(3, 32, 4, stride=2, padding=1),
            nn.ReLU(),
            nn.Conv2d(32, 64, 4, stride=2, padding=1),
            nn.ReLU(),
            nn.Flatten(),
            nn.Linear(64 * side * side, latent),
        )
        self.decode = nn.Sequential(
            nn.Linear(latent, 64 * side * side),
            nn.ReLU(),
            nn.Unflatten(1, (64, side, side)),
            nn.ConvTranspose2d(64, 32, 4, stride=2, padding=1),
            nn.ReLU(),
            nn.ConvTranspose2d(32, 3, 4, stride=2, padding=1),
            nn.Sigmoid(),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.decode(self.encode(x))  # type: ignore[no-any-return]


def fit_autoencoder(
    images: torch.Tensor,
    latent: int,
    epochs: int,
    noise: float,
    seed: int,
    device: torch.device,
    batch_size: int = 256,
) -> DenoisingAutoencoder:
    """Train to reconstruct clean ``uint8 [N,3,S,S]`` images from Gaussian-noised ones (MSE)."""
    generator = torch.Generator().manual_seed(seed)
    torch.manual_seed(seed)
    model = DenoisingAutoencoder(int(images.shape[-1]), latent).to(device)
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-3)
    model.train()
    for _ in range(epochs):
        order = torch.randperm(len(images), generator=generator)
        for start in range(0, len(images), batch_size):
            clean = images[order[start : start + batch_size]].to(device).float().div_(255.0)
            noisy = clean + noise * torch.randn(clean.shape, generator=generator).to(device)
            loss = F.mse_loss(model(noisy.clamp_(0.0, 1.0)), clean)
            optimizer.zero_grad(set_to_none=True)
            loss.backward()  # type: ignore[no-untyped-call]
            optimizer.step()
    return model.eval()


@torch.no_grad()
def pseudo_labels(
    model: DenoisingAutoencoder, images: torch.Tensor, clusters: int, seed: int
) -> np.ndarray:
    """k-means cluster of each image's (L2-normalised) latent code."""
    device = next(model.parameters()).device
    codes = torch.cat(
        [
            model.encode(images[i : i + 512].to(device).float().div_(255.0)).cpu()
            for i in range(0, len(images), 512)
        ]
    )
    return kmeans(l2_normalise(codes.numpy()), clusters, seed)


class DistinctLabelBatches(Sampler[list[int]]):
    """Batches of indices in which no pseudo-label repeats (see the module docstring)."""

    def __init__(self, labels: np.ndarray, batch_size: int, seed: int) -> None:
        self.groups = [np.flatnonzero(labels == c) for c in np.unique(labels)]
        if len(self.groups) < batch_size:
            raise DataError(
                f"{len(self.groups)} non-empty pseudo-label clusters, fewer than the batch size "
                f"{batch_size}: a batch of distinct pseudo-labels is impossible"
            )
        self.batch_size = batch_size
        self.seed = seed
        self.batches = len(labels) // batch_size

    def __len__(self) -> int:
        return self.batches

    def __iter__(self) -> Iterator[list[int]]:
        rng = np.random.default_rng(self.seed)
        sizes = np.array([len(g) for g in self.groups], dtype=np.float64)
        streams = [rng.permutation(g) for g in self.groups]
        cursor = np.zeros(len(self.groups), dtype=np.int64)
        for _ in range(self.batches):
            chosen = rng.choice(
                len(self.groups), self.batch_size, replace=False, p=sizes / sizes.sum()
            )
            batch = []
            for c in chosen.tolist():
                if cursor[c] == len(streams[c]):
                    streams[c], cursor[c] = rng.permutation(self.groups[c]), 0
                batch.append(int(streams[c][cursor[c]]))
                cursor[c] += 1
            yield batch


def pseudo_label_split(
    split: Split, params: PretrainParams, device: torch.device
) -> tuple[np.ndarray, dict[str, Any]]:
    """Pseudo-label of every training image, and metrics: NMI against the true labels (when the
    split is labelled), the cluster count and the seconds spent on autoencoder + k-means."""
    started = time.perf_counter()
    model = fit_autoencoder(
        split.images,
        params.gsimclr_latent,
        params.gsimclr_ae_epochs,
        params.gsimclr_noise,
        params.seed,
        device,
    )
    clusters = params.gsimclr_clusters or params.batch_size
    labels = pseudo_labels(model, split.images, clusters, params.seed)
    metrics: dict[str, Any] = {
        "gsimclr_clusters": clusters,
        "gsimclr_nonempty_clusters": len(np.unique(labels)),
        "gsimclr_seconds": time.perf_counter() - started,
    }
    if split.labeled:
        metrics["gsimclr_nmi"] = normalized_mutual_info(split.labels.numpy(), labels)
    return labels, metrics
