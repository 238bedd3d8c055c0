"""Errors of the API server, answered in OpenAI's envelope.

Every refusal is ``{"error": {"message", "type", "param", "code"}}`` with the
status a client can act on: 400 malformed request, 401 missing or wrong key,
403 a local file outside the allowed folders, 404 unknown model, 413 too
large, 415 a media type we do not read, 422 media that cannot be decoded,
429 queue full and 503 not accepting work (both with ``Retry-After``), 504
too slow. A client mistake never becomes a 500: only our own bugs do, and
their message stays generic (third-party messages can quote file content).
"""

from __future__ import annotations

from ..errors import (
    CorruptInputError,
    EmptyInputError,
    InputError,
    InputTooLargeError,
    MedAnyError,
    PromptError,
    PromptTooLongError,
    UnsupportedFormatError,
)


class ServeConfigError(MedAnyError, ValueError):
    """The server settings are unsafe or inconsistent; the message says how to fix them."""


# Our InputError families -> HTTP status (subclasses such as DicomError follow their family);
# any other InputError is a plain bad request (400).
INPUT_STATUS = (
    (PromptTooLongError, 400),
    (InputTooLargeError, 413),
    (UnsupportedFormatError, 415),
    (CorruptInputError, 422),
    (EmptyInputError, 422),
    (PromptError, 422),
)

ERROR_TYPES = {
    400: "invalid_request_error",
    401: "authentication_error",
    403: "permission_error",
    404: "not_found_error",
    405: "invalid_request_error",
    413: "invalid_request_error",
    408: "invalid_request_error",
    415: "invalid_request_error",
    421: "invalid_request_error",
    422: "invalid_request_error",
    429: "rate_limit_error",
    503: "overloaded_error",
    504: "timeout_error",
}

GENERIC_MESSAGE = ("The server failed while answering this request. Please try again; if it keeps happening, "
                   "tell the administrator.")


class ApiError(Exception):
    """A refusal with its HTTP status, OpenAI error fields and extra headers (``Retry-After``)."""

    def __init__(self, status: int, message: str, *, code: str | None = None, param: str | None = None,
                 type: str | None = None, headers: dict[str, str] | None = None):
        super().__init__(message)
        self.status = status
        self.message = message
        self.code = code
        self.param = param
        self.type = type or ERROR_TYPES.get(status, "server_error" if status >= 500 else "invalid_request_error")
        self.headers = dict(headers or {})

    def body(self) -> dict:
        """The OpenAI error envelope."""
        return {"error": {"message": self.message, "type": self.type, "param": self.param, "code": self.code}}

    @classmethod
    def from_input_error(cls, exc: InputError, param: str | None = None) -> "ApiError":
        """Our typed input errors keep their message and code; the status follows :data:`INPUT_STATUS`."""
        status = next((s for family, s in INPUT_STATUS if isinstance(exc, family)), 400)
        return cls(status, str(exc), code=exc.code, param=param)


def as_api_error(exc: BaseException, param: str | None = None) -> ApiError:
    """Any exception -> the :class:`ApiError` a client sees (500 with a generic message for our bugs)."""
    if isinstance(exc, ApiError):
        return exc
    if isinstance(exc, InputError):
        if isinstance(exc, PromptTooLongError) and param is None:
            param = "messages"
        return ApiError.from_input_error(exc, param)
    return ApiError(500, GENERIC_MESSAGE, code="internal_error", type="server_error")


def bad_request(message: str, param: str | None = None, code: str = "invalid_value") -> ApiError:
    return ApiError(400, message, code=code, param=param)


def install_handlers(app) -> None:
    """Answer every error of ``app`` in the envelope: ours, Starlette's (404/405) and unexpected ones."""
    import logging

    from fastapi.exceptions import RequestValidationError
    from fastapi.responses import JSONResponse
    from starlette.exceptions import HTTPException

    log = logging.getLogger("medany.serve")

    def respond(err: ApiError) -> JSONResponse:
        return JSONResponse(err.body(), status_code=err.status, headers=err.headers)

    @app.exception_handler(ApiError)
    async def _api(request, exc: ApiError):
        return respond(exc)

    @app.exception_handler(HTTPException)
    async def _http(request, exc: HTTPException):
        code = {404: "not_found", 405: "method_not_allowed"}.get(exc.status_code)
        message = {404: "No such endpoint.", 405: "This endpoint does not accept that method."}.get(
            exc.status_code, str(exc.detail))
        return respond(ApiError(exc.status_code, message, code=code, headers=getattr(exc, "headers", None)))

    @app.exception_handler(RequestValidationError)
    async def _validation(request, exc: RequestValidationError):
        return respond(bad_request("The request is not valid.", code="invalid_request"))

    @app.exception_handler(Exception)
    async def _unexpected(request, exc: Exception):
        log.error("unexpected failure: %s", type(exc).__name__)  # the type only: no content in logs
        return respond(as_api_error(exc))
