"""DICOM decode throughput: MedAny's loader vs plain pydicom ``pixel_array``.

Usage: python benchmarks/dicom_decode.py [--seconds 3]

"ours" is the full path a request takes (read bytes, parse, validate sizes,
decode one frame, Modality/VOI LUT, MONOCHROME1 inversion, float32 [H, W, 3],
de-identified metadata); "pydicom" is ``dcmread(path).pixel_array`` alone
(stored integers, no display mapping).
"""

from __future__ import annotations

import argparse
import platform
import time

import pydicom
from pydicom.data import get_testdata_file

from multimodal.io import load_image

FILES = [("RG1_UNCR.dcm", "chest CR, uncompressed"), ("RG1_J2KR.dcm", "chest CR, JPEG 2000 lossless"),
         ("RG1_J2KI.dcm", "chest CR, JPEG 2000 lossy")]


def rate(fn, seconds: float) -> float:
    """Images per second over at least ``seconds`` (after one warm-up call)."""
    fn()
    n, t0 = 0, time.perf_counter()
    while True:
        fn()
        n += 1
        elapsed = time.perf_counter() - t0
        if elapsed >= seconds and n >= 3:
            return n / elapsed


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=3.0)
    args = parser.parse_args(argv)
    print(f"machine: {platform.machine()} {platform.processor() or ''}; python {platform.python_version()}; "
          f"pydicom {pydicom.__version__}")
    print(f"{'file':<14} {'description':<30} {'ours img/s':>11} {'pydicom img/s':>14} {'ratio':>6}")
    for name, what in FILES:
        path = get_testdata_file(name)
        ours = rate(lambda path=path: load_image(path), args.seconds)
        plain = rate(lambda path=path: pydicom.dcmread(path).pixel_array, args.seconds)
        print(f"{name:<14} {what:<30} {ours:>11.2f} {plain:>14.2f} {ours / plain:>6.2f}")


if __name__ == "__main__":
    main()
