"""The metric math: ground truth, Cityscapes palette scores, FID and KID, against hand and NumPy computations."""

import io
import math

import numpy as np
import pytest

from replication import metrics


def random_image(seed, size=24):
    return np.random.default_rng(seed).integers(0, 256, (size, size, 3), dtype=np.uint8)


# --------------------------------------------------------------------------- ground truth


def test_the_truth_scored_against_itself_is_perfect():
    truth = random_image(0)
    scores = metrics.truth_scores(truth, truth)
    assert scores["MAE"] == 0.0
    assert math.isinf(scores["PSNR"])
    assert scores["SSIM"] == pytest.approx(1.0, abs=1e-6)


def test_mae_and_psnr_equal_numpy_on_the_unit_scale():
    image, truth = random_image(1), random_image(2)
    difference = image.astype(np.float64) / 255 - truth.astype(np.float64) / 255
    assert metrics.mean_absolute_error(image, truth) == pytest.approx(np.abs(difference).mean(), rel=1e-12)
    assert metrics.psnr(image, truth) == pytest.approx(-10 * np.log10((difference**2).mean()), rel=1e-12)
    # a uniform error of 51 levels (0.2): MSE 0.04, PSNR 10 log10(25)
    assert metrics.psnr(np.full((16, 16, 3), 51, np.uint8), np.zeros((16, 16, 3), np.uint8)) == pytest.approx(10 * np.log10(25))


def test_ssim_is_lower_for_a_noisier_copy_and_symmetric():
    truth = random_image(3)
    rng = np.random.default_rng(4)
    slight = np.clip(truth + rng.normal(0, 5, truth.shape), 0, 255).astype(np.uint8)
    strong = np.clip(truth + rng.normal(0, 60, truth.shape), 0, 255).astype(np.uint8)
    assert 1.0 > metrics.ssim(slight, truth) > metrics.ssim(strong, truth)
    assert metrics.ssim(slight, truth) == pytest.approx(metrics.ssim(truth, slight), abs=1e-6)


def test_truth_scores_refuse_images_of_different_shapes():
    with pytest.raises(ValueError, match="differ in shape"):
        metrics.truth_scores(random_image(0, 24), random_image(0, 16))


# --------------------------------------------------------------------------- Cityscapes


def label_map(classes) -> np.ndarray:
    """Paint class ids (IGNORED -> black, the void colour) with the palette."""
    classes = np.asarray(classes)
    image = np.zeros(classes.shape + (3,), np.uint8)
    image[classes >= 0] = metrics.PALETTE[classes[classes >= 0]]
    return image


def test_the_palette_is_cityscapes_nineteen_training_classes():
    assert metrics.N_CLASSES == 19
    names = [name for name, _ in metrics.CITYSCAPES_CLASSES]
    assert names[metrics.ROAD] == "road" and names[13] == "car" and names[-1] == "bicycle"
    assert tuple(metrics.PALETTE[10]) == (70, 130, 180)  # sky


def test_a_perfect_prediction_scores_one():
    classes = np.arange(19 * 4).reshape(4, 19) % 19
    truth = metrics.truth_classes(label_map(classes))
    scores = metrics.segmentation_scores(metrics.confusion_matrix(truth, metrics.palette_classes(label_map(classes))))
    assert scores == {"per-pixel acc": 1.0, "per-class acc": 1.0, "class IoU": 1.0}


def test_known_confusions_give_the_hand_computed_scores():
    road, car, sky = 0, 13, 10
    truth = np.array([[road, road, car], [car, car, sky]])
    predicted = np.array([[road, car, car], [car, road, sky]])
    confusion = metrics.confusion_matrix(truth, predicted)
    assert confusion[road, road] == 1 and confusion[road, car] == 1 and confusion[car, road] == 1
    assert confusion[car, car] == 2 and confusion[sky, sky] == 1 and confusion.sum() == 6
    scores = metrics.segmentation_scores(confusion)
    assert scores["per-pixel acc"] == pytest.approx(4 / 6)
    # per class: road 1/2, car 2/3, sky 1; IoU: road 1/(2+2-1), car 2/(3+3-2), sky 1
    assert scores["per-class acc"] == pytest.approx((1 / 2 + 2 / 3 + 1) / 3)
    assert scores["class IoU"] == pytest.approx((1 / 3 + 2 / 4 + 1) / 3)


