"""Sources: TFDS (mocked, and the real path offline), folders, the cityscapes zip, pix2pix archives, `data download`."""

import functools
import hashlib
import http.server
import io
import shutil
import socket
import string
import tarfile
import threading
import zipfile
from pathlib import Path

import numpy as np
import pytest

from replication import choices, data
from replication.cli import main
from replication.data import downloads, images, sources
from replication.config import data_section
from replication.errors import ConfigError, DataError

from helpers import gradient_image, save, write_unpaired


def _online(host="efrosgans.eecs.berkeley.edu") -> bool:
    try:
        socket.getaddrinfo(host, 443)
        return True
    except OSError:
        return False


# ------------------------------------------------------------------ the source table


def test_every_row_of_the_source_table_names_its_source_and_the_keys_its_words_use():
    for name, row in choices.SOURCES.items():
        source = sources.source_named(name)
        assert isinstance(source, sources.DataSource) and source.name == name
        assert set(row.keys) <= set(choices.DATASET_KEYS)
        used = {field for _, field, _, _ in string.Formatter().parse(row.words) if field}
        assert used <= set(row.keys), name  # its words name only keys it reads


class Reading(dict):
    """A data section that remembers which keys were read."""

    def __init__(self, *args):
        super().__init__(*args)
        self.read = set()

    def __getitem__(self, key):
        self.read.add(key)
        return super().__getitem__(key)

    def get(self, key, default=None):
        self.read.add(key)
        return super().get(key, default)


def test_a_source_reads_no_dataset_key_its_row_does_not_name(tmp_path, tiny_synthetic_root):
    """(The downloads, which read data_dir, download_url and download_sha256 too, are tested below.)"""
    unpaired = write_unpaired(tmp_path / "unpaired", counts=(2, 2, 1, 1))
    side_by_side = tmp_path / "side_by_side"
    for phase in ("train", "test"):
        save(side_by_side / phase / "0.png", gradient_image(8, 16))
    roots = {"folder": unpaired, "cityscapes": unpaired, "synthetic": tiny_synthetic_root, "paired": side_by_side,
             "pix2pix": side_by_side}
    for name, root in roots.items():
        cfg = Reading(data_section(source=name, root=str(root), name="facades", data_dir=str(tmp_path / "data")))
        source = sources.source_named(name)
        source.check_present(cfg)
        source.split_sets(cfg, ("trainA", "testB"))
        source.pair_sets(cfg, ("train",))
        source.download(cfg)
        assert "root" in cfg.read and cfg.read & set(choices.DATASET_KEYS) <= set(choices.SOURCES[name].keys), name


def test_each_source_is_described_in_its_own_words():
    said = {source: choices.describe_source(data_section(source=source, name="facades", root="/photos"))
            for source in choices.SOURCES}
    assert said == {"tfds": "TFDS facades", "folder": "folder /photos", "cityscapes": "cityscapes",
                    "synthetic": "synthetic /photos", "pix2pix": "pix2pix facades", "paired": "paired /photos"}


def test_a_source_in_one_file_and_one_row_is_checked_read_downloaded_and_described(tmp_path, monkeypatch):
    root = write_unpaired(tmp_path / "mine", counts=(3, 2, 1, 1))
    archive = Path(shutil.make_archive(str(tmp_path / "mine"), "zip", root))
    shutil.rmtree(root)
    with pytest.raises(ConfigError, match="data.source must be tfds, folder, cityscapes, synthetic, pix2pix or paired"):
        data_section(source="zipped", root=str(archive))
    monkeypatch.setitem(choices.SOURCES, "zipped", choices.SourceRow("example_source:ZippedFolder", ("root",), "zip {root}"))
    cfg = data_section(source="zipped", root=str(archive), load_size=8, crop_size=8)
    assert data.unpaired(cfg).steps_per_epoch == 3
    assert sources.download(cfg) == f"{archive} is unpacked in {root}"
    assert sorted(p.name for p in root.iterdir()) == ["testA", "testB", "trainA", "trainB"]
    assert choices.describe_source(cfg) == f"zip {archive}"


def test_the_developer_page_shows_the_example_source_as_it_is():
    page = (Path(__file__).resolve().parent.parent / "docs" / "developing.md").read_text()
    assert "```python\n" + (Path(__file__).parent / "example_source.py").read_text() + "```" in page


# ------------------------------------------------------------------ TFDS


