"""A safe reader of PyTorch ``.pth`` files: tensors out, no pickled code run.

``read_torch_state_dict(path, use_torch=None)`` returns the object a
``torch.save`` file holds with every tensor as a NumPy array. It reads both
torch's zip format and its pre-1.6 format. With PyTorch it uses
``torch.load(weights_only=True)``; without it (or with ``use_torch=False``) a
restricted unpickler that allows only ``collections.OrderedDict``,
``torch._utils._rebuild_tensor(_v2)``, ``torch._utils._rebuild_parameter`` and
the ``torch.*Storage`` types, and rebuilds tensors from their storages with
bounds-checked strides. Any other global, a truncated file, a malformed
record or a tensor with more elements than its storage (an expanded view,
whose copy could need any amount of memory) raises ``WeightsError`` (the
pickle is refused, not executed).
"""

from __future__ import annotations

import collections
import dataclasses
import io
import math
import os
import pickle
import re
import struct
import zipfile
from typing import Any, BinaryIO, Callable, Mapping

import numpy as np

from jaxstyle.errors import WeightsError
from jaxstyle.vgg.formats import TORCH_LEGACY, TORCH_ZIP, sniff_format


class _StorageType:
  """Stand-in for ``torch.FloatStorage`` etc. in the restricted unpickler."""

  def __init__(self, name: str, dtype: np.dtype):
    self.name, self.dtype = name, np.dtype(dtype)


def _torch_storage_types() -> dict[str, _StorageType]:
  import ml_dtypes  # a JAX dependency: numpy bfloat16
  dtypes = {"FloatStorage": np.float32, "DoubleStorage": np.float64, "HalfStorage": np.float16,
            "BFloat16Storage": ml_dtypes.bfloat16, "LongStorage": np.int64, "IntStorage": np.int32,
            "ShortStorage": np.int16, "CharStorage": np.int8, "ByteStorage": np.uint8,
            "BoolStorage": np.bool_, "UntypedStorage": np.uint8}
  return {name: _StorageType(name, dt) for name, dt in dtypes.items()}


class _Storage:
  """One torch storage: its dtype, element count and (once read) its data."""

  def __init__(self, dtype: np.dtype, numel: int):
    self.dtype, self.numel, self.array = dtype, int(numel), None


_EXPANDED = ("a tensor of shape {size} views a storage of only {numel} elements (an expanded or "
             "overlapping view); save contiguous tensors (tensor.clone()) instead")


@dataclasses.dataclass
class _LazyTensor:
  storage: _Storage
  offset: int
  size: tuple
  stride: tuple

  def materialize(self) -> np.ndarray:
    data = self.storage.array
    size = tuple(int(n) for n in self.size)
    stride = tuple(int(s) for s in self.stride)
    if len(size) != len(stride):
      raise pickle.UnpicklingError("tensor size and stride disagree")
    if any(n == 0 for n in size):
      return np.zeros(size, data.dtype)
    if math.prod(size) > data.size:  # copying such a view could need any amount of memory
      raise ValueError(_EXPANDED.format(size=size, numel=data.size))
    last = int(self.offset) + sum((n - 1) * s for n, s in zip(size, stride))
    if self.offset < 0 or any(s < 0 for s in stride) or last >= data.size:
      raise pickle.UnpicklingError("tensor view lies outside its storage")
    view = np.lib.stride_tricks.as_strided(
        data[int(self.offset):], shape=size, strides=[s * data.itemsize for s in stride],
        writeable=False)
    return np.array(view)


def _rebuild_tensor(storage, storage_offset, size, stride, *unused):
  if not isinstance(storage, _Storage):
    raise pickle.UnpicklingError("tensor without a storage")
  return _LazyTensor(storage, storage_offset, tuple(size), tuple(stride))


def _rebuild_parameter(data, requires_grad=False, backward_hooks=None, *unused):
  return data


