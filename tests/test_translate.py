"""`translate`: inputs are never outputs, every output has its input's size, large images go in
tiles within the memory there is, unreadable files and odd names are named, not fatal."""

import errno
import os
import re
import subprocess
import sys
import tempfile
from pathlib import Path

import keras
import numpy as np
import pytest
from PIL import Image

from replication import loading, networks
from replication import tiling, translate
from replication.cli import main
from replication.errors import KitError

from helpers import pixels

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def finished_run(tiny_finished_run):
    return tiny_finished_run


def save(path, width, height, seed=0, image_format=None):
    """A smooth random picture (photo-like statistics) of width x height."""
    rng = np.random.default_rng(seed)
    low = rng.integers(0, 256, (max(2, height // 30), max(2, width // 30), 3), dtype=np.uint8)
    path = os.fsencode(path)
    os.makedirs(os.path.dirname(path), exist_ok=True)
    Image.fromarray(low).resize((width, height), Image.BICUBIC).save(path, format=image_format or "PNG")
    return path


def run_translate(run, inputs, output, *flags):
    return main(["translate", "--run", str(run), "--input", str(inputs), "--output", str(output), *flags])


def snapshot(folder):
    """Every file under `folder` (links not followed) and its bytes."""
    return {os.path.join(d, f): open(os.path.join(d, f), "rb").read() for d, _, files in os.walk(folder) for f in files}


# ---------------------------------------------------------------- inputs are never outputs


def same_folder(tmp_path):
    return tmp_path / "in", tmp_path / "in"


def same_folder_spelled_otherwise(tmp_path):
    return tmp_path / "in", tmp_path / "in" / "sub" / ".." / "."


def a_link_to_the_input_folder(tmp_path):
    (tmp_path / "link").symlink_to(tmp_path / "in")
    return tmp_path / "in", tmp_path / "link"


def an_output_whose_subfolder_is_an_input_subfolder(tmp_path):
    (tmp_path / "out").mkdir()
    (tmp_path / "out" / "sub").symlink_to(tmp_path / "in" / "sub")  # out/sub/b.png would replace in/sub/b.png
    return tmp_path / "in", tmp_path / "out"


def the_folder_a_linked_input_points_into(tmp_path):
    save(tmp_path / "elsewhere" / "c.png", 20, 20)
    (tmp_path / "in" / "c.png").symlink_to(tmp_path / "elsewhere" / "c.png")
    return tmp_path / "in", tmp_path / "elsewhere"


def one_file_into_its_own_folder(tmp_path):
    return tmp_path / "in" / "a.png", tmp_path / "in"


@pytest.mark.parametrize("case", [
    same_folder, same_folder_spelled_otherwise, a_link_to_the_input_folder,
    an_output_whose_subfolder_is_an_input_subfolder, the_folder_a_linked_input_points_into, one_file_into_its_own_folder,
])
def test_an_output_that_would_overwrite_an_input_is_refused_before_anything_is_written(finished_run, tmp_path, capsys, case):
    save(tmp_path / "in" / "a.png", 20, 24)
    save(tmp_path / "in" / "sub" / "b.png", 24, 20, seed=1)
    inputs, output = case(tmp_path)
    before = snapshot(tmp_path)
    assert run_translate(finished_run, inputs, output) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: --output") and err.count("\n") == 1
    assert "the folder the inputs are in" in err or "would overwrite the input" in err
    assert snapshot(tmp_path) == before


def test_two_inputs_that_would_be_written_as_one_file_are_refused(finished_run, tmp_path, capsys):
    save(tmp_path / "in" / "a.png", 20, 20)
    save(tmp_path / "in" / "a.jpg", 20, 20, image_format="JPEG")
    assert run_translate(finished_run, tmp_path / "in", tmp_path / "out") == 2
    assert "a.jpg and a.png would both be written as a.png" in capsys.readouterr().err
    assert not (tmp_path / "out").exists()
    assert run_translate(finished_run, tmp_path / "in" / "a.jpg", tmp_path / "out") == 0  # one of them alone is fine


def test_an_output_folder_inside_the_input_folder_is_not_read_as_input_again(finished_run, tmp_path):
    save(tmp_path / "in" / "a.png", 20, 20)
    for _ in range(2):
        assert run_translate(finished_run, tmp_path / "in", tmp_path / "in" / "zebras") == 0
    assert sorted(os.listdir(tmp_path / "in")) == ["a.png", "zebras"]
    assert sorted(os.listdir(tmp_path / "in" / "zebras")) == ["a.png"]


# ---------------------------------------------------------------- every output has its input's size


def unet_file(tmp_path, num_downs):
    """An untrained U-Net (multiples of 2**num_downs) with 2 filters, saved as a .keras file."""
    keras.utils.set_random_seed(0)
    path = tmp_path / f"unet_{num_downs}.keras"
    networks.unet_generator(num_downs=num_downs, ngf=2).save(path)
    return path


@pytest.mark.parametrize("num_downs, sizes", [(6, [(65, 70), (1, 1), (64, 128)]), (8, [(300, 257), (1, 1)])])
def test_every_output_has_its_inputs_size_whatever_the_generators_multiple(tmp_path, num_downs, sizes):
    for width, height in sizes:
        save(tmp_path / "in" / f"{width}x{height}.png", width, height)
    model = unet_file(tmp_path, num_downs)
    assert main(["translate", "--model", str(model), "--input", str(tmp_path / "in"), "--output", str(tmp_path / "out")]) == 0
    for width, height in sizes:
        assert Image.open(tmp_path / "out" / f"{width}x{height}.png").size == (width, height)


def test_a_phone_photo_taken_sideways_comes_out_upright_at_the_size_a_viewer_shows(tmp_path):
    exif = Image.Exif()
    exif[0x0112] = 6  # stored 400x300, shown turned 90 degrees clockwise: 300x400
    (tmp_path / "in").mkdir()
    Image.fromarray(pixels(save(tmp_path / "stored.png", 400, 300))).save(tmp_path / "in" / "photo.jpg", quality=95, exif=exif)
    # the same photo as a viewer shows it, without EXIF: its pixels as stored, turned
    save_array = Image.fromarray(np.rot90(pixels(tmp_path / "in" / "photo.jpg"), -1).copy())
    (tmp_path / "upright").mkdir()
    save_array.save(tmp_path / "upright" / "photo.png")
    model = unet_file(tmp_path, 6)
    for name in ("in", "upright"):
        assert main(["translate", "--model", str(model), "--input", str(tmp_path / name), "--output", str(tmp_path / f"out_{name}")]) == 0
    assert Image.open(tmp_path / "out_in" / "photo.png").size == (300, 400)
    np.testing.assert_array_equal(pixels(tmp_path / "out_in" / "photo.png"), pixels(tmp_path / "out_upright" / "photo.png"))


def test_a_run_translates_every_size_and_leaves_a_fitting_image_as_the_network_makes_it(finished_run, tmp_path):
    sizes = [(37, 41), (5, 3), (1, 1), (36, 40)]
    for width, height in sizes:
        save(tmp_path / "in" / f"{width}x{height}.png", width, height)
    assert run_translate(finished_run, tmp_path / "in", tmp_path / "out") == 0
    for width, height in sizes:
        assert Image.open(tmp_path / "out" / f"{width}x{height}.png").size == (width, height)
    # 36x40 is a multiple of 4 and at least 8: no padding, exactly the generator's own output
    generator = keras.models.load_model(finished_run / "export" / "G_AtoB.keras")
    x = pixels(tmp_path / "in" / "36x40.png")[None].astype(np.float32) / 127.5 - 1
    expected = np.clip(np.rint((generator(x, training=False).numpy()[0] + 1) * 127.5), 0, 255)
    np.testing.assert_array_equal(pixels(tmp_path / "out" / "36x40.png"), expected)


# ---------------------------------------------------------------- large images: tiles within the memory there is


class Pointwise:
    """A stand-in generator that maps each pixel on its own: tiling must not change its result at all."""

    def __init__(self):
        self.shapes = []

    def __call__(self, x):
        self.shapes.append(x.shape[1:3])
        return np.tanh(2 * x - 0.3)


def test_tiles_cover_the_image_and_their_blend_is_exact_for_a_pixelwise_network(tmp_path):
    image = pixels(save(tmp_path / "a.png", 300, 360))
    memory = tiling.Memory(budget=tiling.IMAGE_BYTES_PER_PIXEL * 360 * 300 + 1000 * 128 * 132, per_pixel=1000)
    plan = memory.plan(360, 300, 4, 8)
    assert plan.tile == (128, 132)
    tiled = Pointwise()
    out = tiling.translate_padded(tiled, image, plan.tile)
    assert len(tiled.shapes) == 4 * 3 and set(tiled.shapes) == {(128, 132)}
    whole = Pointwise()
    np.testing.assert_allclose(out, tiling.translate_padded(whole, image, (360, 300)), atol=1e-6)
    assert whole.shapes == [(360, 300)]


def test_a_large_image_is_translated_in_tiles_within_the_memory_there_is(finished_run, tmp_path, monkeypatch):
    save(tmp_path / "in" / "large.png", 300, 360)
    generator = keras.models.load_model(finished_run / "export" / "G_AtoB.keras")
    per_pixel = tiling.activation_bytes_per_pixel(generator)
    budget = tiling.IMAGE_BYTES_PER_PIXEL * 300 * 360 + per_pixel * 140**2
    monkeypatch.setattr(tiling, "free_memory", lambda: int(budget / tiling.MEMORY_SHARE))
    shapes = []
    call = loading.Translator.__call__
    monkeypatch.setattr(loading.Translator, "__call__", lambda self, x: shapes.append(x.shape[1:3]) or call(self, x))
    assert run_translate(finished_run, tmp_path / "in", tmp_path / "out") == 0
    assert len(shapes) > 1 and max(h * w for h, w in shapes) * per_pixel <= budget - tiling.IMAGE_BYTES_PER_PIXEL * 300 * 360
    tiled = pixels(tmp_path / "out" / "large.png")
    assert tiled.shape == (360, 300, 3)

    # Instance norm normalises each tile by its own statistics, so tiles are close to the whole pass,
    # not equal: on this barely trained generator its 136x144 tiles differ from it by 10/255 on
    # average (99% of values within 64/255). Where tiles go and how they blend is held exactly by
    # the pixel-wise test above; this bound holds the size of instance norm's effect.
    monkeypatch.setattr(tiling, "free_memory", lambda: 10**11)
    assert run_translate(finished_run, tmp_path / "in", tmp_path / "whole") == 0
    whole = pixels(tmp_path / "whole" / "large.png")
    assert shapes[-1] == (360, 300)
    assert np.abs(tiled.astype(int) - whole.astype(int)).mean() <= 13


def test_the_activation_estimate_is_the_most_a_pass_holds_at_once():
    """x (3 channels) -> a (8) -> b (8) -> a + b (8) -> out (3): a stays alive until the sum reads it,
    so at the sum x is gone and a, b and the sum are alive: 3 x 8 float32 per pixel."""
    x = keras.Input((None, None, 3))
    a = keras.layers.Conv2D(8, 1)(x)
    b = keras.layers.Conv2D(8, 1)(a)
    out = keras.layers.Conv2D(3, 1)(keras.layers.Add()([a, b]))
    assert tiling.activation_bytes_per_pixel(keras.Model(x, out)) == tiling.ACTIVATION_MARGIN * 3 * 8 * 4


def test_an_image_too_large_for_the_memory_is_named_and_skipped_and_the_rest_translated(finished_run, tmp_path, capsys, monkeypatch):
    save(tmp_path / "in" / "huge.png", 400, 300)
    save(tmp_path / "in" / "small.png", 20, 20)
    per_pixel = tiling.activation_bytes_per_pixel(keras.models.load_model(finished_run / "export" / "G_AtoB.keras"))
    budget = per_pixel * 128**2 + 32 * 200 * 200  # room for the smallest tile, and for the pixels of a 200x200 image
    monkeypatch.setattr(tiling, "free_memory", lambda: int(budget / tiling.MEMORY_SHARE))
    assert run_translate(finished_run, tmp_path / "in", tmp_path / "out") == 1
    err = capsys.readouterr().err
    line = next(line for line in err.splitlines() if "huge.png" in line)
    assert f"skipped {tmp_path / 'in' / 'huge.png'}: 400x300 pixels is too large" in line
    assert "the largest that fits is about 199x199" in line or "the largest that fits is about 200x200" in line
    assert "1 of 2 image(s) could not be translated" in err
    assert (tmp_path / "out" / "small.png").exists() and not (tmp_path / "out" / "huge.png").exists()


@pytest.mark.parametrize("written, failed, said", [
    (0, 1, "it was not translated (why is above); nothing was written. Fix or re-save the files (PNG or JPEG) and translate them again."),
    (0, 3, "none of the 3 images could be translated (why is above); nothing was written. Fix or re-save the files "
           "(PNG or JPEG) and translate them again."),
    (2, 1, "1 of 3 image(s) could not be translated (named above) and were skipped; the other 2 image(s) were written. "
           "Fix or re-save those files (PNG or JPEG), then translate just them with --input FILE."),
])
def test_the_closing_line_of_skipped_inputs_says_what_was_written(written, failed, said):
    outcome = translate.Outcome([f"out{i}.png" for i in range(written)], [(f"in{i}.png", "why") for i in range(failed)])
    assert translate.skipped_advice(outcome, written + failed) == said
ONEDNN_FAILURE = "Operation received an exception:Status: 1, message: could not create a primitive, in file mkl_conv_ops.cc"


def out_of_memory_errors():
    import tensorflow as tf

    return {
        "ResourceExhaustedError": tf.errors.ResourceExhaustedError(None, None, "OOM when allocating tensor"),
        "oneDNN could not create a primitive": tf.errors.AbortedError(None, None, ONEDNN_FAILURE),
        "MemoryError": MemoryError(),
    }


class RunsOutAbove(Pointwise):
    """The pixel-wise stand-in, whose allocations fail (`error`) for inputs of more than `area` pixels."""

    def __init__(self, area, error, channels=3):
        super().__init__()
        self.area, self.error, self.channels = area, error, channels

    def __call__(self, x):
        if x.shape[1] * x.shape[2] > self.area:
            raise self.error
        return np.repeat(super().__call__(x), self.channels // 3, axis=-1)


@pytest.mark.parametrize("kind", ["ResourceExhaustedError", "oneDNN could not create a primitive", "MemoryError"])
def test_an_allocation_that_fails_during_a_pass_is_tried_again_in_smaller_tiles_saying_so(tmp_path, kind):
    """An injected failure at the network call (a real one under a tight RLIMIT_AS may end in a
    segmentation fault inside oneDNN instead): the plan's whole pass, then tiles half as large."""
    image = pixels(save(tmp_path / "a.png", 300, 360))
    memory = tiling.Memory(budget=10**12, per_pixel=1000)
    plan = memory.plan(360, 300, 4, 8)
    said = []
    network = RunsOutAbove(200 * 200, out_of_memory_errors()[kind])
    out = tiling.run_fitting(network, image, plan, memory, "a.png", said.append)
    assert said == [f"a.png: out of memory in one pass ({kind}); translating it again in tiles of 148x180"]
    assert set(network.shapes) == {(180, 148)}
    np.testing.assert_allclose(out, tiling.translate_padded(Pointwise(), image, (360, 300)), atol=1e-6)


def test_an_image_whose_smallest_tiles_run_out_of_memory_is_named_with_what_it_needs(finished_run, tmp_path, capsys, monkeypatch):
    import tensorflow as tf

    save(tmp_path / "in" / "a.png", 300, 360)
    save(tmp_path / "in" / "b.png", 20, 20)
    call = loading.Translator.__call__

    def fails_above_400_pixels(self, x):
        if x.shape[1] * x.shape[2] > 400:
            raise tf.errors.ResourceExhaustedError(None, None, "OOM when allocating tensor")
        return call(self, x)

    monkeypatch.setattr(loading.Translator, "__call__", fails_above_400_pixels)
    monkeypatch.setattr(tiling, "free_memory", lambda: 10**11)
    assert run_translate(finished_run, tmp_path / "in", tmp_path / "out") == 1
    err = capsys.readouterr().err
    assert "Traceback" not in err
    name = tmp_path / "in" / "a.png"
    lines = [line for line in err.splitlines() if str(name) in line]
    assert lines[:2] == [
        f"{name}: out of memory in one pass (ResourceExhaustedError); translating it again in tiles of 148x180",
        f"{name}: out of memory in tiles of 148x180 (ResourceExhaustedError); translating it again in tiles of 128x128",
    ]
    assert lines[2].startswith(
        f"skipped {name}: 300x360 pixels ran out of memory (ResourceExhaustedError) even in tiles of 128x128, the smallest: it needs about "
    )
    assert len(lines) == 3 and (tmp_path / "out" / "b.png").exists() and not (tmp_path / "out" / "a.png").exists()


def test_a_scorer_runs_through_the_same_rule_with_its_class_scores_blended(tmp_path, monkeypatch):
    """translate_whole, as evaluate and the Cityscapes scorer call it: 19 class scores, not 3 levels."""
    from replication import scorer

    model = scorer.build(width=4, n_blocks=1)
    monkeypatch.setattr(tiling, "free_memory", lambda: 10**11)
    photo = tiling.pad(pixels(save(tmp_path / "a.png", 300, 360)), tiling.Plan((360, 300), (360, 300), (0, 0), (360, 300)))
    unit = photo.astype(np.float32) / 127.5 - 1
    said = []
    network = RunsOutAbove(200 * 200, out_of_memory_errors()["ResourceExhaustedError"], channels=18)
    out = tiling.translate_whole(network, model, unit, "a.png", said.append)
    assert out.shape == (360, 300, 18)
    assert said == ["a.png: out of memory in one pass (ResourceExhaustedError); translating it again in tiles of 148x180"]
    np.testing.assert_allclose(out, np.repeat(Pointwise()(unit[None])[0], 6, axis=-1), atol=1e-6)
    with pytest.raises(KitError, match=r"^a.png: 300x360 pixels ran out of memory \(MemoryError\) even in tiles of 128x128, the smallest"):
        tiling.translate_whole(RunsOutAbove(0, MemoryError()), model, unit, "a.png", said.append)


REAL_RUN_UNDER_RLIMIT_AS = """
import os, resource, sys
import tensorflow as tf
tf.nn.conv2d(tf.zeros((1, 64, 64, 3)), tf.zeros((3, 3, 3, 4)), 1, "SAME")  # TensorFlow's threads, before the limit
from replication.cli import main
mapped = int(next(line.split()[1] for line in open("/proc/self/status") if line.startswith("VmSize:"))) * 1024
resource.setrlimit(resource.RLIMIT_AS, (mapped + 700 * 2**20, resource.RLIM_INFINITY))
sys.exit(main(["translate", "--model", "g.keras", "--input", "photo.png", "--output", "out"]))
"""


def test_a_real_translate_under_an_address_space_limit_plans_tiles_within_it(tmp_path):
    """RLIMIT_AS at 700 MB above what the process has mapped, too little for a whole pass of this
    2000x2000 photo as planned (a ResourceExhaustedError traceback before the limit was read): it
    is translated in tiles."""
    from replication import gan

    from helpers import tiny_config

    gan.build_generator(tiny_config()["model"]).save(tmp_path / "g.keras")
    save(tmp_path / "photo.png", 2000, 2000)
    environment = dict(os.environ, PYTHONPATH=str(ROOT), TF_CPP_MIN_LOG_LEVEL="3")
    done = subprocess.run([sys.executable, "-c", REAL_RUN_UNDER_RLIMIT_AS], cwd=tmp_path, env=environment,
                          capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-3000:]
    assert re.search(r"photo.png: 2000x2000 pixels, translated in \d+ overlapping tiles of", done.stderr), done.stderr[-3000:]
    assert Image.open(tmp_path / "out" / "photo.png").size == (2000, 2000)


def test_pillows_decompression_bomb_limit_does_not_stop_an_image_that_fits(finished_run, tmp_path, monkeypatch):
    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", 100)  # Pillow refuses above twice this: 200 pixels
    save(tmp_path / "in" / "a.png", 40, 30)
    assert run_translate(finished_run, tmp_path / "in", tmp_path / "out") == 0
    assert Image.MAX_IMAGE_PIXELS == 100  # left as it was
    monkeypatch.undo()
    assert Image.open(tmp_path / "out" / "a.png").size == (40, 30)


# ---------------------------------------------------------------- one file or a folder, names, formats, which weights


def test_one_file_keeps_its_name_as_lossless_png_and_the_first_line_names_the_weights(finished_run, tmp_path, capsys):
    save(tmp_path / "photo.jpg", 30, 20, image_format="JPEG")
    assert run_translate(finished_run, tmp_path / "photo.jpg", tmp_path / "out") == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0] == f"weights: {finished_run / 'export' / 'G_AtoB.keras'} (A->B), exported at step 9, epoch 3"
    assert lines[1] == "writing PNG: 1 output name(s) change their extension, e.g. photo.jpg -> photo.png (--format jpg writes JPEG)"
    assert sorted(os.listdir(tmp_path / "out")) == ["photo.png"]
    assert Image.open(tmp_path / "out" / "photo.png").format == "PNG"


def test_format_jpg_writes_jpeg_and_a_folder_gets_a_progress_bar_on_a_terminal(finished_run, tmp_path, capsys, monkeypatch):
    monkeypatch.setattr(sys.stderr, "isatty", lambda: True)
    for i in range(5):
        save(tmp_path / "in" / f"p{i}.png", 16, 16, seed=i)
    assert run_translate(finished_run, tmp_path / "in", tmp_path / "out", "--format", "jpg") == 0
    captured = capsys.readouterr()
    assert "writing JPEG: 5 output name(s)" in captured.out and "5/5" in captured.err
    assert sorted(os.listdir(tmp_path / "out")) == [f"p{i}.jpg" for i in range(5)]
    assert {Image.open(tmp_path / "out" / f"p{i}.jpg").format for i in range(5)} == {"JPEG"}


def test_an_unfinished_run_says_it_translates_with_the_checkpoint_of_step_and_epoch(tiny_stopped_run, tmp_path, capsys):
    save(tmp_path / "a.png", 16, 16)
    assert run_translate(tiny_stopped_run, tmp_path / "a.png", tmp_path / "out") == 0
    first = capsys.readouterr().out.splitlines()[0]
    assert first == (
        f"weights: the checkpoint of step 4, during epoch 2 in {tiny_stopped_run / 'checkpoints'} (A->B): "
        "the run has not finished, so it has no export yet"
    )


# ---------------------------------------------------------------- files that cannot be read, names that are not UTF-8


def test_unreadable_files_are_named_and_skipped_and_names_that_are_not_utf8_are_kept(finished_run, tmp_path, capsys):
    folder = tmp_path / "in"
    save(folder / "good.png", 20, 24)
    odd = save(os.fsencode(folder) + b"/caf\xe9\xff.png", 24, 20, seed=1)
    (folder / "empty.jpg").write_bytes(b"")
    (folder / "notes.jpg").write_text("not a picture")
    open(os.fsencode(folder) + b"/bad\xff.png", "wb").write(b"\x89PNG\r\n\x1a\n truncated")
    assert run_translate(finished_run, folder, tmp_path / "out") == 1
    err = capsys.readouterr().err
    assert f"skipped {folder / 'empty.jpg'}: the file is empty (0 bytes)" in err
    assert f"skipped {folder / 'notes.jpg'}: not an image file" in err
    assert f"skipped {folder}/bad\\xff.png:" in err
    assert "3 of 5 image(s) could not be translated" in err and "--input FILE" in err
    assert "skip_bad_images" not in err and "Traceback" not in err
    assert "\r" not in err  # not a terminal: no progress bar redrawn over the messages' lines
    written = sorted(os.listdir(os.fsencode(tmp_path / "out")))
    assert written == [b"caf\xe9\xff.png", b"good.png"]
    assert Image.open(os.fsencode(tmp_path / "out") + b"/caf\xe9\xff.png").size == (24, 20)
    assert pixels(odd).shape == (20, 24, 3)


# ---------------------------------------------------------------- an output folder that cannot be written


@pytest.mark.parametrize("number, words", [(errno.EROFS, "the file system is read-only. Make it writable"),
                                           (errno.ENOSPC, "the disk is full. Free some space")])
def test_a_read_only_or_full_output_folder_ends_in_one_line_naming_the_file(finished_run, tmp_path, capsys, monkeypatch, number, words):
    save(tmp_path / "in" / "a.png", 20, 20)
    output = tmp_path / "out"
    real_mkstemp = tempfile.mkstemp

    def mkstemp(*args, dir=None, **kwargs):  # what the kernel says for a folder on a read-only or full disk
        if dir is not None and str(dir).startswith(str(output)):
            raise OSError(number, os.strerror(number), os.path.join(dir, kwargs.get("prefix", "") + "x"))
        return real_mkstemp(*args, dir=dir, **kwargs)

    monkeypatch.setattr(tempfile, "mkstemp", mkstemp)
    assert run_translate(finished_run, tmp_path / "in", output) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and err.startswith(f"error: could not write {output / 'a.png'}: {words}")
    assert "choose another --output" in err
    assert not (output / "a.png").exists()


def test_a_killed_translates_temporaries_of_its_outputs_go_and_the_users_own_hidden_files_stay(finished_run, tmp_path):
    save(tmp_path / "in" / "a.png", 20, 20)
    out = tmp_path / "out"
    out.mkdir()
    leftover = out / ".a.png.k3j9x_2q"  # what a kill during the write of a.png leaves (mkstemp's name)
    leftover.write_bytes(b"half")
    theirs = [out / ".b.png.k3j9x_2q", out / ".a.png.notes"]  # not a temporary of an output of this run
    for path in theirs:
        path.write_bytes(b"mine")
    assert run_translate(finished_run, tmp_path / "in", out) == 0
    assert not leftover.exists() and all(p.read_bytes() == b"mine" for p in theirs)
    assert sorted(p.name for p in out.iterdir() if not p.name.startswith(".")) == ["a.png"]
