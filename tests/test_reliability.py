"""Nothing lost, nobody confused: what a run folder survives (damaged files, kills at bad
moments, a second training, a full disk) and the one line every user mistake ends in.

Kills are stood in for by exceptions injected at the same moment; the files they leave
behind are the same."""

import errno
import os
import re
import shutil
import signal
import subprocess
import sys

import numpy as np
import pytest
import tensorflow as tf

from replication import files
from replication.data import images
from replication.checkpoints import Checkpoints
from replication.cli import main
from replication.errors import ConfigError, DataError, RunFolderError
from replication.training import StopRequest, Stopped, train
from helpers import kit, loss_rows, patch_calls, tiny_config, tiny_sets


@pytest.fixture(scope="module")
def stopped_run(tiny_stopped_run):
    """A run stopped at step 4, inside epoch 2: checkpoints ckpt-3 (epoch 1's end) and ckpt-4 (conftest's)."""
    return tiny_stopped_run


@pytest.fixture
def run_copy(stopped_run, tmp_path):
    return shutil.copytree(stopped_run, tmp_path / "run")


def count_steps(monkeypatch):
    steps = []
    patch_calls(monkeypatch, lambda first, count, call: steps.extend(range(first, first + count)) or call())
    return steps


def run_log(run_dir):
    return (run_dir / "run.log").read_text()


# ---------------------------------------------------------------- data that must not be lost


def test_a_garbage_checkpoint_index_resumes_from_the_checkpoints_on_disk(run_copy, synthetic_root, monkeypatch):
    rows = loss_rows(run_copy)
    (run_copy / "checkpoints" / "checkpoint").write_text("garbage")
    steps = count_steps(monkeypatch)
    train(tiny_config(synthetic_root), run_dir=run_copy, until_step=5)
    assert steps == [4]  # one step, from the checkpoint of step 4, not five from zero
    assert f"resumed from {run_copy / 'checkpoints' / 'ckpt-4'} at step 4" in run_log(run_copy)
    assert loss_rows(run_copy)[:4] == rows and [int(r["step"]) for r in loss_rows(run_copy)] == [1, 2, 3, 4, 5]


def test_a_corrupt_latest_checkpoint_falls_back_and_says_so(run_copy, synthetic_root, monkeypatch):
    data = run_copy / "checkpoints" / "ckpt-4.data-00000-of-00001"
    data.write_bytes(data.read_bytes()[:100])
    steps = count_steps(monkeypatch)
    train(tiny_config(synthetic_root), run_dir=run_copy, until_step=5)
    assert steps == [3, 4]
    log = run_log(run_copy)
    assert f"damaged checkpoint {run_copy / 'checkpoints' / 'ckpt-4'} (IndexError: Read less bytes than requested)" in log
    assert f"using {run_copy / 'checkpoints' / 'ckpt-3'}" in log
    assert sorted(os.listdir(run_copy / "checkpoints" / "damaged")) == ["ckpt-4.data-00000-of-00001", "ckpt-4.index"]
    assert [int(r["step"]) for r in loss_rows(run_copy)] == [1, 2, 3, 4, 5]


def test_a_second_training_on_the_same_folder_is_refused_naming_the_first(run_copy, synthetic_root, capsys):
    holder = subprocess.Popen(
        [sys.executable, "-c", "import sys, time; from replication.files import FolderLock\n"
         "with FolderLock(sys.argv[1]):\n    print('locked', flush=True); time.sleep(120)", str(run_copy)],
        stdout=subprocess.PIPE, text=True,
    )
    try:
        assert holder.stdout.readline() == "locked\n"
        before = {name: (run_copy / name).read_bytes() for name in ("run.log", "losses.csv", "config.yaml")}
        for fresh in (False, True):  # nor is it moved aside under the running one
            with pytest.raises(RunFolderError, match=rf"{run_copy} is in use by train \(pid {holder.pid}, since .*--run-dir"):
                train(tiny_config(synthetic_root), run_dir=run_copy, fresh=fresh)
        assert {name: (run_copy / name).read_bytes() for name in before} == before
        assert os.listdir(run_copy.parent) == ["run"]
    finally:
        holder.kill()  # SIGKILL: the kernel releases the lock, nothing stays stuck
        holder.wait()
    with files.FolderLock(run_copy):
        pass


