"""Epochs: length, per-domain shuffling, the shorter domain cycling, exact repeatability, skip == resume."""

import os
from collections import Counter

import numpy as np
import pytest

from replication import data
from replication.config import data_section
from replication.errors import DataError

from helpers import index_image, read_index, save, write_unpaired


def _cfg(root, **kw):
    # preprocess 'none' on 8x8 images, flip off: every output pixel says which file it came from
    cfg = dict(source="folder", root=str(root), preprocess="none", crop_size=8, flip=False, batch_size=1, seed=0)
    cfg.update(kw)
    return data_section(**cfg)


@pytest.fixture
def root(tmp_path):
    return write_unpaired(tmp_path / "d", counts=(5, 3, 2, 4))


def _stream(ds, epoch):
    a_idx, b_idx = [], []
    for a, b in ds.epoch(epoch).as_numpy_iterator():
        a_idx += read_index(a, 0)
        b_idx += read_index(b, 1)
    return a_idx, b_idx


def test_epoch_is_the_longer_domain_and_the_shorter_cycles(root):
    ds = data.unpaired(_cfg(root))
    assert ds.steps_per_epoch == 5
    for epoch in range(3):
        a, b = _stream(ds, epoch)
        assert sorted(a) == [0, 1, 2, 3, 4]  # every A image once
        assert sorted(Counter(b).values()) == [1, 2, 2]  # B (3 images) cycles over 5 steps
        assert set(b) == {0, 1, 2}


def test_batches_are_full_and_the_remainder_is_dropped(root):
    ds = data.unpaired(_cfg(root, batch_size=2))
    assert ds.steps_per_epoch == 2  # 5 // 2
    batches = list(ds.epoch(0).as_numpy_iterator())
    assert len(batches) == 2
    assert all(a.shape == (2, 8, 8, 3) and b.shape == (2, 8, 8, 3) for a, b in batches)
    assert ds.epoch(0).element_spec[0].shape.as_list() == [2, 8, 8, 3]


def test_each_domain_is_shuffled_on_its_own_every_epoch(tmp_path):
    root = write_unpaired(tmp_path / "even", counts=(6, 6, 1, 1))
    ds = data.unpaired(_cfg(root))
    streams = [_stream(ds, e) for e in range(4)]
    orders_a = {tuple(a) for a, _ in streams}
    assert len(orders_a) >= 3  # a new order every epoch
    assert all(sorted(a) == sorted(b) == list(range(6)) for a, b in streams)
    assert any(a != b for a, b in streams)  # A and B are not shuffled together
    assert len({tuple(zip(a, b)) for a, b in streams}) == 4  # the pairing changes


def test_same_seed_same_stream_and_other_seed_other_stream(root):
    cfg = _cfg(root, preprocess="resize_and_crop", load_size=12, crop_size=8, flip=True, batch_size=2)
    first = list(data.unpaired(cfg).epoch(2).as_numpy_iterator())
    again = list(data.unpaired(cfg).epoch(2).as_numpy_iterator())
    other = list(data.unpaired(dict(cfg, seed=1)).epoch(2).as_numpy_iterator())
    for (a1, b1), (a2, b2) in zip(first, again):
        np.testing.assert_array_equal(a1, a2)
        np.testing.assert_array_equal(b1, b2)
    assert any(not np.array_equal(x[0], y[0]) for x, y in zip(first, other))


def test_skip_yields_exactly_the_later_elements(tmp_path):
    rng = np.random.default_rng(0)
    root = tmp_path / "noise"
    for split, n in (("trainA", 7), ("trainB", 4), ("testA", 1), ("testB", 1)):
        for i in range(n):
            save(root / split / f"{i}.png", rng.integers(0, 256, (14, 12, 3)))
    cfg = data_section(source="folder", root=str(root), preprocess="resize_and_crop", load_size=12, crop_size=8,
                   flip=True, batch_size=1, seed=5)
    ds = data.unpaired(cfg)
    full = list(ds.epoch(3).as_numpy_iterator())
    assert len(full) == 7
    for k in (0, 2, 6):
        for via in (ds.epoch(3).skip(k), ds.epoch(3, start=k)):
            rest = list(via.as_numpy_iterator())
            assert len(rest) == 7 - k
            for (a1, b1), (a2, b2) in zip(rest, full[k:]):
                np.testing.assert_array_equal(a1, a2)
                np.testing.assert_array_equal(b1, b2)


def test_paired_epochs_shuffle_pairs_together(tmp_path):
    root = tmp_path / "pairs"
    for split, n in (("train", 6), ("test", 2)):
        for i in range(n):
            a = np.full((8, 8, 3), 10 * i, np.uint8)
            b = np.full((8, 8, 3), 10 * i + 5, np.uint8)
            save(root / split / f"{i}.png", np.concatenate([a, b], axis=1))
    ds = data.paired(_cfg(root, source="paired"))
    assert ds.steps_per_epoch == 6
    orders = set()
    for e in range(3):
        a_idx, pairs = [], []
        for a, b in ds.epoch(e).as_numpy_iterator():
            va, vb = (a[0, 0, 0, 0] + 1) * 127.5, (b[0, 0, 0, 0] + 1) * 127.5
            assert round(vb - va) == 5  # still a pair
            a_idx.append(int(round(va / 10)))
        assert sorted(a_idx) == list(range(6))
        orders.add(tuple(a_idx))
    assert len(orders) >= 2
    swapped = data.paired(_cfg(root, source="paired", direction="BtoA"))
    a, b = next(swapped.epoch(0).as_numpy_iterator())
    assert round(((a[0, 0, 0, 0] - b[0, 0, 0, 0]) * 127.5)) == 5  # BtoA: A is the right half


