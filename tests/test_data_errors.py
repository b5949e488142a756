"""Bad input: one clear message naming the path and the fix, before training starts; `data check` finds it all."""

import os

import numpy as np
import pytest

from replication import data
from replication.cli import main
from replication.config import data_section
from replication.errors import ConfigError, DataError, KitError

from helpers import save, write_unpaired


def _cfg(root, **kw):
    cfg = dict(source="folder", root=str(root), preprocess="resize_and_crop", load_size=10, crop_size=8,
               batch_size=1, seed=0)
    cfg.update(kw)
    return data_section(**cfg)


def test_errors_are_kit_errors():
    assert issubclass(DataError, KitError) and issubclass(ConfigError, KitError)


def test_missing_root_names_it_and_shows_the_layout(tmp_path):
    missing = tmp_path / "no_such_dataset"
    with pytest.raises(DataError) as err:
        data.unpaired(_cfg(missing))
    msg = str(err.value)
    assert str(missing) in msg and "trainA/" in msg and "testB/" in msg


def test_root_not_set(tmp_path):
    with pytest.raises(DataError, match="data.root is not set"):
        data.unpaired(data_section(source="folder"))


def test_missing_split_folder(tmp_path):
    root = write_unpaired(tmp_path / "d", counts=(2, 2, 1, 1))
    for f in (root / "testB").iterdir():
        f.unlink()
    (root / "testB").rmdir()
    with pytest.raises(DataError) as err:
        data.unpaired(_cfg(root))
    msg = str(err.value)
    assert f"{root} lacks testB/" in msg and f"{root}/trainA/" in msg


def test_empty_split_folder(tmp_path):
    root = write_unpaired(tmp_path / "d", counts=(2, 0, 1, 1))
    (root / "trainB").mkdir(exist_ok=True)
    (root / "trainB" / "notes.txt").write_text("only text here")
    with pytest.raises(DataError) as err:
        data.unpaired(_cfg(root))
    msg = str(err.value)
    assert f"No images (.jpg .jpeg .png .bmp .webp .tif .tiff) in {root / 'trainB'}" in msg and "Expected layout" in msg


