"""DICOM -> display-ready :class:`MedicalImage`, refusing malformed files early.

Order of work, so a hostile file costs little: parse the header, validate the
pixel module (dimensions, bit depths, frame count, transfer syntax) and check
the declared sizes against the bytes actually present and against
:class:`InputLimits`, and only then decode one frame. Display mapping follows
PS3.3 C.11: Modality LUT (rescale or LUT sequence) -> VOI (caller's window, VOI
LUT sequence, stored window, or auto window) -> MONOCHROME1 inversion.

Letters: H/W rows/columns, F frames, S samples per pixel.
"""

from __future__ import annotations

import io
import warnings
from dataclasses import dataclass

import numpy as np

from ..errors import (
    CorruptInputError,
    EmptyInputError,
    InputError,
    InputTooLargeError,
    UnsupportedFormatError,
    require,
)
from .dicom_meta import dicom_meta
from .limits import DEFAULT_LIMITS, InputLimits
from .shrink import block_mean, nearest
from .sniff import SNIFF_BYTES, _dicom_without_preamble
from .types import MedicalImage
from .windows import AUTO_WINDOW_MODALITIES, apply_window, auto_window, minmax_scale, resolve_window


class DicomError(CorruptInputError):
    """The file is DICOM but its header or pixel data is damaged or inconsistent."""

    code = "corrupt_dicom"


class UnsupportedTransferSyntaxError(UnsupportedFormatError):
    """The pixel data uses a compression MedAny cannot decode."""

    code = "unsupported_transfer_syntax"


_PHOTOMETRIC = {"MONOCHROME1", "MONOCHROME2", "PALETTE COLOR", "RGB", "YBR_FULL", "YBR_FULL_422",
                "YBR_ICT", "YBR_RCT", "YBR_PARTIAL_420"}
_MAX_FRAME_BYTES_PER_PIXEL = 8  # what a decoded frame may cost per pixel (RGB 16-bit = 6)


@dataclass(frozen=True)
class PixelInfo:
    """The validated pixel module of one dataset."""

    rows: int
    cols: int
    samples: int
    bits_allocated: int
    bits_stored: int
    frames: int
    photometric: str
    transfer_syntax: str


def _corrupt(what: str) -> DicomError:
    return DicomError(f"The DICOM file is damaged: {what}. Please export it again from the PACS.")


def parse_dicom(data: bytes, *, stop_before_pixels: bool = False):
    """Parse the DICOM header of ``data`` into a pydicom ``Dataset`` (pixels not decoded).

    Files without the 128-byte preamble are accepted when they begin like a
    DICOM stream; anything else raises ``UnsupportedFormatError``.
    """
    pydicom = require("pydicom")
    from pydicom.errors import InvalidDicomError

    if len(data) == 0:
        raise EmptyInputError("The file is empty.")
    raw = data[128:132] != b"DICM"
    if raw and not _dicom_without_preamble(bytes(data[:SNIFF_BYTES])):
        raise UnsupportedFormatError("The file is not a DICOM file.")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        try:
            ds = pydicom.dcmread(io.BytesIO(data), force=raw, stop_before_pixels=stop_before_pixels)
        except InvalidDicomError:
            raise UnsupportedFormatError("The file is not a DICOM file.") from None
        except MemoryError:
            raise _corrupt("it declares an element larger than the file") from None
        except Exception:  # pydicom raises many types on damaged headers
            raise _corrupt("its header cannot be read") from None
    if raw and not any(tag.group >= 0x0008 for tag in ds.keys()):
        raise UnsupportedFormatError("The file is not a DICOM file.")
    if len(ds) == 0:
        raise _corrupt("its content cannot be read (truncated or damaged file)")
    if _ends_inside_element(ds):
        raise _corrupt("the file ends in the middle of its data (truncated file?)")
    _ensure_transfer_syntax(ds)
    return ds


