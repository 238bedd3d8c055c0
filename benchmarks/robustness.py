"""Robustness of the image path: corrupted scans through the real loaders, and photos that are no scan.

Each scan (real DICOMs from pydicom's test data, the image recipe's fields) is
corrupted at five severities, as a DICOM file (the stored values, or the header
for a wrong VOI window and an inverted photometric interpretation) and as a PNG
export of its clean display picture (JPEG bytes for the JPEG corruption). Every
corrupted file is decoded by :func:`multimodal.io.load_image` from its bytes, as
an upload is, and described by the assistant's own evidence path
(:meth:`~multimodal.pipeline.Assistant.image_evidence`). Printed as Markdown:

1. the evidence path (deterministic, no LLM): how often the image-domain check
   still calls the scan a scan, and how often the evidence line stays what it was
   on the clean file (a DICOM's header line; a picture's best classifier label
   and domain verdict);
2. with ``--answers``: the LLM's answer to the recipe's caption question
   ("What modality, body part and view is this scan?"), read as the fields it
   names (the way ``medany eval`` reads sentences): consistency with the answer
   on the clean file, and accuracy against the recipe's fields;
3. out-of-domain pictures (a meal photo, generated colour pictures, a photo
   stored as a DICOM) given to the Clinician: the verdict, and with ``--answers``
   whether the first answer and the guarded one say it is not a radiograph.

A corruption's one-level variant (the inverted photometric interpretation) is
shown under severity 1.

    python benchmarks/robustness.py [--answers] [--llm embedded] [--scans RG1_UNCR.dcm,MR_small.dcm]

Letters: H/W pixels.
"""

from __future__ import annotations

import argparse
import copy
import io
import json
import math
import re
import sys
import time
from dataclasses import dataclass
from typing import Callable

import numpy as np

from multimodal.image_domain import asks_about_scan

SEVERITIES = (1, 2, 3, 4, 5)
FORMATS = ("DICOM", "PNG")
SCANS = ("RG1_UNCR.dcm", "RG3_UNCR.dcm", "J2K_pixelrep_mismatch.dcm", "MR_small.dcm")
"""Chest PA and extremity AP films (CR, MONOCHROME1, seen in training), a head CT and an MR (held out)."""
QUESTION = "What modality, body part and view is this scan?"
CLINICIAN_QUESTIONS = (
    "What does this chest film show, and what should the patient ask their doctor?",
    QUESTION,
    "Describe this image.",
)


@dataclass(frozen=True)
class Corruption:
    """One corruption: its parameter at each severity (one level for a corruption that is on or off)."""

    name: str
    levels: tuple
    what: str

    def level(self, severity: int):
        return self.levels[severity - 1] if severity <= len(self.levels) else None


CORRUPTIONS = {c.name: c for c in (
    Corruption("gaussian noise", (0.02, 0.04, 0.08, 0.16, 0.32),
               "sigma as a fraction of the picture's 0.5-99.5 percentile range"),
    Corruption("blur", (0.5, 1.0, 2.0, 3.0, 5.0), "Gaussian sigma in pixels per 256 pixels of the long side"),
    Corruption("contrast / gamma", ((1.2, 0.9), (1.4, 0.8), (1.7, 0.65), (2.0, 0.5), (2.5, 0.35)),
               "(gamma, contrast) on the picture's own range"),
    Corruption("JPEG re-compression", (90, 70, 50, 30, 10), "JPEG quality, through 8 bits"),
    Corruption("rotation", (5, 10, 20, 45, 90), "degrees, corners filled with the border's median"),
    Corruption("wrong VOI window", ((0.1, 0.9), (0.2, 0.75), (0.35, 0.6), (0.5, 0.45), (0.75, 0.3)),
               "(centre shift, width factor) of the display window, in window widths"),
    Corruption("inverted photometric", (True,), "MONOCHROME1 <-> MONOCHROME2 (PNG: grey levels inverted)"),
    Corruption("downsampling", (2, 3, 4, 6, 8), "block-mean factor"),
)}


