"""What `replication evaluate` does (its flags are defined in replication/cli.py); the scoring is
replication/evaluate.py's."""

from __future__ import annotations

from replication.commands.start import one_run, run_folder, start_tensorflow


def run_evaluate(args) -> int:
    run_dir = run_folder(one_run(args), weights=True).absolute()
    start_tensorflow(args)
    from replication.evaluate import evaluate, markdown  # TensorFlow: only after the checks and start_tensorflow

    result = evaluate(run_dir, args.metrics, args.inception_weights)
    print(markdown(result))
    folder = run_dir / "eval"
    print(f"written: {folder / 'metrics.json'}, {folder / 'metrics.md'} (translations in {folder}/<direction>/)")
    return 0
