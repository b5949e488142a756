"""Decoding to 8-bit RGB and the training/test transforms.

Decoding uses Pillow, which reads every format the kit accepts and lets us
convert grayscale, RGBA, palette, 16-bit and CMYK images to 8-bit RGB the way
the reference code does (`Image.open(path).convert('RGB')`), except that 16-bit
images are scaled (v / 257) instead of clipped.

The jitter is written with TensorFlow ops and draws its randomness from one
stateless seed per element (`tf.random.stateless_uniform`), so the same
(seed, epoch, element) always gives the same crop and flip.

Preprocessing modes (`data.preprocess`), as in the reference code
(pytorch-CycleGAN-and-pix2pix `get_transform`), with one change so every
training batch has the fixed shape (batch, crop_size, crop_size, 3):

- `resize_and_crop`: resize to load_size x load_size, random crop crop_size.
- `crop`: random crop crop_size from the image as it is (images must be at
  least crop_size on both sides).
- `scale_width_and_crop`: scale the width to load_size keeping the aspect
  ratio (height at least crop_size), then a random crop crop_size.
- `scale_width`: the same scaling, then the centre crop_size x crop_size
  window (the reference keeps the whole scaled image, which only works with
  batch size 1; with load_size == crop_size this keeps the full width).
- `none`: training images are used as they are and must be exactly
  crop_size x crop_size. At test time `none` rounds each side down to a
  multiple the network accepts (centre crop).
"""

from __future__ import annotations

import io
import os
import warnings

import numpy as np

from replication import config
from replication.errors import ConfigError

IMAGE_EXTENSIONS = (".jpg", ".jpeg", ".png", ".bmp", ".webp", ".tif", ".tiff")
MODES = ("resize_and_crop", "crop", "scale_width", "scale_width_and_crop", "none")
RESIZE_METHODS = ("nearest", "bilinear", "bicubic", "area")

# The `data:` section of experiments/base.yaml, the one home of its defaults; a data_cfg may leave keys out.
DEFAULTS = config.load_chain(config.BASE)["data"]


def settings(data_cfg: dict) -> dict:
    """The data config with defaults filled in and every value checked."""
    cfg = dict(DEFAULTS)
    cfg.update({k: v for k, v in (data_cfg or {}).items()})
    if cfg["preprocess"] not in MODES:
        raise ConfigError(f"data.preprocess is '{cfg['preprocess']}'; choose one of {', '.join(MODES)}.")
    if cfg["resize_method"] not in RESIZE_METHODS:
        raise ConfigError(
            f"data.resize_method is '{cfg['resize_method']}'; choose one of {', '.join(RESIZE_METHODS)}."
        )
    for key in ("load_size", "crop_size", "batch_size"):
        value = cfg[key]
        if isinstance(value, bool) or not isinstance(value, int) or value < 1:
            raise ConfigError(f"data.{key} must be a positive whole number, got {value!r}.")
    if cfg["preprocess"] in ("resize_and_crop", "scale_width", "scale_width_and_crop"):
        if cfg["load_size"] < cfg["crop_size"]:
            raise ConfigError(
                f"data.load_size ({cfg['load_size']}) is smaller than data.crop_size ({cfg['crop_size']}); "
                f"preprocess '{cfg['preprocess']}' resizes to load_size and then crops crop_size, "
                "so load_size must be >= crop_size."
            )
    if cfg["direction"] not in ("AtoB", "BtoA"):
        raise ConfigError(f"data.direction is '{cfg['direction']}'; choose AtoB or BtoA.")
    try:
        cfg["seed"] = int(cfg["seed"])
    except (TypeError, ValueError):
        raise ConfigError(f"data.seed must be a whole number, got {cfg['seed']!r}.") from None
    for key in ("flip", "cache", "skip_bad_images"):
        cfg[key] = bool(cfg[key])
    return cfg


# --------------------------------------------------------------------------- decoding


def is_image_name(name: str) -> bool:
    base = os.path.basename(name)
    return not base.startswith(".") and base.lower().endswith(IMAGE_EXTENSIONS)


def to_rgb8(img) -> np.ndarray:
    """A Pillow image as uint8 HxWx3 RGB."""
    mode = img.mode
    if mode in ("I;16", "I;16B", "I;16L", "I;16N", "I"):
        # 16-bit grayscale (Pillow opens 16-bit PNGs as I;16 or I): scale, do not clip.
        arr = np.asarray(img).astype(np.float64)
        arr = np.clip(np.round(arr / 257.0), 0, 255).astype(np.uint8)
        return np.repeat(arr[:, :, None], 3, axis=2)
    if mode == "F":
        arr = np.clip(np.round(np.asarray(img, dtype=np.float64)), 0, 255).astype(np.uint8)
        return np.repeat(arr[:, :, None], 3, axis=2)
    if mode == "P" and "transparency" in img.info:
        img = img.convert("RGBA")
    if img.mode != "RGB":
        img = img.convert("RGB")
    arr = np.asarray(img, dtype=np.uint8)
    return np.ascontiguousarray(arr)


def _open(source):
    from PIL import Image

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # decompression-bomb and EXIF warnings
        if isinstance(source, (bytes, bytearray)):
            img = Image.open(io.BytesIO(source))
        else:
            img = Image.open(source)
        img.load()
    return img


def decode(source) -> np.ndarray:
    """Decode a file path or encoded bytes to uint8 HxWx3 RGB. Raises whatever Pillow raises."""
    img = _open(source)
    try:
        return to_rgb8(img)
    finally:
        img.close()


