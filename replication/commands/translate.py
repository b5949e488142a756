"""What `replication translate` does (its flags are defined in replication/cli.py); the work is
replication/translate.py's."""

from __future__ import annotations

import sys
from pathlib import Path

from replication import translate
from replication.commands.start import one_run, run_folder, start_tensorflow
from replication.errors import KitError


def run_translate(args) -> int:
    run_dir = one_run(args, required=False)
    if run_dir and args.model:
        raise KitError(f"Give a run folder ({run_dir}) or --model {args.model}, not both.")
    if not run_dir and not args.model:
        raise KitError("translate needs a run folder or --model FILE.keras: replication translate runs/NAME --input DIR --output DIR.")
    if run_dir:
        run_dir = run_folder(run_dir, weights=True)
    elif not Path(args.model).is_file():
        raise KitError(f"No model file {args.model}. Pass a .keras file written by `train` (runs/<name>/export/).")
    job = translate.plan_job(args.input, args.output, args.image_format)
    start_tensorflow(args)
    translator = translate.load_translator(run_dir, args.model, args.direction)
    print(translate.weights_used(translator), flush=True)
    if job.renamed():
        print(job.renaming_note(), flush=True)
    outcome = translate.translate_job(translator, job)
    print(f"translated {len(outcome.written)} image(s) into {translate.readable_path(Path(args.output).absolute())}")
    if outcome.failed:
        print(translate.skipped_advice(outcome, len(job.names)), file=sys.stderr)
        return 1
    return 0
