"""Are the explanations faithful, and how long do they take? Deletion curves against random maps, on held-out scans.

For each held-out scan of the image recipe (source groups never trained on, read
as DICOM by the real loader) the stack answers "Describe this scan."; then:

- **answer map** (:func:`multimodal.explain.answer_map`; gradient x input on
  transformers, 3x3-block occlusion on llama.cpp): the image tokens are deleted
  (set to the image's mean token) in the map's order, most important first, in
  ``--steps`` steps, and the answer's mean per-token log-probability is read
  after each; the same with ``--random`` random orders. The deletion score is the
  mean log-probability lost over the curve: a faithful map loses more, sooner,
  than a random one.
- **Grad-CAM** of the classifier's top class on the same scans and the sample
  photos: the 224 x 224 input's cells (one per token) are set to the
  normalised mean (0) in the map's order and the class probability read after
  each step; random orders again. Score: the probability lost, averaged.
- **time** of each view (Grad-CAM, answer map, fact attribution), and the LLM
  passes each took.

Prints Markdown tables; a map is faithful where its deletion loss exceeds the
random orders' on most scans.

    python benchmarks/explanations.py [--llm embedded --backend llamacpp] [--llm embedded-small --backend transformers]
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

QUESTION = "Describe this scan."
PHOTOS = ("sample:fruits.jpg",)


def held_out_scans(limit: int) -> list:
    from recipes.image.scans import split_groups, usable_scans

    _, held = split_groups(usable_scans(), 0)
    return held[:limit]


def deletion_curve(assistant, answer, order: np.ndarray, steps: int) -> list[float]:
    """The answer's mean log-probability as the image tokens are deleted in ``order`` (``steps`` + 1 points)."""
    from multimodal.explain import answer_ids, image_rows, mean_logprob

    enc, media = assistant.encode_plan(answer.request, answer.plan)
    rows = image_rows(assistant, answer.plan, 1)
    target = answer_ids(assistant.tokenizer, answer.text)
    image = media["image"]
    mean = image[rows].mean(0)
    n = rows.stop - rows.start
    out = []
    for k in np.linspace(0, n, steps + 1).round().astype(int):
        hidden = image.clone()
        hidden[[rows.start + int(t) for t in order[:k]]] = mean
        out.append(mean_logprob(assistant.backend, enc, {**media, "image": hidden}, target))
    return out


def cam_curve(encoder, pixels, order: np.ndarray, cls: int, steps: int) -> list[float]:
    """Class ``cls`` probability as the input's token cells are set to 0 (the normalised mean) in ``order``."""
    from encoders.timm_encoder import eval_mode

    x = encoder.preprocess(pixels)[None]  # [1, 3, S, S]
    side = x.shape[-1]
    grid = int(round(len(order) ** 0.5))
    cell = side / grid
    out = []
    for k in np.linspace(0, len(order), steps + 1).round().astype(int):
        y = x.clone()
        for t in order[:k]:
            r, c = divmod(int(t), grid)
            y[..., round(r * cell):round((r + 1) * cell), round(c * cell):round((c + 1) * cell)] = 0.0
        with eval_mode(encoder), torch.no_grad():
            out.append(float(encoder.model(y).softmax(-1)[0, cls]))
    return out


def loss(curve: list[float]) -> float:
    """Mean drop below the first point over the curve (bigger: deletion hurts sooner)."""
    return float(np.mean([curve[0] - v for v in curve[1:]]))


def run_stack(llm: str, backend: str, scans: list, steps: int, randoms: int, threads: int = 0) -> dict:
    from multimodal.config import StackConfig
    from multimodal.explain import explain
    from multimodal.io import load_image
    from multimodal.pipeline import Assistant

    assistant = Assistant.load(StackConfig(llm=llm, backend=backend, speech="", knowledge="none", max_new_tokens=48,
                                           threads=threads))
    rng = np.random.default_rng(0)
    rows, times = [], []
    for scan in scans:
        image = load_image(str(scan.path))
        done = assistant.respond(QUESTION, [image])
        answer = done.answer
        t = time.perf_counter()
        why = explain(assistant, answer)
        times.append({"total": time.perf_counter() - t, **why.seconds, "passes": why.passes})
        if why.answer_map is None:
            continue
        order = np.argsort(-why.answer_map.raw.reshape(-1), kind="stable")
        mapped = loss(deletion_curve(assistant, answer, order, steps))
        random = [loss(deletion_curve(assistant, answer, rng.permutation(order.size), steps)) for _ in range(randoms)]
        rows.append({"scan": scan.name, "map": mapped, "random": statistics.mean(random),
                     "beats": mapped > max(random)})
    return {"llm": llm, "backend": assistant.backend.describe(), "method": why.answer_map.method if rows else "-",
            "rows": rows, "times": times, "vision": assistant.vision}


