"""`python -m replication figures`: the smoothed loss curves, the progression, the test results, the
comparison, the results pages, and what a run still training, resumed or broken gives."""

import errno
import json
import math
import os
import re
import shutil
from html.parser import HTMLParser
from pathlib import Path
from urllib.parse import unquote

import numpy as np
import pytest
import tensorflow as tf
import yaml
from PIL import Image

from replication import data as data_lib
from replication import loading, runs
from replication.cli import main
from replication.cyclegan import CycleGAN
from replication.errors import ConfigError, FigureInputError, KitError
from replication.figures import draw, images, losses, save_samples, tables
from replication.figures import page as page_lib
from replication.pixels import to_uint8

from helpers import SIZE, pixels

LOSS_HEADER = "step,epoch,D_X,G,cycle_X,idt_X,D_Y,F,cycle_Y,idt_Y,lr,wall_time\n"


@pytest.fixture(scope="module")
def trained_run(tiny_finished_run):
    """A real, finished tiny run: 3 epochs of 3 steps, a loss row every step, exported generators (conftest's)."""
    return tiny_finished_run


def contains(picture: np.ndarray, block: np.ndarray) -> bool:
    """Whether `block` appears in `picture` pixel for pixel."""
    h, w = block.shape[:2]
    ys, xs = np.nonzero(np.all(picture[: picture.shape[0] - h + 1, : picture.shape[1] - w + 1] == block[0, 0], axis=-1))
    return any(np.array_equal(picture[y : y + h, x : x + w], block) for y, x in zip(ys, xs))


def assert_not_blank(path):
    assert pixels(path).astype(float).mean(axis=-1).var() > 100, path


def write_log(path: Path, rows) -> None:
    """losses.csv rows (step, epoch, value of every loss) as the training loop writes them."""
    lines = [f"{s},{e},{v},{v},{v},{v},{v},{v},{v},{v},0.0002,0\n" for s, e, v in rows]
    path.write_text(LOSS_HEADER + "".join(lines))


def a_run_folder(tmp_path, trained_run, name="run", keep=("config.yaml",)) -> Path:
    """A run folder made by the test from pieces of the trained run."""
    folder = tmp_path / name
    folder.mkdir()
    for piece in keep:
        source = trained_run / piece
        (shutil.copytree if source.is_dir() else shutil.copy)(source, folder / piece)
    return folder


# ---------------------------------------------------------------- the smoothed curve


def test_smoothing_is_tensorboards_debiased_moving_average():
    # by hand, weight 0.5: s = 0.5, 1.25, 2.125; divided by 1 - 0.5^t = 0.5, 0.75, 0.875
    np.testing.assert_allclose(losses.smooth([1.0, 2.0, 3.0], 0.5), [1.0, 1.25 / 0.75, 2.125 / 0.875])
    # the first point is the first value, not pulled toward zero
    assert losses.smooth([4.0, 4.0], 0.99)[0] == pytest.approx(4.0)
    np.testing.assert_allclose(losses.smooth([4.0, 4.0, 4.0], 0.99), [4.0, 4.0, 4.0])
    # a missing value is skipped, as TensorBoard does
    np.testing.assert_allclose(losses.smooth([1.0, np.nan, 3.0], 0.5), [1.0, np.nan, 1.75 / 0.75])


def test_smoothing_zero_is_the_raw_curve_and_one_is_refused():
    raw = np.array([0.3, 2.0, -1.0, 5.5])
    np.testing.assert_array_equal(losses.smooth(raw, 0.0), raw)
    with pytest.raises(ConfigError, match="--smoothing"):
        losses.smooth(raw, 1.0)


# ---------------------------------------------------------------- reading a log that is being written


def test_a_half_written_last_line_is_left_out(tmp_path):
    path = tmp_path / "losses.csv"
    write_log(path, [(5, 1, 0.5), (10, 1, 0.4)])
    with path.open("a") as f:
        f.write("15,1,0.3,0.3")  # the loop is writing this row right now
    log = losses.read_log(path)
    assert list(log.steps) == [5, 10]
    assert log.unreadable == [4]


