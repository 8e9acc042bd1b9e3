"""G-SimCLR: NMI vs hand-computed values, the distinct-pseudo-label sampler, the autoencoder."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from selfsup.errors import DataError
from selfsup.evaluate.nmi import normalized_mutual_info
from selfsup.train.gsimclr import DistinctLabelBatches, fit_autoencoder, pseudo_labels


def test_nmi_matches_hand_computed_values() -> None:
    # V refines U: I = H(U) = ln 2, H(V) = 1.5 ln 2 -> NMI = 2 ln2 / 2.5 ln2 = 0.8
    assert normalized_mutual_info(np.array([0, 0, 1, 1]), np.array([0, 0, 1, 2])) == (
        pytest.approx(0.8)
    )
    assert normalized_mutual_info(np.array([0, 0, 1, 1]), np.array([5, 5, 3, 3])) == (
        pytest.approx(1.0)
    )
    assert normalized_mutual_info(np.array([0, 1, 0, 1]), np.array([0, 0, 1, 1])) == (
        pytest.approx(0.0, abs=1e-12)
    )
    # U = [0,0,0,1], V = [0,0,1,1]: joint {(0,0):1/2, (0,1):1/4, (1,1):1/4}
    i = 0.5 * math.log(0.5 / (0.75 * 0.5)) + 0.25 * math.log(0.25 / (0.75 * 0.5))
    i += 0.25 * math.log(0.25 / (0.25 * 0.5))
    h_u = -(0.75 * math.log(0.75) + 0.25 * math.log(0.25))
    expected = i / ((h_u + math.log(2)) / 2)
    assert normalized_mutual_info(np.array([0, 0, 0, 1]), np.array([0, 0, 1, 1])) == (
        pytest.approx(expected)
    )


@pytest.mark.parametrize(("clusters", "batch"), [(8, 8), (20, 8)])
def test_sampler_never_repeats_a_pseudo_label_in_a_batch(clusters: int, batch: int) -> None:
    rng = np.random.default_rng(0)
    labels = rng.choice(clusters, size=400, p=rng.dirichlet(np.ones(clusters)))  # imbalanced
    labels[:clusters] = np.arange(clusters)  # every cluster non-empty
    batches = list(DistinctLabelBatches(labels, batch, seed=3))
    assert len(batches) == 400 // batch
    for indices in batches:
        assert len(indices) == batch
        assert len(set(labels[indices].tolist())) == batch
    assert batches == list(DistinctLabelBatches(labels, batch, seed=3))  # seeded
    assert batches != list(DistinctLabelBatches(labels, batch, seed=4))


def test_too_few_clusters_is_a_clear_error() -> None:
    with pytest.raises(DataError, match="distinct pseudo-labels"):
        DistinctLabelBatches(np.array([0, 1, 1, 0, 2]), 4, seed=0)


def test_autoencoder_pseudo_labels_separate_two_obvious_groups() -> None:
    dark = torch.randint(0, 40, (32, 3, 16, 16), dtype=torch.uint8)
    bright = torch.randint(215, 256, (32, 3, 16, 16), dtype=torch.uint8)
    images = torch.cat([dark, bright])
    model = fit_autoencoder(images, 8, 3, 0.1, seed=0, device=torch.device("cpu"), batch_size=16)
    labels = pseudo_labels(model, images, 2, seed=0)
    truth = np.array([0] * 32 + [1] * 32)
    assert normalized_mutual_info(truth, labels) == pytest.approx(1.0)