# -- pixel corruptions: pure functions of a float [H, W] array ------------------------------


def spread(x: np.ndarray) -> float:
    """The 0.5-99.5 percentile range of ``x`` (1 when flat)."""
    lo, hi = np.percentile(x, [0.5, 99.5])
    return float(hi - lo) or 1.0


def add_noise(x: np.ndarray, fraction: float, rng: np.random.Generator) -> np.ndarray:
    """``x`` plus Gaussian noise of sigma ``fraction * spread(x)``."""
    return x + rng.normal(0.0, fraction * spread(x), x.shape)


def gaussian_blur(x: np.ndarray, sigma_per_256: float) -> np.ndarray:
    """Separable Gaussian blur, sigma ``sigma_per_256`` pixels per 256 pixels of the long side (edges reflected;
    each axis convolved through the FFT, so a 3.6 Mpx film with a 230-tap kernel takes a fraction of a second)."""
    sigma = sigma_per_256 * max(x.shape) / 256.0
    out = np.asarray(x, dtype=np.float64)
    for axis in (0, 1):
        radius = max(1, min(math.ceil(3 * sigma), out.shape[axis] - 1))
        k = np.exp(-0.5 * (np.arange(-radius, radius + 1) / sigma) ** 2)
        pad = [(0, 0), (0, 0)]
        pad[axis] = (radius, radius)
        padded = np.pad(out, pad, mode="reflect")  # [H + 2r, W] or [H, W + 2r]
        n = padded.shape[axis] + k.size - 1
        full = np.fft.irfft(np.fft.rfft(padded, n, axis=axis) * np.expand_dims(np.fft.rfft(k / k.sum(), n), 1 - axis),
                            n, axis=axis)
        out = np.take(full, np.arange(2 * radius, 2 * radius + out.shape[axis]), axis=axis)
    return out


def gamma_contrast(x: np.ndarray, level: tuple[float, float]) -> np.ndarray:
    """Gamma, then contrast squeezed about mid-grey, on ``x``'s own [min, max]."""
    gamma, contrast = level
    lo, hi = float(x.min()), float(x.max())
    u = (x - lo) / ((hi - lo) or 1.0)
    return lo + (0.5 + contrast * (u ** gamma - 0.5)) * (hi - lo)


def jpeg_roundtrip(x: np.ndarray, quality: int) -> np.ndarray:
    """``x`` through an 8-bit JPEG at ``quality`` (scaled over its own [min, max] and back)."""
    from PIL import Image

    lo, hi = float(x.min()), float(x.max())
    scale = (hi - lo) or 1.0
    u8 = np.clip(np.rint((x - lo) / scale * 255.0), 0, 255).astype(np.uint8)
    buf = io.BytesIO()
    Image.fromarray(u8, mode="L").save(buf, format="JPEG", quality=int(quality))
    back = np.asarray(Image.open(io.BytesIO(buf.getvalue())).convert("L"), dtype=np.float64)
    return lo + back / 255.0 * scale


def rotate(x: np.ndarray, degrees: float) -> np.ndarray:
    """``x`` rotated about its centre (bilinear, same size), corners filled with its border's median."""
    import torch

    fill = float(np.median(np.concatenate([x[0], x[-1], x[:, 0], x[:, -1]])))
    h, w = x.shape
    a = math.radians(degrees)
    # affine_grid works in [-1, 1] on each axis: scale by the aspect so the rotation is rigid in pixels.
    theta = torch.tensor([[math.cos(a), -math.sin(a) * h / w, 0.0],
                          [math.sin(a) * w / h, math.cos(a), 0.0]], dtype=torch.float64)[None]  # [1, 2, 3]
    t = torch.as_tensor(np.asarray(x, dtype=np.float64) - fill)[None, None]  # [1, 1, H, W]
    grid = torch.nn.functional.affine_grid(theta, [1, 1, h, w], align_corners=False)
    out = torch.nn.functional.grid_sample(t, grid, mode="bilinear", padding_mode="zeros", align_corners=False)
    return out[0, 0].numpy() + fill


