"""Decoding to 8-bit RGB and the jitter: shapes, ranges, crops, flips, resize methods, modes."""

import numpy as np
import pytest
from PIL import Image

from replication import data
from replication.config import data_section

from helpers import gradient_image, save

# ------------------------------------------------------------------ decoding


def test_grayscale_rgba_palette_16bit_and_cmyk_become_8bit_rgb(tmp_path):
    Image.new("L", (6, 5), 100).save(tmp_path / "gray.png")
    Image.new("RGBA", (6, 5), (10, 20, 30, 0)).save(tmp_path / "rgba.png")
    pal = Image.new("P", (6, 5), 1)
    pal.putpalette([0, 0, 0, 200, 50, 25] + [0] * 762)
    pal.save(tmp_path / "palette.png")
    Image.fromarray(np.full((5, 6), 257 * 100, np.uint16)).save(tmp_path / "deep.png")
    Image.new("CMYK", (6, 5), (0, 255, 255, 0)).save(tmp_path / "cmyk.jpg")
    Image.new("LA", (6, 5), (77, 255)).save(tmp_path / "gray_alpha.png")
    assert Image.open(tmp_path / "deep.png").mode.startswith("I")  # really a 16-bit PNG
    assert Image.open(tmp_path / "cmyk.jpg").mode == "CMYK"

    expected = {
        "gray.png": (100, 100, 100),
        "rgba.png": (10, 20, 30),
        "palette.png": (200, 50, 25),
        "deep.png": (100, 100, 100),  # scaled from 16 bits, not clipped to 255
        "gray_alpha.png": (77, 77, 77),
    }
    for name, rgb in expected.items():
        arr = data.decode(tmp_path / name)
        assert arr.dtype == np.uint8 and arr.shape == (5, 6, 3), name
        assert (arr == np.array(rgb, np.uint8)).all(), name
    red = data.decode(tmp_path / "cmyk.jpg").astype(int)
    assert red.shape == (5, 6, 3)
    assert np.abs(red - [255, 0, 0]).max() <= 8  # JPEG is lossy


def test_odd_formats_go_through_the_pipeline(tmp_path):
    Image.new("L", (8, 8), 0).save(tmp_path / "gray.png")
    Image.new("CMYK", (8, 8), (0, 0, 0, 0)).save(tmp_path / "white.jpg")
    Image.fromarray(np.full((8, 8), 65535, np.uint16)).save(tmp_path / "deep.png")
    out = {name.decode(): img for img, name in data.folder_images(tmp_path, multiple=4).as_numpy_iterator()}
    assert sorted(out) == ["deep.png", "gray.png", "white.jpg"]
    assert all(v.shape == (1, 8, 8, 3) and v.dtype == np.float32 for v in out.values())
    assert (out["gray.png"] == -1.0).all()
    assert (out["deep.png"] == 1.0).all()
    assert out["white.jpg"].min() > 0.9


def _files_of_every_decoder(folder):
    """Noise and smooth images in the formats and modes the kit reads, by the decoder each should get."""
    rng = np.random.default_rng(0)
    noise = Image.fromarray(rng.integers(0, 256, (27, 35, 3), dtype=np.uint8))
    yy, xx = np.mgrid[0:27, 0:35]
    smooth = Image.fromarray(np.stack([xx * 7, yy * 9, xx + yy], -1).clip(0, 255).astype(np.uint8))
    transparent = smooth.convert("P")
    transparent.info["transparency"] = 3
    files = {
        "noise_420.jpg": (noise, {"quality": 90}, "jpeg"),  # 4:2:0 chroma: the upsampling must match too
        "noise_444.jpg": (noise, {"quality": 95, "subsampling": 0}, "jpeg"),
        "smooth_progressive.jpg": (smooth, {"quality": 75, "progressive": True}, "jpeg"),
        "gray.jpg": (noise.convert("L"), {}, "jpeg"),
        "cmyk.jpg": (smooth.convert("CMYK"), {}, "jpeg"),
        "rgb.png": (noise, {}, "png"),
        "rgba.png": (noise.convert("RGBA"), {}, "png"),
        "gray.png": (smooth.convert("L"), {}, "png"),
        "gray_alpha.png": (smooth.convert("LA"), {}, "png"),
        "palette.png": (smooth.convert("P"), {}, "png"),
        "palette_transparent.png": (transparent, {"transparency": 3}, "png"),
        "bits.png": (noise.convert("1"), {}, "png"),
        "deep.png": (Image.fromarray((np.asarray(smooth.convert("L"), np.uint16) * 257)), {}, None),
        "lossless.webp": (noise, {"lossless": True}, None),
        "plain.bmp": (noise, {}, None),
        "plain.tif": (smooth, {}, None),
    }
    for name, (image, options, _) in files.items():
        image.save(folder / name, **options)
    return {name: decoder for name, (_, _, decoder) in files.items()}


