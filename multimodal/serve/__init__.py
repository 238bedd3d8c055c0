"""MedAny as a service: an OpenAI-compatible HTTP API (``medany serve``).

``build_app(assistant, settings)`` builds the FastAPI app around a loaded
:class:`~multimodal.pipeline.Assistant`; ``launch(app, settings)`` serves it
with uvicorn. FastAPI and uvicorn are imported only when these run (extra
``all``).
"""

from .app import build_app
from .errors import ApiError, ServeConfigError
from .server import RunningServer, launch
from .settings import ServeSettings

__all__ = ["ApiError", "RunningServer", "ServeConfigError", "ServeSettings", "build_app", "launch"]