def downsample(x: np.ndarray, factor: int) -> np.ndarray:
    """Block means of ``factor x factor`` pixels (the loaders' own area downscaling)."""
    from multimodal.io.shrink import block_mean

    return block_mean(np.asarray(x, dtype=np.float32), int(factor)).astype(np.float64)


def rewindow(u: np.ndarray, level: tuple[float, float]) -> np.ndarray:
    """A display picture ``u`` in [0, 1] shown through a wrong window: centre moved by ``shift`` widths, width
    times ``factor``."""
    shift, factor = level
    return np.clip((u - (0.5 + shift)) / factor + 0.5, 0.0, 1.0)


PIXEL_OPS: dict[str, Callable] = {
    "gaussian noise": lambda x, level, rng: add_noise(x, level, rng),
    "blur": lambda x, level, rng: gaussian_blur(x, level),
    "contrast / gamma": lambda x, level, rng: gamma_contrast(x, level),
    "JPEG re-compression": lambda x, level, rng: jpeg_roundtrip(x, level),
    "rotation": lambda x, level, rng: rotate(x, level),
    "downsampling": lambda x, level, rng: downsample(x, level),
}


# -- files: a DICOM with new stored values or header, a PNG/JPEG export ----------------------


def stored_values(data: bytes):
    """``(dataset, stored [H, W])`` of a single-frame grey DICOM, decoded as MedAny's loader decodes it."""
    from multimodal.io.dicom import decode_frame, parse_dicom, validate_pixels

    ds = parse_dicom(data)
    info = validate_pixels(ds)
    if info.samples != 1 or info.frames != 1 or not info.photometric.startswith("MONOCHROME"):
        raise ValueError("the robustness benchmark corrupts single-frame grey scans only")
    return ds, decode_frame(ds, info)


def write_dicom(ds, stored: np.ndarray) -> bytes:
    """``ds`` with ``stored`` as its pixel data, uncompressed (Explicit VR Little Endian), as file bytes.

    Values are rounded and clipped to what the dataset's bits stored and sign can hold.
    """
    from pydicom.uid import ExplicitVRLittleEndian

    out = copy.deepcopy(ds)
    signed = int(out.get("PixelRepresentation", 0)) == 1
    bits = int(out.BitsStored)
    lo, hi = (-(2 ** (bits - 1)), 2 ** (bits - 1) - 1) if signed else (0, 2 ** bits - 1)
    arr = np.clip(np.rint(stored), lo, hi).astype(np.int16 if signed else np.uint16)
    out.file_meta.TransferSyntaxUID = ExplicitVRLittleEndian
    out.BitsAllocated, out.HighBit = 16, bits - 1
    out.Rows, out.Columns = int(arr.shape[0]), int(arr.shape[1])
    out.PixelData = arr.tobytes()
    out["PixelData"].VR = "OW"
    out["PixelData"].is_undefined_length = False
    for keyword in ("NumberOfFrames", "LossyImageCompression"):
        if keyword in out:
            delattr(out, keyword)
    buf = io.BytesIO()
    out.save_as(buf, enforce_file_format=True)
    return buf.getvalue()


def display_window(ds, stored: np.ndarray, meta: dict) -> tuple[float, float]:
    """The clean file's display window ``(centre, width)`` in modality units: the one it was shown with, else
    its modality values' range."""
    used = meta.get("window") or {}
    if "center" in used:
        return float(used["center"]), float(used["width"])
    slope, intercept = float(ds.get("RescaleSlope", 1) or 1), float(ds.get("RescaleIntercept", 0) or 0)
    values = stored.astype(np.float64) * slope + intercept
    lo, hi = float(values.min()), float(values.max())
    return (lo + hi) / 2.0, max(hi - lo, 1.0)


