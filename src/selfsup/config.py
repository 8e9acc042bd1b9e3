"""Typed parameters: every knob of every stage, its default and its validation, defined once.

``params.yaml`` (read by ``dvc repro``) and the KFP pipeline parameters are *views* of these
models. The defaults are the ``default`` profile (CPU, real CIFAR-10, ≤ 10 minutes on a 2-core
machine); :data:`PROFILES` holds the overrides of the other profiles. ``selfsup params write``
renders a profile to YAML, and a test checks that the committed ``params.yaml`` is that rendering.
"""

from __future__ import annotations

import copy
from collections.abc import Sequence
from pathlib import Path
from typing import Annotated, Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from selfsup.errors import ConfigError

CIFAR10_ARCHIVE_ENV = "SELFSUP_CIFAR10_ARCHIVE"
VIDEO_DIR_ENV = "SELFSUP_VIDEO_DIR"


# A seed numpy and torch both take: a non-negative 64-bit integer (a larger one fails deep
# inside a generator with a traceback).
Seed = Annotated[int, Field(ge=0, le=2**63 - 1, description="random seed, 0 … 2^63-1")]


class _Strict(BaseModel):
    """Unknown keys are errors: a typo in params.yaml must not be silently ignored."""

    # inf/nan are refused: `lr: .inf` is a typo that would only fail later, as a non-finite loss.
    model_config = ConfigDict(extra="forbid", frozen=True, allow_inf_nan=False)


class DataParams(_Strict):
    """``selfsup data prepare``."""

    source: Literal["cifar10-archive", "cifar10-download", "folder", "synthetic"] = (
        "cifar10-archive"
    )
    archive: str | None = Field(
        None,
        description=f"CIFAR-10 JPEG-folder archive: a path or s3://bucket/prefix/NAME (`selfsup "
        f"data upload`); empty: ${CIFAR10_ARCHIVE_ENV}",
    )
    folder: str | None = Field(
        None, description="image folder for source=folder: a path or s3://bucket/prefix/NAME"
    )
    ids_csv: str | None = Field(
        None,
        description="source=folder: CSV with columns file,id (file: path inside data.folder; "
        "id: e.g. its user), so a deletion request can name all of a user's images",
    )
    download_root: str = Field(
        "~/.cache/selfsup/torchvision", description="torchvision download cache"
    )
    train_per_class: int | None = Field(None, ge=1, description="stratified subset; null: all")
    test_per_class: int | None = Field(None, ge=1, description="stratified subset; null: all")
    test_fraction: float = Field(
        0.2, gt=0.0, lt=1.0, description="held-out share for a folder without train/test split"
    )
    image_size: int = Field(32, ge=8, le=512, description="images are resized to this square")
    synthetic_classes: int = Field(4, ge=2, le=32)
    synthetic_train: int = Field(256, ge=1)
    synthetic_test: int = Field(128, ge=1)
    on_corrupt: Literal["fail", "skip"] = Field(
        "fail", description="an unreadable image fails the stage, or is skipped and counted"
    )
    # Untrusted input read into memory is bounded, checked from headers before it is read.
    max_image_bytes: int = Field(
        64 << 20, ge=1, description="largest image file or archive member read, in bytes"
    )
    max_archive_bytes: int = Field(
        16 << 30, ge=1, description="most image bytes one archive may hold (read into memory)"
    )
    max_image_pixels: int = Field(
        50_000_000, ge=1, description="largest image decoded, width × height"
    )
    shard_size: int = Field(10_000, ge=1)
    seed: Seed = 0

    @model_validator(mode="after")
    def _ids_csv_needs_a_folder(self) -> DataParams:
        if self.ids_csv and self.source != "folder":
            raise ValueError(f"data.ids_csv goes with data.source=folder, not {self.source}")
        return self


