"""LLM distillation recipe: requests and their split, teacher records (kept / dropped, top-k), the
cross-vocabulary alignment, the losses, a tiny student run whose merged model the stack loads, and the
quality scores. The teacher is the tiny random stack with scripted answers; one test reads the real
SmolLM2 tokenizer to align two different vocabularies."""

from __future__ import annotations

import json
import math
from types import SimpleNamespace

import pytest
import torch

from multimodal.backbone import load_gguf_tokenizer, load_llm, resolve_gguf
from multimodal.template import IGNORE_INDEX
from recipes.distill_llm import kd, quality
from recipes.distill_llm.prompts import GROUPS, build_requests, contradicts_sex, invented_demographics
from recipes.distill_llm.teacher import Teacher, answer_topk, make_dataset
from recipes.distill_llm.train import DistillConfig, batches, distill

SCANS = ([SimpleNamespace(fields={"modality": "CT", "body_part": "HEAD"}), SimpleNamespace(fields={"modality": "MR"}),
          SimpleNamespace(fields={"modality": "CR", "body_part": "CHEST", "view": "PA"})],
         [SimpleNamespace(fields={"modality": "US"}), SimpleNamespace(fields={"modality": "CT", "body_part": "NECK"})])


def test_requests_are_deterministic_and_held_out_prompts_never_appear_in_training():
    train, held = build_requests(40, 16, seed=1, scans=SCANS)
    again = build_requests(40, 16, seed=1, scans=SCANS)
    assert [(r.line, r.question) for r in train + held] == [(r.line, r.question) for r in again[0] + again[1]]
    assert len(train) == 40 and sum(r.kind == "speech" for r in train) == 20
    assert [sum(r.group == g for r in held) for g in GROUPS] == [4, 4, 4, 4]
    assert {(r.line, r.question) for r in train}.isdisjoint((r.line, r.question) for r in held)
    spoken = {r.source["transcript"] for r in train if r.kind == "speech"}
    assert spoken.isdisjoint(r.source["transcript"] for r in held if r.kind == "speech")
    assert {r.source["meta"]["modality"] for r in held if r.kind == "image"} <= {"US", "CT"}
    image = next(r for r in train if r.kind == "image")
    assert image.line.startswith("Image 1: DICOM modality ") and image.evidence().facts["modality"]
    system, user = image.messages()
    assert system["role"] == "system" and user["content"] == f"{image.line}\nQuestion: {image.question}"


def test_the_other_sex_is_a_contradiction_of_the_header():
    meta = {"meta": {"modality": "CT", "sex": "F"}}
    assert contradicts_sex("The scan of a male patient aged 40-49.", meta)
    assert not contradicts_sex("The scan of a female patient.", meta)
    assert not contradicts_sex("A man could ask his doctor.", {"transcript": "I have a cough."})


def test_an_age_or_sex_the_evidence_does_not_give_is_invented():
    header = {"meta": {"modality": "CT", "sex": "F", "age_band": "40-49"}}
    assert invented_demographics("A CT of a woman aged 45.", header) == []
    assert invented_demographics("A CT of a female patient aged 40-49.", header) == []
    assert "age" in invented_demographics("A 62-year-old patient.", header)[0]
    assert "other sex" in invented_demographics("A male patient.", header)[0]
    spoken = {"transcript": "I have had heartburn for two days."}
    assert len(invented_demographics("Patient: a 50-year-old woman with heartburn.", spoken)) == 2
    assert invented_demographics("Heartburn for two days.", spoken) == []


class ScriptedTeacher:
    """The tiny stack's backend with its answers replaced by ``script(prompt text)``; logits stay real."""

    def __init__(self, backend, tokenizer, script):
        self.backend, self.tokenizer, self.script = backend, tokenizer, script

    def generate_ids(self, input_ids, media, settings, should_stop=None):
        text = self.tokenizer.decode(input_ids.tolist())
        yield from self.tokenizer(self.script(text), add_special_tokens=False)["input_ids"]

    def answer_logits(self, input_ids, media, answer_ids):
        return self.backend.answer_logits(input_ids, media, answer_ids)

    def describe(self):
        return "scripted tiny"


