"""The packed-weights format: lossless, and its size is values + bitmask + header, no less."""

from __future__ import annotations

import math

import torch

from selfsup.compress.size import MAGIC, dense_bytes, pack, unpack


def _sparse(shape: tuple[int, ...], density: float, seed: int) -> torch.Tensor:
    gen = torch.Generator().manual_seed(seed)
    weight = torch.randn(shape, generator=gen)
    return weight * (torch.rand(shape, generator=gen) < density)


def test_round_trip_is_exact_for_sparse_and_dense_tensors() -> None:
    state = {
        "conv.weight": _sparse((16, 8, 3, 3), 0.1, 0),
        "bn.running_var": torch.rand(16) + 0.5,
        "bn.num_batches_tracked": torch.tensor(7),
        "empty": torch.zeros(0),
    }
    restored = unpack(pack(state))
    assert restored.keys() == state.keys()
    for name, tensor in state.items():
        assert restored[name].dtype == tensor.dtype
        assert torch.equal(restored[name], tensor), name


def test_size_counts_values_and_one_bit_per_position() -> None:
    weight = _sparse((64, 32, 3, 3), 0.05, 1)
    dense = torch.rand(64) + 0.1
    blob = pack({"w": weight, "b": dense})
    nnz, numel = int((weight != 0).sum()), weight.numel()
    payload = math.ceil(numel / 8) + 4 * nnz + 4 * 64
    header = len(blob) - len(MAGIC) - 8 - payload
    assert 0 < header < 400  # the JSON header: names, shapes, dtypes, offsets
    assert dense_bytes({"w": weight, "b": dense}) == 4 * (numel + 64)


def test_a_dense_tensor_is_never_stored_larger_than_dense() -> None:
    weight = torch.randn(32, 32)
    blob = pack({"w": weight})
    assert len(blob) - len(MAGIC) - 8 < 4 * weight.numel() + 200


def test_quantized_tensors_store_int8_values_and_per_channel_parameters() -> None:
    weight = _sparse((8, 4, 3, 3), 0.3, 2)
    scales = weight.abs().amax(dim=(1, 2, 3)).clamp_min(1e-3) / 127
    q = torch.quantize_per_channel(weight, scales, torch.zeros(8, dtype=torch.long), 0, torch.qint8)
    restored = unpack(pack({"w": q}))
    assert torch.equal(restored["w"], q.int_repr())
    assert torch.allclose(restored["w.q_scales"].double(), q.q_per_channel_scales(), rtol=1e-6)
    assert bool((restored["w"][weight == 0] == 0).all())