class AugmentParams(_Strict):
    """SimCLR view generation (per-sample random parameters).

    ``backend``: ``torchvision`` applies transforms.v2 to one image at a time; ``kornia`` augments
    a whole batch at once (each image still draws its own parameters): about 2× cheaper per view
    than a PIL pipeline on a CPU (BENCHMARKS.md), and the path that can run on a GPU.
    """

    backend: Literal["torchvision", "kornia"] = "kornia"
    crop_scale_min: float = Field(0.2, gt=0.0, le=1.0)
    flip_p: float = Field(0.5, ge=0.0, le=1.0)
    jitter_p: float = Field(0.8, ge=0.0, le=1.0)
    jitter_strength: float = Field(0.5, ge=0.0, le=1.0)
    grayscale_p: float = Field(0.2, ge=0.0, le=1.0)
    blur_p: float = Field(0.0, ge=0.0, le=1.0)
    placement: Literal["loader", "device"] = Field(
        "loader",
        description="loader: views made in DataLoader workers; device: uint8 images cross to the "
        "training device and kornia makes the views there (needs backend=kornia)",
    )

    @model_validator(mode="after")
    def _device_views_need_kornia(self) -> AugmentParams:
        if self.placement == "device" and self.backend != "kornia":
            raise ValueError("augment.placement=device needs augment.backend=kornia")
        return self


class ProgressiveResize(_Strict):
    """Smaller views in the early epochs (progressive resizing, as in FFCV's resolution ramp).

    A view of ``s`` px costs about ``(s / full)²`` of a full one in the encoder, so early epochs
    run faster. The first ``hold`` share of the epochs trains at ``min_size``, the next ``ramp``
    share grows linearly to the images' full size, and the rest (always the last epoch) trains
    at full size, the resolution evaluation embeds at. Shares, not epoch numbers, so the
    schedule fits any ``epochs``.
    """

    min_size: int = Field(ge=8, description="view size (px) of the first epochs")
    hold: float = Field(gt=0.0, lt=1.0, description="share of the epochs at min_size")
    ramp: float = Field(
        0.0, ge=0.0, lt=1.0, description="share of the epochs, after those, growing to full size"
    )
    multiple: int = Field(4, ge=1, description="sizes on the ramp round down to a multiple of this")

    @model_validator(mode="after")
    def _ends_at_full_size(self) -> ProgressiveResize:
        if self.hold + self.ramp > 1.0:
            raise ValueError(
                f"hold={self.hold} + ramp={self.ramp} exceeds 1: the last epochs must train"
                " at the resolution evaluation uses"
            )
        return self


