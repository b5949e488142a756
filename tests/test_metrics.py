"""The metric math: ground truth, Cityscapes palette scores, FID and KID, against hand and NumPy computations."""

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
    truth = metrics.palette_classes(label_map(classes), metrics.TRUTH_TOLERANCE)
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
    np.testing.assert_array_equal(metrics.palette_classes(off, metrics.TRUTH_TOLERANCE), classes)


def test_pixels_far_from_every_colour_are_ignored_in_the_truth_only():
    void, between_bus_and_train, caravan = (0, 0, 0), (0, 70, 100), (0, 0, 90)
    truth_image = label_map([[0, 13, 10, 13]]).astype(np.uint8)
    truth_image = np.concatenate([truth_image, np.array([[void, between_bus_and_train, caravan]], np.uint8)], axis=1)
    truth = metrics.palette_classes(truth_image, metrics.TRUTH_TOLERANCE)
    np.testing.assert_array_equal(truth, [[0, 13, 10, 13, -1, -1, -1]])
    assert metrics.palette_classes(truth_image)[0, 4] == 14  # without tolerance black's nearest is truck (0, 0, 70)
    predicted = np.array([[0, 13, 10, 0, 5, 5, 5]])  # wrong on the ignored pixels too
    with_ignored = metrics.segmentation_scores(metrics.confusion_matrix(truth, predicted))
    without = metrics.segmentation_scores(metrics.confusion_matrix(truth[:, :4], predicted[:, :4]))
    assert with_ignored == without
    assert with_ignored["per-pixel acc"] == pytest.approx(3 / 4)


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
