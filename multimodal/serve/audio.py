"""OpenAI's audio endpoints: speech to text (``/v1/audio/transcriptions``), speech to English text
(``/v1/audio/translations``) and text to speech (``/v1/audio/speech``).

Transcription and translation take ``multipart/form-data`` as OpenAI's do (``file``,
``model``, ``language``, ``prompt``, ``response_format``, ``temperature``,
``timestamp_granularities[]``) and answer in ``json``, ``text``, ``srt``, ``vtt`` or
``verbose_json`` (with segments and the detected language). Speech takes JSON
(``model``, ``input``, ``voice``, ``response_format`` ``wav``/``pcm``/``flac``, ``speed``)
and returns the audio. Each runs as a job of the same bounded queue as chat, so
Whisper and the voices never run more at once than the LLM does.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable, Iterator

from ..cancel import stoppable
from ..errors import InputError
from ..io import load_audio
from .errors import ApiError, bad_request

TRANSCRIPT_FORMATS = ("json", "text", "srt", "verbose_json", "vtt")
SPEECH_FORMATS = {"wav": "audio/wav", "pcm": "audio/pcm", "flac": "audio/flac"}
SPEECH_MODELS = ("tts-1", "tts-1-hd", "gpt-4o-mini-tts")
WHISPER_MODELS = ("whisper-1", "gpt-4o-transcribe", "gpt-4o-mini-transcribe")
PCM_RATE = 24_000
"""OpenAI's ``pcm`` is 24 kHz 16-bit little-endian mono: every voice is resampled to it."""
_FORM_FIELDS = {"file", "model", "language", "prompt", "response_format", "temperature",
                "timestamp_granularities[]", "stream"}


@dataclass
class AudioRequest:
    """One transcription or translation request, checked."""

    task: str
    """``transcribe`` or ``translate``."""
    data: bytes
    model: str
    language: str | None
    response_format: str

    @property
    def timestamps(self) -> bool:
        return self.response_format in ("srt", "vtt", "verbose_json")


@dataclass
class SpeechRequest:
    """One text-to-speech request, checked."""

    text: str
    voice: str | None
    response_format: str
    speed: float


@dataclass
class Upload:
    """A file field of a form, held in memory (never spooled to a temporary file: it is a patient's voice)."""

    filename: str
    data: bytes


def read_form(content_type: str, body: bytes) -> dict[str, str | Upload]:
    """The fields of a ``multipart/form-data`` ``body`` (already read and bounded in size), in memory: text
    fields as strings, the file as an :class:`Upload`; a 400 for a malformed form or a repeated field."""
    from python_multipart.multipart import MultipartParser, parse_options_header

    kind, options = parse_options_header(content_type)
    boundary = options.get(b"boundary")
    if kind != b"multipart/form-data" or not boundary:
        raise bad_request("The form has no multipart boundary.", code="invalid_form")
    fields: dict[str, str | Upload] = {}
    part: dict = {}

    def on_part_begin():
        part.clear()
        part.update(headers={}, data=bytearray(), header=b"", value=b"")

    def on_header_field(data, start, end):
        part["header"] += data[start:end]

    def on_header_value(data, start, end):
        part["value"] += data[start:end]

    def on_header_end():
        part["headers"][part["header"].decode("latin-1").lower()] = part["value"]
        part["header"], part["value"] = b"", b""

    def on_part_data(data, start, end):
        part["data"] += data[start:end]

    def on_part_end():
        _, disposition = parse_options_header(part["headers"].get("content-disposition", b""))
        name = disposition.get(b"name", b"").decode("utf-8", "replace")
        if not name or name in fields or len(fields) >= len(_FORM_FIELDS):
            raise bad_request(f"The form repeats or has too many fields ({name or 'unnamed'!r}).", code="invalid_form")
        if b"filename" in disposition:
            fields[name] = Upload(disposition[b"filename"].decode("utf-8", "replace"), bytes(part["data"]))
        else:
            fields[name] = bytes(part["data"]).decode("utf-8", "replace")

    callbacks = {"on_part_begin": on_part_begin, "on_header_field": on_header_field,
                 "on_header_value": on_header_value, "on_header_end": on_header_end,
                 "on_part_data": on_part_data, "on_part_end": on_part_end}
    try:
        parser = MultipartParser(boundary, callbacks)
        parser.write(body)
        parser.finalize()
    except ApiError:
        raise
    except Exception as exc:  # python-multipart's own parse errors
        raise bad_request(f"The form could not be read ({type(exc).__name__}).", code="invalid_form") from None
    return fields


