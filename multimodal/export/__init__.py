"""Export a MedAny stack to other runtimes' checkpoint formats (see ``docs/export.md``).

Only ``llava-hf`` exists: the image path as a transformers ``LlavaForConditionalGeneration``.
"""

from multimodal.errors import ExportError

from .llava_hf import FORMAT as LLAVA_HF
from .llava_hf import check_exportable, export_llava_hf

FORMATS = (LLAVA_HF,)

__all__ = ["ExportError", "FORMATS", "LLAVA_HF", "check_exportable", "export_llava_hf"]
