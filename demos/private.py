"""Where the web demo keeps patient data on disk: one private folder, neutral names, removed when done.

Uploads (Gradio writes them under their original file names, which often carry a
patient's name), exported reports (with the question text) and sample copies all
live under one folder per demo process, created 0700 with files 0600:

- Gradio's own upload and cache folder (``GRADIO_TEMP_DIR``) is set inside it;
- :meth:`PrivateFiles.adopt` moves an upload out of Gradio's folder into the
  session's folder under a neutral name (``upload-<random>``);
- :meth:`PrivateFiles.write_text` writes a session's export there, and
  :meth:`PrivateFiles.sample` copies a bundled sample once (not once per click);
- :meth:`PrivateFiles.end_session` removes a session's files when its browser tab
  closes, and :meth:`PrivateFiles.cleanup` removes everything at exit.
"""

from __future__ import annotations

import atexit
import os
import re
import secrets
import shutil
import tempfile
from pathlib import Path

_SESSION = re.compile(r"[A-Za-z0-9_-]{1,64}")
# A media suffix says nothing about the patient and lets the browser play or show the file.
MEDIA_SUFFIXES = frozenset({".dcm", ".png", ".jpg", ".jpeg", ".webp", ".tif", ".tiff", ".bmp", ".gif", ".wav",
                            ".mp3", ".flac", ".ogg", ".m4a", ".mp4", ".webm"})


_PROCESS: "PrivateFiles | None" = None


def new_session() -> str:
    """A random id for one browser session (the initial value of a per-session ``gr.State``)."""
    return secrets.token_hex(12)


class PrivateFiles:
    """The demo's private folder (``root``): per-session subfolders, 0600 files, neutral names."""

    def __init__(self, root: str | Path | None = None):
        # mkdtemp creates the folder 0700, readable by this user only.
        self.root = Path(root) if root else Path(tempfile.mkdtemp(prefix="medany-demo-"))
        self.root.mkdir(mode=0o700, parents=True, exist_ok=True)
        os.chmod(self.root, 0o700)
        self.gradio_dir = self._private_dir(self.root / "gradio")
        atexit.register(self.cleanup)

    @classmethod
    def for_process(cls) -> "PrivateFiles":
        """The one private folder of this process, also made Gradio's (``GRADIO_TEMP_DIR``).

        Gradio reads that variable whenever it checks an upload, so every demo of a
        process shares one folder (sessions keep apart by their random ids).
        """
        global _PROCESS
        if _PROCESS is None or not _PROCESS.root.exists():
            _PROCESS = cls()
        os.environ["GRADIO_TEMP_DIR"] = str(_PROCESS.gradio_dir)
        return _PROCESS

    def session_dir(self, session: str | None) -> Path:
        """The folder of one browser session (``shared`` for calls without one, such as the API)."""
        name = session if session and _SESSION.fullmatch(session) else "shared"
        return self._private_dir(self.root / "sessions" / name)

    def adopt(self, upload: str | Path, session: str | None) -> str:
        """Move an upload into the session's folder under a neutral name; returns the new path."""
        source = Path(upload)
        suffix = source.suffix.lower() if source.suffix.lower() in MEDIA_SUFFIXES else ""
        target = self.session_dir(session) / f"upload-{secrets.token_hex(8)}{suffix}"
        try:
            os.replace(source, target)  # same file system: a rename, nothing copied
        except OSError:
            shutil.copyfile(source, target)
            source.unlink(missing_ok=True)
        os.chmod(target, 0o600)
        self._remove_empty_parent(source)
        return str(target)

    def write_text(self, session: str | None, name: str, text: str) -> Path:
        """Write ``text`` as a new 0600 file ``name`` in a fresh folder of the session's (the name is shown)."""
        folder = self._private_dir(self.session_dir(session) / secrets.token_hex(8))
        path = folder / Path(name).name
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            fh.write(text)
        return path

    def write_files(self, session: str | None, files: dict[str, bytes]) -> list[Path]:
        """Write each ``{name: bytes}`` as a new 0600 file, all in one fresh folder of the session's."""
        folder = self._private_dir(self.session_dir(session) / secrets.token_hex(8))
        paths = []
        for name, data in files.items():
            path = folder / Path(name).name
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
            with os.fdopen(fd, "wb") as fh:
                fh.write(data)
            paths.append(path)
        return paths

    def sample(self, ref: str) -> str:
        """A copy of the bundled sample ``ref`` (``sample:NAME``) Gradio may serve, made once per process."""
        from multimodal.samples import resolve_sample

        source = resolve_sample(ref)
        target = self._private_dir(self.root / "samples") / source.name
        if not target.exists():
            shutil.copyfile(source, target)
            os.chmod(target, 0o600)
        return str(target)

    def end_session(self, session: str | None) -> None:
        """Remove everything one browser session left (uploads, exports)."""
        if session and _SESSION.fullmatch(session):
            shutil.rmtree(self.root / "sessions" / session, ignore_errors=True)

    def cleanup(self) -> None:
        """Remove the whole folder (at exit, and when the demo closes)."""
        shutil.rmtree(self.root, ignore_errors=True)

    @staticmethod
    def _private_dir(path: Path) -> Path:
        path.mkdir(mode=0o700, parents=True, exist_ok=True)
        os.chmod(path, 0o700)
        return path

    def _remove_empty_parent(self, source: Path) -> None:
        """Gradio keeps each upload in a folder of its own: drop that folder once empty."""
        parent = source.parent
        try:
            if parent.resolve().is_relative_to(self.gradio_dir.resolve()) and parent != self.gradio_dir:
                parent.rmdir()
        except OSError:
            pass
