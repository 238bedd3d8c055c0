"""Does the speech projector make the assistant's answers better? Measured through the real pipeline.

Runs held-out consult clips through the stack with each audio projector
(``--projector``, repeatable; default the shipped ``medany-whisper-speech``) and without one
(``none``: a clip reaches the LLM only as its line, duration plus Whisper's
transcript), and prints Markdown:

1. note questions (the recipe's, e.g. "What did the patient say?"): word error
   rate of the ``Transcript:`` line of the answer, and whether the symptom and
   duration are named; beside them the WER of Whisper's own transcript, which
   the prompt line already carries;
2. open questions (one per clip, e.g. "Is this urgent, and why?"): how often the
   answer with the projector is the answer without it, word for word, and the
   word error rate between the two (0: same words) -- the projector should
   correct notes, not rewrite open answers;
3. the answers, side by side, to ``make demo``'s request (chest film + consult
   clip) and the consult workspace's default question.

    python benchmarks/speech_projector_effect.py [--eval out/recipes/speech/data/eval.jsonl]
"""

from __future__ import annotations

import argparse
import json
import platform
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # the recipes live beside the package, not in it
from recipes.speech.sentences import PROMPT  # noqa: E402

DEMO = ("What does this chest film show, and what should the patient ask their doctor?",
        ["sample:RG1_UNCR.dcm"], ["sample:consult"])
CONSULT = ("Summarise the patient's complaint and suggest what the clinician should ask or check next.",
           [], ["sample:consult"])
NOTE_QUESTIONS = (
    PROMPT,
    "What did the patient say?",
    "Take a note of this recording.",
    "What is the patient's complaint, and for how long?",
    "Write down what the patient says, the symptom and how long it has lasted.",
)
OPEN_QUESTIONS = (
    CONSULT[0],
    "What should the clinician ask this patient next?",
    "Is this urgent, and why?",
    "What could be causing this?",
)


def load_eval(path: Path) -> list[dict]:
    """Held-out clips as ``{"audio", "transcript", "fields", "group"}`` (a recipe's plain ``eval.jsonl``)."""
    rows = []
    for line in path.read_text().splitlines():
        r = json.loads(line)
        rows.append({"audio": str(path.parent / r["audio"]), "transcript": r["transcript"],
                     "fields": r.get("fields", {}), "group": r.get("group", "all")})
    return rows


def run(spec: str, rows: list[dict], max_new_tokens: int, llm: str = "embedded-small") -> dict:
    from multimodal.config import StackConfig
    from multimodal.evaluate import extract_transcript, names_only, word_error_rate
    from multimodal.io import load_audio
    from multimodal.pipeline import Assistant
    from multimodal.prompt import transcript_in
    from recipes.dataset import seeded
    from recipes.speech.sentences import DURATIONS, SYMPTOMS

    assistant = Assistant.load(StackConfig(llm=llm, audio_projector=spec, max_new_tokens=max_new_tokens))
    clips = [load_audio(r["audio"]) for r in rows]
    rng = seeded(0, "speech-benchmark")
    heard = [transcript_in(assistant.describe_audio(clip)) for clip in clips]  # the prompt's line, untimed
    notes, opens = [], []
    t0 = time.perf_counter()
    for clip in clips:
        notes.append(assistant.answer(rng.choice(NOTE_QUESTIONS), audios=[clip]))
        opens.append(assistant.answer(rng.choice(OPEN_QUESTIONS), audios=[clip]))
    per_answer = (time.perf_counter() - t0) / max(2 * len(rows), 1)
    choices = {"symptom": {s.name for s in SYMPTOMS}, "duration": set(DURATIONS)}

    def scores(idx: list[int]) -> dict:
        refs = [rows[i]["transcript"] for i in idx]
        out = {"n": len(idx), "wer": word_error_rate(refs, [extract_transcript(notes[i]) for i in idx]),
               "whisper_wer": word_error_rate(refs, [heard[i] for i in idx])}
        for k in choices:
            out[k] = sum(names_only(notes[i], rows[i]["fields"][k], choices[k]) for i in idx) / max(len(idx), 1)
        return out

    groups = sorted({r["group"] for r in rows})
    projector = assistant.info.get("audio", {}).get("projector")
    return {"scores": {"all": scores(list(range(len(rows)))),
                       **{g: scores([i for i, r in enumerate(rows) if r["group"] == g]) for g in groups}},
            "opens": opens, "s_per_answer": per_answer,
            "fixed": [assistant.answer(q, images, audios) for q, images, audios in (DEMO, CONSULT)],
            "projector": projector and projector.get("sha256", "")[:12]}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--eval", default="out/recipes/speech/data/eval.jsonl",
                        help="held-out clips (python -m recipes.speech.make_data OUT)")
    parser.add_argument("--projector", action="append",
                        help="projector spec to compare with 'none' "
                             "(repeat for several; default medany-whisper-speech)")
    parser.add_argument("--max-new-tokens", type=int, default=64)
    parser.add_argument("--llm", default="embedded-small", help="the LLM the speech projector was trained for")
    parser.add_argument("--limit", type=int, help="use only the first N held-out clips")
    args = parser.parse_args(argv)
    from multimodal.cli import quiet_libraries
    from multimodal.evaluate import word_error_rate

    quiet_libraries()
    path = Path(args.eval)
    if not path.is_file():
        print(f"error: no held-out clips at {path}; run python -m recipes.speech.make_data first", file=sys.stderr)
        return 2
    rows = load_eval(path)[: args.limit]
    specs = args.projector or ["medany-whisper-speech"]
    results = {spec: run(spec, rows, args.max_new_tokens, args.llm) for spec in [*specs, "none"]}
    without = results["none"]
    print(f"Machine: {platform.processor() or platform.machine()}, {platform.system()}; {len(rows)} held-out clips; "
          f"greedy, {args.max_new_tokens} new tokens max.\n")
    print("| audio projector | held-out group | n | transcript WER of the answer | Whisper's own WER "
          "| symptom named | duration named | s / answer |")
    print("|---|---|---|---|---|---|---|---|")
    for spec, res in results.items():
        label = f"{spec} ({res['projector']})" if res["projector"] else "none (transcript line only)"
        for g, s in res["scores"].items():
            print(f"| {label} | {g} | {s['n']} | {s['wer']:.3f} | {s['whisper_wer']:.3f} | {s['symptom']:.2f} "
                  f"| {s['duration']:.2f} | {res['s_per_answer']:.1f} |")
    print()
    for spec in specs:
        opens = results[spec]["opens"]
        same = sum(a.strip() == b.strip() for a, b in zip(opens, without["opens"]))
        print(f"Open questions, {spec}: {same}/{len(rows)} answers word for word the same as without a projector; "
              f"word error rate between them {word_error_rate(without['opens'], opens):.3f}.")
    print()
    for i, (question, images, audios) in enumerate((DEMO, CONSULT)):
        print(f"**{' + '.join(images + audios)}**: {question}\n")
        for spec, res in results.items():
            print(f"- {spec}: {res['fixed'][i].replace(chr(10), ' ')}")
        print()
    return 0


if __name__ == "__main__":
    sys.exit(main())
