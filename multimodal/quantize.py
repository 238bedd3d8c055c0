"""Smaller forms of the LLM and the vision encoder: apply a named scheme, write it, load it back.

Schemes (``benchmarks/compression.py`` measures each on this CPU; ``docs/compression.md`` has the table):

- LLM on the transformers backend (torch): ``fp32`` (the de-quantized GGUF, the reference), ``bf16``,
  ``int8-weight`` (torchao ``Int8WeightOnlyConfig``: int8 weights per output row, fp32 activations) and
  ``int8-dynamic`` (torchao ``Int8DynamicActivationInt8WeightConfig``: activations quantized per token at
  run time, int8 matmuls). torchao replaces the weights of the decoder's linear layers; the embedding
  table and the output head stay fp32, as transformers' ``TorchAoConfig`` leaves them by default.
- LLM on llama.cpp: ``gguf-<type>`` (``gguf-q8_0``, ``gguf-q4_0``, ``gguf-q4_k_m`` ...): llama.cpp's own
  quantizer (``llama_model_quantize``) re-quantizes the GGUF. The embedded GGUFs are already quantized
  (Q4_K_M, Q4_1): a re-quantized file can be faster or smaller, never closer to the original weights.
- Vision encoder: ``fp32`` and ``int8`` run by ONNX Runtime (:mod:`encoders.onnx_runtime`; int8 is static
  QDQ quantization calibrated on real images).

``medany quantize OUT --llm NAME --scheme S`` or ``medany quantize OUT --encoder NAME --scheme S`` writes
the form into the folder OUT (nothing outside it) with a ``medany_quantized.json`` naming its base.
Using it: ``--llm OUT --backend transformers`` (torchao weights as safetensors, loaded by transformers'
torchao integration: no pickle), ``--llm OUT/model.gguf`` (llama.cpp), ``--vision onnx:OUT``. The shipped
projectors of the base model still apply (:func:`base_name`).
"""

from __future__ import annotations

import contextlib
import ctypes
import json
import os
import shutil
import sys
import tempfile
import time
from pathlib import Path
from typing import Sequence

import torch

from .errors import InputError, ModelLoadError, require

MANIFEST = "medany_quantized.json"
TORCH_SCHEMES = ("fp32", "bf16", "int8-weight", "int8-dynamic")
GGUF_TYPES = ("q8_0", "q6_k", "q5_k_m", "q4_k_m", "q4_0")
GGUF_SCHEMES = tuple(f"gguf-{t}" for t in GGUF_TYPES)
LLM_SCHEMES = TORCH_SCHEMES + GGUF_SCHEMES
ENCODER_SCHEMES = ("fp32", "int8")
# Bundled pictures whose activations calibrate the int8 encoder: scans from the image recipe's *training*
# source groups (its held-out groups stay unseen) and the meal photo.
CALIBRATION = tuple(f"sample:{n}" for n in ("RG1_UNCR.dcm", "CT_small.dcm", "US1_J2KI.dcm", "SC_rgb.dcm",
                                             "liver_1frame.dcm", "MR2_J2KI.dcm", "JPEG-LL.dcm", "OBXXXX1A.dcm",
                                             "fruits.jpg"))


class UnknownSchemeError(InputError):
    """The quantization scheme named does not exist for that model (the message lists those that do)."""

    code = "unknown_scheme"


class OutputFolderError(InputError):
    """The output folder cannot be used: a file, a folder holding other files, or inside the model's own folder."""

    code = "bad_output_folder"


# -- torch LLM -----------------------------------------------------------------------------


def torchao_config(scheme: str):
    """The torchao config of an int8 scheme (None for fp32 / bf16)."""
    if scheme not in ("int8-weight", "int8-dynamic"):
        return None
    quant = require("torchao.quantization", "all")
    return quant.Int8WeightOnlyConfig() if scheme == "int8-weight" else quant.Int8DynamicActivationInt8WeightConfig()


def _decoder_linear(module: torch.nn.Module, fqn: str) -> bool:
    return isinstance(module, torch.nn.Linear) and fqn.rsplit(".", 1)[-1] != "lm_head"


def quantize_llm(model: torch.nn.Module, scheme: str) -> torch.nn.Module:
    """Apply ``scheme`` (:data:`TORCH_SCHEMES`) to a loaded fp32 transformers causal LM, in place; returns it."""
    check_scheme(scheme, TORCH_SCHEMES, "the transformers backend")
    if scheme == "bf16":
        return model.to(torch.bfloat16)
    config = torchao_config(scheme)
    if config is not None:
        require("torchao", "all").quantize_(model, config, filter_fn=_decoder_linear)
    return model