class PretrainParams(_Strict):
    """``selfsup pretrain``."""

    method: Literal[
        "simclr",
        "triplet",
        "simclr+triplet",
        "simclr-topk",
        "groco",
        "groco+mined",
        "gsimclr",
        "distilled",
        "byol",
    ] = Field(
        "simclr",
        description="triplet: Triplet-Siamese on mined pairs; simclr+triplet: both losses per step;"
        " simclr-topk: NT-Xent on the groco_k hardest negatives; groco: GroCo sorting loss;"
        " groco+mined: GroCo plus GroCo on mined pairs; gsimclr: SimCLR, distinct pseudo-labels;"
        " distilled: MSE to the targets of a selfsup distill output;"
        " byol: BYOL, online predictor vs an EMA target network",
    )
    encoder: Literal["convnet", "resnet18_cifar"] = "convnet"
    convnet_width: int = Field(32, ge=4, description="channels of the first ConvNet block")
    projector_hidden: int = Field(512, ge=1)
    projector_out: int = Field(128, ge=1)
    temperature: float = Field(0.2, gt=0.0)
    optimizer: Literal["sgd", "lars", "adamw"] = "adamw"
    lr: float = Field(2e-3, gt=0.0, description="base learning rate for batch size 256")
    weight_decay: float = Field(1e-4, ge=0.0)
    momentum: float = Field(0.9, ge=0.0, lt=1.0)
    epochs: int = Field(8, ge=1)
    warmup_epochs: float = Field(0.25, ge=0.0)
    batch_size: int = Field(
        256, ge=2, description="global batch: split evenly across the ranks of a torchrun job"
    )
    max_images: int | None = Field(
        None, ge=2, description="seeded subset of the train split (triplet: of pairs); null: all"
    )
    num_workers: int = Field(
        0,
        ge=0,
        description="DataLoader workers making the views (0: in the training process, fastest on"
        " a 2-core CPU, where a worker competes with the step's threads)",
    )
    device: Literal["auto", "cpu", "cuda"] = Field("auto", description="auto: cuda if present")
    augment: AugmentParams = AugmentParams()
    progressive_resize: ProgressiveResize | None = Field(
        ProgressiveResize(min_size=24, hold=0.5),
        description="smaller views in early epochs (methods on views); null: full size throughout",
    )
    precision: Literal["fp32", "bf16"] = Field(
        "bf16",
        description="bf16: autocast forward (loss in fp32) on CUDA and on CPUs with native bf16"
        " (AVX-512 BF16 / AMX); fp32 elsewhere",
    )
    channels_last: bool = Field(True, description="NHWC memory format (oneDNN and tensor cores)")
    compile: bool = Field(False, description="torch.compile the model (CUDA only; CPU: skipped)")
    sync_batchnorm: bool = Field(
        False, description="under torchrun on CUDA: BatchNorm statistics of the global batch"
    )
    triplet_margin: float = Field(0.5, gt=0.0, le=2.0, description="m in D(a,p) - D(a,n) + m")
    triplet_weight: float = Field(1.0, gt=0.0, description="weight of the triplet term when mixed")
    groco_k: int = Field(10, ge=1, description="hardest negatives per anchor (groco, simclr-topk)")
    groco_steepness: float = Field(20.0, gt=0.0, description="sorting network steepness")
    groco_max_positives: int = Field(8, ge=1, description="positives kept per anchor (mined)")
    groco_mined_weight: float = Field(1.0, gt=0.0, description="weight of the mined GroCo term")
    gsimclr_ae_epochs: int = Field(5, ge=1, description="denoising autoencoder epochs")
    gsimclr_latent: int = Field(64, ge=2, description="autoencoder code size")
    gsimclr_noise: float = Field(0.1, ge=0.0, description="Gaussian noise std on [0,1] pixels")
    gsimclr_clusters: int | None = Field(
        None, ge=2, description="k-means K for pseudo-labels; null: the batch size"
    )
    byol_momentum_base: float = Field(
        0.99, ge=0.0, lt=1.0, description="BYOL target EMA momentum at step 0 (cosine to 1)"
    )
    byol_predictor_hidden: int = Field(512, ge=1, description="BYOL predictor MLP hidden width")
    seed: Seed = 0

    @model_validator(mode="after")
    def _warmup_within_training(self) -> PretrainParams:
        if self.warmup_epochs > self.epochs:
            raise ValueError(f"warmup_epochs={self.warmup_epochs} exceeds epochs={self.epochs}")
        if self.gsimclr_clusters is not None and self.gsimclr_clusters < self.batch_size:
            raise ValueError(
                f"gsimclr_clusters={self.gsimclr_clusters} is below batch_size={self.batch_size}:"
                " a batch of distinct pseudo-labels needs at least batch_size clusters"
            )
        topk = self.method in ("groco", "groco+mined", "simclr-topk")
        if topk and self.groco_k > 2 * self.batch_size - 2:
            raise ValueError(
                f"groco_k={self.groco_k} exceeds the 2*batch_size-2 negatives of a batch"
            )
        return self


