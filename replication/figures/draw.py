"""`replication figures`: every figure of a run, redrawn only when what it is drawn from changed.

The figures of runs/NAME go to figures/NAME/:
  losses.png/.pdf        every loss, raw and smoothed (report Figure 8)
  evaluation.png/.pdf    eval.csv: the test set's scores after each epoch, beside their baselines
  progression.png/.pdf   the same test images across epochs (report Figure 1)
  test_results.png/.pdf  input, translation, reconstruction (and the truth, where the data has it)
                         of the first test images (paper Figure 4)
  test/                  every test image translated, for the results page
  index.html             the results page; figures/index.html lists every run, figures/tables.html
                         sets the runs' scores beside the paper's tables
A run still training is read as it is: half-written log lines and unreadable
sample files are left out with one line that says so.
"""

from __future__ import annotations

import contextlib
import datetime
import json
import math
from dataclasses import asdict, dataclass
from pathlib import Path

from replication.errors import FigureInputError, KitError
from replication.figures import all_runs, images, losses, page, results, samples, tables
from replication.figures.style import save_figure
from replication.figures.summary import (FINISHED, Summary, departures, latest_checkpoint, latest_numbers, read_metrics, read_state,
                                         sparklines, state_of, state_words, steps_per_epoch_of, strip)
from replication.files import FolderLock, atomic_write_text, remove_partial_writes, storage_errors
from replication.pixels import to_uint8

TEST_IMAGES = 8


@dataclass
class Options:
    smoothing: float | None = None  # None: from the run's length (losses.smoothed); a number: TensorBoard's
    epochs: list[int] | None = None  # the progression's epochs; None: the default choice
    test_images: int = TEST_IMAGES  # per direction, in the test results figure
    force: bool = False  # redraw even what is up to date

    def __post_init__(self):
        losses.check_smoothing(self.smoothing)
        if self.test_images < 1:
            raise KitError(f"--test-images must be at least 1, not {self.test_images}.")


def newest_mtime(paths) -> float:
    """The newest modification time of these files and of everything under these folders (0 if none)."""
    times = [0.0]
    for path in map(Path, paths):
        if path.is_file():
            times.append(path.stat().st_mtime)
        elif path.is_dir():
            times.extend(p.stat().st_mtime for p in path.rglob("*") if p.is_file())
    return max(times)


class Stamps:
    """figures/NAME/.drawn.json: per figure, the options it was drawn with and its inputs' newest mtime.

    The mtime is taken before the inputs are read, so rows a training run
    appends while a figure is drawn make it out of date at the next call.
    """

    def __init__(self, folder: Path, force: bool = False):
        self.path = Path(folder) / ".drawn.json"
        self.force = force
        self.drawn = json.loads(self.path.read_text()) if self.path.exists() else {}

    def recipe(self, options: dict, inputs) -> dict:
        return {"options": options, "inputs": newest_mtime(inputs)}

    def fresh(self, figure: str, recipe: dict, outputs) -> bool:
        return not self.force and self.drawn.get(figure) == recipe and all(Path(p).exists() for p in outputs)

    def record(self, figure: str, recipe: dict) -> None:
        self.drawn[figure] = recipe
        atomic_write_text(self.path, json.dumps(self.drawn, indent=1) + "\n")


def figure_files(folder: Path, stem: str) -> list[Path]:
    return [folder / f"{stem}.png", folder / f"{stem}.pdf"]


