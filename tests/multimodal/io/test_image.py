"""Photos: formats, EXIF orientation, bit depths, alpha, and >= 10 bad images refused fast."""

from __future__ import annotations

import io
import struct
import zlib

import numpy as np
import pytest
from PIL import Image

from multimodal.errors import CorruptInputError, EmptyInputError, InputError, InputTooLargeError, UnsupportedFormatError
from multimodal.io import InputLimits, load_image, load_media
from multimodal.io.image import array_to_pixels
from tests.multimodal.io.io_helpers import assert_fails_fast


def _encode(img: Image.Image, fmt: str, **kw) -> bytes:
    buf = io.BytesIO()
    img.save(buf, format=fmt, **kw)
    return buf.getvalue()


def _gradient(w=64, h=48) -> Image.Image:
    x = np.zeros((h, w, 3), np.uint8)
    x[..., 0] = np.linspace(0, 255, w, dtype=np.uint8)[None]
    x[..., 1] = np.linspace(0, 255, h, dtype=np.uint8)[:, None]
    return Image.fromarray(x)


@pytest.mark.parametrize("fmt", ["PNG", "JPEG", "WEBP", "TIFF", "BMP", "GIF"])
def test_formats_decode(fmt):
    img = load_image(_encode(_gradient(), fmt))
    assert img.kind == "photo" and img.pixels.shape == (48, 64, 3) and img.pixels.dtype == np.float32
    assert 0.0 <= img.pixels.min() and img.pixels.max() <= 1.0
    assert img.pixels[..., 0].mean(axis=0)[-1] > img.pixels[..., 0].mean(axis=0)[0] + 0.5


def test_exif_orientation_is_applied():
    src = _gradient(64, 48)
    exif = Image.Exif()
    exif[0x0112] = 6  # rotate 90 CW to display
    img = load_image(_encode(src, "JPEG", exif=exif.tobytes()))
    assert img.pixels.shape == (64, 48, 3)  # upright: width and height swapped


def test_sixteen_bit_png_keeps_precision():
    arr = (np.arange(64 * 64, dtype=np.uint32).reshape(64, 64) * 16).astype(np.uint16)
    img = load_image(_encode(Image.fromarray(arr), "PNG"))
    np.testing.assert_allclose(img.pixels[..., 0], arr / 65535.0, atol=1e-6)
    assert len(np.unique(img.pixels[..., 0])) == 4096  # more than 256 levels survive


def test_grayscale_and_rgba():
    gray = load_image(_encode(Image.new("L", (10, 8), 128), "PNG")).pixels
    assert gray.shape == (8, 10, 3) and np.allclose(gray, 128 / 255)
    rgba = Image.new("RGBA", (10, 8), (0, 0, 0, 0))  # fully transparent black
    assert np.allclose(load_image(_encode(rgba, "PNG")).pixels, 1.0)  # composited on white


def test_pil_and_numpy_sources():
    pil = _gradient()
    a = load_image(pil).pixels
    b = load_media(np.asarray(pil)).pixels
    np.testing.assert_allclose(a, b)
    assert array_to_pixels(np.full((4, 4), 2.0, np.float32)).max() == 0.0  # constant float -> zeros
    with pytest.raises(InputError):
        array_to_pixels(np.zeros((2, 2, 2, 2)))


def _png_chunk(kind: bytes, body: bytes) -> bytes:
    return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))