class MineParams(_Strict):
    """``selfsup mine``: object graph mined from video (Transitive Invariance, Wang et al. 2017)."""

    # The default is synthetic so that `make run` needs no video input; set `folder` (and
    # video_dir or $SELFSUP_VIDEO_DIR) to mine real video in the chain.
    source: Literal["folder", "synthetic"] = Field(
        "synthetic", description=f"folder: video_dir or ${VIDEO_DIR_ENV}; synthetic: generated"
    )
    video_dir: str | None = Field(
        None, description=f"folder or s3://bucket/prefix of videos to mine; empty: ${VIDEO_DIR_ENV}"
    )
    extensions: list[str] = Field([".avi", ".mp4", ".mov", ".mkv"], min_length=1)
    target_fps: float | None = Field(None, gt=0.0, description="subsample to this rate; null: all")
    max_frames: int | None = Field(None, ge=1, description="per video, after subsampling")
    max_side: int = Field(384, ge=32, description="frames are downscaled to this for detection")
    warmup_frames: int = Field(8, ge=1, description="background-model frames before proposals")
    min_area: float = Field(0.002, gt=0.0, lt=1.0, description="proposal area / frame area")
    max_area: float = Field(0.25, gt=0.0, le=1.0)
    nms_iou: float = Field(0.3, gt=0.0, le=1.0)
    max_proposals: int = Field(8, ge=1, description="per keyframe, largest first")
    motion_compensation: bool = Field(
        True, description="RANSAC homography + warped median background; false: MOG2 (static)"
    )
    background_ncc: float = Field(
        0.6, ge=-1.0, le=1.0, description="proposal ≈ background (NCC ≥ this): dropped"
    )
    min_texture: float = Field(
        8.0, ge=0.0, description="grey-level std below which a proposal is flat (not tracked)"
    )
    min_track_seconds: float = Field(
        1.0, gt=0.0, description="native time between a track's nodes: each intra pair spans it"
    )
    keyframe_every: int = Field(6, ge=1, description="frames between proposal rounds")
    extend_overlap: float = Field(
        0.5, gt=0.0, le=1.0, description="proposal ∩ live track / smaller box: this much extends it"
    )
    confirm_seconds: float = Field(
        1.0, gt=0.0, description="a track this long without an overlapping proposal ends"
    )
    track_reanchor: float = Field(
        0.5, ge=0.0, le=1.0, description="pull of an extending proposal on the track's box"
    )
    search_margin: float = Field(0.5, gt=0.0, description="search window: box ± margin × size")
    min_track_score: float = Field(0.6, ge=-1.0, le=1.0, description="NCC below: track drifted")
    patch_size: int = Field(32, ge=8, le=256)
    cluster_size_min: int = Field(2, ge=2)
    cluster_size_max: int = Field(8, ge=2)
    cluster_ratio: float = Field(4.0, ge=1.0, description="K = N / cluster_ratio (paper: 4)")
    inter_window_seconds: float = Field(
        2.0, ge=0.0, description="no inter edge between overlapping boxes of one video this close"
    )
    inter_cross_video_only: bool = Field(
        False, description="inter edges only between different videos (as in the paper)"
    )
    num_shards: int = Field(1, ge=1, description="videos are split into this many shards")
    synthetic_videos: int = Field(6, ge=1)
    synthetic_frames: int = Field(60, ge=2)
    synthetic_objects: int = Field(3, ge=1)
    synthetic_classes: int = Field(4, ge=2, le=4)
    synthetic_size: list[int] = Field([160, 224], min_length=2, max_length=2, description="H, W")
    # As hard as real video (issue 17); 0, 0, 0, 10 give the static-camera clips of issue 3.
    synthetic_fps: float = Field(25.0, gt=0.0, description="frame rate; motion is per second")
    synthetic_pan: float = Field(0.15, ge=0.0, le=0.5, description="camera pan, share of frame")
    synthetic_zoom: float = Field(0.15, ge=0.0, lt=0.5, description="camera zoom: scale 1 ± this")
    synthetic_clutter: int = Field(8, ge=0, description="static textured distractors per clip")
    contact_pairs: int = Field(8, ge=0, description="pairs per edge type on the contact sheet")
    seed: Seed = 0

    @model_validator(mode="after")
    def _ordered_bounds(self) -> MineParams:
        if self.min_area >= self.max_area:
            raise ValueError(f"min_area={self.min_area} must be below max_area={self.max_area}")
        if self.cluster_size_min > self.cluster_size_max:
            raise ValueError("cluster_size_min exceeds cluster_size_max")
        return self


