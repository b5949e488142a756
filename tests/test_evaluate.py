"""`evaluate`: a tiny run scored end to end, kept translations, clear refusals, FID weights, quality while training."""

import csv
import errno
import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import keras
import numpy as np
import pytest
import tensorflow as tf
from PIL import Image

from replication import config as config_lib
from replication import data, evaluate, fid, loading, logs, metrics, models, quality, runs, segmentation
from replication.cli import main
from replication.errors import KitError
from replication.files import FolderLock
from replication.pixels import to_unit
from replication.training import train

from helpers import tiny_config

N_TEST = 3  # conftest's synthetic_root


@pytest.fixture(scope="module")
def run_dir(synthetic_root, tmp_path_factory):
    """A finished tiny run that scored itself after every epoch (train.eval_every=1)."""
    return train(tiny_config(synthetic_root, "train.eval_every=1"), run_dir=tmp_path_factory.mktemp("runs") / "tiny")


def feature_network(input_shape=(fid.INCEPTION_SIZE, fid.INCEPTION_SIZE, 3), seed=1):
    """A small stand-in for InceptionV3: pooled features of one strided conv."""
    keras.utils.set_random_seed(seed)
    image = keras.Input(shape=input_shape)
    x = keras.layers.Conv2D(8, 5, strides=4, activation="relu")(image)
    return keras.Model(image, keras.layers.GlobalAveragePooling2D()(x))


@pytest.fixture(scope="module")
def evaluated(run_dir):
    return evaluate.evaluate(run_dir, ["truth", "fid", "dloss"], feature_network=feature_network(), progress=False)


def read(path) -> np.ndarray:
    return np.asarray(Image.open(path).convert("RGB"), np.float64) / 255


def rows_by(result, metric, direction):
    (row,) = [r for r in result["rows"] if r["metric"] == metric and r["direction"] == direction]
    return row


# --------------------------------------------------------------------------- the whole command


def test_progress_bars_are_drawn_only_on_a_terminal(capsys):
    """Into a pipe or a file a redrawn bar would share its line with the next message ('# Evaluation of')."""
    assert list(logs.bar(range(3), 3, "translating AtoB", progress=True)) == [0, 1, 2]
    assert capsys.readouterr().err == ""


def test_metrics_json_and_md_are_written_in_the_interface_schema(run_dir, evaluated):
    saved = json.loads((run_dir / "eval" / "metrics.json").read_text())
    assert saved == evaluated
    assert saved["step"] == 9 and saved["epoch"] == 3  # 3 epochs of 3 steps
    assert {"run", "replication", "evaluated_at"} <= set(saved)
    found = {(r["metric"], r["direction"]) for r in saved["rows"]}
    for direction in ("AtoB", "BtoA"):
        assert {(m, direction) for m in ("MAE", "PSNR", "SSIM", "FID", "KID", "D loss")} <= found
    for row in saved["rows"]:
        assert set(row) == {"metric", "direction", "value", "std", "baseline", "paper", "definition"}
        assert np.isfinite(row["value"]) and row["definition"]
    assert rows_by(saved, "KID", "AtoB")["std"] is not None
    assert rows_by(saved, "MAE", "AtoB")["baseline"]["name"] == "identity (input itself)"
    table = (run_dir / "eval" / "metrics.md").read_text()
    assert "| metric | direction | this run | baseline |\n" in table  # no paper columns: the paper scores Cityscapes only
    assert f"| MAE | AtoB | {rows_by(saved, 'MAE', 'AtoB')['value']:.4g} |" in table


def test_translations_are_kept_as_png_under_the_test_files_names(run_dir, evaluated, synthetic_root):
    for direction, split in (("AtoB", "testA"), ("BtoA", "testB")):
        names = sorted(p.name for p in (synthetic_root / split).iterdir())
        kept = sorted(p.name for p in (run_dir / "eval" / direction).glob("*.png"))
        assert kept == names and len(names) == N_TEST