def decode_with_mode(source) -> tuple[np.ndarray, str]:
    img = _open(source)
    try:
        return to_rgb8(img), img.mode
    finally:
        img.close()


def encoded_extension(blob: bytes) -> str:
    if blob[:3] == b"\xff\xd8\xff":
        return ".jpg"
    if blob[:8] == b"\x89PNG\r\n\x1a\n":
        return ".png"
    if blob[:2] == b"BM":
        return ".bmp"
    if blob[:4] == b"RIFF" and blob[8:12] == b"WEBP":
        return ".webp"
    return ".png"


# --------------------------------------------------------------------------- TF transforms


def _tf():
    import tensorflow as tf

    return tf


def resize(image, size, method: str):
    """Resize float32 HxWxC (0..255) to `size` (h, w). Nearest keeps the original values."""
    tf = _tf()
    method_tf = {
        "nearest": tf.image.ResizeMethod.NEAREST_NEIGHBOR,
        "bilinear": tf.image.ResizeMethod.BILINEAR,
        "bicubic": tf.image.ResizeMethod.BICUBIC,
        "area": tf.image.ResizeMethod.AREA,
    }[method]
    out = tf.image.resize(image, size, method=method_tf, antialias=method in ("bilinear", "bicubic"))
    if method != "nearest":  # bicubic overshoots; antialiased bilinear can exceed 255 by a rounding error
        out = tf.clip_by_value(out, 0.0, 255.0)
    return out


def to_unit_range(image):
    """0..255 -> [-1, 1] float32 (the reference `Normalize((0.5,)*3, (0.5,)*3)`)."""
    tf = _tf()
    return tf.clip_by_value(tf.cast(image, tf.float32) / 127.5 - 1.0, -1.0, 1.0)


def scaled_width_size(h, w, load_size: int, crop_size: int):
    """(new_h, new_w) of the reference `__scale_width`: width -> load_size, height keeps the ratio, >= crop_size."""
    tf = _tf()
    new_h = tf.cast(tf.cast(load_size, tf.float64) * tf.cast(h, tf.float64) / tf.cast(w, tf.float64), tf.int32)
    new_h = tf.maximum(new_h, crop_size)
    return new_h, tf.constant(load_size, tf.int32)


def jitter(images, seed, cfg: dict):
    """Training transform of one element.

    `images`: list of uint8 HxWx3 tensors that get the SAME geometry (a pair in
    pix2pix, or one image). `seed`: int64 [2], the element's stateless seed.
    Returns float32 crop x crop x 3 tensors in [-1, 1].
    """
    tf = _tf()
    mode, load, crop = cfg["preprocess"], cfg["load_size"], cfg["crop_size"]
    shape = tf.shape(images[0])
    h, w = shape[0], shape[1]
    u = tf.random.stateless_uniform([3], seed=seed, dtype=tf.float32)

    out = [tf.cast(x, tf.float32) for x in images]
    if mode == "resize_and_crop":
        out = [resize(x, [load, load], cfg["resize_method"]) for x in out]
        h, w = tf.constant(load), tf.constant(load)
    elif mode in ("scale_width", "scale_width_and_crop"):
        new_h, new_w = scaled_width_size(h, w, load, crop)
        out = [resize(x, tf.stack([new_h, new_w]), cfg["resize_method"]) for x in out]
        h, w = new_h, new_w

    range_y, range_x = h - crop, w - crop
    if mode in ("resize_and_crop", "crop", "scale_width_and_crop"):
        oy = tf.minimum(tf.cast(u[0] * tf.cast(range_y + 1, tf.float32), tf.int32), range_y)
        ox = tf.minimum(tf.cast(u[1] * tf.cast(range_x + 1, tf.float32), tf.int32), range_x)
    elif mode == "scale_width":
        oy, ox = range_y // 2, range_x // 2
    else:  # none: already crop x crop (checked when the dataset is built)
        oy, ox = tf.constant(0), tf.constant(0)
    out = [x[oy : oy + crop, ox : ox + crop, :] for x in out]

    if cfg["flip"]:
        do_flip = u[2] < 0.5
        out = [tf.cond(do_flip, lambda x=x: tf.reverse(x, axis=[1]), lambda x=x: x) for x in out]
    return [tf.ensure_shape(to_unit_range(x), [crop, crop, 3]) for x in out]


def resize_to_square(image: np.ndarray, size: int, method: str):
    """No jitter: the whole image resized to size x size, as float32 [-1, 1] (a tf.Tensor)."""
    tf = _tf()
    x = tf.convert_to_tensor(image, tf.float32)
    return to_unit_range(resize(x, [size, size], method))


def center_crop_to_multiple(image, multiple: int):
    """Test-time `none`: each side rounded DOWN to a multiple of `multiple` (centre crop)."""
    tf = _tf()
    shape = tf.shape(image)
    h, w = shape[0], shape[1]
    nh, nw = (h // multiple) * multiple, (w // multiple) * multiple
    oy, ox = (h - nh) // 2, (w - nw) // 2
    return image[oy : oy + nh, ox : ox + nw, :]


def describe_sizes_ok(cfg: dict) -> str:
    mode, load, crop = cfg["preprocess"], cfg["load_size"], cfg["crop_size"]
    if mode == "crop":
        return f"preprocess 'crop' needs images at least {crop}x{crop} (crop_size); use a smaller data.crop_size or preprocess 'resize_and_crop'"
    if mode == "none":
        return f"preprocess 'none' trains on images as they are, so they must be exactly {crop}x{crop} (crop_size); or use preprocess 'resize_and_crop' or 'crop'"
    return f"preprocess '{mode}' (load_size {load}, crop_size {crop}) takes any size"
