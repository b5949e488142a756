"""Exports that load anywhere: each generator's SavedModel runs in a fresh Python that never imports
the kit (as TF Serving or someone else's code would) and gives the `.keras` model's outputs."""

import json
import os
import subprocess
import sys
import textwrap

import keras
import numpy as np
import tensorflow as tf

from replication import gan, networks, runs

# A CycleGAN ResNet generator (inference mode at test) and a pix2pix U-Net (dropout on at test).
MODELS = {
    "cyclegan": dict(generator="resnet", n_blocks=1, ngf=4, upsample="transpose", num_downs=6, generator_norm="instance"),
    "pix2pix": dict(generator="unet", n_blocks=1, ngf=4, upsample="transpose", num_downs=6, generator_norm="batch"),
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
        gan.export_generators(folders[model_type], model_type, {"AtoB": ("G", gan.build_generator(model_cfg))}, model_cfg, training_mode)

    manifests = {t: json.loads((folder / "manifest.json").read_text()) for t, folder in folders.items()}
    for manifest in manifests.values():
        assert manifest["generators"] == {"AtoB": {"keras": "G_AtoB.keras", "saved_model": "G_AtoB_savedmodel"}}
    exports = [str(folder / "G_AtoB_savedmodel") for folder in folders.values()]
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    result = subprocess.run(
        [sys.executable, "-c", LOAD_AND_RUN, str(tmp_path / "x.npy"), *exports], cwd=tmp_path, env=env, capture_output=True, text=True
    )
    assert result.returncode == 0, result.stderr[-2000:]

    for model_type, folder in folders.items():
        manifest, files = manifests[model_type], manifests[model_type]["generators"]["AtoB"]
        served = np.load(folder / f"{files['saved_model']}.npz")
        keras_model = runs.load_model_file(folder / files["keras"])
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
