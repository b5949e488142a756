"""Reading PyTorch `.pth` state dicts without PyTorch: both formats, dtypes, strides and offsets; a file
that asks to run code is refused before anything runs; damaged and foreign files end in one line."""

import pickle
import struct
import zipfile
from pathlib import Path

import numpy as np
import pytest

from replication import pth

FIXTURES = Path(__file__).parent / "fixtures" / "official"


def op_global(module: str, name: str) -> bytes:
    return b"c" + f"{module}\n{name}\n".encode()


def value(obj) -> bytes:
    """A plain value's pickle opcodes, without PROTO and STOP, to splice into a hand-made pickle."""
    return pickle.dumps(obj, protocol=2)[2:-1]


def tensor_pickle(entries, storage_type="FloatStorage", legacy=False) -> bytes:
    """An OrderedDict {name: tensor over storage KEY} as torch.save pickles it: entries are
    (name, key, numel, offset, size, stride)."""
    out = b"\x80\x02" + op_global("collections", "OrderedDict") + b")R"
    for name, key, numel, offset, size, stride in entries:
        pid = b"(" + value("storage") + op_global("torch", storage_type) + value(key) + value("cpu") + value(numel)
        pid += (value(None) if legacy else b"") + b"tQ"
        args = b"(" + pid + value(offset) + value(size) + value(stride) + value(False) + op_global("collections", "OrderedDict") + b")R" + b"t"
        out += value(name) + op_global("torch._utils", "_rebuild_tensor_v2") + args + b"Rs"
    return out + b"."


def zip_pth(path: Path, data_pkl: bytes, storages: dict) -> Path:
    with zipfile.ZipFile(path, "w") as archive:
        archive.writestr("archive/data.pkl", data_pkl)
        archive.writestr("archive/byteorder", "little")
        for key, raw in storages.items():
            archive.writestr(f"archive/data/{key}", raw)
    return path


