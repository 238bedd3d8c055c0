"""Kernel tests run the Triton kernels on CPU through the Triton interpreter.

The interpreter is chosen when a ``@triton.jit`` kernel is decorated, i.e. when
``multimodal.kernels.triton_attention`` is first imported; the root ``tests/conftest.py``
sets it before collection (repeated here for runs of this folder alone).
"""

import os

os.environ.setdefault("TRITON_INTERPRET", "1")