def corrupt_dicom(data: bytes, name: str, level, rng: np.random.Generator, meta: dict) -> bytes:
    """The DICOM ``data`` with corruption ``name`` at ``level`` (``meta``: its clean :class:`MedicalImage` meta)."""
    ds, stored = stored_values(data)
    if name == "inverted photometric":
        out = copy.deepcopy(ds)
        out.PhotometricInterpretation = "MONOCHROME2" if ds.PhotometricInterpretation == "MONOCHROME1" \
            else "MONOCHROME1"
        return write_dicom(out, stored)
    if name == "wrong VOI window":
        shift, factor = level
        center, width = display_window(ds, stored, meta)
        out = copy.deepcopy(ds)
        for keyword in ("VOILUTSequence", "WindowCenterWidthExplanation"):
            if keyword in out:
                delattr(out, keyword)
        out.WindowCenter, out.WindowWidth = round(center + shift * width, 3), round(max(width * factor, 1.0), 3)
        return write_dicom(out, stored)
    new = PIXEL_OPS[name](stored.astype(np.float64), level, rng)
    out = copy.deepcopy(ds)
    if name == "downsampling":
        for keyword in ("PixelSpacing", "ImagerPixelSpacing"):
            if keyword in out:
                setattr(out, keyword, [round(float(v) * level, 6) for v in out.get(keyword)])
    return write_dicom(out, new)


def encode_picture(u: np.ndarray, fmt: str = "PNG", quality: int = 95) -> bytes:
    """A grey picture ``u`` in [0, 1] ``[H, W]`` as 8-bit PNG or JPEG bytes."""
    from PIL import Image

    buf = io.BytesIO()
    img = Image.fromarray(np.clip(np.rint(u * 255.0), 0, 255).astype(np.uint8), mode="L")
    img.save(buf, format=fmt, **({"quality": int(quality)} if fmt == "JPEG" else {"compress_level": 1}))
    return buf.getvalue()


def corrupt_png(u: np.ndarray, name: str, level, rng: np.random.Generator) -> bytes:
    """A grey display picture ``u`` in [0, 1] with corruption ``name`` at ``level``, as the bytes of its export."""
    if name == "JPEG re-compression":
        return encode_picture(u, "JPEG", level)
    if name == "inverted photometric":
        return encode_picture(1.0 - u)
    if name == "wrong VOI window":
        return encode_picture(rewindow(u, level))
    return encode_picture(np.clip(PIXEL_OPS[name](u.astype(np.float64), level, rng), 0.0, 1.0))


# -- what the assistant makes of a file -------------------------------------------------------


def evidence_signature(evidence) -> dict:
    """What must not change under a mild corruption: whether the domain check calls the picture a scan, the facts
    the answer is held to (:mod:`multimodal.grounding`), and the line itself (a DICOM's header line; a picture's
    best classifier label, without its percentage)."""
    facts = "; ".join(f"{k}={','.join(v)}" for k, v in sorted(evidence.facts.items()) if v)
    best = re.search(r"sees: (.+?) \d+%", evidence.text)
    line = evidence.text if evidence.source == "dicom" or not best else best.group(1)
    return {"scan": "photo" not in evidence.facts.get("domain", ()), "facts": facts, "line": line}


def fields_named(answer: str, choices: dict[str, set[str]]) -> dict[str, str | None]:
    """The value of each field ``answer`` names alone (:func:`multimodal.evaluate.names_only`), else None."""
    from multimodal.evaluate import names_only

    return {k: next((v for v in sorted(vals) if names_only(answer, v, vals)), None) for k, vals in choices.items()}


@dataclass
class Case:
    """One scan in one format: its clean bytes and what each corruption makes of it."""

    scan: str
    fmt: str
    fields: dict
    clean: bytes
    meta: dict
    display: np.ndarray | None = None


