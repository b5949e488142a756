"""What `replication figures` does (its flags are defined in replication/cli.py); the drawing is
replication/figures/'s."""

from __future__ import annotations

from pathlib import Path

from replication.commands.start import not_a_run_folder, start_tensorflow
from replication.errors import KitError


def run_figures(args) -> int:
    named = [*args.run_dirs, *args.run_flags]
    for path in [*named, *(args.compare or [])]:
        if not Path(path).is_dir():
            raise KitError(f"{not_a_run_folder(Path(path))}. Pass folders that `train` wrote, e.g. runs/demo.")
    figures_dir = Path(args.figures_dir).absolute()
    from replication.figures import draw  # matplotlib; TensorFlow only once the flags are checked

    options = draw.Options(args.smoothing, args.epochs, args.test_images, args.force)
    folders = None if args.compare else named or draw.run_folders(Path("runs").absolute())
    start_tensorflow(args)
    if args.compare:
        paths = draw.draw_comparison(args.compare, args.labels, figures_dir, args.test_images)
        print(f"comparison: {', '.join(map(str, paths))}")
        return 0
    skipped = draw.draw_runs(folders, figures_dir, options)
    print(f"all runs: {figures_dir / 'index.html'}")
    return 1 if skipped else 0
