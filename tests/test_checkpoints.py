"""Checkpoints: the files on disk are the truth. A damaged index or a damaged newest checkpoint
loses nothing that an older whole checkpoint holds, and nothing is ever deleted."""

import os

import pytest
import tensorflow as tf

from replication import checkpoints as ckpt
from replication.checkpoints import Checkpoints
from replication.errors import ConfigError, RunFolderError

CONFIG = {"model": {"ngf": 4}, "train": {"epochs": 2}}


def saved_at(folder, *steps):
    """A folder with one checkpoint per step; the weight holds the step's number."""
    weight = tf.Variable(tf.zeros([1000]))
    checkpoints = Checkpoints(folder, {"weight": weight}, save_epoch_freq=1, config=CONFIG)
    for step in steps:
        weight.assign(tf.fill([1000], float(step)))
        checkpoints.save(step)
    return checkpoints


def reopened(folder):
    return Checkpoints(folder, {"weight": tf.Variable(tf.zeros([1000]))}, save_epoch_freq=1, config=CONFIG)


def weight_of(checkpoints):
    return float(checkpoints.checkpoint.weight[0].numpy())


def names(folder):
    return sorted(os.listdir(folder))


@pytest.mark.parametrize("damage", ["garbage", "deleted", "empty"])
def test_a_damaged_or_missing_index_still_finds_the_checkpoints_on_disk(tmp_path, damage):
    saved_at(tmp_path, 3, 6)
    index = tmp_path / "checkpoint"
    {"garbage": lambda: index.write_text("model_checkpoint_path: {{{ not a checkpoint"),
     "deleted": index.unlink, "empty": lambda: index.write_bytes(b"")}[damage]()
    again = reopened(tmp_path)
    assert again.restore_latest() == str(tmp_path / "ckpt-6")
    assert again.step == 6 and weight_of(again) == 6.0
    # the index lists both again, so the manager keeps deleting the oldest
    assert tf.train.get_checkpoint_state(str(tmp_path)).all_model_checkpoint_paths == [str(tmp_path / "ckpt-3"), str(tmp_path / "ckpt-6")]
    again.save(7)
    assert [n for n in names(tmp_path) if n.endswith(".index")] == ["ckpt-6.index", "ckpt-7.index"]


def cut(path, keep):
    path.write_bytes(path.read_bytes()[:keep])


def zero(path):
    path.write_bytes(bytes(path.stat().st_size))


