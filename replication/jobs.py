"""What every training run does as one job, on one machine or many: its Job (strategy, the folder
it writes, how it restores), the stop every worker agrees on, and each epoch's batches, each worker
reading its share of every global batch. What only several machines need is in cluster.py.
"""

from __future__ import annotations


def is_multi_worker(strategy) -> bool:
    import tensorflow as tf

    if not isinstance(strategy, tf.distribute.MultiWorkerMirroredStrategy):
        return False
    jobs = strategy.cluster_resolver.cluster_spec().as_dict()
    return len(jobs.get("chief", [])) + len(jobs.get("worker", [])) > 1


class Job:
    """One process's part in a training: its strategy, the folder it writes, how it restores.

    On one machine: the strategy of `train.strategy`, the run folder, its latest checkpoint.
    """

    def __init__(self, run, strategy=None, make_strategy=None):
        self.run = self.chief_run = run
        self._strategy, self._make_strategy = strategy, make_strategy

    is_chief = True

    @property
    def strategy(self):
        """Made when first asked for: after the loop gave TensorFlow its threads, which must come first."""
        if self._strategy is None:
            self._strategy = self._make_strategy()
        return self._strategy

    def restore(self, checkpoints, log) -> str | None:
        return checkpoints.restore_latest(log)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        return False


class AgreedStop:
    """A StopRequest that every worker reads alike: `signal_name` is the first signal any worker
    got (one all-gather per read), so all stop after the same call, each with its checkpoint."""

    def __init__(self, request, strategy):
        import tensorflow as tf

        self.request, self.strategy = request, strategy

        @tf.function(autograph=False)  # traced once: read after every call
        def everyones(number):
            gathered = strategy.run(lambda: tf.distribute.get_replica_context().all_gather(tf.identity(number), axis=0))
            return strategy.experimental_local_results(gathered)[0]

        self.everyones = everyones

    def __enter__(self):
        self.request.__enter__()
        return self

    def __exit__(self, *exc):
        return self.request.__exit__(*exc)

    @property
    def signal_name(self) -> str | None:
        import signal

        import tensorflow as tf

        mine = signal.Signals[self.request.signal_name].value if self.request.signal_name else 0
        got = [int(n) for n in self.everyones(tf.constant([mine], tf.float32)).numpy() if n]
        return signal.Signals(got[0]).name if got else None


def agreed_stop(request, strategy):
    """`request` (a StopRequest) as every worker of `strategy` reads it."""
    return AgreedStop(request, strategy) if is_multi_worker(strategy) else request


def epoch_batches(strategy, data, epoch: int, start: int, count: int):
    """The distributed batches `start` to `start + count` of epoch `epoch`.

    Several workers: each reads only its contiguous share of every global batch (one input
    pipeline per worker, split again between its own replicas), so replica r of the job
    gets elements [r * n, (r + 1) * n) of each global batch, as under MirroredStrategy.
    """
    import tensorflow as tf

    count = max(count, 0)
    if not is_multi_worker(strategy):
        return strategy.experimental_distribute_dataset(data.epoch(epoch, start=start).take(count))

    def worker_batches(context: tf.distribute.InputContext):
        per_replica = context.get_per_replica_batch_size(data.batch_size)
        share = data.epoch(epoch, start=start, part=context.input_pipeline_id, parts=context.num_input_pipelines,
                           batch_size=per_replica)
        return share.take(count * (data.batch_size // context.num_input_pipelines // per_replica))

    options = tf.distribute.InputOptions(experimental_fetch_to_device=True)
    return strategy.distribute_datasets_from_function(worker_batches, options)
