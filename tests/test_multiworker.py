"""Training across workers (train.strategy multi_worker, `train --workers N`): the cluster from
TF_CONFIG or Slurm, each worker's share of the global batch and what each of its images draws, bad
input, and two local worker processes trained like one of the same global batch (a ResNet and the
demo's U-Net CycleGAN; pix2pix in test_pix2pix.py), through a killed worker and a resume."""

import json
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from replication import cluster
from replication.cli import main
from replication.data import pipeline
from replication.errors import ConfigError

from helpers import SIZE, assert_trained_alike, assert_workers_trained_as_one, experiment_file, loss_rows, tiny_config

ROOT = Path(__file__).resolve().parents[1]


def tf_config(addresses, index, kind="worker"):
    return json.dumps({"cluster": {"worker": list(addresses)}, "task": {"type": kind, "index": index}})


# ---------------------------------------------------------------- the cluster a worker is in


def test_tf_config_gives_the_workers_in_order_the_chief_first_and_this_workers_place():
    spec = {"cluster": {"chief": ["a:1"], "worker": ["b:2", "c:3"]}, "task": {"type": "worker", "index": 1}}
    found = cluster.from_tf_config(json.dumps(spec))
    assert (found.addresses, found.index, found.is_chief) == (("a:1", "b:2", "c:3"), 2, False)
    assert cluster.from_tf_config(tf_config(["b:2", "c:3"], 0)).is_chief


@pytest.mark.parametrize("text, says", [
    ("{'cluster': ", "TF_CONFIG is not JSON"),
    ('{"task": {"type": "worker", "index": 0}}', "TF_CONFIG names no cluster"),
    ('{"cluster": {"worker": ["a:1", "b:2"]}}', "TF_CONFIG names no task"),
    ('{"cluster": {"worker": ["a:1", "b:2"]}, "task": {"type": "worker", "index": 2}}', "is not one of its cluster's 2 worker"),
    ('{"cluster": {"ps": ["a:1"], "worker": ["b:2"]}, "task": {"type": "worker", "index": 0}}', "must list the workers"),
])
def test_a_tf_config_that_is_not_a_cluster_says_what_is_wrong(text, says):
    with pytest.raises(ConfigError, match=says):
        cluster.from_tf_config(text)


def test_slurm_tasks_are_the_workers_with_ports_from_the_base_on_each_node(monkeypatch):
    for name, value in dict(SLURM_PROCID="3", SLURM_STEP_NUM_TASKS="4", SLURM_STEP_NODELIST="gpu-[07,09]",
                            SLURM_STEP_TASKS_PER_NODE="2(x2)").items():
        monkeypatch.setenv(name, value)
    monkeypatch.delenv("TF_CONFIG", raising=False)
    monkeypatch.delenv("CUDA_VISIBLE_DEVICES", raising=False)  # no GPUs and no nvidia-smi here: a CPU-only node
    found = cluster.from_environment()
    assert found.addresses == ("gpu-07:8888", "gpu-07:8889", "gpu-09:8888", "gpu-09:8889")
    assert (found.index, found.source) == (3, "Slurm")


def test_each_worker_reads_its_contiguous_share_of_every_global_batch():
    shares = [pipeline.share_of_batches(3, 4, part, 2) for part in range(2)]
    np.testing.assert_array_equal(shares[0], [0, 1, 4, 5, 8, 9])
    np.testing.assert_array_equal(shares[1], [2, 3, 6, 7, 10, 11])
    np.testing.assert_array_equal(pipeline.share_of_batches(3, 4, 0, 1), np.arange(12))


def test_worker_shares_from_a_step_on_are_the_one_machine_batches_split(tiny_synthetic_root):
    from replication import models

    data = models.training_data(tiny_config(tiny_synthetic_root, "data.batch_size=2"))
    whole = [tuple(x.numpy() for x in batch) for batch in data.epoch(1, start=1)]
    parts = [list(data.epoch(1, start=1, part=p, parts=2)) for p in range(2)]
    assert len(whole) == len(parts[0]) == len(parts[1]) == data.steps_per_epoch - 1
    for step, (a, b) in enumerate(whole):
        np.testing.assert_array_equal(a, np.concatenate([parts[0][step][0], parts[1][step][0]]))
        np.testing.assert_array_equal(b, np.concatenate([parts[0][step][1], parts[1][step][1]]))


