"""`replication import`: the official code's files as a run folder that translate, evaluate and figures
take as a trained run, marked as imported everywhere; names fetched from the official address (here a
server of the test's own on localhost); whatever is refused writes nothing."""

import functools
import http.server
import json
import shutil
import sys
import threading
from pathlib import Path

import keras
import numpy as np
import pytest
import yaml
from PIL import Image

from replication import pixels, pretrained
from replication.cli import main

FIXTURES = Path(__file__).parent / "fixtures" / "official"
sys.path.insert(0, str(FIXTURES))
from images import fixture_images  # noqa: E402


def official_files(folder: Path, **names) -> list[str]:
    """Fixtures copied under the names the official code gives them: latest_net_G_A=resnet_2blocks_ngf8, ..."""
    folder.mkdir(parents=True, exist_ok=True)
    paths = []
    for name, fixture in names.items():
        shutil.copy(FIXTURES / f"{fixture}.pth", folder / f"{name}.pth")
        paths.append(str(folder / f"{name}.pth"))
    return paths


def write_pngs(folder: Path, images: np.ndarray) -> Path:
    folder.mkdir(parents=True)
    for i, image in enumerate(images):
        Image.fromarray(pixels.to_uint8(image)).save(folder / f"{i}.png")
    return folder


@pytest.fixture(scope="module")
def imported_cyclegan(tmp_path_factory):
    """G_A from the zip format and G_B from the legacy one, both the ResNet-2 fixture."""
    where = tmp_path_factory.mktemp("import")
    files = official_files(where / "checkpoints", latest_net_G_A="resnet_2blocks_ngf8", latest_net_G_B="resnet_2blocks_ngf8_legacy")
    assert main(["import", *files, "--run-dir", str(where / "runs" / "official")]) == 0
    return where / "runs" / "official"


def test_translate_on_an_imported_run_gives_pytorchs_pixels(imported_cyclegan, tmp_path, capsys):
    inputs = write_pngs(tmp_path / "in", fixture_images(2, 32))
    expected = pixels.to_uint8(np.load(FIXTURES / "resnet_2blocks_ngf8_outputs.npy"))
    for direction in ("AtoB", "BtoA"):
        assert main(["translate", str(imported_cyclegan), "--input", str(inputs), "--output", str(tmp_path / direction),
                     "--direction", direction]) == 0
        for i in range(2):
            written = np.asarray(Image.open(tmp_path / direction / f"{i}.png")).astype(int)
            assert np.abs(written - expected[i]).max() <= 1
    said = capsys.readouterr().out
    assert "official weights, imported from latest_net_G_A.pth (SHA-256 " in said


def test_the_imported_run_is_a_real_cyclegan_config_marked_as_imported(imported_cyclegan):
    config = yaml.safe_load((imported_cyclegan / "config.yaml").read_text())
    assert config["model"]["type"] == "cyclegan"
    assert {k: config["model"][k] for k in ("generator", "n_blocks", "ngf")} == {"generator": "resnet", "n_blocks": 2, "ngf": 8}
    manifest = json.loads((imported_cyclegan / "export" / "manifest.json").read_text())
    assert set(manifest["generators"]) == {"AtoB", "BtoA"}
    files = {f["file"]: f["sha256"] for f in manifest["imported"]["files"]}
    assert set(files) == {"latest_net_G_A.pth", "latest_net_G_B.pth"}
    assert manifest["imported"]["text"].startswith("official weights, imported from latest_net_G_A.pth (SHA-256 ")
    exported = keras.models.load_model(imported_cyclegan / "export" / "G_AtoB.keras")
    np.testing.assert_allclose(exported(fixture_images(2, 32)).numpy(), np.load(FIXTURES / "resnet_2blocks_ngf8_outputs.npy"), atol=1e-5)