class DistillParams(_Strict):
    """``selfsup distill``: self-supervised dataset distillation (KRR-ST, Lee et al. 2024).

    ``num_images`` synthetic images (initialised from a seeded random real subset) and their
    targets (initialised as the teacher's features) are learnt by the kernel-ridge-regression
    outer loss against a pool of small ConvNets; see docs/distill.md.
    """

    num_images: int = Field(500, ge=2, description="m: distilled images")
    real_images: int | None = Field(
        5_000, ge=2, description="seeded subset of the train split the outer loss samples from"
    )
    real_batch_size: int = Field(256, ge=2, description="real images per outer step")
    outer_steps: int = Field(100, ge=1)
    image_lr: float = Field(1e-3, gt=0.0, description="Adam lr of the images (in [0,1] units)")
    target_lr: float = Field(1e-3, gt=0.0, description="Adam lr of the targets")
    pool_size: int = Field(4, ge=1, description="models in the pool")
    pool_max_steps: int = Field(
        20, ge=1, description="T: a pool model is re-initialised after T MSE steps"
    )
    pool_lr: float = Field(1e-3, gt=0.0, description="Adam lr of the pool models' MSE steps")
    pool_width: int = Field(16, ge=4, description="channels of the pool ConvNets' first block")
    ridge: float = Field(1e-6, gt=0.0, description="lambda = ridge * tr(K_ss)")
    clamp_images: bool = Field(True, description="keep images in [0, 1] after each step")
    device: Literal["auto", "cpu", "cuda"] = Field("auto", description="auto: cuda if present")
    seed: Seed = 0

    @model_validator(mode="after")
    def _subset_holds_a_batch(self) -> DistillParams:
        if self.real_images is not None and self.real_images < self.real_batch_size:
            raise ValueError(
                f"real_images={self.real_images} is below real_batch_size={self.real_batch_size}"
            )
        return self


class EvaluateParams(_Strict):
    """``selfsup evaluate``."""

    knn_k: int = Field(200, ge=1)
    knn_temperature: float = Field(0.07, gt=0.0)
    rankme_samples: int = Field(25_600, ge=2, description="N rows of the RankMe matrix (max)")
    probe_epochs: int = Field(100, ge=1, description="full-batch L-BFGS iterations")
    probe_weight_decay: float = Field(1e-4, ge=0.0)
    ece_bins: int = Field(10, ge=1)
    projection_points: int = Field(2_000, ge=10, description="points in the 2-D plot")
    batch_size: int = Field(512, ge=1)
    seed: Seed = 0


class UnlearnParams(_Strict):
    """``selfsup unlearn``: Label-Agnostic Forgetting (Shen et al., ICLR 2024) + its baselines.

    LAF trains two VAEs on representations (remaining / forget data), then alternates extractor
    unlearning (L_UE, with the VAEs frozen) and representation alignment to the frozen original
    encoder (L_RA), each with its own Adam optimiser. ``plus_r`` adds the paper's "+R" step: the
    linear head is fine-tuned on the *labelled* remaining data (outside the label-free path).
    The baselines run in the same stage, on the same data, each timed.
    """

    vae_hidden: int = Field(256, ge=1)
    vae_latent: int = Field(32, ge=1)
    vae_epochs: int = Field(10, ge=1, description="paper: ~10")
    vae_kl_weight: float = Field(0.025, ge=0.0, description="loss = MSE + kl_weight · KL")
    vae_lr: float = Field(1e-3, gt=0.0)
    active_unit_threshold: float = Field(0.01, gt=0.0, description="Cov_x(E_q[z_d]) above: active")
    epochs: int = Field(3, ge=1, description="LAF epochs, each one pass over the forget set")
    ue_lr: float = Field(3e-5, gt=0.0, description="Adam lr of extractor unlearning (L_UE)")
    ra_lr: float = Field(3e-5, gt=0.0, description="Adam lr of representation alignment (L_RA)")
    ra_temperature: float = Field(1.0, gt=0.0, description="τ in log Σ_j exp(d_f,j / τ)")
    batch_size: int = Field(128, ge=2)
    plus_r: bool = Field(True, description='fine-tune the head on labelled remaining data ("+R")')
    plus_r_epochs: int = Field(10, ge=1)
    plus_r_lr: float = Field(1e-3, gt=0.0)
    head_iterations: int = Field(
        100, ge=1, description="L-BFGS iterations of a head fitted when --head is not given"
    )
    head_weight_decay: float = Field(1e-4, ge=0.0)
    baselines: list[Literal["noop", "finetune", "retrain"]] = Field(
        ["noop", "finetune", "retrain"], description="run in the same stage, each timed"
    )
    finetune_epochs: int = Field(2, ge=1, description="supervised fine-tune on remaining data")
    finetune_lr: float = Field(1e-4, gt=0.0)
    retrain_epochs: int | None = Field(
        None, ge=1, description="SSL pretrain epochs of the retrain baseline; null: the model's"
    )
    mia_min_accuracy: float = Field(
        0.55, ge=0.5, le=1.0, description="held-out MIA accuracy on the original model to trust it"
    )
    device: Literal["auto", "cpu", "cuda"] = "auto"
    seed: Seed = 0