def test_tensorflow_decodes_jpeg_and_8bit_png_to_exactly_pillows_pixels(tmp_path):
    from replication.data.images import decode_with_mode, to_rgb8

    for name, decoder in _files_of_every_decoder(tmp_path).items():
        arr, mode, used = decode_with_mode(tmp_path / name)
        assert used == decoder, name
        with Image.open(tmp_path / name) as img:
            pillow = to_rgb8(img)  # the reference: Pillow's own decoding and conversion
        np.testing.assert_array_equal(arr, pillow, err_msg=name)
        assert decode_with_mode((tmp_path / name).read_bytes())[2] == decoder  # bytes (TFDS) as files
    # a 48-bit PNG: Pillow opens it as RGB (each value's high byte), and so does TensorFlow
    import tensorflow as tf

    deep_rgb = np.random.default_rng(1).integers(0, 65536, (9, 11, 3)).astype(np.uint16)
    (tmp_path / "deep_rgb.png").write_bytes(tf.io.encode_png(deep_rgb).numpy())
    arr, mode, used = decode_with_mode(tmp_path / "deep_rgb.png")
    assert (mode, used) == ("RGB", "png")
    np.testing.assert_array_equal(arr, deep_rgb >> 8)
    with Image.open(tmp_path / "deep_rgb.png") as img:
        np.testing.assert_array_equal(arr, to_rgb8(img))


def test_the_pipeline_decodes_each_image_with_its_own_decoder_and_pillow_only_the_rest(tmp_path, monkeypatch):
    from replication.data.images import folder_set, to_rgb8

    decoders = _files_of_every_decoder(tmp_path)
    images = folder_set(tmp_path).validate(skip_bad=False, keep=False)
    assert dict(zip(images.names, images.decoders)) == decoders
    through_pillow = []
    plain_load = type(images).load
    monkeypatch.setattr(type(images), "load", lambda s, i: through_pillow.append(s.names[i]) or plain_load(s, i))
    out = {n.decode(): x[0] for x, n in data.folder_images(tmp_path, multiple=1).as_numpy_iterator()}
    assert sorted(through_pillow) == sorted(n for n, d in decoders.items() if d is None)
    for name in decoders:
        with Image.open(tmp_path / name) as img:
            expected = to_rgb8(img).astype(np.float32) / 127.5 - 1.0
        np.testing.assert_array_equal(out[name], expected, err_msg=name)


# What a viewer does to the stored pixels for each EXIF orientation (EXIF 2.3, tag 0x0112), in NumPy.
SHOWN = {
    1: lambda a: a,
    2: lambda a: a[:, ::-1],  # mirrored left-right
    3: lambda a: a[::-1, ::-1],  # turned 180 degrees
    4: lambda a: a[::-1],  # mirrored top-bottom
    5: lambda a: a.transpose(1, 0, 2),  # stored row 0 is the left column, column 0 the top row
    6: lambda a: np.rot90(a, -1),  # stored row 0 is the right column: turned 90 degrees clockwise
    7: lambda a: a[::-1, ::-1].transpose(1, 0, 2),  # stored row 0 is the right column, column 0 the bottom row
    8: lambda a: np.rot90(a, 1),  # stored row 0 is the left column: turned 90 degrees counter-clockwise
}


