"""Peak memory of decoding the largest input each limit allows, one fresh process per input.

Usage: python benchmarks/input_memory.py [--workdir DIR] [--only NAME ...] [--compare CHECKOUT]

Each input is made once (cached in ``--workdir``) at the edge of
:class:`multimodal.io.InputLimits`: a 100-megapixel PNG (405 KB, as in the attack
that found the defect), the same as a 16-bit grayscale PNG and as a JPEG, a
100-megapixel DICOM stored natively (200 MB) and as JPEG 2000, and 15-minute
WAV and MP3 recordings. A child process imports the loader, records its RSS,
resets the kernel's peak-RSS mark (``/proc/self/clear_refs``), loads the file with
``load_media`` and reports the new peak (``VmHWM``), so the table shows what one
decoded medium costs on top of the process (Linux only).
``--compare`` runs the same children against another checkout (``git worktree add
/tmp/before <commit>``) in the same run, for a before/after table.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

SIDE = 10_000  # 100 Mpx: the default max_pixels
AUDIO_S = 15 * 60  # the default max_audio_s

CHILD = r"""
import json, sys, time
import numpy as np
from multimodal.io import load_media


def status(key):  # kB
    for line in open("/proc/self/status"):
        if line.startswith(key + ":"):
            return int(line.split()[1])


base = status("VmRSS")
with open("/proc/self/clear_refs", "w") as f:
    f.write("5")  # reset the peak (VmHWM) to the current RSS: imports do not count
t0 = time.perf_counter()
m = load_media(sys.argv[1])
dt = time.perf_counter() - t0
peak = status("VmHWM")
arr = getattr(m, "pixels", None)
if arr is None:
    arr = m.samples
print(json.dumps({"base_mb": base / 1024, "peak_mb": peak / 1024, "seconds": dt, "shape": list(arr.shape),
                  "held_mb": arr.nbytes / 2**20}))
"""

def _pattern(side: int):
    import numpy as np

    y = np.arange(side, dtype=np.uint32)[:, None]
    x = np.arange(side, dtype=np.uint32)[None, :]
    return ((x // 100 + y // 100) % 2 * 200 + 20).astype(np.uint8)  # a 100-px checkerboard: compresses well


def make_inputs(folder: Path) -> dict[str, Path]:
    import numpy as np
    from PIL import Image

    Image.MAX_IMAGE_PIXELS = None
    folder.mkdir(parents=True, exist_ok=True)
    out = {}

    def once(name: str, make) -> None:
        path = folder / name
        if not path.exists():
            t0 = time.perf_counter()
            make(path)
            print(f"  made {name} ({path.stat().st_size / 2**20:.1f} MiB) in {time.perf_counter() - t0:.0f} s",
                  file=sys.stderr)
        out[name] = path

    gray = None

    def gray8():
        nonlocal gray
        if gray is None:
            gray = _pattern(SIDE)
        return gray

    once("rgb-100mpx.png", lambda p: Image.fromarray(np.repeat(gray8()[..., None], 3, axis=2)).save(p, optimize=True))
    once("gray16-100mpx.png", lambda p: Image.fromarray(gray8().astype(np.uint16) * 257).save(p))
    once("rgb-100mpx.jpg", lambda p: Image.fromarray(gray8()).convert("RGB").save(p, quality=80))
    once("native-100mpx.dcm", lambda p: _dicom(p, gray8(), compress=False))
    once("j2k-100mpx.dcm", lambda p: _dicom(p, gray8(), compress=True))
    once("speech-15min.wav", lambda p: _audio(p, "wav"))
    once("speech-15min.mp3", lambda p: _audio(p, "mp3"))
    return out


def _dicom(path: Path, gray, compress: bool) -> None:
    import numpy as np
    import pydicom
    from pydicom.dataset import FileMetaDataset
    from pydicom.uid import JPEG2000Lossless, generate_uid

    ds = pydicom.Dataset()
    ds.file_meta = FileMetaDataset()
    ds.file_meta.MediaStorageSOPClassUID = pydicom.uid.DigitalXRayImageStorageForPresentation
    ds.file_meta.MediaStorageSOPInstanceUID = generate_uid()
    ds.file_meta.TransferSyntaxUID = pydicom.uid.ExplicitVRLittleEndian
    ds.SOPClassUID, ds.SOPInstanceUID = ds.file_meta.MediaStorageSOPClassUID, ds.file_meta.MediaStorageSOPInstanceUID
    ds.Modality, ds.BodyPartExamined = "DX", "CHEST"
    ds.Rows, ds.Columns, ds.SamplesPerPixel, ds.PhotometricInterpretation = SIDE, SIDE, 1, "MONOCHROME2"
    ds.BitsAllocated, ds.BitsStored, ds.HighBit, ds.PixelRepresentation = 16, 12, 11, 0
    arr = gray.astype(np.uint16) * 16
    ds.PixelData = arr.tobytes()
    if compress:
        ds.compress(JPEG2000Lossless, arr, encoding_plugin="pylibjpeg")
    ds.save_as(path, enforce_file_format=True)


def _audio(path: Path, fmt: str) -> None:
    import av
    import numpy as np

    rate = 16_000
    with av.open(str(path), "w", format=fmt) as box:
        stream = box.add_stream("pcm_s16le" if fmt == "wav" else "libmp3lame", rate=rate, layout="mono")
        t = np.arange(rate, dtype=np.float32) / rate
        second = (0.2 * np.sin(2 * np.pi * 220 * t) * 32767).astype(np.int16)[None, :]
        for _ in range(AUDIO_S):
            frame = av.AudioFrame.from_ndarray(second, format="s16", layout="mono")
            frame.sample_rate = rate
            for packet in stream.encode(frame):
                box.mux(packet)
        for packet in stream.encode(None):
            box.mux(packet)


def measure(path: Path, root: Path | None = None) -> dict:
    root = root or Path(__file__).resolve().parents[1]
    run = subprocess.run([sys.executable, "-c", CHILD, str(path)], capture_output=True, text=True, cwd=root,
                         env={**os.environ, "PYTHONPATH": str(root)}, timeout=900)
    if run.returncode != 0:
        return {"error": (run.stderr.strip().splitlines() or ["?"])[-1][:120]}
    return json.loads(run.stdout.strip().splitlines()[-1])


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--workdir", type=Path, default=Path(tempfile.gettempdir()) / "medany-input-memory")
    parser.add_argument("--only", nargs="*", help="input names to measure (default: all)")
    parser.add_argument("--compare", type=Path, help="another checkout to measure side by side (e.g. the old code)")
    args = parser.parse_args(argv)
    inputs = make_inputs(args.workdir)
    from multimodal.machine import machine

    print(f"Machine: {machine()}; one fresh process per input; RSS in MB.\n")
    print("| input | file | code | decoded to | held (MB) | process before (MB) | peak (MB) | peak - before (MB) | s |")
    print("|---|---|---|---|---|---|---|---|---|")
    codes = [("this", None)] + ([(args.compare.name, args.compare)] if args.compare else [])
    for name, path in inputs.items():
        if args.only and name not in args.only:
            continue
        size = f"{path.stat().st_size / 2**20:.1f} MiB"
        for label, root in codes:
            r = measure(path, root)
            if "error" in r:
                print(f"| {name} | {size} | {label} | {r['error']} | | | | | |")
                continue
            print(f"| {name} | {size} | {label} | {' x '.join(map(str, r['shape']))} | {r['held_mb']:.0f} | "
                  f"{r['base_mb']:.0f} | {r['peak_mb']:.0f} | {r['peak_mb'] - r['base_mb']:.0f} | {r['seconds']:.1f} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
