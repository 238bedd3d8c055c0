"""Speech, measured: language identification, transcription, translation to English, voices, on this CPU.

Clips are made at run time with espeak-ng from sentences written for MedAny
(benchmarks/speech_sentences.py: the same five consult sentences in English, Spanish,
French, German, Portuguese and Chinese, two voices each). Each is heard by:

- ``tiny.en`` (the packaged English-only Whisper, openai-whisper), English clips only;
- ``base`` (the packaged multilingual Whisper) with openai-whisper (fp32 PyTorch);
- ``base`` with faster-whisper (CTranslate2 int8), when installed.

Reported per model and language: language-ID accuracy, WER (CER for Chinese,
which has no spaces), chrF of the English translation against our English sentence
(sacrebleu), and the real-time factor (seconds of compute per second of audio;
below 1 is faster than speech). Then the voices: real-time factor of hibari (neural,
English), Piper "joe" (neural, English) and espeak-ng, and a round trip (voice -> Whisper base -> WER).

espeak-ng is a robotic formant synthesiser: absolute WERs here are far worse than
on human speech; the comparison between models on the same clips is the point.

    python benchmarks/speech.py [--threads N] [--json out.json]
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from collections import defaultdict
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from speech_sentences import ENGLISH, SENTENCES, VOICES  # noqa: E402


def edits(ref: list, hyp: list) -> int:
    from multimodal.evaluate import word_edits

    return word_edits(ref, hyp)


def units(text: str, language: str) -> list[str]:
    """Words (lower case, no punctuation), or characters for Chinese."""
    import re

    if language == "zh":
        return [c for c in text if re.match(r"\w", c)]
    return re.sub(r"[^\w' ]+", " ", text.lower().replace("-", " ")).split()


def clips():
    """``(language, voice, index, clip)`` for every sentence and voice (espeak-ng, 16 kHz)."""
    from multimodal.io.tts import synthesize

    for language, sentences in SENTENCES.items():
        for voice in VOICES[language]:
            for i, text in enumerate(sentences):
                yield language, voice, i, synthesize(text, voice=voice, rate_wpm=150)


def measure(name: str, transcriber, items, translate: bool) -> list[dict]:
    rows = []
    for language, voice, i, clip in items:
        t = time.perf_counter()
        heard = transcriber.transcribe(clip, translate=translate)
        seconds = time.perf_counter() - t
        ref = units(SENTENCES[language][i], language)
        rows.append({"model": name, "language": language, "voice": voice, "sentence": i,
                     "detected": heard.language, "text": heard.text, "english": heard.english,
                     "errors": edits(ref, units(heard.text, language)), "ref_units": len(ref),
                     "seconds": seconds, "audio_s": clip.duration_s})
    return rows


def chrf(hyps: list[str], refs: list[str]) -> float:
    import sacrebleu

    return sacrebleu.corpus_chrf(hyps, [refs]).score


def summary(rows: list[dict]) -> list[dict]:
    out = []
    groups = defaultdict(list)
    for r in rows:
        groups[(r["model"], r["language"])].append(r)
    for (model, language), rs in groups.items():
        translated = [r for r in rs if language != "en"]
        out.append({
            "model": model, "language": language, "clips": len(rs),
            "language_id": sum(r["detected"] == language for r in rs) / len(rs),
            "wer": sum(r["errors"] for r in rs) / max(1, sum(r["ref_units"] for r in rs)),
            "chrf": chrf([r["english"] or r["text"] for r in translated], [ENGLISH[r["sentence"]] for r in translated])
            if translated and any(r["english"] for r in translated) else None,
            "rtf": sum(r["seconds"] for r in rs) / sum(r["audio_s"] for r in rs),
        })
    return out


def voices(transcriber) -> list[dict]:
    """Real-time factor of each voice and the round trip through Whisper (English sentences)."""
    from multimodal.io.piper import joe_installed
    from multimodal.io.tts import resample
    from multimodal.io.types import SAMPLE_RATE, AudioClip
    from multimodal.io.voice import hibari_installed, speak

    out = []
    neural = (["hibari:heart"] if hibari_installed() else []) + (["piper:joe"] if joe_installed() else [])
    for voice in neural + ["espeak:en-us"]:
        speak("Warm up.", "en", voice)
        made = spoken = errors = ref_units = 0.0
        for text in ENGLISH:
            t = time.perf_counter()
            clip = speak(text, "en", voice)
            made += time.perf_counter() - t
            spoken += clip.duration_s
            heard = transcriber.transcribe(AudioClip(resample(clip.samples, clip.sample_rate, SAMPLE_RATE)),
                                           language="en", translate=False)
            errors += edits(units(text, "en"), units(heard.text, "en"))
            ref_units += len(units(text, "en"))
        out.append({"voice": voice, "rtf": made / spoken, "speed_x": spoken / made,
                    "round_trip_wer": errors / ref_units})
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--threads", type=int, default=0, help="torch / CTranslate2 threads (0: every core)")
    parser.add_argument("--json", help="write every clip's transcript and score here")
    args = parser.parse_args()

    import importlib.util

    import torch

    from encoders import create_encoder
    from encoders.whisper_ct2 import embedded_base_dir
    from multimodal.machine import machine

    if args.threads:
        torch.set_num_threads(args.threads)
    items = list(clips())
    english = [c for c in items if c[0] == "en"]
    base = create_encoder("medany-whisper-base")
    tiny = create_encoder("medany-whisper")
    base.transcribe(items[0][3])  # warm up
    tiny.transcribe(english[0][3])
    rows = measure("tiny.en (openai-whisper)", tiny, english, translate=False)
    rows += measure("base (openai-whisper)", base, items, translate=True)
    if importlib.util.find_spec("faster_whisper"):
        from encoders.whisper_fast import FastTranscriber

        fast = FastTranscriber(embedded_base_dir(), "int8", args.threads)
        fast.transcribe(items[0][3])
        rows += measure("base (faster-whisper int8)", fast, items, translate=True)
    table = summary(rows)
    spoken = voices(base)

    print(f"Machine: {machine()}; {len(items)} espeak-ng clips ({len(SENTENCES)} languages x 2 voices x 5 sentences); "
          f"greedy decoding; torch threads {torch.get_num_threads()}.\n")
    print("| model | language | clips | language ID | WER (CER for zh) | chrF to English | real-time factor |")
    print("|---|---|---|---|---|---|---|")
    for r in table:
        chrf_text = f"{r['chrf']:.1f}" if r["chrf"] is not None else "-"
        print(f"| {r['model']} | {r['language']} | {r['clips']} | {r['language_id']:.0%} | {r['wer']:.1%} | "
              f"{chrf_text} | {r['rtf']:.2f} |")
    print("\n| voice | real-time factor | x real time | round trip WER (Whisper base) |")
    print("|---|---|---|---|")
    for v in spoken:
        print(f"| {v['voice']} | {v['rtf']:.3f} | {v['speed_x']:.1f} | {v['round_trip_wer']:.1%} |")
    if args.json:
        Path(args.json).write_text(json.dumps({"summary": table, "voices": spoken, "clips": rows}, indent=1,
                                              ensure_ascii=False))


if __name__ == "__main__":
    main()