def test_what_each_image_of_a_step_draws_does_not_depend_on_how_the_global_batch_is_split(two_replicas):
    """Dropout masks and the history buffer's choices, one replica of the global batch against two
    of half of it each (the jitter, drawn per element by the input pipeline, is held to this above)."""
    import tensorflow as tf

    from replication import models, networks

    config = tiny_config(None, "data.batch_size=4", "model.dropout=0.5", "train.pool_size=3")
    fakes = [tf.random.stateless_uniform((4, SIZE, SIZE, 3), (i, 2), -1.0, 1.0) for i in range(3)]
    drawn = {}
    for strategy in (tf.distribute.get_strategy(), two_replicas):
        with strategy.scope():
            model = models.build(config)
        dropout = networks.dropout_layers(model.G)[0]

        @tf.function
        def step(images, step_index):
            model.seed_dropout(step_index)
            return dropout(images, training=True), model.draw_from_history(model.history_X, images, step_index, stream=1)

        drawn[strategy.num_replicas_in_sync] = []
        for i, images in enumerate(fakes):  # the buffer fills (3 images), then swaps images at random
            batch = next(iter(strategy.experimental_distribute_dataset(tf.data.Dataset.from_tensors(images))))
            both = strategy.run(step, args=(batch, tf.constant(i, tf.int64)))
            drawn[strategy.num_replicas_in_sync].append([tf.concat(strategy.experimental_local_results(t), 0).numpy() for t in both])
    assert any(np.any(dropped == 0) for dropped, _ in drawn[1])  # the check can fail: dropout did drop
    assert not np.array_equal(drawn[1][2][1], fakes[2].numpy())  # and the buffer did swap
    for one, two in zip(drawn[1], drawn[2]):
        for a, b in zip(one, two):
            np.testing.assert_array_equal(a, b)


def test_a_killed_workers_temporary_folder_is_removed_and_a_live_ones_kept(tmp_path):
    from replication.files import FolderLock

    left, live, other = (tmp_path / name for name in ("run-worker1-abc", "run-worker1-def", "run-worker2-abc"))
    for folder in (left, live, other):
        (folder / "run" / "checkpoints").mkdir(parents=True)
    with FolderLock(live):
        cluster.remove_left_behind(tmp_path, "run-worker1-")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["run-worker1-def", "run-worker2-abc"]


# ---------------------------------------------------------------- bad input: one line, status 2, nothing written


def write_config(folder: Path, root, *overrides) -> Path:
    """The tiny experiment as a file every worker's command can name."""
    return experiment_file(folder, tiny_config(root, "data.batch_size=2", *overrides))


