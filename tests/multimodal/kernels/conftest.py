"""Kernel tests run the Triton kernels on CPU through the Triton interpreter.

The interpreter is chosen when a ``@triton.jit`` kernel is decorated, i.e. when
``multimodal.kernels.triton_attention`` is first imported, so set it at collection time.
"""

import os

os.environ.setdefault("TRITON_INTERPRET", "1")