def _script(prompt: str) -> str:
    question = prompt.rsplit("Question: ", 1)[-1]
    if "sex F" in prompt and "urgent" in question:
        return "Nothing urgent is visible for this male patient."  # the other sex: dropped
    if "modality MR" in prompt:
        return "The image shows a CT scan of the chest."  # contradicts the header: dropped
    return "Please confirm with a clinician. It is a short answer."


@pytest.fixture(scope="module")
def teacher_data(tmp_path_factory):
    from multimodal.stack import StackSpec, build_stack

    stack = build_stack(StackSpec(llm="tiny-random", backend="transformers"))
    scripted = ScriptedTeacher(stack.backend, stack.tokenizer, _script)
    teacher = Teacher("tiny-random", stack=SimpleNamespace(backend=scripted, tokenizer=stack.tokenizer), top_k=4,
                      max_new_tokens=40)
    out = tmp_path_factory.mktemp("distill")
    partial = make_dataset(out, 60, 8, seed=0, teacher=teacher, scans=SCANS, budget_s=0.0)
    manifest = make_dataset(out, 60, 8, seed=0, teacher=teacher, scans=SCANS)
    return out, partial, manifest, stack.tokenizer


def test_teacher_records_keep_grounded_answers_with_their_top_k(teacher_data):
    out, partial, manifest, tok = teacher_data
    assert partial["done"] is False and partial["answered_now"] == 1  # the budget ran out after one answer
    assert manifest["done"] and manifest["requests"] == {"train": 60, "eval": 8}
    train = [json.loads(x) for x in (out / "train.jsonl").read_text().splitlines()]
    dropped = [json.loads(x) for x in (out / "dropped.jsonl").read_text().splitlines()]
    assert len(train) + len(dropped) == 60 and manifest["dropped_train"]["total"] == len(dropped) > 0
    assert all(d["kind"] == "image" for d in dropped)
    whys = " ".join(w for d in dropped for w in d["why"])
    assert "other sex" in whys and "where the evidence gives MR" in whys
    assert all("male" not in r["conversations"][2]["value"] for r in train)
    rec = train[0]
    answer, teacher = rec["conversations"][2]["value"], rec["teacher"]
    assert len(teacher["tokens"]) == len(teacher["offsets"]) == len(teacher["topk_tokens"])
    assert teacher["tokens"][-1] == "<|im_end|>" and teacher["offsets"][-1] == len(answer)
    assert "".join(teacher["tokens"][:-1]) == "".join(tok.convert_ids_to_tokens(tok(answer)["input_ids"]))
    assert all(len(row) == 4 and row == sorted(row, reverse=True) for row in teacher["topk_logprobs"])
    held = [json.loads(x) for x in (out / "eval.jsonl").read_text().splitlines()]
    assert len(held) == 8 and all("teacher_issues" in r for r in held)


def test_answer_topk_reads_the_whole_distribution():
    tok = load_gguf_tokenizer(resolve_gguf("embedded-small"))
    vocab = len(tok)

    class Fixed:
        def answer_logits(self, input_ids, media, answer_ids):
            logits = torch.zeros(answer_ids.numel(), vocab)
            logits[:, answer_ids] = 5.0  # [K, V]: every answer token likely everywhere
            return logits

    got = answer_topk(Fixed(), tok, torch.tensor([1, 2]), "The cough.", k=3)
    assert got["tokens"] == ["The", "Ġcough", ".", "<|im_end|>"] and got["offsets"] == [0, 3, 9, 10]
    assert set(got["topk_tokens"][0]) == {"The", "Ġcough", "."} or set(got["topk_tokens"][0]) <= set(got["tokens"])
    p = math.exp(5) / (4 * math.exp(5) + vocab - 4)
    assert got["topk_logprobs"][0][0] == pytest.approx(math.log(p), abs=1e-4)


