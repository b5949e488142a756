"""The embedded synthetic dataset: deterministic, fast, and its ground truth really is the counterpart."""

import time

import numpy as np
import pytest

from replication import data
from replication.cli import main
from replication.data import synthetic
from replication.config import data_section
from replication.errors import DataError


def _files(root):
    return {p.relative_to(root).as_posix(): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}


def test_same_seed_byte_identical_other_seed_different(tmp_path):
    one = _files(data.write_synthetic(tmp_path / "one", seed=3, size=32, n_train=5, n_test=3))
    two = _files(data.write_synthetic(tmp_path / "two", seed=3, size=32, n_train=5, n_test=3))
    other = _files(data.write_synthetic(tmp_path / "other", seed=4, size=32, n_train=5, n_test=3))
    assert one == two
    assert one.keys() == other.keys()
    assert sum(one[k] != other[k] for k in one if k.endswith(".png")) == len([k for k in one if k.endswith(".png")])
    expected = {f"{s}{t}/{s[-1].lower()}_{i:04d}.png" for s, n in (("trainA", 5), ("trainB", 5), ("testA", 3), ("testB", 3))
                for t in ("", "_truth") for i in range(n)}
    assert set(one) == expected | {"synthetic.json"}


def test_the_default_dataset_takes_seconds(tmp_path):
    start = time.monotonic()
    root = data.write_synthetic(tmp_path / "syn")
    assert time.monotonic() - start < 30
    assert len(list((root / "trainA").iterdir())) == 200 and len(list((root / "testB").iterdir())) == 20
    assert data.decode(root / "trainA" / "a_0000.png").shape == (64, 64, 3)


def test_ground_truth_is_the_same_scene_in_the_other_domain(tmp_path):
    root = data.write_synthetic(tmp_path / "syn", seed=0, size=48, n_train=2, n_test=4)
    for split, own, other in (("testA", "A", "B"), ("testB", "B", "A")):
        for i in range(4):
            name = synthetic.image_name(split, i)
            img = data.decode(root / split / name).astype(int)
            truth = data.decode(root / f"{split}_truth" / name).astype(int)
            scene = synthetic.make_scene(0, split, i, 48)
            background = synthetic.render(dict(scene, objects=[]), own).astype(int)
            objects = synthetic.object_mask(scene)  # where the animals are
            assert 0.03 < objects.mean() < 0.6
            np.testing.assert_array_equal(img[~objects], background[~objects])
            np.testing.assert_array_equal(truth[~objects], img[~objects])  # same background, pixel for pixel
            inside_a = (img if own == "A" else truth)[objects]
            inside_b = (truth if own == "A" else img)[objects]
            core = np.abs(inside_a - inside_b).sum(-1) > 30
            assert core.mean() > 0.5  # the texture inside the objects changes
            assert np.median(inside_a[:, 0] - inside_a[:, 2]) > 40  # A: brown coat (red well above blue)
            grey = inside_b.mean(-1)
            assert (grey < 70).mean() > 0.15 and (grey > 170).mean() > 0.15  # B: black and white stripes
            assert np.abs(inside_b[:, 0] - inside_b[:, 2]).mean() < 20  # stripes are grey, not brown
    # the truth belongs to its own image, not to a neighbour's
    a0 = data.decode(root / "testA" / "a_0000.png")
    t1 = data.decode(root / "testA_truth" / "a_0001.png")
    assert not np.array_equal(a0[:4, :4], t1[:4, :4])


def test_dapples_in_a_are_dark_where_the_stripes_in_b_are_dark():
    """The cue that makes the stripes' phase a local function of the A image (version 2)."""
    scene = synthetic.make_scene(0, "testA", 0, 64)
    inside = synthetic.render(scene, "A", alpha_only=True)[..., 0] > 0.99
    a = synthetic.render(scene, "A").astype(float)[inside].mean(-1)
    b = synthetic.render(scene, "B").astype(float)[inside].mean(-1)
    assert np.corrcoef(a, b)[0, 1] > 0.6
    assert a.std() < 0.25 * b.std()  # faint: a brown horse, not a striped one