def test_direction_BtoA_swaps_the_domains_of_every_reading_of_a_folder(tmp_path):
    """A pix2pix run reading folders BtoA is trained, tested and evaluated on the same swapped domains."""
    root = write_unpaired(tmp_path / "d", counts=(3, 3, 2, 2))
    for split in ("testA", "testB"):
        truth = root / f"{split}_truth"
        truth.mkdir()
        for p in (root / split).iterdir():
            (truth / p.name).write_bytes((root / ("testB" if split == "testA" else "testA") / p.name).read_bytes())
    swapped = _cfg(root, direction="BtoA")
    assert data.test_set(swapped, "A").where == str(root / "testB")
    assert data.test_set(swapped, "A").items == data.test_set(swapped, "A", paired=True).items
    assert data.test_set(swapped, "B").items == data.test_set(swapped, "B", paired=True).items
    image, truth, _ = list(data.truth_pairs(swapped, "A", 1))[1]
    assert read_index(image.numpy(), 1) == [1] and read_index(truth.numpy(), 0) == [1]  # testB/001, testA/001 its truth
    a, b = data.unpaired(swapped).samples(2)
    assert read_index(a.numpy(), 1) == [0, 1] and read_index(b.numpy(), 0) == [0, 1]  # A from testB, B from testA


def test_samples_are_the_first_test_images_in_sorted_order(root):
    ds = data.unpaired(_cfg(root))
    a, b = ds.samples(3)
    assert a.shape == (2, 8, 8, 3)  # testA has only 2
    assert b.shape == (3, 8, 8, 3)
    assert read_index(a.numpy(), 0) == [0, 1]
    assert read_index(b.numpy(), 1) == [0, 1, 2]
    again_a, _ = ds.samples(3)
    np.testing.assert_array_equal(a.numpy(), again_a.numpy())


def test_test_images_keep_names_and_order(root):
    items = list(data.test_images(_cfg(root), "B", multiple=4).as_numpy_iterator())
    assert [n.decode() for _, n in items] == ["000.png", "001.png", "002.png", "003.png"]
    assert [read_index(x, 1)[0] for x, _ in items] == [0, 1, 2, 3]
    assert all(x.shape == (1, 8, 8, 3) for x, _ in items)


def test_folder_images_nested_with_relative_names(tmp_path):
    for rel in ("b/2.jpg", "a.png", "b/c/1.webp", "Z.JPG", "x.bmp"):
        save(tmp_path / rel, np.zeros((9, 10, 3), np.uint8))
    (tmp_path / "b" / "notes.txt").write_text("not an image")
    (tmp_path / ".DS_Store").write_bytes(b"\0\0\0\1Bud1")
    names = [n.decode() for _, n in data.folder_images(tmp_path, multiple=2).as_numpy_iterator()]
    assert names == ["Z.JPG", "a.png", "b/2.jpg", "b/c/1.webp", "x.bmp"]
    shapes = {x.shape for x, _ in data.folder_images(tmp_path, multiple=2).as_numpy_iterator()}
    assert shapes == {(1, 8, 10, 3)}


def test_every_extension_the_messages_name_is_read(tmp_path):
    for ext in data.IMAGE_EXTENSIONS:
        save(tmp_path / "photos" / f"x{ext}", np.zeros((8, 8, 3), np.uint8))
    names = [n.decode() for _, n in data.folder_images(tmp_path / "photos", multiple=4).as_numpy_iterator()]
    assert names == sorted(f"x{ext}" for ext in data.IMAGE_EXTENSIONS)
    (tmp_path / "empty").mkdir()
    with pytest.raises(DataError) as err:
        data.folder_images(tmp_path / "empty", multiple=4)
    assert f"holds no images ({' '.join(data.IMAGE_EXTENSIONS)})" in str(err.value)


def test_cache_gives_the_same_stream(root):
    cfg = _cfg(root, preprocess="resize_and_crop", load_size=12, crop_size=8, flip=True)
    plain = list(data.unpaired(cfg).epoch(1).as_numpy_iterator())
    cached = list(data.unpaired(dict(cfg, cache=True)).epoch(1).as_numpy_iterator())
    for (a1, b1), (a2, b2) in zip(plain, cached):
        np.testing.assert_array_equal(a1, a2)
        np.testing.assert_array_equal(b1, b2)


def test_the_epochs_graph_holds_each_image_path_once(root):
    """The decoder branches (JPEG, PNG) share one constant of the set's paths."""
    graph = data.unpaired(_cfg(root)).epoch(0)._as_serialized_graph().numpy()
    path = str(sorted((root / "trainA").iterdir())[3]).encode()
    assert graph.count(path) == 1


NOT_UTF8 = os.fsdecode(b"caf\xe9\xff.png")  # a name Linux allows: Python holds its two bytes as lone surrogates


def test_a_file_name_that_is_not_utf8_is_read_like_any_other(tmp_path):
    root = write_unpaired(tmp_path / "d", counts=(2, 1, 1, 1))
    (root / "trainA" / "001.png").rename(root / "trainA" / NOT_UTF8)
    save(root / "testA" / NOT_UTF8, index_image(1, 8, 0))
    assert sorted(_stream(data.unpaired(_cfg(root)), 0)[0]) == [0, 1]  # read by TensorFlow, from its path
    items = list(data.test_images(_cfg(root), "A", multiple=4).as_numpy_iterator())
    assert [os.fsdecode(n) for _, n in items] == ["000.png", NOT_UTF8]
    assert [read_index(x, 0)[0] for x, _ in items] == [0, 1]
