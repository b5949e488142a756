"""Small file helpers shared by the whole kit: atomic writes, a folder lock, a file's SHA-256, disk trouble in words."""

from __future__ import annotations

import contextlib
import errno
import fcntl
import hashlib
import os
import re
import shutil
import tempfile
import time
from pathlib import Path

from replication.errors import KitError, RunFolderError


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
    except BaseException as err:
        if os.path.exists(tmp):
            os.remove(tmp)
        if isinstance(err, OSError) and err.filename is None:  # a failed write names no file; say which
            raise OSError(err.errno, err.strerror, str(path)) from None
        raise


def atomic_write_text(path: str | os.PathLike, text: str) -> None:
    atomic_write_bytes(path, text.encode("utf-8"))


def readable(text: str) -> str:
    """`text` with the bytes of file names that are not UTF-8 shown as `\\xNN`: Python holds them as
    lone surrogates (os.fsdecode), which neither a terminal nor a UTF-8 file takes."""
    try:
        return text.encode("utf-8", "surrogateescape").decode("utf-8", "backslashreplace")
    except UnicodeEncodeError:  # a lone surrogate that stands for no byte
        return text.encode("utf-8", "backslashreplace").decode("utf-8")


# The hidden temporaries of the two writers above: `.name.XXXXXXXX` (mkstemp) and `.stem.partial.suffix`.
PARTIAL_WRITE = re.compile(r"^\..+\.([a-z0-9_]{8}|partial(\.[^.]+)?)$")


def sha256_of(path: str | os.PathLike) -> str:
    digest = hashlib.sha256()
    with Path(path).open("rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def remove_partial_writes(folder: str | os.PathLike) -> list[Path]:
    """Delete what atomic writes that a kill interrupted left under `folder`; only while holding its lock."""
    partial = [p for p in Path(folder).rglob(".*") if p.is_file() and PARTIAL_WRITE.match(p.name)]
    for path in partial:
        path.unlink()
    return partial


def remove_partial_writes_of(path: str | os.PathLike) -> list[Path]:
    """Delete what killed atomic writes of `path` left beside it (`.name.XXXXXXXX`), and nothing else:
    for folders that are the user's, where only the files being written are the kit's."""
    path = Path(path)
    partial = [p for p in path.parent.glob(f".{glob_escape(path.name)}.*") if p.is_file() and PARTIAL_WRITE.match(p.name)]
    for leftover in partial:
        leftover.unlink()
    return partial


def glob_escape(name: str) -> str:
    return re.sub(r"([*?\[])", r"[\1]", name)


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


class FolderLock:
    """`with FolderLock(folder, "train"):` only one process at a time works in `folder`.

    An OS lock (flock) on `folder/.lock`: the kernel releases it when the
    process ends, however it ends (SIGKILL included), so a killed run never
    leaves the folder stuck. The file names the holder for whoever is refused.
    """

    def __init__(self, folder: str | os.PathLike, what: str = "train",
                 advice: str = "Wait for it to finish or stop it, or choose another folder with --run-dir."):
        self.folder = Path(folder)
        self.path = self.folder / ".lock"
        self.what, self.advice = what, advice
        self.fd = None

    def __enter__(self) -> FolderLock:
        self.folder.mkdir(parents=True, exist_ok=True)
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = os.pread(fd, 1000, 0).decode(errors="replace").strip() or "another process"
            os.close(fd)
            raise RunFolderError(f"{self.folder} is in use by {holder}. {self.advice}") from None
        try:
            os.ftruncate(fd, 0)
            os.pwrite(fd, f"{self.what} (pid {os.getpid()}, since {time.strftime('%Y-%m-%d %H:%M:%S')})\n".encode(), 0)
        except OSError as err:
            os.close(fd)
            raise OSError(err.errno, err.strerror, str(self.path)) from None
        self.fd = fd
        return self

    def __exit__(self, *exc):
        os.ftruncate(self.fd, 0)
        os.close(self.fd)  # closing the file releases the lock
        self.fd = None
        return False


def lock_holder(folder: str | os.PathLike) -> str | None:
    """Who holds `folder`'s FolderLock now, in the words it left (`train (pid 12, since ...)`); None when
    no live process does. Only a file that names a holder is probed: a lock let go empties it, and one
    whose holder was killed is free to take."""
    path = Path(folder) / ".lock"
    try:
        holder = path.read_text(errors="replace").strip()
        fd = os.open(path, os.O_RDONLY) if holder else None
    except OSError:
        return None
    if fd is None:
        return None
    try:
        fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
    except BlockingIOError:
        return holder
    finally:
        os.close(fd)  # closing lets go of the probe's own lock at once
    return None


# errno: (the system's words, the problem, what to do)
STORAGE_PROBLEMS = {
    errno.ENOSPC: ("No space left on device", "the disk is full", "free some space"),
    errno.EDQUOT: ("Disk quota exceeded", "the disk quota is used up", "free some space"),
    errno.EROFS: ("Read-only file system", "the file system is read-only", "make it writable"),
    errno.EACCES: ("Permission denied", "permission is denied", "make it writable"),
}


def storage_problem(err: BaseException) -> tuple[str | None, str, str] | None:
    """(file or None, problem, what to do) if `err` is a full disk or an unwritable folder, else None.

    Python reports these as OSError with an errno and a file name; TensorFlow's
    writers as an OpError whose message holds the system's words and the file.
    """
    for number, (words, problem, advice) in STORAGE_PROBLEMS.items():
        if isinstance(err, OSError) and err.errno == number:
            return (str(err.filename) if err.filename else None), problem, advice
        if not isinstance(err, OSError) and words in str(err):
            message = re.sub(r"\{\{.*?\}\}", "", str(err))  # TensorFlow's `{{function_node ...}}` prefix
            path = re.search(r"[^\s;,'\"]*/[^\s;,'\"]*", message)
            return (path.group(0) if path else None), problem, advice
    return None


@contextlib.contextmanager
def storage_errors(folder, then, error: type = KitError):
    """A full disk or an unwritable folder inside ends in one line: `Could not write FILE: problem.
    What to do` and `then()`, the command's own words on what to do next and what is safe."""
    try:
        yield
    except Exception as err:
        from_storage = isinstance(err, OSError) or type(err).__module__.startswith("tensorflow")  # TF's OpError
        found = storage_problem(err) if from_storage else None
        if found is None:
            raise
        path, problem, advice = found
        raise error(f"Could not write {path or f'a file in {folder}'}: {problem}. {advice.capitalize()}{then()}") from None