def test_a_log_whose_tail_was_replaced_on_resume_plots_each_step_once(tmp_path):
    path = tmp_path / "losses.csv"
    write_log(path, [(s, 1 + (s - 1) // 4, 1.0) for s in range(1, 7)] + [(s, 1 + (s - 1) // 4, 2.0) for s in range(4, 9)])
    log = losses.read_log(path)
    assert list(log.steps) == list(range(1, 9))
    np.testing.assert_array_equal(log.columns["G"], [1, 1, 1, 2, 2, 2, 2, 2])
    fig = losses.draw_losses(log, CycleGAN.loss_panels, "resumed")
    for line in fig.axes[0].lines:
        if len(line.get_xdata()) > 2:  # the curves, not the epoch markers
            np.testing.assert_array_equal(line.get_xdata(), range(1, 9))


@pytest.mark.parametrize("content, why", [(None, "does not exist"), ("", "empty"), (LOSS_HEADER, "no complete rows")])
def test_a_missing_or_empty_log_is_one_clear_error(tmp_path, content, why):
    path = tmp_path / "losses.csv"
    if content is not None:
        path.write_text(content)
    with pytest.raises(FigureInputError, match=why):
        losses.read_log(path)


def test_panels_follow_the_model_and_leave_out_an_identity_loss_that_is_off(tmp_path):
    path = tmp_path / "losses.csv"
    path.write_text(LOSS_HEADER + "5,1,0.2,0.3,1.1,0,0.2,0.3,1.2,0,0.0002,0\n")
    panels, notes = losses.panels_to_draw(losses.read_log(path), CycleGAN.loss_panels)
    assert list(panels) == ["adversarial", "cycle", "discriminators"]
    assert panels["discriminators"] == {"AtoB": "D_Y", "BtoA": "D_X"}
    assert notes == ["identity left out: idt_Y, idt_X are zero (off in this run)"]


# ---------------------------------------------------------------- which epochs the progression shows


@pytest.mark.parametrize(
    "available, asked, chosen",
    [
        (range(1, 201), None, [1, 25, 75, 100, 200]),  # the report's epochs
        (range(1, 151), None, [1, 25, 75, 100, 150]),  # and the latest
        (range(1, 9), None, [1, 3, 5, 6, 8]),  # too few of them: an even spread, first and latest
        (range(1, 31), None, [1, 8, 15, 23, 30]),
        ([1, 2], None, [1, 2]),
        (range(1, 9), [8, 1, 5], [1, 5, 8]),  # --epochs 8 1 5
    ],
)
def test_the_progression_picks_the_documented_epochs(available, asked, chosen):
    assert images.choose_epochs(list(available), asked) == chosen


def test_asking_for_an_epoch_the_run_does_not_have_says_which_it_has():
    with pytest.raises(FigureInputError, match="no samples for epoch 9; this run has epochs 1-8"):
        images.choose_epochs(range(1, 9), [1, 9])


def test_the_progression_figure_shows_the_chosen_epochs_and_no_others(tmp_path, trained_run):
    run = a_run_folder(tmp_path, trained_run)
    colour = {epoch: np.array([epoch * 8, 40, 200], np.uint8) for epoch in range(1, 31)}
    as_float = lambda c: np.broadcast_to(c / 127.5 - 1, (1, 8, 8, 3)).astype(np.float32)  # noqa: E731
    for epoch in range(1, 31):
        named = {name: as_float(np.array([255, 0, 0])) for name in CycleGAN.sample_names}
        named["fake_B"] = as_float(colour[epoch])
        save_samples(named, run / "samples" / f"epoch_{epoch:03d}")
    draw.draw_runs([run], tmp_path / "figures", draw.Options(), say=lambda line: None)
    picture = pixels(tmp_path / "figures" / "run" / "progression.png")
    block = 128  # 8x8 samples enlarged 16 times, nearest neighbour
    shown = [e for e in colour if np.all(picture == colour[e], axis=-1).sum() >= block * block]
    assert shown == [1, 8, 15, 23, 30]
    assert contains(picture, np.full((block, block, 3), colour[15]))


# ---------------------------------------------------------------- a real run, drawn


@pytest.fixture(scope="module")
def drawn(trained_run, tmp_path_factory):
    figures_dir = tmp_path_factory.mktemp("figures")
    said = []
    skipped = draw.draw_runs([trained_run], figures_dir, draw.Options(), say=said.append)
    assert skipped == []
    return figures_dir / trained_run.name, said


def test_every_figure_is_written_as_png_and_pdf_and_is_not_blank(drawn):
    folder, said = drawn
    for stem in ("losses", "progression", "test_results"):
        assert (folder / f"{stem}.pdf").read_bytes().startswith(b"%PDF")
        assert_not_blank(folder / f"{stem}.png")
        assert Image.open(folder / f"{stem}.png").info["dpi"][0] == pytest.approx(150, abs=0.5)
    # four loss panels and the learning rate, two to a row, at 150 dpi
    assert Image.open(folder / "losses.png").size == (1350, 1380)
    assert len(said) == 1 and said[0].endswith(f"(open {folder / 'index.html'})")


def test_the_progression_shows_the_sample_images_pixel_for_pixel(drawn, trained_run):
    folder, _ = drawn
    with np.load(trained_run / "samples" / "epoch_002.npz") as npz:
        block = images.enlarge(to_uint8(npz["fake_A"][1]), 128 // SIZE)
    assert contains(pixels(folder / "progression.png"), block)


def test_test_results_are_the_exported_generators_translations_at_the_images_size(drawn, trained_run, synthetic_root):
    folder, _ = drawn
    generators = loading.load_generators(trained_run)
    config = runs.load_config(trained_run)
    (image, name), *_ = list(data_lib.test_images(config["data"], "B", 4))
    expected = to_uint8(generators["BtoA"](image))[0]
    assert name.numpy() == b"b_0000.png"
    saved = pixels(folder / "test" / "BtoA" / "b_0000_fake_A.png")
    np.testing.assert_array_equal(saved, expected)
    reconstruction = to_uint8(generators["AtoB"](generators["BtoA"](image)))[0]
    np.testing.assert_array_equal(pixels(folder / "test" / "BtoA" / "b_0000_rec_B.png"), reconstruction)
    assert contains(pixels(folder / "test_results.png"), images.enlarge(expected, 128 // SIZE))
    assert len(list((folder / "test" / "AtoB").glob("*.png"))) == 3 * 4  # every test image: input, translation, reconstruction, truth


def test_a_run_not_exported_yet_is_translated_by_its_latest_checkpoint(trained_run, tmp_path):
    run = a_run_folder(tmp_path, trained_run, keep=("config.yaml", "losses.csv", "samples", "checkpoints"))
    said = []
    draw.draw_runs([run], tmp_path / "figures", draw.Options(), say=said.append)
    assert len(said) == 1, said
    results = json.loads((tmp_path / "figures" / "run" / "test" / "results.json").read_text())
    assert results["step"] == 9
    translated = pixels(tmp_path / "figures" / "run" / "test" / "AtoB" / "a_0001_fake_B.png")
    config = runs.load_config(trained_run)
    image = list(data_lib.test_images(config["data"], "A", 4))[1][0]
    # the checkpoint's weights are the exported ones: the same translation
    np.testing.assert_array_equal(translated, to_uint8(loading.load_generators(trained_run)["AtoB"](image))[0])


class Links(HTMLParser):
    def __init__(self):
        super().__init__()
        self.links = []

    def handle_starttag(self, tag, attrs):
        self.links += [value for key, value in attrs if key in ("href", "src")]


def links(page: Path) -> list[str]:
    parser = Links()
    parser.feed(page.read_text())
    parser.close()
    return parser.links


def test_the_pages_parse_and_every_link_is_a_file_there_by_relative_path(drawn):
    folder, _ = drawn
    for page in (folder / "index.html", folder.parent / "index.html"):
        found = links(page)
        assert found, page
        for link in found:
            assert not link.startswith(("/", "http:", "https:", "file:")), link
            assert (page.parent / link).is_file(), link
    page = (folder / "index.html").read_text()
    assert "finished: step 9, the end of epoch 3 of 3" in page
    assert "model.ngf: 4" in page  # the resolved config
    assert page.count('<td class="image">') == 2 * 3 * 4  # every test image once, both directions, with its truth
    assert "<th>ground truth</th>" in page


def test_metrics_appear_on_the_pages_once_an_evaluation_exists(trained_run, tmp_path):
    run = a_run_folder(tmp_path, trained_run, keep=("config.yaml", "losses.csv", "samples", "export"))
    (run / "eval").mkdir()
    row = {"metric": "MAE", "direction": "AtoB", "value": 0.1234, "std": 0.01, "baseline": {"name": "identity (input itself)", "value": 0.2},
           "paper": None, "definition": "mean absolute error against the truth"}
    (run / "eval" / "metrics.json").write_text(
        json.dumps({"run": str(run), "step": 9, "epoch": 3, "replication": "0", "evaluated_at": "now", "rows": [row]})
    )
    (run / "eval.csv").write_text("step,epoch,MAE_AtoB,MAE_BtoA\n3,1,0.3,0.4\n6,2,0.2,0.3\n9,3,0.1234,0.25\n")
    draw.draw_runs([run], tmp_path / "figures", draw.Options(), say=lambda line: None)
    page = (tmp_path / "figures" / "run" / "index.html").read_text()
    assert "<td>MAE</td><td>A→B</td><td>0.1234</td>" in page and "mean absolute error" in page
    assert "with the weights of step 9, the end of epoch 3 of 3" in page
    index = runs_table(tmp_path / "figures" / "index.html")
    assert index.cell("run", "MAE A→B") == "0.1234" and index.cell("run", "numbers from") == "eval/metrics.json step 9"
    # eval.csv in its own figure: a panel per metric, one curve per direction, a point per evaluation
    fig = losses.draw_evaluation(losses.read_log(run / "eval.csv"), "t")
    (panel,) = [ax for ax in fig.axes if ax.get_title() == "evaluation on the test set: MAE"]
    assert [line.get_label() for line in panel.lines if not line.get_label().startswith("_")] == ["MAE (A→B)", "MAE (B→A)"]
    np.testing.assert_array_equal(panel.lines[0].get_ydata(), [0.3, 0.2, 0.1234])
    # once evaluated, each metric's baseline is a dashed line in its direction's colour
    baselines = losses.baselines_of(json.loads((run / "eval" / "metrics.json").read_text())["rows"])
    assert baselines == {("MAE", "AtoB"): ("identity (input itself)", 0.2)}
    fig = losses.draw_evaluation(losses.read_log(run / "eval.csv"), "t", baselines=baselines)
    (panel,) = [ax for ax in fig.axes if ax.get_title() == "evaluation on the test set: MAE"]
    labels = [line.get_label() for line in panel.lines if not line.get_label().startswith("_")]
    assert labels == ["MAE (A→B)", "MAE (B→A)"]
    (dashed,) = [line for line in panel.lines if line.get_linestyle() == "--"]
    assert list(dashed.get_ydata()) == [0.2, 0.2] and dashed.get_color() == panel.lines[0].get_color()
    # named at its right end, in its colour
    assert [(t.get_text(), t.get_color()) for t in panel.texts] == [("identity A→B 0.2", dashed.get_color())]
    # a new evaluation redraws the evaluation figure (its baselines may have changed)
    drawn_at = (tmp_path / "figures" / "run" / "evaluation.png").stat().st_mtime_ns
    (run / "eval" / "metrics.json").write_text((run / "eval" / "metrics.json").read_text().replace('"value": 0.2}', '"value": 0.3}'))
    draw.draw_runs([run], tmp_path / "figures", draw.Options(), say=lambda line: None)
    assert (tmp_path / "figures" / "run" / "evaluation.png").stat().st_mtime_ns != drawn_at


def test_drawing_again_redraws_only_what_is_out_of_date(trained_run, tmp_path):
    run = a_run_folder(tmp_path, trained_run, keep=("config.yaml", "losses.csv", "samples", "export"))
    figures_dir = tmp_path / "figures"
    draw.draw_runs([run], figures_dir, draw.Options(), say=lambda line: None)
    stems = ("losses", "progression", "test_results")
    drawn_at = {stem: (figures_dir / "run" / f"{stem}.png").stat().st_mtime_ns for stem in stems}
    draw.draw_runs([run], figures_dir, draw.Options(), say=lambda line: None)
    assert {stem: (figures_dir / "run" / f"{stem}.png").stat().st_mtime_ns for stem in stems} == drawn_at
    with (run / "losses.csv").open("a") as f:
        f.write("10,4,0.2,0.3,1.0,0.5,0.2,0.3,1.0,0.5,0.0001,0\n")  # the run trains on
    os.utime(run / "losses.csv", ns=(drawn_at["losses"] + 10**9,) * 2)
    draw.draw_runs([run], figures_dir, draw.Options(), say=lambda line: None)
    redrawn = {stem: (figures_dir / "run" / f"{stem}.png").stat().st_mtime_ns != drawn_at[stem] for stem in stems}
    assert redrawn == {"losses": True, "progression": False, "test_results": False}
    assert "stopped: step 10, 1 of the 3 steps of epoch 4 of 3" in (figures_dir / "run" / "index.html").read_text()  # trained on after its export
    draw.draw_runs([run], figures_dir, draw.Options(smoothing=0.9), say=lambda line: None)  # other options: redrawn
    assert (figures_dir / "run" / "losses.png").stat().st_mtime_ns != drawn_at["losses"]


def test_tensorboard_holds_each_epochs_sample_grid_beside_the_scalars(trained_run):
    tagged = {}
    for path in (trained_run / "tensorboard").glob("events.out.tfevents.*"):
        for event in tf.compat.v1.train.summary_iterator(str(path)):
            for value in event.summary.value:
                tagged.setdefault(value.tag, []).append((event.step, value))
    assert [step for step, _ in tagged["samples"]] == [3, 6, 9]
    assert "loss/G" in tagged
    width, height, png = tf.make_ndarray(tagged["samples"][-1][1].tensor)
    np.testing.assert_array_equal(tf.io.decode_png(png), pixels(trained_run / "samples" / "epoch_003.png"))
    assert int(height) > 6 * SIZE and int(width) > 2 * SIZE  # two sample images, six named rows, enlarged and labelled


# ---------------------------------------------------------------- runs with something missing


@pytest.mark.parametrize(
    "keep, broken, expected",
    [
        (("config.yaml", "samples", "export"), None, {"loss figure": "losses.csv does not exist yet"}),
        (("config.yaml", "samples", "export"), "empty log", {"loss figure": "losses.csv is empty"}),
        (("config.yaml", "losses.csv", "export"), None, {"progression": "no sample images yet"}),
        (("config.yaml", "losses.csv", "samples", "export"), "corrupt npz", {"progression": "epoch_002.npz could not be read"}),
        (("config.yaml", "losses.csv", "samples"), None, {"test results": "no exported generators and no checkpoint yet"}),
    ],
)
def test_a_missing_or_broken_input_is_one_clear_line_and_the_rest_is_drawn(trained_run, tmp_path, keep, broken, expected):
    run = a_run_folder(tmp_path, trained_run, keep=keep)
    if broken == "empty log":
        (run / "losses.csv").write_text("")
    if broken == "corrupt npz":
        (run / "samples" / "epoch_002.npz").write_bytes(b"PK\x03\x04 not a whole zip")
    said = []
    draw.draw_runs([run], tmp_path / "figures", draw.Options(), say=said.append)
    (figure, why), = expected.items()
    problems = [line for line in said if "(open " not in line]
    assert len(problems) == 1 and why in problems[0] and problems[0].startswith(str(run)), said
    stems = {"loss figure": "losses", "progression": "progression", "test results": "test_results"}
    for name, stem in stems.items():
        drawn_anyway = broken == "corrupt npz" or name != figure
        assert (tmp_path / "figures" / "run" / f"{stem}.png").exists() == drawn_anyway, name
    assert (tmp_path / "figures" / "run" / "index.html").exists()


def test_a_folder_that_is_not_a_run_is_named_and_the_others_are_still_drawn(trained_run, tmp_path, capsys):
    stray = tmp_path / "notes"
    stray.mkdir()
    status = main(["figures", str(stray), str(trained_run), "--figures-dir", str(tmp_path / "figures")])
    out = capsys.readouterr().out.splitlines()
    assert status == 1
    assert f"{stray}: skipped: {stray} is not a run folder (no config.yaml)." in out[0]
    assert (tmp_path / "figures" / trained_run.name / "losses.png").exists()


def test_a_bad_option_is_refused_in_one_line(capsys):
    assert main(["figures", "--smoothing", "1.5"]) == 2
    assert capsys.readouterr().err.strip() == "error: --smoothing must be at least 0 and below 1, not 1.5."


# ---------------------------------------------------------------- comparing runs


def test_comparison_sets_each_runs_translation_beside_the_same_inputs(trained_run, tmp_path):
    other = a_run_folder(tmp_path, trained_run, name="other", keep=("config.yaml", "export"))
    paths = draw.draw_comparison([trained_run, other], ["identity on", "identity off"], tmp_path / "figures", count=2)
    assert [p.name for p in paths] == [f"{trained_run.name}-vs-other.png", f"{trained_run.name}-vs-other.pdf"]
    assert_not_blank(paths[0])
    config = runs.load_config(trained_run)
    (image, _), *_ = list(data_lib.test_images(config["data"], "A", 4))
    translated = to_uint8(loading.load_generators(trained_run)["AtoB"](image))[0]
    assert contains(pixels(paths[0]), images.enlarge(translated, 128 // SIZE))


def test_runs_tested_on_other_images_are_not_compared(trained_run, tmp_path):
    other_data = data_lib.write_synthetic(tmp_path / "other_data", seed=1, size=SIZE, n_train=8, n_test=3)
    other = a_run_folder(tmp_path, trained_run, name="other", keep=("config.yaml", "export"))
    config = yaml.safe_load((other / "config.yaml").read_text())
    config["data"]["root"] = str(other_data)
    (other / "config.yaml").write_text(yaml.safe_dump(config))
    with pytest.raises(KitError, match=rf"{other} is tested on other images than {trained_run} \(a_0000.png differs in size or pixels\)"):
        draw.draw_comparison([trained_run, other], None, tmp_path / "figures", count=2)


# ---------------------------------------------------------------- issue 24: smoothing that follows the run


@pytest.mark.parametrize("rows", [640, 50_000])  # the demo's length, and the replication report's
def test_the_default_smoothing_follows_a_known_curve_on_short_and_long_runs(rows):
    # the demo's cycle loss, 0.36 + 3 exp(-t/400) logged every 5 of 3,200 steps; a long run decays as much slower
    steps = np.arange(1, rows + 1) * 5.0
    clean = 0.36 + 3 * np.exp(-steps / (400 * rows / 640))
    after = rows // 20  # the first 5% of the run
    error = np.abs(losses.smoothed(clean) - clean) / clean
    assert error[after:].max() < 0.10
    noise = np.random.default_rng(0).normal(0, 0.2, rows)
    residual = losses.smoothed(clean + noise) - clean
    assert residual[after:].std() < noise.std() / 4  # and it still smooths: the noise at least 4 times smaller


def test_the_weight_follows_the_run_and_keeps_the_reports_at_its_length():
    assert losses.weight_for(640) == pytest.approx(1 - 100 / 640)
    assert losses.weight_for(50_000) == 0.99
    assert losses.weight_for(50) == 0.6  # short runs: TensorBoard's default weight
    # the rule is written under the figure's title
    rule = losses.smoothing_rule(None, 640)
    assert rule.endswith("weight 1 − 100/rows, at least 0.6, at most 0.99: here 0.844 (640 rows)")
    assert losses.smoothing_rule(None, 60).endswith("here 0.6 (60 rows)")
    assert "TensorBoard's moving average, weight 0.99" in losses.smoothing_rule(0.99, 640)


# ---------------------------------------------------------------- issue 24: legible at the README's width


def shown_text(fig) -> list:
    """(text, px tall when the figure is shown at the README's width) of every visible text of `fig`."""
    from matplotlib.text import Text

    from replication.figures.style import shown_px

    fig.draw_without_rendering()
    width = fig.get_figwidth() * fig.dpi
    return [(t.get_text(), shown_px(t.get_fontsize(), width)) for t in fig.findobj(Text) if t.get_visible() and t.get_text().strip()]


def eval_log_of(tmp_path, text):
    (tmp_path / "eval.csv").write_text(text)
    return losses.read_log(tmp_path / "eval.csv")


def test_every_text_of_the_figures_is_as_tall_as_the_readmes(tmp_path):
    path = tmp_path / "losses.csv"
    write_log(path, [(s, 1 + s // 200, 1 / s) for s in range(5, 3205, 5)])
    log = losses.read_log(path)
    evaluation = eval_log_of(tmp_path, "step,epoch,MAE_AtoB,MAE_BtoA,PSNR_AtoB,PSNR_BtoA,SSIM_AtoB,SSIM_BtoA\n"
                             + "".join(f"{200 * e},{e},0.03,0.04,20,21,0.6,0.7\n" for e in range(1, 17)))
    image = np.zeros((64, 64, 3), np.uint8)
    table = images.Table("A→B", [f"a_{i:04d}.png" for i in range(8)], ["input A", "G(A)", "F(G(A))", "ground truth"], [[image] * 4] * 8)
    figures = {
        "losses": losses.draw_losses(log, CycleGAN.loss_panels, "demo: finished: step 3200, the end of epoch 16 of 16", epochs_done=16),
        "evaluation": losses.draw_evaluation(evaluation, "demo", 16, {("SSIM", "AtoB"): ("identity", 0.782), ("SSIM", "BtoA"): ("identity", 0.781)}),
        "test results": images.draw_tables([table, table], "demo: finished: step 3200, the end of epoch 16 of 16: test images"),
    }
    for name, fig in figures.items():
        texts = shown_text(fig)
        assert len(texts) > 10, name
        small = [(text, round(px, 1)) for text, px in texts if px < 16 - 1e-6]
        assert small == [], name


def test_each_baseline_is_named_at_its_right_end_even_two_on_one_value_and_legends_cover_no_curve(tmp_path):
    evaluation = eval_log_of(tmp_path, "step,epoch,SSIM_AtoB,SSIM_BtoA\n200,1,0.50,0.55\n400,2,0.70,0.80\n600,3,0.78,0.79\n")
    fig = losses.draw_evaluation(evaluation, "t", 3, {("SSIM", "AtoB"): ("identity (input itself)", 0.782), ("SSIM", "BtoA"): ("identity", 0.781)})
    from matplotlib.backends.backend_agg import FigureCanvasAgg

    FigureCanvasAgg(fig).draw()
    renderer = fig.canvas.get_renderer()
    (ax,) = fig.axes[:1]
    labels = {t.get_text(): t.get_window_extent(renderer) for t in ax.texts}
    assert set(labels) == {"identity A→B 0.782", "identity B→A 0.781"}
    first, second = labels.values()
    assert not first.overlaps(second)  # both readable
    assert all(box.x0 >= ax.get_window_extent(renderer).x1 for box in labels.values())  # right of the curves
    legend = ax.get_legend().get_window_extent(renderer)
    for line in ax.lines:
        points = ax.transData.transform(np.column_stack([line.get_xdata(), line.get_ydata()]).astype(float))
        assert not any(legend.contains(x, y) for x, y in points), line.get_label()
    assert ax.get_ylabel() == "SSIM"
    fig = losses.draw_evaluation(eval_log_of(tmp_path, "step,epoch,PSNR_AtoB\n200,1,20\n"), "t")
    assert fig.axes[0].get_ylabel() == "PSNR (dB)"


def test_the_sample_grid_of_each_epoch_has_its_rows_and_columns_labelled(tmp_path):
    rng = np.random.default_rng(0)
    batches = {name: rng.uniform(-1, 1, (2, 16, 16, 3)) for name in CycleGAN.sample_names}
    picture = save_samples(batches, tmp_path / "epoch_003", CycleGAN.sample_captions, "epoch 3, step 600")
    np.testing.assert_array_equal(pixels(tmp_path / "epoch_003.png"), picture)
    factor = 128 // 16
    assert contains(picture, images.enlarge(to_uint8(batches["rec_B"][1]), factor))  # every image, pixel for pixel
    first = np.argwhere(np.all(picture == images.enlarge(to_uint8(batches["real_A"][0]), factor)[0, 0], axis=-1))[0]
    left, above = picture[:, : first[1] - 2], picture[: first[0] - 2]
    assert (left < 128).any() and (above < 128).any()  # dark text left of the rows and above the columns
    with np.load(tmp_path / "epoch_003.npz") as npz:  # the raw outputs beside it, unchanged
        np.testing.assert_array_equal(npz["fake_B"], batches["fake_B"].astype(np.float32))


# ---------------------------------------------------------------- issue 24: the truth beside the translation


def test_test_results_show_each_images_ground_truth(drawn, synthetic_root):
    folder, _ = drawn
    truth = pixels(synthetic_root / "testA_truth" / "a_0001.png")
    np.testing.assert_array_equal(pixels(folder / "test" / "AtoB" / "a_0001_truth.png"), truth)
    np.testing.assert_array_equal(pixels(folder / "test" / "BtoA" / "b_0002_truth.png"), pixels(synthetic_root / "testB_truth" / "b_0002.png"))
    assert contains(pixels(folder / "test_results.png"), images.enlarge(truth, 128 // SIZE))


def test_the_comparison_shows_the_truth_and_names_runs_epochs_and_data(trained_run, synthetic_root, tmp_path):
    other = a_run_folder(tmp_path, trained_run, name="other", keep=("config.yaml", "export"))
    captured = {}
    real_draw = images.draw_tables

    def keep(tables_, title):
        captured["title"], captured["columns"] = title, [t.column_labels for t in tables_]
        return real_draw(tables_, title)

    images.draw_tables = keep
    try:
        paths = draw.draw_comparison([trained_run, other], ["CycleGAN", "again"], tmp_path / "figures", count=2)
    finally:
        images.draw_tables = real_draw
    assert captured["columns"] == [["input A", "CycleGAN", "again", "ground truth"], ["input B", "CycleGAN", "again", "ground truth"]]
    assert captured["title"] == (
        f"The same test images translated by each run: CycleGAN ({trained_run.name}, epoch 3, step 9), "
        f"again (other, epoch 3, step 9); synthetic data ({synthetic_root})"
    )
    truth = pixels(synthetic_root / "testB_truth" / "b_0001.png")
    assert contains(pixels(paths[0]), images.enlarge(truth, 128 // SIZE))


# ---------------------------------------------------------------- issue 24: the results pages


def test_a_run_page_shows_each_test_image_once_and_links_only_inside_its_folder(drawn, tmp_path):
    folder, _ = drawn
    page = (folder / "index.html").read_text()
    shown = re.findall(r'<img [^>]*src="(test/[^"]+)"', page)
    assert len(shown) == len(set(shown)) == 2 * 3 * 4  # each test image once, with its translation, reconstruction, truth
    assert 'src="test_results.png"' not in page
    # a fresh clone holds figures/demo/ but not figures/index.html (ignored by git): the page alone must hold up
    clone = tmp_path / "clone" / "figures" / folder.name
    shutil.copytree(folder, clone)
    inside, out = [link for link in links(clone / "index.html") if link != "../index.html"], "../index.html"
    for link in inside:
        assert (clone / link).is_file(), link
    assert f'<a href="{out}">the all-runs page</a>' in page  # the one link out: FIGURES_DIR/index.html, where it is drawn
    summary = json.loads((folder / "summary.json").read_text())
    assert f"<code>{summary['run']}</code>" in page and summary["run"].endswith(folder.name)
    assert f"drawn {summary['drawn_at']}" in page and summary["drawn_at"].endswith("+00:00")


def test_the_config_shows_the_keys_the_run_used_and_folds_the_rest(drawn):
    folder, _ = drawn
    page = (folder / "index.html").read_text()
    used, folded = page.split("<details>")
    assert "model.ngf: 4" in used and "model.generator: &quot;resnet&quot;" in used and "model.n_blocks: 1" in used
    for moot in ("loss.lambda_L1: 100.0", "model.num_downs:", "data.name:"):  # a CycleGAN ResNet on the synthetic set
        assert moot not in used and moot in folded, moot


def test_the_metrics_table_leaves_out_empty_columns_and_holds_one_number_per_cell():
    rows = [{"metric": "MAE", "direction": "AtoB", "value": 0.0275, "std": None, "baseline": {"name": "identity (input itself)", "value": 0.0332},
             "paper": None, "definition": "mean absolute error"}]
    table = page_lib.metrics_table(rows)
    assert "<th>metric</th><th>direction</th><th>value</th><th>identity (input itself)</th><th>definition</th>" in table
    assert "<td>0.0275</td><td>0.0332</td>" in table
    rows[0]["std"], rows[0]["paper"] = 0.01, {"CycleGAN": 0.58, "pix2pix": None}
    assert "<th>± std</th>" in page_lib.metrics_table(rows) and "<th>paper, CycleGAN</th>" in page_lib.metrics_table(rows)
    assert "paper, pix2pix" not in page_lib.metrics_table(rows)


def test_two_runs_of_one_folder_name_are_refused_in_one_line(trained_run, tmp_path, capsys):
    (tmp_path / "a").mkdir()
    (tmp_path / "b").mkdir()
    first, second = a_run_folder(tmp_path / "a", trained_run, name="r1"), a_run_folder(tmp_path / "b", trained_run, name="r1")
    assert main(["figures", str(first), str(second), "--figures-dir", str(tmp_path / "figures")]) == 2
    err = capsys.readouterr().err.strip()
    assert err == (f"error: {first} and {second} would both be drawn into {tmp_path / 'figures' / 'r1'}/; draw them with separate "
                   f"--figures-dir folders (replication figures {second} --figures-dir figures-2), or rename one run folder.")
    assert not (tmp_path / "figures" / "r1").exists()
    # one at a time: the second is refused too, and the first run's figures stay its own
    draw.draw_runs([first], tmp_path / "figures", draw.Options(), say=lambda line: None)
    said = []
    assert draw.draw_runs([second], tmp_path / "figures", draw.Options(), say=said.append) == [second]
    assert said == [f"{second}: skipped: {tmp_path / 'figures' / 'r1'}/ holds the figures of {first}; draw {second} with another "
                    "--figures-dir, or rename one run folder."]
    assert json.loads((tmp_path / "figures" / "r1" / "summary.json").read_text())["run"] == str(first)


def test_how_far_a_run_is_reads_the_same_in_its_figures_and_on_both_pages(trained_run, tmp_path):
    run = a_run_folder(tmp_path, trained_run, keep=("config.yaml", "samples"))
    for stale in ("epoch_003.npz", "epoch_003.png"):
        (run / "samples" / stale).unlink()  # epoch 3 of 3 under way: 2 done
    write_log(run / "losses.csv", [(s, 1 + (s - 1) // 3, 1.0) for s in range(1, 9)])  # its log is in epoch 3
    draw.draw_runs([run], tmp_path / "figures", draw.Options(), say=lambda line: None)
    words = "stopped: step 8, 2 of the 3 steps of epoch 3 of 3"
    assert words in (tmp_path / "figures" / "run" / "index.html").read_text()
    assert runs_table(tmp_path / "figures" / "index.html").cell("run", "state") == words
    config = runs.load_config(run)
    figures = draw.RunFigures(run, tmp_path / "figures", draw.Options(), say=lambda line: None)
    assert figures.title() == f"{config['name']} (run run): {words}"


# ---------------------------------------------------------------- issue 24: the paper's tables


def fabricated_run(tmp_path, trained_run, name, rows, epoch=200, **changes) -> Path:
    """A run folder holding a config (with `changes`, section.key: value) and an eval/metrics.json of `rows`."""
    run = a_run_folder(tmp_path, trained_run, name=name)
    config = yaml.safe_load((run / "config.yaml").read_text())
    for key, value in changes.items():
        section, _, field = key.partition("__")
        config[section][field] = value
    (run / "config.yaml").write_text(yaml.safe_dump(config))
    (run / "eval").mkdir()
    (run / "eval" / "metrics.json").write_text(json.dumps({"step": 1000, "epoch": epoch, "rows": rows}))
    return run


def fcn(direction, values, **extra):
    return [{"metric": m, "direction": direction, "value": v, **extra} for m, v in zip(tables.FCN, values)]


def test_the_paper_tables_page_sets_each_runs_numbers_beside_the_papers(trained_run, tmp_path):
    full = fabricated_run(tmp_path, trained_run, "cityscapes", fcn("AtoB", [0.61, 0.2, 0.15]) + fcn("BtoA", [0.5, 0.16, 0.1], ignored=0.12),
                          data__crop_size=128, data__load_size=143)
    alone = fabricated_run(tmp_path, trained_run, "abl_gan_alone", fcn("AtoB", [0.4, 0.1, 0.05]), epoch=50, loss__cycle="none", data__crop_size=128, data__load_size=143)
    synthetic = fabricated_run(tmp_path, trained_run, "demo", [
        {"metric": "MAE", "direction": "AtoB", "value": 0.0275, "baseline": {"name": "identity (input itself)", "value": 0.0332}}])
    draw.draw_runs([full, alone, synthetic], tmp_path / "figures", draw.Options(), say=lambda line: None)
    page = (tmp_path / "figures" / "tables.html").read_text()
    assert 'href="tables.html"' in (tmp_path / "figures" / "index.html").read_text()
    assert "href=\"index.html\"" in page
    sections = dict(zip(["head", *tables.TITLES.values(), "truth"], re.split(r"<h2>[^<]*</h2>", page)))
    table3 = sections["Table 3: classification scores, Cityscapes photo→labels"]
    assert "<td>paper <b>0.58</b><br><b>0.61</b> cityscapes (epoch 200 of 3, 128 px)</td>" in table3  # CycleGAN, per-pixel
    assert "<td>paper <b>0.85</b><br><span class=\"note\">not run: make pix2pix-cityscapes</span></td>" in table3
    table2 = sections["Table 2: FCN scores, Cityscapes labels→photo"]
    assert "<b>0.5</b> cityscapes (epoch 200 of 3, 128 px, ignored 0.12)" in table2
    table5 = sections["Table 5: ablations, photo→labels"]
    assert "<td>paper <b>0.53</b><br><b>0.4</b> abl_gan_alone (epoch 50 of 3, 128 px)</td>" in table5
    assert "<td>paper <b>0.10</b><br><span class=\"note\">not run: make cityscapes-ablations</span></td>" in table5
    assert "abl_gan_alone" not in sections["Table 4: ablations, labels→photo"]  # it measured only photo→labels
    truth = sections["truth"]
    assert f"<td>demo (epoch 200 of 3, {SIZE} px), synthetic data" in truth and "<td>0.0275</td>" in truth
    assert "identity (the input itself)" in truth and "<td>0.0332</td>" in truth


def test_each_experiment_is_named_as_the_paper_names_it_and_its_page_sets_aside_the_keys_its_model_does_not_read():
    from replication import config as config_lib
    from replication.figures import page

    variants = {name: tables.variant(config_lib.resolve(name)) for name in (
        "demo", "monet2photo_no_identity", "cityscapes_ablation_cycle_alone", "cityscapes_ablation_gan_alone",
        "cityscapes_ablation_gan_forward", "cityscapes_ablation_gan_backward", "pix2pix_facades")}
    assert variants == {"demo": "CycleGAN", "monet2photo_no_identity": "CycleGAN", "cityscapes_ablation_cycle_alone": "cycle alone",
                        "cityscapes_ablation_gan_alone": "GAN alone", "cityscapes_ablation_gan_forward": "GAN + forward cycle",
                        "cityscapes_ablation_gan_backward": "GAN + backward cycle", "pix2pix_facades": "pix2pix"}
    loss_keys = lambda name: sorted(k for k in page.config_keys(config_lib.resolve(name))[1] if k.startswith(("loss.", "train.")))  # noqa: E731
    assert loss_keys("demo") == ["loss.lambda_L1", "train.max_steps_per_epoch"]
    assert loss_keys("pix2pix_facades") == ["loss.cycle", "loss.gan", "loss.lambda_cycle", "loss.lambda_identity",
                                            "train.max_steps_per_epoch", "train.pool_size"]


# ---------------------------------------------------------------- issue 25: full disk, and what a killed `figures` left


def test_a_full_disk_is_one_line_naming_the_file(trained_run, tmp_path, capsys, monkeypatch):
    from replication.figures import style

    def full(path, data):
        raise OSError(errno.ENOSPC, "No space left on device", str(path))

    monkeypatch.setattr(style, "atomic_write_bytes", full)
    assert main(["figures", str(trained_run), "--figures-dir", str(tmp_path / "figures")]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith(f"error: Could not write {tmp_path / 'figures' / trained_run.name}/losses.png: the disk is full. Free some space")
    assert "\n" not in err


def test_what_a_killed_figures_left_half_written_is_removed_by_the_next(trained_run, tmp_path):
    run = a_run_folder(tmp_path, trained_run, keep=("config.yaml", "losses.csv"))
    figures_dir = tmp_path / "figures"
    left = [figures_dir / "run" / ".losses.pdf.7codb7t9", figures_dir / ".index.html.sh5pkdsk",
            figures_dir / "run" / "test" / "AtoB" / ".a_0000_rec_A.png.n519u_m6"]
    for path in left:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(b"half")
    draw.draw_runs([run], figures_dir, draw.Options(), say=lambda line: None)
    assert [path for path in left if path.exists()] == []
    assert (figures_dir / "run" / "losses.pdf").read_bytes().startswith(b"%PDF")


def test_a_test_image_whose_name_is_not_utf8_is_shown_as_its_bytes_and_linked_by_them(tmp_path):
    import os
    from urllib.parse import unquote_to_bytes

    from replication.figures import page

    name = os.fsdecode(b"caf\xe9\xff.png")  # a name Linux allows: not UTF-8
    entry = {"name": name, "size": (64, 64), "images": {"real_A": f"test/AtoB/{name}"}, "thumbnails": {"real_A": f"test/AtoB/{name}"}}
    html = page.test_tables({"directions": {"AtoB": [entry]}}, {"real_A": "input A"})
    (tmp_path / "page.html").write_text(html, encoding="utf-8")  # the page can be written
    assert "caf\\xe9\\xff.png" in html
    href = html.split('href="')[1].split('"')[0]
    assert unquote_to_bytes(href) == b"test/AtoB/caf\xe9\xff.png"  # the link reaches the file's bytes


def test_a_second_figures_on_one_folder_is_refused_with_advice_it_can_follow(tmp_path):
    from replication.errors import RunFolderError

    with draw.figures_folder(tmp_path / "figures"):
        with pytest.raises(RunFolderError, match=r"is in use by figures \(pid \d+.*--figures-dir"):
            with draw.figures_folder(tmp_path / "figures"):
                pass


# ---------------------------------------------------------------- issue 36: smoothing every run, pages that agree, the runs page


@pytest.mark.parametrize("rows", [20, 60, 600, 60_000])
def test_the_default_smoothing_smooths_runs_of_any_length_and_keeps_a_step_where_it_happens(rows):
    jump = rows // 2
    clean = np.where(np.arange(rows) < jump, 1.0, 2.0)  # the loss steps up at row `jump`
    noisy = clean + np.random.default_rng(1).normal(0, 0.3, rows)
    smoothed = losses.smoothed(noisy)
    assert np.abs(np.diff(smoothed)).mean() < np.abs(np.diff(noisy)).mean() / 2.5
    # no lag: the clean step's smoothed curve crosses its middle where the step is, and rises most there
    step = losses.smoothed(clean)
    assert step[jump - 1] < 1.5 < step[jump]
    assert np.argmax(np.diff(step)) == jump - 1
    # the noisy one too, within a time constant of the run's weight
    weight = losses.weight_for(rows)
    crossing = np.flatnonzero(smoothed > 1.5)[0]
    assert abs(crossing - jump) <= max(1, 1 / (1 - weight))
    far = 3 * math.ceil(1 / (1 - weight))  # three time constants away, the two levels are apart
    assert smoothed[: max(1, jump - far)].max() < 1.5 < smoothed[min(rows - 1, jump + far):].min()


def test_a_log_of_sixty_rows_is_drawn_smoothed_and_its_title_says_how(tmp_path):
    steps = np.arange(1, 61) * 5
    noisy = 1 + np.random.default_rng(0).normal(0, 0.3, 60)
    path = tmp_path / "losses.csv"
    write_log(path, [(s, 1 + (s - 1) // 100, v) for s, v in zip(steps, noisy)])
    fig = losses.draw_losses(losses.read_log(path), CycleGAN.loss_panels, "t")
    assert "weight 1 − 100/rows, at least 0.6, at most 0.99: here 0.6 (60 rows)" in fig._suptitle.get_text().replace("\n", " ")
    faint, solid = [line.get_ydata() for line in fig.axes[0].lines[:2]]
    assert np.abs(np.diff(solid)).mean() < np.abs(np.diff(faint)).mean() / 2.5


def test_steps_are_whole_and_epoch_marks_sit_at_the_epochs_ends(tmp_path):
    write_log(tmp_path / "losses.csv", [(s, 1 + (s - 1) // 8, 1 / s) for s in range(5, 21, 5)])  # a row every 5 steps, 8 steps an epoch
    log = losses.read_log(tmp_path / "losses.csv")
    assert losses.epoch_ends(log, 2, steps_per_epoch=8) == [(1, 8.0), (2, 16.0)]
    fig = losses.draw_losses(log, CycleGAN.loss_panels, "t", epochs_done=2, steps_per_epoch=8)
    fig.draw_without_rendering()
    bottom = fig.axes[-2] if not fig.axes[-1].get_visible() else fig.axes[-1]
    ticks = [t for t in bottom.get_xticks() if 5 <= t <= 20]
    assert ticks and all(float(t).is_integer() for t in ticks), ticks
    marks = sorted({line.get_xdata()[0] for line in fig.axes[0].lines if line.get_linestyle() == ":"})
    assert marks == [8, 16]


def test_where_a_run_stands_reads_alike_in_evaluate_and_on_every_page(tiny_stopped_run, tmp_path):
    from replication import schedule

    assert [schedule.position(s, 8, e) for s, e in ((20, None), (16, None), (16, 16), (0, None))] == [
        "4 of the 8 steps of epoch 3", "the end of epoch 2", "the end of epoch 2 of 16", "no step yet"]
    run = Path(shutil.copytree(tiny_stopped_run, tmp_path / "stopped"))
    weights = loading.load_generators(run)["AtoB"].weights
    assert str(weights).startswith("step 4, 1 of the 3 steps of epoch 2 ")  # what `evaluate` says it scores
    (run / "eval").mkdir()
    (run / "eval" / "metrics.json").write_text(json.dumps({"step": 4, "epoch": 1, "rows": [{"metric": "MAE", "direction": "AtoB", "value": 0.5}]}))
    draw.draw_runs([run], tmp_path / "figures", draw.Options(), say=lambda line: None)
    page = (tmp_path / "figures" / "stopped" / "index.html").read_text()
    assert "stopped (--until-step 4): step 4, 1 of the 3 steps of epoch 2 of 3" in page
    assert "with the weights of step 4, 1 of the 3 steps of epoch 2 of 3" in page
    assert runs_table(tmp_path / "figures" / "index.html").cell("stopped", "state") == "stopped (--until-step 4): step 4, 1 of the 3 steps of epoch 2 of 3"


@pytest.mark.parametrize("recorded, words", [
    (None, "stopped: step 9"),  # a run trained before state.json
    ({"state": "stopped", "step": 9, "how": "Ctrl-C"}, "stopped (Ctrl-C): step 9"),
    ({"state": "stopped", "step": None, "how": "a fault: TrainingDiverged: Loss G=nan at step 9"}, "stopped (a fault: TrainingDiverged: Loss G=nan at step 9): step 9"),
    ({"state": "training", "step": 3}, "stopped (it ended without a word: killed?): step 9"),  # its lock is free
])
def test_a_stopped_run_says_so_and_how(trained_run, tmp_path, recorded, words):
    run = a_run_folder(tmp_path, trained_run, keep=("config.yaml", "losses.csv"))
    if recorded:
        (run / "state.json").write_text(json.dumps(dict(recorded, steps_per_epoch=3)))
    draw.draw_runs([run], tmp_path / "figures", draw.Options(), say=lambda line: None)
    assert f"{words}, the end of epoch 3 of 3" in (tmp_path / "figures" / "run" / "index.html").read_text()
    assert "refresh" not in (tmp_path / "figures" / "index.html").read_text()


def test_a_run_whose_lock_a_live_process_holds_is_training_and_its_pages_reload(trained_run, tmp_path):
    from replication.files import FolderLock

    run = a_run_folder(tmp_path, trained_run, keep=("config.yaml", "losses.csv", "export"))
    with FolderLock(run):
        draw.draw_runs([run], tmp_path / "figures", draw.Options(), say=lambda line: None)
    for page in (tmp_path / "figures" / "run" / "index.html", tmp_path / "figures" / "index.html"):
        assert '<meta http-equiv="refresh" content="60">' in page.read_text()
    assert "training: step 9, the end of epoch 3 of 3" in (tmp_path / "figures" / "run" / "index.html").read_text()
    assert runs_table(tmp_path / "figures" / "index.html").cell("run", "state") == "training: step 9, the end of epoch 3 of 3"
    draw.draw_runs([run], tmp_path / "figures", draw.Options(), say=lambda line: None)  # let go: the export is its last step
    assert "finished: step 9" in (tmp_path / "figures" / "run" / "index.html").read_text()
    assert "refresh" not in (tmp_path / "figures" / "index.html").read_text()


def test_training_records_how_it_stopped_after_a_fault(tmp_path):
    from types import SimpleNamespace

    from replication import training

    def fault(step, until_step):
        raise RuntimeError("the disk is on fire\nsecond line")

    loop = SimpleNamespace(run_folder=runs.RunFolder(tmp_path), steps_per_epoch=3, train_epochs=fault)
    loop.record = lambda *args: training.Loop.record(loop, *args)
    with pytest.raises(RuntimeError):
        training.Loop.run(loop, 4, None)
    recorded = json.loads((tmp_path / "state.json").read_text())
    assert {k: recorded[k] for k in ("state", "step", "how", "steps_per_epoch")} == {
        "state": "stopped", "step": None, "how": "a fault: RuntimeError: the disk is on fire", "steps_per_epoch": 3}


def test_a_run_page_shows_the_latest_numbers_of_eval_csv_before_an_evaluation(trained_run, tmp_path):
    run = a_run_folder(tmp_path, trained_run, keep=("config.yaml", "losses.csv"))
    (run / "eval.csv").write_text("step,epoch,MAE_AtoB,MAE_BtoA\n3,1,0.3,0.4\n6,2,0.2,0.35\n")
    draw.draw_runs([run], tmp_path / "figures", draw.Options(), say=lambda line: None)
    page = (tmp_path / "figures" / "run" / "index.html").read_text()
    assert "No numbers yet" not in page and "No evaluation" not in page
    assert "eval.csv&#x27;s last row (step 6, the end of epoch 2 of 3)" in page
    assert "<td>MAE</td><td>B→A</td><td>0.35</td>" in page
    table = runs_table(tmp_path / "figures" / "index.html")
    assert (table.cell("run", "MAE B→A"), table.cell("run", "numbers from")) == ("0.35", "eval.csv step 6")


class RunsTable(HTMLParser):
    """figures/index.html: the runs table's heads, and each row's cells (text, images, links), and the page's scripts."""

    def __init__(self):
        super().__init__()
        self.heads, self.rows, self.scripts, self.cell_ = [], [], [], None

    def handle_starttag(self, tag, attrs):
        attrs = dict(attrs)
        if tag == "th":
            self.heads.append("")
        elif tag == "tr" and self.heads:
            self.rows.append([])
        elif tag == "td":
            self.cell_ = {"text": "", "images": [], "links": [], "svg": 0}
            self.rows[-1].append(self.cell_)
        elif tag == "img":
            self.cell_["images"].append(attrs["src"])
        elif tag == "a" and self.cell_ is not None:
            self.cell_["links"].append(attrs["href"])
        elif tag == "svg":
            self.cell_["svg"] += 1
        elif tag == "script":
            self.scripts.append("")

    def handle_endtag(self, tag):
        if tag in ("td", "tr"):
            self.cell_ = None

    def handle_data(self, data):
        if self.scripts and self.lasttag == "script":
            self.scripts[-1] += data
        elif self.cell_ is not None and self.lasttag not in ("title",):
            self.cell_["text"] += data
        elif self.lasttag == "th" and self.heads and not self.rows:
            self.heads[-1] += data

    def row(self, run: str) -> dict:
        (found,) = [row for row in self.rows if row[0]["links"] == [f"{run}/index.html"]]
        return dict(zip(self.heads, found))

    def cell(self, run: str, head: str) -> str:
        return self.row(run)[head]["text"].strip()


def runs_table(path: Path) -> RunsTable:
    table = RunsTable()
    table.feed(path.read_text())
    table.close()
    return table


def test_the_runs_page_has_a_row_per_run_and_a_column_per_metric_and_shows_translations_and_losses(drawn, trained_run, tmp_path):
    figures_dir = tmp_path / "figures"
    scored = a_run_folder(tmp_path, trained_run, name="scored", keep=("config.yaml", "losses.csv", "export", "checkpoints"))
    (scored / "eval.csv").write_text("step,epoch,MAE_AtoB,PSNR_BtoA\n9,3,0.2,21.5\n")
    bare = a_run_folder(tmp_path, trained_run, name="bare", keep=("config.yaml",))
    config = yaml.safe_load((bare / "config.yaml").read_text())
    config["name"] = "not_an_experiment"
    (bare / "config.yaml").write_text(yaml.safe_dump(config))
    draw.draw_runs([scored, bare], figures_dir, draw.Options(), say=lambda line: None)
    table = runs_table(figures_dir / "index.html")
    assert table.heads == ["run, experiment, departures", "state", "latest checkpoint", "test images → translations", "losses (smoothed)",
                           "MAE A→B", "PSNR B→A", "numbers from"]
    assert [row[0]["links"] for row in table.rows] == [["bare/index.html"], ["scored/index.html"]]
    for row in table.rows:
        assert len(row) == len(table.heads)
        for cell in row:
            for target in cell["images"] + cell["links"]:
                assert (figures_dir / unquote(target)).is_file(), target
    scored_row, bare_row = table.row("scored"), table.row("bare")
    # the first 3 test images of each direction, each beside its translation
    assert scored_row["test images → translations"]["images"] == [
        f"scored/test/{d}/{name}_{sample}.png" for d, prefix, (a, b) in (("AtoB", "a", ("real_A", "fake_B")), ("BtoA", "b", ("real_B", "fake_A")))
        for name in (f"{prefix}_000{i}" for i in range(3)) for sample in (a, b)]
    assert scored_row["losses (smoothed)"]["svg"] == 4  # adversarial, cycle, identity, discriminators
    assert [scored_row[h]["text"] for h in ("MAE A→B", "PSNR B→A")] == ["0.2", "21.5"]
    assert [bare_row[h]["text"] for h in ("MAE A→B", "PSNR B→A", "numbers from")] == ["", "", ""]
    assert scored_row["latest checkpoint"]["text"].startswith("ckpt-9 (step 9)saved 20")
    assert bare_row["latest checkpoint"]["text"] == "" and bare_row["test images → translations"]["images"] == []
    departures = scored_row["run, experiment, departures"]["text"]
    assert departures.startswith("scoredexperiment demo") and "data.crop_size: 32" in departures and "model.ngf: 4" in departures
    assert bare_row["run, experiment, departures"]["text"] == "bareexperiment not_an_experimentno such experiment file here"
    assert "sort" in table.scripts[0] and "http" not in table.scripts[0]  # sorting, offline


def test_a_summary_drawn_before_states_still_reads_on_the_runs_page(tmp_path):
    from replication.figures import all_runs

    (tmp_path / "demo").mkdir()
    shutil.copy(Path(__file__).parent.parent / "figures" / "demo" / "summary.json", tmp_path / "demo" / "summary.json")
    old = json.loads((tmp_path / "demo" / "summary.json").read_text())
    if "state" in old:
        pytest.skip("figures/demo was redrawn since: its summary has states")
    all_runs.write_index(tmp_path)
    table = runs_table(tmp_path / "index.html")
    assert table.cell("demo", "state") == "finished: step 3200, 16 of 16 epochs done"
    assert (table.cell("demo", "MAE A→B"), table.cell("demo", "numbers from")) == ("0.02993", "eval/metrics.json step 3200")