class _SafeUnpickler(pickle._Unpickler):  # pylint: disable=protected-access
  """Unpickles a state dict and nothing else: no global outside an allow-list.

  Allowed: ``collections.OrderedDict``, ``torch._utils._rebuild_tensor``
  (v1/v2), ``torch._utils._rebuild_parameter`` and the ``torch.*Storage``
  types, each mapped to a harmless stand-in. Tensors come back as
  ``_LazyTensor`` objects resolved against storages read separately.

  Built on pickle's pure-Python unpickler (its memo is a dict): the C one sizes
  its memo array by the largest memo index in the data, so one damaged
  ``LONG_BINPUT`` index (e.g. 1.3e9) makes it allocate and clear gigabytes (a
  hang). State-dict pickles are small (tensor data lies outside them).
  """

  def __init__(self, file: BinaryIO, storage_loader: Callable[[tuple], _Storage] | None):
    super().__init__(file)
    self._storage_loader = storage_loader
    self._storage_types = _torch_storage_types()

  def find_class(self, module: str, name: str) -> Any:
    if (module, name) == ("collections", "OrderedDict"):
      return collections.OrderedDict
    if module == "torch._utils" and name in ("_rebuild_tensor", "_rebuild_tensor_v2"):
      return _rebuild_tensor
    if module == "torch._utils" and name == "_rebuild_parameter":
      return _rebuild_parameter
    if module == "torch" and name in self._storage_types:
      return self._storage_types[name]
    raise pickle.UnpicklingError(f"the pickle references {module}.{name}, which a plain "
                                 "state dict of tensors never needs")

  def persistent_load(self, pid: Any) -> Any:
    if self._storage_loader is None or not isinstance(pid, tuple) or not pid or pid[0] != "storage":
      raise pickle.UnpicklingError(f"unexpected persistent id {pid!r:.80}")
    return self._storage_loader(pid)


def _materialize(obj: Any) -> Any:
  if isinstance(obj, _LazyTensor):
    return obj.materialize()
  if isinstance(obj, Mapping):
    return {k: _materialize(v) for k, v in obj.items()}
  if isinstance(obj, (list, tuple)):
    return type(obj)(_materialize(v) for v in obj)
  return obj


def _storage_dtype(storage_type: Any) -> np.dtype:
  if not isinstance(storage_type, _StorageType):
    raise pickle.UnpicklingError(f"unknown storage type {storage_type!r:.80}")
  return storage_type.dtype


def _read_torch_zip(path: str) -> Any:
  with zipfile.ZipFile(path) as z:
    pkl = next(n for n in z.namelist() if n == "data.pkl" or n.endswith("/data.pkl"))
    prefix = pkl[:-len("data.pkl")]
    order = "little"
    if prefix + "byteorder" in z.namelist():
      order = z.read(prefix + "byteorder").decode("ascii", "replace").strip()
    storages: dict[str, _Storage] = {}

    def load_storage(pid: tuple) -> _Storage:
      _, storage_type, key, _location, numel = pid
      dtype = _storage_dtype(storage_type)
      key = str(key)
      if key not in storages:
        dtype = dtype.newbyteorder(">" if order == "big" else "<")
        name = f"{prefix}data/{key}"
        try:
          info = z.getinfo(name)
        except KeyError:
          raise pickle.UnpicklingError(f"storage {name} is missing") from None
        if info.file_size < int(numel) * dtype.itemsize:
          raise pickle.UnpicklingError(f"storage {name} is truncated")
        storage = _Storage(dtype, numel)
        storage.array = np.frombuffer(z.read(name), dtype=dtype, count=int(numel)).astype(
            dtype.newbyteorder("="))
        storages[key] = storage
      return storages[key]

    result = _SafeUnpickler(io.BytesIO(z.read(pkl)), load_storage).load()
  return _materialize(result)


