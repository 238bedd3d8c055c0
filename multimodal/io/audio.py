"""Audio (WAV/FLAC/MP3/OGG/M4A/WebM/…) -> :class:`AudioClip`, decoded in-process with PyAV.

Every clip is mixed to mono and resampled to 16 kHz. The duration and channel
limits are checked from the header (the WAV ``data`` chunk, else the
container's stated duration) before decoding, and the duration again while
decoding for streams that do not state one, so a long or lying file costs
bounded time and memory. Frames are converted to *packed* samples (one plane)
before they reach numpy: PyAV reads past its plane array on planar frames of 8
or more channels and crashes the process.

Letters: C channels, T samples.
"""

from __future__ import annotations

import io
import struct
import warnings

import numpy as np

from ..errors import CorruptInputError, EmptyInputError, InputTooLargeError, UnsupportedFormatError, require
from .limits import DEFAULT_LIMITS, InputLimits
from .types import SAMPLE_RATE, AudioClip

SILENCE_DB = -60.0  # peak below this (dBFS) counts as silence


class SilentAudioWarning(UserWarning):
    """The clip decoded fine but holds only silence (microphone muted or unplugged?)."""


def _bad_wav(what: str) -> CorruptInputError:
    return CorruptInputError(f"The WAV recording is damaged: {what}.")


def check_wav_header(data: bytes, limits: InputLimits = DEFAULT_LIMITS) -> float | None:
    """Validate a RIFF/WAVE header; returns the declared duration in seconds (None if unknown).

    ffmpeg tolerates broken WAV headers by guessing, which can turn a damaged
    file into minutes of noise; here a missing format, zero channels or a size
    that disagrees with the file is refused outright.
    """
    if len(data) < 12 or data[8:12] != b"WAVE":
        raise _bad_wav("its header is incomplete")
    endian = ">" if data[:4] == b"RIFX" else "<"
    pos, fmt, n_chunks = 12, None, 0
    while pos + 8 <= len(data) and n_chunks < 256:
        chunk_id = data[pos : pos + 4]
        (size,) = struct.unpack(endian + "I", data[pos + 4 : pos + 8])
        body = pos + 8
        n_chunks += 1
        if chunk_id == b"fmt ":
            if size < 16 or body + 16 > len(data):
                raise _bad_wav("its format block is incomplete")
            _tag, channels, rate, _byte_rate, block_align, bits = struct.unpack(
                endian + "HHIIHH", data[body : body + 16]
            )
            if channels == 0:
                raise _bad_wav("it declares zero audio channels")
            if rate == 0 or rate > 1_000_000 or block_align == 0:
                raise _bad_wav("its format block has impossible values")
            limits.check_channels(channels)
            fmt = (channels, rate, block_align)
        elif chunk_id == b"data":
            if fmt is None:
                raise _bad_wav("the audio data comes before its format description")
            channels, rate, block_align = fmt
            available = len(data) - body
            unknown = size in (0, 0xFFFFFFFF) or data[:4] == b"RF64"  # streaming writers leave it open
            declared = available if unknown else size
            seconds = declared / (block_align * rate)
            limits.check_duration(seconds)
            if not unknown and size > available + block_align:
                raise _bad_wav("it is shorter than its header declares (truncated file?)")
            return seconds
        pos = body + size + (size & 1)  # chunks are word-aligned
    if fmt is None:
        raise _bad_wav("it has no format description")
    raise _bad_wav("it contains no audio data")


def read_audio(data: bytes, *, limits: InputLimits = DEFAULT_LIMITS) -> AudioClip:
    """Decode an encoded audio file into a mono 16 kHz :class:`AudioClip`.

    An all-silent clip is returned (it is valid input) but warns
    :class:`SilentAudioWarning`; a clip with no samples raises ``EmptyInputError``.
    """
    av = require("av")
    if len(data) == 0:
        raise EmptyInputError("The audio file is empty.")
    limits.check_bytes(len(data))
    if data[:4] in (b"RIFF", b"RIFX", b"RF64") and data[8:12] == b"WAVE":
        check_wav_header(data, limits)
    try:
        container = av.open(io.BytesIO(data), mode="r")
    except av.error.InvalidDataError:
        raise CorruptInputError("The audio file is damaged or not in a format MedAny can read.") from None
    except Exception:
        raise CorruptInputError("The audio file cannot be opened.") from None
    with container:
        if not container.streams.audio:
            raise EmptyInputError("The file contains no audio track.")
        stream = container.streams.audio[0]
        limits.check_channels(stream.codec_context.channels or 0)
        declared = _declared_seconds(container, stream)
        if declared is not None:
            limits.check_duration(declared)
        samples = _decode(av, container, stream, limits)
    if samples.size == 0:
        raise EmptyInputError("The recording contains no audio.")
    if not is_audible(samples):
        warnings.warn("The recording is silent: check that the microphone was on.", SilentAudioWarning,
                      stacklevel=2)
    return AudioClip(samples=samples, sample_rate=SAMPLE_RATE)


def _declared_seconds(container, stream) -> float | None:
    if stream.duration is not None and stream.time_base is not None:
        return float(stream.duration * stream.time_base)
    if container.duration is not None:
        return container.duration / 1_000_000  # av.time_base
    return None


def _decode(av, container, stream, limits: InputLimits) -> np.ndarray:
    """Decode, resample to 16 kHz packed float (one plane, whatever the channel count), and average the channels."""
    resampler = av.AudioResampler(format="flt", rate=SAMPLE_RATE)
    max_samples = int(limits.max_audio_s * SAMPLE_RATE) + SAMPLE_RATE  # 1 s of slack for codec padding
    chunks, total = [], 0

    def take(frames) -> None:
        nonlocal total
        for out in frames:
            channels = out.layout.nb_channels
            limits.check_channels(channels)  # a stream may change layout mid-way
            packed = out.to_ndarray().reshape(-1, channels)  # [1, T*C] -> [T, C]
            mono = packed.mean(axis=1, dtype=np.float32) if channels > 1 else packed[:, 0]
            chunks.append(mono.astype(np.float32, copy=False))
            total += mono.shape[0]
            if total > max_samples:
                limits.check_duration(total / SAMPLE_RATE)

    try:
        for frame in container.decode(stream):
            take(resampler.resample(frame))
        take(resampler.resample(None))
    except InputTooLargeError:
        raise
    except av.error.DecoderNotFoundError:
        raise UnsupportedFormatError("The audio uses a codec MedAny cannot decode.") from None
    except Exception:
        raise CorruptInputError("The audio stream is damaged and cannot be decoded.") from None
    if not chunks:
        return np.zeros(0, dtype=np.float32)
    samples = np.concatenate(chunks)  # [T]
    np.nan_to_num(samples, copy=False, nan=0.0, posinf=1.0, neginf=-1.0)
    return np.clip(samples, -1.0, 1.0, out=samples)


def is_audible(samples: np.ndarray, threshold_db: float = SILENCE_DB) -> bool:
    """True when the peak level exceeds ``threshold_db`` dBFS."""
    if samples.size == 0:
        return False
    peak = float(np.max(np.abs(samples)))
    return peak > 10.0 ** (threshold_db / 20.0)
