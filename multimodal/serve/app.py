"""The OpenAI-compatible HTTP API around one loaded :class:`~multimodal.pipeline.Assistant`.

``build_app(assistant, settings)`` returns a FastAPI app with:

- ``POST /v1/chat/completions``: text, ``image_url`` (data URLs, DICOM as
  ``application/dicom``, local files when allowed) and ``input_audio`` parts;
  ``"stream": true`` answers with server-sent ``chat.completion.chunk`` events
  ending in ``data: [DONE]``, otherwise one ``chat.completion`` with usage.
- ``POST /v1/audio/transcriptions`` and ``/v1/audio/translations`` (Whisper: the
  transcript, or its English translation, as json/text/srt/vtt/verbose_json) and
  ``POST /v1/audio/speech`` (the neural voice, espeak-ng for other languages):
  :mod:`multimodal.serve.audio`.
- ``GET /v1/models`` (and ``/v1/models/{id}``): the one served model.
- ``GET /health``: liveness and queue depth (no auth, no model details).

A request is checked in the order a client can fix it (key 401, size 413,
content type 415, JSON and fields 400/404/415, media 413/415/422), then
waits in the bounded FIFO :class:`~multimodal.serve.queue.WorkQueue` (429
when full, 504 past its deadline). Errors use OpenAI's envelope; each chat
request leaves one audit line (:mod:`multimodal.serve.audit`).
"""

import asyncio
import hashlib
import hmac
import logging
import time
import uuid
from contextlib import asynccontextmanager

try:
    from starlette.requests import Request  # FastAPI injects it by this annotation
except ImportError:  # pragma: no cover - build_app names the extra to install
    Request = object

from ..errors import require
from .audit import AuditLog, stack_identity
from .completions import DONE, Usage, chat_work, chunk, completion, sse
from .errors import ApiError, as_api_error, bad_request, install_handlers
from .queue import WorkQueue
from .schema import parse_chat_request, parse_json
from .settings import ServeSettings

log = logging.getLogger("medany.serve")


def build_app(assistant, settings: ServeSettings | None = None):
    """The API app around a loaded ``assistant``; serve it with :func:`multimodal.serve.launch`."""
    require("fastapi", "all")
    from fastapi import FastAPI

    api = Api(assistant, (settings or ServeSettings()).validate())

    @asynccontextmanager
    async def lifespan(app):
        api.queue.start()
        yield
        api.queue.close()

    app = FastAPI(title="MedAny API", lifespan=lifespan, docs_url=None, redoc_url=None, openapi_url=None)
    install_handlers(app)
    app.add_middleware(HostCheck, settings=api.settings)
    app.state.settings, app.state.queue, app.state.audit, app.state.assistant = (
        api.settings, api.queue, api.audit, assistant)
    app.get("/health")(api.health)
    app.get("/v1/models")(api.list_models)
    app.get("/v1/models/{model_id:path}")(api.get_model)
    app.post("/v1/chat/completions")(api.chat_completions)
    app.post("/v1/audio/transcriptions")(api.transcriptions)
    app.post("/v1/audio/translations")(api.translations)
    app.post("/v1/audio/speech")(api.speech)
    return app