def _ends_inside_element(ds) -> bool:
    """pydicom keeps the raw element of a short read; its value is shorter than its length."""
    try:
        last = ds.get_item(list(ds.keys())[-1], keep_deferred=True)
        length, value = getattr(last, "length", None), getattr(last, "value", None)
    except Exception:
        return False
    if length is None or value is None or length == 0xFFFFFFFF or not isinstance(value, (bytes, bytearray)):
        return False
    return len(value) < length


def _ensure_transfer_syntax(ds) -> None:
    """Fill in the transfer syntax of a meta-less file from how it was actually read."""
    from pydicom.dataset import FileMetaDataset
    from pydicom.uid import ExplicitVRBigEndian, ExplicitVRLittleEndian, ImplicitVRLittleEndian

    meta = getattr(ds, "file_meta", None)
    if meta is not None and "TransferSyntaxUID" in meta:
        return
    implicit, little = getattr(ds, "original_encoding", (True, True))
    if meta is None:
        ds.file_meta = meta = FileMetaDataset()
    meta.TransferSyntaxUID = (
        ImplicitVRLittleEndian if implicit else (ExplicitVRLittleEndian if little else ExplicitVRBigEndian)
    )


def _int(ds, keyword: str, default: int | None = None) -> int:
    """A single integer attribute; bad VRs, multiplicity or text become ``DicomError``."""
    try:
        value = ds.get(keyword, None)
        if value is None or value == "":
            if default is None:
                raise KeyError(keyword)
            return default
        if isinstance(value, (list, tuple)) or hasattr(value, "__len__") and not isinstance(value, (str, bytes)):
            raise ValueError
        return int(value)
    except KeyError:
        raise _corrupt(f"the required attribute {keyword} is missing") from None
    except Exception:
        raise _corrupt(f"the attribute {keyword} has an invalid value") from None


def validate_pixels(ds, limits: InputLimits = DEFAULT_LIMITS) -> PixelInfo:
    """Check the pixel module and every declared size before anything is decoded."""
    if "PixelData" not in ds:
        if "FloatPixelData" in ds or "DoubleFloatPixelData" in ds:
            raise UnsupportedFormatError("Floating-point DICOM pixel data is not supported.")
        if "Rows" in ds or "BitsAllocated" in ds or _is_image_class(ds):  # pixels never arrived
            raise _corrupt("the pixel data is missing (truncated file?)")
        raise EmptyInputError("The DICOM file contains no image (it may be a report or structure set).")
    rows, cols = _int(ds, "Rows"), _int(ds, "Columns")
    if rows < 0 or cols < 0:
        raise _corrupt("the image size is negative")
    if rows == 0 or cols == 0:
        raise EmptyInputError("The DICOM image has no pixels (zero rows or columns).")
    samples = _int(ds, "SamplesPerPixel", 1)
    bits_allocated = _int(ds, "BitsAllocated")
    bits_stored = _int(ds, "BitsStored", bits_allocated)
    frames = _int(ds, "NumberOfFrames", 1)
    pixel_rep = _int(ds, "PixelRepresentation", 0)
    if samples not in (1, 3):
        raise _corrupt("the number of colour samples per pixel is invalid")
    if bits_allocated not in (1, 8, 16, 32, 64):
        raise _corrupt("the bit depth is invalid")
    if not 1 <= bits_stored <= bits_allocated:
        raise _corrupt("the stored bit depth is larger than the allocated one")
    if pixel_rep not in (0, 1):
        raise _corrupt("the pixel sign flag is invalid")
    if frames < 1:
        raise _corrupt("the number of frames is invalid")
    try:
        photometric = str(ds.get("PhotometricInterpretation", "MONOCHROME2" if samples == 1 else "RGB")).strip().upper()
    except Exception:
        raise _corrupt("the colour interpretation attribute is unreadable") from None
    if photometric not in _PHOTOMETRIC:
        raise UnsupportedFormatError("The DICOM colour interpretation is not supported.")
    if (samples == 3) != (photometric not in ("MONOCHROME1", "MONOCHROME2", "PALETTE COLOR")):
        raise _corrupt("the colour interpretation does not match the samples per pixel")
    limits.check_pixels(rows, cols)
    limits.check_frames(frames)
    if rows * cols * samples * max(bits_allocated, 8) // 8 > limits.max_pixels * _MAX_FRAME_BYTES_PER_PIXEL:
        raise InputTooLargeError("One image frame would need too much memory to decode.")

    ts = ds.file_meta.TransferSyntaxUID
    _check_transfer_syntax(ts)
    pixel_bytes = ds["PixelData"].value
    if pixel_bytes is None or len(pixel_bytes) == 0:
        raise EmptyInputError("The DICOM image has no pixel data.")
    if ts.is_encapsulated:
        _check_encapsulated(pixel_bytes, frames)
    else:
        per_pixel = 2 if photometric == "YBR_FULL_422" else samples  # 4:2:2 stores 2 samples/pixel
        expected = (rows * cols * per_pixel * bits_allocated * frames + 7) // 8
        if len(pixel_bytes) < expected:
            raise _corrupt("the pixel data is shorter than the image size it declares (truncated file?)")
        if len(pixel_bytes) >= 2 * expected + 2:
            raise _corrupt("the pixel data does not match the declared image size")
    return PixelInfo(rows, cols, samples, bits_allocated, bits_stored, frames, photometric, str(ts))


