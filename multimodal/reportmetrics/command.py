"""``medany eval-reports GEN [REF]``: score generated reports against references; print a table, write JSON.

    medany eval-reports generated.jsonl reference.jsonl --out scores.json
    medany eval-reports generated.jsonl ReXRank_MIMICCXR_test.json --rexrank submission.json
    medany eval-reports submission.json                       # a ReXrank prediction file holds both
    medany eval-reports --list-metrics

The JSON holds ``n``, ``bleu4``, ``rouge_l``, ``chexpert`` (label F1 by the rule
labeler: per label, ``all14`` and ``five``, each micro and macro), the plug-in
metrics asked for with ``--metric``, and per report its id and both label sets.
Report texts are not printed.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Literal, Sequence

from ..errors import ReportsFileError


def main(argv: list[str] | None = None) -> int:
    """``medany eval-reports``: :func:`command`; bad input exits 2 with a message, an unavailable metric 1."""
    from ..cli_args import reported, run_command

    return reported("medany eval-reports", lambda: run_command(command, argv, prog="medany eval-reports",
                                                               positional=("generated", "reference")))


def command(generated: str = "", reference: str = "", out: str = "",
            uncertain: Literal["positive", "negative"] = "positive", rexrank: str = "",
            metric: Sequence[str] = (), list_metrics: bool = False) -> int:
    """Score generated radiology reports against references: CheXpert label F1, BLEU-4, ROUGE-L.

    Args:
        generated: the generated reports: JSONL rows {"id", "report"}, or a ReXrank prediction JSON
        reference: the reference reports: JSONL rows {"id", "report"}, or a ReXrank test-set JSON (default: the
            references inside a ReXrank prediction file)
        out: write the scores as JSON to this file
        uncertain: count an uncertain label (-1) as positive (the common variant) or as negative (strict)
        rexrank: write the ReXrank submission JSON (the test set with model_prediction added) to this file
        metric: also compute a learned plug-in metric: radgraph, chexbert or green (needs its weights)
        list_metrics: list the plug-in metrics and whether each can run here
    """
    from . import plugins
    from .files import paired, read_json, reports_of

    if list_metrics:
        for name, plugin in plugins.PLUGINS.items():
            print(f"{name:9s} {plugin.summary}\n          {plugins.status(name)}")
        return 0
    if not generated:
        raise ReportsFileError("Name the generated reports file (JSONL or ReXrank JSON).", code="not_found")
    for name in metric:  # refuse before the work, not after
        plugins.ready(name)
    gen_data = read_json(generated, "generated")
    if reference:
        ref_data = read_json(reference, "reference")
    elif _is_rexrank(gen_data):
        ref_data = gen_data
    else:
        raise ReportsFileError("Name the reference reports file (only a ReXrank prediction file holds both).",
                               code="not_found")
    ids, gen, ref = paired(reports_of(gen_data, "generated"), reports_of(ref_data, "reference"))
    if rexrank:
        if not _is_rexrank(ref_data):
            raise ReportsFileError("--rexrank needs the ReXrank test-set JSON as the reference file.",
                                   code="rexrank_layout")
        from .rexrank import write_submission

        dataset = {k: {kk: vv for kk, vv in v.items() if kk != "model_prediction"} for k, v in ref_data.items()}
        write_submission(rexrank, dataset, dict(zip(ids, gen)))
        print(f"[wrote the ReXrank submission for {len(ids)} studies]", file=sys.stderr)

    from . import score_reports

    result = score_reports(gen, ref, uncertain)
    result["plugins"] = {name: plugins.compute(name, gen, ref) for name in metric}
    result["reports"] = [{"id": i, "generated": g, "reference": r}
                         for i, g, r in zip(ids, result.pop("generated_labels"), result.pop("reference_labels"))]
    print(render(result))
    if out:
        Path(out).write_text(json.dumps(result, indent=1))
        print(f"[wrote {out}]", file=sys.stderr)
    return 0


def _is_rexrank(data) -> bool:
    from .rexrank import is_rexrank

    return is_rexrank(data)


def render(result: dict) -> str:
    """The scores as a Markdown table: the summary, then per label."""
    def f(v):
        return "-" if v is None else f"{v:.3f}"

    chex = result["chexpert"]
    lines = [f"{result['n']} report pairs; uncertain labels counted as {chex['uncertain']}",
             "", "| metric | value |", "|---|---|", f"| BLEU-4 | {f(result['bleu4'])} |",
             f"| ROUGE-L | {f(result['rouge_l'])} |"]
    for key, name in (("all14", "14 labels"), ("five", "5 labels")):
        s = chex[key]
        lines += [f"| CheXpert micro F1, {name} | {f(s['micro_f1'])} |",
                  f"| CheXpert macro F1, {name} ({s['labels_averaged']} averaged) | {f(s['macro_f1'])} |"]
    for name, values in result.get("plugins", {}).items():
        for key, value in values.items():
            if isinstance(value, (int, float)):
                lines.append(f"| {name}: {key} | {f(value)} |")
            elif isinstance(value, dict):  # chexbert: label F1 per way of counting uncertain labels
                lines += [f"| {name} ({mode}): micro / macro F1, 14 labels | {f(s['all14']['micro_f1'])} / "
                          f"{f(s['all14']['macro_f1'])} |" for mode, s in value.items() if "all14" in s]
    lines += ["", "| label | precision | recall | F1 | support |", "|---|---|---|---|---|"]
    for name, c in chex["per_label"].items():
        lines.append(f"| {name} | {f(c['precision'])} | {f(c['recall'])} | {f(c['f1'])} | {c['support']} |")
    return "\n".join(lines)
