"""Content sniffing recognises every supported format by its bytes alone."""

from __future__ import annotations

import pytest

from multimodal.io.sniff import AUDIO, DICOM, IMAGE, describe, sniff

CASES = [
    (b"\0" * 128 + b"DICM" + b"\x02\x00", DICOM, "dicom"),
    (b"\x02\x00\x00\x00UL\x04\x00\xc4\x00\x00\x00", DICOM, "dicom-raw"),
    (b"\x08\x00\x05\x00CS\x0a\x00ISO_IR 100", DICOM, "dicom-raw"),
    (b"\x89PNG\r\n\x1a\n" + b"\0" * 8, IMAGE, "png"),
    (b"\xff\xd8\xff\xe0\0\x10JFIF", IMAGE, "jpeg"),
    (b"RIFF\0\0\0\0WEBPVP8 ", IMAGE, "webp"),
    (b"II*\x00\x08\0\0\0", IMAGE, "tiff"),
    (b"GIF89a\x01\0", IMAGE, "gif"),
    (b"RIFF\0\0\0\0WAVEfmt ", AUDIO, "wav"),
    (b"fLaC\0\0\0\x22", AUDIO, "flac"),
    (b"OggS\0\x02", AUDIO, "ogg"),
    (b"ID3\x04\0\0\0\0\0\0", AUDIO, "mp3"),
    (b"\xff\xfb\x90\x64\0\0", AUDIO, "mp3"),
    (b"\0\0\0\x1cftypM4A \0\0\0\0", AUDIO, "mp4"),
    (b"\x1a\x45\xdf\xa3\x9f\x42\x86\x81", AUDIO, "webm"),
]


@pytest.mark.parametrize("head,kind,fmt", CASES)
def test_sniff(head, kind, fmt):
    found = sniff(head)
    assert found is not None and (found.kind, found.fmt) == (kind, fmt)


@pytest.mark.parametrize("head", [b"", b"hello world", b"%PDF-1.7\n", b"PK\x03\x04", b"\0" * 64, b"{\"a\": 1}"])
def test_unknown(head):
    assert sniff(head) is None
    assert "not a recognised" in describe(None)