def test_tfds_source_with_mock_data(tmp_path, monkeypatch):
    tfds = pytest.importorskip("tensorflow_datasets")
    monkeypatch.setattr(downloads, "check_reachable", lambda url, timeout=10.0: None)  # the mock downloads nothing
    cfg = data_section(source="tfds", name="horse2zebra", data_dir=str(tmp_path), preprocess="resize_and_crop",
                   load_size=16, crop_size=12, batch_size=2, seed=0)
    with tfds.testing.mock_data(num_examples=5):  # random small sizes, random labels
        ds = data.unpaired(cfg)
        batches = list(ds.epoch(0).as_numpy_iterator())
        a, b = ds.samples(3)
        tests = list(data.test_images(cfg, "A", multiple=2).as_numpy_iterator())
    assert ds.steps_per_epoch == 2 and len(batches) == 2  # 5 // 2, whatever the labels say
    for x, y in batches:
        assert x.shape == y.shape == (2, 12, 12, 3)
        assert x.min() >= -1 and x.max() <= 1 and x.std() > 0.1  # random pixels, not a constant
    assert a.shape == b.shape == (3, 12, 12, 3)
    assert [n.decode() for _, n in tests] == [f"{i:05d}.png" for i in range(5)]
    assert len({x.shape for x, _ in tests}) > 1  # the mock's sizes vary; nothing assumes 256x256
    assert all(x.shape[1] % 2 == 0 and x.shape[2] % 2 == 0 for x, _ in tests)


def test_tfds_unknown_name_says_what_is_known(tmp_path):
    with pytest.raises(DataError) as err:
        data.unpaired(data_section(source="tfds", name="horse2unicorn", data_dir=str(tmp_path)))
    msg = str(err.value)
    assert "cycle_gan/horse2unicorn" in msg and "horse2zebra" in msg and "data.source: folder" in msg


def test_tfds_cityscapes_points_to_the_cityscapes_source(tmp_path):
    with pytest.raises(DataError, match="data.source: cityscapes"):
        data.unpaired(data_section(source="tfds", name="cityscapes", data_dir=str(tmp_path)))


@pytest.mark.skipif(_online(), reason="this machine has a network: the real download would start")
def test_real_tfds_load_fails_only_for_lack_of_network(tmp_path, monkeypatch):
    """The real TFDS path (no mock) gets as far as the HTTP request; the kit turns the failure into advice."""
    import requests
    from tensorflow_datasets.core.download import downloader

    monkeypatch.setattr(downloader, "MAX_RETRIES", 0)  # TFDS would retry for minutes
    monkeypatch.setattr(downloads, "check_reachable", lambda url, timeout=10.0: None)  # let TFDS itself try
    with pytest.raises(DataError) as err:
        data.unpaired(data_section(source="tfds", name="horse2zebra", data_dir=str(tmp_path)))
    msg = str(err.value)
    assert "https://efrosgans.eecs.berkeley.edu/cyclegan/datasets/horse2zebra.zip" in msg
    assert "data.source: folder" in msg and "data.data_dir" in msg and str(tmp_path) in msg
    chain, cause = [], err.value.__cause__
    while cause is not None:
        chain.append(cause)
        cause = cause.__cause__ or cause.__context__
    assert any(isinstance(c, requests.exceptions.ConnectionError) for c in chain), chain  # the network, ...
    assert not any(isinstance(c, ImportError) for c in chain)  # ... not a missing module


@pytest.mark.skipif(_online(), reason="this machine has a network")
def test_offline_download_fails_in_seconds_with_advice(tmp_path):
    import time

    start = time.monotonic()
    with pytest.raises(DataError) as err:
        data.unpaired(data_section(source="tfds", name="apple2orange", data_dir=str(tmp_path)))
    assert time.monotonic() - start < 30
    assert "cannot reach efrosgans.eecs.berkeley.edu" in str(err.value)
    assert "data.source: folder" in str(err.value)


# ------------------------------------------------------------------ folders


