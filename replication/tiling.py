"""How an image goes through a network within the memory free now: padded to the network's size
rule, in one pass if its activations fit, else in overlapping tiles blended with linear ramps, in
smaller tiles again when an allocation fails all the same. `translate`, `evaluate` and the
Cityscapes scorer run their networks through it (`translate_whole`); the memory free is
replication/memory.py's."""

from __future__ import annotations

import dataclasses
import math
import sys
import weakref
from dataclasses import dataclass

import numpy as np

from replication.errors import KitError
from replication.memory import failure_kind, free_memory, out_of_memory
from replication.pixels import to_unit

MEMORY_SHARE = 0.5  # of the free memory, for one image; the rest is left to TensorFlow, the model and others
IMAGE_BYTES_PER_PIXEL = 32  # decoded, padded, the blended float sum, the result and its encoding
# On the most that is alive at once (below): a layer's temporaries (instance norm's centred copy, say)
# and what the allocator keeps come on top. docs/translate-and-evaluate.md has the measured peaks.
ACTIVATION_MARGIN = 2.5
SMALLEST_TILE = 128  # px; smaller tiles see too little of the scene to translate it well
TILE_OVERLAP = 4  # tiles overlap by a quarter of their side


def activation_bytes_per_pixel(generator) -> float:
    """What a forward pass holds per input pixel at its fullest (with a margin): walking the layers in
    order, each layer's output is alive from that layer until the last layer that reads it, as in a
    traced call (Translator's), which frees each tensor after its last use.

    Computed from the layers' output shapes on a probe size, without running the network.
    """
    import keras

    multiple, minimum = input_rule(generator)
    side = smallest_tile(multiple, minimum)
    layers = [layer for layer in generator.layers if not isinstance(layer, keras.layers.InputLayer)]
    probe = keras.Model(generator.inputs, [layer.output for layer in layers])
    image = generator.inputs[0]
    specs = keras.tree.flatten(probe.compute_output_spec(keras.KerasTensor((1, side, side, image.shape[-1]))))
    size = {id(layer.output): math.prod(s.shape[1:]) * np.dtype(s.dtype).itemsize for layer, s in zip(layers, specs)}
    size[id(image)] = side * side * image.shape[-1] * np.dtype(image.dtype).itemsize
    last_reader = {id(t): i for i, layer in enumerate(layers) for t in keras.tree.flatten(layer.input)}
    alive = fullest = size[id(image)]
    for i, layer in enumerate(layers):
        alive += size[id(layer.output)]
        fullest = max(fullest, alive)
        alive -= sum(size[key] for key in {id(t) for t in keras.tree.flatten(layer.input)} if last_reader[key] == i)
    return ACTIVATION_MARGIN * fullest / side**2


def input_rule(generator) -> tuple[int, int]:
    from replication import networks  # TensorFlow: `translate` imports this module before start_tensorflow

    return networks.input_rule(generator)


def smallest_tile(multiple: int, minimum: int) -> int:
    return max(minimum, round_up(SMALLEST_TILE, multiple))