class Api:
    """The endpoints' shared state (settings, queue, audit, keys) and the endpoints themselves."""

    def __init__(self, assistant, settings: ServeSettings):
        self.assistant, self.settings = assistant, settings
        self.queue = WorkQueue(settings.queue_size, settings.request_timeout_s)
        self.audit = AuditLog(stack_identity(assistant.info, settings.model_name), settings.audit_log)
        self.limits = settings.input_limits()
        self.started = int(time.time())
        self._keys = [k.encode() for k in settings.api_keys]

    # -- small endpoints --------------------------------------------------

    def authorize(self, request) -> None:
        """401 unless the request carries one of the keys (when keys are configured)."""
        if not self._keys:
            return
        scheme, _, token = request.headers.get("authorization", "").partition(" ")
        given = token.strip().encode()
        # Compare against every key (no early exit) so timing does not tell which prefix matched.
        matches = [hmac.compare_digest(given, k) for k in self._keys]
        if scheme.lower() != "bearer" or not any(matches):
            raise ApiError(401, "Missing or invalid API key; send 'Authorization: Bearer KEY'.",
                           code="invalid_api_key", headers={"WWW-Authenticate": "Bearer"})

    def model_card(self) -> dict:
        return {"id": self.settings.model_name, "object": "model", "created": self.started, "owned_by": "medany"}

    async def health(self):
        """200 while requests are accepted, 503 otherwise (for load balancers); queue depth either way."""
        from fastapi.responses import JSONResponse

        q = self.queue
        body = {"status": "ok" if q.accepting else "unavailable",
                "queue": {"waiting": q.waiting, "size": q.size, "busy": q.running is not None}}
        return JSONResponse(body, status_code=200 if q.accepting else 503)

    async def list_models(self, request: Request):
        self.authorize(request)
        return {"object": "list", "data": [self.model_card()]}

    async def get_model(self, model_id: str, request: Request):
        self.authorize(request)
        if model_id != self.settings.model_name:
            raise ApiError(404, "No such model.", code="model_not_found", param="model")
        return self.model_card()

    # -- chat completions -------------------------------------------------

    async def chat_completions(self, request: Request):
        """Validate, queue, answer (streamed or not), and audit one chat completion."""
        from fastapi.responses import JSONResponse, StreamingResponse
        from starlette.concurrency import run_in_threadpool

        call = _Call(self, time.monotonic())
        gone = asyncio.Event()  # a non-streaming client that left
        try:
            self.authorize(request)
            chat = call.chat = parse_chat_request(parse_json(await self.read_body(request)), self.settings)
            self.queue.check_open()  # refuse before any work when the queue is already full
            await run_in_threadpool(self.assistant.check_question, chat.question, chat.max_tokens)  # 400, not a wait
            call.digests = [m.digest() for m in chat.media]
            # Media are decoded by the worker when this request's turn comes (completions.chat_work).
            work = chat_work(self.assistant, chat, self.limits, self.settings.max_audio_s_per_request)
            job = self.queue.submit(work, arrived=call.t0)
            events = self.queue.events(job)
            if chat.stream:
                # Wait for the first event so that queueing and input errors still get their status.
                first = await anext(events)
                return StreamingResponse(call.stream_events(first, events), media_type="text/event-stream",
                                         headers={**call.headers, "Cache-Control": "no-cache",
                                                  "X-Accel-Buffering": "no"})
            text, usage = await self.collect(request, job, events, gone)
            usage = usage or Usage()
            call.finish(200, usage=usage)
            return JSONResponse(completion(call.rid, call.created, chat.model, text, usage), headers=call.headers)
        except Exception as exc:
            return call.failed(exc, gone)

    async def collect(self, request, job, events, gone: asyncio.Event) -> tuple[str, object]:
        """A job's text pieces, joined, and its result (a chat's :class:`Usage`); the job is cancelled as soon as
        its client leaves."""
        pieces, result = [], None
        watcher = asyncio.create_task(self.watch_disconnect(request, job, gone))
        try:
            async for kind, value in events:
                if kind == "piece":
                    pieces.append(value)
                else:
                    result = value
        finally:
            watcher.cancel()
        return "".join(pieces).strip(), result

    # -- audio ------------------------------------------------------------

    async def transcriptions(self, request: Request):
        """Speech to text in the language spoken (OpenAI ``/v1/audio/transcriptions``)."""
        return await self.audio_job(request, "transcribe")

    async def translations(self, request: Request):
        """Speech to English text (OpenAI ``/v1/audio/translations``)."""
        return await self.audio_job(request, "translate")

    async def speech(self, request: Request):
        """Text to speech (OpenAI ``/v1/audio/speech``): the audio file, or a JSON error."""
        from .audio import SPEECH_MODELS, parse_speech_request, speech_work

        async def run(call):
            said = parse_speech_request(parse_json(await self.read_body(request)), (*SPEECH_MODELS, self.model_id))
            return speech_work(said), lambda result: result

        return await self.run_job(request, run, "audio.speech")

    async def audio_job(self, request, task: str):
        from encoders.base import Transcriber

        from .audio import WHISPER_MODELS, parse_audio_form, read_form, transcription_body, transcription_work
        from .schema import MediaDigest

        async def run(call):
            speech = self.assistant.speech
            if not isinstance(speech, Transcriber):
                raise ApiError(404, "This server has no speech-to-text model.", code="model_not_found", param="model")
            body = await self.read_body(request, "multipart/form-data")
            form = read_form(request.headers.get("content-type", ""), body)
            asked = parse_audio_form(form, task, (*WHISPER_MODELS, self.model_id, speech.name))
            call.digests = [MediaDigest("audio", hashlib.sha256(asked.data).hexdigest(), len(asked.data))]
            work = transcription_work(speech, asked, self.limits, self.assistant.config.speech_language)
            return work, lambda result: transcription_body(*result, asked)

        return await self.run_job(request, run, f"audio.{task.replace('transcribe', 'transcription')}s")

    async def run_job(self, request, prepare, endpoint: str):
        """Authorize, let ``prepare(call)`` check the request and give ``(work, render)``, queue the work, and
        answer ``render(result)`` (``(body, media type)``; a dict is JSON); one audit line either way."""
        from fastapi.responses import JSONResponse, Response

        call = _Call(self, time.monotonic(), endpoint)
        gone = asyncio.Event()
        try:
            self.authorize(request)
            work, render = await prepare(call)
            job = self.queue.submit(work, arrived=call.t0)
            _, result = await self.collect(request, job, self.queue.events(job), gone)
            body, media_type = render(result)
            call.finish(200)
            if isinstance(body, dict):
                return JSONResponse(body, headers=call.headers)
            return Response(body, media_type=media_type, headers=call.headers)
        except Exception as exc:
            return call.failed(exc, gone)

    @property
    def model_id(self) -> str:
        return self.settings.model_name

    @staticmethod
    async def watch_disconnect(request, job, gone: asyncio.Event) -> None:
        """Cancel ``job`` as soon as its (non-streaming) client disconnects."""
        while not await request.is_disconnected():
            await asyncio.sleep(0.2)
        gone.set()
        job.cancel()

    async def read_body(self, request, content_type: str = "application/json") -> bytes:
        """The body (JSON, or the form of an audio upload), bounded in size (413) and in pauses (408); never
        both framings (400)."""
        limit = self.settings.max_request_bytes
        declared = request.headers.get("content-length")
        if declared is not None and "transfer-encoding" in request.headers:  # request smuggling's favourite
            raise bad_request("Send either Content-Length or Transfer-Encoding, not both.", code="invalid_header")
        if declared is not None:
            if not declared.strip().isdigit():
                raise bad_request("Invalid Content-Length header.", code="invalid_header")
            if int(declared) > limit:
                raise _too_large(limit)
        sent = request.headers.get("content-type", "").split(";")[0].strip().lower()
        if sent != content_type:
            what = "JSON" if content_type == "application/json" else "a form"
            raise ApiError(415, f"Send the request as {what} (Content-Type: {content_type}).",
                           code="unsupported_media_type")
        chunks, size = [], 0
        parts = request.stream().__aiter__()
        while True:
            try:  # a client may pause, but not hold the connection: each piece must come in time
                part = await asyncio.wait_for(parts.__anext__(), self.settings.body_timeout_s)
            except StopAsyncIteration:
                break
            except asyncio.TimeoutError:
                raise ApiError(408, f"The request body did not arrive within {self.settings.body_timeout_s:g} s.",
                               code="request_timeout") from None
            size += len(part)
            if size > limit:
                raise _too_large(limit)
            chunks.append(part)
        return b"".join(chunks)


