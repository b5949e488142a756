"""Training across machines: one run, several workers, tf.distribute.MultiWorkerMirroredStrategy.

`train.strategy: multi_worker` runs the same command on every worker. The cluster comes from
`TF_CONFIG` (one JSON object per worker: every worker's host:port and this worker's index) or,
without it, from Slurm's environment (`srun`). `train NAME --workers N` starts N such workers
on this machine, each with its own `TF_CONFIG`: the same code path, on 127.0.0.1.

- `data.batch_size` stays the global batch. Worker w (of W) reads the w-th contiguous share
  of every global batch, so the images, their order, crops and flips are those of a
  one-machine run, and the gradients are all-reduced each step.
- Worker 0 is the chief: it holds the run folder's lock and writes the run (losses,
  run.log, samples, TensorBoard, checkpoints, export). The other workers run the same loop
  into a temporary folder of their own, removed at the end, and restore from the chief's
  checkpoints: the run folder must be one folder every worker reads (shared storage).
- Every worker waits at start for the others, at most train.worker_start_timeout seconds, then
  stops naming the ones that did not come up. The configurations are then compared, before
  anything is written.
- Ctrl-C or SIGTERM on any worker stops every worker after the same step, with a checkpoint.
- A worker that dies aborts the collectives on the others (TensorFlow's coordination
  service stops getting its heartbeats, or its connection drops): each stops with one
  line naming it. A collective that waits longer than COLLECTIVE_TIMEOUT ends the job too.

What a one-machine run does alike (its Job, the agreed stop, each worker's share of a batch) is in jobs.py.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import shutil
import socket
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path

from replication.errors import ConfigError, KitError, RunFolderError
from replication.files import FolderLock
from replication.jobs import Job
from replication.speed import machine

COLLECTIVE_TIMEOUT = 600  # seconds one all-reduce may wait for the other workers (a stuck, not dead, worker)
SLURM_PORT_BASE = 8888  # the first port of each Slurm node's workers (SlurmClusterResolver's default)
TF_CONFIG_EXAMPLE = '{"cluster": {"worker": ["host1:port", "host2:port"]}, "task": {"type": "worker", "index": 0}}'
TASK = re.compile(r"/job:(chief|worker)/replica:\d+/task:(\d+)")


class WorkerLost(KitError):
    """Another worker of the job died or stopped answering."""


# ---------------------------------------------------------------- the cluster


@dataclass(frozen=True)
class Cluster:
    """The workers of one job (host:port each; the chief first) and which of them this process is."""

    addresses: tuple
    index: int
    source: str  # "TF_CONFIG" or "Slurm"
    chiefs: int = 0  # 1 where TF_CONFIG lists a "chief" task apart from the "worker" ones
    resolver: object = None  # the tf.distribute cluster resolver, made when TensorFlow is needed

    @property
    def is_chief(self) -> bool:
        return self.index == 0

    def name(self, index: int | None = None) -> str:
        index = self.index if index is None else index
        return f"worker {index} ({self.addresses[index]}{', the chief' if index == 0 else ''})"


def from_environment(environ=os.environ) -> Cluster | None:
    """The cluster `TF_CONFIG` describes, else Slurm's (inside `srun`), else None."""
    if environ.get("TF_CONFIG", "").strip():
        return from_tf_config(environ["TF_CONFIG"])
    if "SLURM_PROCID" in environ and "SLURM_STEP_NODELIST" in environ:
        return from_slurm()
    return None


def from_tf_config(text: str) -> Cluster:
    """Check `TF_CONFIG` and read its workers ("chief" first, then "worker") and this task's place."""
    try:
        spec = json.loads(text)
    except json.JSONDecodeError as err:
        raise ConfigError(f"TF_CONFIG is not JSON ({err}); each worker needs one like {TF_CONFIG_EXAMPLE}.") from None
    if not isinstance(spec, dict) or not isinstance(spec.get("cluster"), dict):
        raise ConfigError(f"TF_CONFIG names no cluster; each worker needs one like {TF_CONFIG_EXAMPLE}.")
    jobs = spec["cluster"]
    chief, workers = list(jobs.get("chief") or []), list(jobs.get("worker") or [])
    if len(chief) > 1 or not chief + workers or set(jobs) - {"chief", "worker"}:
        raise ConfigError(
            f"TF_CONFIG's cluster must list the workers (and at most one chief), not {sorted(jobs)}; e.g. {TF_CONFIG_EXAMPLE}."
        )
    task = spec.get("task")
    if not isinstance(task, dict) or "type" not in task:
        raise ConfigError("TF_CONFIG names no task (which worker this is); add e.g. \"task\": {\"type\": \"worker\", \"index\": 0}.")
    kind, index = task.get("type"), task.get("index", 0)
    if kind not in jobs or isinstance(index, bool) or not isinstance(index, int) or not 0 <= index < len(jobs[kind]):
        raise ConfigError(f"TF_CONFIG's task {json.dumps(task)} is not one of its cluster's {', '.join(f'{len(v)} {k}' for k, v in jobs.items())}.")
    return Cluster(tuple(chief + workers), index + (len(chief) if kind == "worker" else 0), "TF_CONFIG", len(chief))