def round_up(n: int, multiple: int) -> int:
    return -(-n // multiple) * multiple


class Skipped(Exception):
    """An input that cannot be translated (unreadable, too large, unwritable); the message says why."""


class TooLarge(Skipped):
    """An image whose own pixels do not fit in the memory there is."""


@dataclass
class Plan:
    """How one image is translated: padded to `padded` (top, left offsets), in tiles of `tile`."""

    size: tuple  # (h, w) of the input
    padded: tuple  # (H, W)
    offset: tuple  # (top, left) of the input inside the padded image
    tile: tuple  # (th, tw); == padded for one whole pass
    multiple: int = 1  # the network's size rule, which every tile keeps
    minimum: int = 1

    def smaller(self) -> Plan | None:
        """The same image in tiles half as large each way (not below the smallest tile), or None
        when the tiles are the smallest already."""
        smallest = smallest_tile(self.multiple, self.minimum)
        tile = tuple(min(side, max(smallest, t // 2 // self.multiple * self.multiple)) for t, side in zip(self.tile, self.padded))
        return None if tile == tuple(self.tile) else dataclasses.replace(self, tile=tile)


@dataclass
class Memory:
    budget: int  # bytes one image may take
    per_pixel: float  # the network's activations per input pixel

    def plan(self, height: int, width: int, multiple: int, minimum: int) -> Plan:
        """Pad to the size rule; one whole pass if its activations fit, else the largest tiles that do."""
        padded = (max(minimum, round_up(height, multiple)), max(minimum, round_up(width, multiple)))
        offset = ((padded[0] - height) // 2, (padded[1] - width) // 2)
        H, W = padded
        fits = int((self.budget - IMAGE_BYTES_PER_PIXEL * H * W) // self.per_pixel)  # pixels one pass may take
        if H * W <= fits:
            return Plan((height, width), padded, offset, padded, multiple, minimum)
        smallest = smallest_tile(multiple, minimum)
        th = min(H, max(smallest, math.isqrt(max(fits, 0)) // multiple * multiple))
        tw = min(W, fits // th // multiple * multiple)
        if tw < min(W, smallest) or th * tw > fits:
            raise TooLarge(self.refusal(height, width, smallest))
        return Plan((height, width), padded, offset, (th, tw), multiple, minimum)

    def tiling_note(self, name: str, plan: Plan) -> str:
        (h, w), (H, W), (th, tw) = plan.size, plan.padded, plan.tile
        count = len(tile_starts(H, th)) * len(tile_starts(W, tw))
        whole = IMAGE_BYTES_PER_PIXEL * H * W + self.per_pixel * H * W
        return (
            f"{name}: {w}x{h} pixels, translated in {count} overlapping tiles of {tw}x{th} (a whole pass would need "
            f"about {gb(whole)}, {gb(self.budget)} is there for it); instance norm sees each tile alone, so seams are blended"
        )

    def refusal(self, height: int, width: int, smallest: int) -> str:
        largest = int((self.budget - self.per_pixel * smallest**2) // IMAGE_BYTES_PER_PIXEL)
        need = IMAGE_BYTES_PER_PIXEL * height * width + self.per_pixel * smallest**2
        fits = (
            f"the largest that fits is about {math.isqrt(largest)}x{math.isqrt(largest)} ({largest / 1e6:.0f} megapixels)"
            if largest > 0 else "not even one tile fits"
        )
        return (
            f"{width}x{height} pixels is too large for the memory free now: it needs about {gb(need)} and "
            f"{gb(self.budget)} is there for it; {fits}. Downscale it, or free memory and run again"
        )


    def out_of_memory(self, plan: Plan, err: BaseException) -> str:
        """Why an image is skipped when even its smallest tiles ran out of memory, and what it needs."""
        (h, w), (H, W), (th, tw) = plan.size, plan.padded, plan.tile
        need = IMAGE_BYTES_PER_PIXEL * H * W + self.per_pixel * th * tw
        return (
            f"{w}x{h} pixels ran out of memory ({failure_kind(err)}) even in tiles of {tw}x{th}, the smallest: it "
            f"needs about {gb(need)} ({gb(free_memory())} is free now); free memory or raise the limit, or "
            "downscale it, and run again"
        )


def gb(n: float) -> str:
    return f"{n / 2**30:.1f} GB"


def pad(image: np.ndarray, plan: Plan) -> np.ndarray:
    """Reflection padding, as the networks pad; an image too small to reflect that far repeats its edges."""
    (h, w), (H, W), (top, left) = plan.size, plan.padded, plan.offset
    widths = ((top, H - h - top), (left, W - w - left), (0, 0))
    reflects = max(widths[0]) < h and max(widths[1]) < w
    return np.pad(image, widths, mode="reflect" if reflects else "symmetric")


def run_network(translator, pixels: np.ndarray) -> np.ndarray:
    """uint8 HxWx3 (or float32 already in [-1, 1]) in, float32 HxWxC out (an image in [-1, 1])."""
    batch = to_unit(pixels[np.newaxis]) if pixels.dtype == np.uint8 else pixels[np.newaxis]
    return np.asarray(translator(batch))[0]


def tile_starts(length: int, tile: int) -> list:
    """Where tiles of `tile` start along `length`, overlapping by about a quarter; the last ends at the end."""
    if tile >= length:
        return [0]
    step = tile - tile // TILE_OVERLAP
    return [*range(0, length - tile, step), length - tile]


def ramp(tile: int) -> np.ndarray:
    """A tile's blending weight along one side: rising over its first quarter, falling over its last."""
    overlap = max(1, tile // TILE_OVERLAP)
    return np.minimum(np.minimum(np.arange(1, tile + 1), np.arange(tile, 0, -1)), overlap).astype(np.float32) / overlap


def coverage(length: int, starts: list, weights: np.ndarray) -> np.ndarray:
    total = np.zeros(length, np.float32)
    for start in starts:
        total[start : start + len(weights)] += weights
    return total


def translate_padded(translator, pixels: np.ndarray, tile: tuple, tiles_done=None) -> np.ndarray:
    """The padded image translated whole, or tile by tile with the overlaps blended (weights separable
    in rows and columns, so the sum of weights is the product of two 1-D sums)."""
    H, W = pixels.shape[:2]
    if tuple(tile) == (H, W):
        return run_network(translator, pixels)
    (th, tw), rows, cols = tile, tile_starts(H, tile[0]), tile_starts(W, tile[1])
    wy, wx = ramp(th), ramp(tw)
    blended = None
    for y in rows:
        for x in cols:
            out = run_network(translator, pixels[y : y + th, x : x + tw])
            if blended is None:  # as many channels as the network gives (3, or a scorer's classes)
                blended = np.zeros((H, W, out.shape[-1]), np.float32)
            blended[y : y + th, x : x + tw] += out * wy[:, None, None] * wx[None, :, None]
            if tiles_done:
                tiles_done()
    blended /= coverage(H, rows, wy)[:, None, None]
    blended /= coverage(W, cols, wx)[None, :, None]
    return blended


def run_fitting(network, pixels: np.ndarray, plan: Plan, memory: Memory, name: str, say, progress=None) -> np.ndarray:
    """`pixels` (padded as `plan` says) through `network` in `plan`'s tiles. When an allocation
    fails, again in tiles half as large, saying so in one line; when even the smallest tiles fail,
    TooLarge names what the image needs. `progress(plan)` gives the tiles' progress callback."""
    while True:
        try:
            return translate_padded(network, pixels, plan.tile, progress(plan) if progress else None)
        except Exception as err:  # noqa: BLE001 - only a failed allocation is retried
            if not out_of_memory(err):
                raise
            smaller = plan.smaller()
            if smaller is None:
                raise TooLarge(memory.out_of_memory(plan, err)) from None
            (th, tw), (sh, sw) = plan.tile, smaller.tile
            how = "in one pass" if plan.tile == plan.padded else f"in tiles of {tw}x{th}"
            say(f"{name}: out of memory {how} ({failure_kind(err)}); translating it again in tiles of {sw}x{sh}")
            plan = smaller


def memory_now(network) -> Memory:
    """What one image may take now (MEMORY_SHARE of the least any limit leaves) through `network`."""
    if network not in PER_PIXEL:
        PER_PIXEL[network] = activation_bytes_per_pixel(network)
    return Memory(int(MEMORY_SHARE * free_memory()), PER_PIXEL[network])


PER_PIXEL = weakref.WeakKeyDictionary()  # a network's activation_bytes_per_pixel, worked out once


def translate_whole(network, model, pixels: np.ndarray, name: str, say=None) -> np.ndarray:
    """float32 HxWxC out of `network` (a callable on [1, H, W, 3] in [-1, 1]; `model` its Keras
    model) for one image, within the memory free now, as translate runs it: in tiles if a whole
    pass does not fit, smaller ones if an allocation fails. An image that does not fit even so
    ends the command in one line naming it and what it needs (evaluate cannot score without it)."""
    say = say or say_on_stderr
    memory = memory_now(model)
    try:
        plan = memory.plan(*pixels.shape[:2], *input_rule(model))
        if plan.tile != plan.padded:
            say(memory.tiling_note(name, plan))
        (h, w), (top, left) = plan.size, plan.offset
        return run_fitting(network, pad(pixels, plan), plan, memory, name, say)[top : top + h, left : left + w]
    except Skipped as err:
        raise KitError(f"{name}: {err}.") from None


def say_on_stderr(line: str) -> None:
    """One line on stderr, above any progress bar."""
    from tqdm import tqdm

    tqdm.write(line, file=sys.stderr)