def test_folder_source_nested_any_extension_ignores_non_images(tmp_path):
    root = tmp_path / "paintings"
    files = {
        "trainA": ["a.jpg", "b.jpeg", "sub/c.png", "sub/deeper/d.bmp", "e.webp", "F.JPG"],
        "trainB": ["x.png", "y.png"],
        "testA": ["t.png"],
        "testB": ["u.png"],
    }
    for split, names in files.items():
        for name in names:
            save(root / split / name, np.full((10, 10, 3), 128, np.uint8))
    (root / "trainA" / ".DS_Store").write_bytes(b"\0\0\0\1Bud1\0")
    (root / "trainA" / "README.txt").write_text("credits")
    (root / "trainA" / "sub" / "Thumbs.db").write_bytes(b"\xd0\xcf")
    ds = data.unpaired(data_section(source="folder", root=str(root), preprocess="resize_and_crop", load_size=10,
                                crop_size=8, batch_size=1))
    assert ds.train_a.names == sorted(files["trainA"])
    assert ds.steps_per_epoch == 6 and ds.skipped == []


def test_folder_links_are_followed_but_no_folder_is_read_twice(tmp_path):
    root = write_unpaired(tmp_path / "d", counts=(3, 2, 1, 1))
    (root / "trainA" / "loop").symlink_to(".")  # a loop: before the fix, 41 copies of every image
    (root / "trainB" / "sub").mkdir()
    (root / "trainB" / "001.png").rename(root / "trainB" / "sub" / "001.png")
    (root / "trainB" / "alias").symlink_to("sub")  # a second way to sub/: read once, by its own name
    outside = write_unpaired(tmp_path / "more", counts=(0, 0, 2, 0))
    (root / "testA" / "more").symlink_to(outside / "testA")  # a link to images elsewhere is followed
    ds = data.unpaired(data_section(source="folder", root=str(root), preprocess="resize_and_crop", load_size=10,
                                crop_size=8, batch_size=1))
    assert ds.train_a.names == ["000.png", "001.png", "002.png"]
    assert ds.train_b.names == ["000.png", "sub/001.png"]
    assert ds.test_a.names == ["000.png", "more/000.png", "more/001.png"]
    assert ds.steps_per_epoch == 3
    report = data.check(root)
    assert not report.ok
    text = str(report)
    assert "trainA: 1 folder link(s) lead to a folder already read" in text and "loop" in text
    assert "trainB: 1 folder link(s)" in text and "alias" in text
    assert "testA" not in " ".join(report.problems)
    counts = {line.split()[0]: int(line.split()[1]) for line in report.lines}
    assert counts == {"trainA/": 3, "trainB/": 2, "testA/": 3, "testB/": 1}


def test_a_folder_link_up_into_the_data_root_is_not_followed_and_is_named(tmp_path, capsys):
    """`trainA/up -> ..` would read trainB, testA and testB as training images of A."""
    root = write_unpaired(tmp_path / "d", counts=(3, 2, 2, 2))
    (root / "trainA" / "up").symlink_to("..")
    ds = data.unpaired(data_section(source="folder", root=str(root), preprocess="resize_and_crop", load_size=10,
                                crop_size=8, batch_size=1))
    assert ds.train_a.names == ["000.png", "001.png", "002.png"]
    assert capsys.readouterr().err == (
        f"note: {root / 'trainA'}: 1 folder link(s) not followed, as they lead back to a folder already read or one "
        "that holds this split (a loop; `data check` lists them): up\n"
    )
    assert "trainA: 1 folder link(s) lead to a folder already read" in str(data.check(root))


def test_two_loops_do_not_hang(tmp_path):
    """Two links to `.` made the old walk 2**40 folders deep; a regression fails here instead of hanging."""
    folder = tmp_path / "photos"
    save(folder / "a.png", np.zeros((8, 8, 3), np.uint8))
    (folder / "up").symlink_to(".")
    (folder / "again").symlink_to(".")
    listed = []
    walker = threading.Thread(target=lambda: listed.append(images.list_images(folder)), daemon=True)
    walker.start()
    walker.join(timeout=120)
    assert listed, "listing a folder with two loops did not finish"
    assert listed[0].images == ["a.png"] and listed[0].repeated == ["again", "up"]


# ------------------------------------------------------------------ the cityscapes zip


def _cityscapes_zip(path: Path, n_train=3, n_test=2) -> str:
    """A tiny cityscapes.zip as published: cityscapes/trainA (photos), trainB (label maps), same names."""
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf:
        for split, n in (("train", n_train), ("test", n_test)):
            for i in range(n):
                for dom in "AB":
                    img = io.BytesIO()
                    from PIL import Image

                    Image.fromarray(np.full((12, 12, 3), 20 * i + (100 if dom == "B" else 0), np.uint8)).save(img, "JPEG")
                    zf.writestr(f"cityscapes/{split}{dom}/{i}_{dom}.jpg", img.getvalue())
    path.write_bytes(buf.getvalue())
    return hashlib.sha256(buf.getvalue()).hexdigest()