def test_colours_a_few_levels_off_map_to_the_right_class():
    classes = np.tile(np.arange(19), (8, 1))
    rng = np.random.default_rng(0)
    off = np.clip(label_map(classes).astype(int) + rng.integers(-5, 6, (8, 19, 3)), 0, 255)
    np.testing.assert_array_equal(metrics.palette_classes(off), classes)
    np.testing.assert_array_equal(metrics.truth_classes(off), classes)


def patches(colours, side: int = 6) -> np.ndarray:
    """A row of side x side patches, one per RGB colour."""
    return np.concatenate([np.full((side, side, 3), c, np.uint8) for c in colours], axis=1)


def test_only_unlabelled_colours_are_ignored_in_the_truth():
    void, dim_void, caravan, parking = (0, 0, 0), (9, 4, 12), (0, 0, 90), (250, 170, 160)
    between_bus_and_train, off_road = (0, 70, 100), (140, 50, 115)  # 10 from bus and from train; 23 from road
    colours = [tuple(c) for c in metrics.PALETTE[[0, 13, 10]]] + [void, dim_void, caravan, parking, between_bus_and_train, off_road]
    truth = metrics.truth_classes(patches(colours))
    np.testing.assert_array_equal(truth[3, 3::6], [0, 13, 10, -1, -1, -1, -1, 15, 0])  # each patch's centre
    assert metrics.palette_classes(patches([void]))[3, 3] == 14  # a generated map's black is read as its nearest class, truck
    predicted = np.where(truth == metrics.IGNORED, 5, truth)  # wrong on the ignored pixels
    predicted[:, :6] = 13  # and on the road patch
    with_ignored = metrics.segmentation_scores(metrics.confusion_matrix(truth, predicted))
    labelled = truth >= 0
    without = metrics.segmentation_scores(metrics.confusion_matrix(truth[labelled], predicted[labelled]))
    assert with_ignored == without
    assert with_ignored["per-pixel acc"] == pytest.approx(4 / 5)  # five labelled patches, one wrong


def test_a_blurred_edge_between_two_labels_is_read_as_one_of_them():
    road, car = metrics.PALETTE[0], metrics.PALETTE[13]
    image = patches([road, car])
    image[:, 5:7] = (road + car) // 2  # (64, 32, 135): 72 from both, 82 from wall
    truth = metrics.truth_classes(image)
    assert set(np.unique(truth[:, 5:7])) <= {0, 13}
    np.testing.assert_array_equal(truth[:, :5], 0)
    np.testing.assert_array_equal(truth[:, 7:], 13)


def planted_label_map(seed: int, size: int = 256, regions: int = 24, unlabelled_share: float = 0.2):
    """(class ids with IGNORED where unlabelled, the painted RGB map): Voronoi regions of each of the
    19 training classes (in random places), some painted instead with void black or the colour of a
    class outside the 19."""
    rng = np.random.default_rng(seed)
    centres = rng.uniform(0, size, (regions, 2))
    region_class = rng.permutation(regions) % metrics.N_CLASSES
    unlabelled = rng.random(regions) < unlabelled_share
    y, x = np.mgrid[0:size, 0:size]
    region = ((y[..., None] - centres[:, 0]) ** 2 + (x[..., None] - centres[:, 1]) ** 2).argmin(-1)
    colours = metrics.PALETTE[region_class].copy()
    colours[unlabelled] = metrics.UNLABELLED_COLOURS[rng.integers(0, len(metrics.UNLABELLED_COLOURS), unlabelled.sum())]
    return np.where(unlabelled[region], metrics.IGNORED, region_class[region]), colours[region].astype(np.uint8)


