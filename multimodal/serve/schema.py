"""OpenAI chat requests in, a validated :class:`ChatRequest` (question + encoded media) out.

Accepted message content, per OpenAI's chat format:

- a string, or a list of parts: ``{"type": "text", "text": ...}``,
- ``{"type": "image_url", "image_url": {"url": ...}}`` where the URL is a
  base64 ``data:`` URL of ``image/png``, ``image/jpeg``, ``image/webp`` or
  ``application/dicom``, or (only when the server allows local files) a
  ``file://`` URL / absolute path inside an allowed folder,
- ``{"type": "input_audio", "input_audio": {"data": BASE64, "format": "wav"}}``
  (``wav``, ``mp3``, ``flac``, ``ogg``, ``m4a``, ``mp4``, ``webm``).

Tool calling as OpenAI defines it: ``tools`` (function specs whose parameters
:func:`multimodal.structured.check_schema` accepts), ``tool_choice`` (``auto``,
``none``, ``required`` or a named function), ``parallel_tool_calls``, assistant
messages carrying ``tool_calls`` and ``role: tool`` messages with their results
(each becomes an evidence line the answer is held to). ``response_format`` may be
``text`` or ``json_schema``.

The media's bytes are decoded later by :mod:`multimodal.io` (which sniffs the
content, never trusting the declared type beyond this first check). Error
messages point at the offending field (``param``) and never echo a path or
any content.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
from dataclasses import dataclass, field, replace
from pathlib import Path
from urllib.parse import unquote, urlparse

from ..errors import InputError, InputTooLargeError
from ..io import AudioClip, MedicalImage, load_audio, load_image, read_bytes
from .errors import ApiError, bad_request
from .settings import ServeSettings

IMAGE_TYPES = frozenset({"image/png", "image/jpeg", "image/jpg", "image/webp", "application/dicom"})
AUDIO_FORMATS = frozenset({"wav", "mp3", "flac", "ogg", "m4a", "mp4", "webm"})
ROLES = frozenset({"system", "developer", "user", "assistant", "tool"})
TOOL_CHOICES = ("auto", "none", "required")
# Parameters that would change what the client gets back if silently ignored.
UNSUPPORTED = {"functions": "the deprecated 'functions' (send 'tools')",
               "function_call": "the deprecated 'function_call' (send 'tool_choice')", "audio": "audio output",
               "prediction": "predicted outputs"}


@dataclass(frozen=True)
class MediaDigest:
    """What the audit keeps of a medium once it is decoded: kind, sha256 and size, never the bytes."""

    kind: str
    sha256: str
    size: int


@dataclass
class MediaInput:
    """One encoded medium of a request: its kind, its bytes and where it sat in the request."""

    kind: str  # "image" | "audio"
    data: bytes
    param: str

    @property
    def sha256(self) -> str:
        return hashlib.sha256(self.data).hexdigest()

    @property
    def size(self) -> int:
        return len(self.data)

    def digest(self) -> MediaDigest:
        return MediaDigest(self.kind, self.sha256, self.size)


@dataclass
class ChatRequest:
    """What one ``/v1/chat/completions`` call asks for."""

    model: str
    question: str
    media: list[MediaInput] = field(default_factory=list)
    stream: bool = False
    include_usage: bool = False
    max_tokens: int | None = None
    temperature: float | None = None
    tools: tuple[dict, ...] = ()
    """Validated function specs (:func:`multimodal.calling.function_specs`)."""
    tool_choice: str = "auto"
    """``auto``, ``none``, ``required`` or ``function`` (then :attr:`tool_name`)."""
    tool_name: str | None = None
    parallel_tool_calls: bool = True
    tool_results: list[tuple[str, str]] = field(default_factory=list)
    """``(function name, content)`` of every ``role: tool`` message, in order."""
    json_schema: dict | None = None
    """``response_format`` ``json_schema``: the answer is a JSON value for this schema."""
    stop: tuple[str, ...] = ()
    """The answer ends before the first of these texts (OpenAI's ``stop``)."""


def parse_json(body: bytes) -> dict:
    """The request body as a JSON object (400 otherwise)."""
    try:
        data = json.loads(body.decode("utf-8"))
    except (UnicodeDecodeError, ValueError, RecursionError):
        raise bad_request("The request body is not valid JSON.", code="invalid_json") from None
    if not isinstance(data, dict):
        raise bad_request("The request body must be a JSON object.", code="invalid_json")
    if _has_lone_surrogate(data):  # JSON allows "\ud800"; UTF-8 cannot encode it
        raise bad_request("The request contains an invalid Unicode character (a lone surrogate).",
                          code="invalid_json")
    return data


def _has_lone_surrogate(value, depth: int = 0) -> bool:
    if isinstance(value, str):
        try:
            value.encode("utf-8")
        except UnicodeEncodeError:
            return True
        return False
    if depth > 64:  # json.loads already bounds nesting; this bounds our walk too
        return False
    if isinstance(value, dict):
        return any(_has_lone_surrogate(k, depth + 1) or _has_lone_surrogate(v, depth + 1) for k, v in value.items())
    if isinstance(value, list):
        return any(_has_lone_surrogate(v, depth + 1) for v in value)
    return False


def parse_chat_request(data: dict, settings: ServeSettings) -> ChatRequest:
    """Validate an OpenAI chat completion request; raises :class:`ApiError` (400/403/404/415)."""
    model = data.get("model")
    if not isinstance(model, str) or not model:
        raise bad_request("'model' is required and must be a string.", "model", "missing_required_parameter")
    if model != settings.model_name:
        raise ApiError(404, f"The model '{model[:64]}' does not exist; this server serves '{settings.model_name}'.",
                       code="model_not_found", param="model")
    for key, what in UNSUPPORTED.items():
        if data.get(key) not in (None, [], {}):
            raise bad_request(f"This server does not support {what}.", key, "unsupported_parameter")
    _check_choice_options(data)
    stream = _optional(data, "stream", bool, False)
    options = _optional(data, "stream_options", dict, None) or {}
    include_usage = _optional(options, "include_usage", bool, False, "stream_options.include_usage")
    max_tokens = _max_tokens(data, settings)
    temperature = _optional(data, "temperature", (int, float), None)
    if temperature is not None and not 0 <= temperature <= 2:
        raise bad_request("'temperature' must be between 0 and 2.", "temperature")

    tools, choice, name, parallel = _tools(data)
    json_schema = _response_format(data)
    stop = _stop(data)

    messages = data.get("messages")
    if not isinstance(messages, list) or not messages:
        raise bad_request("'messages' must be a non-empty list.", "messages", "missing_required_parameter")
    if len(messages) > settings.max_messages:
        raise ApiError(413, f"A request may carry at most {settings.max_messages} messages; this one has "
                            f"{len(messages)}.", code="too_many_messages", param="messages")
    turns: list[tuple[str, str]] = []
    media: list[MediaInput] = []
    results: list[tuple[str, str]] = []
    called: dict[str, str] = {}  # tool_call_id -> function name
    for i, message in enumerate(messages):
        where = f"messages[{i}]"
        if not isinstance(message, dict):
            raise bad_request("Each message must be an object.", where)
        role = message.get("role")
        if not isinstance(role, str) or role not in ROLES:
            raise bad_request(f"Unknown role; expected one of {sorted(ROLES)}.", f"{where}.role")
        if role == "tool":
            results.append(_tool_result(message, where, called, settings))
            turns.append((role, ""))
            continue
        text, found = _content(message.get("content"), f"{where}.content", role, settings)
        if role == "assistant" and message.get("tool_calls") is not None:
            calls = _assistant_calls(message["tool_calls"], f"{where}.tool_calls")
            called.update({cid: fn for cid, fn, _ in calls})
            text = "\n".join([text] * bool(text.strip()) + [f"(called {fn} with {args})" for _, fn, args in calls])
        turns.append((role, text))
        media.extend(found)
    last = len(messages) - 1
    if turns[-1][0] not in ("user", "tool"):
        raise bad_request("The last message must come from the user (or be a tool's result).", f"messages[{last}].role")
    if not any(role == "user" for role, _ in turns):
        raise bad_request("The conversation needs a user message.", "messages")
    if len(media) > settings.max_media_items:
        raise ApiError(413, f"A request may carry at most {settings.max_media_items} images and recordings.",
                       code="too_many_media", param="messages")
    if turns[-1][0] == "user" and not turns[-1][1].strip() and not media:
        raise bad_request("The last user message is empty.", f"messages[{last}].content")
    return ChatRequest(model, flatten(turns), media, stream, include_usage, max_tokens, temperature, tools, choice,
                       name, parallel, results, json_schema, stop)


def flatten(turns: list[tuple[str, str]]) -> str:
    """One question for the assistant: the last user turn, after any instructions and earlier turns (the turns
    after it, tool calls and their results, reach the prompt as evidence lines)."""
    at = max(i for i, (role, _) in enumerate(turns) if role == "user")
    earlier, last = turns[:at], turns[at][1]
    if not earlier:
        return last
    names = {"system": "Instructions", "developer": "Instructions", "user": "User", "assistant": "Assistant"}
    lines = [f"{names[role]}: {text}" for role, text in earlier if role in names and text.strip()]
    return "\n".join(lines + [f"User: {last}"])


def decode_media(request: ChatRequest, limits, max_audio_s: float | None = None
                 ) -> tuple[list[MedicalImage], list[AudioClip]]:
    """Decode every medium with :mod:`multimodal.io`; their errors become :class:`ApiError` (413/415/422).

    ``max_audio_s`` bounds the recordings of the request together: each is decoded
    with what is left of it as its own duration limit.
    """
    images, audios = [], []
    left = float("inf") if max_audio_s is None else float(max_audio_s)
    for item in request.media:
        try:
            if item.kind == "image":
                images.append(load_image(item.data, limits=limits))
            else:
                clip_limits = replace(limits, max_audio_s=min(limits.max_audio_s, left))
                try:
                    audios.append(load_audio(item.data, limits=clip_limits))
                except InputTooLargeError as exc:
                    if left >= limits.max_audio_s or exc.code != "too_large" or "too long" not in str(exc):
                        raise
                    raise InputTooLargeError(f"The recordings of one request may last {max_audio_s:g} s in all; "
                                             f"{max(left, 0):.1f} s were left for this one.") from None
                left -= audios[-1].duration_s
        except InputError as exc:
            raise ApiError.from_input_error(exc, item.param) from None
    return images, audios


# -- parts -----------------------------------------------------------------


def _content(content, where: str, role: str, settings: ServeSettings) -> tuple[str, list[MediaInput]]:
    if content is None and role == "assistant":
        return "", []
    if isinstance(content, str):
        return content, []
    if not isinstance(content, list):
        raise bad_request("Message content must be a string or a list of parts.", where)
    texts, media = [], []
    for j, part in enumerate(content):
        at = f"{where}[{j}]"
        kind = part.get("type") if isinstance(part, dict) else None
        if kind == "text":
            text = part.get("text")
            if not isinstance(text, str):
                raise bad_request("A text part needs a string 'text'.", f"{at}.text")
            texts.append(text)
            continue
        if not isinstance(kind, str) or kind not in ("image_url", "input_audio"):
            raise bad_request("Unknown content part; expected 'text', 'image_url' or 'input_audio'.", f"{at}.type")
        if role != "user":
            raise bad_request("Only user messages may carry images or audio.", at)
        media.append(_image(part, at, settings) if kind == "image_url" else _audio(part, at))
    return "\n".join(texts), media


def _image(part: dict, at: str, settings: ServeSettings) -> MediaInput:
    spec = part.get("image_url")
    url = spec.get("url") if isinstance(spec, dict) else spec  # some clients send the URL directly
    where = f"{at}.image_url.url"
    if not isinstance(url, str) or not url:
        raise bad_request("An image_url part needs a 'url' string.", where)
    if url.startswith("data:"):
        mime, data = _data_url(url, where)
        if mime not in IMAGE_TYPES:
            raise ApiError(415, "Images must be image/png, image/jpeg, image/webp or application/dicom data URLs.",
                           code="unsupported_media_type", param=where)
        return MediaInput("image", data, where)
    if url.startswith("file://") or url.startswith("/"):
        return MediaInput("image", _local_file(url, where, settings), where)
    if url.split(":", 1)[0].lower() in ("http", "https"):
        raise bad_request("This server does not fetch remote URLs; send the image as a data: URL.", where,
                          "unsupported_url")
    raise bad_request("The image URL must be a base64 data: URL.", where, "unsupported_url")


def _audio(part: dict, at: str) -> MediaInput:
    spec = part.get("input_audio")
    if not isinstance(spec, dict):
        raise bad_request("An input_audio part needs an object with 'data' and 'format'.", f"{at}.input_audio")
    fmt = spec.get("format")
    if not isinstance(fmt, str) or fmt.lower() not in AUDIO_FORMATS:
        raise ApiError(415, f"Audio format must be one of {sorted(AUDIO_FORMATS)}.",
                       code="unsupported_media_type", param=f"{at}.input_audio.format")
    return MediaInput("audio", _b64(spec.get("data"), f"{at}.input_audio.data"), f"{at}.input_audio.data")


def _data_url(url: str, where: str) -> tuple[str, bytes]:
    header, sep, payload = url[5:].partition(",")
    params = [p.strip().lower() for p in header.split(";")]
    if not sep or "base64" not in params[1:]:
        raise bad_request("Data URLs must be base64-encoded (data:TYPE;base64,...).", where, "invalid_data_url")
    return params[0], _b64(payload, where)


def _b64(text, where: str) -> bytes:
    if not isinstance(text, str) or not text:
        raise bad_request("Expected non-empty base64 data.", where, "invalid_base64")
    try:
        return base64.b64decode(text, validate=True)
    except (binascii.Error, ValueError):
        raise bad_request("The data is not valid base64.", where, "invalid_base64") from None


def _local_file(url: str, where: str, settings: ServeSettings) -> bytes:
    allowed = settings.resolved_dirs()
    if not allowed:
        raise bad_request("This server does not read local files; send the image as a data: URL.", where,
                          "local_files_disabled")
    parsed = urlparse(url)
    if url.startswith("file://") and parsed.netloc not in ("", "localhost"):
        raise bad_request("Only file:// URLs on this machine are accepted.", where, "unsupported_url")
    path = Path(unquote(parsed.path) if url.startswith("file://") else url).resolve()
    if not any(path.is_relative_to(d) for d in allowed):
        raise ApiError(403, "That file is outside the folders this server may read.", code="path_not_allowed",
                       param=where)
    try:
        return read_bytes(path, settings.input_limits())
    except InputError as exc:
        raise ApiError.from_input_error(exc, where) from None


# -- tools -----------------------------------------------------------------


def _tools(data: dict) -> tuple[tuple[dict, ...], str, str | None, bool]:
    """``tools``, ``tool_choice`` and ``parallel_tool_calls``, validated: (specs, choice, forced name, parallel)."""
    from ..calling import ToolSpecError, function_specs
    from ..structured import SchemaError

    raw, choice = data.get("tools"), data.get("tool_choice")
    parallel = _optional(data, "parallel_tool_calls", bool, True)
    if raw in (None, []):
        if choice not in (None, "none", "auto"):
            raise bad_request("'tool_choice' needs 'tools'.", "tool_choice")
        return (), "none", None, parallel
    try:
        specs = function_specs(raw)
    except ToolSpecError as exc:
        raise bad_request(str(exc), exc.where, "invalid_tool") from None
    except SchemaError as exc:
        raise bad_request(f"Unsupported JSON schema: {str(exc).split(': ', 1)[-1]}; MedAny writes tool "
                          "arguments under constraint and accepts only what it can guarantee.", exc.where,
                          "unsupported_schema") from None
    if choice is None or choice in TOOL_CHOICES:
        return specs, choice or "auto", None, parallel
    fn = choice.get("function") if isinstance(choice, dict) and choice.get("type") == "function" else None
    name = fn.get("name") if isinstance(fn, dict) else None
    if not isinstance(name, str):
        raise bad_request("'tool_choice' must be 'auto', 'none', 'required' or {\"type\": \"function\", "
                          "\"function\": {\"name\": ...}}.", "tool_choice")
    if name not in {s["function"]["name"] for s in specs}:
        raise bad_request("'tool_choice' names a function that is not in 'tools'.", "tool_choice.function.name")
    return specs, "function", name, parallel


def _assistant_calls(calls, where: str) -> list[tuple[str, str, str]]:
    """An assistant message's ``tool_calls``: ``(id, function name, arguments JSON)`` each."""
    if not isinstance(calls, list):
        raise bad_request("'tool_calls' must be a list.", where)
    out = []
    for j, call in enumerate(calls):
        fn = call.get("function") if isinstance(call, dict) else None
        if not isinstance(fn, dict) or not isinstance(call.get("id"), str) or not isinstance(fn.get("name"), str):
            raise bad_request("A tool call needs an 'id' and a 'function' with a 'name'.", f"{where}[{j}]")
        args = fn.get("arguments", "{}")
        out.append((call["id"], fn["name"][:64], args if isinstance(args, str) else json.dumps(args)))
    return out


def _tool_result(message: dict, where: str, called: dict[str, str], settings: ServeSettings) -> tuple[str, str]:
    """A ``role: tool`` message: ``(function name, content)``; it must answer a call made earlier."""
    call_id = message.get("tool_call_id")
    if not isinstance(call_id, str) or call_id not in called:
        raise bad_request("A tool message needs the 'tool_call_id' of an earlier assistant tool call.",
                          f"{where}.tool_call_id")
    text, _ = _content(message.get("content"), f"{where}.content", "tool", settings)
    return called[call_id], text


def _response_format(data: dict) -> dict | None:
    """The ``json_schema`` of ``response_format`` (None for text)."""
    from ..structured import SchemaError, check_schema

    fmt = data.get("response_format")
    if fmt is None or (isinstance(fmt, dict) and fmt.get("type") == "text"):
        return None
    if not isinstance(fmt, dict) or fmt.get("type") != "json_schema":
        raise bad_request("'response_format' must be 'text' or 'json_schema' (json_object has no schema to write "
                          "under constraint: send one).", "response_format", "unsupported_parameter")
    spec = fmt.get("json_schema")
    schema = spec.get("schema") if isinstance(spec, dict) else None
    if not isinstance(schema, dict):
        raise bad_request("'response_format.json_schema' needs a 'schema' object.", "response_format.json_schema")
    try:
        check_schema(schema)
    except SchemaError as exc:
        raise bad_request(f"Unsupported JSON schema: {str(exc).split(': ', 1)[-1]}.",
                          "response_format.json_schema.schema" + exc.where[1:], "unsupported_schema") from None
    return schema


# -- options ---------------------------------------------------------------


def _optional(data: dict, key: str, types, default, param: str | None = None):
    value = data.get(key)
    if value is None:
        return default
    if not isinstance(value, types) or (types is not bool and isinstance(value, bool)):
        raise bad_request(f"'{key}' has the wrong type.", param or key, "invalid_type")
    return value


MAX_STOPS = 4


def _stop(data: dict) -> tuple[str, ...]:
    """``stop``: a string or up to four non-empty strings of at most 256 characters."""
    stop = data.get("stop")
    if stop in (None, "", []):
        return ()
    stops = [stop] if isinstance(stop, str) else stop
    if not isinstance(stops, list) or not 1 <= len(stops) <= MAX_STOPS or \
            not all(isinstance(s, str) and 0 < len(s) <= 256 for s in stops):
        raise bad_request(f"'stop' must be a string or a list of 1 to {MAX_STOPS} non-empty strings (at most 256 "
                          "characters each).", "stop")
    return tuple(stops)


def _max_tokens(data: dict, settings: ServeSettings) -> int | None:
    key = "max_completion_tokens" if data.get("max_completion_tokens") is not None else "max_tokens"
    value = _optional(data, key, int, None)
    if value is not None and not 1 <= value <= settings.max_tokens:
        raise bad_request(f"'{key}' must be between 1 and {settings.max_tokens}.", key)
    return value


def _check_choice_options(data: dict) -> None:
    if _optional(data, "n", int, 1) != 1:
        raise bad_request("This server returns one choice per request ('n' must be 1).", "n", "unsupported_value")
    if _optional(data, "logprobs", bool, False):
        raise bad_request("This server does not return log probabilities.", "logprobs", "unsupported_parameter")


