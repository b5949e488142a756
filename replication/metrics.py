"""The numbers a run is judged by: pure functions on images, label maps and features.

- Ground truth (datasets that hold each test image's true counterpart):
  mean absolute error, PSNR and SSIM of one image against its truth, on
  0..255 images read as [0, 1].
- Cityscapes (paper Tables 2 and 3): colours mapped to the 19 training
  classes by the nearest palette colour (ground truth: only the pixels of
  unlabelled colours ignored), a confusion matrix, and the FCN score's
  three numbers (per-pixel accuracy, per-class accuracy, class IoU).
- FID and KID from feature vectors (which network makes them is the
  caller's business; replication/fid.py uses Keras' InceptionV3).
- `row`: one metric's line of `evaluate`'s metrics.json.

Nothing here reads files or knows about runs.
"""

from __future__ import annotations

import warnings

import numpy as np
import scipy.linalg
import scipy.ndimage

# --------------------------------------------------------------------------- ground truth


def unit(image) -> np.ndarray:
    """uint8 0..255 (or float in [0, 1]) HxWx3 to float64 [0, 1]."""
    image = np.asarray(image)
    return image.astype(np.float64) / 255.0 if image.dtype == np.uint8 else image.astype(np.float64)


def mean_absolute_error(image, truth) -> float:
    """Mean |image - truth| over every pixel and channel, on the [0, 1] scale."""
    return float(np.mean(np.abs(unit(image) - unit(truth))))


def psnr(image, truth) -> float:
    """Peak signal-to-noise ratio in dB, peak 1 on the [0, 1] scale; infinite for identical images."""
    mse = float(np.mean((unit(image) - unit(truth)) ** 2))
    return float("inf") if mse == 0 else float(10.0 * np.log10(1.0 / mse))


def ssim(image, truth) -> float:
    """Structural similarity (`tf.image.ssim`: 11x11 Gaussian window, sigma 1.5), mean over the image."""
    import tensorflow as tf

    x = tf.constant(unit(image), tf.float32)
    y = tf.constant(unit(truth), tf.float32)
    return float(tf.image.ssim(x, y, max_val=1.0))


TRUTH_METRICS = {
    "MAE": (mean_absolute_error, "mean absolute error to the ground truth, pixels on [0, 1] (lower is better)"),
    "PSNR": (psnr, "peak signal-to-noise ratio to the ground truth in dB, peak 1 (higher is better)"),
    "SSIM": (ssim, "structural similarity to the ground truth, tf.image.ssim, 11x11 Gaussian window (higher is better)"),
}


def truth_scores(image, truth) -> dict:
    """{"MAE": ..., "PSNR": ..., "SSIM": ...} of one image against its truth (same shape)."""
    image, truth = np.asarray(image), np.asarray(truth)
    if image.shape != truth.shape:
        raise ValueError(f"image {image.shape} and truth {truth.shape} differ in shape")
    return {name: fn(image, truth) for name, (fn, _) in TRUTH_METRICS.items()}


# --------------------------------------------------------------------------- Cityscapes

# The 19 training classes and their colours (Cityscapes' official labels.py, trainId order).
CITYSCAPES_CLASSES = (
    ("road", (128, 64, 128)),
    ("sidewalk", (244, 35, 232)),
    ("building", (70, 70, 70)),
    ("wall", (102, 102, 156)),
    ("fence", (190, 153, 153)),
    ("pole", (153, 153, 153)),
    ("traffic light", (250, 170, 30)),
    ("traffic sign", (220, 220, 0)),
    ("vegetation", (107, 142, 35)),
    ("terrain", (152, 251, 152)),
    ("sky", (70, 130, 180)),
    ("person", (220, 20, 60)),
    ("rider", (255, 0, 0)),
    ("car", (0, 0, 142)),
    ("truck", (0, 0, 70)),
    ("bus", (0, 60, 100)),
    ("train", (0, 80, 100)),
    ("motorcycle", (0, 0, 230)),
    ("bicycle", (119, 11, 32)),
)
PALETTE = np.array([colour for _, colour in CITYSCAPES_CLASSES], np.int64)
N_CLASSES = len(CITYSCAPES_CLASSES)
ROAD = 0
IGNORED = -1
# The colours of Cityscapes' labels outside the 19 training classes (labels.py, trainId 255): void
# (unlabeled, ego vehicle, rectification border, out of roi, static), dynamic, ground, parking, rail
# track, guard rail, bridge, tunnel, caravan, trailer. The paper's scores ignore these pixels only.
# (polegroup and license plate share pole's and car's colours and are read as those.)
UNLABELLED_COLOURS = np.array([
    (0, 0, 0), (111, 74, 0), (81, 0, 81), (250, 170, 160), (230, 150, 140),
    (180, 165, 180), (150, 100, 100), (150, 120, 90), (0, 0, 90), (0, 0, 110),
], np.int64)


