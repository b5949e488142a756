"""The training and test transforms, in TensorFlow.

The jitter draws its randomness from one stateless seed per element
(`tf.random.stateless_uniform`), so the same (seed, epoch, element) always
gives the same crop and flip. Images arrive decoded (uint8 HxWx3, see
`images.py`).

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

import numpy as np

from replication import pixels


def _tf():
    import tensorflow as tf

    return tf


def resize(image, size, method: str):
    """Resize float32 HxWxC (0..255) to `size` (h, w).

    `bicubic` is the official code's resize, PIL's `Image.resize(..., BICUBIC)`: antialiased when it
    shrinks, one axis at a time with the result rounded to 8 bits after each pass (the passes'
    overshoot is clipped in between, which decides edges next to saturated colours), the shrinking
    pass first when one axis shrinks and the other grows. It matches Pillow's pixels within
    rounding (tests/test_data_transforms.py). `nearest` keeps the original values; `bilinear` and
    `area` are TensorFlow's (bilinear antialiased)."""
    tf = _tf()
    if method == "bicubic":
        return pil_bicubic(image, size)
    method_tf = {
        "nearest": tf.image.ResizeMethod.NEAREST_NEIGHBOR,
        "bilinear": tf.image.ResizeMethod.BILINEAR,
        "area": tf.image.ResizeMethod.AREA,
    }[method]
    out = tf.image.resize(image, size, method=method_tf, antialias=method == "bilinear")
    if method != "nearest":  # antialiased bilinear can exceed 255 by a rounding error
        out = tf.clip_by_value(out, 0.0, 255.0)
    return out


def pil_bicubic(image, size):
    """PIL's two-pass antialiased bicubic resize of float32 HxWxC (0..255) to `size` (h, w)."""
    tf = _tf()
    h, w = tf.shape(image)[0], tf.shape(image)[1]
    new_h, new_w = tf.cast(size[0], tf.int32), tf.cast(size[1], tf.int32)

    def one_pass(x, to_h, to_w):
        out = tf.image.resize(x, tf.stack([to_h, to_w]), method="bicubic", antialias=True)
        return tf.clip_by_value(tf.round(out), 0.0, 255.0)

    def horizontal_first():
        return one_pass(one_pass(image, h, new_w), new_h, new_w)

    def vertical_first():
        return one_pass(one_pass(image, new_h, w), new_h, new_w)

    unchanged = tf.logical_and(tf.equal(h, new_h), tf.equal(w, new_w))
    vertical_shrinks_horizontal_grows = tf.logical_and(new_h < h, new_w > w)
    return tf.cond(unchanged, lambda: image,
                   lambda: tf.cond(vertical_shrinks_horizontal_grows, vertical_first, horizontal_first))


def to_unit_range(image):
    """0..255 -> [-1, 1] float32 (the reference `Normalize((0.5,)*3, (0.5,)*3)`)."""
    tf = _tf()
    return tf.clip_by_value(pixels.to_unit(tf.cast(image, tf.float32)), -1.0, 1.0)


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