def _is_image_class(ds) -> bool:
    """Whether the SOP class (dataset or file meta) says this file should hold an image."""
    for source, keyword in ((ds, "SOPClassUID"), (getattr(ds, "file_meta", {}), "MediaStorageSOPClassUID")):
        try:
            if "Image" in source[keyword].value.name:
                return True
        except Exception:
            continue
    return False


def _check_transfer_syntax(ts) -> None:
    from pydicom.pixels import get_decoder

    name = ts.name if ts.is_valid and ts.name != str(ts) else "an unrecognised transfer syntax"
    try:
        decoder = get_decoder(ts)
    except NotImplementedError:
        raise UnsupportedTransferSyntaxError(
            f"The DICOM image is compressed with {name}, which MedAny cannot decode. "
            "Please export it uncompressed, or as JPEG, JPEG 2000, JPEG-LS or RLE."
        ) from None
    if not decoder.is_available:
        raise UnsupportedTransferSyntaxError(
            f"The DICOM image is compressed with {name}; its decoder plugin is not installed "
            "(pip install 'medany[all]')."
        )


def _check_encapsulated(buffer: bytes, frames: int) -> None:
    """Encapsulated data: a valid item structure with at least one fragment per frame."""
    from pydicom.encaps import parse_fragments

    head = bytes(buffer[:8])
    if len(head) < 8 or head[:4] != b"\xfe\xff\x00\xe0":
        raise _corrupt("the compressed pixel data is not properly encapsulated")
    start = 8 + int.from_bytes(head[4:8], "little")  # skip the Basic Offset Table item
    if start > len(buffer):
        raise _corrupt("the compressed pixel data is truncated")
    try:
        n_fragments, _ = parse_fragments(bytes(buffer[start:]))
    except Exception:
        raise _corrupt("the compressed pixel data is truncated or malformed") from None
    if n_fragments < frames:
        raise _corrupt("it declares more frames than its compressed pixel data holds")


def decode_frame(ds, info: PixelInfo, index: int = 0) -> np.ndarray:
    """Decode frame ``index`` as stored values: ``[H, W]`` or ``[H, W, 3]`` (YBR -> RGB)."""
    from pydicom.pixels import get_decoder

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        try:
            arr, _ = get_decoder(ds.file_meta.TransferSyntaxUID).as_array(ds, index=index)
        except Exception:  # plugins raise RuntimeError/ValueError/MemoryError alike
            raise _corrupt("the pixel data cannot be decoded") from None
    expect = (info.rows, info.cols) if info.samples == 1 else (info.rows, info.cols, 3)
    if tuple(arr.shape) != expect:
        raise _corrupt("the decoded image size does not match its header")
    return arr


