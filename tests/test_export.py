"""Exports that load anywhere: each generator's SavedModel runs in a fresh Python that never imports
the kit (as TF Serving or someone else's code would) and gives the `.keras` model's outputs. An export
is one unit: a kill half way leaves the old one whole, and readers refuse a mix or a manifest of the
wrong shape in one line."""

import hashlib
import json
import os
import subprocess
import shutil
import sys
import textwrap

import keras
import numpy as np
import pytest
import tensorflow as tf

from replication import export as export_lib
from replication import gan, loading, networks, runs
from replication.errors import KitError

# A CycleGAN ResNet generator (inference mode at test) and a pix2pix U-Net (dropout on at test).
MODELS = {
    "cyclegan": dict(generator="resnet", n_blocks=1, ngf=4, upsample="transpose", num_downs=6, generator_norm="instance", dropout=0.0),
    "pix2pix": dict(generator="unet", n_blocks=1, ngf=4, upsample="transpose", num_downs=6, generator_norm="batch", dropout=0.5),
}

# Runs in a subprocess: plain TensorFlow, no `replication` on the path. Each SavedModel translates
# the same images twice; both outputs go to <saved model>.npz.
LOAD_AND_RUN = textwrap.dedent(
    """
    import sys
    import numpy as np
    import tensorflow as tf

    images, *exports = sys.argv[1:]
    x = tf.constant(np.load(images))
    for export in exports:
        serve = tf.saved_model.load(export).signatures["serving_default"]
        first = serve(images=x)["translated"].numpy()
        second = serve(images=x)["translated"].numpy()
        np.savez(export + ".npz", first=first, second=second)
    assert "replication" not in sys.modules
    """
)


def test_saved_models_load_without_the_kit_and_match_the_keras_files(tmp_path):
    keras.utils.set_random_seed(0)
    x = tf.random.stateless_uniform((2, 64, 128, 3), (3, 1), -1.0, 1.0)  # not square: any size the net takes
    np.save(tmp_path / "x.npy", x.numpy())
    folders = {}
    for model_type, model_cfg in MODELS.items():
        folders[model_type] = tmp_path / model_type
        training_mode = model_type == "pix2pix"
        export_lib.export_generators(folders[model_type], model_type, {"AtoB": ("G", gan.build_generator(model_cfg))}, model_cfg, training_mode)

    manifests = {t: json.loads((folder / "manifest.json").read_text()) for t, folder in folders.items()}
    for t, manifest in manifests.items():
        sha256 = hashlib.sha256((folders[t] / "G_AtoB.keras").read_bytes()).hexdigest()
        assert manifest["generators"] == {"AtoB": {"keras": "G_AtoB.keras", "saved_model": "G_AtoB_savedmodel", "sha256": sha256}}
    exports = [str(folder / "G_AtoB_savedmodel") for folder in folders.values()]
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    result = subprocess.run(
        [sys.executable, "-c", LOAD_AND_RUN, str(tmp_path / "x.npy"), *exports], cwd=tmp_path, env=env, capture_output=True, text=True
    )
    assert result.returncode == 0, result.stderr[-2000:]

    for model_type, folder in folders.items():
        manifest, files = manifests[model_type], manifests[model_type]["generators"]["AtoB"]
        served = np.load(folder / f"{files['saved_model']}.npz")
        keras_model = loading.load_model_file(folder / files["keras"])
        if manifest["training_mode_at_test"]:
            # Dropout on: the SavedModel's first masks are the export's fixed seed, then fresh ones.
            networks.seed_dropout(keras_model, 0, 0)
            expected = keras_model(x, training=True).numpy()
            assert np.abs(served["second"] - served["first"]).max() > 1e-4
            assert np.abs(keras_model(x, training=False).numpy() - served["first"]).max() > 1e-4
        else:
            expected = keras_model(x, training=False).numpy()
            np.testing.assert_array_equal(served["second"], served["first"])
        np.testing.assert_allclose(served["first"], expected, atol=1e-5)


# --------------------------------------------------------------------------- one unit