def from_slurm() -> Cluster:
    """Slurm's tasks as workers (one per task; on each node, ports from SLURM_PORT_BASE on)."""
    import tensorflow as tf

    Slurm = tf.distribute.cluster_resolver.SlurmClusterResolver
    try:  # GPUs: the resolver shares each node's out among its tasks (CUDA_VISIBLE_DEVICES)
        resolver = Slurm(port_base=SLURM_PORT_BASE)
        addresses = resolver.cluster_spec().as_dict()["worker"]
    except (RuntimeError, OSError, ValueError):  # no nvidia-smi or no GPU: CPU-only nodes, nothing to share
        resolver = Slurm(port_base=SLURM_PORT_BASE, gpus_per_node=1 << 16, gpus_per_task=1, auto_set_gpu=False)
        addresses = resolver.cluster_spec().as_dict()["worker"]
    return Cluster(tuple(addresses), int(resolver.task_id), "Slurm", resolver=resolver)


def check_workers(cluster: Cluster | None, workers: int | None) -> None:
    """`--workers N` on a worker of a cluster must agree with the cluster's size."""
    if cluster is not None and workers is not None and len(cluster.addresses) != workers:
        raise ConfigError(
            f"{cluster.source} names {len(cluster.addresses)} workers but --workers says {workers}; "
            f"make them agree (or leave out --workers)."
        )


def check_port_free(cluster: Cluster) -> None:
    """This worker's port must be free (TensorFlow's own error says only "Could not start gRPC server").

    Probed as its server binds it: on every interface, taking over connections left closing
    (TIME_WAIT) by a run that just ended, so the same command can run again at once.
    """
    port = int(cluster.addresses[cluster.index].rsplit(":", 1)[1])
    with socket.socket() as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind(("", port))
        except OSError as err:
            raise ConfigError(
                f"port {port} of {cluster.name()}, from {cluster.source}, is not free ({err.strerror}); "
                "choose another port for this worker on every worker."
            ) from None


def free_ports(count: int) -> list[int]:
    """`count` ports the OS says are free on 127.0.0.1 now."""
    sockets = [socket.socket() for _ in range(count)]
    try:
        for s in sockets:
            s.bind(("127.0.0.1", 0))
        return [s.getsockname()[1] for s in sockets]
    finally:
        for s in sockets:
            s.close()


def local_tf_config(ports: list[int], index: int) -> str:
    return json.dumps({"cluster": {"worker": [f"127.0.0.1:{p}" for p in ports]}, "task": {"type": "worker", "index": index}})


# ---------------------------------------------------------------- the strategy and the job


def make_strategy(cluster: Cluster, start_timeout: int):
    """MultiWorkerMirroredStrategy over `cluster`; waits until every worker has started, at most
    `start_timeout` seconds, then stops naming the workers that did not come up."""
    import tensorflow as tf

    check_port_free(cluster)
    resolver = cluster.resolver or tf.distribute.cluster_resolver.TFConfigClusterResolver()
    wait_for_every_worker(resolver.cluster_spec(), start_timeout)
    options = tf.distribute.experimental.CommunicationOptions(timeout_seconds=COLLECTIVE_TIMEOUT)
    try:
        strategy = tf.distribute.MultiWorkerMirroredStrategy(cluster_resolver=resolver, communication_options=options)
    except (tf.errors.DeadlineExceededError, tf.errors.UnavailableError) as err:  # its start-up barrier, or its leader, timed out
        stop_at_once(WorkerLost(not_started_message(cluster, err, start_timeout)))
    # Every worker's batches are whole (drop_remainder) and as many: without the partial-batch
    # handling it turns on across workers, a batch keeps the static size the history buffer needs.
    strategy.extended.experimental_enable_get_next_as_optional = False
    return strategy


