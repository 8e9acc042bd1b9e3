"""The KRR-ST outer loss: kernel ridge regression from synthetic to real representations.

With features ``F = [f(x), 1]`` of a pool model ``f``, the ridge regressor fitted on the synthetic
set ``(X_s, Y_s)`` predicts the teacher representation of a real image as
``K_ts (K_ss + λI)⁻¹ Y_s`` (the dual form, ``K = F Fᵀ``). The loss is its MSE to the teacher's
``g_T(x_real)``. The dual form is used because it is what makes ``X_s`` and ``Y_s`` learnable in
closed form: there is no inner optimisation to unroll, only an ``m×m`` solve. ``λ = ridge ·
tr(K_ss)`` scales the regulariser with the kernel, so it means the same at any feature scale.

The solve runs in float64: with ``m`` larger than the feature width the kernel is rank-deficient
and λ (1e-6 of the trace by default) is all that keeps it invertible, which float32 resolves badly.
"""

from __future__ import annotations

import torch
from torch.nn import functional as F

from selfsup.errors import SelfsupError


def with_bias(features: torch.Tensor) -> torch.Tensor:
    """``[f(x), 1]``: the constant column lets the regressor fit an intercept."""
    return torch.cat([features, features.new_ones(len(features), 1)], dim=1)


def krr_predict(
    synthetic_features: torch.Tensor,
    real_features: torch.Tensor,
    synthetic_targets: torch.Tensor,
    ridge: float = 1e-6,
) -> torch.Tensor:
    """``K_ts (K_ss + λI)⁻¹ Y_s`` with ``λ = ridge · tr(K_ss)``: predicted targets ``[N_t, D]``.

    Differentiable in the synthetic features and targets. Computed in float64, returned in the
    targets' dtype.
    """
    if synthetic_features.ndim != 2 or real_features.ndim != 2:
        raise SelfsupError("KRR needs [N,F] feature matrices")
    if synthetic_features.shape[1] != real_features.shape[1]:
        raise SelfsupError(
            f"feature widths differ: {synthetic_features.shape[1]} vs {real_features.shape[1]}"
        )
    if synthetic_targets.shape[0] != synthetic_features.shape[0]:
        raise SelfsupError(
            f"{synthetic_targets.shape[0]} targets for {synthetic_features.shape[0]} images"
        )
    f_s = with_bias(synthetic_features.double())
    f_t = with_bias(real_features.double())
    k_ss = f_s @ f_s.T
    k_ts = f_t @ f_s.T
    lam = ridge * torch.trace(k_ss)
    eye = torch.eye(len(k_ss), dtype=k_ss.dtype, device=k_ss.device)
    alpha = torch.linalg.solve(k_ss + lam * eye, synthetic_targets.double())
    prediction: torch.Tensor = (k_ts @ alpha).to(synthetic_targets.dtype)
    return prediction


def krr_loss(
    synthetic_features: torch.Tensor,
    real_features: torch.Tensor,
    synthetic_targets: torch.Tensor,
    real_targets: torch.Tensor,
    ridge: float = 1e-6,
) -> torch.Tensor:
    """MSE between the KRR prediction for the real images and their teacher targets."""
    prediction = krr_predict(synthetic_features, real_features, synthetic_targets, ridge)
    return F.mse_loss(prediction, real_targets.to(prediction.dtype))