class CompressParams(_Strict):
    """``selfsup compress``: a smaller deployable encoder (docs/compress.md).

    ``method``: ``magnitude`` (global unstructured magnitude pruning + feature distillation),
    ``ssvi`` (sparse subspace variational inference, Li et al.), ``int8`` (static post-training
    quantization), or a pruning method followed by int8 (``magnitude+int8``, ``ssvi+int8``).
    Fine-tuning is label-free: the compressed encoder is fitted to the original encoder's
    embeddings of unlabeled training images.
    """

    # Default: the smallest setting measured within 1 kNN point of the dense encoder with the
    # int8 speed-up (BENCHMARKS.md, issue #8): SSVI at density 0.2, then int8 (≈ 11.7× smaller).
    method: Literal["magnitude", "ssvi", "int8", "magnitude+int8", "ssvi+int8"] = "ssvi+int8"
    density: float = Field(
        0.2,
        gt=0.0,
        le=1.0,
        description="kept share of the prunable (conv/linear, not first) weights",
    )
    steps: int = Field(150, ge=0, description="fine-tuning iterations (0: prune only)")
    batch_size: int = Field(128, ge=2)
    lr: float = Field(1e-3, gt=0.0, description="Adam learning rate of the fine-tuning")
    max_images: int | None = Field(
        10_000, ge=2, description="seeded subset of the train split used (labels never read)"
    )
    sigma_init: float = Field(1e-3, gt=0.0, description="SSVI: initial posterior std")
    prior_sigma: float = Field(0.1, gt=0.0, description="SSVI: std of the N(0, s²) prior")
    likelihood_sigma: float = Field(
        0.1, gt=0.0, description="SSVI: Gaussian likelihood std, a fraction of the teacher RMS"
    )
    kl_warmup: float = Field(0.5, ge=0.0, le=1.0, description="SSVI: share of steps to ramp KL")
    drop_fraction: float = Field(
        0.3, ge=0.0, lt=1.0, description="SSVI: α, drop/grow share of active weights at t=0"
    )
    update_every: int = Field(25, ge=1, description="SSVI: ΔT, iterations between drop/grow")
    update_until: float = Field(
        0.75, gt=0.0, le=1.0, description="SSVI: drop/grow stops after this share of steps"
    )
    calibration_images: int = Field(512, ge=1, description="int8: unlabeled calibration images")
    onnx_atol: float = Field(1e-4, gt=0.0, description="ONNX vs PyTorch: |a-b| ≤ atol+rtol·|b|")
    onnx_rtol: float = Field(1e-3, ge=0.0)
    seed: Seed = 0


class GateParams(_Strict):
    """The registry's promotion gates (params.yaml's ``gate``): versioned with the experiment
    that they judge, and the same under ``dvc repro``, the CLI and the pipelines.

    A candidate replaces the champion only when its kNN top-1 (when both were evaluated on
    labeled data) and its RankMe each beat the champion's by at least the margin; an unlearned
    model only when its audit is close enough to retraining from scratch on the remaining data.
    """

    knn_margin: float = Field(0.005, ge=0.0, le=1.0, description="kNN top-1 gain to promote")
    rankme_margin: float = Field(0.0, ge=0.0, description="RankMe gain to promote")
    max_forget_gap: float = Field(
        0.05, ge=0.0, le=1.0, description="deletion: forget-set accuracy minus retrain's, at most"
    )
    max_attack_gap: float = Field(
        0.05, ge=0.0, le=1.0, description="deletion: attack member rate minus retrain's, at most"
    )