def wait_for_every_worker(cluster_spec, seconds: int) -> None:
    """TensorFlow's coordination service as MultiWorkerMirroredStrategy configures it, with a time
    limit on its start: every worker registers at a barrier that fails after `seconds` (without
    one, a worker whose peer never starts waits in TensorFlow's start-up for ever)."""
    from tensorflow.compiler.xla.tsl.protobuf.coordination_config_pb2 import CoordinatedJob
    from tensorflow.python.distribute.multi_worker_util import coordination_leader
    from tensorflow.python.eager import context

    jobs = [CoordinatedJob(name=job, num_tasks=cluster_spec.num_tasks(job)) for job in ("chief", "worker") if job in cluster_spec.jobs]
    context.context().configure_coordination_service(
        service_type="standalone", service_leader=coordination_leader(cluster_spec), coordinated_jobs=jobs,
        cluster_register_timeout_in_ms=seconds * 1000,
    )
    context.context().coordination_service.cluster_register_with_barrier = True


def not_started_message(cluster: Cluster, err, seconds: int) -> str:
    """Names the workers TensorFlow says did not register (those after "timed out task names"),
    else the chief, whose coordination service this worker could not reach."""
    indexes = other_workers_named(cluster, str(err).partition("timed out task names:")[2])
    indexes = indexes or ([0] if not cluster.is_chief else list(range(1, len(cluster.addresses))))
    who = ", ".join(cluster.name(i) for i in indexes)
    return (
        f"{who} did not come up within {seconds} s; {cluster.name()} stopped. Start the same command on every "
        f"worker (check each address in {cluster.source}), or give slow starters longer with --set train.worker_start_timeout=SECONDS."
    )


def other_workers_named(cluster: Cluster, text: str) -> list[int]:
    """The indexes (chief first) of the other workers that TensorFlow's error `text` names, in order, once each."""
    found = [int(index) + (cluster.chiefs if job == "worker" else 0) for job, index in TASK.findall(text)]
    return [i for i in dict.fromkeys(found) if i != cluster.index and i < len(cluster.addresses)]


class WorkerJob(Job):
    """A worker of a multi-worker job. The chief writes the run folder; another worker writes
    into a temporary folder it removes, and restores what the chief restored."""

    def __init__(self, cluster: Cluster, run, strategy, config: dict):
        from replication.runs import RunFolder  # TensorFlow; `train` imports this module before it starts

        self.cluster, self.chief_run, self._strategy = cluster, run, strategy
        compare_configs(strategy, cluster, config)
        self.temp = self.lock = None
        if not cluster.is_chief:
            prefix = f"{run.path.name}-worker{cluster.index}-"
            remove_left_behind(Path(tempfile.gettempdir()), prefix)
            self.temp = Path(tempfile.mkdtemp(prefix=prefix))
            self.lock = FolderLock(self.temp, f"worker {cluster.index} of a training")
        self.run = run if cluster.is_chief else RunFolder(self.temp / run.path.name)

    def __enter__(self):
        if self.lock is not None:
            self.lock.__enter__()
        return self

    @property
    def is_chief(self) -> bool:
        return self.cluster.is_chief

    def restore(self, checkpoints, log) -> str | None:
        """The chief restores (moving damaged checkpoints aside), then the others restore the same one."""
        from replication.checkpoints import restore_newest_good  # TensorFlow; `train` imports this module before it starts

        path = checkpoints.restore_latest(log) if self.is_chief else None
        gather_ints(self.strategy, [0])  # every worker waits here until the chief has restored
        if not self.is_chief:
            path = restore_newest_good(checkpoints.checkpoint, self.chief_run.checkpoints, log)
        steps = gather_ints(self.strategy, [checkpoints.step])
        if len(set(steps.ravel().tolist())) > 1:
            raise RunFolderError(
                f"the workers restored different steps ({', '.join(map(str, steps.ravel().tolist()))}): "
                f"{self.chief_run.checkpoints} must be the same folder on every worker (shared storage)."
            )
        return path

    def __exit__(self, kind, err, trace):
        if self.temp is not None:
            self.lock.__exit__(None, None, None)
            shutil.rmtree(self.temp, ignore_errors=True)
        if err is not None and lost_peer(err):
            stop_at_once(WorkerLost(self.lost_message(err)))
        return False

    def lost_message(self, err) -> str:
        others = other_workers_named(self.cluster, str(err))
        who = self.cluster.name(others[0]) if others else "another worker"
        return (
            f"{who} stopped answering ({type(err).__name__}); {self.cluster.name()} stopped too. Run the same "
            f"command on every worker to resume from the chief's latest checkpoint in {self.chief_run.checkpoints}."
        )


