"""Transcription with faster-whisper (CTranslate2) over the same CTranslate2 weights the encoders convert.

The embedded Whisper models ship in CTranslate2 format, so faster-whisper reads
them as they are: int8 matrix products on the CPU instead of openai-whisper's
fp32 PyTorch. :class:`FastTranscriber` gives the same :class:`~encoders.base.Transcript`
as :meth:`WhisperEncoder.transcribe <encoders.whisper_encoder.WhisperEncoder.transcribe>`
(greedy, temperature 0, no conditioning on earlier windows), and stops between
30-second windows when a request's deadline passes. Optional: ``pip install
faster-whisper``; ``speech_backend`` in the stack config picks it.
"""

from __future__ import annotations

from pathlib import Path

from multimodal.cancel import checkpoint
from multimodal.errors import require

from .base import Transcript
from .languages import check_language
from .whisper_encoder import check_clip, joined_text, without_loops


class FastTranscriber:
    """faster-whisper on a CTranslate2 Whisper folder (``model.bin``, ``config.json``, vocabulary)."""

    def __init__(self, model_dir: str | Path, compute_type: str = "int8", threads: int = 0):
        fw = require("faster_whisper", "fast-speech")
        self.model_dir = Path(model_dir)
        self.compute_type = compute_type
        self.model = fw.WhisperModel(str(self.model_dir), device="cpu", compute_type=compute_type,
                                     cpu_threads=threads)
        self.multilingual = bool(self.model.model.is_multilingual)

    def transcribe(self, clip, language: str | None = None, translate: bool = True,
                   timestamps: bool = False) -> Transcript:
        samples = check_clip(clip)
        given = check_language(language, self.multilingual) if language else None
        if not self.multilingual:
            given = "en"
        segments, info = self._run(samples, given, "transcribe", timestamps)
        spoken = given or info.language
        english = []
        if translate and spoken != "en" and self.multilingual:
            english, _ = self._run(samples, spoken, "translate", timestamps)
        confidence = None if given else float(info.language_probability)
        return Transcript(joined_text(segments), spoken, joined_text(english), tuple(segments), confidence,
                          tuple(english) if timestamps else ())

    def _run(self, samples, language, task: str, timestamps: bool):
        found, info = self.model.transcribe(samples, language=language, task=task, beam_size=1, temperature=0.0,
                                            condition_on_previous_text=False, without_timestamps=not timestamps,
                                            vad_filter=False)
        segments = []
        for s in found:  # decoded window by window: a request's deadline stops it between windows
            checkpoint()
            segments.append((float(s.start), float(s.end), without_loops(s.text.strip())))
        return segments, info
