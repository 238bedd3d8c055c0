"""``python -m recipes.speech.assistant_format DATA``: the speech recipe's records in the assistant's own prompt.

The stage-1 records ask ``<audio>\\nTranscribe the patient and answer briefly.``
and nothing else, and a projector trained on them answers every question in
that format. This rewrites ``DATA/train.jsonl`` and ``DATA/eval.jsonl`` into
``train.assistant.jsonl`` / ``eval.assistant.jsonl`` beside them: same clips,
but the prompt the pipeline really sends (the system prompt, a line with the
clip's duration and Whisper's own transcript, the audio tokens, ``Question:``),
with two kinds of turn, drawn per training clip:

- ``note`` (three quarters): one of several questions about what the patient
  said, answered with the recipe's note (``Transcript:``, ``Symptom:``,
  ``Duration:``, ``Answer:``). The transcript line in the prompt is Whisper's
  guess, so the projector learns to correct it from the audio.
- ``open`` (a quarter): an open clinical question answered with what the frozen
  LLM says from the transcript line alone, without audio tokens
  (self-distillation), so the projector learns to leave open answers alone.

Held-out records are all ``note`` turns (WER and fields are scored on them).
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

from multimodal.prompt import chat_messages, media_line
from multimodal.template import PLACEHOLDERS

from ..dataset import seeded, write_split
from ..distill import frozen_answer
from .sentences import PROMPT

NOTE_QUESTIONS = (
    PROMPT,
    "What did the patient say?",
    "Take a note of this recording.",
    "What is the patient's complaint, and for how long?",
    "Write down what the patient says, the symptom and how long it has lasted.",
)
OPEN_QUESTIONS = (
    "Summarise the patient's complaint and suggest what the clinician should ask or check next.",
    "What should the clinician ask this patient next?",
    "Is this urgent, and why?",
    "What could be causing this?",
)
FORMS = ("note", "note", "note", "open")
OPEN_MAX_NEW_TOKENS = 96


def _turns(line: str, question: str, reply: str) -> list[dict]:
    system, user = chat_messages([line, PLACEHOLDERS["audio"]], question)
    return [{"from": "system", "value": system["content"]}, {"from": "human", "value": user["content"]},
            {"from": "gpt", "value": reply}]


def assistant_record(record: dict, line: str, question: str = PROMPT, reply: str | None = None) -> dict:
    """``record`` asked ``question`` in the pipeline's prompt around ``line``; ``reply`` defaults to its note.

    A record with its own ``reply`` (an ``open`` turn) keeps no ``transcript`` or
    ``fields``: its reference is the LLM's answer, nothing to score as a note.
    """
    note = next(t["value"] for t in record["conversations"] if t["from"] == "gpt")
    out = {**record, "conversations": _turns(line, question, note if reply is None else reply)}
    if reply is not None:
        out = {k: v for k, v in out.items() if k not in ("transcript", "fields")}
    return out


def convert(data: str | Path, assistant=None, *, seed: int = 0, progress: bool = False) -> dict:
    """Write the ``*.assistant.jsonl`` splits under ``data``; returns counts, forms and the transcripts' WER."""
    from multimodal.evaluate import word_error_rate
    from multimodal.io import load_audio

    if assistant is None:
        from multimodal.config import StackConfig
        from multimodal.pipeline import Assistant

        assistant = Assistant.load(StackConfig(vision="", audio_projector="none"))
    data, t0, info = Path(data), time.perf_counter(), {}
    for split in ("train", "eval"):
        records = [json.loads(x) for x in (data / f"{split}.jsonl").read_text().splitlines() if x.strip()]
        rng = seeded(seed, f"assistant-{split}")
        lines, refs, heard = [], [], []
        for i, r in enumerate(records, 1):
            said = assistant.describe_audio(load_audio(data / r["audio"]))
            lines.append(media_line("audio", 1, said))
            refs.append(r.get("transcript", ""))
            heard.append(said.split('transcript: "', 1)[-1].rstrip('"') if "transcript:" in said else "")
            if progress and i % 25 == 0:
                print(f"{split}: {i}/{len(records)} clips described", file=sys.stderr)
        forms = ["note" if split == "eval" else rng.choice(FORMS) for _ in records]
        questions = [rng.choice(NOTE_QUESTIONS if f == "note" else OPEN_QUESTIONS) for f in forms]
        out = []
        for i, r in enumerate(records):
            reply = None
            if forms[i] == "open":
                reply = frozen_answer(assistant, [lines[i]], questions[i], max_new_tokens=OPEN_MAX_NEW_TOKENS)
                if not reply:  # nothing to distil (the LLM ended at once): take a note instead
                    forms[i], questions[i], reply = "note", NOTE_QUESTIONS[0], None
            out.append({**assistant_record(r, lines[i], questions[i], reply), "form": forms[i]})
        write_split(data / f"{split}.assistant.jsonl", out)
        info[split] = {"records": len(out), "forms": {f: forms.count(f) for f in sorted(set(forms))},
                       "whisper_transcript_wer": round(word_error_rate(refs, heard), 4)}
    info["convert_s"] = round(time.perf_counter() - t0, 1)
    return info


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m recipes.speech.assistant_format", description=__doc__.split("\n")[0])
    parser.add_argument("data", help="a folder written by python -m recipes.speech.make_data")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    print(json.dumps(convert(args.data, seed=args.seed, progress=True), indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