class RegistryParams(GateParams):
    """``selfsup registry``: where models are kept (a deployment choice — a local folder under
    ``dvc repro``, S3 on the cluster — so not in params.yaml), with the gate's margins."""

    uri: str = Field(
        "registry", description="local directory or s3://bucket/prefix; $SELFSUP_REGISTRY wins"
    )


class Params(_Strict):
    """All stages' parameters: the content of ``params.yaml``."""

    data: DataParams = DataParams()
    pretrain: PretrainParams = PretrainParams()
    mine: MineParams = MineParams()
    evaluate: EvaluateParams = EvaluateParams()
    unlearn: UnlearnParams = UnlearnParams()
    distill: DistillParams = DistillParams()
    compress: CompressParams = CompressParams()
    gate: GateParams = GateParams()


PROFILES: dict[str, dict[str, Any]] = {
    # CPU, real CIFAR-10 (SimCLR on a 25,600-image subset, the full train split as kNN bank),
    # a small ConvNet: ≤ 10 minutes on 2 cores.
    "default": {},
    # One GPU: ResNet-18 (CIFAR stem), full CIFAR-10, the usual SimCLR recipe.
    "gpu": {
        "pretrain": {
            "encoder": "resnet18_cifar",
            "optimizer": "lars",
            "lr": 1.2,
            "weight_decay": 1e-6,
            "temperature": 0.5,
            "epochs": 200,
            "warmup_epochs": 10,
            "batch_size": 512,
            "num_workers": 8,
            "max_images": None,
            "augment": {
                "jitter_strength": 0.5,
                "crop_scale_min": 0.08,
                "placement": "device",
            },
            "precision": "bf16",
            "channels_last": True,
            "compile": True,
            "sync_batchnorm": True,
            "progressive_resize": None,  # the published recipe; not measured on a GPU here
        },
    },
    # Tests: procedural images, a few seconds end to end.
    "tiny": {
        "data": {"source": "synthetic", "synthetic_train": 64, "synthetic_test": 32},
        "pretrain": {
            "convnet_width": 8,
            "projector_hidden": 32,
            "projector_out": 16,
            "epochs": 2,
            "warmup_epochs": 0.5,
            "batch_size": 16,
            "num_workers": 0,
            "gsimclr_ae_epochs": 1,
            "progressive_resize": None,  # its own tests; the tiny chain's metrics stay put
        },
        "evaluate": {"knn_k": 5, "probe_epochs": 10, "projection_points": 32},
        "unlearn": {
            "vae_hidden": 16,
            "vae_latent": 4,
            "vae_epochs": 2,
            "epochs": 1,
            "batch_size": 16,
            "plus_r_epochs": 1,
            "head_iterations": 10,
            "finetune_epochs": 1,
            "retrain_epochs": 1,
        },
        "compress": {"steps": 6, "batch_size": 16, "update_every": 2, "calibration_images": 16},
        "distill": {
            "num_images": 8,
            "real_images": 32,
            "real_batch_size": 16,
            "outer_steps": 4,
            "pool_size": 2,
            "pool_max_steps": 3,
            "pool_width": 4,
        },
        "mine": {
            "synthetic_videos": 2,
            # 3 s clips at 10 fps: the shortest that hold a track of mine.min_track_seconds (1 s)
            "synthetic_fps": 10,
            "synthetic_frames": 30,
            "synthetic_size": [96, 128],
            "contact_pairs": 2,
        },
    },
}


def _deep_merge(base: dict[str, Any], override: dict[str, Any]) -> dict[str, Any]:
    out = copy.deepcopy(base)
    for key, value in override.items():
        if isinstance(value, dict) and isinstance(out.get(key), dict):
            out[key] = _deep_merge(out[key], value)
        else:
            out[key] = value
    return out


def validate_params(raw: dict[str, Any], where: str) -> Params:
    """Validate a raw mapping as :class:`Params`; errors name ``where`` and each bad key."""
    return _validated(raw, where)