def to_display(ds, stored: np.ndarray, info: PixelInfo, window=None, shrink: int = 1) -> tuple[np.ndarray, dict]:
    """Stored values -> float32 ``[H/shrink, W/shrink, 3]`` in [0, 1], plus how it was windowed.

    ``shrink`` downscales while converting (:mod:`.shrink`): linear mappings
    (rescale, RGB) average ``shrink x shrink`` blocks; palette indices and lookup-table
    inputs, which must not be averaged, keep every ``shrink``-th pixel.
    """
    if info.photometric == "PALETTE COLOR":
        return _palette(ds, nearest(stored, shrink)), {"source": "palette"}
    if info.samples == 3:  # RGB (YBR was converted to RGB by the decoder)
        top = np.float32(1.0 / float(2 ** min(info.bits_stored, 32) - 1))
        rgb = block_mean(stored, shrink, lambda band: band.astype(np.float32) * top)
        return np.clip(rgb, 0, 1, out=rgb), {"source": "rgb"}
    voi_lut = window is None and "VOILUTSequence" in ds and len(ds.VOILUTSequence) > 0
    values = _modality_values(ds, stored, shrink, exact=voi_lut)
    if window is not None:
        gray, used = _given_window(values, window)
    elif voi_lut:
        gray, used = _voi_lut(ds, values)
    elif (stored_window := _stored_window(ds)) is not None:
        gray, used = _window(values, *stored_window, str(ds.get("VOILUTFunction", "LINEAR") or "LINEAR").upper())
    elif str(ds.get("Modality", "")).upper() in AUTO_WINDOW_MODALITIES:
        gray, used = _auto_window(values)
    else:
        gray, used = minmax_scale(values), {"source": "minmax"}
    if info.photometric == "MONOCHROME1":
        gray = 1.0 - gray
    rgb = np.repeat(gray[..., None], 3, axis=2)  # [H, W] -> [H, W, 3]
    return rgb.astype(np.float32, copy=False), used


def _palette(ds, indices: np.ndarray) -> np.ndarray:
    """Palette indices -> float32 RGB in [0, 1] through the file's colour LUTs."""
    from pydicom.pixels import apply_color_lut

    try:
        rgb = apply_color_lut(indices, ds)
    except Exception:
        raise _corrupt("its colour palette is missing or damaged") from None
    return rgb.astype(np.float32) / np.float32(_palette_max(ds, rgb))


def _modality_values(ds, stored: np.ndarray, shrink: int, exact: bool) -> np.ndarray:
    """Stored values -> modality values (PS3.3 C.11.1: LUT sequence, or rescale slope and intercept).

    Linear rescaling averages ``shrink`` blocks on the way; a lookup table (or, with
    ``exact``, a VOI LUT that follows) needs real values, so every ``shrink``-th pixel is kept.
    """
    from pydicom.pixels import apply_modality_lut

    if "ModalityLUTSequence" in ds:
        return apply_modality_lut(nearest(stored, shrink), ds).astype(np.float32)
    slope = np.float32(_float(ds, "RescaleSlope", 1.0))
    intercept = np.float32(_float(ds, "RescaleIntercept", 0.0))
    source, f = (nearest(stored, shrink), 1) if exact else (stored, shrink)
    return block_mean(source, f, lambda band: band.astype(np.float32) * slope + intercept)


# VOI (PS3.3 C.11.2): modality values -> display gray in [0, 1], and what was applied.


def _given_window(values: np.ndarray, window) -> tuple[np.ndarray, dict]:
    """The caller's window: ``"auto"``, a preset name, or ``(center, width)``."""
    if isinstance(window, str) and window.strip().lower() == "auto":
        return _auto_window(values)
    c, w = resolve_window(window)
    source = f"preset:{window.strip().lower()}" if isinstance(window, str) else "manual"
    return apply_window(values, c, w), {"center": c, "width": w, "function": "LINEAR", "source": source}