def test_evaluate_and_figures_take_the_imported_run(tmp_path, synthetic_root):
    experiment = tmp_path / "mine.yaml"
    experiment.write_text(yaml.safe_dump({"extends": "demo", "data": {"root": str(synthetic_root), "load_size": 32, "crop_size": 32}}))
    files = official_files(tmp_path / "c", latest_net_G_A="resnet_2blocks_ngf8", latest_net_G_B="resnet_2blocks_ngf8")
    run = tmp_path / "runs" / "official"
    assert main(["import", *files, "--run-dir", str(run), "--experiment", str(experiment)]) == 0
    assert main(["evaluate", str(run), "--metrics", "truth"]) == 0
    assert "Scored: official weights, imported from latest_net_G_A.pth" in (run / "eval" / "metrics.md").read_text()
    assert main(["figures", str(run), "--figures-dir", str(tmp_path / "figures")]) == 0
    for page in ("official/index.html", "index.html"):
        assert "official weights, imported from latest_net_G_A.pth" in (tmp_path / "figures" / page).read_text()
    assert "official (official weights, imported)" in (tmp_path / "figures" / "tables.html").read_text()
    assert (tmp_path / "figures" / "official" / "test" / "AtoB").is_dir()


def test_a_run_of_one_imported_generator_is_drawn_and_compared_in_its_direction(tmp_path, synthetic_root):
    experiment = tmp_path / "mine.yaml"
    experiment.write_text(yaml.safe_dump({"extends": "demo", "data": {"root": str(synthetic_root), "load_size": 32, "crop_size": 32}}))
    runs = tmp_path / "runs"
    both = official_files(tmp_path / "c", latest_net_G_A="resnet_2blocks_ngf8", latest_net_G_B="resnet_2blocks_ngf8")
    assert main(["import", *both, "--run-dir", str(runs / "both"), "--experiment", str(experiment)]) == 0
    one = official_files(tmp_path / "d", weights="resnet_2blocks_ngf8")
    assert main(["import", *one, "--direction", "BtoA", "--run-dir", str(runs / "one"), "--experiment", str(experiment)]) == 0
    figures = tmp_path / "figures"
    assert main(["figures", str(runs / "one"), "--figures-dir", str(figures)]) == 0
    assert sorted(p.name for p in (figures / "one" / "test").iterdir() if p.is_dir()) == ["BtoA"]
    assert main(["figures", "--compare", str(runs / "both"), str(runs / "one"), "--figures-dir", str(figures)]) == 0
    assert (figures / "compare" / "both-vs-one.png").is_file()
    inputs = write_pngs(tmp_path / "in", fixture_images(1, 32))
    assert main(["translate", str(runs / "one"), "--input", str(inputs), "--output", str(tmp_path / "out")]) == 0  # its one direction


def test_a_pix2pix_generator_and_discriminator_import_with_their_batch_norm(tmp_path):
    files = official_files(tmp_path / "c", latest_net_G="unet_128_batch_ngf2", latest_net_D="patchgan_3layers_ndf4_legacy")
    run = tmp_path / "runs" / "facades"
    assert main(["import", *files, "--run-dir", str(run)]) == 0
    config = yaml.safe_load((run / "config.yaml").read_text())
    assert config["model"]["type"] == "pix2pix"
    assert {k: config["model"][k] for k in ("generator", "num_downs", "ngf", "generator_norm")} == {
        "generator": "unet", "num_downs": 7, "ngf": 2, "generator_norm": "batch"}
    assert {k: config["model"][k] for k in ("n_layers_d", "ndf", "discriminator_norm")} == {"n_layers_d": 3, "ndf": 4, "discriminator_norm": "batch"}
    manifest = json.loads((run / "export" / "manifest.json").read_text())
    assert manifest["training_mode_at_test"] is True  # as the official test.py runs pix2pix (no --eval)
    exported = keras.models.load_model(run / "export" / "G_AtoB.keras")
    np.testing.assert_allclose(exported(fixture_images(1, 128), training=False).numpy(),
                               np.load(FIXTURES / "unet_128_batch_ngf2_outputs.npy"), atol=1e-5)
    import tensorflow as tf
    from replication import models

    model = models.build(config)
    tf.train.Checkpoint(D=model.D).restore(str(run / "checkpoints" / "ckpt-0")).assert_existing_objects_matched().expect_partial()
    np.testing.assert_allclose(model.D(fixture_images(2, 32, channels=6), training=False).numpy(),
                               np.load(FIXTURES / "patchgan_3layers_ndf4_outputs.npy"), atol=1e-5)