def test_a_kill_after_an_epochs_checkpoint_loses_neither_its_samples_nor_its_kept_checkpoint(
    stopped_run, synthetic_root, tmp_path, monkeypatch
):
    class Killed(Exception):
        pass

    def killed(self, epochs_done):
        raise Killed  # the latest checkpoint of epoch 1 is saved; its kept one and samples are not

    with monkeypatch.context() as patch:
        patch.setattr(Checkpoints, "save_kept", killed)
        with pytest.raises(Killed):
            train(tiny_config(synthetic_root), run_dir=tmp_path, until_step=3)
    assert not (tmp_path / "samples" / "epoch_001.npz").exists()
    temps = [tmp_path / "checkpoints" / "ckpt-4_temp", tmp_path / "checkpoints" / "every_epoch" / "epoch-2_temp"]
    for temp in temps:  # what saves killed half way leave
        temp.mkdir(parents=True)
        (temp / "part-00000-of-00001.data-00000-of-00001").write_bytes(b"half")
    (tmp_path / "export").mkdir()
    partial = [tmp_path / ".losses.csv.k2j3_9xa", tmp_path / "export" / ".G_AtoB.partial.keras"]  # atomic writes' temporaries
    for path in partial:
        path.write_bytes(b"half")

    train(tiny_config(synthetic_root), run_dir=tmp_path, until_step=4)
    log = run_log(tmp_path)
    assert "wrote the missing samples of epoch 1" in log and "saved the missing kept checkpoint of epoch 1" in log
    with np.load(tmp_path / "samples" / "epoch_001.npz") as got, np.load(stopped_run / "samples" / "epoch_001.npz") as want:
        for name in want.files:
            np.testing.assert_array_equal(got[name], want[name])
    kept = tf.train.get_checkpoint_state(str(tmp_path / "checkpoints" / "every_epoch"))
    assert [os.path.basename(p) for p in kept.all_model_checkpoint_paths] == ["epoch-1"]
    assert not any(path.exists() for path in temps + partial)
    assert all(f"removed {path}" in log for path in temps + partial)
    assert (tmp_path / ".lock").exists()  # the lock file stays; only its lock goes


def test_a_run_whose_config_yaml_is_gone_is_known_by_its_checkpoint(run_copy, synthetic_root, monkeypatch):
    (run_copy / "config.yaml").unlink()
    with pytest.raises(ConfigError, match=r"different configuration \(model\.ngf: 4 there, 8 now\).*--fresh"):
        train(tiny_config(synthetic_root, "model.ngf=8"), run_dir=run_copy)
    assert not (run_copy / "config.yaml").exists()  # nothing written
    # the right command still works; a run already past --until-step does nothing and says so
    steps = count_steps(monkeypatch)
    train(tiny_config(synthetic_root), run_dir=run_copy, until_step=2)
    assert steps == []
    assert "nothing to do: the run is already at step 4, and --until-step is 2." in run_log(run_copy)
    assert tf.train.latest_checkpoint(str(run_copy / "checkpoints")).endswith("ckpt-4")
    assert len(loss_rows(run_copy)) == 4


NOT_UTF8 = os.fsdecode(b"caf\xe9\xff.png")  # a file name Linux allows


