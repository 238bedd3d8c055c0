"""``medany serve``: refuses unsafe settings before loading models; passes its options through."""

from __future__ import annotations

from multimodal import cli

TINY_ARGS = ["--llm", "tiny-random", "--vision", "tiny_vit", "--speech", "tiny_whisper"]


def test_refuses_a_public_address_without_a_key(capsys, monkeypatch):
    monkeypatch.delenv("MEDANY_API_KEYS", raising=False)
    assert cli.main(["serve", "--host", "0.0.0.0", *TINY_ARGS]) == 1
    assert "without an API key" in capsys.readouterr().err


def test_serves_with_the_given_options(monkeypatch, tmp_path, serve_assistant):
    import multimodal.pipeline
    import multimodal.serve

    seen = {}
    monkeypatch.setenv("MEDANY_API_KEYS", "env-key-123456")
    monkeypatch.setattr(multimodal.pipeline.Assistant, "load", classmethod(lambda cls, config: serve_assistant))
    monkeypatch.setattr(multimodal.serve, "launch", lambda app, settings, block: seen.update(app=app, s=settings))
    rc = cli.main(["serve", "--host", "0.0.0.0", "--port", "9123", "--api-key", "cli-key-123456", "--queue-size", "3",
                   "--timeout", "7", "--allow-local-files", str(tmp_path), "--model-name", "ward-model",
                   "--audit-log", str(tmp_path / "a.jsonl"), *TINY_ARGS])
    s = seen["s"]
    assert rc == 0 and s.port == 9123 and s.api_keys == ("cli-key-123456", "env-key-123456")
    assert (s.queue_size, s.request_timeout_s, s.model_name) == (3, 7.0, "ward-model")
    assert s.allow_local_files and s.allowed_dirs == (str(tmp_path),)
    assert {"/v1/chat/completions", "/v1/models", "/health"} <= {r.path for r in seen["app"].routes}