def palette_classes(image) -> np.ndarray:
    """int64 HxW class ids of a generated label map: each pixel's nearest training-class colour."""
    return nearest_colour(image, PALETTE)


# A truth pixel this close (RGB distance) to a label colour is that label. JPEG blurs colours across
# the edges between labels (its colour planes are stored at half resolution): a pixel farther from
# every colour takes the label most of its sure neighbours in a SURE_WINDOW square have.
SURE_DISTANCE = 15
SURE_WINDOW = 5


def truth_classes(image) -> np.ndarray:
    """int64 HxW class ids of a ground-truth label map (a JPEG: its colours are noisy).

    Every pixel is read as one of Cityscapes' labels: its nearest label colour
    when within SURE_DISTANCE, else the label most common among the sure
    pixels around it (its nearest colour if none is sure). The pixels of labels
    outside the 19 training classes (void black among them) are IGNORED (-1);
    every other pixel is scored, edges and small objects included, as when
    scoring against the original label ids.
    """
    colours = np.concatenate([PALETTE, UNLABELLED_COLOURS])
    pixels = np.asarray(image, np.int64)[..., :3]
    distance2 = ((pixels[..., None, :] - colours) ** 2).sum(-1)
    nearest = distance2.argmin(-1)
    sure = distance2.min(-1) <= SURE_DISTANCE**2
    votes = (nearest[..., None] == np.arange(len(colours))) & sure[..., None]
    votes = scipy.ndimage.uniform_filter(votes.astype(np.float32), size=(SURE_WINDOW, SURE_WINDOW, 1), mode="nearest")
    labels = np.where(sure | (votes.max(-1) == 0), nearest, votes.argmax(-1))
    return np.where(labels < N_CLASSES, labels, IGNORED)


def nearest_colour(image, colours) -> np.ndarray:
    """int64 HxW index of each pixel's nearest colour (Euclidean RGB distance; ties to the first)."""
    pixels = np.asarray(image, np.int64)[..., :3]
    return ((pixels[..., None, :] - colours) ** 2).sum(-1).argmin(-1)


def confusion_matrix(truth_classes, predicted_classes, n_classes: int = N_CLASSES) -> np.ndarray:
    """[true class, predicted class] pixel counts; IGNORED truth pixels do not count."""
    truth = np.asarray(truth_classes).ravel()
    predicted = np.asarray(predicted_classes).ravel()
    keep = truth != IGNORED
    flat = truth[keep] * n_classes + predicted[keep]
    return np.bincount(flat, minlength=n_classes * n_classes).reshape(n_classes, n_classes)


SEGMENTATION_METRICS = {
    "per-pixel acc": "share of labelled pixels given their true class",
    "per-class acc": "per-class share of pixels given their true class, averaged over the classes present in the truth",
    "class IoU": "intersection over union per class, averaged over the classes present in truth or prediction",
}


