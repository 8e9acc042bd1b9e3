"""Typed params: profiles, validation errors, and params.yaml as a view of the defaults."""

from pathlib import Path

import pytest

from selfsup.config import PROFILES, load_params, profile_params, render_params
from selfsup.errors import ConfigError

REPO = Path(__file__).resolve().parents[2]


def test_committed_params_yaml_is_the_default_profile() -> None:
    assert (REPO / "params.yaml").read_text() == render_params(profile_params("default"))


@pytest.mark.parametrize("name", sorted(PROFILES))
def test_every_profile_validates_and_round_trips(name: str, tmp_path: Path) -> None:
    params = profile_params(name)
    path = tmp_path / "params.yaml"
    path.write_text(render_params(params))
    assert load_params(path) == params


def test_unknown_key_is_an_error_naming_it(tmp_path: Path) -> None:
    path = tmp_path / "params.yaml"
    path.write_text("pretrain:\n  epoch: 3\n")
    with pytest.raises(ConfigError, match=r"pretrain\.epoch"):
        load_params(path)


def test_out_of_range_value_is_an_error(tmp_path: Path) -> None:
    path = tmp_path / "params.yaml"
    path.write_text("pretrain:\n  temperature: -1\n")
    with pytest.raises(ConfigError, match=r"pretrain\.temperature"):
        load_params(path)


def test_warmup_longer_than_training_is_rejected(tmp_path: Path) -> None:
    path = tmp_path / "params.yaml"
    path.write_text("pretrain:\n  epochs: 2\n  warmup_epochs: 3\n")
    with pytest.raises(ConfigError, match="warmup_epochs"):
        load_params(path)


def test_missing_file_and_bad_yaml(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="does not exist"):
        load_params(tmp_path / "nope.yaml")
    bad = tmp_path / "bad.yaml"
    bad.write_text("data: [unclosed\n")
    with pytest.raises(ConfigError, match="not valid YAML"):
        load_params(bad)


def test_unknown_profile() -> None:
    with pytest.raises(ConfigError, match="unknown profile"):
        profile_params("huge")


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        (b"data:\n  seed: \xff\n", r"params file .*bad\.yaml is not UTF-8 text \(byte 14"),
        (b"", r"is empty; write one with `selfsup params write --out "),
        (b"  \n", r"is empty"),
        (b"pretrain:\n  lr: .inf\n", r"pretrain\.lr: Input should be a finite number"),
        (b"compress:\n  lr: .nan\n", r"compress\.lr: Input should be a finite number"),
        (b"data:\n  seed: 18446744073709551616\n", r"data\.seed: Input should be less than"),
        (b"mine:\n  seed: -1\n", r"mine\.seed: Input should be greater than or equal to 0"),
    ],
)
def test_undecodable_empty_non_finite_and_out_of_range_params_are_one_error(
    text: bytes, expected: str, tmp_path: Path
) -> None:
    path = tmp_path / "bad.yaml"
    path.write_bytes(text)
    with pytest.raises(ConfigError, match=expected):
        load_params(path)


def test_set_overrides_are_typed_nested_and_validated(tmp_path: Path) -> None:
    from selfsup.config import apply_overrides

    path = tmp_path / "p.yaml"
    path.write_text(render_params(profile_params("tiny"), "tiny"))
    params = load_params(
        path, ["pretrain.epochs=7", "pretrain.augment.flip_p=0.25", "data.train_per_class=null"]
    )
    assert params.pretrain.epochs == 7 and isinstance(params.pretrain.epochs, int)
    assert params.pretrain.augment.flip_p == 0.25
    assert params.data.train_per_class is None
    assert load_params(path).pretrain.epochs != 7  # the file is not changed
    ramp = ["pretrain.progressive_resize.min_size=16", "pretrain.progressive_resize.ramp=0.25"]
    ramped = load_params(path, [*ramp, "pretrain.progressive_resize.hold=0.5"])
    assert load_params(path).pretrain.progressive_resize is None  # tiny's null section, started
    assert ramped.pretrain.progressive_resize is not None
    assert ramped.pretrain.progressive_resize.min_size == 16
    with pytest.raises(ConfigError, match=r"progressive_resize\.hold: Field required"):
        load_params(path, ramp)
    with pytest.raises(ConfigError, match=r"with --set pretrain\.nope=1: pretrain\.nope: Extra"):
        load_params(path, ["pretrain.nope=1"])
    with pytest.raises(ConfigError, match=r"pretrain\.epochs: Input should be greater"):
        load_params(path, ["pretrain.epochs=-3"])
    for bad in ("pretrain.epochs", "epochs=2", ".x=1", "pretrain..epochs=1"):
        with pytest.raises(ConfigError, match=r"expected section\.key=value"):
            apply_overrides({}, [bad])
    with pytest.raises(ConfigError, match="is not a section"):
        apply_overrides({"pretrain": {"epochs": 2}}, ["pretrain.epochs.x=1"])