def test_only_positions_where_both_tokenizers_cut_alike_get_a_teacher_target():
    teacher_tok = load_gguf_tokenizer(resolve_gguf("embedded-small"))  # word pieces: 'Ġcough'
    _, student_tok, _ = load_llm("tiny-random")  # single bytes
    answer = "It is a cough."
    ids = teacher_tok(answer, add_special_tokens=False, return_offsets_mapping=True)
    tokens = teacher_tok.convert_ids_to_tokens(ids["input_ids"]) + ["<|im_end|>"]
    offsets = [a for a, _ in ids["offset_mapping"]] + [len(answer)]
    topk = [["Ġzzz", "."]] * (len(tokens) - 2) + [[".", "Ġand", "!"], ["<|im_end|>", "Ġthe"]]
    logps = [[-0.1, -3.0]] * (len(tokens) - 2) + [[-0.2, -2.0, -3.0], [-0.05, -4.0]]
    record = {"id": "r", "conversations": [{"from": "system", "value": "Be brief."},
                                           {"from": "human", "value": "What is it?"}, {"from": "gpt", "value": answer}],
              "teacher": {"tokens": tokens, "offsets": offsets, "topk_tokens": topk, "topk_logprobs": logps}}
    ex = kd.student_example(student_tok, record)
    sup = (ex["labels"] != IGNORE_INDEX).nonzero().flatten()
    strings = student_tok.convert_ids_to_tokens(ex["input_ids"][sup].tolist())
    assert "".join(strings[:-1]) == "".join(student_tok.convert_ids_to_tokens(student_tok(answer)["input_ids"]))
    # 'It', 'Ġis', 'Ġa', 'Ġcough' are one student byte each only in part: only '.' and the end of turn align
    assert [strings[i] for i in ex["kd_index"].tolist()] == [".", "<|im_end|>"]
    vocab = student_tok.get_vocab()
    assert ex["kd_ids"][0, :2].tolist() == [vocab["."], vocab["!"]]  # 'Ġand' is no student token: dropped
    expected = torch.softmax(torch.tensor([-0.2, -3.0]), 0)
    torch.testing.assert_close(ex["kd_probs"][0, :2], expected)
    assert ex["kd_probs"][1].tolist() == [1.0, 0.0, 0.0]  # 'Ġthe' dropped, padded to k = 3
    assert ex["stats"]["aligned"] == 2 and ex["stats"]["supervised"] == len(sup)


def test_the_losses_on_a_batch_match_a_direct_computation(tiny_llm):
    model, tok = tiny_llm
    answers = ["Yes.", "No, see a doctor."]
    examples = []
    for a in answers:
        ids = tok(a, add_special_tokens=False)["input_ids"] + [tok.convert_tokens_to_ids("<|im_end|>")]
        strings = tok.convert_ids_to_tokens(ids)
        offsets = list(range(len(a))) + [len(a)]
        record = {"id": a, "conversations": [{"from": "human", "value": "Q?"}, {"from": "gpt", "value": a}],
                  "teacher": {"tokens": strings, "offsets": offsets, "topk_tokens": [[s, "x"] for s in strings],
                              "topk_logprobs": [[-0.3, -1.5]] * len(strings)}}
        examples.append(kd.student_example(tok, record))
    batch = kd.collate_examples(examples, tok.pad_token_id)
    assert batch["kd_index"].tolist() == list(range(int((batch["labels"] != IGNORE_INDEX).sum())))
    with torch.no_grad():
        losses = kd.distill_losses(model, batch, alpha=0.5)
        logits = model(input_ids=batch["input_ids"], attention_mask=batch["attention_mask"]).logits[:, :-1]
        mask = batch["labels"][:, 1:] != IGNORE_INDEX
        picked, targets = logits[mask], batch["labels"][:, 1:][mask]  # [N, V]
        ce = torch.nn.functional.cross_entropy(picked, targets)
        logp = torch.log_softmax(picked, -1)
        soft = -(batch["kd_probs"] * logp.gather(-1, batch["kd_ids"])).sum(-1).mean()
    torch.testing.assert_close(losses["ce"], ce, rtol=1e-5, atol=1e-5)
    torch.testing.assert_close(losses["kd"], soft, rtol=1e-5, atol=1e-5)
    torch.testing.assert_close(losses["loss"], 0.5 * ce + 0.5 * soft, rtol=1e-5, atol=1e-5)
    assert kd.distill_losses(model, batch, alpha=0.0)["loss"] == losses["ce"]


def test_batches_cover_each_epoch_once():
    seen = [i for b in batches(10, 4, seed=0, steps=5) for i in b]
    assert sorted(seen[:10]) == list(range(10)) and len(seen) == 20