def write_oriented_photos(folder, width=40, height=24) -> dict:
    """One JPEG per EXIF orientation, each storing the same width x height pixels; {name: as a viewer shows it}."""
    shown = {}
    for value, turn in SHOWN.items():
        exif = Image.Exif()
        exif[0x0112] = value
        path = save(folder / f"orientation_{value}.jpg", gradient_image(height, width), quality=95, exif=exif)
        with Image.open(path) as img:
            stored = np.asarray(img.convert("RGB"))  # Pillow's pixels as stored, the orientation not applied
        shown[path.name] = turn(stored)
    return shown


def test_each_of_the_8_exif_orientations_is_decoded_as_a_viewer_shows_it(tmp_path):
    from replication.data.images import decode_with_mode, upright_size

    for name, expected in write_oriented_photos(tmp_path).items():
        arr, _, decoder = decode_with_mode(tmp_path / name)
        np.testing.assert_array_equal(arr, expected, err_msg=name)
        assert arr.shape == ((24, 40, 3) if name[-5] in "1234" else (40, 24, 3)), name
        assert decoder == ("jpeg" if name == "orientation_1.jpg" else None), name  # TensorFlow's decoder ignores EXIF
        with Image.open(tmp_path / name) as img:
            assert upright_size(img) == arr.shape[:2], name


def test_training_folders_and_data_check_read_photos_upright(tmp_path):
    shown = write_oriented_photos(tmp_path)
    out = {n.decode(): x[0] for x, n in data.folder_images(tmp_path, multiple=1).as_numpy_iterator()}
    for name, expected in shown.items():
        np.testing.assert_array_equal(out[name], expected.astype(np.float32) / 127.5 - 1.0, err_msg=name)
    sideways = tmp_path / "sideways"
    for value in (6, 8):
        (sideways / f"orientation_{value}.jpg").parent.mkdir(exist_ok=True)
        (tmp_path / f"orientation_{value}.jpg").rename(sideways / f"orientation_{value}.jpg")
    assert "2 images, size 24x40" in str(data.check(sideways))  # width x height as shown


def test_encoded_bytes_held_in_memory_are_decoded_by_tensorflow_too(tmp_path):
    import tensorflow as tf

    from replication.data.images import ImageSet
    from replication.data.pipeline import _image

    decoders = _files_of_every_decoder(tmp_path)
    names = sorted(decoders)
    held = ImageSet("in memory", names, [(tmp_path / n).read_bytes() for n in names]).validate(False, False)
    assert held.decoders == [decoders[n] for n in names]
    ds = tf.data.Dataset.range(len(names)).map(lambda i: _image(held, i))
    for name, arr in zip(names, ds.as_numpy_iterator()):
        np.testing.assert_array_equal(arr, data.decode(tmp_path / name), err_msg=name)


