"""Small file helpers shared by the whole kit: atomic writes."""

from __future__ import annotations

import os
import shutil
import tempfile
from pathlib import Path


def atomic_write_bytes(path: str | os.PathLike, data: bytes) -> None:
    """Write `data` to `path` so that readers see the old file or the new one, never half."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    try:
        os.chmod(tmp, 0o644)  # mkstemp makes files private (0600); these are ordinary outputs
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.remove(tmp)
        raise


def atomic_write_text(path: str | os.PathLike, text: str) -> None:
    atomic_write_bytes(path, text.encode("utf-8"))


class atomic_replace:  # noqa: N801  (used as a context manager, like open)
    """`with atomic_replace(path) as tmp:` write to `tmp` (a file or a folder); on success it replaces `path`.

    A file is replaced in one step. A folder (a SavedModel) is swapped in with
    two renames: readers may find `path` missing for that instant, never half written.
    """

    def __init__(self, path: str | os.PathLike):
        self.path = Path(path)
        self.tmp = self.path.with_name(f".{self.path.stem}.partial{self.path.suffix}")

    def __enter__(self) -> Path:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        remove(self.tmp)  # left over by a crash
        return self.tmp

    def __exit__(self, exc_type, exc, tb):
        if exc_type is not None:
            remove(self.tmp)
        elif self.tmp.is_dir() and self.path.exists():
            old = self.path.with_name(f".{self.path.stem}.old{self.path.suffix}")
            remove(old)
            os.replace(self.path, old)
            os.replace(self.tmp, self.path)
            remove(old)
        else:
            os.replace(self.tmp, self.path)
        return False


def remove(path: Path) -> None:
    """Delete a file or a folder tree if it exists."""
    if path.is_dir() and not path.is_symlink():
        shutil.rmtree(path)
    elif path.exists() or path.is_symlink():
        path.unlink()
