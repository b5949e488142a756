"""PyTorch `.pth` state dicts read without PyTorch, and without running anything a file names.

A `.pth` is a pickle, and a plain unpickler calls whatever function the file names. This reader
builds only what a state dict is made of (ordered dicts of tensors over typed storages) from
stand-ins of its own; any other name the pickle asks for is refused before anything is called.

Both of PyTorch's formats are read:
  the zip archive (torch.save since PyTorch 1.6)   PREFIX/data.pkl, PREFIX/data/KEY (raw storages)
  the legacy stream (older files, and torch.save(..., _use_new_zipfile_serialization=False))
                                                   magic number, protocol, sys_info, the pickle,
                                                   the storage keys, then each storage (int64 count, bytes)
Storages are little-endian; a tensor is (storage, offset, size, stride) in elements, as PyTorch keeps it.
"""

from __future__ import annotations

import io
import pickle
import struct
import zipfile
from collections import OrderedDict
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from replication.errors import KitError

LEGACY_MAGIC = 0x1950A86A20F9469CFC6C
LEGACY_PROTOCOL = 1001

# storage type name -> its element type (little-endian); bfloat16 is widened by hand
STORAGE_DTYPES = {
    "FloatStorage": "<f4",
    "HalfStorage": "<f2",
    "DoubleStorage": "<f8",
    "BFloat16Storage": "<u2",
    "LongStorage": "<i8",
    "IntStorage": "<i4",
    "ByteStorage": "|u1",
}


class PthError(KitError):
    """A file that is not a plain PyTorch state dict this reader can take."""


@dataclass(frozen=True)
class StorageType:
    name: str

    @property
    def dtype(self) -> np.dtype:
        return np.dtype(STORAGE_DTYPES[self.name])


@dataclass
class Storage:
    """One storage: its element type and, once read, its elements (a flat array)."""

    kind: StorageType
    key: str
    count: int
    elements: np.ndarray | None = None


@dataclass(frozen=True)
class StorageView:
    """A legacy-format storage that is a slice of another (view_metadata)."""

    root: Storage
    offset: int
    count: int


@dataclass(frozen=True)
class TensorRecord:
    """A tensor as pickled: its storage and where in it the elements lie (in elements)."""

    storage: Storage | StorageView
    offset: int
    size: tuple
    stride: tuple

    def array(self) -> np.ndarray:
        storage, offset = self.storage, self.offset
        if isinstance(storage, StorageView):
            storage, offset = storage.root, storage.offset + offset
        elements = storage.elements
        if elements is None:
            raise PthError(f"storage {storage.key} is missing from the file")
        size = tuple(int(n) for n in self.size)
        stride = tuple(int(s) for s in self.stride)
        if len(stride) != len(size) or offset < 0:
            raise PthError("a tensor's size and stride do not agree")
        empty = not all(n > 0 for n in size)
        if not empty:
            last = offset + sum((n - 1) * s for n, s in zip(size, stride))
            if last >= len(elements) or min(stride, default=0) < 0:
                raise PthError(f"a tensor reaches past the end of storage {storage.key} (a damaged file)")
        item = elements.itemsize
        values = np.lib.stride_tricks.as_strided(
            elements[:0] if empty else elements[offset:], shape=size, strides=tuple(s * item for s in stride), writeable=False
        )
        values = np.array(values)  # a copy that owns its elements
        if storage.kind.name == "BFloat16Storage":
            values = (values.astype(np.uint32) << 16).view(np.float32)
        if values.dtype.kind == "f":
            values = values.astype(np.float32)
        return values


# What a plain state dict's pickle may name: each name -> the stand-in the reader builds instead.
def rebuild_tensor(storage, storage_offset, size, stride, *_ignored):
    """torch._utils._rebuild_tensor_v2 (requires_grad, backward hooks, metadata follow) and the older _rebuild_tensor."""
    return TensorRecord(storage, int(storage_offset), tuple(size), tuple(stride))


def rebuild_parameter(data, *_ignored):
    """torch._utils._rebuild_parameter: a Parameter is its tensor here."""
    return data


ALLOWED = {
    ("collections", "OrderedDict"): OrderedDict,
    ("torch._utils", "_rebuild_tensor_v2"): rebuild_tensor,
    ("torch._utils", "_rebuild_tensor"): rebuild_tensor,
    ("torch._utils", "_rebuild_parameter"): rebuild_parameter,
    **{(module, name): StorageType(name) for name in STORAGE_DTYPES for module in ("torch", "torch.cuda")},
}


class StateDictUnpickler(pickle.Unpickler):
    """An unpickler that builds state dicts only; `storages` collects the storages it meets by key."""

    def __init__(self, file, legacy: bool):
        super().__init__(file)
        self.legacy = legacy
        self.storages: dict[str, Storage] = {}

    def find_class(self, module, name):
        try:
            return ALLOWED[(module, name)]
        except KeyError:
            raise PthError(f"asks to run {module}.{name}") from None

    def persistent_load(self, pid):
        if not isinstance(pid, tuple) or not pid or pid[0] != "storage":
            raise PthError(f"names a stored object of kind {pid[0] if isinstance(pid, tuple) and pid else pid!r}")
        try:
            kind, key, _location, count = pid[1:5]
        except ValueError:
            raise PthError("has a storage record of a form PyTorch does not write") from None
        if not isinstance(kind, StorageType):
            raise PthError(f"has a storage of type {kind!r}")
        key = str(key)
        storage = self.storages.setdefault(key, Storage(kind, key, int(count)))
        view = pid[5] if self.legacy and len(pid) > 5 else None
        if view is not None:  # (view key, offset, size) of a slice of `storage`
            _view_key, offset, size = view
            return StorageView(storage, int(offset), int(size))
        return storage