def test_scores_and_identity_baseline_equal_numpy_on_the_files(run_dir, evaluated, synthetic_root):
    for direction, split in (("AtoB", "testA"), ("BtoA", "testB")):
        names = sorted(p.name for p in (synthetic_root / split).iterdir())
        truths = [read(synthetic_root / f"{split}_truth" / n) for n in names]
        inputs = [read(synthetic_root / split / n) for n in names]
        outputs = [read(run_dir / "eval" / direction / n) for n in names]
        mae = np.mean([np.abs(o - t).mean() for o, t in zip(outputs, truths)])
        identity = np.mean([np.abs(i - t).mean() for i, t in zip(inputs, truths)])
        identity_psnr = np.mean([-10 * np.log10(((i - t) ** 2).mean()) for i, t in zip(inputs, truths)])
        assert rows_by(evaluated, "MAE", direction)["value"] == pytest.approx(mae, rel=1e-9)
        assert rows_by(evaluated, "MAE", direction)["baseline"]["value"] == pytest.approx(identity, rel=1e-9)
        assert rows_by(evaluated, "PSNR", direction)["baseline"]["value"] == pytest.approx(identity_psnr, rel=1e-9)


def test_a_second_call_reuses_the_kept_translations(run_dir, evaluated, monkeypatch):
    calls = []
    load = loading.load_generators

    def counting(path, log=None):
        translators = load(path, log)
        for t in translators.values():
            t.generator = lambda images, training=False, inner=t.generator: calls.append(1) or inner(images, training=training)
        return translators

    monkeypatch.setattr(loading, "load_generators", counting)
    again = evaluate.evaluate(run_dir, groups=["truth"], progress=False)
    assert calls == []
    assert rows_by(again, "MAE", "AtoB")["value"] == rows_by(evaluated, "MAE", "AtoB")["value"]


def test_the_quality_logged_while_training_is_the_evaluation_of_the_same_weights(run_dir, evaluated):
    with (run_dir / "eval.csv").open() as f:
        rows = list(csv.DictReader(f))
    assert list(rows[0]) == ["step", "epoch", "MAE_AtoB", "MAE_BtoA", "PSNR_AtoB", "PSNR_BtoA", "SSIM_AtoB", "SSIM_BtoA"]
    assert [(r["step"], r["epoch"]) for r in rows] == [("3", "1"), ("6", "2"), ("9", "3")]
    last = rows[-1]
    for metric in ("MAE", "PSNR", "SSIM"):
        for direction in ("AtoB", "BtoA"):
            assert float(last[f"{metric}_{direction}"]) == pytest.approx(rows_by(evaluated, metric, direction)["value"], rel=1e-4)


def test_without_truth_training_logs_the_cycle_reconstruction_error(synthetic_root, tmp_path):
    root = tmp_path / "no_truth"
    for split in ("trainA", "trainB", "testA", "testB"):
        shutil.copytree(synthetic_root / split, root / split)
    config = tiny_config(root, "data.source=folder", "train.eval_every=1")
    keras.utils.set_random_seed(0)
    model = models.build(config)
    log = quality.QualityLog(config, runs.RunFolder(tmp_path / "run"), model)
    log.resume_at(0)
    values = log.log(5, 1)
    assert list(values) == ["cycle_MAE_AtoB", "cycle_MAE_BtoA"]
    expected = [_cycle(model, read(root / "testA" / f"a_{i:04d}.png")) for i in range(N_TEST)]
    assert 0 < expected[0] < 1
    # equal up to a pixel level that float rounding may flip (one level of one pixel is 1.4e-6 here)
    assert values["cycle_MAE_AtoB"] == pytest.approx(np.mean(expected), abs=1e-5)
    lines = (tmp_path / "run" / "eval.csv").read_text().splitlines()
    assert lines[0] == "step,epoch,cycle_MAE_AtoB,cycle_MAE_BtoA"

    # A resume keeps the rows up to its step, as losses.csv does: not one the run died writing,
    # nor one logged after the checkpoint it resumes from.
    with (tmp_path / "run" / "eval.csv").open("a") as f:
        f.write("6,1")
    log.resume_at(5)
    assert (tmp_path / "run" / "eval.csv").read_text().splitlines() == lines
    log.resume_at(4)
    assert (tmp_path / "run" / "eval.csv").read_text().splitlines() == lines[:1]