def refused(args, capsys) -> str:
    assert main(args) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1
    return err


def test_what_is_refused_ends_in_one_line_and_writes_nothing(tmp_path, capsys):
    import pickle

    hostile = tmp_path / "latest_net_G_A.pth"
    hostile.write_bytes(pickle.dumps(print, protocol=4))
    damaged = tmp_path / "damaged" / "latest_net_G_A.pth"
    damaged.parent.mkdir()
    damaged.write_bytes((FIXTURES / "resnet_2blocks_ngf8.pth").read_bytes()[:5000])
    run = tmp_path / "runs" / "x"
    assert "asks to run builtins.print: not a plain state dict" in refused(["import", str(hostile), "--run-dir", str(run)], capsys)
    assert "a damaged or truncated zip archive" in refused(["import", str(damaged), "--run-dir", str(run)], capsys)
    single = official_files(tmp_path / "single", weights="resnet_2blocks_ngf8")
    assert "--direction AtoB or BtoA" in refused(["import", *single, "--run-dir", str(run)], capsys)
    assert "no official model of that name" in refused(["import", "horse3zebra", "--run-dir", str(run)], capsys)
    assert not run.exists() and not (tmp_path / "runs").exists()
    run.mkdir(parents=True)
    (run / "mine.txt").write_text("kept")
    assert "exists and is not empty" in refused(["import", *single, "--direction", "AtoB", "--run-dir", str(run)], capsys)
    assert [p.name for p in run.iterdir()] == ["mine.txt"]


class QuietHandler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, *args):
        pass


@pytest.fixture
def served(tmp_path):
    """A folder served on localhost: (folder, base URL)."""
    folder = tmp_path / "served"
    folder.mkdir()
    handler = functools.partial(QuietHandler, directory=str(folder))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield folder, f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()


def test_a_name_is_fetched_into_the_data_folder_and_read_as_its_direction(served, tmp_path, capsys, monkeypatch):
    folder, base = served
    shutil.copy(FIXTURES / "resnet_2blocks_ngf8_legacy.pth", folder / "zebra2horse.pth")
    monkeypatch.chdir(tmp_path)
    assert main(["import", "zebra2horse", "--url", f"{base}/zebra2horse.pth"]) == 0
    kept = tmp_path / "data" / "official" / "zebra2horse.pth"
    assert kept.read_bytes() == (folder / "zebra2horse.pth").read_bytes()
    run = tmp_path / "runs" / "official_zebra2horse"
    manifest = json.loads((run / "export" / "manifest.json").read_text())
    assert list(manifest["generators"]) == ["BtoA"] and manifest["generators"]["BtoA"]["keras"] == "F_BtoA.keras"
    config = yaml.safe_load((run / "config.yaml").read_text())
    assert (config["data"]["source"], config["data"]["name"]) == ("tfds", "horse2zebra")
    assert manifest["imported"]["files"][0]["sha256"] in capsys.readouterr().out


def test_offline_a_name_says_where_to_put_the_file(served, tmp_path, capsys):
    _, base = served  # nothing served: a 404, as an unreachable address
    err = refused(["import", "horse2zebra", "--url", f"{base}/horse2zebra.pth", "--data-dir", str(tmp_path / "d"),
                   "--run-dir", str(tmp_path / "runs" / "h")], capsys)
    assert f"put the file at {tmp_path / 'd' / 'official' / 'horse2zebra.pth'} by hand" in err
    assert "./scripts/download_cyclegan_model.sh horse2zebra" in err
    assert not (tmp_path / "runs").exists()