def as_jpeg(image: np.ndarray, quality: int = 75) -> np.ndarray:
    """The image after a round trip through a JPEG file (Pillow's default 4:2:0 chroma subsampling)."""
    from PIL import Image

    buffer = io.BytesIO()
    Image.fromarray(image).save(buffer, format="JPEG", quality=quality)
    with Image.open(buffer) as decoded:
        return np.asarray(decoded.convert("RGB"))


def reference_scores(truth, predicted) -> dict:
    """The FCN score's three numbers class by class with masks (no confusion matrix), IGNORED truth left out."""
    labelled = truth != metrics.IGNORED
    truth, predicted = truth[labelled], predicted[labelled]
    present = [c for c in range(metrics.N_CLASSES) if (truth == c).any()]
    either = [c for c in range(metrics.N_CLASSES) if (truth == c).any() or (predicted == c).any()]
    return {
        "per-pixel acc": float((truth == predicted).mean()),
        "per-class acc": float(np.mean([(predicted[truth == c] == c).mean() for c in present])),
        "class IoU": float(np.mean([((truth == c) & (predicted == c)).sum() / ((truth == c) | (predicted == c)).sum() for c in either])),
    }


def test_jpeg_label_maps_ignore_only_the_planted_unlabelled_pixels():
    planted, decoded = zip(*[(classes, metrics.truth_classes(as_jpeg(image))) for classes, image in map(planted_label_map, range(4))])
    planted, decoded = np.stack(planted), np.stack(decoded)
    planted_share = (planted == metrics.IGNORED).mean()
    assert 0.1 < planted_share < 0.4
    # JPEG smears colours across the edges: a few edge pixels move, no more
    assert (decoded == metrics.IGNORED).mean() == pytest.approx(planted_share, abs=0.02)
    assert (decoded == planted)[planted >= 0].mean() > 0.98


def test_a_jpeg_truth_scores_a_perfect_prediction_one_and_others_as_the_planted_ids_do():
    rng = np.random.default_rng(7)
    confusion, planted, predictions = np.zeros((metrics.N_CLASSES,) * 2, np.int64), [], []
    for seed in range(4):
        classes, image = planted_label_map(seed)
        truth = metrics.truth_classes(as_jpeg(image))
        # a prediction of exactly the labels read (anything on the unlabelled pixels) scores 1
        perfect = label_map(np.where(truth == metrics.IGNORED, metrics.ROAD, truth))
        scores = metrics.segmentation_scores(metrics.confusion_matrix(truth, metrics.palette_classes(perfect)))
        assert scores == {"per-pixel acc": 1.0, "per-class acc": 1.0, "class IoU": 1.0}
        # so does the planted map itself, but for the edge pixels JPEG moved to another label
        planted_map = metrics.palette_classes(label_map(np.where(classes == metrics.IGNORED, metrics.ROAD, classes)))
        assert metrics.segmentation_scores(metrics.confusion_matrix(truth, planted_map))["per-pixel acc"] > 0.98
        # a prediction that gets a quarter of the regions wrong, as a generated label map (PNG, exact colours)
        wrong = np.where(rng.random(metrics.N_CLASSES) < 0.25, rng.integers(0, metrics.N_CLASSES, metrics.N_CLASSES), np.arange(metrics.N_CLASSES))
        predicted = wrong[np.maximum(classes, 0)]
        confusion += metrics.confusion_matrix(truth, metrics.palette_classes(label_map(predicted)))
        planted.append(classes)
        predictions.append(predicted)
    kit = metrics.segmentation_scores(confusion)
    reference = reference_scores(np.stack(planted), np.stack(predictions))  # as if scored against the label ids
    assert 0.4 < reference["per-pixel acc"] < 0.95
    assert kit == pytest.approx(reference, abs=0.015)