def _cycle(model, a):
    """|F(G(a)) - a| on the [0, 1] scale, the reconstruction rounded to 8 bits as a saved image would be."""
    x = keras.ops.convert_to_numpy(model.F(model.G(a[None] * 2 - 1)))
    return np.abs(np.clip(np.rint((x + 1) * 127.5), 0, 255)[0] / 255 - a).mean()


# --------------------------------------------------------------------------- refusals, one line each


def one_line_error(capsys, *argv) -> str:
    assert main(list(argv)) == 2
    err = capsys.readouterr().err.strip()
    assert "Traceback" not in err
    last = err.splitlines()[-1]  # after what evaluate said it was doing, if anything
    assert last.startswith("error: ")
    return last


def test_a_run_without_generators_is_refused(tmp_path, capsys, synthetic_root):
    run = runs.RunFolder(tmp_path / "empty")
    run.prepare(tiny_config(synthetic_root))
    assert "no exported generators and no checkpoint yet" in one_line_error(capsys, "evaluate", str(run.path))
    assert "not a run folder" in one_line_error(capsys, "evaluate", str(tmp_path / "nothing"))


def test_a_missing_test_split_is_refused(run_dir, synthetic_root, tmp_path, capsys):
    broken = tmp_path / "broken"
    shutil.copytree(synthetic_root, broken)
    shutil.rmtree(broken / "testB")
    copy = tmp_path / "run"
    shutil.copytree(run_dir, copy)
    config = runs.load_config(copy)
    config["data"]["root"] = str(broken)
    (copy / "config.yaml").write_text(__import__("yaml").safe_dump(config))
    assert "lacks testB/" in one_line_error(capsys, "evaluate", str(copy), "--metrics", "truth")


def test_a_metric_the_data_does_not_allow_says_what_it_needs(run_dir, capsys):
    err = one_line_error(capsys, "evaluate", str(run_dir), "--metrics", "cityscapes")
    assert "needs the Cityscapes photos and label maps" in err
    assert "choose from truth, cityscapes, fid, dloss" in one_line_error(capsys, "evaluate", str(run_dir), "--metrics", "psnr")


def test_truth_metrics_on_data_without_truth_name_the_folder_they_need(synthetic_root, tmp_path, capsys):
    root = tmp_path / "no_truth"
    for split in ("trainA", "trainB", "testA", "testB"):
        shutil.copytree(synthetic_root / split, root / split)
    config = tiny_config(root, "data.source=folder")
    with pytest.raises(evaluate.MetricNotAvailable, match="testA_truth"):
        evaluate.check_groups(config["data"], ["truth"])
    assert evaluate.available_groups(config["data"]) == ["fid", "dloss"]


# --------------------------------------------------------------------------- unfinished, training, replaced runs


@pytest.fixture
def stopped_copy(tiny_stopped_run, tmp_path):
    """A copy of the tiny run stopped at step 4 (1 of the 3 steps of epoch 2): ckpt-3 and ckpt-4, no export."""
    return Path(shutil.copytree(tiny_stopped_run, tmp_path / "stopped"))


def d_loss_at(checkpoint, config, translations: dict) -> float:
    """D_Y's loss on the real test B images and the A->B translations, D_Y restored from `checkpoint`."""
    model = models.build(config)
    tf.train.Checkpoint(D_Y=model.D_Y).restore(str(checkpoint)).expect_partial()
    real = [evaluate.adversarial(model.D_Y, image, True, "lsgan") for image, _ in data.test_images(config["data"], "B", 1)]
    fake = [evaluate.adversarial(model.D_Y, to_unit(x[None]), False, "lsgan") for x in translations.values()]
    return 0.5 * (np.mean(real) + np.mean(fake))


