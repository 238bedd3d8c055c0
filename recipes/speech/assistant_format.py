"""``python -m recipes.speech.assistant_format DATA``: the speech recipe's records in the assistant's own prompt.

The stage-1 records ask ``<audio>\\nTranscribe the patient and answer briefly.``
and nothing else. The assistant sends more: the system prompt and a line with
the clip's duration and Whisper's own transcript before the audio tokens. This
rewrites ``DATA/train.jsonl`` and ``DATA/eval.jsonl`` into
``train.assistant.jsonl`` / ``eval.assistant.jsonl`` beside them (same clips,
same target replies), with each clip's line made by the pipeline itself, so a
projector trained on them learns to correct the transcript it will be shown
rather than to transcribe from nothing.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

from multimodal.prompt import chat_messages, media_line, transcript_in
from multimodal.template import PLACEHOLDERS

from ..dataset import write_split


def assistant_record(record: dict, line: str) -> dict:
    """``record`` with its human turn replaced by the pipeline's prompt around ``line``."""
    human = next(t["value"] for t in record["conversations"] if t["from"] == "human")
    question = human.replace(PLACEHOLDERS["audio"], "").strip()
    system, user = chat_messages([line, PLACEHOLDERS["audio"]], question)
    reply = next(t["value"] for t in record["conversations"] if t["from"] == "gpt")
    return {**record, "conversations": [{"from": "system", "value": system["content"]},
                                        {"from": "human", "value": user["content"]},
                                        {"from": "gpt", "value": reply}]}


def convert(data: str | Path, assistant=None, *, progress: bool = False) -> dict:
    """Write the ``*.assistant.jsonl`` splits under ``data``; returns counts and the transcripts' WER."""
    from multimodal.evaluate import word_error_rate
    from multimodal.io import load_audio

    if assistant is None:
        from multimodal.config import StackConfig
        from multimodal.pipeline import Assistant

        assistant = Assistant.load(StackConfig(llm="embedded-small", vision="", audio_projector="none"))
    data, t0, info = Path(data), time.perf_counter(), {}
    for split in ("train", "eval"):
        records = [json.loads(x) for x in (data / f"{split}.jsonl").read_text().splitlines() if x.strip()]
        out, refs, heard = [], [], []
        for i, r in enumerate(records, 1):
            line = assistant.describe_audio(load_audio(data / r["audio"]))
            out.append(assistant_record(r, media_line("audio", 1, line)))
            refs.append(r.get("transcript", ""))
            heard.append(transcript_in(line))
            if progress and i % 25 == 0:
                print(f"{split}: {i}/{len(records)} clips described", file=sys.stderr)
        write_split(data / f"{split}.assistant.jsonl", out)
        info[split] = {"records": len(out), "whisper_transcript_wer": round(word_error_rate(refs, heard), 4)}
    info["convert_s"] = round(time.perf_counter() - t0, 1)
    return info


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m recipes.speech.assistant_format",
                                     description=__doc__.split("\n")[0])
    parser.add_argument("data", help="a folder written by python -m recipes.speech.make_data")
    args = parser.parse_args(argv)
    print(json.dumps(convert(args.data, progress=True), indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
