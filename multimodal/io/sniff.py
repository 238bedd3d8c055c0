"""Content sniffing: what an input really is, from its first bytes, never its name.

Uploads arrive with wrong or missing extensions (``scan.jpg`` that is a DICOM,
``voice.wav`` that is an M4A), so every loader dispatches on magic numbers.
"""

from __future__ import annotations

from dataclasses import dataclass

DICOM = "dicom"
IMAGE = "image"
AUDIO = "audio"

# Bytes needed to recognise every format below (DICOM's preamble is 128 + "DICM").
SNIFF_BYTES = 512


@dataclass(frozen=True)
class Sniffed:
    """``kind`` is ``"dicom"``, ``"image"`` or ``"audio"``; ``fmt`` a short format name."""

    kind: str
    fmt: str


def _dicom_without_preamble(head: bytes) -> bool:
    """A DICOM stream written without the 128-byte preamble starts with a group
    0x0002 (file meta) or 0x0008 (identifying) element, little- or big-endian."""
    if len(head) < 8:
        return False
    group_le = int.from_bytes(head[0:2], "little")
    group_be = int.from_bytes(head[0:2], "big")
    if group_le not in (0x0002, 0x0008) and group_be not in (0x0008,):
        return False
    element_le = int.from_bytes(head[2:4], "little")
    # Group lengths (xxxx,0000) and the first tags of group 8 are the usual start.
    if element_le > 0x0100 and int.from_bytes(head[2:4], "big") > 0x0100:
        return False
    vr = head[4:6]
    if vr.isalpha() and vr.isupper():  # explicit VR
        return True
    # Implicit VR: a 4-byte little-endian length that fits in the header block.
    return int.from_bytes(head[4:8], "little") < 0x10000


def sniff(head: bytes) -> Sniffed | None:
    """Identify ``head`` (the first :data:`SNIFF_BYTES` bytes); ``None`` when unknown."""
    h = bytes(head[:SNIFF_BYTES])
    if len(h) >= 132 and h[128:132] == b"DICM":
        return Sniffed(DICOM, "dicom")
    # Images.
    if h.startswith(b"\x89PNG\r\n\x1a\n"):
        return Sniffed(IMAGE, "png")
    if h.startswith(b"\xff\xd8\xff"):
        return Sniffed(IMAGE, "jpeg")
    if h[:4] == b"RIFF" and h[8:12] == b"WEBP":
        return Sniffed(IMAGE, "webp")
    if h[:4] in (b"II*\x00", b"MM\x00*", b"II+\x00", b"MM\x00+"):
        return Sniffed(IMAGE, "tiff")
    if h[:6] in (b"GIF87a", b"GIF89a"):
        return Sniffed(IMAGE, "gif")
    if h[:2] == b"BM" and len(h) >= 26:
        return Sniffed(IMAGE, "bmp")
    # Audio.
    if h[:4] in (b"RIFF", b"RIFX", b"RF64") and h[8:12] == b"WAVE":
        return Sniffed(AUDIO, "wav")
    if h[:4] == b"fLaC":
        return Sniffed(AUDIO, "flac")
    if h[:4] == b"OggS":
        return Sniffed(AUDIO, "ogg")
    if h[:3] == b"ID3":
        return Sniffed(AUDIO, "mp3")
    if h[4:8] == b"ftyp":
        brand = h[8:12]
        if brand in (b"heic", b"heix", b"mif1", b"avif"):
            return Sniffed(IMAGE, brand.decode("ascii"))
        return Sniffed(AUDIO, "mp4")  # M4A / MP4 / 3GP: the audio track is used
    if h[:4] == b"\x1a\x45\xdf\xa3":
        return Sniffed(AUDIO, "webm")  # WebM / Matroska
    if h[:4] == b"FORM" and h[8:12] in (b"AIFF", b"AIFC"):
        return Sniffed(AUDIO, "aiff")
    if h[:4] == b"caff":
        return Sniffed(AUDIO, "caf")
    if h[:6] == b"#!AMR\n":
        return Sniffed(AUDIO, "amr")
    if len(h) >= 2 and h[0] == 0xFF and (h[1] & 0xF6) == 0xF0:
        return Sniffed(AUDIO, "aac")  # ADTS
    if len(h) >= 2 and h[0] == 0xFF and (h[1] & 0xE0) == 0xE0 and (h[1] & 0x06) != 0:
        return Sniffed(AUDIO, "mp3")  # bare MPEG audio frame sync
    if _dicom_without_preamble(h):
        return Sniffed(DICOM, "dicom-raw")
    return None


def describe(s: Sniffed | None) -> str:
    """Words for an error message: what the upload turned out to be."""
    if s is None:
        return "not a recognised medical image, photo or audio file"
    names = {DICOM: "a DICOM file", IMAGE: f"a {s.fmt.upper()} image", AUDIO: f"a {s.fmt.upper()} audio file"}
    return names[s.kind]