def test_a_stopped_run_is_scored_from_its_newest_checkpoint_and_says_which(stopped_copy, capsys, monkeypatch):
    monkeypatch.setattr(sys.stderr, "isatty", lambda: True)  # a terminal, where the progress bars are drawn
    assert main(["evaluate", str(stopped_copy), "--metrics", "truth", "dloss"]) == 0
    out, err = capsys.readouterr()
    saved = json.loads((stopped_copy / "eval" / "metrics.json").read_text())
    ckpt = stopped_copy / "checkpoints" / "ckpt-4"
    assert (saved["step"], saved["epoch"]) == (4, 1)
    assert saved["weights"] | {"described": None} == {"source": "checkpoint", "path": str(ckpt), "step": 4, "epoch": 1, "described": None}
    described = f"step 4, 1 of the 3 steps of epoch 2 (checkpoint ckpt-4, {ckpt})"
    assert f"Scored: {described};" in (stopped_copy / "eval" / "metrics.md").read_text()
    assert f"evaluating {stopped_copy}: {described}" in err
    assert "translating AtoB" in err and "truth AtoB" in err and "D loss AtoB" in err  # progress bars
    assert out.strip().splitlines()[-1].startswith(f"written: {stopped_copy}/eval/metrics.json, {stopped_copy}/eval/metrics.md")
    # the discriminator losses come from the generators' checkpoint
    config = runs.load_config(stopped_copy)
    translations = {p.name: evaluate.read_png(p) for p in sorted((stopped_copy / "eval" / "AtoB").glob("*.png"))}
    assert rows_by(saved, "D loss", "AtoB")["value"] == pytest.approx(d_loss_at(ckpt, config, translations), rel=1e-6)


def test_a_test_image_that_runs_out_of_memory_even_in_the_smallest_tiles_ends_in_one_line(stopped_copy, capsys, monkeypatch):
    """evaluate translates through translate's rule (tests/test_translate.py holds the retries); an
    injected failure, as a real one cannot be provoked reliably without a crash."""
    def out_of_memory(self, images):
        raise tf.errors.AbortedError(None, None, "could not create a primitive")

    monkeypatch.setattr(loading.Translator, "__call__", out_of_memory)
    first = sorted(data.test_set(runs.load_config(stopped_copy)["data"], "A").names)[0]
    last = one_line_error(capsys, "evaluate", str(stopped_copy), "--metrics", "truth")
    assert last.startswith(f"error: {first}: 32x32 pixels ran out of memory (oneDNN could not create a primitive) "
                           "even in tiles of 32x32, the smallest: it needs about ")


def test_a_damaged_newest_checkpoint_is_skipped_and_left_where_it_is(stopped_copy, capsys):
    data_file = next((stopped_copy / "checkpoints").glob("ckpt-4.data-*"))
    data_file.write_bytes(data_file.read_bytes()[:100])
    before = sorted(p.name for p in (stopped_copy / "checkpoints").iterdir())
    result = evaluate.evaluate(stopped_copy, ["truth"], progress=False)
    assert result["weights"]["path"] == str(stopped_copy / "checkpoints" / "ckpt-3") and (result["step"], result["epoch"]) == (3, 1)
    assert "damaged checkpoint" in capsys.readouterr().err
    assert sorted(p.name for p in (stopped_copy / "checkpoints").iterdir()) == before  # the run is only read


def test_a_run_in_training_is_scored_from_one_whole_checkpoint_without_disturbing_it(tiny_synthetic_root, tmp_path):
    config = tiny_config(tiny_synthetic_root, "train.eval_every=1")  # 3 epochs of 3 steps
    config.pop("name")  # an experiment file takes its name from the file
    config_lib.save(config, tmp_path / "tiny.yaml")
    run = tmp_path / "run"
    with (tmp_path / "train.log").open("w") as log:
        training = subprocess.Popen([sys.executable, "-m", "replication", "train", str(tmp_path / "tiny.yaml"), "--run-dir", str(run),
                                     "--until-step", "9"],  # the whole run, without the export's cost
                                    cwd=Path(__file__).parents[1], stdout=log, stderr=subprocess.STDOUT)
    results = []
    try:
        while training.poll() is None and not list((run / "checkpoints").glob("ckpt-*.index")):
            time.sleep(0.1)
        training.send_signal(signal.SIGSTOP)  # paused wherever it is, a save half done included: surely in training
        try:
            results.append(evaluate.evaluate(run, ["truth"], progress=False))
        finally:
            training.send_signal(signal.SIGCONT)
        while training.poll() is None:
            results.append(evaluate.evaluate(run, ["truth"], progress=False))
    finally:
        assert training.wait(timeout=600) == 0, (tmp_path / "train.log").read_text()[-3000:]
    during = [r for r in results if r["weights"]["source"] == "checkpoint"]
    assert during, "no evaluation overlapped the training"
    with (run / "eval.csv").open() as f:
        logged = {int(r["step"]): r for r in csv.DictReader(f)}
    for result in during:  # the weights of one checkpoint: what the training itself measured at that step
        assert result["step"] in logged and result["epoch"] == result["step"] // 3
        for direction in ("AtoB", "BtoA"):
            assert rows_by(result, "MAE", direction)["value"] == pytest.approx(float(logged[result["step"]][f"MAE_{direction}"]), rel=1e-4)
    assert "stopped at step 9" in (run / "run.log").read_text()
    assert not (run / "checkpoints" / "damaged").exists()


