"""Recordings with 1-64 channels decode to mono or are refused with a typed error, never a crash.

PyAV's ``to_ndarray`` on a planar frame of 8 or more channels read past its plane
array and killed the process (issue 13): one 341 KB upload took ``medany serve``
down. Every case runs in a child process, so a crash fails the test instead of
ending the test run.
"""

import io
import json
import subprocess
import sys
import wave
from pathlib import Path

import numpy as np
import pytest

FIXTURES = Path(__file__).parent / "fixtures" / "channels"
WAV_CHANNELS = (1, 2, 6, 7, 8, 9, 16, 32, 64)

CHILD = r"""
import json, sys, warnings
from multimodal.errors import InputError
from multimodal.io.audio import read_audio
out = {}
for path in sys.argv[1:]:
    try:
        clip = read_audio(open(path, "rb").read())
        out[path] = {"samples": int(clip.samples.shape[0]), "ndim": clip.samples.ndim,
                     "peak": float(abs(clip.samples).max())}
    except InputError as exc:
        out[path] = {"error": type(exc).__name__, "message": str(exc)}
print(json.dumps(out))
"""


def wav(channels: int, seconds: float = 0.1) -> bytes:
    t = np.arange(int(16000 * seconds)) / 16000
    x = np.repeat((0.3 * np.sin(2 * np.pi * 440 * t))[:, None], channels, axis=1)  # [T, C]
    buf = io.BytesIO()
    with wave.open(buf, "wb") as w:
        w.setnchannels(channels)
        w.setsampwidth(2)
        w.setframerate(16000)
        w.writeframes((x * 32767).astype("<i2").tobytes())
    return buf.getvalue()


def decode_in_child(paths: list[Path]) -> dict:
    proc = subprocess.run([sys.executable, "-c", CHILD, *map(str, paths)], capture_output=True, text=True,
                          timeout=300, cwd=Path(__file__).parents[3])
    assert proc.returncode == 0, f"the decoder crashed (exit {proc.returncode}): {proc.stderr[-800:]}"
    return {Path(k).name: v for k, v in json.loads(proc.stdout.splitlines()[-1]).items()}


@pytest.fixture(scope="module")
def results(tmp_path_factory):
    folder = tmp_path_factory.mktemp("channels")
    paths = []
    for n in WAV_CHANNELS:
        (folder / f"{n}ch.wav").write_bytes(wav(n))
        paths.append(folder / f"{n}ch.wav")
    return decode_in_child(paths + sorted(FIXTURES.glob("*ch*.*")))


def test_every_channel_count_and_format_decodes_to_mono_without_crashing(results):
    expected = {f"{n}ch.wav" for n in WAV_CHANNELS} | {p.name for p in FIXTURES.glob("*ch*.*")}
    assert set(results) == expected
    for name, got in results.items():
        assert "error" not in got, (name, got)
        # 0.1 s of mono 16 kHz (AAC adds up to a frame of 1024 samples of priming and padding)
        assert got["ndim"] == 1 and 1200 <= got["samples"] <= 2700, (name, got)
        assert 0.05 < got["peak"] <= 0.35, (name, got)  # the down-mix of equal channels keeps a sine


def test_more_channels_than_the_limit_are_refused_with_a_typed_error(tmp_path):
    from multimodal.errors import InputError
    from multimodal.io.audio import read_audio
    from multimodal.io.limits import InputLimits

    limits = InputLimits(max_audio_channels=8)
    with pytest.raises(InputError, match="16 channels; the limit is 8"):
        read_audio((FIXTURES / "16ch.ogg").read_bytes(), limits=limits)
    assert read_audio((FIXTURES / "8ch.ogg").read_bytes(), limits=limits).samples.ndim == 1