def test_classes_absent_from_truth_and_prediction_are_left_out_of_the_averages():
    confusion = metrics.confusion_matrix(np.zeros((2, 2), int), np.zeros((2, 2), int))
    assert metrics.segmentation_scores(confusion) == {"per-pixel acc": 1.0, "per-class acc": 1.0, "class IoU": 1.0}


# --------------------------------------------------------------------------- FID and KID


def fid_by_eigenvalues(a, b):
    """FID another way: Tr((S_a S_b)^(1/2)) = sum of sqrt(eig(S_a^(1/2) S_b S_a^(1/2))), all symmetric."""
    sigma_a, sigma_b = np.cov(a, rowvar=False), np.cov(b, rowvar=False)
    w, v = np.linalg.eigh(sigma_a)
    root_a = v @ np.diag(np.sqrt(np.clip(w, 0, None))) @ v.T
    eigen = np.linalg.eigvalsh(root_a @ sigma_b @ root_a)
    diff = a.mean(0) - b.mean(0)
    return diff @ diff + np.trace(sigma_a) + np.trace(sigma_b) - 2 * np.sqrt(np.clip(eigen, 0, None)).sum()


def test_fid_equals_a_direct_numpy_computation():
    rng = np.random.default_rng(0)
    a, b = rng.normal(size=(60, 8)), rng.normal(0.5, 1.5, size=(50, 8))
    assert metrics.frechet_distance(a, b) == pytest.approx(fid_by_eigenvalues(a, b), rel=1e-9)


def test_fid_keeps_the_real_part_when_the_square_root_leaves_an_imaginary_one():
    import scipy.linalg

    rng = np.random.default_rng(0)
    a, b = rng.normal(size=(5, 64)), rng.normal(0.5, 1.0, size=(5, 64))  # fewer images than features: singular
    root = scipy.linalg.sqrtm(np.cov(a, rowvar=False) @ np.cov(b, rowvar=False))
    assert np.iscomplexobj(root) and np.abs(root.imag).max() > 0  # the case this test is about
    fid = metrics.frechet_distance(a, b)
    assert isinstance(fid, float)
    assert fid == pytest.approx(fid_by_eigenvalues(a, b), rel=1e-5)


def test_fid_of_a_set_with_itself_is_near_zero():
    features = np.random.default_rng(1).normal(size=(40, 16))
    assert abs(metrics.frechet_distance(features, features)) < 1e-8


def test_kid_equals_a_hand_computation():
    rng = np.random.default_rng(0)
    x, y = rng.normal(size=(6, 3)), rng.normal(0.3, 1.0, size=(6, 3))
    m, d = len(x), x.shape[1]

    def k(p, q):
        return (sum(p[i] * q[i] for i in range(d)) / d + 1) ** 3

    within = sum(k(x[i], x[j]) + k(y[i], y[j]) for i in range(m) for j in range(m) if i != j) / (m * (m - 1))
    across = sum(k(x[i], y[j]) for i in range(m) for j in range(m)) / (m * m)
    expected = within - 2 * across
    assert metrics.mmd2_unbiased(x, y) == pytest.approx(expected, rel=1e-12)
    # subsets of the whole sets are permutations of them: the same value every time
    mean, std = metrics.kernel_inception_distance(x, y, subsets=5, subset_size=100)
    assert mean == pytest.approx(expected, rel=1e-12) and std == pytest.approx(0.0, abs=1e-12)


def test_kid_over_smaller_subsets_varies_and_is_near_zero_for_one_distribution():
    rng = np.random.default_rng(0)
    same = metrics.kernel_inception_distance(rng.normal(size=(200, 8)), rng.normal(size=(200, 8)), subsets=50, subset_size=50)
    apart = metrics.kernel_inception_distance(rng.normal(size=(200, 8)), rng.normal(1.0, 1.0, size=(200, 8)), subsets=50, subset_size=50)
    assert same[1] > 0 and abs(same[0]) < 3 * same[1]
    assert apart[0] > 5 * apart[1]