def _city_cfg(tmp_path, url, sha):
    return data_section(source="cityscapes", data_dir=str(tmp_path / "data"), download_url=url, download_sha256=sha,
                    preprocess="resize_and_crop", load_size=12, crop_size=8, batch_size=1)


def test_cityscapes_zip_is_checked_unpacked_once_and_read_as_folders(tmp_path):
    archive = tmp_path / "mirror" / "cityscapes.zip"
    archive.parent.mkdir()
    sha = _cityscapes_zip(archive)
    cfg = _city_cfg(tmp_path, archive.as_uri(), sha)
    ds = data.unpaired(cfg)
    assert ds.steps_per_epoch == 3
    root = tmp_path / "data" / "cityscapes"
    assert sorted(p.name for p in root.iterdir()) == ["testA", "testB", "trainA", "trainB"]
    assert (tmp_path / "data" / "cityscapes.zip").read_bytes() == archive.read_bytes()
    # photos and label maps of the test set still correspond one to one
    names_a = [n.decode() for _, n in data.test_images(cfg, "A", 4).as_numpy_iterator()]
    names_b = [n.decode() for _, n in data.test_images(cfg, "B", 4).as_numpy_iterator()]
    assert [n.replace("_A", "") for n in names_a] == [n.replace("_B", "") for n in names_b] == ["0.jpg", "1.jpg"]
    pairs = data.paired(cfg)  # the same files, paired by name, for pix2pix
    a, b = pairs.samples(2)
    np.testing.assert_allclose(b.numpy() - a.numpy(), 100 / 127.5, atol=0.1)
    archive.unlink()  # unpacked once: no download needed any more
    assert data.unpaired(cfg).steps_per_epoch == 3


def test_cityscapes_defaults_are_the_published_file():
    assert data.CITYSCAPES_URL == "https://efrosgans.eecs.berkeley.edu/cyclegan/datasets/cityscapes.zip"
    checksums = Path(pytest.importorskip("tensorflow_datasets").__file__).parent / "url_checksums" / "cycle_gan.txt"
    line = [ln for ln in checksums.read_text().splitlines() if ln.startswith(data.CITYSCAPES_URL)][0]
    _, size, sha, _ = line.split("\t")
    assert sha == data.CITYSCAPES_SHA256 and int(size) == sources.CITYSCAPES_BYTES == 279_601_602


@pytest.fixture
def loopback(tmp_path):
    """An HTTP server on 127.0.0.1 serving tmp_path/www."""
    www = tmp_path / "www"
    www.mkdir()
    handler = functools.partial(http.server.SimpleHTTPRequestHandler, directory=str(www))
    handler.log_message = lambda *a, **k: None
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield www, f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()


def test_download_over_http_and_checksum_mismatch(tmp_path, loopback):
    www, base = loopback
    sha = _cityscapes_zip(www / "cityscapes.zip")
    wrong = "0" * 64
    cfg = _city_cfg(tmp_path, f"{base}/cityscapes.zip", wrong)
    with pytest.raises(DataError) as err:
        data.unpaired(cfg)
    msg = str(err.value)
    assert f"{base}/cityscapes.zip" in msg and sha in msg and wrong in msg and "discarded" in msg
    assert list((tmp_path / "data").iterdir()) == []  # nothing half-written is left behind
    ds = data.unpaired(dict(cfg, download_sha256=sha))
    assert ds.steps_per_epoch == 3


def test_a_failed_download_says_what_was_tried_and_how_to_use_a_local_copy(tmp_path):
    url = (tmp_path / "nowhere" / "cityscapes.zip").as_uri()
    with pytest.raises(DataError) as err:
        data.unpaired(_city_cfg(tmp_path, url, None))
    msg = str(err.value)
    assert url in msg and "by hand" in msg and "data.source: folder" in msg
    assert not (tmp_path / "data" / "cityscapes.zip").exists()