def test_a_decoders_complaint_is_one_line_without_tensorflows_node_names(tmp_path):
    from replication.data.images import scan

    save(tmp_path / "cut.jpg", np.random.default_rng(0).integers(0, 256, (32, 32, 3)), quality=90)
    blob = (tmp_path / "cut.jpg").read_bytes()
    (tmp_path / "cut.jpg").write_bytes(blob[: len(blob) // 2])
    (error,) = [r.error for r in scan([str(tmp_path / "cut.jpg")])]
    assert error.startswith("InvalidArgumentError: ") and "\n" not in error
    assert "{{" not in error and "[Op:" not in error


# ------------------------------------------------------------------ jitter


def _base(**kw):
    cfg = dict(source="folder", preprocess="resize_and_crop", load_size=20, crop_size=16, flip=True,
               resize_method="bilinear", batch_size=2, seed=0)
    cfg.update(kw)
    return data_section(**cfg)


def _noise_root(root, n=4, size=24):
    rng = np.random.default_rng(0)
    for split in ("trainA", "trainB", "testA", "testB"):
        for i in range(n):
            save(root / split / f"{i}.png", rng.integers(0, 256, (size, size + 4, 3)))
    return root


def _black_white_root(root, n=4, size=24):
    for split in ("trainA", "trainB", "testA", "testB"):
        for i in range(n):
            arr = np.zeros((size, size, 3), np.uint8)
            arr[:, size // 2 :] = 255  # left half black, right half white: every crop sees both
            save(root / split / f"{i}.png", arr)
    return root


def test_output_shape_dtype_and_range(tmp_path):
    ds = data.unpaired(_base(root=_black_white_root(tmp_path)))
    batches = list(ds.epoch(0).as_numpy_iterator())
    assert ds.epoch(0).element_spec[0].shape.as_list() == [2, 16, 16, 3]  # static, for XLA
    assert len(batches) == ds.steps_per_epoch == 2
    for a, b in batches:
        for x in (a, b):
            assert x.shape == (2, 16, 16, 3) and x.dtype == np.float32
            assert -1.0 <= x.min() < -0.99 and 0.99 < x.max() <= 1.0  # black is -1, white is 1


def _gradient_pairs(root, n=1, h=32, w=32):
    """Paired side-by-side files: A = gradient, B = its negative (255 - A)."""
    for split in ("train", "test"):
        for i in range(n):
            a = gradient_image(h, w)
            save(root / split / f"{i}.png", np.concatenate([a, 255 - a], axis=1))
    return root


def _offset(x):
    """(oy, ox) of a crop of gradient_image, read from its top-left pixel."""
    rgb = np.round((x[0, 0] + 1.0) * 127.5).astype(int)
    return rgb[1] // 8, rgb[0] // 8


def test_crops_vary_across_epochs(tmp_path):
    ds = data.paired(_base(source="paired", root=_gradient_pairs(tmp_path), preprocess="crop",
                           crop_size=16, flip=False, batch_size=1))
    offsets = {_offset(next(ds.epoch(e).as_numpy_iterator())[0][0]) for e in range(12)}
    assert len(offsets) >= 5
    assert all(0 <= oy <= 16 and 0 <= ox <= 16 for oy, ox in offsets)


def test_paired_a_and_b_get_the_same_crop_and_flip(tmp_path):
    ds = data.paired(_base(source="paired", root=_gradient_pairs(tmp_path, n=3), preprocess="crop",
                           crop_size=16, flip=True, batch_size=1))
    flipped = 0
    for e in range(8):
        for a, b in ds.epoch(e).as_numpy_iterator():
            np.testing.assert_allclose(b, -a, atol=1e-5)  # B is 255 - A pixel for pixel: same window, same flip
            flipped += int(a[0, 0, 0, 0] > a[0, 0, -1, 0])
    assert 0 < flipped < 24  # flips happen, but not always


def test_unpaired_domains_get_their_own_crops(tmp_path):
    root = tmp_path / "u"
    for split in ("trainA", "trainB", "testA", "testB"):
        save(root / split / "0.png", gradient_image(32, 32))
    ds = data.unpaired(_base(root=root, preprocess="crop", crop_size=16, flip=False, batch_size=1))
    differ = sum(_offset(a[0]) != _offset(b[0]) for e in range(6) for a, b in ds.epoch(e).as_numpy_iterator())
    assert differ >= 3


def test_flip_off_never_flips_and_flip_on_does(tmp_path):
    root = _gradient_pairs(tmp_path, n=4)

    def left_to_right(flip):
        ds = data.unpaired(_base(source="paired", root=root, preprocess="resize_and_crop", load_size=36,
                                 crop_size=32, flip=flip, batch_size=1))
        signs = []
        for e in range(6):
            for a, _ in ds.epoch(e).as_numpy_iterator():
                signs.append(bool(a[0, 0, -1, 0] > a[0, 0, 0, 0]))  # red grows to the right unless flipped
        return signs

    assert all(left_to_right(False))
    on = left_to_right(True)
    assert not all(on) and any(on)


def test_nearest_neighbour_keeps_the_original_pixel_values(tmp_path):
    rng = np.random.default_rng(1)
    palette = np.array([[3, 200, 17], [250, 0, 99], [128, 64, 32], [0, 0, 0], [255, 255, 255]], np.uint8)
    root = tmp_path / "p"
    for split in ("trainA", "trainB", "testA", "testB"):
        for i in range(2):
            save(root / split / f"{i}.png", palette[rng.integers(0, 5, (17, 19))])
    allowed = {tuple(c) for c in palette}

    def colours(method):
        ds = data.unpaired(_base(root=root, load_size=23, crop_size=20, resize_method=method, batch_size=1))
        seen = set()
        for a, b in ds.epoch(0).as_numpy_iterator():
            for x in (a, b):
                rgb = (x.reshape(-1, 3) + 1.0) * 127.5
                if method == "nearest":
                    assert np.abs(rgb - np.round(rgb)).max() < 1e-3
                seen |= {tuple(c) for c in np.round(rgb).astype(int)}
        return seen

    assert colours("nearest") <= allowed
    assert not colours("bilinear") <= allowed  # the check can fail: bilinear mixes colours


def test_scale_width_keeps_aspect_and_takes_the_centre(tmp_path):
    root = tmp_path / "s"
    for split in ("trainA", "trainB", "testA", "testB"):
        save(root / split / "0.png", gradient_image(20, 30))  # 30 wide, 20 high
    cfg = _base(root=root, load_size=30, crop_size=16, resize_method="nearest", flip=False, batch_size=1)
    centre = data.unpaired(dict(cfg, preprocess="scale_width"))
    offsets = {_offset(a[0]) for e in range(5) for a, _ in centre.epoch(e).as_numpy_iterator()}
    assert offsets == {(2, 7)}  # width stays 30 (= load_size), height 20: centre window (20-16)//2, (30-16)//2
    jittered = data.unpaired(dict(cfg, preprocess="scale_width_and_crop"))
    offsets = {_offset(a[0]) for e in range(8) for a, _ in jittered.epoch(e).as_numpy_iterator()}
    assert len(offsets) >= 3 and all(oy <= 4 and ox <= 14 for oy, ox in offsets)


def test_scale_width_height_never_below_crop(tmp_path):
    root = tmp_path / "wide"
    for split in ("trainA", "trainB", "testA", "testB"):
        save(root / split / "0.png", gradient_image(8, 40))  # very wide: scaled height 6 < crop 16 -> 16
    ds = data.unpaired(_base(root=root, preprocess="scale_width_and_crop", load_size=30, crop_size=16, batch_size=1))
    a, b = next(ds.epoch(0).as_numpy_iterator())
    assert a.shape == (1, 16, 16, 3)


def test_preprocess_none_trains_on_images_as_they_are(tmp_path):
    root = tmp_path / "n"
    img = gradient_image(16, 16)
    for split in ("trainA", "trainB", "testA", "testB"):
        save(root / split / "0.png", img)
    ds = data.unpaired(_base(root=root, preprocess="none", crop_size=16, flip=False, batch_size=1))
    a, _ = next(ds.epoch(3).as_numpy_iterator())
    np.testing.assert_allclose((a[0] + 1.0) * 127.5, img, atol=1e-3)


def test_test_images_round_each_side_down_with_a_centre_crop(tmp_path):
    root = tmp_path / "t"
    img = gradient_image(21, 30)  # 30 wide, 21 high
    for split in ("trainA", "trainB", "testA", "testB"):
        save(root / split / "0.png", img)
    [(x, name)] = list(data.test_images(_base(root=root), "A", multiple=4).as_numpy_iterator())
    assert x.shape == (1, 20, 28, 3) and name == b"0.png"
    np.testing.assert_allclose((x[0] + 1.0) * 127.5, img[0:20, 1:29], atol=1e-3)


def test_samples_are_resized_without_jitter(tmp_path):
    root = _noise_root(tmp_path, n=3)
    ds = data.unpaired(_base(root=root, resize_method="nearest"))
    a1, b1 = ds.samples(2)
    a2, _ = data.unpaired(_base(root=root, resize_method="nearest", seed=9)).samples(2)
    assert a1.shape == (2, 16, 16, 3) and b1.shape == (2, 16, 16, 3)
    np.testing.assert_array_equal(a1.numpy(), a2.numpy())  # no randomness in samples
    first = data.decode(root / "testA" / "0.png")
    rows = ((np.arange(16) + 0.5) * 24 / 16).astype(int)  # nearest, half-pixel centres
    cols = ((np.arange(16) + 0.5) * 28 / 16).astype(int)
    np.testing.assert_allclose((a1.numpy()[0] + 1) * 127.5, first[rows][:, cols], atol=1e-3)


@pytest.mark.parametrize("key,value", [("preprocess", "zoom"), ("resize_method", "magic"), ("crop_size", 0),
                                       ("batch_size", "two")])
def test_bad_settings_are_config_errors(key, value):
    from replication.errors import ConfigError

    with pytest.raises(ConfigError, match=key):
        data_section(**{key: value})


def test_load_size_below_crop_size_is_refused_when_the_mode_resizes_then_crops():
    from replication.errors import ConfigError

    with pytest.raises(ConfigError) as error:
        data_section(load_size=100, crop_size=128)
    assert str(error.value) == (
        "data.load_size=100 is smaller than data.crop_size=128: preprocess resize_and_crop resizes to load_size "
        "and then crops crop_size, so load_size must be at least crop_size."
    )
    assert data_section(load_size=100, crop_size=128, preprocess="crop")["crop_size"] == 128


def label_map_jpeg(tmp_path) -> np.ndarray:
    """A Cityscapes-like label map (palette regions on void), saved and read back as a JPEG, as
    the published label maps are."""
    rng = np.random.default_rng(3)
    palette = np.array([[128, 64, 128], [244, 35, 232], [70, 70, 70], [107, 142, 35], [70, 130, 180], [220, 20, 60]])
    label = np.zeros((256, 256, 3), np.uint8)
    for k in range(60):
        y, x, h, w = rng.integers(0, 256, 4)
        label[y : y + h // 4 + 2, x : x + w // 4 + 2] = palette[k % len(palette)]
    Image.fromarray(label).save(tmp_path / "label.jpg", quality=75)
    return np.asarray(Image.open(tmp_path / "label.jpg"))


@pytest.mark.parametrize("size", [(143, 143), (286, 286), (64, 64), (300, 200), (200, 600), (1000, 40)])
def test_bicubic_resize_gives_pillows_pixels_on_a_photo_and_a_label_map(tmp_path, size):
    """The official code resizes with PIL's bicubic filter: a shrink (the paper's 256 -> 143 for
    Cityscapes), an enlargement (256 -> 286), and one axis shrunk while the other grows, against
    Pillow itself on a photograph (matplotlib's sample photo) and on a JPEG label map. Within
    rounding: Pillow sums in 22-bit fixed point, TensorFlow in float, so a pixel at a half may round
    the other way in either pass (at most 2 levels; almost every pixel is equal)."""
    from matplotlib import cbook

    from replication.data.transforms import resize

    photo = np.asarray(Image.open(cbook.get_sample_data("grace_hopper.jpg")).convert("RGB"))
    for image in (photo, label_map_jpeg(tmp_path)):
        pillow = np.asarray(Image.fromarray(image).resize((size[1], size[0]), Image.BICUBIC)).astype(int)
        kit = resize(image.astype(np.float32), list(size), "bicubic").numpy()
        assert kit.shape == (*size, 3) and np.array_equal(kit, np.round(kit))
        difference = np.abs(kit.astype(int) - pillow)
        assert difference.max() <= 2 and np.mean(difference > 0) < 0.01