def cases(scans=SCANS) -> list[Case]:
    """Each scan as its DICOM file and as a PNG export of its clean display picture."""
    from multimodal.io import load_image
    from multimodal.samples import resolve_sample
    from recipes.image.scans import usable_scans

    known = {s.name: s.fields for s in usable_scans()}
    out = []
    for name in scans:
        data = resolve_sample(f"sample:{name}").read_bytes()
        ds, stored = stored_values(data)
        clean = write_dicom(ds, stored)  # the same writer as every corrupted copy
        image = load_image(clean)
        fields = known.get(name) or {k: image.meta[k] for k in ("modality", "body_part", "view") if image.meta.get(k)}
        out.append(Case(name, "DICOM", fields, clean, image.meta))
        gray = image.pixels[..., 0].astype(np.float64)  # [H, W]
        out.append(Case(name, "PNG", fields, encode_picture(gray), {}, gray))
    return out


def corrupted(case: Case, corruption: Corruption, severity: int, seed: int = 0) -> bytes | None:
    """The file of ``case`` with ``corruption`` at ``severity`` (None past a one-level corruption's level)."""
    level = corruption.level(severity)
    if level is None:
        return None
    rng = np.random.default_rng([seed, severity, sum(map(ord, case.scan + corruption.name))])
    if case.fmt == "DICOM":
        return corrupt_dicom(case.clean, corruption.name, level, rng, case.meta)
    return corrupt_png(case.display, corruption.name, level, rng)


def describe_all(assistant, all_cases: list[Case], severities=SEVERITIES, corruptions=None) -> dict:
    """``{(fmt, corruption, severity): {scan: evidence_signature}}``, the clean files under ``("clean", 0)``, each
    file loaded from its bytes and described by the assistant's own evidence path."""
    from multimodal.io import load_image

    out: dict = {}
    for case in all_cases:
        e = assistant.image_evidence(load_image(case.clean))
        out.setdefault((case.fmt, "clean", 0), {})[case.scan] = evidence_signature(e)
        for corruption in (corruptions or CORRUPTIONS.values()):
            for severity in severities:
                data = corrupted(case, corruption, severity)
                if data is not None:
                    e = assistant.image_evidence(load_image(data))
                    out.setdefault((case.fmt, corruption.name, severity), {})[case.scan] = evidence_signature(e)
    return out


def evidence_scores(described: dict) -> dict:
    """``{(fmt, corruption, severity): {"scan", "facts", "line"}}``: the share of files the domain check calls a
    scan, and the shares whose facts and whose line are those of the clean file."""
    clean = {(fmt, scan): sig for (fmt, c, _), by in described.items() if c == "clean" for scan, sig in by.items()}
    out = {}
    for (fmt, c, sev), by in described.items():
        if c != "clean":
            n = len(by)
            out[(fmt, c, sev)] = {"n": n, "scan": sum(sig["scan"] for sig in by.values()) / n,
                                  **{k: sum(sig[k] == clean[(fmt, scan)][k] for scan, sig in by.items()) / n
                                     for k in ("facts", "line")}}
    return out


def answer_scores(answers: dict, all_cases: list[Case], choices: dict[str, set[str]]) -> dict:
    """``answers[(fmt, corruption, severity)][scan] = text`` (severity 0 for the clean file) ->
    ``{key: {"same": fields as on the clean file, "accuracy": fields right}}``."""
    truth = {(c.fmt, c.scan): c.fields for c in all_cases}
    clean = {(fmt, scan): fields_named(text, choices) for (fmt, c, _), by in answers.items() if c == "clean"
             for scan, text in by.items()}
    out = {}
    for (fmt, c, sev), by in answers.items():
        same, right, total = 0, 0, 0
        for scan, text in by.items():
            named = fields_named(text, choices)
            same += named == clean[(fmt, scan)]
            want = truth[(fmt, scan)]
            right += sum(named.get(k) == v for k, v in want.items())
            total += len(want)
        out[(fmt, c, sev)] = {"n": len(by), "same": same / len(by), "accuracy": right / max(total, 1)}
    return out