def save_llm(model, tokenizer, scheme: str, out: Path) -> None:
    """Write a model :func:`quantize_llm` made into ``out`` so that ``transformers.from_pretrained(out)`` loads it.

    torchao's int8 tensors are flattened into plain tensors plus JSON metadata (torchao's safetensors
    support), and ``config.json`` carries the ``TorchAoConfig`` that tells transformers to rebuild them.
    """
    config = torchao_config(scheme)
    if config is None:
        model.save_pretrained(out)
    else:
        transformers = require("transformers", "all")
        from safetensors.torch import save_file
        from torchao.prototype.safetensors.safetensors_support import flatten_tensor_state_dict

        state = dict(model.state_dict())
        if getattr(model.config, "tie_word_embeddings", False):
            state.pop("lm_head.weight", None)  # the same tensor as the embedding table
        data, metadata = flatten_tensor_state_dict(state)
        save_file({k: v.contiguous() for k, v in data.items()}, str(out / "model.safetensors"), metadata=metadata)
        model.config.quantization_config = transformers.TorchAoConfig(config)
        model.config.save_pretrained(out)
        model.generation_config.save_pretrained(out)
    tokenizer.save_pretrained(out)


def load_quantized_llm(name: str, scheme: str):
    """``(model, tokenizer, LLMInfo)``: ``name`` loaded in fp32 (the de-quantized cache) and ``scheme`` applied."""
    from .backbone import load_llm

    model, tok, info = load_llm(name)
    return quantize_llm(model, scheme), tok, info


# -- GGUF ----------------------------------------------------------------------------------


def requantize_gguf(src: Path, dst: Path, gguf_type: str, threads: int = 0) -> None:
    """Re-quantize the GGUF ``src`` to ``gguf_type`` (:data:`GGUF_TYPES`) at ``dst`` with llama.cpp's quantizer."""
    check_scheme(gguf_type, GGUF_TYPES, "llama.cpp")
    lib = require("llama_cpp", "all")
    params = lib.llama_model_quantize_default_params()
    params.nthread = threads or os.cpu_count() or 1
    params.ftype = getattr(lib, f"LLAMA_FTYPE_MOSTLY_{gguf_type.upper()}")
    params.allow_requantize = True  # the embedded GGUFs are quantized already
    with _quiet_stdout():  # llama.cpp prints a line per tensor
        rc = lib.llama_model_quantize(str(src).encode(), str(dst).encode(), ctypes.byref(params))
    if rc != 0:
        raise ModelLoadError(f"llama.cpp could not re-quantize '{src.name}' to {gguf_type} (code {rc}).")


@contextlib.contextmanager
def _quiet_stdout():
    """File descriptor 1 to /dev/null: C code's prints do not pass through ``sys.stdout``."""
    sys.stdout.flush()
    saved = os.dup(1)
    devnull = os.open(os.devnull, os.O_WRONLY)
    try:
        os.dup2(devnull, 1)
        yield
    finally:
        os.dup2(saved, 1)
        os.close(saved)
        os.close(devnull)


# -- names and folders -----------------------------------------------------------------------


def check_scheme(scheme: str, known: Sequence[str], what: str) -> None:
    if scheme not in known:
        raise UnknownSchemeError(f"Unknown quantization scheme '{scheme}' for {what}; choose one of: "
                                 f"{', '.join(known)}.")


def read_manifest(path: str | Path) -> dict | None:
    """The ``medany_quantized.json`` of a folder, or of the folder holding a file; None when there is none."""
    path = Path(path).expanduser()
    folder = path if path.is_dir() else path.parent
    manifest = folder / MANIFEST
    if not manifest.is_file():
        return None
    data = json.loads(manifest.read_text())
    if path.is_file() and data.get("file") != path.name:
        return None
    return data


def base_name(name: str | None) -> str | None:
    """The model a quantized form was made from (``OUT``, ``OUT/model.gguf``, ``onnx:OUT`` -> ``embedded`` ...),
    so that projectors trained for the base apply; any other name is returned as is."""
    if not name:
        return name
    path = name.split(":", 1)[1] if name.startswith("onnx:") else name
    if not (os.sep in path or path.endswith(".gguf") or Path(path).expanduser().is_dir()):
        return name
    try:
        manifest = read_manifest(path)
    except (OSError, ValueError):
        return name
    return manifest.get("base", name) if manifest else name


def _source_folders(llm: str | None) -> list[Path]:
    """Folders a quantized copy must not be written into: the source model's own and the weight caches."""
    from .paths import cache_dir

    folders = [cache_dir("llm"), cache_dir("timm")]
    if llm:
        from .backbone import resolve_gguf

        gguf = resolve_gguf(llm)
        if gguf is not None:
            folders.append(gguf.parent)
        elif Path(llm).expanduser().is_dir():
            folders.append(Path(llm).expanduser())
    return [f.resolve() for f in folders]


