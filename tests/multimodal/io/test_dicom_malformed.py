"""At least 30 malformed DICOM variants, each refused with its typed error, fast."""

from __future__ import annotations

import io

import pydicom
import pytest
from pydicom import config

from multimodal.errors import CorruptInputError, EmptyInputError, InputError, InputTooLargeError, UnsupportedFormatError
from multimodal.io import InputLimits, load_image
from multimodal.io.dicom import DicomError, UnsupportedTransferSyntaxError
from tests.multimodal.io.io_helpers import assert_fails_fast, sample_bytes

MR = "MR_small.dcm"  # 64x64 16-bit, 9.8 kB: cheap to mutate
J2K = "MR_small_jp2klossless.dcm"
PATIENT_MARK = "Zyxwv"  # planted into the header: must never appear in a message


def _mutate(name: str, fn, *, preamble: bool = True) -> bytes:
    ds = pydicom.dcmread(io.BytesIO(sample_bytes(name)))
    ds.PatientName = PATIENT_MARK
    fn(ds)
    buf = io.BytesIO()
    old = config.settings.writing_validation_mode
    config.settings.writing_validation_mode = config.IGNORE
    try:
        ds.save_as(buf, enforce_file_format=preamble)
    finally:
        config.settings.writing_validation_mode = old
    return buf.getvalue()


def _set(**attrs):
    def fn(ds):
        for k, v in attrs.items():
            if v is None:
                delattr(ds, k)
            else:
                setattr(ds, k, v)

    return fn


def _pixels(f):
    def fn(ds):
        ds.PixelData = f(ds.PixelData)

    return fn


def _raw_patch(name: str | bytes, find: bytes, offset: int, new: bytes) -> bytes:
    raw = sample_bytes(name) if isinstance(name, str) else name
    i = raw.index(find) + offset
    return raw[:i] + new + raw[i + len(new):]


def _mpeg2() -> bytes:
    def fn(ds):
        from pydicom.encaps import encapsulate

        ds.file_meta.TransferSyntaxUID = pydicom.uid.MPEG2MPML
        ds.PixelData = encapsulate([b"\0\0\1\xb3" * 16])

    return _mutate(MR, fn)


def _frag_patch(f):
    """Rewrite the first J2K fragment's content (keeping valid encapsulation lengths)."""

    def fn(ds):
        from pydicom.encaps import encapsulate, generate_frames

        frames = list(generate_frames(ds.PixelData, number_of_frames=1))
        ds.PixelData = encapsulate([f(frames[0])])

    return fn


