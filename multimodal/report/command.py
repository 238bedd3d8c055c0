"""``medany report FILES... --out DIR [--question ...]``: a structured report and its four files.

The output folder is checked and the inputs read (a file that is no image, or
damaged, is refused with its typed error) before any model loads. Only
:data:`~multimodal.report.export.FILE_NAMES` are written, each straight into
``--out`` (resolved and confined there, written whole or not at all, 0600: a
report is about a patient).
"""

from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import Sequence

from ..errors import InputError


class OutputFolderError(InputError):
    """``--out`` cannot hold the report: it is a file, or cannot be created or written."""

    code = "bad_output_folder"


def main(argv: list[str] | None = None) -> int:
    """Parse ``argv`` into :func:`report`'s options and the stack's (as ``medany chat`` takes them)."""
    import argparse
    import inspect

    from ..cli import STACK_OPTIONS, _stack_config, quiet_libraries
    from ..cli_args import add_options, options_of, reported, values

    parser = argparse.ArgumentParser(prog="medany report", description=inspect.getdoc(report).splitlines()[0])
    options = add_options(parser, options_of(report, positional=("files",), skip=("config", "assistant", "stdout")))
    parser.add_argument("--config", help="StackConfig JSON file (options below override it)")
    add_options(parser, STACK_OPTIONS)
    args = parser.parse_args(argv)
    quiet_libraries()
    return reported("medany report", lambda: report(config=_stack_config(args), **values(args, options)))


def report(files: Sequence[str], out: str, question: str = "", key: str = "", config=None, assistant=None,
           stdout=None) -> int:
    """Write a structured imaging report of DICOM/PNG/JPEG files: Markdown, JSON, a DICOM SR and FHIR R4B.

    The Markdown report is printed; report.md, report.json, report-sr.dcm and report-fhir.json go into --out.

    Args:
        files: the study's images (DICOM, PNG, JPEG); sample:RG1_UNCR.dcm is the bundled chest film
        out: the folder the four files are written to (created; nothing is written anywhere else)
        question: the clinician's question, written into the report as its request
        key: secret for the de-identified UIDs the SR references (the same key as medany deid --key gives the
            same UIDs; default: random per run)
    """
    from ..io.deid import UidMapper
    from .export import report_files
    from .generate import generate_report
    from .study import read_study

    stdout = stdout or sys.stdout
    folder = output_folder(out)
    images = read_study(list(files), UidMapper(key.encode() if key else None))
    if assistant is None:
        from ..config import StackConfig
        from ..pipeline import Assistant

        assistant = Assistant.load(config or StackConfig())
    written = generate_report(assistant, images, question)
    data = report_files(written, images)
    for name, content in data.items():
        write_private(folder, name, content)
    stdout.write(written.to_markdown())
    print(f"[wrote {', '.join(data)} in {folder}]", file=sys.stderr)
    return 0


def output_folder(out: str) -> Path:
    """``out`` created if needed, refused unless it is a folder this process can write."""
    if not str(out).strip():
        raise OutputFolderError("Name the output folder (--out DIR).")
    folder = Path(out).expanduser()
    if folder.exists() and not folder.is_dir():
        raise OutputFolderError("The output path exists and is not a folder.")
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError:
        raise OutputFolderError("The output folder cannot be created (a parent is missing rights or is a "
                                "file).") from None
    if not os.access(folder, os.W_OK | os.X_OK):
        raise OutputFolderError("The output folder is not writable.")
    return folder.resolve()


def write_private(folder: Path, name: str, data: bytes) -> Path:
    """``data`` as ``folder/name`` (a plain name: nothing leaves ``folder``), written to a temporary file there and
    renamed, mode 0600; an existing link in its place is replaced, never followed."""
    from ..io.deid import confined

    confined(folder, name)  # a plain name, and no link in its place that leads out of the folder
    tmp = folder / f".{name}.{os.getpid()}.tmp"
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | getattr(os, "O_NOFOLLOW", 0), 0o600)
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
        os.replace(tmp, folder / name)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    return folder / name