def remove_left_behind(folder: Path, prefix: str) -> None:
    """Remove the temporary folders `prefix*` that a killed worker left; a live one holds its lock."""
    for temp in folder.glob(f"{prefix}*"):
        with contextlib.suppress(RunFolderError, OSError), FolderLock(temp, "removal"):
            shutil.rmtree(temp)


def lost_peer(err: BaseException) -> bool:
    """An error from collectives aborted by a dead or unreachable worker (or one that timed out)."""
    import tensorflow as tf

    return isinstance(err, (tf.errors.UnavailableError, tf.errors.DeadlineExceededError, tf.errors.AbortedError,
                            tf.errors.CancelledError)) or (isinstance(err, tf.errors.OpError) and "Collective ops is aborted" in str(err))


def stop_at_once(err: KitError) -> None:
    """Print the one line and end the process now: TensorFlow's shutdown would wait (about 20 s
    in a local test) for the dead worker to check out of its coordination service."""
    print(f"error: {err}", file=sys.stderr, flush=True)
    sys.stdout.flush()
    os._exit(2)


def gather_ints(strategy, values: list[int]):
    """Every replica's `values` (the same length on each), [replicas, len(values)], on every worker."""
    import tensorflow as tf

    mine = tf.constant(values, tf.int64)
    per_replica = strategy.experimental_distribute_values_from_function(lambda context: mine)
    return strategy.gather(per_replica, axis=0).numpy().reshape(strategy.num_replicas_in_sync, len(values))


def compare_configs(strategy, cluster: Cluster, config: dict) -> None:
    """Every worker gets every worker's resolved config and refuses to start if one differs from the chief's."""
    import numpy as np
    import yaml

    from replication.runs import differing_keys, value_at  # TensorFlow; `train` imports this module before it starts

    text = np.frombuffer(yaml.safe_dump(config, sort_keys=True).encode(), np.uint8).astype(np.int64)
    longest = int(gather_ints(strategy, [len(text)]).max())
    rows = gather_ints(strategy, np.pad(text, (0, longest - len(text)), constant_values=-1).tolist())
    per_worker = strategy.num_replicas_in_sync // len(cluster.addresses)
    configs = [yaml.safe_load(bytes(row[row >= 0].astype(np.uint8)).decode()) for row in rows[::per_worker]]
    for index, other in enumerate(configs[1:], start=1):
        keys = sorted(differing_keys(configs[0], other))
        if keys:
            raise ConfigError(
                f"{cluster.name(index)} was started with another configuration than the chief's "
                f"({'; '.join(f'{k}: {value_at(other, k)} there, {value_at(configs[0], k)} on the chief' for k in keys)}); "
                "run the same command with the same experiment file and --set options on every worker."
            )


def job_for(config: dict, run, strategy=None, make_single=None) -> Job:
    """The Job of this process for `config`'s train.strategy (`strategy`, if given, is used as it is).

    Several workers: the strategy is made (it waits for every worker) and the configurations
    compared before anything is written; TensorFlow gets its threads per op first.
    """
    if config["train"]["strategy"] != "multi_worker" or strategy is not None:
        return Job(run, strategy, lambda: make_single(config["train"]))
    cluster = from_environment()
    if cluster is None:
        raise ConfigError(
            "train.strategy multi_worker needs a cluster: set TF_CONFIG on every worker (e.g. "
            f"{TF_CONFIG_EXAMPLE}), run it under Slurm's srun, or try it on this machine with --workers N."
        )
    here = machine.detect()
    machine.apply_threads(machine.choose_settings(config["train"], here)["threads_per_op"], here)
    return WorkerJob(cluster, run, make_strategy(cluster, config["train"]["worker_start_timeout"]), config)


# ---------------------------------------------------------------- the local launcher


def launch(argv: list[str], workers: int) -> int:
    """Run `python -m replication <argv>` as `workers` local workers; returns the job's exit status.

    Each worker gets a free port on 127.0.0.1 and its TF_CONFIG; its output lines are prefixed
    with `[worker i]`. When one fails the others stop on their own (their collectives abort)
    and are ended after GRACE seconds if they have not. Ctrl-C or SIGTERM to the launcher is
    passed on to the workers, which stop after the same step, with a checkpoint; a second one
    ends them at once. The last line says how the job ended.
    """
    import subprocess
    import threading

    if workers < 1:
        raise ConfigError(f"--workers must be at least 1, not {workers}.")
    ports = free_ports(workers)
    job = LocalJob()
    with job.passing_on_signals():
        for index in range(workers):
            env = dict(os.environ, TF_CONFIG=local_tf_config(ports, index), PYTHONUNBUFFERED="1")
            env.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
            process = subprocess.Popen(
                [sys.executable, "-m", "replication", *argv], env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                start_new_session=True,  # a terminal's Ctrl-C reaches only the launcher, which passes it on
            )
            job.add(process)
            job.relays.append(threading.Thread(target=relay, args=(process.stdout, f"[worker {index}] "), daemon=True))
            job.relays[-1].start()
        job.wait()
    if job.ending():
        print(job.ending(), file=sys.stderr, flush=True)
    return job.exit_status()


