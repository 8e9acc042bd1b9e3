"""What tasks do around their stage call: params sections (nulls included), the cache-key
check, and run arguments that KFP can carry."""

from pathlib import Path

import pytest

from selfsup.errors import ConfigError, IntegrityError
from selfsup.pipeline import runtime as tasks


def test_section_params_validates_and_names_the_bad_key() -> None:
    assert tasks.section_params("evaluate", {"knn_k": 3.0}).knn_k == 3  # KFP structs send floats
    with pytest.raises(ConfigError, match=r"evaluate\.knn_kk"):
        tasks.section_params("evaluate", {"knn_kk": 3})
    with pytest.raises(ConfigError, match=r"pretrain\.epochs"):
        tasks.section_params("pretrain", {"epochs": -1})


def test_nulls_key_must_list_names() -> None:
    with pytest.raises(ConfigError, match="_nulls must list key names"):
        tasks.section_params("pretrain", {tasks.NULLS_KEY: "max_images"})


def test_check_data_hash_refuses_a_changed_dataset(tiny_dataset: Path) -> None:
    from selfsup.data.shards import read_dataset_manifest

    actual = read_dataset_manifest(tiny_dataset)["content_hash"]
    tasks.check_data_hash(tiny_dataset, actual)  # the right hash passes
    with pytest.raises(IntegrityError, match="re-run the pipeline without cache"):
        tasks.check_data_hash(tiny_dataset, "0" * 64)


def test_section_arguments_keep_a_null_that_overrides_a_default() -> None:
    from selfsup.config import profile_params
    from selfsup.pipeline.dags import section_arguments

    gpu = profile_params("gpu")  # distill.real_images defaults to 5,000; null: every image
    params = gpu.model_copy(
        update={"distill": gpu.distill.model_copy(update={"real_images": None})}
    )
    arguments = section_arguments(params)
    assert "real_images" not in arguments["distill"]  # KFP structs cannot hold null ...
    assert arguments["distill"][tasks.NULLS_KEY] == ["real_images"]  # ... so it is listed instead
    assert tasks.section_params("distill", arguments["distill"]).real_images is None
    # The gpu profile's null over the default progressive-resizing schedule is listed too ...
    assert arguments["pretrain"][tasks.NULLS_KEY] == ["progressive_resize"]
    assert tasks.NULLS_KEY not in arguments["data"]  # ... a null that is the default is left out
    assert "archive" not in arguments["data"] and "max_images" not in arguments["pretrain"]
    for section, values in arguments.items():  # and every section round-trips to the same params
        assert tasks.section_params(section, values) == getattr(params, section)


def test_arguments_of_every_profile_are_valid_kfp_struct_values() -> None:
    from kfp.compiler.pipeline_spec_builder import to_protobuf_value

    from selfsup.config import PROFILES, profile_params
    from selfsup.pipeline.dags import PIPELINES, pipeline_arguments

    for profile in PROFILES:  # the conversion KFP applies to defaults and local arguments
        for name, spec in PIPELINES.items():
            ids = ["train/0"] if spec.request else None
            arguments = pipeline_arguments(name, profile_params(profile), forget_ids=ids)
            for value in arguments.values():
                to_protobuf_value(value)  # raises on null or unsupported types
