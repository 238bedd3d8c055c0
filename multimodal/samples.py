"""Sample inputs that exist on every machine with the default install.

``sample:NAME.dcm`` is a DICOM from pydicom's test data (``pydicom-data``
package, e.g. ``RG1_UNCR.dcm``, a real chest PA film); ``sample:consult`` is a
short doctor-patient utterance synthesized offline with espeak-ng;
``sample:fruits.jpg`` is a photo of cut fruit bundled in ``multimodal/assets``
(provenance and licence in its README).
"""

from __future__ import annotations

import hashlib
from pathlib import Path

from .errors import InputError, require
from .paths import cache_dir

PREFIX = "sample:"
ASSETS = Path(__file__).parent / "assets"
BUNDLED = {"fruits.jpg": ASSETS / "fruits.jpg"}
CONSULT_TEXT = (
    "Doctor, I have been coughing for three days. I have a mild fever, "
    "and I get short of breath when I climb the stairs."
)
# Slow, low male voice: the setting under which Whisper tiny.en hears every word.
CONSULT_VOICE = {"voice": "en-us+m3", "rate_wpm": 120}


def is_sample(ref: str) -> bool:
    return isinstance(ref, str) and ref.startswith(PREFIX)


def resolve_sample(ref: str) -> Path:
    """Path of the sample named by ``ref`` (``sample:NAME``), created if needed."""
    name = ref[len(PREFIX):]
    if name == "consult":
        return consult_clip()
    if name in BUNDLED:
        return BUNDLED[name]
    data = require("pydicom.data", "all")
    found = data.get_testdata_file(name)
    if found:
        return Path(found)
    raise InputError("There is no bundled sample with that name. "
                     "Try sample:RG1_UNCR.dcm, sample:consult or sample:fruits.jpg.",
                     code="not_found")


def consult_clip() -> Path:
    """A WAV of :data:`CONSULT_TEXT` spoken by espeak-ng (cached)."""
    from .io.tts import synthesize, write_wav

    key = hashlib.sha256(repr((CONSULT_TEXT, sorted(CONSULT_VOICE.items()))).encode()).hexdigest()[:12]
    path = cache_dir("samples") / f"consult-{key}.wav"
    if not path.is_file():
        write_wav(synthesize(CONSULT_TEXT, **CONSULT_VOICE), path)
    return path