def overwrite_middle(path):
    raw = bytearray(path.read_bytes())
    raw[len(raw) // 2 : len(raw) // 2 + 8] = b"xxxxxxxx"
    path.write_bytes(bytes(raw))


DAMAGES = {
    "data truncated": lambda prefix: cut(prefix.with_name(prefix.name + ".data-00000-of-00001"), 100),
    "data zeroed": lambda prefix: zero(prefix.with_name(prefix.name + ".data-00000-of-00001")),
    "data overwritten": lambda prefix: overwrite_middle(prefix.with_name(prefix.name + ".data-00000-of-00001")),
    "index missing": lambda prefix: prefix.with_name(prefix.name + ".index").unlink(),
    "index cut": lambda prefix: cut(prefix.with_name(prefix.name + ".index"), 40),
}


@pytest.mark.parametrize("damage", DAMAGES)
def test_a_damaged_newest_checkpoint_falls_back_to_the_one_before_and_is_moved_aside(tmp_path, damage):
    saved_at(tmp_path, 3, 6)
    before = {n for n in names(tmp_path) if n.startswith("ckpt-6.")}
    DAMAGES[damage](tmp_path / "ckpt-6")
    lines = []
    again = reopened(tmp_path)
    assert again.restore_latest(lines.append) == str(tmp_path / "ckpt-3")
    assert again.step == 3 and weight_of(again) == 3.0
    assert len(lines) == 1 and lines[0].startswith(f"damaged checkpoint {tmp_path / 'ckpt-6'} (")
    assert lines[0].endswith(f"(moved to {tmp_path / 'damaged'}); using {tmp_path / 'ckpt-3'}")
    # the damaged files are kept, beside the folder, and no longer listed
    remaining = before - ({"ckpt-6.index"} if damage == "index missing" else set())
    assert set(names(tmp_path / "damaged")) == remaining
    assert not any(n.startswith("ckpt-6.") for n in names(tmp_path))
    assert tf.train.latest_checkpoint(str(tmp_path)) == str(tmp_path / "ckpt-3")


def test_when_no_checkpoint_restores_the_run_is_refused_and_nothing_moves(tmp_path):
    saved_at(tmp_path, 3, 6)
    for step in (3, 6):
        zero(tmp_path / f"ckpt-{step}.data-00000-of-00001")
    before = names(tmp_path)
    with pytest.raises(RunFolderError, match=r"None of the 2 checkpoints .* restores .*ckpt-6.*--fresh"):
        reopened(tmp_path).restore_latest()
    assert names(tmp_path) == before


def test_the_kept_checkpoints_are_the_last_resort(tmp_path):
    checkpoints = saved_at(tmp_path, 3)
    checkpoints.save_kept(1)
    zero(tmp_path / "ckpt-3.data-00000-of-00001")
    again = reopened(tmp_path)
    assert again.restore_latest(lambda line: None) == str(tmp_path / "every_epoch" / "epoch-1")
    assert again.step == 3 and weight_of(again) == 3.0


def test_restore_newest_good_without_moving_for_readers_like_translate(tmp_path):
    saved_at(tmp_path, 3, 6)
    zero(tmp_path / "ckpt-6.data-00000-of-00001")
    before = names(tmp_path)
    weight = tf.Variable(tf.zeros([1000]))
    lines = []
    path = ckpt.restore_newest_good(tf.train.Checkpoint(weight=weight), tmp_path, lines.append)
    assert path == str(tmp_path / "ckpt-3") and float(weight[0].numpy()) == 3.0
    assert "ckpt-6" in lines[0] and names(tmp_path) == before


def test_a_checkpoint_of_other_networks_is_a_config_error_not_damage(tmp_path):
    saved_at(tmp_path, 3)
    other = Checkpoints(tmp_path, {"weight": tf.Variable(tf.zeros([10]))}, save_epoch_freq=1)
    with pytest.raises(ConfigError, match=r"ckpt-3 was written by networks of another shape.*--fresh"):
        other.restore_latest()
    assert names(tmp_path)[-1] == "ckpt-3.index"  # nothing moved


def test_each_checkpoint_holds_the_config_of_its_run(tmp_path):
    saved_at(tmp_path, 3, 6)
    assert ckpt.saved_config(tmp_path) == CONFIG
    zero(tmp_path / "ckpt-6.data-00000-of-00001")
    assert ckpt.saved_config(tmp_path) == CONFIG  # from ckpt-3
    assert ckpt.saved_config(tmp_path / "nothing") is None


def test_abandoned_temporary_folders_are_removed(tmp_path):
    saved_at(tmp_path, 3)
    for temp in (tmp_path / "ckpt-6_temp", tmp_path / "every_epoch" / "epoch-2_temp"):
        temp.mkdir(parents=True)
        (temp / "part-00000-of-00001.data-00000-of-00001").write_bytes(b"half")
    removed = ckpt.remove_abandoned_temp(tmp_path)
    assert sorted(p.name for p in removed) == ["ckpt-6_temp", "epoch-2_temp"]
    assert names(tmp_path) == ["checkpoint", "ckpt-3.data-00000-of-00001", "ckpt-3.index", "every_epoch"]


def test_running_out_of_memory_while_restoring_is_not_damage(tmp_path, monkeypatch):
    saved_at(tmp_path, 3, 6)
    before = names(tmp_path)
    again = reopened(tmp_path)

    def out_of_memory(path):
        raise tf.errors.ResourceExhaustedError(None, None, "OOM when allocating tensor")

    monkeypatch.setattr(again.checkpoint, "restore", out_of_memory)
    with pytest.raises(tf.errors.ResourceExhaustedError):
        again.restore_latest()
    assert names(tmp_path) == before  # a good checkpoint is never moved aside