def _read_torch_legacy(path: str) -> Any:
  """torch.save's pre-1.6 format: magic, version, sys info, object, keys, raw storages."""
  size = os.path.getsize(path)
  with open(path, "rb") as f:
    magic = _SafeUnpickler(f, None).load()
    if magic != 0x1950A86A20F9469CFC6C:
      raise pickle.UnpicklingError("not a PyTorch file (bad magic number)")
    _SafeUnpickler(f, None).load()  # protocol version
    sys_info = _SafeUnpickler(f, None).load()
    little = not isinstance(sys_info, Mapping) or sys_info.get("little_endian", True)
    storages: dict[str, _Storage] = {}

    def load_storage(pid: tuple) -> _Storage:
      if len(pid) != 6:
        raise pickle.UnpicklingError("malformed storage id")
      _, storage_type, key, _location, numel, view = pid
      if view is not None:
        raise pickle.UnpicklingError("storage views (torch < 0.4 files) are not supported")
      key = str(key)
      if key not in storages:
        storages[key] = _Storage(_storage_dtype(storage_type), numel)
      return storages[key]

    result = _SafeUnpickler(f, load_storage).load()
    keys = _SafeUnpickler(f, None).load()
    for key in keys:
      storage = storages[str(key)]
      (numel,) = struct.unpack("<q" if little else ">q", f.read(8))
      nbytes = numel * storage.dtype.itemsize
      if numel < 0 or f.tell() + nbytes > size:
        raise pickle.UnpicklingError(f"storage {key} is truncated")
      dtype = storage.dtype.newbyteorder("<" if little else ">")
      storage.array = np.frombuffer(f.read(nbytes), dtype=dtype).astype(dtype.newbyteorder("="))
  return _materialize(result)


def _torch_importable() -> bool:
  import importlib.util
  return importlib.util.find_spec("torch") is not None


def read_torch_state_dict(path: str, use_torch: bool | None = None) -> dict[str, np.ndarray]:
  """Reads a PyTorch ``.pth`` without executing pickled code.

  Args:
    path: a file written by ``torch.save`` (zip or pre-1.6 format).
    use_torch: ``True``: ``torch.load(weights_only=True)``; ``False``: the
      built-in restricted unpickler (no PyTorch needed); ``None``: torch if
      importable.

  Returns:
    The top-level object with every tensor as a NumPy array (float32 for
    bfloat16 tensors under torch).

  Raises:
    WeightsError: unreadable file, or a pickle that references anything a
      plain state dict does not need (it is refused, not executed).
  """
  if use_torch is None:
    use_torch = _torch_importable()
  fmt = sniff_format(path)
  if fmt not in (TORCH_ZIP, TORCH_LEGACY):
    raise WeightsError(f"{path}: not a PyTorch file (detected {fmt})")
  try:
    if use_torch:
      import torch
      obj = torch.load(path, map_location="cpu", weights_only=True)

      def to_numpy(x):
        if isinstance(x, torch.Tensor):
          held = x.untyped_storage().nbytes() // x.element_size()
          if x.numel() > held:
            raise ValueError(_EXPANDED.format(size=tuple(x.shape), numel=held))
          x = x.detach().cpu()
          return (x.float() if x.dtype == torch.bfloat16 else x).numpy()
        if isinstance(x, Mapping):
          return {k: to_numpy(v) for k, v in x.items()}
        if isinstance(x, (list, tuple)):
          return type(x)(to_numpy(v) for v in x)
        return x

      return to_numpy(obj)
    return _read_torch_zip(path) if fmt == TORCH_ZIP else _read_torch_legacy(path)
  except WeightsError:
    raise
  except pickle.UnpicklingError as e:
    # torch's message advises weights_only=False: exactly what must not be done here.
    text = str(e)
    m = re.search(r"GLOBAL ([\w.]+)", text) or re.search(r"WeightsUnpickler error: ([^\n]+)", text)
    if m and m.re.pattern.startswith("GLOBAL"):
      detail = f"the pickle references {m.group(1)}, which a plain state dict of tensors never needs"
    elif m:
      detail = m.group(1).strip()
    else:
      detail = text.strip().splitlines()[0] if text.strip() else type(e).__name__
    raise WeightsError(
        f"{path}: refused to load: the pickle is not a plain state dict of tensors ({detail}); "
        "it could run arbitrary code when unpickled. Re-save it as "
        "torch.save(model.state_dict(), PATH) from a trusted source") from None
  except Exception as e:  # truncated zips, bad records, EOF, ...
    raise WeightsError(f"{path}: cannot read this PyTorch file ({type(e).__name__}: {e}); it is "
                       "damaged or not from torch.save: re-download or re-save it") from None
