"""Atomic writes: readers see the old file or the new one, never half of one."""

import os
import stat

import pytest

from replication import files


def test_atomic_write_replaces_the_file_and_leaves_no_temporary(tmp_path):
    path = tmp_path / "sub" / "log.csv"
    files.atomic_write_text(path, "one\n")
    files.atomic_write_text(path, "two\n")
    assert path.read_text() == "two\n"
    assert os.listdir(path.parent) == ["log.csv"]
    assert stat.S_IMODE(path.stat().st_mode) == 0o644


def test_a_write_that_fails_keeps_the_old_content(tmp_path, monkeypatch):
    path = tmp_path / "config.yaml"
    files.atomic_write_text(path, "old\n")

    def crash(*args):
        raise OSError("disk full")

    monkeypatch.setattr(files.os, "replace", crash)
    with pytest.raises(OSError):
        files.atomic_write_text(path, "new\n")
    assert path.read_text() == "old\n"
    assert os.listdir(tmp_path) == ["config.yaml"]


def test_atomic_replace_publishes_only_on_success(tmp_path):
    path = tmp_path / "G.keras"
    with pytest.raises(RuntimeError):
        with files.atomic_replace(path) as tmp:
            tmp.write_text("half")
            raise RuntimeError("crash while saving")
    assert not path.exists() and os.listdir(tmp_path) == []
    with files.atomic_replace(path) as tmp:
        tmp.write_text("whole")
    assert path.read_text() == "whole"


def test_only_the_temporaries_of_atomic_writes_count_as_partial_writes(tmp_path):
    for name in (".losses.csv.ab_12xyz", ".G_AtoB.partial.keras", ".lock", "losses.csv", ".config.yaml.short", ".hidden"):
        (tmp_path / name).write_text("x")
    removed = files.remove_partial_writes(tmp_path)
    assert sorted(p.name for p in removed) == [".G_AtoB.partial.keras", ".losses.csv.ab_12xyz"]
    assert sorted(os.listdir(tmp_path)) == [".config.yaml.short", ".hidden", ".lock", "losses.csv"]


def test_a_folder_lock_refuses_a_second_holder_and_is_free_again_after(tmp_path):
    with files.FolderLock(tmp_path, "train"):
        with pytest.raises(files.RunFolderError, match=rf"{tmp_path} is in use by train \(pid {os.getpid()}, since "):
            with files.FolderLock(tmp_path):
                pass
    with files.FolderLock(tmp_path):
        pass


def test_a_write_that_fails_for_want_of_space_names_its_file(tmp_path, monkeypatch):
    import errno

    def full(fd):
        raise OSError(errno.ENOSPC, "No space left on device")  # as a failed write reports it: no file name

    monkeypatch.setattr(files.os, "fsync", full)
    with pytest.raises(OSError) as error:
        files.atomic_write_text(tmp_path / "losses.csv", "step\n")
    assert error.value.filename == str(tmp_path / "losses.csv")
    assert files.storage_problem(error.value) == (str(tmp_path / "losses.csv"), "the disk is full", "free some space")
