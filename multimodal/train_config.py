"""What a projector training run needs, as one dataclass serialized to JSON or YAML.

Relative paths in a config file (``data``, ``eval_data``, ``data_root``,
``output_dir``, ``init_*_projector``, ``feature_cache_dir``) are resolved
against the folder holding the file, so a recipe runs from any working
directory; ``~`` and ``$VARS`` are expanded first.
"""

from __future__ import annotations

import dataclasses
import json
import math
import os
from dataclasses import dataclass, field
from pathlib import Path

from .errors import InputError, require
from .parallel import PARALLEL_MODES

_PATH_FIELDS = ("data", "eval_data", "data_root", "output_dir", "init_image_projector",
                "init_audio_projector", "feature_cache_dir")
ACCOUNTANTS = ("rdp", "prv")


def _positive(value) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value) and value > 0


@dataclass
class DPConfig:
    """Differentially private projector training (DP-SGD, :mod:`multimodal.privacy`): the guarantee to reach.

    In a config file: ``"dp": {"epsilon": 3, "delta": 1e-5, "max_grad_norm": 1.0}``.
    """

    epsilon: float
    """Target epsilon after the run's last step; the noise multiplier is calibrated to reach it."""
    delta: float
    """Target delta; keep it well below 1 / (training conversations)."""
    max_grad_norm: float
    """Per-conversation clipping bound C: the L2 norm of one conversation's gradient over all projector parameters."""
    accountant: str = "rdp"
    """Privacy accountant: ``rdp`` (Renyi DP) or ``prv`` (privacy random variables, usually tighter)."""
    seed: int | None = None
    """Seed of the Poisson sampling and the noise, for reproducible experiments only: whoever knows it can
    regenerate both, which voids the guarantee. None (the default): a secret seed from the operating system,
    kept in the checkpoints alone (keep them as private as the training data)."""

    def __post_init__(self):
        if not _positive(self.epsilon):
            raise InputError("dp.epsilon must be a positive finite number.")
        if not (isinstance(self.delta, float) and 0.0 < self.delta < 1.0):
            raise InputError("dp.delta must be between 0 and 1 (exclusive), e.g. 1e-5.")
        if not _positive(self.max_grad_norm):
            raise InputError("dp.max_grad_norm must be a positive finite number.")
        if self.accountant not in ACCOUNTANTS:
            raise InputError(f"dp.accountant must be one of {', '.join(ACCOUNTANTS)}.")
        if self.seed is not None and (not isinstance(self.seed, int) or isinstance(self.seed, bool) or self.seed < 0):
            raise InputError("dp.seed must be a non-negative integer, or null for a secret seed.")
        self.epsilon, self.max_grad_norm = float(self.epsilon), float(self.max_grad_norm)

    @classmethod
    def from_value(cls, value) -> "DPConfig":
        """A :class:`DPConfig` from itself or a mapping of its fields (what a config file holds)."""
        if isinstance(value, cls):
            return value
        if not isinstance(value, dict):
            raise InputError("dp must be a mapping with epsilon, delta and max_grad_norm.")
        names = [f.name for f in dataclasses.fields(cls)]
        unknown = sorted(set(value) - set(names))
        if unknown:
            raise InputError(f"Unknown dp option(s): {', '.join(unknown)}.")
        missing = [n for n in ("epsilon", "delta", "max_grad_norm") if n not in value]
        if missing:
            raise InputError(f"dp needs epsilon, delta and max_grad_norm; missing: {', '.join(missing)}.")
        return cls(**value)