def segmentation_scores(confusion) -> dict:
    """The FCN score's three numbers (paper Tables 2-5) from a confusion matrix.

    As the FCN-score code of pix2pix, except that a class absent from the
    truth (and, for IoU, from the prediction too) is left out of the average
    instead of counting as 0; on the full Cityscapes validation set every
    class is present and the two agree.
    """
    confusion = np.asarray(confusion, np.float64)
    correct = np.diag(confusion)
    truth_count, predicted_count = confusion.sum(1), confusion.sum(0)
    union = truth_count + predicted_count - correct
    with np.errstate(invalid="ignore", divide="ignore"):
        class_acc = np.where(truth_count > 0, correct / truth_count, np.nan)
        iou = np.where(union > 0, correct / union, np.nan)
    return {
        "per-pixel acc": float(correct.sum() / confusion.sum()) if confusion.sum() else float("nan"),
        "per-class acc": float(np.nanmean(class_acc)) if np.any(truth_count > 0) else float("nan"),
        "class IoU": float(np.nanmean(iou)) if np.any(union > 0) else float("nan"),
    }


# --------------------------------------------------------------------------- FID and KID


def frechet_distance(features_a, features_b) -> float:
    """FID: |mu_a - mu_b|^2 + Tr(S_a + S_b - 2 (S_a S_b)^(1/2)) of two sets of feature rows (Heusel et al. 2017).

    The matrix square root of a product of (near-)singular covariances can
    come back with a tiny imaginary part, or not finite; as the reference
    code, the real part is kept and a small ridge is added when needed.
    """
    a, b = np.asarray(features_a, np.float64), np.asarray(features_b, np.float64)
    mu_a, mu_b = a.mean(0), b.mean(0)
    sigma_a, sigma_b = np.atleast_2d(np.cov(a, rowvar=False)), np.atleast_2d(np.cov(b, rowvar=False))
    with warnings.catch_warnings():  # singular covariances (fewer images than features) are expected here
        warnings.simplefilter("ignore", scipy.linalg.LinAlgWarning)
        root = scipy.linalg.sqrtm(sigma_a @ sigma_b)
    if not np.isfinite(root).all():
        ridge = np.eye(sigma_a.shape[0]) * 1e-6
        root = scipy.linalg.sqrtm((sigma_a + ridge) @ (sigma_b + ridge))
    root = np.real(root)
    diff = mu_a - mu_b
    return float(diff @ diff + np.trace(sigma_a) + np.trace(sigma_b) - 2.0 * np.trace(root))


def polynomial_kernel(x, y) -> np.ndarray:
    """KID's kernel k(x, y) = (x.y / d + 1)^3 (Binkowski et al. 2018)."""
    return (x @ y.T / x.shape[1] + 1.0) ** 3


def mmd2_unbiased(x, y) -> float:
    """Unbiased squared maximum mean discrepancy of two equal-size sets under the polynomial kernel."""
    m = x.shape[0]
    k_xx, k_yy, k_xy = polynomial_kernel(x, x), polynomial_kernel(y, y), polynomial_kernel(x, y)
    within = (k_xx.sum() - np.trace(k_xx) + k_yy.sum() - np.trace(k_yy)) / (m * (m - 1))
    return float(within - 2.0 * k_xy.mean())


def kernel_inception_distance(features_a, features_b, subsets: int = 100, subset_size: int = 1000, seed: int = 0):
    """KID: (mean, std) of the unbiased MMD^2 over random subsets (without replacement within one).

    The subset size is capped at the smaller set, so small test sets (120
    horses) use all their images in every subset.
    """
    a, b = np.asarray(features_a, np.float64), np.asarray(features_b, np.float64)
    size = min(subset_size, len(a), len(b))
    if size < 2:
        raise ValueError("KID needs at least two images in each set")
    rng = np.random.default_rng(seed)
    values = [
        mmd2_unbiased(a[rng.choice(len(a), size, replace=False)], b[rng.choice(len(b), size, replace=False)])
        for _ in range(subsets)
    ]
    return float(np.mean(values)), float(np.std(values))


def row(metric, direction, value, definition, std=None, baseline=None, paper=None) -> dict:
    """One line of metrics.json (schema in INTERFACE.md); non-finite numbers are written as null."""
    def number(x):
        return float(x) if x is not None and np.isfinite(x) else None

    return {
        "metric": metric,
        "direction": direction,
        "value": number(value),
        "std": number(std),
        "baseline": None if baseline is None else {"name": baseline[0], "value": number(baseline[1])},
        "paper": None if paper is None else {"CycleGAN": paper[0], "pix2pix": paper[1]},
        "definition": definition,
    }
