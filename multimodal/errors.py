"""One exception hierarchy for everything MedAny refuses to do.

Every message is written for the person who uploaded the file: it names the
problem, never a file path, and never a value read from inside the file (which
could be a patient identifier).
"""

from __future__ import annotations


class MedAnyError(Exception):
    """Base class of every error MedAny raises on purpose."""


class InputError(MedAnyError, ValueError):
    """A user-supplied input (file, bytes, array, prompt) cannot be used.

    ``code`` is a short stable identifier (for APIs and tests); ``str(err)`` is
    the human message.
    """

    code = "invalid_input"

    def __init__(self, message: str, *, code: str | None = None):
        super().__init__(message)
        if code is not None:
            self.code = code


class UnsupportedFormatError(InputError):
    """The input is of a kind or encoding MedAny does not read."""

    code = "unsupported_format"


class CorruptInputError(InputError):
    """The input claims a format but its content is damaged or inconsistent."""

    code = "corrupt_input"


class InputTooLargeError(InputError):
    """The input exceeds a configured size, pixel or duration limit."""

    code = "too_large"


class EmptyInputError(InputError):
    """The input holds no usable content (zero bytes, no pixels, no samples)."""

    code = "empty_input"


class PromptError(InputError):
    """The prompt and the attached media do not fit together."""

    code = "invalid_prompt"


class PromptTooLongError(PromptError):
    """The prompt plus the answer would not fit in the LLM's context (OpenAI's ``context_length_exceeded``)."""

    code = "context_length_exceeded"

    @classmethod
    def of(cls, prompt_tokens: int, answer_tokens: int, context: int) -> "PromptTooLongError":
        return cls(f"The prompt is {prompt_tokens} tokens and the answer may take {answer_tokens}; this model "
                   f"reads at most {context} tokens in all. Shorten the question or the conversation, or attach "
                   "fewer files.")


class PlaceholderMismatchError(PromptError):
    """The number of ``<image>``/``<audio>`` placeholders differs from the media given."""

    code = "placeholder_mismatch"


class ModelLoadError(MedAnyError, RuntimeError):
    """A model or weight file could not be found or loaded."""


class ExportError(MedAnyError, ValueError):
    """A stack cannot be written in the requested export format; the message says which part and why."""


class MissingDependencyError(MedAnyError, ImportError):
    """An optional dependency is needed for this feature; the message names the extra."""

    def __init__(self, module: str, extra: str = "all"):
        super().__init__(
            f"This feature needs the Python package '{module}'. "
            f"Install it with: pip install 'medany[{extra}]'"
        )
        self.module = module
        self.extra = extra


def require(module: str, extra: str = "all"):
    """Import ``module`` lazily, turning ImportError into MissingDependencyError."""
    import importlib

    try:
        return importlib.import_module(module)
    except ImportError as exc:  # pragma: no cover - exercised only without extras
        raise MissingDependencyError(module, extra) from exc


class UnknownTaskError(InputError):
    """``medany bench`` was asked for a task it does not have (the message lists them)."""

    code = "unknown_task"


class MissingDataError(InputError):
    """A benchmark's data folder is missing, or no data source was named."""

    code = "missing_data"


class DataLayoutError(InputError):
    """A benchmark's data folder does not hold the published layout (files, columns, values) of its dataset."""

    code = "data_layout"


class CohortQueryError(InputError):
    """The SQL given to ``medany cohort`` cannot be run (a syntax error, an unknown column ...)."""

    code = "bad_query"


class QueryRefusedError(CohortQueryError):
    """The SQL would write, install, attach or read beyond the findings table: ``medany cohort`` runs one SELECT."""

    code = "query_refused"


class ScoringUnsupportedError(MedAnyError, RuntimeError):
    """The loaded backend cannot score log-likelihoods; the message names the backends that can."""


class ReportsFileError(InputError):
    """A reports file of ``medany eval-reports`` is missing, unreadable, or its rows and ids do not pair up."""

    code = "reports_file"


class MetricUnavailableError(MedAnyError, RuntimeError):
    """An optional learned report metric cannot run here; ``code`` says why: ``not_installed`` (its package),
    ``weights_absent`` (its weights are not on this machine), ``needs_gpu``, or ``failed``."""

    code = "metric_unavailable"

    def __init__(self, metric: str, message: str, *, code: str):
        super().__init__(f"{metric}: {message}")
        self.metric = metric
        self.code = code
