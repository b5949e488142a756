"""How much memory this process may still take: the smallest of every limit that applies to it.

  available    the system's MemAvailable (/proc/meminfo)
  cgroup v2    memory.max of the process's own cgroup and of each parent, less what each holds
               (memory.current without the page cache it may drop, inactive_file)
  cgroup v1    memory.limit_in_bytes of the memory controller's cgroup and of each parent that
               counts its children (memory.use_hierarchy), less memory.usage_in_bytes without
               total_inactive_file; "unlimited" is a huge number there
  RLIMIT_AS    the address-space limit (`ulimit -v`) less what is mapped already (VmSize)
  RLIMIT_DATA  the data-segment limit less the data already there (VmData)

Every reader takes `root`, the folder /proc and /sys are read from, so tests give made-up trees.
"""

from __future__ import annotations

import os
import resource
import sys
from pathlib import Path, PurePosixPath

UNLIMITED_V1 = 2**60  # cgroup v1 writes "no limit" as the largest page-aligned 63-bit number


def free_memory(root: Path = Path("/"), getrlimit=resource.getrlimit) -> int:
    """Bytes this process may still take: the smallest of `limits`."""
    return max(min(limits(root, getrlimit).values()), 0)


def limits(root: Path = Path("/"), getrlimit=resource.getrlimit) -> dict:
    """{what: bytes left under it} for every limit that applies (MemAvailable always does)."""
    root = Path(root)
    found = {"MemAvailable": available(root)}
    for name, left in (("cgroup v2 memory.max", cgroup_v2_left(root)), ("cgroup v1 memory.limit_in_bytes", cgroup_v1_left(root)),
                       ("RLIMIT_AS (ulimit -v)", rlimit_left(root, getrlimit, resource.RLIMIT_AS, "VmSize")),
                       ("RLIMIT_DATA (ulimit -d)", rlimit_left(root, getrlimit, resource.RLIMIT_DATA, "VmData"))):
        if left is not None:
            found[name] = left
    return found


def available(root: Path) -> int:
    try:
        return kib_field(root / "proc/meminfo", "MemAvailable")
    except (OSError, ValueError):
        return os.sysconf("SC_AVPHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")


def kib_field(path: Path, name: str) -> int:
    """A `Name:   123 kB` line of /proc/meminfo or /proc/self/status, in bytes."""
    for line in path.read_text().splitlines():
        key, _, value = line.partition(":")
        if key == name:
            return int(value.split()[0]) * 1024
    raise ValueError(f"no {name} in {path}")


def rlimit_left(root: Path, getrlimit, which: int, status_field: str) -> int | None:
    """A resource limit less what this process already holds of it; None without a limit."""
    soft, _ = getrlimit(which)
    if soft == resource.RLIM_INFINITY or soft < 0:
        return None
    try:
        held = kib_field(root / "proc/self/status", status_field)
    except (OSError, ValueError):
        held = 0
    return soft - held


# --------------------------------------------------------------------------- cgroups


def cgroup_v2_left(root: Path) -> int | None:
    """The least left under memory.max from this process's cgroup up to the hierarchy's root."""
    folders = cgroup_folders(root, "cgroup2", "")
    return least_left(folders, "memory.max", "memory.current", "inactive_file", lambda text: None if text == "max" else int(text))


def cgroup_v1_left(root: Path) -> int | None:
    """As cgroup_v2_left, for the v1 memory controller; a parent's limit counts only if it
    counts its children's memory (memory.use_hierarchy, always 1 on current kernels)."""
    folders = cgroup_folders(root, "cgroup", "memory")
    counted = []
    for folder in folders:
        if counted and read_text(folder / "memory.use_hierarchy") == "0":
            break
        counted.append(folder)
    return least_left(counted, "memory.limit_in_bytes", "memory.usage_in_bytes", "total_inactive_file",
                      lambda text: None if int(text) >= UNLIMITED_V1 else int(text))


def least_left(folders: list, limit_file: str, usage_file: str, cache_key: str, parse) -> int | None:
    left = []
    for folder in folders:
        try:
            limit = parse(read_text(folder / limit_file))
            if limit is not None:
                left.append(limit - int(read_text(folder / usage_file)) + stat_value(folder / "memory.stat", cache_key))
        except (OSError, ValueError, TypeError):
            continue
    return min(left) if left else None


def stat_value(path: Path, key: str) -> int:
    try:
        for line in path.read_text().splitlines():
            name, _, value = line.partition(" ")
            if name == key:
                return int(value)
    except (OSError, ValueError):
        pass
    return 0


def read_text(path: Path) -> str | None:
    try:
        return path.read_text().strip()
    except OSError:
        return None


def cgroup_folders(root: Path, fs_type: str, controller: str) -> list:
    """This process's cgroup folder of one hierarchy and its parents up to the mount, innermost first.

    The hierarchy is the mount of `fs_type` (with `controller` among its options, for v1) in
    /proc/self/mountinfo; the process's place in it is its line of /proc/self/cgroup.
    """
    mount = cgroup_mount(root, fs_type, controller)
    place = cgroup_place(root, controller)
    if mount is None or place is None:
        return []
    mount_root, mount_point = mount
    relative = os.path.relpath(place, mount_root) if PurePosixPath(place).is_relative_to(mount_root) else "."
    top = root / mount_point.lstrip("/")
    folder = top / relative if (top / relative).is_dir() else top
    folders = [folder]
    while folder != top and top in folder.parents:
        folder = folder.parent
        folders.append(folder)
    return folders


def cgroup_mount(root: Path, fs_type: str, controller: str) -> tuple[str, str] | None:
    """(the mounted cgroup path, where it is mounted) of the hierarchy, from /proc/self/mountinfo."""
    text = read_text(root / "proc/self/mountinfo") or ""
    for line in text.splitlines():
        mine, _, theirs = line.partition(" - ")
        fields, kind = mine.split(), theirs.split()
        if len(fields) < 5 or len(kind) < 3 or kind[0] != fs_type:
            continue
        if controller and controller not in kind[2].split(","):
            continue
        return fields[3], fields[4]
    return None


def cgroup_place(root: Path, controller: str) -> str | None:
    """This process's cgroup path in the hierarchy of `controller` ("" for v2's unified one)."""
    text = read_text(root / "proc/self/cgroup") or ""
    for line in text.splitlines():
        parts = line.split(":", 2)
        if len(parts) != 3:
            continue
        _, controllers, path = parts
        if (controller and controller in controllers.split(",")) or (not controller and parts[0] == "0" and controllers == ""):
            return path
    return None


# --------------------------------------------------------------------------- an allocation that failed


def out_of_memory(err: BaseException) -> bool:
    """`err` says an allocation failed: Python's MemoryError, TensorFlow's ResourceExhaustedError,
    or oneDNN's "could not create a primitive" (raised as an AbortedError or InternalError)."""
    if isinstance(err, MemoryError):
        return True
    tf = sys.modules.get("tensorflow")  # an error of TensorFlow's only if it was imported
    if tf is None:
        return False
    if isinstance(err, tf.errors.ResourceExhaustedError):
        return True
    return isinstance(err, (tf.errors.AbortedError, tf.errors.InternalError)) and "could not create a primitive" in str(err)


def failure_kind(err: BaseException) -> str:
    """A few words for the allocation that failed, for a message."""
    if "could not create a primitive" in str(err):
        return "oneDNN could not create a primitive"
    return type(err).__name__