def _validated(raw: dict[str, Any], where: str) -> Params:
    try:
        return Params.model_validate(raw)
    except ValidationError as exc:
        problems = "; ".join(
            f"{'.'.join(str(p) for p in err['loc'])}: {err['msg']}" for err in exc.errors()
        )
        raise ConfigError(f"invalid parameters in {where}: {problems}") from None


def profile_params(name: str) -> Params:
    """The parameters of a named profile (the defaults plus its overrides)."""
    if name not in PROFILES:
        raise ConfigError(f"unknown profile {name!r}; choose one of {sorted(PROFILES)}")
    return _validated(_deep_merge(Params().model_dump(), PROFILES[name]), f"profile {name!r}")


def read_config_text(path: Path, what: str) -> str:
    """The UTF-8 text of a file the user wrote (params, a forget list): a missing, unreadable
    or non-UTF-8 file is a ConfigError naming it, not a traceback."""
    path = Path(path)
    if not path.is_file():
        raise ConfigError(f"{what} {path} does not exist")
    try:
        return path.read_bytes().decode("utf-8")
    except UnicodeDecodeError as exc:
        raise ConfigError(
            f"{what} {path} is not UTF-8 text (byte {exc.start}: {exc.reason})"
        ) from None
    except OSError as exc:
        raise ConfigError(f"{what} {path} cannot be read: {exc.strerror}") from None


def apply_overrides(raw: dict[str, Any], overrides: Sequence[str]) -> dict[str, Any]:
    """``raw`` with each ``section.key=value`` (dotted to any depth; the value read as YAML, so
    ``2`` is an int and ``null`` is None) set in a copy; a key under a null section (an optional
    one left off, e.g. ``pretrain.progressive_resize``) starts it. A malformed override is a
    ConfigError; an unknown key is caught by the validation that follows, naming it."""
    out = copy.deepcopy(raw)
    for item in overrides:
        dotted, sep, text = item.partition("=")
        parts = dotted.strip().split(".")
        if not sep or len(parts) < 2 or not all(parts):
            raise ConfigError(
                f"--set {item!r}: expected section.key=value, e.g. --set pretrain.epochs=2"
            )
        try:
            value = yaml.safe_load(text)
        except yaml.YAMLError as exc:
            raise ConfigError(f"--set {item!r}: the value is not valid YAML: {exc}") from None
        node = out
        for part in parts[:-1]:
            if node.get(part) is None:
                node[part] = {}
            child = node[part]
            if not isinstance(child, dict):
                raise ConfigError(f"--set {item!r}: {part} is not a section")
            node = child
        node[parts[-1]] = value
    return out


def load_params(path: Path, overrides: Sequence[str] = ()) -> Params:
    """Read and validate a params YAML file, with ``--set`` ``overrides`` applied; a missing
    section takes its defaults."""
    path = Path(path)
    if not path.exists():
        raise ConfigError(
            f"params file {path} does not exist; write one with `selfsup params write --out "
            f"{path}` (the defaults, to edit), or pass --params FILE"
        )
    text = read_config_text(path, "params file")
    if not text.strip():
        raise ConfigError(
            f"params file {path} is empty; write one with `selfsup params write --out {path}` (an "
            "empty file is not taken as all defaults)"
        )
    try:
        raw = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise ConfigError(f"{path} is not valid YAML: {exc}") from None
    if not isinstance(raw, dict):
        raise ConfigError(f"{path} must hold a mapping of stage sections, got {type(raw).__name__}")
    where = str(path) + (f" with --set {' '.join(overrides)}" if overrides else "")
    return _validated(apply_overrides(raw, overrides), where)


def render_params(params: Params, profile: str = "default") -> str:
    """YAML text of ``params`` (the committed params.yaml is this for the default profile)."""
    header = (
        f"# Generated by `selfsup params write --profile {profile}`; edit freely, every key is\n"
        "# validated by selfsup.config (unknown keys are errors).\n"
    )
    return header + yaml.safe_dump(params.model_dump(), sort_keys=False)