CASES = {
    "empty": (lambda: b"", EmptyInputError),
    "text": (lambda: b"Patient Zyxwv, chest film, see attached\n" * 20, UnsupportedFormatError),
    "random_bytes": (lambda: bytes(range(256)) * 16, UnsupportedFormatError),
    "html": (lambda: b"<html><body>not a scan</body></html>", UnsupportedFormatError),
    "preamble_only": (lambda: b"\0" * 128 + b"DICM", DicomError),
    "preamble_zeros_short": (lambda: b"\0" * 100, UnsupportedFormatError),
    "truncated_in_meta": (lambda: sample_bytes(MR)[:150], DicomError),
    "truncated_in_header": (lambda: sample_bytes(MR)[:400], DicomError),
    "truncated_mid_element": (lambda: sample_bytes(MR)[:1000], DicomError),
    "truncated_before_pixels": (lambda: sample_bytes(MR)[:1490], DicomError),
    "truncated_in_pixels": (lambda: sample_bytes(MR)[:5000], DicomError),
    "truncated_last_byte": (lambda: sample_bytes(MR)[:-1], DicomError),
    "truncated_j2k": (lambda: sample_bytes(J2K)[:5000], DicomError),
    "no_preamble_truncated": (lambda: _mutate(MR, lambda ds: None, preamble=False)[:600], DicomError),
    "pixels_short": (lambda: _mutate(MR, _pixels(lambda p: p[:-100])), DicomError),
    "pixels_triple": (lambda: _mutate(MR, _pixels(lambda p: p * 3)), DicomError),
    "rows_doubled": (lambda: _mutate(MR, _set(Rows=128)), DicomError),
    "rows_zero": (lambda: _mutate(MR, _set(Rows=0)), EmptyInputError),
    "columns_zero": (lambda: _mutate(MR, _set(Columns=0)), EmptyInputError),
    "rows_missing": (lambda: _mutate(MR, _set(Rows=None)), DicomError),
    "bits_allocated_missing": (lambda: _mutate(MR, _set(BitsAllocated=None)), DicomError),
    "absurd_frames": (lambda: _mutate(MR, _set(NumberOfFrames=10**9)), InputTooLargeError),
    "frames_zero": (lambda: _mutate(MR, _set(NumberOfFrames=0)), DicomError),
    "frames_more_than_data": (lambda: _mutate(MR, _set(NumberOfFrames=5)), DicomError),
    "frames_bad_vr_text": (
        lambda: _raw_patch(_mutate(MR, _set(NumberOfFrames=1)), b"\x28\x00\x08\x00IS\x02\x00", 8, b"1A"),
        DicomError),
    "huge_rows_cols": (lambda: _mutate(MR, _set(Rows=65535, Columns=65535)), InputTooLargeError),
    "bits_allocated_12": (lambda: _mutate(MR, _set(BitsAllocated=12)), DicomError),
    "bits_allocated_zero": (lambda: _mutate(MR, _set(BitsAllocated=0)), DicomError),
    "bits_stored_gt_allocated": (lambda: _mutate(MR, _set(BitsStored=20)), DicomError),
    "samples_per_pixel_2": (lambda: _mutate(MR, _set(SamplesPerPixel=2)), DicomError),
    "samples_3_monochrome": (lambda: _mutate(MR, _set(SamplesPerPixel=3)), DicomError),
    "photometric_unknown": (lambda: _mutate(MR, _set(PhotometricInterpretation="HSV")), UnsupportedFormatError),
    "pixel_representation_7": (lambda: _mutate(MR, _set(PixelRepresentation=7)), DicomError),
    "rescale_slope_text": (
        lambda: _raw_patch(_mutate(MR, _set(RescaleSlope="2.75", RescaleIntercept=0)), b"2.75", 0, b"zz.z"),
        DicomError),
    "rows_bad_vr_length": (lambda: _raw_patch(MR, b"\x28\x00\x10\x00US", 6, b"\x03\x00"), DicomError),
    "unknown_transfer_syntax": (
        lambda: _raw_patch(MR, b"1.2.840.10008.1.2.1\x00", 0, b"1.2.3.4.5.6.7.8.9.10"), UnsupportedTransferSyntaxError),
    "mpeg2_transfer_syntax": (lambda: _mpeg2(), UnsupportedTransferSyntaxError),
    # RLE Lossless has the same encoded length as Explicit VR Little Endian.
    "compressed_syntax_native_data": (
        lambda: _raw_patch(MR, b"1.2.840.10008.1.2.1\x00", 0, b"1.2.840.10008.1.2.5\x00"), DicomError),
    "j2k_frames_exceed_fragments": (lambda: _mutate(J2K, _set(NumberOfFrames=50)), DicomError),
    "j2k_garbage_codestream": (lambda: _mutate(J2K, _frag_patch(lambda f: b"\x13" * len(f))), DicomError),
    "j2k_truncated_codestream": (lambda: _mutate(J2K, _frag_patch(lambda f: f[: len(f) // 3])), DicomError),
    "j2k_size_disagrees": (lambda: _mutate(J2K, _set(Rows=32)), DicomError),
    "palette_missing_lut": (
        lambda: _mutate("OBXXXX1A.dcm", _set(RedPaletteColorLookupTableData=None)), DicomError),
    "report_without_pixels": (lambda: sample_bytes("rtplan.dcm"), EmptyInputError),
    "huge_element_length": (lambda: _raw_patch(MR, b"\x10\x00\x10\x00PN", 6, b"\x60\xea"), DicomError),
}


def test_enough_variants():
    assert len(CASES) >= 30


@pytest.mark.parametrize("case", sorted(CASES))
def test_malformed_dicom_is_refused_fast(case):
    make, expected = CASES[case]
    data = make()
    err = assert_fails_fast(expected, load_image, data)
    assert type(err) is expected or isinstance(err, expected)
    assert isinstance(err, InputError)
    assert PATIENT_MARK not in str(err)


def test_file_over_byte_limit_is_refused_before_parsing():
    data = sample_bytes(MR)
    assert_fails_fast(InputTooLargeError, load_image, data, limits=InputLimits(max_bytes=1000))


def test_frame_out_of_range():
    err = assert_fails_fast(InputError, load_image, sample_bytes(MR), frame=3)
    assert err.code == "bad_frame"


def test_unsupported_syntax_message_names_it():
    err = assert_fails_fast(UnsupportedTransferSyntaxError, load_image, _mpeg2())
    assert "MPEG2" in str(err)
    assert isinstance(err, UnsupportedFormatError) and not isinstance(err, CorruptInputError)
