"""``selfsup unlearn``: serve a deletion request with Label-Agnostic Forgetting (Shen et al. 2024).

:mod:`ids` (what a sample id is), :mod:`vae` (representation VAEs, active units), :mod:`laf`
(the label-free unlearning losses and loop), :mod:`head` (the linear head artifact and "+R"),
:mod:`baselines` (no-op, fine-tune, retrain), :mod:`audit` (accuracies, membership inference),
:mod:`request` (the deletion-request record), :mod:`stage` (the stage).
"""