@pytest.mark.parametrize("environment, extra, says", [
    ("{not json", [], "TF_CONFIG is not JSON"),
    ('{"cluster": {"worker": ["127.0.0.1:1", "127.0.0.1:2"]}}', [], "TF_CONFIG names no task"),
    (tf_config(["127.0.0.1:1", "127.0.0.1:2", "127.0.0.1:3"], 0), [], "TF_CONFIG names 3 workers but --workers says 2"),
])
def test_a_bad_cluster_ends_in_one_line_before_anything_is_written(environment, extra, says, tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("TF_CONFIG", environment)
    run = tmp_path / "run"
    status = main(["train", str(write_config(tmp_path, tmp_path / "data")), "--workers", "2", "--run-dir", str(run), *extra])
    err = capsys.readouterr().err.strip().splitlines()
    assert status == 2 and len(err) == 1 and says in err[0]
    assert not run.exists()


def test_multi_worker_without_a_cluster_says_how_to_give_one(tmp_path, monkeypatch, capsys):
    monkeypatch.delenv("TF_CONFIG", raising=False)
    monkeypatch.delenv("SLURM_PROCID", raising=False)
    config = write_config(tmp_path, tmp_path / "data", "train.strategy=multi_worker")
    assert main(["train", str(config), "--run-dir", str(tmp_path / "run")]) == 2
    assert "needs a cluster: set TF_CONFIG" in capsys.readouterr().err
    assert not (tmp_path / "run").exists()


def test_a_port_in_use_is_named_before_anything_is_written(tmp_path, monkeypatch, capsys):
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        address = f"127.0.0.1:{taken.getsockname()[1]}"
        monkeypatch.setenv("TF_CONFIG", tf_config([address], 0))
        status = main(["train", str(write_config(tmp_path, tmp_path / "data")), "--workers", "1", "--run-dir", str(tmp_path / "run")])
    err = capsys.readouterr().err.strip().splitlines()
    assert status == 2 and len(err) == 1
    assert f"port {address.split(':')[1]} of worker 0 ({address}, the chief), from TF_CONFIG, is not free" in err[0]
    assert not (tmp_path / "run").exists()


# ---------------------------------------------------------------- two local worker processes


def start_worker(index, ports, args, env):
    return subprocess.Popen(
        [sys.executable, "-m", "replication", "train", *args],
        env=dict(env, TF_CONFIG=cluster.local_tf_config(ports, index)), cwd=ROOT,
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )


def test_workers_started_with_different_configurations_both_stop_naming_the_keys(tiny_synthetic_root, tmp_path, worker_env):
    run, ports = tmp_path / "run", cluster.free_ports(2)
    config = write_config(tmp_path, tiny_synthetic_root)
    workers = [
        start_worker(0, ports, [str(config), "--run-dir", str(run), "--workers", "2"], worker_env),
        start_worker(1, ports, [str(config), "--run-dir", str(run), "--workers", "2", "--set", "train.lr=0.001"], worker_env),
    ]
    for worker in workers:
        _, err = worker.communicate(timeout=300)
        assert worker.returncode == 2
        assert err.strip().splitlines()[-1] == (
            f"error: worker 1 (127.0.0.1:{ports[1]}) was started with another configuration than the chief's "
            "(train.lr: 0.001 there, 0.0002 on the chief); run the same command with the same experiment file "
            "and --set options on every worker."
        )
    assert not run.exists()


def test_a_worker_whose_peer_never_starts_stops_after_the_start_timeout_naming_it(tiny_synthetic_root, tmp_path, worker_env):
    """The chief of one cluster whose worker 1 never starts, and worker 1 of another whose chief never does."""
    config = write_config(tmp_path, tiny_synthetic_root, "train.worker_start_timeout=2")
    ports = cluster.free_ports(4)
    alone = [start_worker(index, ports[2 * index:2 * index + 2], [str(config), "--run-dir", str(tmp_path / f"run{index}"), "--workers", "2"], worker_env)
             for index in (0, 1)]
    for index, worker in enumerate(alone):
        _, err = worker.communicate(timeout=300)
        missing = "worker 1 (127.0.0.1:{}) did not come up within 2 s; worker 0 (127.0.0.1:{}, the chief)" if index == 0 else \
            "worker 0 (127.0.0.1:{1}, the chief) did not come up within 2 s; worker 1 (127.0.0.1:{0})"
        assert worker.returncode == 2
        assert err.strip().splitlines()[-1] == (
            f"error: {missing.format(ports[2 * index + 1], ports[2 * index])} stopped. Start the same command on every "
            "worker (check each address in TF_CONFIG), or give slow starters longer with --set train.worker_start_timeout=SECONDS."
        )
        assert not (tmp_path / f"run{index}").exists()
    assert list(Path(worker_env["TMPDIR"]).glob("run1-worker*")) == []


def test_the_launchers_last_line_names_the_worker_that_failed_first(tmp_path, monkeypatch, capsys):
    """Worker 1 is killed at once; worker 0, as a chief whose peer died, exits with status 2 a second later."""
    worker = tmp_path / "worker.sh"
    worker.write_text('#!/bin/sh\ncase "$TF_CONFIG" in *\'"index": 1\'*) kill -9 $$;; *) sleep 1; exit 2;; esac\n')
    worker.chmod(0o755)
    monkeypatch.setattr(cluster.sys, "executable", str(worker))
    assert cluster.launch(["train", "tiny.yaml"], 2) == 2
    assert capsys.readouterr().err.splitlines()[-1] == "the job stopped: worker 1, the first to fail, was killed by signal 9."


def test_sigterm_to_the_launcher_stops_both_workers_after_the_same_step_with_a_checkpoint(tiny_synthetic_root, tmp_path, worker_env):
    """What a job scheduler sends: passed on to the workers as Ctrl-C is, so the run resumes from the stop."""
    config = write_config(tmp_path, tiny_synthetic_root, "train.max_steps_per_epoch=2", "train.epochs=50")
    run = tmp_path / "run"
    launcher = subprocess.Popen([sys.executable, "-m", "replication", "train", str(config), "--run-dir", str(run), "--workers", "2"],
                                env=worker_env, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 300
    while not (run / "checkpoints" / "ckpt-2.index").exists():
        assert launcher.poll() is None and time.monotonic() < deadline, launcher.communicate()[1][-2000:]
        time.sleep(0.05)
    launcher.send_signal(signal.SIGTERM)
    out, err = launcher.communicate(timeout=120)
    assert launcher.returncode == 143, err[-2000:]
    assert err.strip().splitlines()[-1] == (
        "the job stopped on SIGTERM: the 2 workers saved a checkpoint after the same step; the same command resumes from it."
    )
    stopped = [line for line in (run / "run.log").read_text().splitlines() if "stopped on SIGTERM" in line]
    assert len(stopped) == 1
    step = int(stopped[0].split("checkpoint saved at step ")[1].split(".")[0])
    assert Path(tf_latest_checkpoint(run)).name == f"ckpt-{step}"
    assert "[worker 0] interrupted" in out + err and "[worker 1] interrupted" in out + err
    assert list(Path(worker_env["TMPDIR"]).glob("run-worker*")) == []


def tf_latest_checkpoint(run: Path) -> str:
    import tensorflow as tf

    return tf.train.latest_checkpoint(str(run / "checkpoints"))


def test_two_workers_train_as_one_of_their_global_batch_and_resume_exactly_after_a_killed_worker(
    tiny_synthetic_root, tmp_path, worker_env, launcher_env, capsys
):
    """3 epochs of 2 steps at global batch 2 of the ResNet CycleGAN: one worker, then two (`train
    --workers 2`), then two again with worker 1 killed after the first epoch's checkpoint: the
    chief stops naming it, and `train --workers 2` finishes the run as the uninterrupted one."""
    from replication.training import train

    overrides = ("train.max_steps_per_epoch=2",)
    one = train(tiny_config(tiny_synthetic_root, "data.batch_size=2", *overrides), run_dir=tmp_path / "one")
    config = str(write_config(tmp_path, tiny_synthetic_root, *overrides))

    straight = tmp_path / "straight"
    assert main(["train", config, "--run-dir", str(straight), "--workers", "2"]) == 0  # without TF_CONFIG: two local workers
    assert [int(r["step"]) for r in loss_rows(straight)] == list(range(1, 7))
    assert_workers_trained_as_one(straight, one)
    # only the chief wrote the run folder; worker 1 removed its temporary folder
    assert sorted(p.name for p in straight.iterdir()) == sorted(p.name for p in one.iterdir())
    assert list(Path(worker_env["TMPDIR"]).glob("straight-worker*")) == []

    run, ports = tmp_path / "resumed", cluster.free_ports(2)
    args = [config, "--run-dir", str(run), "--workers", "2"]
    chief, other = (start_worker(i, ports, args, worker_env) for i in range(2))
    deadline = time.monotonic() + 300
    while not (run / "checkpoints" / "ckpt-2.index").exists():
        assert chief.poll() is None and time.monotonic() < deadline, chief.communicate()[1][-2000:]
        time.sleep(0.05)
    other.send_signal(signal.SIGKILL)
    other.wait()
    assert len(list(Path(worker_env["TMPDIR"]).glob("resumed-worker1-*"))) == 1
    _, err = chief.communicate(timeout=120)  # the coordination service misses its heartbeats within seconds
    assert chief.returncode == 2
    assert err.strip().splitlines()[-1].startswith(f"error: worker 1 (127.0.0.1:{ports[1]}) stopped answering")
    assert not (run / "export").exists()

    capsys.readouterr()
    assert main(["train", *args]) == 0
    out = capsys.readouterr().out
    assert "[worker 0] resumed from" in out and "[worker 1] resumed from" in out
    assert "[worker 0] finished" in out
    assert_trained_alike(run, straight)
    # worker 1 removed the temporary folder it left when killed
    assert sorted(p.name for p in run.iterdir()) == sorted(p.name for p in one.iterdir())
    assert list(Path(worker_env["TMPDIR"]).glob("resumed-worker*")) == []


def test_the_demos_unet_cyclegan_resumes_mid_epoch_exactly_and_two_workers_train_it_as_one(tiny_synthetic_root, tmp_path, launcher_env):
    """The demo's configuration (U-Net generators, no dropout, eval.csv after every epoch) shrunk
    to 32x32: 3 epochs of 2 steps at batch 2, stopped inside epoch 2 and resumed, then on 2 workers."""
    from replication.training import train

    config = tiny_config(tiny_synthetic_root, "model.generator=unet", "model.num_downs=5",
                         "data.batch_size=2", "train.max_steps_per_epoch=2", "train.eval_every=1")
    one = train(config, run_dir=tmp_path / "one")
    train(config, run_dir=tmp_path / "resumed", until_step=3)
    resumed = train(config, run_dir=tmp_path / "resumed")
    assert_trained_alike(resumed, one)
    assert (resumed / "eval.csv").read_text() == (one / "eval.csv").read_text()

    workers = tmp_path / "workers"
    assert main(["train", str(experiment_file(tmp_path, config)), "--run-dir", str(workers), "--workers", "2"]) == 0
    assert_workers_trained_as_one(workers, one)
