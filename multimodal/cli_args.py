"""Command-line options derived from typed functions and settings dataclasses: every default written once.

:func:`options_of` reads a function's parameters or a dataclass's fields: the type
from the annotation, the default from the signature, the help from the docstring
(``Args:`` / ``Attributes:`` sections, or a field's own docstring as
:class:`~multimodal.config.StackConfig` writes them). A field's ``metadata`` may
rename the option (``"cli": "--timeout"``), give it a unit (``"unit": MiB``: the
option takes MiB, the field holds bytes), a parser (``"parse": parse_auth``) or its
own help (``"help": ...``) and choices (``"choices": (...)``).

    p = sub.add_parser("serve")
    opts = add_options(p, options_of(ServeSettings))
    settings = ServeSettings(**values(args, opts))

Letters: none; this is plumbing.
"""

from __future__ import annotations

import argparse
import ast
import dataclasses
import inspect
import re
import textwrap
import typing
from dataclasses import dataclass
from typing import Any, Callable, Sequence


@dataclass(frozen=True)
class Option:
    """One command-line option and the parameter or field it fills."""

    dest: str
    flag: str | None
    """``--name`` (None: a positional argument)."""
    kind: str
    """``value``, ``flag`` (store_true), ``no_flag`` (store_false), ``list`` (append), ``positional`` or
    ``positional_list`` (one or more)."""
    type: Callable | None
    default: Any
    help: str
    unit: float = 1
    parse: Callable | None = None
    choices: tuple | None = None
    required: bool = False

    @property
    def metavar(self) -> str:
        return (self.flag or self.dest).lstrip("-").upper().replace("-", "_")


def options_of(obj, skip: Sequence[str] = (), positional: Sequence[str] = ()) -> list[Option]:
    """The options of a function's parameters or a dataclass's fields (``skip`` left out)."""
    helps = doc_args(obj)
    hints = typing.get_type_hints(obj.__init__ if dataclasses.is_dataclass(obj) else obj)
    out = []
    if dataclasses.is_dataclass(obj):
        params = [(f.name, _field_default(f), dict(f.metadata)) for f in dataclasses.fields(obj) if f.init]
    else:
        params = [(p.name, p.default, {}) for p in inspect.signature(obj).parameters.values()
                  if p.kind in (p.POSITIONAL_OR_KEYWORD, p.KEYWORD_ONLY)]
    for name, default, meta in params:
        if name in skip:
            continue
        out.append(_option(name, default, hints.get(name), meta.get("help") or helps.get(name, ""), meta,
                           name in positional))
    return out


def add_options(parser: argparse.ArgumentParser, options: list[Option]) -> list[Option]:
    """Add ``options`` to ``parser``; returns them (for :func:`values`)."""
    for o in options:
        if o.kind == "positional":
            extra = {} if o.required else {"nargs": "?", "default": o.default}
            parser.add_argument(o.dest, type=o.type, help=o.help, **extra)
        elif o.kind == "positional_list":
            parser.add_argument(o.dest, type=o.type, nargs="+", help=o.help)
        elif o.kind in ("flag", "no_flag"):
            parser.add_argument(o.flag, dest=o.dest, action="store_true" if o.kind == "flag" else "store_false",
                                default=o.default, help=o.help)
        elif o.kind == "list":
            parser.add_argument(o.flag, dest=o.dest, action="append", default=None, type=o.parse or o.type,
                                metavar=o.metavar, help=o.help + " (repeatable)")
        else:
            shown = o.default
            if o.unit != 1 and isinstance(o.default, (int, float)):
                shown = o.default // o.unit if o.default % o.unit == 0 else o.default / o.unit
            parser.add_argument(o.flag, dest=o.dest, type=o.parse or o.type, default=None, choices=o.choices,
                                metavar=None if o.choices else o.metavar, required=o.required,
                                help=f"{o.help} (default: {shown})" if shown not in (None, "") else o.help)
    return options


def values(args: argparse.Namespace, options: list[Option], given_only: bool = False) -> dict:
    """Keyword arguments from parsed ``args``: units applied, lists as tuples.

    Options the user did not give are left out (the function's or the dataclass's own
    default applies); with ``given_only`` flags left at their default are left out too
    (so they do not override a config file).
    """
    out = {}
    for o in options:
        value = getattr(args, o.dest)
        if value is None or (given_only and o.kind in ("flag", "no_flag") and value == o.default):
            continue
        if o.kind in ("list", "positional_list"):
            value = tuple(value)
        elif o.kind == "value" and o.unit != 1:
            value = int(value * o.unit) if isinstance(o.default, int) else value * o.unit
        out[o.dest] = value
    return out


def reported(prog: str, call: Callable[[], int]) -> int:
    """``call()``, with MedAny's errors as one line on stderr each: an ``InputError`` exits 2, another
    ``MedAnyError`` 1 (every ``medany`` command ends this way)."""
    import sys

    from .errors import InputError, MedAnyError

    try:
        return call()
    except InputError as exc:
        print(f"{prog}: input problem: {exc}", file=sys.stderr)
        return 2
    except MedAnyError as exc:
        print(f"{prog}: {exc}", file=sys.stderr)
        return 1