def test_a_wrong_file_already_in_place_is_refused(tmp_path):
    (tmp_path / "data").mkdir()
    (tmp_path / "data" / "cityscapes.zip").write_bytes(b"not the zip")
    with pytest.raises(DataError, match="cityscapes.zip exists but its sha256"):
        data.unpaired(data_section(source="cityscapes", data_dir=str(tmp_path / "data")))


def test_an_archive_without_the_layout_is_refused(tmp_path):
    archive = tmp_path / "bad.zip"
    with zipfile.ZipFile(archive, "w") as zf:
        zf.writestr("cityscapes/photos/0.jpg", b"x")
    sha = hashlib.sha256(archive.read_bytes()).hexdigest()
    with pytest.raises(DataError, match="trainA"):
        data.unpaired(_city_cfg(tmp_path, archive.as_uri(), sha))
    assert not (tmp_path / "data" / "cityscapes").exists()


# ------------------------------------------------------------------ pix2pix archives


def _pix2pix_tar(path: Path, name="facades", wide=True):
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w:gz") as tar:
        for split, n in (("train", 4), ("val", 2), ("test", 2)):
            for i in range(n):
                a = gradient_image(16, 16)
                pair = np.concatenate([a, 255 - a], axis=1) if wide else a
                img = io.BytesIO()
                from PIL import Image

                Image.fromarray(pair).save(img, "PNG")
                info = tarfile.TarInfo(f"{name}/{split}/{i + 1}.png")
                info.size = len(img.getvalue())
                tar.addfile(info, io.BytesIO(img.getvalue()))
    path.write_bytes(buf.getvalue())


def test_pix2pix_archive_is_downloaded_unpacked_and_split_in_halves(tmp_path):
    archive = tmp_path / "facades.tar.gz"
    _pix2pix_tar(archive)
    cfg = data_section(source="pix2pix", name="facades", data_dir=str(tmp_path / "data"), download_url=archive.as_uri(),
                   preprocess="resize_and_crop", load_size=20, crop_size=16, flip=True, batch_size=2)
    ds = data.paired(cfg)
    assert ds.steps_per_epoch == 2
    assert (tmp_path / "data" / "pix2pix" / "facades" / "train" / "1.png").exists()
    for a, b in ds.epoch(0).as_numpy_iterator():
        assert a.shape == b.shape == (2, 16, 16, 3)
        np.testing.assert_allclose(b, -a, atol=1e-5)  # aligned: B is the negative of A
    a, b = ds.samples(5)
    assert a.shape == (2, 16, 16, 3)  # test/ has 2 pairs
    unpaired = data.unpaired(cfg)  # the same halves as two unpaired domains, for CycleGAN
    assert unpaired.steps_per_epoch == 2


def test_pix2pix_archive_that_is_not_side_by_side_is_refused(tmp_path):
    archive = tmp_path / "maps.tar.gz"
    _pix2pix_tar(archive, name="maps", wide=False)
    with pytest.raises(DataError, match="twice as wide"):
        data.paired(data_section(source="pix2pix", name="maps", data_dir=str(tmp_path / "data"),
                             download_url=archive.as_uri()))


def test_unknown_pix2pix_name(tmp_path):
    with pytest.raises(DataError, match="edges2shoes"):
        data.paired(data_section(source="pix2pix", name="edges2cats", data_dir=str(tmp_path)))


def test_tfds_is_refused_for_pix2pix(tmp_path):
    with pytest.raises(DataError, match="unpaired"):
        data.paired(data_section(source="tfds", name="facades", data_dir=str(tmp_path)))


# ------------------------------------------------------------------ `data download`


def test_data_download_of_an_experiment_file(tmp_path, capsys):
    archive = tmp_path / "cityscapes.zip"
    sha = _cityscapes_zip(archive)
    experiment = tmp_path / "mycity.yaml"
    experiment.write_text(
        "data:\n  source: cityscapes\n"
        f"  data_dir: {tmp_path / 'store'}\n  download_url: {archive.as_uri()}\n  download_sha256: {sha}\n"
    )
    assert main(["data", "download", str(experiment)]) == 0
    assert str(tmp_path / "store" / "cityscapes") in capsys.readouterr().out
    assert (tmp_path / "store" / "cityscapes" / "testB" / "1_B.jpg").exists()


def test_data_download_of_an_unknown_name_is_a_one_line_error(capsys):
    assert main(["data", "download", "horse2unicorn"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: 'horse2unicorn' is neither an experiment") and "pix2pix/facades" in err