def _png_header(w: int, h: int, idat: bytes = b"") -> bytes:
    ihdr = struct.pack(">IIBBBBB", w, h, 8, 2, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + _png_chunk(b"IHDR", ihdr) + _png_chunk(b"IDAT", idat) + _png_chunk(b"IEND", b"")


def _bomb_png() -> bytes:
    # 30000 x 30000 RGB declared; a few hundred bytes on disk
    return _png_header(30000, 30000, zlib.compress(b"\0" * 1000))


def _truncated(fmt: str, keep: float) -> bytes:
    data = _encode(Image.fromarray(np.random.default_rng(0).integers(0, 255, (64, 64, 3), np.uint8)), fmt)
    return data[: int(len(data) * keep)]


def _bad_crc_png() -> bytes:
    data = bytearray(_encode(_gradient(), "PNG"))
    data[29] ^= 0xFF  # inside IHDR's CRC
    return bytes(data)


BAD_IMAGES = {
    "empty": (lambda: b"", EmptyInputError),
    "text_file": (lambda: b"meal: rice and beans\n" * 10, UnsupportedFormatError),
    "png_truncated_half": (lambda: _truncated("PNG", 0.5), CorruptInputError),
    "png_signature_only": (lambda: b"\x89PNG\r\n\x1a\n", CorruptInputError),
    "jpeg_truncated": (lambda: _truncated("JPEG", 0.3), CorruptInputError),
    "jpeg_soi_only": (lambda: b"\xff\xd8\xff\xe0" + b"\0" * 20, CorruptInputError),
    "webp_truncated": (lambda: _truncated("WEBP", 0.4), CorruptInputError),
    "tiff_truncated": (lambda: _truncated("TIFF", 0.2), CorruptInputError),
    "png_bad_crc": (_bad_crc_png, CorruptInputError),
    "png_bomb_by_header": (_bomb_png, InputTooLargeError),
    "png_zero_width": (lambda: _png_header(0, 10), (EmptyInputError, CorruptInputError)),
    "gif_header_only": (lambda: b"GIF89a" + b"\0" * 7, CorruptInputError),
    "audio_given_as_image": (lambda: b"RIFF\x24\0\0\0WAVEfmt " + b"\0" * 40, UnsupportedFormatError),
}


def test_enough_bad_images():
    assert len(BAD_IMAGES) >= 10


@pytest.mark.parametrize("case", sorted(BAD_IMAGES))
def test_bad_image_refused_fast(case):
    make, expected = BAD_IMAGES[case]
    assert_fails_fast(expected, load_image, make())


def test_pixel_budget_checked_before_decoding():
    data = _encode(_gradient(64, 48), "PNG")
    assert_fails_fast(InputTooLargeError, load_image, data, limits=InputLimits(max_pixels=1000))
    assert_fails_fast(InputTooLargeError, load_image, np.zeros((100, 100)), limits=InputLimits(max_pixels=1000))


def test_is_grayscale_tells_radiographs_from_colour_photos():
    from multimodal.io.image import is_grayscale

    rng = np.random.default_rng(0)
    gray = np.repeat(rng.random((600, 500, 1), dtype=np.float32), 3, axis=2)
    assert is_grayscale(gray)
    assert is_grayscale(gray + rng.normal(0, 0.002, gray.shape).astype(np.float32))  # JPEG-like wobble
    colour = gray.copy()
    colour[100:140, 200:260, 0] = 1.0  # one red patch is enough
    assert not is_grayscale(colour)
    assert is_grayscale(np.zeros((0, 0, 3), np.float32))


def _peak_traced(fn):
    import tracemalloc

    tracemalloc.start()
    try:
        result = fn()
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    return result, peak


BUDGET = InputLimits(max_decoded_pixels=500_000)  # 3000 x 3000 -> factor 5 -> 600 x 600


@pytest.mark.parametrize("fmt,mode", [("PNG", "RGB"), ("PNG", "L"), ("PNG", "I;16"), ("JPEG", "RGB"), ("GIF", "P"),
                                      ("TIFF", "RGBA"), ("WEBP", "RGB")])
def test_large_images_decode_within_the_pixel_budget(fmt, mode):
    """Issue 13: a 10000 x 10000 PNG took 6.6 GB (float32 copies of every pixel); now it is shrunk while decoding."""
    side = 3000
    gray = (np.add.outer(np.arange(side), np.arange(side)) % 256).astype(np.uint8)
    if mode == "I;16":
        src = Image.fromarray(gray.astype(np.uint16) * 257)
    elif mode == "P":
        src = Image.fromarray(gray).convert("P")
    else:
        src = Image.fromarray(gray).convert(mode)
    data = _encode(src, fmt)
    img, peak = _peak_traced(lambda: load_image(data, limits=BUDGET))
    h, w = img.size
    assert h * w <= BUDGET.max_decoded_pixels and h >= 550 and w >= 550  # 1/5 (JPEG's decoder may give 1/4, 1/8)
    assert img.meta["rows"] == side and img.meta["cols"] == side  # the original size is recorded
    assert abs(float(img.pixels.mean()) - float(gray.mean()) / 255) < 0.03  # same picture, on average
    assert peak < 48 * 2**20, f"{peak / 2**20:.0f} MiB of numpy allocations"  # one full float copy alone is 103


def test_large_arrays_and_pil_images_shrink_too():
    arr = (np.random.default_rng(0).random((2000, 1500)) * 65535).astype(np.uint16)
    img = load_image(arr, limits=BUDGET)
    assert img.size == (667, 500)  # factor 3
    np.testing.assert_allclose(img.pixels[0, 0, 0], arr[:3, :3].mean() / 65535, rtol=1e-4)
    pil = load_image(Image.fromarray(arr[:, :, None].repeat(3, 2).astype(np.uint8)), limits=BUDGET)
    assert pil.size == (667, 500)


def test_exif_orientation_survives_the_shrink():
    exif = Image.Exif()
    exif[0x0112] = 6
    img = load_image(_encode(_gradient(1600, 1200), "JPEG", exif=exif.tobytes()), limits=BUDGET)
    assert img.size[0] > img.size[1]  # upright: taller than wide after the 90 degree turn