def _with_bad_files(tmp_path):
    root = write_unpaired(tmp_path / "d", counts=(3, 2, 1, 1))
    (root / "trainA" / "broken.png").write_bytes(b"\x89PNG\r\n\x1a\n garbage")
    (root / "trainA" / ".DS_Store").write_bytes(b"\0\0\0\1Bud1")  # ignored, not an error
    (root / "trainB" / "credits.txt").write_text("ignored too")
    good = root / "trainB" / "000.png"
    save(root / "trainB" / "cut.jpg", np.random.default_rng(0).integers(0, 256, (32, 32, 3)), quality=90)
    blob = (root / "trainB" / "cut.jpg").read_bytes()
    (root / "trainB" / "cut.jpg").write_bytes(blob[: len(blob) // 2])  # a truncated download
    assert good.exists()
    return root


def test_undecodable_files_are_listed_before_training(tmp_path):
    root = _with_bad_files(tmp_path)
    with pytest.raises(DataError) as err:
        data.unpaired(_cfg(root))
    msg = str(err.value)
    assert "broken.png" in msg and "skip_bad_images" in msg and str(root / "trainA") in msg
    assert ".DS_Store" not in msg and "credits.txt" not in msg


def test_skip_bad_images_leaves_them_out_and_counts_them(tmp_path):
    root = _with_bad_files(tmp_path)
    ds = data.unpaired(_cfg(root, skip_bad_images=True))
    assert sorted(ds.skipped) == ["trainA/broken.png", "trainB/cut.jpg"]
    assert len(ds.train_a) == 3 and len(ds.train_b) == 2 and ds.steps_per_epoch == 3
    assert len(list(ds.epoch(0).as_numpy_iterator())) == 3


def test_images_smaller_than_the_crop_in_crop_mode(tmp_path):
    root = write_unpaired(tmp_path / "d", counts=(2, 2, 1, 1), size=8)
    save(root / "trainA" / "small.png", np.zeros((6, 12, 3), np.uint8))  # 12 wide, 6 high
    with pytest.raises(DataError) as err:
        data.unpaired(_cfg(root, preprocess="crop", crop_size=8))
    msg = str(err.value)
    assert "small.png: 12x6" in msg and "at least 8x8" in msg and "resize_and_crop" in msg


def test_preprocess_none_needs_crop_sized_training_images(tmp_path):
    root = write_unpaired(tmp_path / "d", counts=(2, 2, 1, 1), size=8)
    with pytest.raises(DataError) as err:
        data.unpaired(_cfg(root, preprocess="none", crop_size=16))
    msg = str(err.value)
    assert "000.png: 8x8" in msg and "exactly 16x16" in msg


def test_sides_the_network_cannot_take_at_test_time(tmp_path):
    root = write_unpaired(tmp_path / "d", counts=(1, 1, 1, 1), size=8)
    save(root / "testA" / "sliver.png", np.zeros((3, 20, 3), np.uint8))
    with pytest.raises(DataError) as err:
        data.test_images(_cfg(root), "A", multiple=4)
    msg = str(err.value)
    assert "sliver.png: 20x3" in msg and "at least 4" in msg and "multiple of 4" in msg
    with pytest.raises(DataError, match="tiny.png: 2x2"):
        save(tmp_path / "photos" / "tiny.png", np.zeros((2, 2, 3), np.uint8))
        data.folder_images(tmp_path / "photos", multiple=4)


def test_fewer_images_than_the_batch(tmp_path):
    root = write_unpaired(tmp_path / "d", counts=(2, 3, 1, 1))
    with pytest.raises(DataError, match="batch_size"):
        data.unpaired(_cfg(root, batch_size=4))


def test_synthetic_source_not_written_yet(tmp_path):
    where = tmp_path / "synthetic"
    with pytest.raises(DataError) as err:
        data.unpaired(data_section(source="synthetic", root=str(where)))
    assert f"replication data synthetic {where}" in str(err.value)


def test_unknown_source():
    with pytest.raises(ConfigError, match="data.source=ftp is not allowed: data.source must be tfds, folder,"):
        data_section(source="ftp")


def test_paired_folders_with_unmatched_names(tmp_path):
    root = write_unpaired(tmp_path / "d", counts=(3, 3, 1, 1))
    (root / "trainB" / "002.png").rename(root / "trainB" / "other.png")
    with pytest.raises(DataError) as err:
        data.paired(_cfg(root))
    msg = str(err.value)
    assert "matched by file name" in msg and "002" in msg and "other" in msg


def test_paired_empty_side_by_side_folder(tmp_path):
    (tmp_path / "p" / "train").mkdir(parents=True)
    (tmp_path / "p" / "test").mkdir()
    with pytest.raises(DataError, match=f"{tmp_path / 'p' / 'train'} holds no images"):
        data.paired(_cfg(tmp_path / "p", source="paired"))


# ------------------------------------------------------------------ data check


def test_check_reports_every_problem(tmp_path, capsys):
    root = _with_bad_files(tmp_path)
    from PIL import Image

    Image.new("CMYK", (8, 8)).save(root / "testA" / "print.jpg")
    save(root / "testB" / "sliver.png", np.zeros((2, 9, 3), np.uint8))
    report = data.check(root, crop_size=8)
    text = str(report)
    assert not report.ok
    assert "broken.png" in text and "cut.jpg" in text  # undecodable
    assert ".DS_Store" in text and "credits.txt" in text  # ignored, as notes
    assert "1 CMYK" in text  # converted, as a note
    assert "sliver.png (9x2)" in text  # too small for the network and for the crop
    assert main(["data", "check", str(root), "--crop-size", "8"]) == 1
    out = capsys.readouterr().out
    assert "PROBLEMS" in out and "broken.png" in out


def test_check_missing_split_and_empty_split(tmp_path):
    root = write_unpaired(tmp_path / "d", counts=(2, 0, 1, 1))
    (root / "trainB").mkdir(exist_ok=True)
    (root / "testB").rename(root / "test_B")
    text = str(data.check(root))
    assert f"{root / 'testB'} is missing" in text and f"{root / 'trainB'} holds no images" in text


def test_check_a_clean_folder_passes(tmp_path, capsys):
    root = write_unpaired(tmp_path / "d", counts=(2, 2, 1, 1))
    assert data.check(root).ok
    assert main(["data", "check", str(root)]) == 0
    assert "no problems found" in capsys.readouterr().out


def test_check_a_missing_path_is_a_one_line_error(tmp_path, capsys):
    assert main(["data", "check", str(tmp_path / "nothing")]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: ") and str(tmp_path / "nothing") in err and "trainA/" in err


def test_check_paired_and_plain_folders(tmp_path):
    save(tmp_path / "p" / "train" / "1.png", np.zeros((8, 16, 3), np.uint8))
    save(tmp_path / "p" / "val" / "1.png", np.zeros((8, 16, 3), np.uint8))
    report = data.check(tmp_path / "p")
    assert report.ok and "paired" in report.layout
    save(tmp_path / "photos" / "a.png", np.zeros((8, 8, 3), np.uint8))
    assert data.check(tmp_path / "photos").ok
    (tmp_path / "nothing_here").mkdir()
    assert not data.check(tmp_path / "nothing_here").ok


def test_check_and_its_messages_show_file_names_that_are_not_utf8_as_their_bytes(tmp_path, capsys):
    root = write_unpaired(tmp_path / "d", counts=(2, 2, 1, 1))
    save(root / "trainA" / os.fsdecode(b"caf\xe9\xff.png"), np.zeros((8, 8, 3), np.uint8))  # read like any other
    assert main(["data", "check", str(root)]) == 0
    assert "  trainA/             3 images, size 8x8\n" in capsys.readouterr().out
    (root / "trainB" / os.fsdecode(b"bad\xff.png")).write_bytes(b"not an image")
    assert main(["data", "check", str(root)]) == 1
    assert "trainB: 1 file(s) with an image extension cannot be decoded (training stops unless data.skip_bad_images: " \
           "true): bad\\xff.png (UnidentifiedImageError" in capsys.readouterr().out
    assert main(["train", "demo", "--set", f"data.root={root}", "--set", "data.source=folder",
                 "--run-dir", str(tmp_path / "run")]) == 2
    assert "  trainB/bad\\xff.png: UnidentifiedImageError" in capsys.readouterr().err
