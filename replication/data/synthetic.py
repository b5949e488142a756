"""The embedded synthetic dataset: the kit's offline default.

Each image is a scene: a grassy background (smooth colour field plus grain)
with one or two animals (an elliptic body and a round head). Domain A paints
the animals a shaded brown with dapples ("horses"); domain B paints the
same shapes with black and white stripes across the body axis ("zebras"),
dark where the horse's dapples are dark. The background is identical in both
renderings, so translating a scene means changing texture and colour inside
the objects only, not a global colour shift, in the spirit of horse -> zebra.

The training domains are unpaired (trainA and trainB are different scenes),
but every scene is also rendered in the other domain: `testA_truth/<name>` is
the B rendering of `testA/<name>` (and testB_truth, trainA_truth,
trainB_truth likewise), so translations are scored against the truth.
Stripe phase and shading are fixed by the shape, so the truth is a function
of the input image: a perfect translator exists in both directions. Two
choices let a translator that learns beat the input itself (the identity
baseline) on MAE, PSNR and SSIM:
- the dapples make that function local: without them the stripes' phase
  hangs on where the body's centre is, which a translator trained on
  unpaired images cannot be expected to find, and stripes in any other
  phase score worse than the plain brown input;
- the grass's grain is faint (std 2.5 levels): SSIM on the smooth grass is
  then about the translation, not about copying each grain pixel for pixel
  (docs/data.md, "The synthetic dataset").

Everything is drawn from `numpy.random.SeedSequence([seed, split, index])`:
the same seed writes byte-identical files, and changing a count does not
change the other images.
"""

from __future__ import annotations

import io
import json
import os
import shutil
import tempfile
from pathlib import Path

import numpy as np

from replication.errors import DataError

SPLITS = {"trainA": 0, "trainB": 1, "testA": 2, "testB": 3}
DOMAIN_OF = {"trainA": "A", "trainB": "B", "testA": "A", "testB": "B"}
META = "synthetic.json"
VERSION = 2  # 2: dapples in A aligned with the stripes in B; half the grain

BROWN = np.array([150.0, 92.0, 52.0])  # domain A coat
DARK = np.array([28.0, 26.0, 24.0])  # domain B stripes
LIGHT = np.array([236.0, 232.0, 224.0])
DAPPLE = 0.2  # domain A coat brightness varies by +-10% where B has stripes
GRAIN = 2.5  # std of the grass's grain, in levels of 255 (5 in version 1)


def make_scene(seed: int, split: str, index: int, size: int) -> dict:
    """The random parameters of one scene (shared by its A and B renderings)."""
    rng = np.random.default_rng(np.random.SeedSequence([int(seed) % (1 << 63), SPLITS[split], int(index)]))
    s = float(size)
    base = np.array([88.0, 138.0, 62.0]) + rng.uniform(-22, 22, 3)
    waves = [
        (rng.uniform(0, 2 * np.pi), rng.uniform(0.5, 2.0), rng.uniform(0, 2 * np.pi), rng.uniform(-1, 1, 3) * 18)
        for _ in range(3)
    ]
    grain = rng.normal(0.0, GRAIN, (size, size, 1))
    objects = []
    for _ in range(int(rng.integers(1, 3))):
        objects.append(
            {
                "cx": rng.uniform(0.28, 0.72) * s,
                "cy": rng.uniform(0.3, 0.72) * s,
                "a": rng.uniform(0.17, 0.26) * s,
                "b": rng.uniform(0.10, 0.14) * s,
                "theta": rng.uniform(0, np.pi),
                "head_side": float(rng.choice([-1.0, 1.0])),
                "light": rng.uniform(0, 2 * np.pi),
            }
        )
    return {"size": size, "base": base, "waves": waves, "grain": grain, "objects": objects}


