"""Evaluation of frozen representations: kNN, linear probe, RankMe, calibration, the report.

``selfsup.evaluate.stage.run`` is the ``selfsup evaluate`` stage; it writes ``metrics.json``::

    {
      "labeled": true,                      # false: unlabeled data, only RankMe below
      "trained":     {"knn_top1": f, "linear_top1": f, "linear_ece": f, "rankme": f},
      "random_init": {"knn_top1": f, "linear_top1": f, "linear_ece": f, "rankme": f},
      "raw_pixels":  {"knn_top1": f, "linear_top1": f, "linear_ece": f, "rankme": f},
      "knn_gain_over_random": f, "linear_gain_over_random": f, "rankme_gain_over_random": f,
      "knn_floor": "raw_pixels" | "random_init", "knn_gain_over_floor": f,   # the stronger
      "linear_floor": ..., "linear_gain_over_floor": f,                       # floor's gain
      "rankme_samples": n, "knn_k": k, "knn_temperature": t,
      "num_train": n, "num_test": n, "num_classes": c, "feature_dim": d,
      "per_class_knn_top1": {"trained": {class: f}, "random_init": {class: f}}
    }

Accuracies and ECE are fractions in 0..1. ``random_init`` is the same architecture with seeded
fresh weights, ``raw_pixels`` the images themselves (mean-centred by the train split): the
floors a pretrained encoder has to beat, and the gain that counts is over the stronger. The
metric functions are exported here; the stage is imported from its module (it pulls in the
models and matplotlib).
"""

from selfsup.evaluate.calibration import (
    Calibration,
    ReliabilityBin,
    calibration_from_confidences,
    expected_calibration_error,
)
from selfsup.evaluate.knn import (
    KnnResult,
    confusion_matrix,
    knn_classify,
    per_class_accuracy,
    top1_accuracy,
)
from selfsup.evaluate.linear_probe import LinearProbe, fit_linear_probe
from selfsup.evaluate.rankme import RankMeResult, rankme

__all__ = [
    "Calibration",
    "KnnResult",
    "LinearProbe",
    "RankMeResult",
    "ReliabilityBin",
    "calibration_from_confidences",
    "confusion_matrix",
    "expected_calibration_error",
    "fit_linear_probe",
    "knn_classify",
    "per_class_accuracy",
    "rankme",
    "top1_accuracy",
]