def test_an_older_synthetic_dataset_is_refused_with_the_command_that_rewrites_it(tmp_path):
    root = data.write_synthetic(tmp_path / "syn", size=32, n_train=2, n_test=1)
    meta = root / "synthetic.json"
    meta.write_text(meta.read_text().replace(f'"version": {synthetic.VERSION}', '"version": 1'))
    cfg = data_section(source="synthetic", root=str(root), load_size=32, crop_size=32)
    with pytest.raises(DataError, match=f"version 1 of the synthetic dataset.*data synthetic {root}"):
        data.unpaired(cfg)


def test_download_rewrites_an_older_synthetic_dataset_and_keeps_a_current_one(tmp_path):
    from replication.data.sources import source_of

    root = data.write_synthetic(tmp_path / "syn", size=32, n_train=2, n_test=1)
    cfg = data_section(source="synthetic", root=str(root), load_size=32, crop_size=32)
    assert source_of(cfg).download(cfg) == f"the synthetic dataset is in {root}"
    meta = root / "synthetic.json"
    meta.write_text(meta.read_text().replace(f'"version": {synthetic.VERSION}', '"version": 1'))
    said = source_of(cfg).download(cfg)
    assert said == f"rewrote {root}, which held version 1 of the synthetic dataset, as version {synthetic.VERSION}"
    assert synthetic.synthetic_version(root) == synthetic.VERSION
    assert len(data.unpaired(cfg).train_a) == 200  # the default dataset, as `data synthetic` writes it


def test_write_refuses_a_folder_that_is_not_a_synthetic_dataset(tmp_path):
    (tmp_path / "mine").mkdir()
    (tmp_path / "mine" / "thesis.tex").write_text("precious")
    with pytest.raises(DataError, match="not a synthetic dataset"):
        data.write_synthetic(tmp_path / "mine")
    assert (tmp_path / "mine" / "thesis.tex").read_text() == "precious"


def test_rewriting_replaces_an_earlier_synthetic_dataset(tmp_path):
    data.write_synthetic(tmp_path / "s", size=16, n_train=4, n_test=2)
    data.write_synthetic(tmp_path / "s", size=16, n_train=2, n_test=1)
    assert len(list((tmp_path / "s" / "trainA").iterdir())) == 2
    assert [p.name for p in tmp_path.iterdir()] == ["s"]  # no temporary folders left


def test_cli_writes_it_and_check_passes(tmp_path, capsys):
    out = tmp_path / "syn"
    assert main(["data", "synthetic", str(out), "--seed", "2", "--size", "32", "--train", "6", "--test", "2"]) == 0
    assert data.decode(out / "testB" / "b_0001.png").shape == (32, 32, 3)
    assert main(["data", "check", str(out)]) == 0
    assert "no problems found" in capsys.readouterr().out
    figure = tmp_path / "pairs.png"
    assert main(["data", "synthetic", str(out), "--size", "32", "--train", "1", "--test", "1", "--figure", str(figure)]) == 0
    assert data.decode(figure).shape[1] > 400


def test_trains_unpaired_and_paired(tmp_path):
    root = data.write_synthetic(tmp_path / "syn", size=32, n_train=6, n_test=2)
    cfg = data_section(source="synthetic", root=str(root), load_size=36, crop_size=32, batch_size=2)
    ds = data.unpaired(cfg)
    a, b = next(ds.epoch(0).as_numpy_iterator())
    assert ds.steps_per_epoch == 3 and a.shape == b.shape == (2, 32, 32, 3)
    pairs = data.paired(dict(cfg, preprocess="none", flip=False))  # trainA with its truth
    a, b = pairs.samples(2)
    truth = data.decode(root / "testA_truth" / "a_0000.png")
    np.testing.assert_allclose((b.numpy()[0] + 1) * 127.5, truth, atol=1e-3)


def test_figure_for_the_readme(tmp_path):
    from replication.figures.synthetic import draw_pairs

    path = draw_pairs(tmp_path / "pairs.png", n=3, size=32)
    img = data.decode(path)
    assert img.shape[0] > 100 and img.shape[1] > 150