def _voi_lut(ds, values: np.ndarray) -> tuple[np.ndarray, dict]:
    """The file's VOI LUT Sequence (it indexes integer modality values)."""
    from pydicom.pixels import apply_voi

    try:
        return minmax_scale(apply_voi(np.rint(values).astype(np.int64), ds, 0)), {"source": "voi_lut"}
    except Exception:
        raise _corrupt("its VOI lookup table is damaged") from None


def _window(values: np.ndarray, c: float, w: float, function: str) -> tuple[np.ndarray, dict]:
    """The file's stored window with its VOI LUT function."""
    return apply_window(values, c, w, function), {"center": c, "width": w, "function": function, "source": "stored"}


def _auto_window(values: np.ndarray) -> tuple[np.ndarray, dict]:
    """A robust percentile window (projection radiographs without a usable one)."""
    c, w = auto_window(values)
    return apply_window(values, c, w), {"center": c, "width": w, "function": "LINEAR", "source": "auto"}


def _palette_max(ds, rgb: np.ndarray) -> float:
    """Full-scale value of the palette: 16-bit LUTs that only hold 8-bit entries
    (common in older ultrasound exports) are scaled by 255, not 65535."""
    if rgb.dtype == np.uint8:
        return 255.0
    try:
        from pydicom.pixels import apply_color_lut

        n, first = (int(v) for v in ds.RedPaletteColorLookupTableDescriptor[:2])
        domain = np.arange(first, first + (n or 65536), dtype=np.int64)
        top = float(apply_color_lut(domain, ds).max())
    except Exception:
        top = float(rgb.max())
    return 255.0 if top <= 255 else 65535.0


def _float(ds, keyword: str, default: float) -> float:
    try:
        value = ds.get(keyword, None)
        v = float(value) if value not in (None, "") else default
    except Exception:
        raise _corrupt(f"the attribute {keyword} has an invalid value") from None
    if not np.isfinite(v):
        raise _corrupt(f"the attribute {keyword} has an invalid value")
    return v


def _stored_window(ds) -> tuple[float, float] | None:
    """The first stored (WindowCenter, WindowWidth) pair, if present and usable."""
    if "WindowCenter" not in ds or "WindowWidth" not in ds:
        return None
    try:
        c, w = ds.WindowCenter, ds.WindowWidth
        c = float(c[0] if hasattr(c, "__getitem__") and not isinstance(c, str) else c)
        w = float(w[0] if hasattr(w, "__getitem__") and not isinstance(w, str) else w)
    except Exception:
        return None  # an unreadable window is not fatal: fall back to auto
    return (c, w) if np.isfinite(c) and np.isfinite(w) and w > 0 else None


def read_dicom(
    data: bytes,
    *,
    window: str | tuple[float, float] | None = None,
    frame: int | None = None,
    limits: InputLimits = DEFAULT_LIMITS,
) -> MedicalImage:
    """Decode DICOM bytes into a :class:`MedicalImage` with de-identified metadata.

    Args:
        window: ``None`` for the file's own VOI LUT / window (auto for CR/DX
            without one), a preset name (``"lung"``, ``"bone"`` …), ``"auto"``,
            or ``(center, width)`` in modality units.
        frame: which frame of a multi-frame image; ``None`` takes the middle one.
        limits: size budgets checked before decoding.
    """
    limits.check_bytes(len(data))
    ds = parse_dicom(data)
    info = validate_pixels(ds, limits)
    if frame is None:
        index = info.frames // 2
    else:
        index = int(frame)
        if not 0 <= index < info.frames:
            raise InputError(f"This image has {info.frames} frame(s); frame {index} does not exist.",
                             code="bad_frame")
    stored = decode_frame(ds, info, index)
    pixels, used = to_display(ds, stored, info, window, limits.shrink_factor(info.rows, info.cols))
    del stored
    return MedicalImage(pixels=pixels, meta=dicom_meta(ds, info, used), kind="dicom")