class _Call:
    """One chat completion in flight: its id, what the audit keeps, and its server-sent events."""

    def __init__(self, api: Api, t0: float, endpoint: str = "chat.completions"):
        self.api, self.t0, self.endpoint = api, t0, endpoint
        self.rid = f"{'chatcmpl' if endpoint == 'chat.completions' else 'audio'}-{uuid.uuid4().hex}"
        self.created = int(time.time())
        self.headers = {"x-request-id": self.rid}
        self.chat = None
        self.digests: list = []  # what the audit keeps of the media: the bytes are dropped once decoded

    def finish(self, status: int, code: str | None = None, usage: Usage | None = None) -> None:
        """The request's one audit line."""
        chat = self.chat
        inputs = self.digests or ([m.digest() for m in chat.media] if chat else [])
        self.api.audit.record(request_id=self.rid, status=status, code=code, latency_s=time.monotonic() - self.t0,
                              inputs=inputs, stream=bool(chat and chat.stream),
                              prompt_tokens=usage.prompt_tokens if usage else None,
                              completion_tokens=usage.completion_tokens if usage else None, endpoint=self.endpoint)

    def failed(self, exc: Exception, gone: asyncio.Event):
        """The response (and audit line) for a request that raised ``exc``: 499 when its client left (the work
        was stopped because nobody waits for it), else the error in OpenAI's envelope."""
        from fastapi.responses import JSONResponse, Response

        if gone.is_set():
            self.finish(499, "client_closed")
            return Response(status_code=499)
        err = as_api_error(exc)
        if err.status >= 500 and not isinstance(exc, ApiError):
            log.error("%s failed: %s", self.endpoint, type(exc).__name__)
        self.finish(err.status, err.code)
        return JSONResponse(err.body(), status_code=err.status, headers={**self.headers, **err.headers})

    async def stream_events(self, first, events):
        """SSE frames: a role chunk, content chunks (or one chunk per tool call), the finish chunk, usage if asked,
        [DONE]."""
        chat, rid, created = self.chat, self.rid, self.created
        status, code, usage = 200, None, Usage()
        try:
            yield sse(chunk(rid, created, chat.model, {"role": "assistant", "content": ""}))
            kind, value = first
            while True:
                if kind == "piece":
                    yield sse(chunk(rid, created, chat.model, {"content": value}))
                else:
                    usage = value or usage
                    break
                kind, value = await anext(events)
            for i, call in enumerate(usage.tool_calls or []):
                yield sse(chunk(rid, created, chat.model, {"tool_calls": [{"index": i, **call}]}))
            yield sse(chunk(rid, created, chat.model, finish_reason=usage.finish_reason, report=usage.report))
            if chat.include_usage:
                yield sse(chunk(rid, created, chat.model, usage=usage))
            yield DONE
        except Exception as exc:  # headers are sent: report in-band, as OpenAI does
            err = as_api_error(exc)
            status, code = err.status, err.code
            yield sse(err.body())
        except BaseException:  # the client went away (cancelled): stop the job, log, re-raise
            status, code = 499, "client_closed"
            raise
        finally:
            await events.aclose()
            self.finish(status, code, usage if status == 200 else None)


def _too_large(limit: int) -> ApiError:
    return ApiError(413, f"The request is larger than this server accepts ({limit / 2**20:.0f} MiB).",
                    code="request_too_large")


class HostCheck:
    """ASGI middleware: 421 for a ``Host`` header that does not name this server (DNS rebinding)."""

    def __init__(self, app, settings: ServeSettings):
        self.app, self.settings = app, settings

    async def __call__(self, scope, receive, send):
        if scope["type"] == "http":
            host = dict(scope.get("headers") or []).get(b"host", b"").decode("latin-1")
            if not self.settings.host_allowed(host):
                from fastapi.responses import JSONResponse

                err = ApiError(421, "This server does not answer for that host name.", code="invalid_host")
                await JSONResponse(err.body(), status_code=421)(scope, receive, send)
                return
        await self.app(scope, receive, send)