def test_every_official_name_has_a_url_and_an_experiment():
    from replication import config as config_lib

    for name, model in pretrained.OFFICIAL_MODELS.items():
        assert model.url(name).endswith(f"/{name.removeprefix('pix2pix/')}.pth")
        config = config_lib.resolve(model.experiment, list(model.data))
        assert config["model"]["type"] == model.model_type


def write_state_dict(path: Path, state: dict) -> Path:
    """A zip-format .pth of float32 arrays, as torch.save writes one (tests/test_pth.py's hand-made pickle)."""
    from test_pth import tensor_pickle, zip_pth

    entries = [(name, str(i), value.size, 0, value.shape, tuple(s // 4 for s in value.strides)) for i, (name, value) in enumerate(state.items())]
    return zip_pth(path, tensor_pickle(entries), {str(i): np.ascontiguousarray(v, "<f4").tobytes() for i, v in enumerate(state.values())})


def instance_norm_patchgan(seed: int, ndf: int = 4) -> dict:
    """A CycleGAN discriminator's state dict (70x70 PatchGAN, instance norm: every conv has a bias)."""
    rng = np.random.default_rng(seed)
    shapes = {"model.0": (ndf, 3), "model.2": (2 * ndf, ndf), "model.5": (4 * ndf, 2 * ndf), "model.8": (8 * ndf, 4 * ndf), "model.11": (1, 8 * ndf)}
    state = {}
    for prefix, (out, into) in shapes.items():
        state[f"{prefix}.weight"] = rng.normal(0, 0.05, (out, into, 4, 4)).astype(np.float32)
        state[f"{prefix}.bias"] = rng.normal(0, 0.05, out).astype(np.float32)
    return state


def test_cyclegan_discriminators_come_along_into_a_checkpoint_that_evaluate_reads(tmp_path, synthetic_root):
    experiment = tmp_path / "mine.yaml"
    experiment.write_text(yaml.safe_dump({"extends": "demo", "data": {"root": str(synthetic_root), "load_size": 32, "crop_size": 32}}))
    files = official_files(tmp_path / "c", latest_net_G_A="resnet_2blocks_ngf8", latest_net_G_B="resnet_2blocks_ngf8_legacy")
    d_a = instance_norm_patchgan(1)
    files += [str(write_state_dict(tmp_path / "c" / "latest_net_D_A.pth", d_a)),
              str(write_state_dict(tmp_path / "c" / "latest_net_D_B.pth", instance_norm_patchgan(2)))]
    run = tmp_path / "runs" / "all"
    assert main(["import", *files, "--run-dir", str(run), "--experiment", str(experiment)]) == 0
    config = yaml.safe_load((run / "config.yaml").read_text())
    assert {k: config["model"][k] for k in ("n_layers_d", "ndf", "discriminator_norm")} == {"n_layers_d": 3, "ndf": 4, "discriminator_norm": "instance"}
    import tensorflow as tf
    from replication import models

    model = models.build(config)
    tf.train.Checkpoint(D_Y=model.D_Y).restore(str(run / "checkpoints" / "ckpt-0")).assert_existing_objects_matched().expect_partial()
    first_conv = next(layer for layer in model.D_Y.layers if isinstance(layer, keras.layers.Conv2D))
    np.testing.assert_array_equal(first_conv.get_weights()[0], np.transpose(d_a["model.0.weight"], (2, 3, 1, 0)))
    assert main(["evaluate", str(run), "--metrics", "dloss"]) == 0
    rows = json.loads((run / "eval" / "metrics.json").read_text())["rows"]
    assert sorted(r["direction"] for r in rows if r["metric"] == "D loss") == ["AtoB", "BtoA"]