def broken_data(kind, synthetic_root, folder):
    """A copy of the tiny synthetic dataset with one thing wrong that only reading it finds."""
    root = shutil.copytree(synthetic_root, folder)
    if kind == "an undecodable file":
        (root / "trainA" / NOT_UTF8).write_bytes(b"not an image")
    elif kind == "no data.root":
        shutil.rmtree(root)
    elif kind == "an empty domain":
        for image in (root / "trainB").iterdir():
            image.unlink()
    return root


def files_in(folder):
    return {path.relative_to(folder): path.read_bytes() for path in sorted(folder.rglob("*")) if path.is_file()}


@pytest.mark.parametrize("kind", ["an undecodable file", "no data.root", "an empty domain"])
def test_a_start_that_fails_on_its_data_leaves_no_run_folder(kind, synthetic_root, tmp_path, capsys):
    root = broken_data(kind, synthetic_root, tmp_path / "data")
    assert main(["train", "demo", "--set", f"data.root={root}", "--run-dir", str(tmp_path / "run")]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: ") and str(root) in err
    assert not (tmp_path / "run").exists()


def test_a_start_that_fails_on_its_data_leaves_an_earlier_run_as_it_was(run_copy, synthetic_root, tmp_path, monkeypatch):
    before = files_in(run_copy)
    broken = broken_data("an undecodable file", synthetic_root, tmp_path / "data")
    with pytest.raises(DataError, match=re.escape(f"trainA/{NOT_UTF8}: UnidentifiedImageError")):  # not moved aside
        train(tiny_config(broken), run_dir=run_copy, fresh=True)

    def unreadable(path):
        raise PermissionError(13, "Permission denied", str(path))

    monkeypatch.setattr(images, "decode_with_mode", unreadable)  # its own images can no longer be read
    with pytest.raises(DataError, match="PermissionError"):
        train(tiny_config(synthetic_root), run_dir=run_copy)
    assert files_in(run_copy) == before
    assert sorted(os.listdir(tmp_path)) == ["data", "run"]


def test_a_half_written_last_loss_row_is_dropped_on_resume(run_copy, synthetic_root):
    with open(run_copy / "losses.csv", "a") as f:
        f.write("1")  # the start of the row of step 1x: the run died writing it
    train(tiny_config(synthetic_root), run_dir=run_copy, until_step=5)
    rows = loss_rows(run_copy)
    assert [int(r["step"]) for r in rows] == [1, 2, 3, 4, 5]
    assert all(value not in (None, "") for row in rows for value in row.values())


# ---------------------------------------------------------------- a full disk, a read-only folder


def no_space(path):
    return tf.errors.ResourceExhaustedError(None, None, f"{{{{function_node __wrapped__SaveV2}}}} {path}; No space left on device [Op:SaveV2]")


def test_a_checkpoint_that_does_not_fit_ends_in_one_line_and_the_last_one_stays(run_copy, synthetic_root, monkeypatch):
    def full(self, step):
        raise no_space(run_copy / "checkpoints" / "ckpt-5_temp" / "part-00000-of-00001.data-00000-of-00001.tempstate1")

    monkeypatch.setattr(Checkpoints, "save", full)
    with pytest.raises(RunFolderError) as error:
        train(tiny_config(synthetic_root), run_dir=run_copy, until_step=5)
    message = str(error.value)
    assert "\n" not in message
    assert message.startswith(f"Could not write {run_copy / 'checkpoints' / 'ckpt-5_temp'}/part-")
    assert message.endswith(
        f": the disk is full. Free some space (or train into another folder with --run-dir); the latest "
        f"checkpoint, {run_copy / 'checkpoints' / 'ckpt-4'}, is whole and the same command resumes."
    )


def test_tensorboard_on_a_full_disk_ends_in_one_line(run_copy, synthetic_root, monkeypatch):
    def full(*args, **kwargs):
        raise no_space(run_copy / "tensorboard" / "events.out.tfevents.1")

    monkeypatch.setattr(tf.summary, "scalar", full)
    with pytest.raises(RunFolderError, match=r"^Could not write .*tensorboard/events.out.tfevents.1: the disk is full"):
        train(tiny_config(synthetic_root), run_dir=run_copy, until_step=5)


@pytest.mark.parametrize("number, words", [(errno.ENOSPC, "the disk is full. Free some space"),
                                           (errno.EROFS, "the file system is read-only. Make it writable")])
def test_a_run_folder_that_cannot_be_written_at_the_start_ends_in_one_line(synthetic_root, tmp_path, capsys, monkeypatch, number, words):
    real_open = os.open

    def refuse(path, *args, **kwargs):
        if str(path).endswith(".lock"):
            raise OSError(number, os.strerror(number), str(path))
        return real_open(path, *args, **kwargs)

    monkeypatch.setattr(os, "open", refuse)
    assert main(["train", "demo", "--set", f"data.root={synthetic_root}", "--run-dir", str(tmp_path / "run")]) == 2
    err = capsys.readouterr().err
    assert err == (
        f"error: Could not write {tmp_path / 'run' / '.lock'}: {words} (or train into another folder with "
        "--run-dir); no checkpoint was saved yet; the same command resumes.\n"
    )


# ---------------------------------------------------------------- stopping


def test_sigterm_exits_143_and_ctrl_c_130(monkeypatch, capsys):
    import replication.training as training

    for name, status in (("SIGTERM", 143), ("SIGINT", 130)):
        def stopped(*args, **kwargs):
            raise Stopped(name)

        monkeypatch.setattr(training, "train", stopped)
        assert main(["train", "demo"]) == status
        assert "Run the same command to resume" in capsys.readouterr().err


def test_a_second_ctrl_c_exits_at_once_without_raising_into_python(monkeypatch, capsys):
    exits = []
    monkeypatch.setattr(os, "_exit", exits.append)
    with StopRequest() as stop:
        os.kill(os.getpid(), signal.SIGINT)
        assert stop.signal_name == "SIGINT" and exits == []
        os.kill(os.getpid(), signal.SIGINT)  # would raise KeyboardInterrupt wherever Python was
    assert exits == [130]
    assert "stopped at once on the second Ctrl-C" in capsys.readouterr().err


def test_ctrl_c_while_the_step_is_built_answers_at_once_and_a_second_one_exits(tiny_synthetic_root, tmp_path):
    """A real training, signalled as a terminal does: the first Ctrl-C once the build has begun, the
    second once the first is answered. TensorFlow builds the step in C++, where Python's own handlers
    wait until it is done; the answers must come before it is."""
    training = kit("train", "demo", "--run-dir", "run", *tiny_sets(tiny_synthetic_root), cwd=tmp_path, popen=True,
                   PYTHONUNBUFFERED="1")
    said = []
    try:
        for line in training.stdout:
            said.append(line.strip())
            if line.startswith("building the training step"):
                training.send_signal(signal.SIGINT)
            elif line.startswith("stopping"):
                training.send_signal(signal.SIGINT)
        status = training.wait(timeout=60)
    finally:
        training.kill()
    said = [line for line in said if line]
    assert said[-3:] == [
        "building the training step: about a minute on a CPU",
        "stopping as soon as the step is built; Ctrl-C again to stop now.",
        "stopped at once on the second Ctrl-C; the same command resumes from the latest checkpoint.",
    ]
    assert status == 130
    assert not (tmp_path / "run" / "checkpoints").exists() or not any((tmp_path / "run" / "checkpoints").iterdir())


@pytest.mark.parametrize("value", ["0", "-5"])
def test_until_step_must_be_a_positive_number_of_steps(value, tmp_path, capsys):
    assert main(["train", "demo", "--until-step", value, "--run-dir", str(tmp_path / "run")]) == 2
    assert capsys.readouterr().err == (
        f"error: --until-step={value} is not allowed: --until-step must be a whole number, 1 or more.\n"
    )
    assert not (tmp_path / "run").exists()