def prepare_output(out: str | Path, llm: str | None = None) -> Path:
    """``out`` resolved, refused with :class:`OutputFolderError` when it is unusable (see that class)."""
    path = Path(out).expanduser().resolve()
    if path.exists() and not path.is_dir():
        raise OutputFolderError(f"The output '{path.name}' is a file; name a new or empty folder.")
    if path.is_dir() and any(path.iterdir()) and not (path / MANIFEST).is_file():
        raise OutputFolderError(f"The folder '{path.name}' already holds other files; name a new or empty folder "
                                "(a folder written by `medany quantize` before is replaced).")
    for source in _source_folders(llm):
        if path == source or source in path.parents:
            raise OutputFolderError(f"The output folder '{path.name}' is inside the model's own folder or MedAny's "
                                    "weight cache; name a folder of your own.")
    return path


@contextlib.contextmanager
def _temp_inside(folder: Path):
    """Scratch files of ONNX Runtime's calibration go into ``folder``, not the system temp. Not around torch
    code: torch caches paths derived from the temp folder (inductor's cache) for the life of the process."""
    scratch = folder / ".work"
    scratch.mkdir(parents=True, exist_ok=True)
    before = tempfile.tempdir
    tempfile.tempdir = str(scratch)
    try:
        yield
    finally:
        tempfile.tempdir = before
        shutil.rmtree(scratch, ignore_errors=True)


# -- the command ---------------------------------------------------------------------------


def quantize(out: str, scheme: str, llm: str | None = None, encoder: str | None = None,
             calibration: Sequence[str] = (), threads: int = 0) -> int:
    """Write a quantized form of the LLM or the vision encoder into a folder (see docs/compression.md).

    Args:
        out: the folder to write (created; a folder this command wrote before is replaced)
        scheme: LLM: fp32, bf16, int8-weight, int8-dynamic (transformers backend) or gguf-q8_0, gguf-q6_k,
            gguf-q5_k_m, gguf-q4_k_m, gguf-q4_0 (llama.cpp); encoder: fp32 or int8 (ONNX Runtime)
        llm: the LLM to quantize (embedded, embedded-small, a .gguf file, a model folder)
        encoder: the vision encoder to quantize (medany-lite0 or another timm:<model>)
        calibration: images or DICOMs whose activations calibrate the int8 encoder (default: bundled scans and photo)
        threads: CPU threads of llama.cpp's quantizer (0: every core)
    """
    if bool(llm) == bool(encoder):
        raise InputError("Name exactly one of --llm or --encoder.")
    check_scheme(scheme, LLM_SCHEMES if llm else ENCODER_SCHEMES, "an LLM" if llm else "an encoder")
    path = prepare_output(out, llm)
    if path.is_dir():
        shutil.rmtree(path)  # only a folder this command wrote (prepare_output checked its manifest)
    path.mkdir(parents=True)
    t0 = time.perf_counter()
    if encoder:
        from encoders.onnx_runtime import export_encoder

        with _temp_inside(path):  # only ONNX Runtime's calibration writes scratch files
            manifest = export_encoder(encoder, path, scheme, tuple(calibration) or CALIBRATION)
    elif scheme in GGUF_SCHEMES:
        manifest = _write_gguf(llm, scheme, path, threads)
    else:
        model, tok, _ = load_quantized_llm(llm, scheme)
        save_llm(model, tok, scheme, path)
        manifest = {"kind": "llm", "base": llm, "scheme": scheme, "runtime": "transformers",
                    "bytes": sum(f.stat().st_size for f in path.glob("*.safetensors"))}
    manifest["seconds"] = round(time.perf_counter() - t0, 1)
    (path / MANIFEST).write_text(json.dumps(manifest, indent=2))
    use = {"llm": f"--llm {path} --backend transformers" + (" --dtype bfloat16" if scheme == "bf16" else ""),
           "gguf": f"--llm {path / manifest.get('file', '')}", "encoder": f"--vision onnx:{path}"}
    kind = "encoder" if encoder else ("gguf" if scheme in GGUF_SCHEMES else "llm")
    print(f"wrote {scheme} {encoder or llm} to {path} ({manifest['bytes'] / 2**20:.1f} MiB) in "
          f"{manifest['seconds']} s; use it with: {use[kind]}")
    return 0


def _write_gguf(llm: str, scheme: str, out: Path, threads: int) -> dict:
    from .backbone import resolve_gguf

    src = resolve_gguf(llm)
    if src is None:
        raise InputError(f"'{llm}' is not a GGUF model; the gguf-* schemes re-quantize GGUF files "
                         "(embedded, embedded-small or a .gguf path).")
    gguf_type = scheme.split("-", 1)[1]
    dst = out / "model.gguf"
    requantize_gguf(src, dst, gguf_type, threads)
    return {"kind": "llm", "base": llm, "scheme": scheme, "runtime": "llama.cpp", "file": dst.name,
            "source": src.name, "bytes": dst.stat().st_size}


def main(argv: list[str] | None = None) -> int:
    """``medany quantize OUT --llm NAME|--encoder NAME --scheme S``."""
    from .cli_args import reported, run_command

    return reported("medany quantize", lambda: run_command(quantize, argv, prog="medany quantize",
                                                           positional=("out",)))