def parse_audio_form(form, task: str, served: tuple[str, ...]) -> AudioRequest:
    """The form of a transcription (``task="transcribe"``) or translation, or a 400 naming the field."""
    unknown = sorted(set(form.keys()) - _FORM_FIELDS)
    if unknown:
        raise bad_request(f"Unknown field {unknown[0]!r}.", unknown[0], "unknown_parameter")
    upload = form.get("file")
    if not isinstance(upload, Upload):
        raise bad_request("'file' is required: the recording, sent as a file.", "file", "missing_required_parameter")
    model = _text(form, "model")
    if not model:
        raise bad_request("'model' is required.", "model", "missing_required_parameter")
    if model not in served:
        raise ApiError(404, f"The model '{model[:64]}' does not exist; use {', '.join(served)}.",
                       code="model_not_found", param="model")
    fmt = _text(form, "response_format") or "json"
    if fmt not in TRANSCRIPT_FORMATS:
        raise bad_request(f"'response_format' must be one of {', '.join(TRANSCRIPT_FORMATS)}.", "response_format",
                          "invalid_value")
    if _text(form, "stream") not in (None, "", "false", "False"):
        raise bad_request("Streamed transcription is not supported; leave 'stream' out.", "stream",
                          "unsupported_parameter")
    temperature = _text(form, "temperature")
    if temperature not in (None, "") and _number(temperature, "temperature") != 0:
        raise bad_request("Only 'temperature' 0 is supported (greedy decoding).", "temperature", "unsupported_value")
    if _text(form, "prompt"):
        raise bad_request("'prompt' is not supported.", "prompt", "unsupported_parameter")
    language = _text(form, "language") or None
    if language is not None and task == "translate":
        raise bad_request("Translations take no 'language': Whisper identifies it.", "language",
                          "unsupported_parameter")
    return AudioRequest(task, upload.data, model, language, fmt)


def parse_speech_request(data: dict, served: tuple[str, ...]) -> SpeechRequest:
    """The JSON body of a speech request, or a 400 naming the field."""
    if not isinstance(data, dict):
        raise bad_request("The request body must be a JSON object.")
    known = {"model", "input", "voice", "response_format", "speed", "instructions", "stream_format"}
    unknown = sorted(set(data) - known)
    if unknown:
        raise bad_request(f"Unknown field {unknown[0]!r}.", unknown[0], "unknown_parameter")
    model = data.get("model")
    if not isinstance(model, str) or not model:
        raise bad_request("'model' is required and must be a string.", "model", "missing_required_parameter")
    if model not in served:
        raise ApiError(404, f"The model '{model[:64]}' does not exist; use {', '.join(served)}.",
                       code="model_not_found", param="model")
    text = data.get("input")
    if not isinstance(text, str) or not text.strip():
        raise bad_request("'input' is required: the text to speak.", "input", "missing_required_parameter")
    voice = data.get("voice")
    if voice is not None and not isinstance(voice, str):
        raise bad_request("'voice' must be a string.", "voice", "invalid_type")
    fmt = data.get("response_format", "wav")
    if fmt not in SPEECH_FORMATS:
        raise bad_request(f"'response_format' must be one of {', '.join(SPEECH_FORMATS)} (mp3, opus and aac are not "
                          "offered).", "response_format", "invalid_value")
    speed = data.get("speed", 1.0)
    if isinstance(speed, bool) or not isinstance(speed, (int, float)):
        raise bad_request("'speed' must be a number.", "speed", "invalid_type")
    from ..io.voice import SPEED_RANGE

    if not SPEED_RANGE[0] <= speed <= SPEED_RANGE[1]:
        raise bad_request(f"'speed' must be between {SPEED_RANGE[0]} and {SPEED_RANGE[1]}.", "speed", "invalid_value")
    if data.get("instructions") or data.get("stream_format") not in (None, "audio"):
        field = "instructions" if data.get("instructions") else "stream_format"
        raise bad_request(f"'{field}' is not supported.", field, "unsupported_parameter")
    return SpeechRequest(text, voice, fmt, float(speed))


