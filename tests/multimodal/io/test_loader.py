"""Sources (path, bytes, file object), dispatch by content, limits, and path-free messages."""

from __future__ import annotations

import io

import numpy as np
import pytest

from multimodal.errors import InputError, InputTooLargeError, UnsupportedFormatError
from multimodal.io import AudioClip, InputLimits, MedicalImage, load_audio, load_image, load_media
from multimodal.io.limits import DEFAULT_LIMITS
from tests.multimodal.io.io_helpers import sample_bytes


def test_default_limits_are_sane():
    assert DEFAULT_LIMITS.max_bytes == 512 * 2**20 and DEFAULT_LIMITS.max_pixels == 100_000_000
    assert DEFAULT_LIMITS.max_frames == 2000 and DEFAULT_LIMITS.max_audio_s == 900


def test_path_bytes_and_file_object_agree(tmp_path):
    data = sample_bytes("CT_small.dcm")
    path = tmp_path / "scan.jpg"  # misleading extension on purpose
    path.write_bytes(data)
    a = load_image(str(path)).pixels
    b = load_image(path).pixels
    c = load_image(data).pixels
    d = load_image(io.BytesIO(data)).pixels
    assert all(np.array_equal(a, x) for x in (b, c, d))
    assert isinstance(load_media(path), MedicalImage)


def test_sample_scheme():
    img = load_image("sample:MR_small.dcm")
    assert img.kind == "dicom" and img.meta["modality"] == "MR"


def test_kind_mismatch_is_explained():
    with pytest.raises(UnsupportedFormatError, match="DICOM"):
        load_audio(sample_bytes("CT_small.dcm"))


def test_messages_never_contain_paths(tmp_path):
    secret = tmp_path / "Doe_John_MRN12345"
    secret.mkdir()
    bad = secret / "scan.dcm"
    bad.write_bytes(b"not a scan at all")
    for fn, src in ((load_image, bad), (load_audio, bad), (load_media, secret / "missing.dcm"), (load_image, secret)):
        with pytest.raises(InputError) as info:
            fn(src)
        assert "Doe_John" not in str(info.value) and "MRN12345" not in str(info.value)


def test_size_limit_checked_from_stat_and_stream(tmp_path):
    p = tmp_path / "big.wav"
    p.write_bytes(b"\0" * 5000)
    small = InputLimits(max_bytes=4096)
    with pytest.raises(InputTooLargeError):
        load_media(p, limits=small)
    with pytest.raises(InputTooLargeError):
        load_media(io.BytesIO(b"\0" * 5000), limits=small)


def test_bad_source_types():
    with pytest.raises(InputError):
        load_media(12345)
    with pytest.raises(InputError):
        load_media(io.StringIO("text mode"))


def test_audio_dispatch():
    from tests.multimodal.io.io_helpers import encode

    assert isinstance(load_media(encode("wav", "pcm_s16le")), AudioClip)


def test_special_files_are_refused_not_read(tmp_path):
    """Issue 13: a FIFO hung `medany chat` forever; /dev/zero was read without limit."""
    import os
    import threading

    fifo = tmp_path / "upload.png"
    os.mkfifo(fifo)
    errors = []

    def load(source):
        try:
            load_media(source)
        except InputError as exc:
            errors.append(exc)

    threads = [threading.Thread(target=load, args=(s,), daemon=True) for s in (str(fifo), "/dev/zero")]
    for t in threads:
        t.start()
    for t in threads:
        t.join(20)
    assert not any(t.is_alive() for t in threads), "hung on a special file"
    assert len(errors) == 2 and all(e.code == "not_a_file" for e in errors)
    assert all(str(tmp_path) not in str(e) for e in errors)