def run_cam(encoder, images: list, steps: int, randoms: int) -> list[dict]:
    from multimodal.explain import gradcam

    rng = np.random.default_rng(0)
    out = []
    for name, image in images:
        t = time.perf_counter()
        heat = gradcam(encoder, image)
        seconds = time.perf_counter() - t
        probs = encoder.class_probs(image)
        cls = int(probs.argmax())
        order = np.argsort(-heat.raw.reshape(-1), kind="stable")
        mapped = loss(cam_curve(encoder, image.pixels, order, cls, steps))
        random = [loss(cam_curve(encoder, image.pixels, rng.permutation(order.size), cls, steps))
                  for _ in range(randoms)]
        out.append({"image": name, "label": encoder.label(cls), "map": mapped, "random": statistics.mean(random),
                    "beats": mapped > max(random), "seconds": seconds})
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--llm", action="append", help="LLM of each stack (default: embedded)")
    parser.add_argument("--backend", action="append", help="its backend, in the same order (default: auto)")
    parser.add_argument("--scans", type=int, default=6, help="held-out scans (default 6)")
    parser.add_argument("--steps", type=int, default=7, help="deletion steps (default 7: one grid row at a time)")
    parser.add_argument("--random", type=int, default=3, help="random orders per scan (default 3)")
    parser.add_argument("--threads", type=int, default=0, help="llama.cpp threads (default 0: every core)")
    args = parser.parse_args()
    from multimodal.io import load_image
    from multimodal.machine import machine
    from multimodal.samples import resolve_sample

    llms = args.llm or ["embedded"]
    backends = (args.backend or []) + ["auto"] * (len(llms) - len(args.backend or []))
    scans = held_out_scans(args.scans)
    print(f"Machine: {machine()}; {len(scans)} held-out scans ({', '.join(s.name for s in scans)}); "
          f"{args.steps} deletion steps, {args.random} random orders each; question {QUESTION!r}.\n")
    results = [run_stack(llm, backend, scans, args.steps, args.random, args.threads)
               for llm, backend in zip(llms, backends)]

    print("| LLM | backend | map | scans | deletion loss, map | deletion loss, random | map beats every random order |")
    print("|---|---|---|---|---|---|---|")
    for r in results:
        rows = r["rows"]
        if rows:
            print(f"| {r['llm']} | {r['backend']} | {r['method']} | {len(rows)} | "
                  f"{statistics.mean(x['map'] for x in rows):.3f} | {statistics.mean(x['random'] for x in rows):.3f} | "
                  f"{sum(x['beats'] for x in rows)}/{len(rows)} |")
    print("\n| LLM | answer map (s) | facts (s) | total (s) | LLM passes | (medians over the scans) |")
    print("|---|---|---|---|---|---|")
    for r in results:
        med = {k: statistics.median(x.get(k, 0.0) for x in r["times"]) for k in ("answer_map", "facts", "total",
                                                                                "passes")}
        print(f"| {r['llm']} | {med['answer_map']:.2f} | {med['facts']:.2f} | {med['total']:.2f} | "
              f"{med['passes']:.0f} | |")

    images = [(s.name, load_image(str(s.path))) for s in scans]
    images += [(ref, load_image(str(resolve_sample(ref)))) for ref in PHOTOS]
    cams = run_cam(results[0]["vision"], images, args.steps, args.random)
    print("\n| image | top class | deletion loss, Grad-CAM | deletion loss, random | Grad-CAM beats every random | s |")
    print("|---|---|---|---|---|---|")
    for c in cams:
        print(f"| {c['image']} | {c['label']} | {c['map']:.3f} | {c['random']:.3f} | {'yes' if c['beats'] else 'no'} | "
              f"{c['seconds']:.2f} |")
    print(f"\nGrad-CAM beats every random order on {sum(c['beats'] for c in cams)}/{len(cams)} images; median "
          f"{statistics.median(c['seconds'] for c in cams):.2f} s per map.")


if __name__ == "__main__":
    main()