@dataclass
class TrainConfig:
    """One projector training run (stage 1 alignment or stage 2 instruction tuning)."""

    data: str = ""
    """LLaVA JSON/JSONL training set."""
    eval_data: str | None = None
    """Held-out set for loss/perplexity and generation metrics after training."""
    data_root: str | None = None
    """Folder media paths are relative to (default: the dataset file's folder)."""
    stage: int = 1
    """1: train projectors only (encoders and LLM frozen). 2: projectors plus optional LoRA on the LLM."""
    llm: str = "embedded"
    """LLM backbone name for :func:`multimodal.backbone.load_llm` (``tiny-random`` in tests)."""
    image_encoder: str | None = None
    """Encoder registry name for ``"image"`` samples (e.g. ``medany-lite0``)."""
    audio_encoder: str | None = None
    """Encoder registry name for ``"audio"`` samples (e.g. ``medany-whisper``)."""
    image_projector: str = "mlp2x_gelu"
    """Projector registry name for images."""
    audio_projector: str = "concat4"
    """Projector registry name for speech (``concat{k}`` merges k 20 ms frames)."""
    projector_kwargs: dict = field(default_factory=dict)
    """Extra builder kwargs per modality: ``{"image": {"num_queries": 32}}``."""
    share_projector: bool = False
    """Image and audio use one MoE projector: ``image_projector`` and ``audio_projector`` both name
    ``moe_mlp{E}x{k}`` with the same ``width`` in ``projector_kwargs``; router and experts are shared, each modality
    keeps its own input layer (``stack``, ``width``). Each ``<kind>_projector/`` folder then holds the whole
    projector for that modality (:func:`projectors.moe.share_experts`)."""
    moe_balance_weight: float = 0.01
    """Weight of an MoE projector's Switch load-balance loss ``E * sum_i f_i * P_i`` in the training loss."""
    moe_z_weight: float = 0.001
    """Weight of an MoE projector's router z-loss ``mean(logsumexp(logits)^2)`` in the training loss."""
    init_image_projector: str | None = None
    """Start from this saved projector directory (e.g. stage 1's output) instead of random init."""
    init_audio_projector: str | None = None
    """As ``init_image_projector``, for speech."""
    lr_projector: float = 1e-3
    """Peak learning rate of the projectors."""
    lr_lora: float = 2e-4
    """Peak learning rate of the LoRA adapters (stage 2)."""
    weight_decay: float = 0.0
    """AdamW weight decay (all trained parameters)."""
    warmup_steps: int = 0
    """Linear warm-up steps before the schedule."""
    schedule: str = "cosine"
    """``cosine`` (to 10% of peak) or ``constant`` after warm-up."""
    max_grad_norm: float = 1.0
    """Gradient clipping norm (0 disables)."""
    batch_size: int = 4
    """Conversations per micro-batch per process."""
    grad_accum: int = 1
    """Micro-batches per optimizer step."""
    max_steps: int | None = None
    """Optimizer steps in total; when None, ``epochs`` decides."""
    epochs: float = 1.0
    """Passes over the training set (used when ``max_steps`` is None)."""
    seed: int = 0
    """Seeds projector init, data order and every RNG."""
    bf16: bool | str = "auto"
    """Autocast to bfloat16: True, False, or ``auto`` (on CUDA GPUs that support it)."""
    parallel: str = "ddp"
    """With several processes: ``ddp`` (each rank holds the whole stack) or ``fsdp`` (the frozen LLM is sharded
    across ranks, for backbones too large for one GPU; projectors only). Ignored when running alone."""
    grad_checkpointing: bool = False
    """Recompute LLM activations in the backward pass (saves memory on long speech sequences)."""
    lora: bool = False
    """Stage 2 only: add LoRA adapters to the LLM (needs ``peft``)."""
    lora_r: int = 8
    lora_alpha: int = 16
    lora_dropout: float = 0.0
    lora_targets: list = field(default_factory=lambda: ["q_proj", "k_proj", "v_proj", "o_proj"])
    """Module names LoRA wraps."""
    max_length: int | None = 2048
    """Longest tokenized conversation allowed (media tokens included)."""
    output_dir: str = "runs/projector"
    """Checkpoints, metrics and the final projectors go here."""
    save_every: int = 100
    """Checkpoint every N optimizer steps (and at the end)."""
    keep_last: int = 2
    """Checkpoints kept on disk; older ones are deleted."""
    log_every: int = 10
    """Write a metrics line every N steps."""
    tensorboard: bool = False
    """Also log to TensorBoard (needs ``tensorboard``)."""
    progress: bool = True
    """Show a progress bar (rank 0)."""
    plot: bool = True
    """Write ``loss.png`` at the end (needs ``matplotlib``)."""
    use_feature_cache: bool = False
    """Stage 1: precompute frozen encoder tokens once and train from them."""
    feature_cache_dir: str | None = None
    """Where the feature cache lives (default: ``<MEDANY_CACHE>/features``)."""
    num_workers: int = 0
    """DataLoader worker processes."""
    eval_max_samples: int | None = None
    """Evaluate on at most this many held-out samples."""
    eval_max_new_tokens: int = 64
    """Generation budget per held-out sample."""
    dp: DPConfig | None = None
    """Train the projectors with differential privacy (:class:`DPConfig`; needs ``opacus``); None: ordinary training.
    ``batch_size * grad_accum`` is then the expected size of each step's Poisson-sampled batch."""

    def __post_init__(self):
        if self.stage not in (1, 2):
            raise InputError("stage must be 1 (alignment) or 2 (instruction tuning).")
        if self.lora and self.stage != 2:
            raise InputError("LoRA adapters are trained in stage 2 only.")
        if self.schedule not in ("cosine", "constant"):
            raise InputError("schedule must be 'cosine' or 'constant'.")
        if self.parallel not in PARALLEL_MODES:
            raise InputError(f"parallel must be one of {', '.join(PARALLEL_MODES)}.")
        if self.lora and self.parallel == "fsdp":
            raise InputError("LoRA adapters train under parallel='ddp' for now; parallel='fsdp' trains projectors "
                             "against a sharded, frozen LLM.")
        if self.batch_size < 1 or self.grad_accum < 1 or self.keep_last < 1:
            raise InputError("batch_size, grad_accum and keep_last must be at least 1.")
        if not (self.image_encoder or self.audio_encoder):
            raise InputError("Name at least one encoder (image_encoder or audio_encoder).")
        moe = [k for k in ("image", "audio") if self.projector_for(k).startswith("moe_")]
        if self.share_projector and len(moe) < 2:
            raise InputError("share_projector needs MoE projectors (moe_mlp{E}x{k}) as both image_projector and "
                             "audio_projector.")
        if not (math.isfinite(self.moe_balance_weight) and math.isfinite(self.moe_z_weight)
                and self.moe_balance_weight >= 0 and self.moe_z_weight >= 0):
            raise InputError("moe_balance_weight and moe_z_weight must be finite and at least 0.")
        if self.dp is not None:
            if any(self.encoder_for(k) for k in moe):
                raise InputError("Differential privacy does not cover MoE projectors: their load-balance loss couples "
                                 "the conversations of a batch, so per-conversation clipping would not bound it.")
            self.dp = DPConfig.from_value(self.dp)
            if self.lora:
                raise InputError("Differential privacy covers projectors only: set lora to false to train with dp.")

    def encoder_for(self, kind: str) -> str | None:
        return {"image": self.image_encoder, "audio": self.audio_encoder}[kind]

    def projector_for(self, kind: str) -> str:
        return {"image": self.image_projector, "audio": self.audio_projector}[kind]

    def init_projector_for(self, kind: str) -> str | None:
        return {"image": self.init_image_projector, "audio": self.init_audio_projector}[kind]

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), indent=2, sort_keys=True)

    @classmethod
    def from_dict(cls, data: dict, base_dir: str | Path | None = None) -> "TrainConfig":
        """Build from a mapping; unknown keys are an error, relative paths join ``base_dir``."""
        names = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(data) - names)
        if unknown:
            raise InputError(f"Unknown training option(s): {', '.join(unknown)}.")
        data = dict(data)
        for key in _PATH_FIELDS:
            if data.get(key):
                p = Path(os.path.expandvars(os.path.expanduser(str(data[key]))))
                if base_dir is not None and not p.is_absolute():
                    p = Path(base_dir) / p
                data[key] = str(p)
        return cls(**data)

    @classmethod
    def from_file(cls, path: str | Path) -> "TrainConfig":
        """Load a ``.json`` or ``.yaml``/``.yml`` file."""
        path = Path(path)
        try:
            text = path.read_text()
        except FileNotFoundError:
            raise InputError("The training config file was not found.") from None
        if path.suffix.lower() in (".yaml", ".yml"):
            data = require("yaml").safe_load(text)
        else:
            try:
                data = json.loads(text)
            except json.JSONDecodeError as exc:
                raise InputError(f"The training config is not valid JSON (line {exc.lineno}).") from None
        if not isinstance(data, dict):
            raise InputError("A training config must be a mapping of options.")
        return cls.from_dict(data, base_dir=path.resolve().parent)
