"""The LLM backbone: an embedded GGUF, any Hugging Face causal LM id, a local directory, or a GGUF file.

This module loads LLMs as transformers models (the training path, the hub path
and the reference backend). A GGUF file is de-quantized by transformers on
first load; we then write a plain safetensors copy into the cache, keyed by the
file's size and a hash of its head and tail, so a second start takes well under
a second and gives identical logits. The llama.cpp backend runs GGUF files
natively instead (:mod:`multimodal.backends.llamacpp`) and only needs the
GGUF's tokenizer from here (:func:`load_gguf_tokenizer`).

Names understood by :func:`load_llm`:

- ``embedded``, ``embedded-0.5b``, ``embedded-small``: the embedded catalogue
  (:mod:`multimodal.embedded`: Qwen2.5-Coder 1.5B / 0.5B, SmolLM2-135M)
- ``tiny-random``: a 2-layer random Llama with a byte-level tokenizer, for tests
- ``/path/model.gguf``: any GGUF file transformers can read
- ``/path/dir``: a local ``save_pretrained`` directory
- anything else: a Hugging Face hub id (needs internet the first time)
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import time
from dataclasses import dataclass, field
from pathlib import Path

import torch

from . import embedded
from .errors import ModelLoadError, require
from .paths import cache_dir

EMBEDDED_LLM = embedded.DEFAULT
TINY_LLM = "tiny-random"


@dataclass
class LLMInfo:
    """Where the backbone came from and what it cost to load (for ``medany info``)."""

    name: str
    source: str
    params: int
    load_s: float
    cached: bool = False
    extra: dict = field(default_factory=dict)


def _fingerprint(path: Path) -> str:
    """Cheap content key: size + sha256 of the first and last MiB."""
    size = path.stat().st_size
    h = hashlib.sha256(str(size).encode())
    with open(path, "rb") as f:
        h.update(f.read(1 << 20))
        f.seek(max(0, size - (1 << 20)))
        h.update(f.read(1 << 20))
    return h.hexdigest()[:16]


def _convert_gguf(gguf: Path, out: Path, dtype: torch.dtype) -> None:
    """De-quantize ``gguf`` once and write a safetensors directory at ``out`` atomically."""
    transformers = require("transformers")
    require("gguf")
    from safetensors.torch import save_model

    tok = transformers.AutoTokenizer.from_pretrained(gguf.parent, gguf_file=gguf.name)
    model = transformers.AutoModelForCausalLM.from_pretrained(
        gguf.parent, gguf_file=gguf.name, dtype=dtype, trust_remote_code=False
    )
    tmp = out.with_name(f".{out.name}.{os.getpid()}.tmp")
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir(parents=True)
    config = model.config.to_dict()
    config.pop("quantization_config", None)  # the cache holds plain float weights
    (tmp / "config.json").write_text(json.dumps(config, indent=2))
    model.generation_config.save_pretrained(tmp)
    save_model(model, str(tmp / "model.safetensors"))  # handles tied embeddings
    tok.save_pretrained(tmp)
    (tmp / "medany_source.json").write_text(json.dumps({"gguf": gguf.name, "fingerprint": out.name}))
    shutil.rmtree(out, ignore_errors=True)
    os.replace(tmp, out)


def resolve_gguf(name: str) -> Path | None:
    """The GGUF file behind ``name`` (an embedded catalogue name or a path ending in .gguf), else None."""
    if embedded.is_embedded(name):
        return embedded.embedded_gguf(name)
    if name.endswith(".gguf"):
        path = Path(name).expanduser()
        if not path.is_file():
            raise ModelLoadError(f"GGUF file not found: {path.name}")
        return path
    return None


def gguf_source(name: str, gguf: Path) -> str:
    """Where a GGUF came from, for ``medany info``."""
    if embedded.is_embedded(name):
        entry = embedded.CATALOGUE[name]
        return f"{entry.model}; {entry.source}; sha256 {entry.sha256[:12]}... verified; licence {entry.licence}"
    return f"GGUF file {gguf.name}"


def load_gguf_tokenizer(gguf: Path):
    """The Hugging Face tokenizer (with its chat template) stored in a GGUF file's header.

    Converting a large vocabulary from GGUF takes seconds, so the result is
    saved once into the cache next to the de-quantized copies.
    """
    transformers = require("transformers")
    target = cache_dir("llm") / f"{gguf.stem}-{_fingerprint(gguf)}-tokenizer"
    if (target / "tokenizer_config.json").is_file():
        tok = transformers.AutoTokenizer.from_pretrained(target, trust_remote_code=False)
    else:
        require("gguf")
        tok = transformers.AutoTokenizer.from_pretrained(gguf.parent, gguf_file=gguf.name)
        tmp = target.with_name(f".{target.name}.{os.getpid()}.tmp")
        shutil.rmtree(tmp, ignore_errors=True)
        tok.save_pretrained(tmp)
        shutil.rmtree(target, ignore_errors=True)
        os.replace(tmp, target)
    if tok.pad_token_id is None:
        tok.pad_token = tok.eos_token
    return tok


def tiny_tokenizer():
    """A byte-level tokenizer with ChatML specials: offline, deterministic, 260 ids."""
    transformers = require("transformers")
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers

    specials = ["<|endoftext|>", "<|im_start|>", "<|im_end|>", "<pad>"]
    alphabet = pre_tokenizers.ByteLevel.alphabet()
    vocab = {ch: i for i, ch in enumerate(sorted(alphabet))}
    for tok in specials:
        vocab[tok] = len(vocab)
    backend = Tokenizer(models.BPE(vocab=vocab, merges=[]))
    backend.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=False)
    backend.decoder = decoders.ByteLevel()
    backend.add_special_tokens(specials)
    template = (
        "{% for m in messages %}<|im_start|>{{ m['role'] }}\n{{ m['content'] }}<|im_end|>\n{% endfor %}"
        "{% if add_generation_prompt %}<|im_start|>assistant\n{% endif %}"
    )
    return transformers.PreTrainedTokenizerFast(
        tokenizer_object=backend,
        bos_token="<|im_start|>",
        eos_token="<|im_end|>",
        pad_token="<pad>",
        unk_token="<|endoftext|>",
        chat_template=template,
    )


def tiny_llm(tokenizer, *, hidden: int = 64, layers: int = 2, heads: int = 4, kv_heads: int = 2, seed: int = 0):
    """A random Llama sized for tests around ``tokenizer``."""
    transformers = require("transformers")
    cfg = transformers.LlamaConfig(
        vocab_size=len(tokenizer),
        hidden_size=hidden,
        intermediate_size=hidden * 2,
        num_hidden_layers=layers,
        num_attention_heads=heads,
        num_key_value_heads=kv_heads,
        max_position_embeddings=4096,
        bos_token_id=tokenizer.bos_token_id,
        eos_token_id=tokenizer.eos_token_id,
        pad_token_id=tokenizer.pad_token_id,
        tie_word_embeddings=True,
    )
    with torch.random.fork_rng():
        torch.manual_seed(seed)
        return transformers.LlamaForCausalLM(cfg).eval()


def load_llm(name: str = EMBEDDED_LLM, *, dtype: torch.dtype = torch.float32, attn_implementation: str | None = None):
    """Load ``(model, tokenizer, info)`` for ``name`` (see module docstring), eval mode."""
    t0 = time.perf_counter()
    if name == TINY_LLM:
        tok = tiny_tokenizer()
        model = tiny_llm(tok)
        return model, tok, LLMInfo(name, "random init (tests)", _params(model), time.perf_counter() - t0)

    transformers = require("transformers")
    gguf = resolve_gguf(name)
    cached = False
    if gguf is not None:
        target = cache_dir("llm") / f"{gguf.stem}-{_fingerprint(gguf)}"
        cached = (target / "model.safetensors").is_file()
        if not cached:
            _convert_gguf(gguf, target, dtype)
        path, source = str(target), f"{gguf_source(name, gguf)} (de-quantized safetensors cache)"
    else:
        local = Path(name).expanduser()
        path, source = (str(local), "local directory") if local.is_dir() else (name, "Hugging Face hub")
    kwargs = {"dtype": dtype, "trust_remote_code": False}
    if attn_implementation:
        kwargs["attn_implementation"] = attn_implementation
    try:
        tok = transformers.AutoTokenizer.from_pretrained(path, trust_remote_code=False)
        model = transformers.AutoModelForCausalLM.from_pretrained(path, **kwargs)
    except OSError as exc:
        raise ModelLoadError(
            f"Could not load the language model {name!r}: {exc}. "
            "Hub models need internet on first use; 'embedded' works offline."
        ) from exc
    if tok.pad_token_id is None:
        tok.pad_token = tok.eos_token
    model.eval()
    info = LLMInfo(name, source, _params(model), time.perf_counter() - t0, cached=cached, extra={"path": path})
    return model, tok, info


def _params(model: torch.nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())