def render(scene: dict, domain: str, alpha_only: bool = False) -> np.ndarray:
    """uint8 HxWx3 image of `scene` in domain 'A' (plain brown) or 'B' (stripes).

    With `alpha_only`, float HxWx1 coverage of the objects instead (0: background).
    """
    size = scene["size"]
    y, x = np.mgrid[0:size, 0:size].astype(np.float64) + 0.5
    img = np.broadcast_to(scene["base"], (size, size, 3)).copy()
    covered = np.zeros((size, size, 1))
    for angle, cycles, phase, amp in scene["waves"]:
        t = (x * np.cos(angle) + y * np.sin(angle)) / size
        img += np.sin(2 * np.pi * cycles * t + phase)[..., None] * amp
    img += scene["grain"]
    period = max(3.0, size / 10.0)
    for o in scene["objects"]:
        c, s_ = np.cos(o["theta"]), np.sin(o["theta"])
        u = (x - o["cx"]) * c + (y - o["cy"]) * s_  # along the body
        v = -(x - o["cx"]) * s_ + (y - o["cy"]) * c  # across the body
        body = (np.sqrt((u / o["a"]) ** 2 + (v / o["b"]) ** 2) - 1.0) * min(o["a"], o["b"])
        r = 0.62 * o["b"]
        hu, hv = o["head_side"] * (o["a"] + 0.35 * r), -0.35 * o["b"]
        head = np.sqrt((u - hu) ** 2 + (v - hv) ** 2) - r
        alpha = np.clip(0.5 - np.minimum(body, head), 0.0, 1.0)[..., None]
        covered = np.maximum(covered, alpha)
        lx, ly = np.cos(o["light"]), np.sin(o["light"])
        shade = 0.85 + 0.2 * ((x - o["cx"]) * lx + (y - o["cy"]) * ly) / o["a"]
        shade = np.clip(shade, 0.6, 1.1)[..., None]
        stripe = 0.5 + 0.5 * np.tanh(2.5 * np.sin(2 * np.pi * u / period))[..., None]
        if domain == "A":
            coat = BROWN * (1.0 + DAPPLE * (stripe - 0.5)) * shade
        else:
            coat = (DARK + (LIGHT - DARK) * stripe) * shade
        img = img * (1 - alpha) + coat * alpha
    if alpha_only:
        return covered
    return np.clip(np.round(img), 0, 255).astype(np.uint8)


def object_mask(scene: dict) -> np.ndarray:
    """bool HxW: the pixels any animal covers (even partly); the rest is background, the same in A and B."""
    return render(scene, "A", alpha_only=True)[..., 0] > 0


def synthetic_version(folder) -> int | None:
    """The version of the synthetic dataset in `folder` (1 if its synthetic.json names none), None if it is not one."""
    try:
        meta = json.loads((Path(folder) / META).read_text())
    except (OSError, ValueError):
        return None
    return int(meta.get("version", 1)) if isinstance(meta, dict) else None


def _png(arr: np.ndarray) -> bytes:
    from PIL import Image

    buf = io.BytesIO()
    Image.fromarray(arr, "RGB").save(buf, format="PNG")
    return buf.getvalue()


def image_name(split: str, index: int) -> str:
    return f"{DOMAIN_OF[split].lower()}_{index:04d}.png"


def write_synthetic(out_dir, seed: int = 0, size: int = 64, n_train: int = 200, n_test: int = 20) -> Path:
    """Write the synthetic dataset to `out_dir` and return its path.

    Layout: trainA/ trainB/ testA/ testB/ (the unpaired dataset) plus
    <split>_truth/ with the other-domain rendering of every image under the
    same name, and synthetic.json with the parameters. A folder that holds an
    earlier synthetic dataset is replaced; any other non-empty folder is left
    alone (DataError).
    """
    size, n_train, n_test = int(size), int(n_train), int(n_test)
    if size < 16:
        raise DataError(f"--size {size} is too small for the synthetic scenes; use 16 or more (default 64).")
    if n_train < 1 or n_test < 1:
        raise DataError(f"The synthetic dataset needs at least one train and one test image per domain (got {n_train}, {n_test}).")
    out = Path(out_dir).expanduser()
    if out.exists() and (not out.is_dir() or (any(out.iterdir()) and not (out / META).exists())):
        raise DataError(
            f"{out} exists and is not a synthetic dataset written by the kit; choose a new or empty folder "
            "(the kit does not overwrite other files)."
        )
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{out.name}.writing-", dir=out.parent))
    try:
        counts = {"trainA": n_train, "trainB": n_train, "testA": n_test, "testB": n_test}
        for split, count in counts.items():
            own, other = DOMAIN_OF[split], "B" if DOMAIN_OF[split] == "A" else "A"
            (tmp / split).mkdir()
            (tmp / f"{split}_truth").mkdir()
            for i in range(count):
                scene = make_scene(seed, split, i, size)
                name = image_name(split, i)
                (tmp / split / name).write_bytes(_png(render(scene, own)))
                (tmp / f"{split}_truth" / name).write_bytes(_png(render(scene, other)))
        meta = {
            "kind": "replication synthetic dataset",
            "version": VERSION,
            "seed": int(seed),
            "size": size,
            "counts": counts,
            "domains": {"A": "brown animals with faint dapples on grass", "B": "striped animals on grass, dark where A's dapples are dark"},
            "truth": "<split>_truth/<name> is <split>/<name> rendered in the other domain",
        }
        (tmp / META).write_text(json.dumps(meta, indent=2, sort_keys=True) + "\n")
        old = None
        if out.exists():
            old = Path(tempfile.mkdtemp(prefix=f".{out.name}.old-", dir=out.parent))
            os.replace(out, old / "data")
        os.replace(tmp, out)
        if old is not None:
            shutil.rmtree(old, ignore_errors=True)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return out