# -- pictures that are no scan ---------------------------------------------------------------


def generated_meal(seed: int = 0, size: int = 320) -> np.ndarray:
    """A synthetic meal: coloured blobs on a white plate on a wooden-brown table, ``[S, S, 3]`` in [0, 1]."""
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:size, 0:size] / size  # [S, S]
    img = np.empty((size, size, 3))
    img[:] = (0.55, 0.35, 0.2)
    plate = (yy - 0.5) ** 2 + (xx - 0.5) ** 2 < 0.42 ** 2
    img[plate] = (0.96, 0.96, 0.94)
    for _ in range(7):
        cy, cx, r = rng.uniform(0.3, 0.7), rng.uniform(0.3, 0.7), rng.uniform(0.05, 0.12)
        blob = (yy - cy) ** 2 + (xx - cx) ** 2 < r ** 2
        img[blob] = rng.uniform(0.1, 1.0, 3) * (1.0, 0.8, 0.4) + (0.0, 0.1, 0.0)
    return np.clip(img + rng.normal(0, 0.02, img.shape), 0, 1)


def generated_colours(seed: int = 0, size: int = 256) -> np.ndarray:
    """Smooth random colour fields (a picture of anything colourful), ``[S, S, 3]`` in [0, 1]."""
    rng = np.random.default_rng(seed)
    coarse = rng.uniform(0, 1, (8, 8, 3))
    return np.kron(coarse, np.ones((size // 8, size // 8, 1)))


def photo_bytes(pixels: np.ndarray, fmt: str = "PNG") -> bytes:
    from PIL import Image

    buf = io.BytesIO()
    Image.fromarray(np.clip(np.rint(pixels * 255.0), 0, 255).astype(np.uint8)).save(buf, format=fmt)
    return buf.getvalue()


def not_scans() -> list[tuple[str, bytes]]:
    """``(name, file bytes)`` of pictures that are no scan: the meal photo, in colour and in grey, generated colour
    pictures, and photographs stored as DICOMs."""
    from multimodal.io import load_image
    from multimodal.samples import resolve_sample

    fruits = resolve_sample("sample:fruits.jpg").read_bytes()
    grey = load_image(fruits).pixels.mean(axis=2)  # [H, W]
    return [("fruits.jpg (meal photo)", fruits),
            ("fruits.jpg in grey (PNG)", encode_picture(grey)),
            ("generated meal (PNG)", photo_bytes(generated_meal())),
            ("generated colour fields (PNG)", photo_bytes(generated_colours())),
            ("OT-PAL-8-face.dcm (a photo in a DICOM)", resolve_sample("sample:OT-PAL-8-face.dcm").read_bytes()),
            ("SC_rgb.dcm (colour bars in a DICOM)", resolve_sample("sample:SC_rgb.dcm").read_bytes())]


def domain_rows(assistant, answers: bool, max_new_tokens: int) -> list[dict]:
    """Each picture that is no scan: its verdict and check time, and with ``answers`` per Clinician question
    whether the first answer and the guarded one say it is not a radiograph."""
    from multimodal.grounding import says_not_a_scan
    from multimodal.image_domain import check_domain
    from multimodal.io import load_image

    rows = []
    for name, data in not_scans():
        image = load_image(data)
        t0 = time.perf_counter()
        verdict = check_domain(image, assistant.vision)
        row = {"name": name, "verdict": verdict.as_dict(), "check_ms": 1000 * (time.perf_counter() - t0),
               "line": assistant.image_evidence(image).line, "answers": []}
        if answers:
            for question in CLINICIAN_QUESTIONS:
                done = assistant.respond(question, [image], max_new_tokens=max_new_tokens)
                first = done.answer.draft if done.answer.revised else done.answer.text
                row["answers"].append({"question": question, "first": first, "final": done.answer.text,
                                       "first_says": says_not_a_scan(first), "final_says": says_not_a_scan(
                                           done.answer.text)})
        rows.append(row)
    return rows


def not_scan_tables(rows: list[dict]) -> list[str]:
    """Markdown: each picture's verdict and check time; with answers, per Clinician question how many first drafts
    and guarded answers say the picture is not a radiograph."""
    lines = ["**Pictures that are no scan**, given to the Clinician:", "", "| picture | verdict | check time |",
             "|---|---|---|"]
    for row in rows:
        v = row["verdict"]
        verdict = "scan" if v["scan"] else f"no scan ({v['reason']}: saturation {v['saturation']:.2f}" + (
            f", food {v['food']:.2f})" if v["food"] is not None else ")")
        lines.append(f"| {row['name']} | {verdict} | {row['check_ms']:.0f} ms |")
    if rows and rows[0]["answers"]:
        lines += ["", "| Clinician question | asks about a scan | first drafts saying not a radiograph | guarded "
                  "answers saying it |", "|---|---|---|---|"]
        for i, question in enumerate(CLINICIAN_QUESTIONS):
            said = [r["answers"][i] for r in rows]
            lines.append(f"| {question} | {'yes' if asks_about_scan(question) else 'no'} | "
                         f"{sum(a['first_says'] for a in said)}/{len(said)} | "
                         f"{sum(a['final_says'] for a in said)}/{len(said)} |")
    return lines


# -- the run -----------------------------------------------------------------------------------


def run_answers(assistant, all_cases: list[Case], severities, max_new_tokens: int, progress: bool = True) -> dict:
    """``{(fmt, corruption, severity): {scan: first answer}}`` to :data:`QUESTION` (severity 0: the clean file)."""
    from multimodal.io import load_image

    out: dict = {}
    jobs = [(case, None, 0) for case in all_cases] + [
        (case, c, s) for case in all_cases for c in CORRUPTIONS.values() for s in severities if c.level(s) is not None]
    t0 = time.perf_counter()
    for i, (case, corruption, severity) in enumerate(jobs, 1):
        data = case.clean if corruption is None else corrupted(case, corruption, severity)
        text = assistant.answer(QUESTION, [load_image(data)], guard=False, max_new_tokens=max_new_tokens)
        out.setdefault((case.fmt, corruption.name if corruption else "clean", severity), {})[case.scan] = text
        if progress and (i % 10 == 0 or i == len(jobs)):
            print(f"answered {i}/{len(jobs)} ({(time.perf_counter() - t0) / i:.1f} s each)", file=sys.stderr)
    return out


def _table(scores: dict, cell: Callable[[dict], str], severities) -> list[str]:
    lines = ["| format | corruption | " + " | ".join(f"severity {s}" for s in severities) + " |",
             "|---|---|" + "---|" * len(severities)]
    for fmt in FORMATS:
        for name in CORRUPTIONS:
            cells = [cell(scores[(fmt, name, s)]) if (fmt, name, s) in scores else "-" for s in severities]
            lines.append(f"| {fmt} | {name} | " + " | ".join(cells) + " |")
    return lines


def _pct(x: float) -> str:
    return f"{100 * x:.0f}%"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--answers", action="store_true", help="also ask the LLM (slow: one answer per file)")
    parser.add_argument("--llm", default="embedded", help="the stack's LLM (with --answers)")
    parser.add_argument("--scans", default=",".join(SCANS), help="pydicom test files, comma-separated")
    parser.add_argument("--severities", default="1,2,3,4,5")
    parser.add_argument("--max-new-tokens", type=int, default=40)
    parser.add_argument("--threads", type=int, default=0, help="llama.cpp threads (0: every core)")
    parser.add_argument("--json", help="also write every answer and score here")
    parser.add_argument("--not-scans-only", action="store_true", help="only the pictures that are no scan")
    args = parser.parse_args(argv)
    from multimodal.cli import quiet_libraries
    from multimodal.config import StackConfig
    from multimodal.machine import machine
    from multimodal.pipeline import Assistant
    from recipes.image.scans import usable_scans

    quiet_libraries()
    severities = tuple(int(s) for s in args.severities.split(","))
    llm = args.llm if args.answers else "tiny-random"  # the evidence path needs no real LLM
    assistant = Assistant.load(StackConfig(llm=llm, speech="", knowledge="none", threads=args.threads,
                                           image_projector="auto" if args.answers else "none"))
    ood = domain_rows(assistant, args.answers, args.max_new_tokens)
    if args.not_scans_only:
        print(f"Machine: {machine()}, no GPU. LLM {llm}; greedy, {args.max_new_tokens} new tokens.\n")
        print("\n".join(not_scan_tables(ood)))
        return _write(args.json, {"not_scans": ood})
    all_cases = cases(tuple(args.scans.split(",")))
    t0 = time.perf_counter()
    ev = evidence_scores(describe_all(assistant, all_cases, severities))
    ev_s = time.perf_counter() - t0
    record: dict = {"evidence": {"|".join(map(str, k)): v for k, v in ev.items()}, "not_scans": ood}
    projector = assistant.info.get("image", {}).get("projector") or {}
    print(f"Machine: {machine()}, no GPU. Scans: {', '.join(c.scan for c in all_cases if c.fmt == 'DICOM')} "
          f"(pydicom test data), each as its DICOM file and as a PNG export; every file decoded from its bytes "
          f"by multimodal.io.load_image. Evidence path: {ev_s:.0f} s for "
          f"{sum(v['n'] for v in ev.values())} files.\n")
    print("Corruptions: " + "; ".join(f"{c.name}: {', '.join(map(str, c.levels))} ({c.what})"
                                      for c in CORRUPTIONS.values()) + ".\n")
    print("**Evidence path** (no LLM): share of files the image-domain check calls a scan / share whose evidence "
          "facts (what the answer is held to) are those of the clean file / share whose line is (DICOM: the header "
          "line; PNG: the general classifier's best label).\n")
    print("\n".join(_table(ev, lambda r: f"{_pct(r['scan'])} / {_pct(r['facts'])} / {_pct(r['line'])}",
                            severities)))
    if args.answers:
        choices: dict[str, set[str]] = {}
        for s in usable_scans():
            for k, v in s.fields.items():
                choices.setdefault(k, set()).add(v)
        answers = run_answers(assistant, all_cases, severities, args.max_new_tokens)
        scored = answer_scores(answers, all_cases, choices)
        record["answers"] = {"|".join(map(str, k)): v for k, v in answers.items()}
        record["answer_scores"] = {"|".join(map(str, k)): v for k, v in scored.items()}
        clean = {fmt: scored[(fmt, "clean", 0)] for fmt in FORMATS}
        shipped = f"{projector.get('name', 'none')} {projector.get('sha256', '')[:12]}"
        print(f"\n**Answers** (LLM {args.llm}, image projector {shipped}; greedy, "
              f"{args.max_new_tokens} new tokens, first draft): \"{QUESTION}\" read as the modality, body part and "
              f"view it names; fields the same as on the clean file / fields right. Clean: DICOM "
              f"{_pct(clean['DICOM']['accuracy'])} right, PNG {_pct(clean['PNG']['accuracy'])} right.\n")
        print("\n".join(_table(scored, lambda r: f"{_pct(r['same'])} / {_pct(r['accuracy'])}", severities)))
    print()
    print("\n".join(not_scan_tables(ood)))
    return _write(args.json, record)


def _write(path: str | None, record: dict) -> int:
    if path:
        with open(path, "w") as f:
            json.dump(record, f, indent=1, default=str)
    return 0


if __name__ == "__main__":
    sys.exit(main())
