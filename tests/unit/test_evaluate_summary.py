"""The terminal summary: trained beside both floors, the gain over the stronger one (for ECE,
lower is better, so the stronger floor is the lower)."""

from selfsup.evaluate.summary import summary_table


def test_the_gain_is_over_the_stronger_floor_per_metric() -> None:
    metrics = {
        "trained": {"knn_top1": 0.60, "linear_top1": 0.70, "linear_ece": 0.05, "rankme": 80.0},
        "random_init": {"knn_top1": 0.40, "linear_top1": 0.45, "linear_ece": 0.10, "rankme": 30.0},
        "raw_pixels": {"knn_top1": 0.65, "linear_top1": 0.40, "linear_ece": 0.02, "rankme": 90.0},
    }
    rows = {line.split("  ")[0]: line.split() for line in summary_table(metrics).splitlines()[1:]}
    assert rows["kNN top-1"][-1] == "-0.0500"  # raw pixels (0.65) beat the trained encoder
    assert rows["linear top-1"][-1] == "+0.2500"  # over random init (0.45)
    assert rows["linear ECE"][-1] == "+0.0300"  # over raw pixels' 0.02: worse calibrated
    assert rows["RankMe"][-1] == "-10.0000"
    assert rows["kNN top-1"][-2] == "0.6500"


def test_without_the_raw_pixel_floor_the_random_one_is_the_floor() -> None:
    metrics = {"trained": {"knn_top1": 0.5}, "random_init": {"knn_top1": 0.3}}
    (row,) = summary_table(metrics).splitlines()[1:]
    assert row.split()[-2:] == ["-", "+0.2000"]
