"""Issue 13: the demo leaves no patient data readable on disk (private folder, neutral names, cleanup)."""

from __future__ import annotations

import stat
import tempfile
from pathlib import Path

import pytest

from demos.private import PrivateFiles


def _mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def test_private_files_are_private_neutral_and_removed(tmp_path):
    files = PrivateFiles(tmp_path / "root")
    assert _mode(files.root) == 0o700 and _mode(files.gradio_dir) == 0o700
    upload = files.gradio_dir / "abc123" / "Zyxwv_Jane_chest.dcm"
    upload.parent.mkdir()
    upload.write_bytes(b"DICM")
    adopted = Path(files.adopt(upload, "s1"))
    assert not upload.exists() and not upload.parent.exists()  # Gradio's copy and its folder are gone
    assert adopted.read_bytes() == b"DICM" and "Zyxwv" not in str(adopted) and adopted.suffix == ".dcm"
    assert _mode(adopted) == 0o600 and _mode(adopted.parent) == 0o700
    report = files.write_text("s1", "medany-clinician.md", "Question: Jane Example ...")
    assert _mode(report) == 0o600 and _mode(report.parent) == 0o700
    assert files.sample("sample:fruits.jpg") == files.sample("sample:fruits.jpg")  # one copy, not one per click
    files.end_session("s1")
    assert not adopted.exists() and not report.exists()
    files.end_session("../..")  # not a session id: nothing outside is touched
    assert files.root.exists()
    files.cleanup()
    assert not files.root.exists()


def test_the_demo_keeps_uploads_and_exports_private(client, demo_server, tmp_path, capfd):
    from gradio_client import handle_file
    from pydicom.data import get_testdata_file

    _, _, demo = demo_server
    root = demo.medany_files.root
    caches = {Path(b.GRADIO_CACHE).resolve() for b in demo.blocks.values() if hasattr(b, "GRADIO_CACHE")}
    assert caches and all(c.is_relative_to(root.resolve()) for c in caches)  # Gradio's own files too
    before = set(Path(tempfile.gettempdir()).glob("medany-*"))
    named = tmp_path / "Zyxwv_Jane_Example.dcm"
    named.write_bytes(Path(get_testdata_file("CT_small.dcm")).read_bytes())
    *_, status = client.predict([handle_file(str(named))], api_name="/clinician_add")
    assert "medany-ok" in status
    client.predict(api_name="/dietitian_sample")
    client.predict(api_name="/consult_sample")
    for _ in client.submit("Jane Example's film?", api_name="/clinician_chat"):
        pass
    md, js = client.predict(api_name="/clinician_export")
    assert "Jane Example" in Path(md).read_text()
    on_disk = [p for p in root.rglob("*")]
    assert not [p for p in on_disk if "Zyxwv" in p.name], "an upload kept its patient-named file name"
    exports = [p for p in on_disk if p.name.endswith((".md", ".json"))]
    assert exports and all(_mode(p) == 0o600 for p in exports)
    assert _mode(root) == 0o700  # nothing below it is reachable by another user, Gradio's own folders included
    assert all(_mode(p) == 0o700 for p in (root / "sessions").rglob("*") if p.is_dir())
    assert set(Path(tempfile.gettempdir()).glob("medany-*")) == before  # no leaked sample or report folders
    # Malformed input Gradio cannot validate: a refusal, and what was sent never reaches the server's stderr.
    from gradio_client.exceptions import AppError

    with pytest.raises(AppError):
        client.predict({"headers": ["Food"], "data": [{"Zyxwv Jane": [1]}]}, api_name="/dietitian_totals")
    assert "Zyxwv" not in capfd.readouterr().err
