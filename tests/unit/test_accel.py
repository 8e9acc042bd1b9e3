"""The GPU path's options and their CPU fall-back: what each device gets, that channels-last and
bf16 keep the model's function, that views made on the device are per sample, and that the
``gpu`` profile's options train (and resume identically) on a CPU."""

from __future__ import annotations

import logging
from pathlib import Path

import pytest
import torch
from conftest import kill_after_first_epoch

from selfsup.config import AugmentParams, PretrainParams, profile_params, validate_params
from selfsup.data.augment_batched import BatchTwoViews
from selfsup.errors import ConfigError
from selfsup.models import ProjectionHead, build_encoder
from selfsup.models.artifact import load_encoder
from selfsup.train import accel
from selfsup.train import stage as pretrain
from selfsup.train.methods import SimclrNet, project

FAST = PretrainParams(
    convnet_width=4,
    projector_hidden=16,
    projector_out=8,
    epochs=2,
    warmup_epochs=1,
    batch_size=8,
    max_images=24,
    num_workers=0,
    precision="bf16",
    channels_last=True,
    compile=True,
    augment=AugmentParams(placement="device"),
)


def test_cpu_keeps_native_bf16_and_drops_compile(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    gpu = profile_params("gpu").pretrain
    cpu = torch.device("cpu")
    monkeypatch.setattr(accel, "native_bf16", lambda device: True)
    with caplog.at_level(logging.INFO, logger="selfsup.accel"):
        on_cpu = accel.resolve(gpu, cpu)
    assert on_cpu == accel.Accel(bf16=True, channels_last=True, compile=False, device_views=True)
    assert "compile" in caplog.text and "bf16" not in caplog.text
    assert accel.resolve(gpu, torch.device("cuda")) == accel.Accel(True, True, True, True)
    default = accel.resolve(PretrainParams(), torch.device("cuda"))
    assert default == accel.Accel(bf16=True, channels_last=True)
    fp32 = PretrainParams(precision="fp32", channels_last=False)
    assert accel.resolve(fp32, torch.device("cuda")) == accel.EAGER


def test_cpu_without_native_bf16_trains_in_fp32(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    monkeypatch.setattr(accel, "native_bf16", lambda device: False)
    with caplog.at_level(logging.INFO, logger="selfsup.accel"):
        on_cpu = accel.resolve(PretrainParams(precision="bf16"), torch.device("cpu"))
    assert on_cpu == accel.Accel(channels_last=True)
    assert "no native bf16" in caplog.text


def _cpu_flags() -> set[str]:
    for line in Path("/proc/cpuinfo").read_text().splitlines():
        if line.startswith("flags"):
            return set(line.split(":", 1)[1].split())
    raise AssertionError("no flags line in /proc/cpuinfo")


def test_native_bf16_matches_the_processor_flags() -> None:
    """The oracle is the kernel's view of the CPU, not torch's: AVX-512 BF16 or AMX-BF16."""
    if not Path("/proc/cpuinfo").exists():
        pytest.fail("this test reads /proc/cpuinfo (Linux)")
    flags = _cpu_flags()
    expected = "avx512_bf16" in flags or "amx_bf16" in flags
    assert accel.native_bf16(torch.device("cpu")) == expected
    assert accel.native_bf16(torch.device("cuda"))


def _net() -> SimclrNet:
    torch.manual_seed(0)
    encoder = build_encoder(FAST)
    return SimclrNet(encoder, ProjectionHead(encoder.out_dim, 16, 8)).eval()


def test_channels_last_and_bf16_keep_the_function() -> None:
    x = torch.rand(6, 3, 32, 32, generator=torch.Generator().manual_seed(0))
    cpu = torch.device("cpu")
    ref1, ref2 = project(_net(), x, cpu, accel.EAGER)
    nhwc = accel.Accel(channels_last=True)
    net = accel.prepare_model(_net(), nhwc)
    conv = next(m for m in net.modules() if isinstance(m, torch.nn.Conv2d))
    assert conv.weight.is_contiguous(memory_format=torch.channels_last)
    out1, out2 = project(net, x, cpu, nhwc)
    torch.testing.assert_close(
        torch.cat([out1, out2]), torch.cat([ref1, ref2]), rtol=1e-4, atol=1e-5
    )
    # bf16 autocast (on CPU here: the same context the CUDA path enters): fp32 out, ~bf16 close.
    half1, half2 = project(_net(), x, cpu, accel.Accel(bf16=True))
    assert half1.dtype == half2.dtype == torch.float32
    assert not torch.equal(half1, ref1), "autocast must actually have run in bf16"
    torch.testing.assert_close(half2, ref2, rtol=0.05, atol=0.05)


def test_device_views_draw_parameters_per_sample() -> None:
    torch.manual_seed(0)
    images = torch.randint(0, 256, (1, 3, 32, 32), dtype=torch.uint8).expand(12, -1, -1, -1)
    first, second = BatchTwoViews(32, AugmentParams(placement="device")).views(images)
    assert first.shape == (12, 3, 32, 32) and first.dtype == torch.float32
    assert float(first.min()) >= 0.0 and float(first.max()) <= 1.0
    assert len({tuple(v.flatten().tolist()) for v in first}) == 12, "one draw per image"
    assert not torch.equal(first, second)


def test_device_placement_needs_the_kornia_backend() -> None:
    with pytest.raises(ValueError, match="placement=device needs"):
        AugmentParams(backend="torchvision", placement="device")
    with pytest.raises(ConfigError, match="placement"):
        validate_params(
            {"pretrain": {"augment": {"backend": "torchvision", "placement": "device"}}}, "t"
        )


def test_gpu_options_train_on_cpu_and_resume_identically(
    tiny_dataset: Path, tmp_path: Path
) -> None:
    """bf16 (kept where the CPU has it) + compile requested (dropped on CPU), channels-last,
    views made in the step from uint8 batches: training runs, and a run killed after epoch 1
    resumes to the same weights."""
    metrics = pretrain.run(tiny_dataset, params=FAST, out=tmp_path / "straight")
    assert all(torch.isfinite(torch.tensor(metrics["loss_per_epoch"])))
    assert metrics["train_images"] == 24 and metrics["world_size"] == 1

    kill_after_first_epoch(
        lambda: pretrain.run(tiny_dataset, params=FAST, out=tmp_path / "resumed")
    )
    pretrain.run(tiny_dataset, params=FAST, out=tmp_path / "resumed", resume=True)
    straight, _ = load_encoder(tmp_path / "straight")
    resumed, _ = load_encoder(tmp_path / "resumed")
    for name, tensor in straight.state_dict().items():
        assert torch.equal(tensor, resumed.state_dict()[name]), name