class RunFigures:
    """The figures of one run folder, each drawn (or left alone) on its own."""

    def __init__(self, run_dir: Path, figures_dir: Path, options: Options, say=print):
        from replication import models, runs  # TensorFlow: `figures` imports this module before start_tensorflow

        self.config = runs.load_config(run_dir)  # a KitError for a folder that is not a run
        self.run = runs.RunFolder(run_dir)
        self.model = models.model_class(self.config)
        self.folder = Path(figures_dir) / self.run.path.name
        check_folder_is_ours(self.folder, self.run.path)
        self.options, self.say = options, say
        self.stamps = Stamps(self.folder, options.force)
        train = self.config["train"]
        run = self.run  # what each figure is drawn from, noted before anything is read
        self.recipes = {
            "losses": self.stamps.recipe({"smoothing": options.smoothing}, [run.losses, run.config]),
            "evaluation": self.stamps.recipe({}, [run.eval_csv, run.eval / "metrics.json", run.config]),
            "progression": self.stamps.recipe({"epochs": options.epochs}, [run.samples]),
            "test results": self.stamps.recipe({"test_images": options.test_images}, [run.export, run.checkpoints, run.config]),
        }
        drawn_at = datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds")
        self.summary = Summary(self.run.path.name, self.config["name"], str(self.run.path), drawn_at, epochs_total=train["epochs"] + train["epochs_decay"],
                               variant=tables.variant(self.config), image_size=self.config["data"].get("crop_size", 0), data=data_name(self.config["data"]))
        self.samples = samples.sample_epochs(self.run.samples)
        self.find_where_the_run_stands()

    def find_where_the_run_stands(self) -> None:
        """The summary's step, epochs, state and latest losses, from the run's files as they are now."""
        from replication import export  # TensorFlow: `figures` imports this module before start_tensorflow

        summary, recorded = self.summary, read_state(self.run.state)
        summary.steps_per_epoch = steps_per_epoch_of(recorded, self.config)
        manifest = export.read_manifest(self.run.manifest) if self.run.manifest.is_file() else {}
        exported_step = manifest.get("step") if manifest else None
        summary.step = exported_step or 0  # the export says how far the run went, even without its logs
        summary.imported = (manifest.get("imported") or {}).get("text", "")
        try:
            self.log = losses.read_log(self.run.losses)
        except FigureInputError as err:
            self.log, self.log_error = None, err
        else:
            summary.step = max(summary.step, int(self.log.steps[-1]))
            summary.latest_losses = losses.latest_smoothed(self.log, self.options.smoothing)
            summary.sparklines = sparklines(self.log, getattr(self.model, "loss_panels", {}), self.options.smoothing)
        if summary.steps_per_epoch:
            summary.epochs_done = min(summary.step // summary.steps_per_epoch, summary.epochs_total)
        else:  # the samples written at each epoch's end, or the export's epoch
            summary.epochs_done = max(max(self.samples, default=0), manifest.get("epoch") or 0)
        summary.state, summary.how = state_of(self.run.path, recorded, summary.step, exported_step)
        summary.finished = summary.state == FINISHED
        summary.checkpoint = latest_checkpoint(self.run.checkpoints)
        summary.departures = departures(self.config)

    def not_drawn(self, figure: str, err: Exception) -> None:
        self.summary.not_drawn[figure] = str(err)
        self.say(f"{self.run.path}: {figure} not drawn: {err}")

    def draw(self) -> Path:
        figures = (("loss figure", self.losses), ("evaluation figure", self.evaluation), ("progression", self.progression), ("test results", self.test_results))
        for figure, method in figures:
            try:
                method()
            except KitError as err:
                self.not_drawn(figure, err)
        summary = self.summary
        summary.metrics, report = read_metrics(self.run.eval / "metrics.json")
        summary.numbers = latest_numbers(asdict(summary), summary.metrics, report, self.run.eval_csv)
        summary.strip = strip(results.load_results(self.folder / "test"), self.model.sample_rows)
        atomic_write_text(self.folder / "summary.json", json.dumps(asdict(self.summary), indent=1) + "\n")
        page.write_run_page(self.folder, asdict(self.summary), self.config, results.load_results(self.folder / "test"), results.captions(self.model))
        return self.folder

    def title(self) -> str:
        run = "" if self.run.path.name == self.config["name"] else f" (run {self.run.path.name})"
        return f"{self.config['name']}{run}: {state_words(asdict(self.summary))}"

    def losses(self) -> None:
        recipe = dict(self.recipes["losses"], title=self.title())  # redrawn when the run's state changes too
        if self.log is None:
            raise self.log_error
        log = self.log
        if log.unreadable:
            self.say(f"{self.run.losses}: line {', '.join(map(str, log.unreadable))} left out (incomplete; still being written?)")
        outputs = figure_files(self.folder, "losses")
        if self.stamps.fresh("losses", recipe, outputs):
            return
        panels = getattr(self.model, "loss_panels", {})  # a model without panels gets one panel per loss
        figure = losses.draw_losses(log, panels, self.title(), self.options.smoothing, self.summary.epochs_done, self.summary.steps_per_epoch)
        save_figure(figure, self.folder / "losses")
        self.stamps.record("losses", recipe)

    def evaluation(self) -> None:
        if not self.run.eval_csv.exists():  # not a problem: train.eval_every is 0 by default
            self.summary.not_drawn["evaluation figure"] = f"no {self.run.eval_csv.name} (train.eval_every writes it while training)"
            return
        recipe = self.recipes["evaluation"]
        if self.stamps.fresh("evaluation", recipe, figure_files(self.folder, "evaluation")):
            return
        baselines = losses.baselines_of(read_metrics(self.run.eval / "metrics.json")[0])
        title = f"{self.title()}: scores on the test set after each epoch"
        figure = losses.draw_evaluation(losses.read_log(self.run.eval_csv), title, self.summary.epochs_done, baselines, self.summary.steps_per_epoch)
        save_figure(figure, self.folder / "evaluation")
        self.stamps.record("evaluation", recipe)

    def progression(self) -> None:
        found = self.samples
        if not found:
            raise FigureInputError(f"no sample images yet in {self.run.samples} (the loop writes them at the end of every epoch).")
        recipe = self.recipes["progression"]
        outputs = figure_files(self.folder, "progression")
        if self.stamps.fresh("progression", recipe, outputs):
            return
        readable = {}
        for epoch, path in found.items():
            try:
                readable[epoch] = samples.read_samples(path)
            except FigureInputError as err:
                self.say(f"{self.run.path}: {err}")
        if not readable:
            raise FigureInputError(f"none of the sample files in {self.run.samples} could be read.")
        chosen = images.choose_epochs(readable, self.options.epochs)
        tables = images.progression_tables({e: readable[e] for e in chosen}, self.model.sample_rows, self.model.sample_captions)
        title = f"{self.title()}: the same test images across training"
        save_figure(images.draw_tables(tables, title), self.folder / "progression")
        self.stamps.record("progression", recipe)

    def test_results(self) -> None:
        recipe = self.recipes["test results"]
        outputs = [*figure_files(self.folder, "test_results"), self.folder / "test" / "results.json"]
        if self.stamps.fresh("test results", recipe, outputs):
            return
        translated = results.translate_test_set(self.run.path, self.config, self.model, self.folder / "test")
        shown = results.first_results(translated, self.folder, self.options.test_images)
        tables = images.result_tables(shown, self.model.sample_rows, results.captions(self.model))
        step = f" (weights of step {translated['step']})" if translated.get("step") not in (None, self.summary.step) else ""
        title = f"{self.title()}: test images{step}"
        save_figure(images.draw_tables(tables, title), self.folder / "test_results")
        self.stamps.record("test results", recipe)


def run_folders(root: Path = Path("runs")) -> list[Path]:
    """Every folder under runs/ (the default of `figures` and `make figures`)."""
    folders = sorted(p for p in Path(root).iterdir() if p.is_dir()) if Path(root).is_dir() else []
    if not folders:
        raise KitError(f"No run folders under {root}/: train one first (make demo), or name run folders: replication figures runs/NAME.")
    return folders


@contextlib.contextmanager
def figures_folder(figures_dir: Path):
    """Hold `figures_dir` for one `figures` command: what a killed one left half written is removed first,
    and a full disk or an unwritable folder ends in one line naming the file."""
    then = lambda: " (or draw into another folder with --figures-dir) and run the same command again; the runs themselves are not changed."  # noqa: E731
    with storage_errors(figures_dir, then), \
            FolderLock(figures_dir, "figures", "Wait for it to finish or stop it, or draw into another folder with --figures-dir."):
        remove_partial_writes(figures_dir)
        yield


def check_folder_is_ours(folder: Path, run_dir: Path) -> None:
    """Refuse to draw over the figures of another run of the same folder name that still exists."""
    try:
        earlier = json.loads((folder / "summary.json").read_text()).get("run")
    except (OSError, ValueError, AttributeError):
        return
    if earlier and Path(earlier).resolve() != run_dir.resolve() and (Path(earlier) / "config.yaml").is_file():
        raise KitError(
            f"{folder}/ holds the figures of {earlier}; draw {run_dir} with another --figures-dir, or rename one run folder."
        )


def check_names(run_dirs: list[Path], figures_dir: Path) -> None:
    """Refuse two run folders of one name: both would be drawn into FIGURES_DIR/NAME/."""
    seen = {}
    for run_dir in run_dirs:
        other = seen.setdefault(run_dir.name, run_dir)
        if other.resolve() != run_dir.resolve():
            raise KitError(
                f"{other} and {run_dir} would both be drawn into {figures_dir / run_dir.name}/; draw them with separate "
                f"--figures-dir folders (replication figures {run_dir} --figures-dir figures-2), or rename one run folder."
            )


def draw_runs(run_dirs, figures_dir: Path, options: Options, say=print) -> list[Path]:
    """Draw every run; a folder that is not a run gets one line and is skipped. Returns the skipped folders."""
    run_dirs = [Path(r) for r in run_dirs]
    check_names(run_dirs, Path(figures_dir))
    skipped = []
    with figures_folder(Path(figures_dir)):
        for run_dir in run_dirs:
            try:
                folder = RunFigures(run_dir, figures_dir, options, say).draw()
            except KitError as err:
                say(f"{run_dir}: skipped: {err}")
                skipped.append(run_dir)
                continue
            say(f"{run_dir}: figures in {folder}/ (open {folder / 'index.html'})")
        tables.write_tables_page(Path(figures_dir))
        all_runs.write_index(Path(figures_dir))
    return skipped


def weights_of(run_dir: Path, step) -> str:
    """`epoch 16, step 3200` of the weights a run is translated with (its export's manifest, else the step)."""
    from replication import export, runs  # TensorFlow: `figures` imports this module before start_tensorflow

    manifest = runs.RunFolder(run_dir).manifest
    if manifest.exists() and export.read_manifest(manifest).get("imported"):
        return "official weights, imported"
    epoch = export.read_manifest(manifest).get("epoch") if manifest.exists() else None
    return ", ".join(([f"epoch {epoch}"] if epoch is not None else []) + ([f"step {step}"] if step is not None else [])) or "weights of unknown step"


def data_name(data_cfg: dict) -> str:
    """The data a run is tested on, in words: `synthetic data (data/synthetic)`, `tfds horse2zebra`."""
    source = data_cfg.get("source")
    name = "" if source == "synthetic" else f" {data_cfg.get('name')}"
    root = f" ({data_cfg['root']})" if data_cfg.get("root") else ""
    return f"{source}{name} data{root}"


def draw_comparison(run_dirs, labels, figures_dir: Path, count: int = TEST_IMAGES) -> list[Path]:
    """The same test images translated by each run, side by side, beside their truth where the data has it
    (paper Figure 9 and the like)."""
    from replication import loading, models, runs  # TensorFlow: `figures` imports this module before start_tensorflow

    run_dirs = [Path(r) for r in run_dirs]
    labels = labels or [r.name for r in run_dirs]
    if len(run_dirs) < 2 or len(labels) != len(run_dirs):
        raise KitError(f"--compare needs two or more run folders and, with --labels, one label each ({len(run_dirs)} runs, {len(labels)} labels).")
    configs = [runs.load_config(r) for r in run_dirs]
    classes = [models.model_class(c) for c in configs]
    generators = [loading.load_generators(r) for r in run_dirs]
    directions = [d for d in classes[0].sample_rows if all(d in c.sample_rows for c in classes) and all(d in g for g in generators)]
    multiple = math.lcm(*(t.size_multiple for g in generators for t in g.values()))
    pairs = results.same_test_images(run_dirs, configs, multiple, count, directions)
    truths = {d: results.truth_images(configs[0], d, multiple) for d in directions}
    inputs = {d: [] for d in directions}
    outputs = {d: [] for d in directions}
    for i, counts, a, b in pairs:
        per_run = [cls.visuals(g, a[0], b[0]) for cls, g in zip(classes, generators)]
        for d, (image, name) in results.new_sources(i, counts, a, b, directions):
            inputs[d].append((name, to_uint8(image)[0]))
            outputs[d].append([to_uint8(v[cls.sample_rows[d][1]])[0] for cls, v in zip(classes, per_run)])
            if truths[d]:
                outputs[d][-1].append(truths[d].get(name))
    captions = {d: classes[0].sample_captions[classes[0].sample_rows[d][0]] for d in directions}
    columns = {d: [*labels, *([results.TRUTH_CAPTION] if truths[d] else [])] for d in directions}
    tables_ = images.comparison_tables(inputs, outputs, columns, captions)
    which = ", ".join(
        f"{label} ({run_dir.name}, {weights_of(run_dir, next(iter(g.values())).step)})" for label, run_dir, g in zip(labels, run_dirs, generators)
    )
    title = f"The same test images translated by each run: {which}; {data_name(configs[0]['data'])}"
    stem = Path(figures_dir) / "compare" / "-vs-".join(r.name for r in run_dirs)
    with figures_folder(Path(figures_dir)):
        return save_figure(images.draw_tables(tables_, title), stem)