def run_command(fn: Callable[..., int], argv: Sequence[str] | None, prog: str,
                positional: Sequence[str] = ()) -> int:
    """Parse ``argv`` into ``fn``'s parameters (its docstring's first line is the description) and call it."""
    parser = argparse.ArgumentParser(prog=prog, description=(inspect.getdoc(fn) or "").splitlines()[0])
    options = add_options(parser, options_of(fn, positional=positional))
    return fn(**values(parser.parse_args(argv), options))


# -- reading the code -------------------------------------------------------------------


def _option(name: str, default, hint, help: str, meta: dict, positional: bool) -> Option:
    flag = meta.get("cli") or "--" + name.replace("_", "-")
    if typing.get_origin(hint) is typing.Literal:  # the choices are the type
        meta = {**meta, "choices": typing.get_args(hint)}
        hint = type(typing.get_args(hint)[0])
    base, is_list = _base_type(hint)
    if meta.get("parse"):  # a value with its own parser (``USER:PASS`` -> a tuple)
        return Option(name, flag, "value", meta["parse"], default, help, parse=meta["parse"])
    if positional:
        optional = default is not inspect.Parameter.empty
        return Option(name, None, "positional_list" if is_list else "positional", base,
                      default if optional else None, help, required=not optional)
    if base is bool and not is_list:
        if default is True:
            flag = meta.get("cli") or "--no-" + name.replace("_", "-")
            return Option(name, flag, "no_flag", bool, True, help)
        return Option(name, flag, "flag", bool, False, help)
    kind = "list" if is_list else "value"
    required = default is inspect.Parameter.empty
    return Option(name, flag, kind, base, None if required else default, help, unit=meta.get("unit", 1),
                  parse=meta.get("parse"), choices=tuple(meta["choices"]) if meta.get("choices") else None,
                  required=required)


def _base_type(hint) -> tuple[Callable | None, bool]:
    """``(scalar type, is a list)`` of an annotation (``str | None`` -> str; ``tuple[str, ...]`` -> str, list)."""
    args = [a for a in typing.get_args(hint) if a is not type(None)]
    origin = typing.get_origin(hint)
    if origin in (tuple, list, Sequence, typing.Sequence) or (origin is not None and getattr(origin, "__name__", "")
                                                                 == "Sequence"):
        inner = args[0] if args else str
        return (inner if inner in (str, int, float) else str), True
    if args and origin is not None and len(args) == 1:  # Optional[X] / X | None
        return _base_type(args[0])
    if hint in (str, int, float, bool):
        return hint, False
    return str, False


def _field_default(f: dataclasses.Field):
    if f.default is not dataclasses.MISSING:
        return f.default
    if f.default_factory is not dataclasses.MISSING:
        return f.default_factory()
    return None


_SECTION = re.compile(r"^\s*(Args|Arguments|Attributes|Parameters):\s*$")


def doc_args(obj) -> dict[str, str]:
    """Help text per name: the docstring's ``Args:``/``Attributes:`` entries, and field docstrings."""
    out = _field_docstrings(obj) if dataclasses.is_dataclass(obj) else {}
    lines = inspect.cleandoc(obj.__doc__ or "").splitlines()
    in_section, name = False, None
    for line in lines:
        if _SECTION.match(line):
            in_section, name = True, None
            continue
        if not in_section:
            continue
        if line and not line.startswith(" "):  # the next section (or prose) ends it
            in_section = False
            continue
        m = re.match(r"^\s{2,8}(\w+)(?:\s*\([^)]*\))?:\s*(.*)$", line)
        if m and len(line) - len(line.lstrip()) <= 8:
            name = m.group(1)
            out.setdefault(name, m.group(2).strip())
        elif name and line.strip():
            out[name] = (out[name] + " " + line.strip()).strip()
    return {k: _plain(v) for k, v in out.items()}


def _field_docstrings(cls) -> dict[str, str]:
    """``name: docstring`` of the string literals that follow a dataclass's fields."""
    try:
        tree = ast.parse(textwrap.dedent(inspect.getsource(cls)))
    except (OSError, TypeError, SyntaxError):
        return {}
    body = tree.body[0].body if tree.body and isinstance(tree.body[0], ast.ClassDef) else []
    out = {}
    for node, after in zip(body, body[1:]):
        if (isinstance(node, ast.AnnAssign) and isinstance(node.target, ast.Name) and isinstance(after, ast.Expr)
                and isinstance(after.value, ast.Constant) and isinstance(after.value.value, str)):
            out[node.target.id] = " ".join(after.value.value.split())
    return out


def _plain(text: str) -> str:
    """Docstring markup -> help text (``code`` and :role:`x` become plain; % is escaped for argparse)."""
    text = re.sub(r":\w+:`~?([^`]+)`", r"\1", text)
    return text.replace("``", "").replace("%", "%%")