def test_a_run_replaced_while_it_is_evaluated_gets_nothing_of_the_old_one(stopped_copy, monkeypatch, capsys):
    load = loading.load_generators

    def then_train_fresh(path, log=None):
        translators = load(path, log)
        run = runs.RunFolder(path)
        config = runs.load_config(path)
        run.move_aside()  # as `train --fresh` does, then starts the new run
        run.prepare(config)
        return translators

    monkeypatch.setattr(loading, "load_generators", then_train_fresh)
    err = one_line_error(capsys, "evaluate", str(stopped_copy), "--metrics", "truth")
    assert f"{stopped_copy} is no longer the run being evaluated" in err
    assert not (stopped_copy / "eval").exists()


@pytest.mark.parametrize("number, problem, advice", [
    (errno.ENOSPC, "the disk is full", "Free some space"), (errno.EROFS, "the file system is read-only", "Make it writable"),
])
def test_a_full_disk_or_read_only_folder_ends_in_one_line_naming_the_file(stopped_copy, monkeypatch, capsys, number, problem, advice):
    def cannot_write(array, path):
        raise OSError(number, os.strerror(number), str(path))

    monkeypatch.setattr(evaluate, "save_png", cannot_write)
    err = one_line_error(capsys, "evaluate", str(stopped_copy), "--metrics", "truth")
    assert err == (f"error: Could not write {stopped_copy}/eval/AtoB/a_0000.png: {problem}. {advice} and evaluate again; "
                   f"the run itself is untouched (evaluate writes only under {stopped_copy}/eval).")


def test_what_a_killed_evaluate_left_is_removed_and_two_at_once_are_refused(stopped_copy, capsys):
    left = [stopped_copy / "eval" / ".metrics.md.l9kawonf", stopped_copy / "eval" / "AtoB" / ".a_0000.png.n519u_m6"]
    for path in left:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(b"half")
    with FolderLock(stopped_copy / "eval", "evaluate"):
        err = one_line_error(capsys, "evaluate", str(stopped_copy), "--metrics", "truth")
        assert f"{stopped_copy}/eval is in use by evaluate (pid {os.getpid()}" in err
        assert err.endswith("Wait for it to finish or stop it, then evaluate again.")
    evaluate.evaluate(stopped_copy, ["truth"], progress=False)
    assert not any(path.exists() for path in left)
    assert "removed" in capsys.readouterr().err


def test_a_manifest_of_the_wrong_shape_ends_in_one_line(run_dir, tmp_path, capsys):
    copy = Path(shutil.copytree(run_dir, tmp_path / "run"))
    (copy / "export" / "manifest.json").write_text('{"generators": {"AtoB": 5}}')
    assert one_line_error(capsys, "evaluate", str(copy)).startswith(f"error: damaged manifest {copy}/export/manifest.json (")


# --------------------------------------------------------------------------- FID weights


def test_the_weights_file_reaches_the_feature_network(tmp_path):
    reference = feature_network(seed=7)
    path = tmp_path / "standin.weights.h5"
    reference.save_weights(path)

    def builder(include_top, pooling, weights, input_shape):
        assert (include_top, pooling, input_shape) == (False, "avg", (299, 299, 3))
        model = feature_network(input_shape, seed=0)
        model.load_weights(weights)
        return model

    network = fid.inception_network(fid.inception_weights(path), builder)
    images = [np.full((20, 24, 3), 40 * i, np.uint8) for i in range(3)]
    np.testing.assert_allclose(fid.image_features(images, network), fid.image_features(images, reference), rtol=1e-6)
    assert fid.image_features(images, network).shape == (3, 8)