def transcription_work(speech, request: AudioRequest, limits, language: str | None = None):
    """The queue's work: decode the recording, then Whisper; returns ``(Transcript, seconds)``."""

    def work(should_stop: Callable[[], bool]) -> Iterator[str]:
        try:
            clip = load_audio(request.data, limits=limits)
            request.data = b""  # decoded: free the upload
            with stoppable(should_stop):
                heard = speech.transcribe(clip, language=request.language or language,
                                          translate=request.task == "translate", timestamps=request.timestamps)
        except InputError as exc:
            raise ApiError.from_input_error(exc, "file" if exc.code != "unknown_language" else "language") from None
        return heard, clip.duration_s
        yield  # a generator, as the queue expects: no pieces, only the result

    return work


def speech_work(request: SpeechRequest, language: str = "en"):
    """The queue's work: the text said by the chosen voice; returns ``(bytes, media type)``."""

    def work(should_stop: Callable[[], bool]) -> Iterator[str]:
        from ..io.voice import speak

        try:
            with stoppable(should_stop):
                clip = speak(request.text, language, request.voice, request.speed)
        except InputError as exc:
            raise ApiError.from_input_error(exc, "voice" if exc.code == "unknown_voice" else "input") from None
        return encode_speech(clip, request.response_format), SPEECH_FORMATS[request.response_format]
        yield

    return work


def encode_speech(clip, fmt: str) -> bytes:
    """``clip`` in an OpenAI speech format: a WAV file, FLAC, or raw 24 kHz 16-bit PCM."""
    from ..io.tts import resample
    from ..io.types import AudioClip
    from ..io.voice import pcm16, wav_bytes

    if fmt == "pcm":
        return pcm16(AudioClip(resample(clip.samples, clip.sample_rate, PCM_RATE), sample_rate=PCM_RATE))
    if fmt == "flac":
        import io

        import soundfile

        buf = io.BytesIO()
        soundfile.write(buf, clip.samples, clip.sample_rate, format="FLAC", subtype="PCM_16")
        return buf.getvalue()
    return wav_bytes(clip)


def transcription_body(heard, seconds: float, request: AudioRequest) -> tuple[object, str]:
    """The response in the asked format: ``(body, media type)`` (a dict is sent as JSON)."""
    text, segments = heard.in_english if request.task == "translate" else (heard.text, heard.segments)
    fmt = request.response_format
    if fmt == "json":
        return {"text": text}, "application/json"
    if fmt == "text":
        return text + "\n", "text/plain; charset=utf-8"
    if fmt in ("srt", "vtt"):
        return subtitles(segments, fmt), ("application/x-subrip" if fmt == "srt" else "text/vtt") + "; charset=utf-8"
    language = "english" if request.task == "translate" else heard.language_name.lower()
    return {"task": request.task, "language": language, "duration": round(seconds, 2), "text": text,
            "segments": [{"id": i, "seek": 0, "start": round(a, 2), "end": round(b, 2), "text": f" {said}",
                          "tokens": [], "temperature": 0.0} for i, (a, b, said) in enumerate(segments)]}, \
        "application/json"


def subtitles(segments, fmt: str) -> str:
    """SubRip (``srt``) or WebVTT (``vtt``) cues for ``[(start_s, end_s, text)]``."""
    sep = "," if fmt == "srt" else "."

    def stamp(t: float) -> str:
        ms = int(round(max(t, 0.0) * 1000))
        return f"{ms // 3_600_000:02d}:{ms // 60_000 % 60:02d}:{ms // 1000 % 60:02d}{sep}{ms % 1000:03d}"

    cues = [f"{stamp(a)} --> {stamp(b)}\n{said.strip()}" for a, b, said in segments if said.strip()]
    if fmt == "srt":
        return "".join(f"{i}\n{cue}\n\n" for i, cue in enumerate(cues, 1))
    return "WEBVTT\n\n" + "".join(f"{cue}\n\n" for cue in cues)


def _text(form, name: str) -> str | None:
    value = form.get(name)
    if value is None:
        return None
    if isinstance(value, Upload):
        raise bad_request(f"'{name}' must be a text field.", name, "invalid_type")
    return value.strip()


def _number(value: str, name: str) -> float:
    try:
        return float(value)
    except ValueError:
        raise bad_request(f"'{name}' must be a number.", name, "invalid_type") from None
