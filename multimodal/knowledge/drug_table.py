"""The drug dictionary of ``drug-named-entity-recognition``, converted once from its pickle to JSON.

The package ships its data as a bz2-compressed pickle. MedAny never unpickles at
run time: :func:`convert` reads it once, when the knowledge base is built, with an
unpickler that can build nothing but plain builtin containers and scalars (any
class reference, callable or reduce of another type is refused), checks its shape
and writes JSON, which is all that is read afterwards.
"""

from __future__ import annotations

import bz2
import json
import pickle
from pathlib import Path

_ALLOWED = {("builtins", n) for n in ("dict", "list", "set", "frozenset", "tuple", "str", "int", "float", "bool")}
KEYS = ("drug_variant_to_canonical", "drug_canonical_to_data", "drug_variant_to_variant_data")


class PlainUnpickler(pickle.Unpickler):
    """Builds builtin containers and scalars only; any other global is an error."""

    def find_class(self, module: str, name: str):
        if (module, name) in _ALLOWED:
            import builtins

            return getattr(builtins, name)
        raise pickle.UnpicklingError(f"refusing to load {module}.{name} from the drug dictionary")


def convert(pkl: Path, out: Path) -> dict:
    """Read the package's pickle with :class:`PlainUnpickler`, check it, write ``out`` (JSON); returns it."""
    with bz2.open(pkl, "rb") as fh:
        data = PlainUnpickler(fh).load()
    if not isinstance(data, dict) or not set(KEYS) <= set(data):
        raise ValueError("The drug dictionary does not have the expected layout.")
    table = {"drug_variant_to_canonical": {str(k): [str(c) for c in v]
                                           for k, v in data["drug_variant_to_canonical"].items()},
             "drug_canonical_to_data": {str(k): {str(f): v for f, v in d.items()
                                                 if isinstance(v, (str, int, float, bool))}
                                        for k, d in data["drug_canonical_to_data"].items() if isinstance(d, dict)}}
    out.write_text(json.dumps(table))
    return table


def load(path: Path) -> dict:
    """The converted table (JSON only)."""
    return json.loads(path.read_text())