def legacy_pth(path: Path, data_pkl: bytes, storages: dict, dtype="<f4") -> Path:
    stream = pickle.dumps(pth.LEGACY_MAGIC, protocol=2) + pickle.dumps(pth.LEGACY_PROTOCOL, protocol=2)
    stream += pickle.dumps({"protocol_version": 1001, "little_endian": True}, protocol=2) + data_pkl
    stream += pickle.dumps(list(storages), protocol=2)
    for raw in storages.values():
        stream += struct.pack("<q", len(raw) // np.dtype(dtype).itemsize) + raw
    path.write_bytes(stream)
    return path


def test_strides_and_offsets_are_honoured_in_both_formats(tmp_path):
    elements = np.arange(12, dtype="<f4")
    entries = [("transposed", "0", 12, 2, (2, 3), (1, 2)), ("row", "0", 12, 9, (3,), (1,)), ("scalar", "0", 12, 5, (), ())]
    for path in (zip_pth(tmp_path / "z.pth", tensor_pickle(entries), {"0": elements.tobytes()}),
                 legacy_pth(tmp_path / "l.pth", tensor_pickle(entries, legacy=True), {"0": elements.tobytes()})):
        state = pth.read_state_dict(path)
        assert list(state) == ["transposed", "row", "scalar"]
        np.testing.assert_array_equal(state["transposed"], [[2, 4, 6], [3, 5, 7]])
        np.testing.assert_array_equal(state["row"], [9, 10, 11])
        assert state["scalar"].shape == () and state["scalar"] == 5


def test_float16_storages_are_read_as_float32(tmp_path):
    halves = np.array([0.5, -2.0, 65504.0, 1e-3], dtype="<f2")
    path = zip_pth(tmp_path / "h.pth", tensor_pickle([("w", "0", 4, 0, (4,), (1,))], "HalfStorage"), {"0": halves.tobytes()})
    state = pth.read_state_dict(path)
    assert state["w"].dtype == np.float32
    np.testing.assert_array_equal(state["w"], halves.astype(np.float32))


@pytest.mark.parametrize("name", ["resnet_2blocks_ngf8", "unet_128_batch_ngf2", "patchgan_3layers_ndf4"])
def test_pytorchs_two_formats_hold_the_same_tensors(name):
    zipped, legacy = (pth.read_state_dict(FIXTURES / f"{name}{suffix}.pth") for suffix in ("", "_legacy"))
    assert list(zipped) == list(legacy)
    for key in zipped:
        np.testing.assert_array_equal(zipped[key], legacy[key])


class Marker:
    """A pickle that calls os.system on load, as a hostile `.pth` would."""

    def __init__(self, path):
        self.path = path

    def __reduce__(self):
        import os

        return os.system, (f"touch {self.path}",)


@pytest.mark.parametrize("form", ["zip", "legacy", "plain pickle"])
def test_a_file_that_asks_to_run_code_is_refused_and_nothing_runs(tmp_path, form):
    marker = tmp_path / "ran"
    hostile = pickle.dumps({"model.1.weight": Marker(marker)}, protocol=2)
    path = tmp_path / "hostile.pth"
    if form == "zip":
        zip_pth(path, hostile, {})
    elif form == "legacy":
        legacy_pth(path, hostile, {})
    else:
        path.write_bytes(hostile)
    with pytest.raises(pth.PthError) as err:
        pth.read_state_dict(path)
    assert "this file asks to run posix.system: not a plain state dict" in str(err.value)
    assert "\n" not in str(err.value)
    assert not marker.exists()


def test_a_pickled_class_other_than_a_state_dicts_is_refused(tmp_path):
    path = tmp_path / "model.pth"
    path.write_bytes(b"\x80\x02" + op_global("torch.nn.modules.conv", "Conv2d") + b")R.")
    with pytest.raises(pth.PthError, match="asks to run torch.nn.modules.conv.Conv2d: not a plain state dict"):
        pth.read_state_dict(path)


def test_truncated_files_end_in_one_line(tmp_path):
    for name in ("resnet_2blocks_ngf8.pth", "resnet_2blocks_ngf8_legacy.pth"):
        data = (FIXTURES / name).read_bytes()
        for cut in (10, len(data) // 2, len(data) - 100):
            path = tmp_path / f"cut-{cut}-{name}"
            path.write_bytes(data[:cut])
            with pytest.raises(pth.PthError) as err:
                pth.read_state_dict(path)
            assert str(path) in str(err.value) and "\n" not in str(err.value)


def test_files_of_other_kinds_end_in_one_line(tmp_path):
    cases = {
        "text.pth": (b"hello, not a model\n", "neither a zip archive nor PyTorch.s legacy format"),
        "image.pth": (b"\x89PNG\r\n\x1a\n" + bytes(100), "neither a zip archive"),
        "list.pth": (pickle.dumps([1, 2, 3], protocol=2), "neither a zip archive nor PyTorch's legacy format"),
        "other.zip": (None, "a zip file without PyTorch's data.pkl"),
        "checkpoint.pth": (pickle.dumps({"epoch": 3}, protocol=2), "neither a zip archive"),
    }
    for name, (data, said) in cases.items():
        path = tmp_path / name
        if data is None:
            with zipfile.ZipFile(path, "w") as archive:
                archive.writestr("readme.txt", "hi")
        else:
            path.write_bytes(data)
        with pytest.raises(pth.PthError, match=said):
            pth.read_state_dict(path)


def test_a_training_checkpoint_of_nested_dicts_is_not_a_state_dict(tmp_path):
    nested = b"\x80\x02}" + value("state_dict") + b"}" + b"s."
    path = zip_pth(tmp_path / "checkpoint.pth", nested, {})
    with pytest.raises(pth.PthError, match="'state_dict' is a nested dict"):
        pth.read_state_dict(path)


def test_a_tensor_past_its_storage_is_named_as_damage(tmp_path):
    path = zip_pth(tmp_path / "short.pth", tensor_pickle([("w", "0", 4, 2, (4,), (1,))]), {"0": np.zeros(4, "<f4").tobytes()})
    with pytest.raises(pth.PthError, match="reaches past the end of storage 0"):
        pth.read_state_dict(path)