def test_offline_without_weights_the_message_names_the_file_and_where_it_goes(tmp_path):
    def offline(*args, **kwargs):
        raise Exception("URL fetch failure on https://storage.googleapis.com/...: None -- [Errno -3] Temporary failure in name resolution")

    with pytest.raises(KitError) as err:
        fid.inception_weights(None, fetch=offline)
    message = str(err.value)
    assert "inception_v3_weights_tf_dim_ordering_tf_kernels_notop.h5" in message
    assert "~/.keras/models/" in message and "--inception-weights" in message and "\n" not in message
    with pytest.raises(KitError, match="no such file"):
        fid.inception_weights(tmp_path / "missing.h5")


def test_by_default_fid_and_kid_need_a_large_enough_test_set_and_never_download(run_dir, monkeypatch, tmp_path):
    fetched = []
    monkeypatch.setattr(keras.utils, "get_file", lambda *args, **kwargs: fetched.append(args) or 1 / 0)
    monkeypatch.setenv("KERAS_HOME", str(tmp_path / "keras"))  # no cached weights
    monkeypatch.setattr(evaluate, "available_groups", lambda data_cfg: ["fid"])  # the other metrics' work left out
    (note,) = evaluate.evaluate(run_dir, progress=False)["notes"]
    assert note.startswith("FID and KID left out: the test sets have AtoB 3, BtoA 3 images per side")
    assert note.endswith("Ask for both with `--metrics fid`.")
    monkeypatch.setattr(fid, "KID_MIN_IMAGES", 3)  # as if the test set were large enough for KID
    result = evaluate.evaluate(run_dir, progress=False)
    assert any("downloads nothing unless asked" in n for n in result["notes"])
    assert not [r for r in result["rows"] if r["metric"] in ("FID", "KID")] and fetched == []
    with_weights = evaluate.evaluate(run_dir, feature_network=feature_network(), progress=False)
    assert [r["metric"] for r in with_weights["rows"] if r["metric"] in ("FID", "KID")] == ["KID", "KID"]
    assert any(n.startswith("FID left out") for n in with_weights["notes"])
    monkeypatch.setattr(fid, "FID_MIN_IMAGES", 3)
    both = evaluate.evaluate(run_dir, feature_network=feature_network(), progress=False)
    assert [r["metric"] for r in both["rows"] if r["metric"] in ("FID", "KID")] == ["FID", "KID", "FID", "KID"]
    assert fetched == []
    with pytest.raises(evaluate.MetricNotAvailable, match="could not be downloaded"):
        evaluate.evaluate(run_dir, groups=["fid"], progress=False)  # asked for: Keras' download is tried
    assert len(fetched) == 1


# --------------------------------------------------------------------------- Cityscapes