def export(folder, seed: int, step: int, cfg=MODELS["cyclegan"]) -> dict:
    """Two generators of weights drawn from `seed`, exported as a finished run at `step` would be."""
    keras.utils.set_random_seed(seed)
    generators = {"AtoB": ("G", gan.build_generator(cfg)), "BtoA": ("F", gan.build_generator(cfg))}
    export_lib.export_generators(folder, "cyclegan", generators, cfg, False, step=step, epoch=step // 12)
    return {d: model.get_weights() for d, (_, model) in generators.items()}


def assert_same_weights(model, weights):
    assert all(np.array_equal(a, b) for a, b in zip(model.get_weights(), weights, strict=True))


@pytest.fixture
def no_saved_models(monkeypatch):
    """The SavedModels as empty folders: the tests of the unit need the files, not TensorFlow's slow tracing."""
    monkeypatch.setattr(export_lib, "save_saved_model", lambda model, path, training_mode: path.mkdir())


def run_with_export(tmp_path):
    run = runs.RunFolder(tmp_path / "run")
    run.path.mkdir()
    return run


def test_a_kill_during_a_re_export_leaves_the_old_export_whole(tmp_path, monkeypatch, no_saved_models):
    run = run_with_export(tmp_path)
    old = export(run.export, seed=1, step=24)
    before = {p.name: p.read_bytes() for p in run.export.iterdir() if p.is_file()}
    saved = []

    def killed_after_one_generator(model, path):
        if saved:
            raise KeyboardInterrupt  # as a SIGTERM/SIGKILL between the two generators' files
        saved.append(path)
        model.save(path)

    monkeypatch.setattr(export_lib, "save_keras", killed_after_one_generator)
    with pytest.raises(KeyboardInterrupt):
        export(run.export, seed=2, step=36)
    assert {p.name: p.read_bytes() for p in run.export.iterdir() if p.is_file()} == before
    translators = loading.load_generators(run.path)
    for direction, translator in translators.items():
        assert translator.weights.step == 24 and translator.weights.source == "export"
        assert_same_weights(translator.generator, old[direction])
    monkeypatch.setattr(export_lib, "save_keras", lambda model, path: model.save(path))
    new = export(run.export, seed=2, step=36)  # the next export replaces it whole
    translators = loading.load_generators(run.path)
    assert {t.weights.step for t in translators.values()} == {36}
    assert_same_weights(translators["AtoB"].generator, new["AtoB"])
    assert sorted(p.name for p in run.path.iterdir()) == ["export"]  # no partial folder left


def test_a_mix_of_two_exports_is_refused_in_one_line(tmp_path, no_saved_models):
    run = run_with_export(tmp_path)
    export(run.export, seed=1, step=24)
    export(tmp_path / "later", seed=2, step=36)
    shutil.copy(tmp_path / "later" / "G_AtoB.keras", run.export / "G_AtoB.keras")  # as an export without the swap left it
    with pytest.raises(KitError, match="G_AtoB.keras is not the file that .*manifest.json \\(step 24\\) names: a mix of two exports"):
        loading.load_generators(run.path)


WRONG_SHAPES = {
    "a generator that is a number": {"generators": {"AtoB": 5}},
    "a step that is text": {"generators": {"AtoB": {"keras": "G_AtoB.keras"}}, "step": "abc"},
    "no generators": {"step": 3},
    "a list": [1, 2],
    "a path outside the folder": {"generators": {"AtoB": {"keras": "../G_AtoB.keras"}}},
    "an unknown direction": {"generators": {"CtoD": {"keras": "G_AtoB.keras"}}},
    "an epoch that is negative": {"generators": {"AtoB": {"keras": "G_AtoB.keras"}}, "epoch": -1},
}


@pytest.mark.parametrize("case", WRONG_SHAPES)
def test_a_manifest_of_the_wrong_shape_is_named_as_damaged(case, tmp_path):
    run = run_with_export(tmp_path)
    run.export.mkdir()
    run.manifest.write_text(json.dumps(WRONG_SHAPES[case]))
    for read in (loading.load_generators, lambda path: loading.exported_as(runs.RunFolder(path).export / "G_AtoB.keras")):
        with pytest.raises(KitError) as err:
            read(run.path)
        assert str(err.value).startswith(f"damaged manifest {run.manifest} (") and "\n" not in str(err.value)


def test_a_reader_that_an_export_overtakes_reads_the_new_export_whole(tmp_path, monkeypatch, no_saved_models):
    run = run_with_export(tmp_path)
    export(run.export, seed=1, step=24)
    load, overtaken = loading.load_model_file, []

    def export_meanwhile(path):
        model = load(path)
        if not overtaken:  # a training finishes its export after the reader's first file
            overtaken.append(export(run.export, seed=2, step=36))
        return model

    monkeypatch.setattr(loading, "load_model_file", export_meanwhile)
    translators = loading.load_generators(run.path)
    assert {t.weights.step for t in translators.values()} == {36}
    for direction, translator in translators.items():
        assert_same_weights(translator.generator, overtaken[0][direction])