def read_state_dict(path) -> OrderedDict:
    """{name: float32 (or integer) NumPy array} of a `.pth` file; any problem is one PthError line naming the file."""
    path = Path(path)
    try:
        data = path.read_bytes()
    except OSError as err:
        raise PthError(f"cannot read {path} ({err.strerror or err})") from None
    try:
        if zipfile.is_zipfile(io.BytesIO(data)):
            state = read_zip(data)
        elif data.startswith(b"PK\x03\x04"):
            raise PthError("a damaged or truncated zip archive, PyTorch's format since 1.6")
        else:
            state = read_legacy(data)
        return arrays_of(state)
    except PthError as err:
        text = str(err)
        if text.startswith("asks to run "):
            raise PthError(f"{path}: this file {text}: not a plain state dict; nothing was run or written.") from None
        raise PthError(f"{path} is damaged or not a PyTorch state dict this kit can read ({text}).") from None
    except (pickle.UnpicklingError, EOFError, ValueError, TypeError, KeyError, IndexError, AttributeError,
            struct.error, zipfile.BadZipFile, RecursionError, MemoryError, OverflowError) as err:
        raise PthError(f"{path} is damaged or not a PyTorch .pth file ({type(err).__name__}: {str(err)[:200]}).") from None


def read_zip(data: bytes):
    archive = zipfile.ZipFile(io.BytesIO(data))
    pickles = [name for name in archive.namelist() if name.endswith("/data.pkl") and name.count("/") == 1]
    if len(pickles) != 1:
        raise PthError("a zip file without PyTorch's data.pkl")
    prefix = pickles[0][: -len("data.pkl")]
    names = set(archive.namelist())
    if f"{prefix}byteorder" in names and archive.read(f"{prefix}byteorder").strip() != b"little":
        raise PthError("saved big-endian")
    unpickler = StateDictUnpickler(io.BytesIO(archive.read(pickles[0])), legacy=False)
    state = unpickler.load()
    for key, storage in unpickler.storages.items():
        name = f"{prefix}data/{key}"
        if name not in names:
            raise PthError(f"its storage {key} is missing")
        storage.elements = elements(archive.read(name), storage)
    return state


def read_legacy(data: bytes):
    stream = io.BytesIO(data)

    def plain_pickle():
        return StateDictUnpickler(stream, legacy=True).load()

    try:
        magic = plain_pickle()
    except PthError as err:
        if str(err).startswith("asks to run "):
            raise
        raise PthError("neither a zip archive nor PyTorch's legacy format") from None
    except Exception:
        raise PthError("neither a zip archive nor PyTorch's legacy format") from None
    if magic != LEGACY_MAGIC:
        raise PthError("neither a zip archive nor PyTorch's legacy format")
    if plain_pickle() != LEGACY_PROTOCOL:
        raise PthError("a legacy protocol version this reader does not know")
    sys_info = plain_pickle()
    if isinstance(sys_info, dict) and not sys_info.get("little_endian", True):
        raise PthError("saved big-endian")
    unpickler = StateDictUnpickler(stream, legacy=True)
    state = unpickler.load()
    keys = plain_pickle()
    if not isinstance(keys, list):
        raise PthError("its storage keys are not a list")
    for key in keys:
        storage = unpickler.storages.get(str(key))
        if storage is None:
            raise PthError(f"lists a storage {key} no tensor uses")
        header = stream.read(8)
        if len(header) != 8:
            raise PthError(f"it ends before storage {key} (a truncated file)")
        (count,) = struct.unpack("<q", header)
        size = count * storage.kind.dtype.itemsize
        raw = stream.read(size)
        if count < 0 or len(raw) != size:
            raise PthError(f"it ends inside storage {key} (a truncated file)")
        storage.elements = np.frombuffer(raw, dtype=storage.kind.dtype)
    return state


def elements(raw: bytes, storage: Storage) -> np.ndarray:
    if len(raw) % storage.kind.dtype.itemsize:
        raise PthError(f"storage {storage.key} has a length that is not whole elements")
    return np.frombuffer(raw, dtype=storage.kind.dtype)


def arrays_of(state) -> OrderedDict:
    """The state dict's tensors as arrays; anything but names of tensors is another kind of file."""
    if not isinstance(state, dict):
        raise PthError(f"it holds a {type(state).__name__}, not a state dict")
    arrays = OrderedDict()
    for name, value in state.items():
        if not isinstance(value, TensorRecord):
            what = "a nested dict (a training checkpoint?)" if isinstance(value, dict) else type(value).__name__
            raise PthError(f"its entry {name!r} is {what}, not a tensor")
        arrays[str(name)] = value.array()
    if not arrays:
        raise PthError("it holds no tensors")
    return arrays