def test_a_tiny_student_learns_the_teacher_and_its_merged_copy_loads_in_the_stack(teacher_data, tmp_path):
    from multimodal.stack import StackSpec, build_stack

    out, _, _, tok = teacher_data
    model, tok, _ = load_llm("tiny-random")
    config = DistillConfig(data=str(out / "train.jsonl"), output_dir=str(tmp_path / "run"), max_steps=6,
                           batch_size=4, lr=1e-2, lora_r=4, lora_alpha=8)
    summary = distill(config, model=model, tokenizer=tok)
    assert summary["last"]["ce"] < summary["first"]["ce"]
    assert summary["alignment"]["aligned_share"] > 0.9  # same tokenizer: everything aligns
    assert (tmp_path / "run" / "lora" / "adapter_model.safetensors").is_file()
    assert (tmp_path / "run" / "student" / "model.safetensors").is_file()
    stack = build_stack(StackSpec(llm=str(tmp_path / "run" / "student"), backend="transformers"))
    records = [json.loads(x) for x in (out / "eval.jsonl").read_text().splitlines()][:2]
    result = quality.answer_all("student", records, 8, stack=stack)
    assert len(result["rows"]) == 2 and math.isfinite(result["teacher_loss"])
    table = quality.report(records, [result])
    assert set(table) == {"teacher (tiny-random)", "student"} and "rouge_l" in table["student"]["all"]
    assert "rouge_l" not in table["teacher (tiny-random)"]["all"]


def test_agreement_and_faithfulness_scores():
    assert quality.token_f1("The patient has a cough.", "the patient has a cough") == 1.0
    assert quality.token_f1("a b c d", "a b") == pytest.approx(2 * 1.0 * 0.5 / 1.5)
    assert quality.rouge_l("a cough for three days", "a cough for three days") == 1.0
    speech = {"id": "s", "kind": "speech", "group": "speech/train_questions",
              "source": {"transcript": "I have had a cough for three days."},
              "conversations": [{"from": "system", "value": "S"}, {"from": "human", "value":
                                 'Audio 1: recording (3.0 s), transcript: "I have had a cough for three days."\n'
                                 "Question: What is the complaint?"}, {"from": "gpt", "value": "x"}]}
    good = quality.score_answer(speech, "A cough for three days.")
    bad = quality.score_answer(speech, "A fever for two weeks.")
    assert good["recall"] and not good["contradictions"]
    assert not bad["recall"] and bad["contradictions"]
    image = {"id": "i", "kind": "image", "group": "image/new_questions",
             "source": {"meta": {"modality": "CT", "body_part": "HEAD", "sex": "F", "age_band": "40-49"}},
             "conversations": [{"from": "system", "value": "S"}, {"from": "human", "value":
                                "Image 1: DICOM modality CT (computed tomography), body part HEAD, age 40-49, sex F\n"
                                "Question: What is it?"}, {"from": "gpt", "value": "x"}]}
    assert quality.score_answer(image, "A CT of the head.")["recall"]
    assert quality.score_answer(image, "An MRI of the knee.")["contradictions"]


def test_a_time_budget_stops_the_run_and_still_saves(teacher_data, tmp_path):
    out, _, _, _ = teacher_data
    model, tok, _ = load_llm("tiny-random")
    config = DistillConfig(data=str(out / "train.jsonl"), output_dir=str(tmp_path / "run"), max_steps=5,
                           batch_size=2, lora_r=2, lora_alpha=4, budget_s=0.0, alpha=0.0)
    summary = distill(config, model=model, tokenizer=tok)
    assert summary["steps"] == 5 and summary["steps_run"] == 1
    assert summary["last"]["loss"] == summary["last"]["ce"]  # alpha 0: sequence-level only
    assert (tmp_path / "run" / "student" / "medany_distill.json").is_file()


def test_a_time_budget_cuts_the_plan_after_the_first_steps(teacher_data, tmp_path):
    out, _, _, _ = teacher_data
    model, tok, _ = load_llm("tiny-random")
    config = DistillConfig(data=str(out / "train.jsonl"), output_dir=str(tmp_path / "run"), max_steps=10_000,
                           batch_size=2, lora_r=2, lora_alpha=4, budget_s=1.0)
    summary = distill(config, model=model, tokenizer=tok)
    assert 4 <= summary["steps"] < 10_000 and summary["steps_run"] <= summary["steps"]
    assert summary["last"]["lr"] < 0.2 * config.lr or summary["steps_run"] < summary["steps"]  # the cosine ended