def write_cityscapes_like(root: Path, n_train=6, n_test=2, size=32):
    """Label maps of palette-coloured blocks and void (black); 'photos' paint each class with its own dimmed, noisy colour."""
    rng = np.random.default_rng(0)
    for phase, count in (("train", n_train), ("test", n_test)):
        (root / f"{phase}A").mkdir(parents=True)
        (root / f"{phase}B").mkdir(parents=True)
        for i in range(count):
            classes = rng.choice([0, 2, 8, 10, 13, metrics.IGNORED], size=(4, 4)).repeat(size // 4, 0).repeat(size // 4, 1)
            labels = np.where(classes[..., None] >= 0, metrics.PALETTE[classes], 0).astype(np.uint8)
            photo = np.clip(255 - labels * 0.8 + rng.normal(0, 4, labels.shape), 0, 255).astype(np.uint8)
            Image.fromarray(labels).save(root / f"{phase}B" / f"{i:03d}.png")
            Image.fromarray(photo).save(root / f"{phase}A" / f"{i:03d}.png")
    return root


def test_cityscapes_photo_to_labels_scores_perfect_translations_one(tmp_path):
    root = write_cityscapes_like(tmp_path / "cityscapes")
    config = tiny_config(root, "data.source=cityscapes")
    labels = {p.name: np.asarray(Image.open(p)) for p in sorted((root / "testB").iterdir())}
    rows, notes, ignored = segmentation.cityscapes_rows({"AtoB": labels, "BtoA": {}}, config["data"], 4, scorer=None)
    assert [(r["metric"], r["value"]) for r in rows] == [("per-pixel acc", 1.0), ("per-class acc", 1.0), ("class IoU", 1.0)]
    void = np.mean([np.all(v == 0, axis=-1).mean() for v in labels.values()])
    assert 0 < void < 0.5 and ignored == {"AtoB": pytest.approx(void)}
    road_share = np.sum([np.all(v == metrics.PALETTE[0], axis=-1).sum() for v in labels.values()]) / np.sum(
        [np.any(v != 0, axis=-1).sum() for v in labels.values()])
    assert rows[0]["baseline"] == {"name": 'every pixel "road"', "value": pytest.approx(road_share)}
    assert rows[0]["paper"] == {"CycleGAN": 0.58, "pix2pix": 0.85}
    assert "make cityscapes-scorer" in notes[0]
    table = evaluate.markdown({"run": "r", "step": 1, "epoch": 0, "replication": "x", "evaluated_at": "t", "rows": rows,
                               "truth_pixels_ignored": ignored})
    assert f"Cityscapes truth pixels ignored (unlabelled: void and the classes outside the 19): AtoB {100 * void:.1f}%." in table


def test_with_direction_BtoA_the_kits_BtoA_is_scored_as_photo_to_labels_and_its_AtoB_waits_for_the_scorer(tmp_path):
    """pix2pix_cityscapes reads Cityscapes BtoA (labels -> photo): its one direction, AtoB, is the paper's Table 2."""
    root = write_cityscapes_like(tmp_path / "cityscapes")
    data_cfg = tiny_config(root, "data.source=cityscapes", "data.direction=BtoA")["data"]
    assert data.test_set(data_cfg, "B").where == str(root / "testA")  # the photos
    labels = {p.name: np.asarray(Image.open(p)) for p in sorted((root / "testB").iterdir())}
    rows, notes, ignored = segmentation.cityscapes_rows({"BtoA": labels, "AtoB": {}}, data_cfg, 4, scorer=None)
    # named as the paper names photo->labels (Table 3), which is what figures/tables.html matches
    assert [(r["metric"], r["direction"], r["value"]) for r in rows] == [
        ("per-pixel acc", "AtoB", 1.0), ("per-class acc", "AtoB", 1.0), ("class IoU", "AtoB", 1.0)]
    assert rows[0]["paper"] == {"CycleGAN": 0.58, "pix2pix": 0.85} and set(ignored) == {"AtoB"}
    assert "make cityscapes-scorer" in notes[0]
    alone = evaluate.markdown({"run": "r", "step": 1, "epoch": 0, "replication": "x", "evaluated_at": "t", "rows": [],
                               "notes": notes})
    assert "| metric" not in alone and "Nothing could be scored" in alone and "make cityscapes-scorer" in alone


def test_the_scorer_trains_saves_beside_the_data_and_scores_labels_to_photo(tmp_path):
    from replication import scorer

    root = write_cityscapes_like(tmp_path / "cityscapes")
    config = tiny_config(root, "data.source=cityscapes")
    note = scorer.train(config["data"], epochs=2, size=32, batch_size=2, steps_per_epoch=3, width=4)
    assert (root / scorer.SCORER_FILE).is_file() and json.loads((root / scorer.SCORER_NOTE).read_text()) == note
    assert set(note["ceiling"]) == set(metrics.SEGMENTATION_METRICS)
    loaded = scorer.load(config["data"])
    photos = {p.name: np.asarray(Image.open(p)) for p in sorted((root / "testA").iterdir())}
    rows, notes, ignored = segmentation.cityscapes_rows({"BtoA": photos}, config["data"], 4, scorer=loaded)
    assert notes == [] and 0 < ignored["BtoA"] < 0.5
    # translations that are the real photos score exactly the ceiling
    assert [r["value"] for r in rows] == pytest.approx([r["baseline"]["value"] for r in rows])
    assert [r["baseline"]["value"] for r in rows] == pytest.approx(list(note["ceiling"].values()))
    assert rows[0]["paper"] == {"CycleGAN": 0.52, "pix2pix": 0.71}
