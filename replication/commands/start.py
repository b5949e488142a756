"""How a command starts: what it was given checked first (run folders, whether they hold weights),
then TensorFlow imported quietly. Nothing here imports TensorFlow until `start_tensorflow` does."""

from __future__ import annotations

import logging
import os
import sys
import tempfile
from pathlib import Path

from replication.errors import KitError


def start_tensorflow(args) -> None:
    """Import TensorFlow with its C++ start-up lines hidden (CUDA probing, oneDNN and CPU notices),
    unless --verbose; if the import fails, what TensorFlow said is shown with the error.

    Those lines are written while TensorFlow's libraries load, before TF_CPP_MIN_LOG_LEVEL
    takes effect, so they are caught at the file descriptor; the level (set in cli.main)
    hides the ones logged later (grappler's, the CUDA driver's).
    """
    if not args.verbose:
        logging.getLogger("absl").setLevel(logging.ERROR)  # TFDS's warnings through absl, e.g. "Variant folder ... has no dataset_info.json"
    if args.verbose or "tensorflow" in sys.modules:
        import tensorflow  # noqa: F401

        return
    sys.stderr.flush()
    kept = os.dup(2)
    with tempfile.TemporaryFile() as said:
        os.dup2(said.fileno(), 2)
        try:
            import tensorflow  # noqa: F401
        except BaseException:
            os.dup2(kept, 2)
            said.seek(0)
            sys.stderr.write(said.read().decode(errors="replace"))
            raise
        finally:
            os.dup2(kept, 2)
            os.close(kept)


def tensorflow_log_level(verbose: bool) -> None:
    """TensorFlow's C++ log level, read when it is imported: everything with --verbose, else only fatal errors."""
    if verbose:
        os.environ["TF_CPP_MIN_LOG_LEVEL"] = "0"
    else:
        os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")


def run_folder(path, weights: bool = False) -> Path:
    """A folder `train` wrote (it holds config.yaml) and, if `weights`, has trained: checked before anything is loaded."""
    path = Path(path)
    if not path.exists():
        raise KitError(f"{path.absolute()} is not a run folder: it does not exist, so no run was trained there yet. "
                       "Train one first: `replication train demo` writes runs/demo (`make demo`, in the kit's folder, "
                       f"also scores it).{runs_beside(path)}")
    if not (path / "config.yaml").is_file():
        raise KitError(f"{not_a_run_folder(path)}. Pass a folder that `train` wrote.{runs_beside(path)}")
    if weights and not has_weights(path):
        raise KitError(f"{path.absolute()} has no exported generators and no checkpoint yet; train it first "
                       "(a checkpoint is saved at the end of every epoch, and with --until-step N).")
    return path


def not_a_run_folder(path: Path) -> str:
    """Why `path` is no run folder: missing, a file, or a folder without config.yaml."""
    if path.exists() and not path.is_dir():
        return f"{path.absolute()} is a file, not a run folder"
    return f"{path.absolute()} is not a run folder ({'no config.yaml' if path.exists() else 'it does not exist'})"


def runs_beside(path: Path) -> str:
    """' Runs beside it: runs/a, runs/b.' (at most three), for a message; '' if there are none."""
    parent = path.parent
    found = sorted(p.parent for p in parent.glob("*/config.yaml"))[:3] if parent.is_dir() else []
    return f" Runs beside it: {', '.join(str(p) for p in found)}." if found else ""


def has_weights(run: Path) -> bool:
    """An export or a checkpoint is there (whether it restores is known only once TensorFlow reads it)."""
    return any((run / "export").glob("*.keras")) or any((run / "checkpoints").glob("**/*.index"))


def one_run(args, required: bool = True) -> str | None:
    """The run folder given as RUN or with the older --run (both name the same thing)."""
    if args.run_dir and args.run_flag and Path(args.run_dir) != Path(args.run_flag):
        raise KitError(f"Two run folders given ({args.run_dir} and --run {args.run_flag}); give one, as RUN.")
    run = args.run_dir or args.run_flag
    if run is None and required:
        raise KitError(f"{args.command} needs a run folder: replication {args.command} runs/NAME.")
    return run