class LocalJob:
    """The worker processes of `launch`, watched until every one has ended: which failed first,
    and the signal the launcher got, if any, passed on to each of them."""

    def __init__(self):
        self.processes, self.relays = [], []
        self.signal = None  # the first SIGINT or SIGTERM the launcher got
        self.at_once = False  # a second one came: the workers are ended without a checkpoint
        self.first_failure = None  # (index, status) of the first worker seen to fail
        self.deadline = None

    def add(self, process) -> None:
        self.processes.append(process)
        if self.signal is not None:
            self.pass_on(process)

    @contextlib.contextmanager
    def passing_on_signals(self):
        import signal

        previous = {sig: signal.signal(sig, self.handle) for sig in (signal.SIGINT, signal.SIGTERM)}
        try:
            yield
        finally:
            for sig, handler in previous.items():
                signal.signal(sig, handler)

    def handle(self, signum, frame) -> None:
        import signal

        if self.signal is not None:
            self.at_once = True
            return
        self.signal = signal.Signals(signum)
        print(f"{self.signal.name}: stopping the {len(self.processes)} workers after their current step, each with a "
              "checkpoint (Ctrl-C again: at once).", file=sys.stderr, flush=True)
        for process in self.processes:
            self.pass_on(process)

    def pass_on(self, process) -> None:
        with contextlib.suppress(ProcessLookupError):
            process.send_signal(self.signal)

    def wait(self) -> None:
        """Until every worker has ended; the others are ended GRACE seconds after one failed, or at
        once on a second signal."""
        import time

        while True:
            statuses = [p.poll() for p in self.processes]  # every one, each time: who ended first
            self.note_failures(statuses)
            if None not in statuses:
                break
            if self.at_once or (self.deadline is not None and time.monotonic() > self.deadline):
                end_all(self.processes)
            time.sleep(0.1)
        for r in self.relays:
            r.join(timeout=5)

    def note_failures(self, statuses: list) -> None:
        import time

        stopped = (0, 128 + self.signal) if self.signal is not None else (0,)
        failed = [(i, s) for i, s in enumerate(statuses) if s is not None and s not in stopped]
        if failed and self.first_failure is None:
            # two seen ending in the same poll: a worker killed by a signal is the cause, the other its echo
            self.first_failure = min(failed, key=lambda failure: (failure[1] >= 0, failure[0]))
            self.deadline = time.monotonic() + GRACE

    def ending(self) -> str:
        """The launcher's last line, when the job did not just finish: how it ended."""
        if self.at_once:
            return f"the job was ended at once on a second {self.signal.name}, without a checkpoint; the same command resumes from the latest one."
        if self.first_failure is not None:
            index, status = self.first_failure
            how = f"was killed by signal {-status}" if status < 0 else f"exited with status {status} (its lines above say why)"
            return f"the job stopped: worker {index}, the first to fail, {how}."
        if self.signal is not None:
            return (f"the job stopped on {self.signal.name}: the {len(self.processes)} workers saved a checkpoint after "
                    "the same step; the same command resumes from it.")
        return ""

    def exit_status(self) -> int:
        if self.first_failure is not None and not self.at_once:
            status = self.first_failure[1]
            return 2 if status < 0 else status
        return 128 + self.signal if self.signal is not None else 0


GRACE = 60  # seconds the other workers get to stop on their own after one failed


def relay(stream, prefix: str) -> None:
    for line in iter(stream.readline, b""):
        sys.stdout.write(prefix + line.decode(errors="replace"))
        sys.stdout.flush()


def end_all(processes) -> None:
    for p in processes:
        if p.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(p.pid, 9)
    for p in processes:
        p.wait()


def train_command(args, argv: list[str]) -> int | None:
    """`train --workers N`: with TF_CONFIG or Slurm, check the cluster agrees and train as one of
    its workers (returns None); without, start N local workers (returns the job's status)."""
    if args.workers is None:
        return None
    cluster = from_environment()
    check_workers(cluster, args.workers)
    return None if cluster is not None else launch(argv, args.workers)
