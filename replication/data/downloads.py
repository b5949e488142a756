"""Downloading: a file fetched once with its checksum, an archive unpacked once, a quick reachability check.

Nothing here knows a dataset: `sources.py` says what to fetch and which
layout the unpacked folder must have.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import socket
import tarfile
import tempfile
import urllib.error
import urllib.parse
import urllib.request
import zipfile
from pathlib import Path
from typing import Callable

from replication.errors import DataError
from replication.files import sha256_of


def check_reachable(url: str, timeout: float = 10.0) -> None:
    """Fail in seconds, not minutes of retries, when the host of `url` cannot be reached."""
    parsed = urllib.parse.urlparse(url)
    if parsed.scheme not in ("http", "https") or not parsed.hostname:
        return
    if urllib.request.getproxies():  # behind a proxy the host may not resolve locally
        return
    port = parsed.port or (443 if parsed.scheme == "https" else 80)
    try:
        socket.create_connection((parsed.hostname, port), timeout=timeout).close()
    except OSError as err:
        raise ConnectionError(f"cannot reach {parsed.hostname}:{port} ({err})") from err


def first_line(err: BaseException) -> str:
    """The first line of an error's message (at most 300 characters), for one-line messages."""
    text = str(err).strip().splitlines()
    text = text[0] if text else type(err).__name__
    return (text[:300] + "...") if len(text) > 300 else text


def fetch(url: str, dest: Path, sha256: str | None = None, size: int | None = None, hint: str = "") -> Path:
    """Download `url` to `dest` (once), checking size and sha256.

    The bytes go to a temporary file beside `dest`, renamed only when they
    check out, so `dest` is never half a download. A file already at `dest`
    (from an earlier run, or copied there by hand) is checked and used.
    """
    dest = Path(dest)
    hint = f" {hint}" if hint else ""
    if dest.exists():
        if sha256 and sha256_of(dest) != sha256.lower():
            raise DataError(
                f"{dest} exists but its sha256 is not the published {sha256}; it is corrupt or another "
                f"file. Delete it and run again to download {url}."
            )
        return dest
    dest.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{dest.name}.", suffix=".part", dir=dest.parent)
    h, n = hashlib.sha256(), 0
    try:
        try:
            with os.fdopen(fd, "wb") as out:
                check_reachable(url)
                with urllib.request.urlopen(url, timeout=60) as response:
                    for chunk in iter(lambda: response.read(1 << 20), b""):
                        h.update(chunk)
                        n += len(chunk)
                        out.write(chunk)
                out.flush()
                os.fsync(out.fileno())
        except (OSError, urllib.error.URLError, ValueError) as err:
            reason = getattr(err, "reason", None) or err
            raise DataError(
                f"Could not download {url} to {dest}: {reason}. Copy the file there by hand (it is "
                f"checked and used), or set data.download_url to a reachable copy.{hint}"
            ) from err
        if size is not None and n != size:
            raise DataError(
                f"The download of {url} has {n:,} bytes, expected {size:,}; it was discarded. "
                f"Try again, or copy the file to {dest} by hand.{hint}"
            )
        digest = h.hexdigest()
        if sha256 and digest != sha256.lower():
            raise DataError(
                f"The download of {url} has sha256 {digest}, expected {sha256.lower()}; it was discarded "
                f"(a corrupt or different file). Try again, or copy the right file to {dest}.{hint}"
            )
        os.replace(tmp, dest)
    finally:
        if os.path.exists(tmp):
            os.remove(tmp)
    return dest


def _zip_members_inside(archive: zipfile.ZipFile, where: Path) -> list:
    for info in archive.infolist():
        target = (where / info.filename).resolve()
        if not str(target).startswith(str(where.resolve())):
            raise DataError(f"The archive has a member outside its folder ({info.filename}); refusing to unpack it.")
    return archive.infolist()


def _extract(archive: Path, into: Path) -> None:
    try:
        if zipfile.is_zipfile(archive):
            with zipfile.ZipFile(archive) as zipped:
                zipped.extractall(into, members=_zip_members_inside(zipped, into))
        elif tarfile.is_tarfile(archive):
            with tarfile.open(archive) as tarred:
                tarred.extractall(into, filter="data")
        else:
            raise DataError(f"{archive} is neither a zip nor a tar archive. Delete it and download it again.")
    except (zipfile.BadZipFile, tarfile.TarError, OSError, EOFError) as err:
        raise DataError(f"Unpacking {archive} failed ({err}). Delete it and download it again.") from err


def unpack_once(archive: Path, target: Path, looks_right: Callable[[Path], bool], layout: str) -> Path:
    """Unpack `archive` so that `target` is the dataset root; a no-op if `target` already looks right.

    The archive is unpacked into a temporary folder beside `target` and
    renamed into place only when complete. An archive holding one folder
    (`cityscapes/trainA/...`) has that folder as its root.
    """
    target = Path(target)
    if looks_right(target):
        return target
    if target.exists():
        raise DataError(
            f"{target} exists but is not laid out as {layout}. Delete it (it will be unpacked again "
            f"from {archive}) or point data.root at a complete copy."
        )
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{target.name}.unpacking-", dir=target.parent))
    try:
        _extract(archive, tmp)
        root = tmp
        entries = [p for p in tmp.iterdir() if not p.name.startswith((".", "__MACOSX"))]
        if len(entries) == 1 and entries[0].is_dir() and not looks_right(tmp):
            root = entries[0]
        if not looks_right(root):
            found = ", ".join(sorted(p.name for p in root.iterdir())[:10])
            raise DataError(f"{archive} does not hold the expected layout {layout} (found: {found}).")
        os.replace(root, target)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return target
