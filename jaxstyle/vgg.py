"""VGG-19 feature extractor (Flax linen), its preprocessing and its weights.

* ``VGG19`` returns a dict of named activations (``conv1_1``, ``relu1_1``, …,
  ``pool1``, …, ``relu5_4``, ``pool5``) and computes only up to the deepest
  requested layer. Input: float32 RGB in [0, 1], NHWC, any H×W (≥ 1 pixel at
  every requested tap).
* Preprocessing is a property of the weights (``PREPROCESSING``): ``caffe``
  (BGR, 0–255, ImageNet mean subtracted; Keras/Caffe weights) or ``torch``
  (RGB, ImageNet mean/std; torchvision weights). ``VGGWeights`` carries its
  convention, so callers never choose it.
* 2×2/2 max-pooling is implemented as reshape + max: its gradient is
  deterministic on every backend (XLA's select-and-scatter is not, on GPU)
  and it equals ``flax.linen.max_pool`` (padding "VALID") in the forward pass.
  On exact ties inside a window the gradient is split evenly between the tied
  inputs (``max_pool``'s picks one). Odd sizes use the floor convention of
  Keras ("valid") and torchvision (``ceil_mode=False``): the last row/column of
  an odd-sized map is dropped (the original Caffe model pooled with ceil; the
  difference only touches the border of odd-sized maps).
* Weights live in one canonical ``.npz``: ``conv{b}_{c}/kernel`` (HWIO,
  float32), ``conv{b}_{c}/bias`` and ``preprocessing`` (a string). Partial
  files (e.g. conv1_1…conv3_4) are legal; deeper layers then raise
  ``WeightsError`` naming the deepest available layer.
* Converters: torchvision state dicts (``.pth``, ``features.{i}.weight`` OIHW;
  loaded without executing pickled code, with or without PyTorch installed)
  and Keras ``.h5`` (``block{b}_conv{c}``, HWIO; needs ``h5py``).
* Weight path resolution: explicit argument, else ``$JAXSTYLE_VGG19``, else
  ``~/.cache/jaxstyle/vgg19.npz``.

Command line::

  python -m jaxstyle.vgg convert SRC DST.npz [--preprocessing caffe|torch]
  python -m jaxstyle.vgg info FILE
  python -m jaxstyle.vgg download [--dest PATH] [--url URL] [--force]
"""

from __future__ import annotations

import argparse
import collections
import dataclasses
import io
import os
import pickle
import re
import struct
import sys
import tempfile
import urllib.request
import zipfile
from typing import Any, BinaryIO, Callable, Iterable, Mapping, Sequence

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np

from jaxstyle import rundir
from jaxstyle.errors import JaxstyleError

ENV_VAR = "JAXSTYLE_VGG19"
CACHE_DIR = os.path.join("~", ".cache", "jaxstyle")
CACHE_FILE = "vgg19.npz"

# (block, number of convs, channels) of VGG-19.
BLOCKS = ((1, 2, 64), (2, 2, 128), (3, 4, 256), (4, 4, 512), (5, 4, 512))
CONV_LAYERS: tuple[str, ...] = tuple(f"conv{b}_{c}" for b, n, _ in BLOCKS for c in range(1, n + 1))
CHANNELS: dict[str, int] = {f"conv{b}_{c}": ch for b, n, ch in BLOCKS for c in range(1, n + 1)}


def _tap_order() -> tuple[str, ...]:
  taps = []
  for b, n, _ in BLOCKS:
    for c in range(1, n + 1):
      taps += [f"conv{b}_{c}", f"relu{b}_{c}"]
    taps.append(f"pool{b}")
  return tuple(taps)


TAPS: tuple[str, ...] = _tap_order()
_TAP_INDEX = {name: i for i, name in enumerate(TAPS)}


class WeightsError(JaxstyleError):
  """VGG weights are missing, malformed or do not cover a requested layer."""


# ----------------------------------------------------------------------------
# Preprocessing registry: RGB [0, 1] NHWC -> what the weights expect.

IMAGENET_MEAN_BGR_255 = (103.939, 116.779, 123.68)
IMAGENET_MEAN_RGB = (0.485, 0.456, 0.406)
IMAGENET_STD_RGB = (0.229, 0.224, 0.225)


def _caffe(x: jax.Array) -> jax.Array:
  return x[..., ::-1] * 255.0 - jnp.asarray(IMAGENET_MEAN_BGR_255, x.dtype)


def _torch(x: jax.Array) -> jax.Array:
  return (x - jnp.asarray(IMAGENET_MEAN_RGB, x.dtype)) / jnp.asarray(IMAGENET_STD_RGB, x.dtype)


PREPROCESSING: dict[str, Callable[[jax.Array], jax.Array]] = {"caffe": _caffe, "torch": _torch}


def preprocess(images: jax.Array, convention: str) -> jax.Array:
  """Maps RGB [0, 1] NHWC images to the input convention of a weight family."""
  try:
    return PREPROCESSING[convention](images)
  except KeyError:
    raise WeightsError(f"unknown VGG preprocessing {convention!r}; known: "
                       f"{sorted(PREPROCESSING)}") from None


# ----------------------------------------------------------------------------
# Pooling.


def _crop_even(x: jax.Array) -> jax.Array:
  h, w = x.shape[1] // 2 * 2, x.shape[2] // 2 * 2
  return x[:, :h, :w, :]


def max_pool_2x2(x: jax.Array) -> jax.Array:
  """2×2 stride-2 max pool as reshape + max (deterministic gradient). NHWC."""
  x = _crop_even(x)
  b, h, w, c = x.shape
  return x.reshape(b, h // 2, 2, w // 2, 2, c).max(axis=(2, 4))


def avg_pool_2x2(x: jax.Array) -> jax.Array:
  """2×2 stride-2 average pool as reshape + mean. NHWC."""
  x = _crop_even(x)
  b, h, w, c = x.shape
  return x.reshape(b, h // 2, 2, w // 2, 2, c).mean(axis=(2, 4))


POOLING = {"max": max_pool_2x2, "avg": avg_pool_2x2}


# ----------------------------------------------------------------------------
# The network.


def deepest_conv(layers: Iterable[str]) -> str:
  """The last conv layer needed to compute every tap in ``layers``."""
  layers = [layers] if isinstance(layers, str) else list(layers)
  if not layers:
    raise ValueError("no VGG layers requested")
  for name in layers:
    if name not in _TAP_INDEX:
      raise WeightsError(f"unknown VGG-19 layer {name!r}; valid names are conv/relu{{b}}_{{c}} "
                         f"and pool{{b}}, e.g. relu1_1, relu3_2, pool2")
  last = max(layers, key=_TAP_INDEX.get)
  idx = _TAP_INDEX[last]
  return [t for t in TAPS[:idx + 1] if t.startswith("conv")][-1]


class VGG19(nn.Module):
  """VGG-19 convolutional trunk returning named activations.

  Attributes:
    preprocessing: key of ``PREPROCESSING`` (set from the weights).
    pooling: ``"max"`` (default) or ``"avg"``.
    dtype: compute dtype (``jnp.bfloat16`` for faster features; params stay f32).
  """

  preprocessing: str = "caffe"
  pooling: str = "max"
  dtype: Any = jnp.float32

  @nn.compact
  def __call__(self, images: jax.Array, layers: Sequence[str]) -> dict[str, jax.Array]:
    """Args: ``images`` [B, H, W, 3] RGB in [0, 1]; ``layers`` tap names.

    Returns: dict tap name -> activation ``[B, h, w, C]`` for each requested tap.
    """
    layers = (layers,) if isinstance(layers, str) else tuple(layers)
    wanted = set(layers)
    deepest_conv(layers)  # validates the names
    stop = max(_TAP_INDEX[name] for name in wanted)
    if images.ndim != 4 or images.shape[-1] != 3:
      raise ValueError(f"VGG19 expects RGB images [B, H, W, 3], got shape {images.shape}")
    if self.pooling not in POOLING:
      raise ValueError(f"unknown VGG pooling {self.pooling!r}; choose one of {sorted(POOLING)}")
    pool = POOLING[self.pooling]
    x = preprocess(images.astype(jnp.float32), self.preprocessing).astype(self.dtype)
    out = {}
    for tap in TAPS[:stop + 1]:
      if tap.startswith("conv"):
        x = nn.Conv(CHANNELS[tap], (3, 3), padding="SAME", dtype=self.dtype,
                    param_dtype=jnp.float32, name=tap)(x)
      elif tap.startswith("relu"):
        x = jax.nn.relu(x)
      else:
        if x.shape[1] < 2 or x.shape[2] < 2:
          raise ValueError(f"images of {images.shape[1]}x{images.shape[2]} pixels are too small "
                           f"for {tap}: each 2x2 pool halves the size (floor)")
        x = pool(x)
      if tap in wanted:
        out[tap] = x
    return out


# ----------------------------------------------------------------------------
# Weights.


@dataclasses.dataclass(frozen=True)
class VGGWeights:
  """VGG-19 weights with their preprocessing convention.

  Attributes:
    params: ``{"conv1_1": {"kernel": [3,3,3,64] HWIO, "bias": [64]}, ...}`` for a
      prefix of ``CONV_LAYERS`` (possibly all 16).
    preprocessing: key of ``PREPROCESSING``.
    source: where the weights came from (for config.json / error messages).
  """

  params: Mapping[str, Mapping[str, Any]]
  preprocessing: str
  source: str = "<memory>"

  @property
  def layers(self) -> tuple[str, ...]:
    return tuple(name for name in CONV_LAYERS if name in self.params)

  @property
  def deepest_layer(self) -> str:
    """The deepest tap these weights can serve (e.g. ``relu3_4``)."""
    return "relu" + self.layers[-1][len("conv"):]

  def check_layers(self, layers: Iterable[str]) -> None:
    """Raises ``WeightsError`` if a tap in ``layers`` needs missing convs."""
    layers = [layers] if isinstance(layers, str) else list(layers)
    need = deepest_conv(layers)
    if need not in self.params:
      too_deep = [t for t in layers if deepest_conv([t]) not in self.params]
      raise WeightsError(
          f"VGG layer(s) {', '.join(too_deep)} need {need}, but the weights from {self.source} "
          f"stop at {self.layers[-1]} (deepest available layer: {self.deepest_layer}); "
          f"choose layers up to {self.deepest_layer} or use full VGG-19 weights "
          f"(`python -m jaxstyle.vgg download`)")

  def variables(self) -> dict:
    """The Flax variables dict for ``VGG19.apply``."""
    return {"params": jax.tree.map(jnp.asarray, {k: dict(v) for k, v in self.params.items()})}


# A pytree (params are the leaves; preprocessing and source are static), so
# weights can be passed *into* jit instead of being closed over: closed-over
# weights become compile-time constants, which costs seconds of compile time
# for the full network on a CPU.
jax.tree_util.register_dataclass(VGGWeights, data_fields=["params"],
                                 meta_fields=["preprocessing", "source"])


def _validate_params(params: Mapping[str, Mapping[str, Any]], source: str) -> None:
  present = [name for name in CONV_LAYERS if name in params]
  if not present:
    raise WeightsError(f"{source}: no VGG-19 conv layers found (expected keys like "
                       "'conv1_1/kernel', 'conv1_1/bias')")
  expected_prefix = list(CONV_LAYERS[:len(present)])
  if present != expected_prefix:
    missing = [n for n in expected_prefix if n not in params]
    raise WeightsError(f"{source}: conv layers must form a prefix conv1_1, conv1_2, ...; "
                       f"missing {', '.join(missing)}")
  cin = 3
  for name in present:
    layer = params[name]
    if "kernel" not in layer or "bias" not in layer:
      raise WeightsError(f"{source}: {name} needs both kernel and bias")
    cout = CHANNELS[name]
    if tuple(np.shape(layer["kernel"])) != (3, 3, cin, cout):
      raise WeightsError(f"{source}: {name}/kernel has shape {tuple(np.shape(layer['kernel']))}, "
                         f"expected HWIO {(3, 3, cin, cout)}")
    if tuple(np.shape(layer["bias"])) != (cout,):
      raise WeightsError(f"{source}: {name}/bias has shape {tuple(np.shape(layer['bias']))}, "
                         f"expected {(cout,)}")
    if not np.all(np.isfinite(layer["kernel"])) or not np.all(np.isfinite(layer["bias"])):
      raise WeightsError(f"{source}: {name} has non-finite values")
    cin = cout


def make_weights(params: Mapping[str, Mapping[str, Any]], preprocessing: str,
                 source: str = "<memory>") -> VGGWeights:
  """Validates ``params`` (HWIO kernels) and wraps them as ``VGGWeights``."""
  if preprocessing not in PREPROCESSING:
    raise WeightsError(f"{source}: unknown preprocessing {preprocessing!r}; known: "
                       f"{sorted(PREPROCESSING)}")
  converted = {}
  for name, layer in params.items():
    if name not in CHANNELS:
      continue
    try:
      converted[name] = {kind: np.asarray(layer[kind], np.float32) for kind in ("kernel", "bias")
                         if kind in layer}
    except (TypeError, ValueError) as e:
      raise WeightsError(f"{source}: {name} is not numeric ({e})") from None
  params = converted
  _validate_params(params, source)
  return VGGWeights(params=params, preprocessing=preprocessing, source=source)


def resolve_weights_path(path: str | None = None) -> str:
  """Explicit path, else ``$JAXSTYLE_VGG19``, else the cache; must exist."""
  origin = "--vgg_weights"
  if not path:
    path, origin = os.environ.get(ENV_VAR), f"${ENV_VAR}"
  if not path:
    path, origin = os.path.join(os.path.expanduser(CACHE_DIR), CACHE_FILE), "the default cache"
  path = os.path.expanduser(path)
  if not os.path.isfile(path):
    raise WeightsError(
        f"VGG-19 weights not found at {path} (from {origin}). Pass --vgg_weights PATH or set "
        f"{ENV_VAR} to a jaxstyle .npz; with internet access run `python -m jaxstyle.vgg download` "
        f"(torchvision weights, cached in {CACHE_DIR}); convert a torchvision .pth or Keras .h5 "
        f"with `python -m jaxstyle.vgg convert SRC DST.npz`")
  return path


def load_weights(path: str | None = None, preprocessing: str | None = None) -> VGGWeights:
  """Loads VGG-19 weights: canonical ``.npz`` (no pickles), or ``.pth``/``.h5``.

  Args:
    path: file; ``None`` resolves via ``resolve_weights_path``. A PyTorch
      ``.pth`` or Keras ``.h5`` (detected from the content) is converted in
      memory (``load_pth`` / ``load_h5``); convert once with
      ``python -m jaxstyle.vgg convert`` to skip that on every run.
    preprocessing: overrides the stored convention. ``.npz`` files without a
      stored ``preprocessing`` entry are taken to be Keras/Caffe (``"caffe"``),
      the family whose ``conv{b}_{c}/kernel`` HWIO key layout this format
      follows; ``.pth`` defaults to ``"torch"``, ``.h5`` to ``"caffe"``.
  """
  path = resolve_weights_path(path)
  fmt = _sniff_format(path)
  if fmt in (_TORCH_ZIP, _TORCH_LEGACY):
    return load_pth(path, preprocessing or "torch")
  if fmt == _HDF5:
    return load_h5(path, preprocessing or "caffe")
  try:
    with np.load(path, allow_pickle=False) as data:
      arrays = {k: data[k] for k in data.files}
  except Exception as e:  # zipfile / ValueError / OSError all mean "not our format"
    raise WeightsError(f"{path}: not a readable jaxstyle VGG .npz ({type(e).__name__}: {e}); "
                       "convert other formats with `python -m jaxstyle.vgg convert`") from e
  stored = None
  if "preprocessing" in arrays:
    value = arrays.pop("preprocessing")
    if value.size != 1 or value.dtype.kind not in "US":
      raise WeightsError(f"{path}: the 'preprocessing' entry must be one string (e.g. 'caffe'), "
                         f"got {value.dtype} of shape {value.shape}")
    stored = value.item()
    stored = stored.decode("utf-8", "replace") if isinstance(stored, bytes) else stored
  params: dict[str, dict[str, np.ndarray]] = {}
  for key, value in arrays.items():
    layer, _, kind = key.partition("/")
    if kind in ("kernel", "bias"):
      params.setdefault(layer, {})[kind] = value
  return make_weights(params, preprocessing or stored or "caffe", source=path)


def save_weights(weights: VGGWeights, path: str) -> None:
  """Writes ``weights`` in the canonical ``.npz`` format (atomically)."""
  arrays = {"preprocessing": np.asarray(weights.preprocessing)}
  for name in weights.layers:
    arrays[f"{name}/kernel"] = np.asarray(weights.params[name]["kernel"], np.float32)
    arrays[f"{name}/bias"] = np.asarray(weights.params[name]["bias"], np.float32)
  with rundir.atomic_open(path) as f:
    np.savez(f, **arrays)


def random_weights(key: jax.Array, upto: str = "conv5_4",
                   preprocessing: str = "caffe") -> VGGWeights:
  """He-initialised weights for layers conv1_1…``upto`` (tests, baselines).

  Deterministic in ``key`` (typed or raw). Drawn with NumPy seeded from the
  key's bits: eager threefry for the 20 M parameters of full VGG-19 takes
  seconds on a CPU, NumPy a fraction of that.
  """
  layers = CONV_LAYERS[:CONV_LAYERS.index(upto) + 1]
  if jnp.issubdtype(jnp.asarray(key).dtype, jax.dtypes.prng_key):
    key = jax.random.key_data(key)
  rng = np.random.default_rng([int(v) for v in np.asarray(key, np.uint32).ravel()])
  params, cin = {}, 3
  for name in layers:
    cout = CHANNELS[name]
    std = np.sqrt(2.0 / (9 * cin))
    params[name] = {"kernel": (rng.standard_normal((3, 3, cin, cout), np.float32) * std).astype(np.float32),
                    "bias": np.zeros((cout,), np.float32)}
    cin = cout
  return make_weights(params, preprocessing, source=f"random({upto})")


# ----------------------------------------------------------------------------
# Pure-function entry points.


def extract(weights: VGGWeights, images: jax.Array, layers: Sequence[str], *,
            pooling: str = "max", dtype: Any = jnp.float32) -> dict[str, jax.Array]:
  """Features of ``images`` ([B, H, W, 3] RGB [0, 1]) at ``layers``.

  Returns ``{layer: [B, h, w, C]}`` in ``dtype``. Jit-compatible;
  ``VGGWeights`` is a pytree, so prefer passing it as an argument
  (``jax.jit(lambda w, x: extract(w, x, layers))(weights, x)``) over closing
  over it, which bakes the weights into the program as constants (slower to
  compile). Raises ``WeightsError`` if a layer is deeper than the weights reach.
  """
  layers = (layers,) if isinstance(layers, str) else tuple(layers)
  weights.check_layers(layers)
  model = VGG19(preprocessing=weights.preprocessing, pooling=pooling, dtype=dtype)
  return model.apply(weights.variables(), images, layers)


def feature_fn(weights: VGGWeights, layers: Sequence[str], *, pooling: str = "max",
               dtype: Any = jnp.float32) -> Callable[[jax.Array], dict[str, jax.Array]]:
  """Returns ``f(images) -> {layer: features}`` with weights bound (jit-friendly).

  The weights are closed over: under ``jit`` they become constants of the
  compiled program (fine for small/partial weights; for full VGG-19 inside a
  hot loop pass ``VGGWeights`` as a jit argument to ``extract`` instead).
  """
  layers = (layers,) if isinstance(layers, str) else tuple(layers)
  weights.check_layers(layers)
  model = VGG19(preprocessing=weights.preprocessing, pooling=pooling, dtype=dtype)
  variables = weights.variables()

  def f(images: jax.Array) -> dict[str, jax.Array]:
    return model.apply(variables, images, layers)

  return f


# ----------------------------------------------------------------------------
# Converters: torchvision state dicts (.pth) and Keras (.h5).

# Index of each conv in torchvision's ``vgg19().features`` (ReLU after each,
# MaxPool at 4, 9, 18, 27, 36).
TORCHVISION_INDICES: dict[str, int] = dict(zip(
    CONV_LAYERS, (0, 2, 5, 7, 10, 12, 14, 16, 19, 21, 23, 25, 28, 30, 32, 34)))
_TORCH_INDEX_TO_CONV = {i: name for name, i in TORCHVISION_INDICES.items()}

_NPZ, _TORCH_ZIP, _TORCH_LEGACY, _HDF5 = "npz", "torch-zip", "torch-legacy", "hdf5"
_HDF5_MAGIC = b"\x89HDF\r\n\x1a\n"


def _sniff_format(path: str) -> str:
  """``npz``, ``torch-zip``, ``torch-legacy`` (raw pickle) or ``hdf5``, by content."""
  try:
    with open(path, "rb") as f:
      head = f.read(8)
  except OSError as e:
    raise WeightsError(f"{path}: cannot read ({e.strerror or e})") from None
  if head.startswith(_HDF5_MAGIC):
    return _HDF5
  if head.startswith(b"PK"):
    try:
      with zipfile.ZipFile(path) as z:
        names = z.namelist()
    except zipfile.BadZipFile as e:
      raise WeightsError(f"{path}: looks like a zip archive but is damaged ({e})") from None
    if any(n == "data.pkl" or n.endswith("/data.pkl") for n in names):
      return _TORCH_ZIP
    return _NPZ
  if head[:1] == b"\x80":  # pickle protocol >= 2: torch's pre-1.6 format
    return _TORCH_LEGACY
  raise WeightsError(f"{path}: not a VGG weight file this tool reads (expected a jaxstyle .npz, "
                     "a PyTorch .pth state dict or a Keras .h5)")


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


class _SafeUnpickler(pickle.Unpickler):
  """Unpickles a state dict and nothing else: no global outside an allow-list.

  Allowed: ``collections.OrderedDict``, ``torch._utils._rebuild_tensor``
  (v1/v2), ``torch._utils._rebuild_parameter`` and the ``torch.*Storage``
  types, each mapped to a harmless stand-in. Tensors come back as
  ``_LazyTensor`` objects resolved against storages read separately.
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
  fmt = _sniff_format(path)
  if fmt not in (_TORCH_ZIP, _TORCH_LEGACY):
    raise WeightsError(f"{path}: not a PyTorch file (detected {fmt})")
  try:
    if use_torch:
      import torch
      obj = torch.load(path, map_location="cpu", weights_only=True)

      def to_numpy(x):
        if isinstance(x, torch.Tensor):
          x = x.detach().cpu()
          return (x.float() if x.dtype == torch.bfloat16 else x).numpy()
        if isinstance(x, Mapping):
          return {k: to_numpy(v) for k, v in x.items()}
        if isinstance(x, (list, tuple)):
          return type(x)(to_numpy(v) for v in x)
        return x

      return to_numpy(obj)
    return _read_torch_zip(path) if fmt == _TORCH_ZIP else _read_torch_legacy(path)
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
    raise WeightsError(f"{path}: cannot read this PyTorch file ({type(e).__name__}: {e})") from None


def params_from_state_dict(state: Any, source: str = "<memory>") -> dict[str, dict[str, np.ndarray]]:
  """torchvision-style ``features.{i}.weight`` (OIHW) → ``{conv: {kernel HWIO, bias}}``.

  Accepts a bare state dict, one nested under ``state_dict`` /
  ``model_state_dict``, keys with a leading prefix (``module.features.0.weight``)
  or a bare ``features`` state dict (``0.weight``). Classifier keys are ignored.
  """
  if isinstance(state, Mapping):
    for key in ("state_dict", "model_state_dict"):
      if isinstance(state.get(key), Mapping):
        state = state[key]
        break
  if not isinstance(state, Mapping):
    raise WeightsError(f"{source}: expected a state dict (a mapping of names to tensors), got "
                       f"{type(state).__name__}")
  found: dict[int, dict[str, Any]] = {}
  for pattern in (r"(?:^|\.)features\.(\d+)\.(weight|bias)$", r"^(\d+)\.(weight|bias)$"):
    for key, value in state.items():
      m = re.search(pattern, str(key))
      if not m:
        continue
      index, kind = int(m.group(1)), m.group(2)
      if kind in found.get(index, {}):
        raise WeightsError(f"{source}: two entries for features.{index}.{kind} (e.g. {key!r}); "
                           "extract the VGG state dict first")
      found.setdefault(index, {})[kind] = value
    if found:
      break
  if not found:
    keys = ", ".join(list(map(str, state))[:5])
    raise WeightsError(f"{source}: no torchvision VGG keys 'features.{{i}}.weight' found "
                       f"(first keys: {keys or 'none'})")
  stray = sorted(set(found) - set(_TORCH_INDEX_TO_CONV))
  if stray:
    raise WeightsError(f"{source}: features.{stray[0]} has parameters but is not a conv of "
                       f"torchvision VGG-19 (convs at {sorted(_TORCH_INDEX_TO_CONV)}); "
                       "is this VGG-19-BN or another network?")
  params = {}
  for index, entry in sorted(found.items()):
    name = _TORCH_INDEX_TO_CONV[index]
    kernel = np.asarray(entry.get("weight"))
    if "weight" not in entry or "bias" not in entry:
      raise WeightsError(f"{source}: features.{index} ({name}) needs both weight and bias")
    if kernel.ndim != 4:
      raise WeightsError(f"{source}: features.{index}.weight has shape {kernel.shape}, "
                         "expected OIHW [out, in, 3, 3]")
    params[name] = {"kernel": kernel.transpose(2, 3, 1, 0), "bias": np.asarray(entry["bias"])}
  return params


def load_pth(path: str, preprocessing: str = "torch", use_torch: bool | None = None) -> VGGWeights:
  """Converts a torchvision VGG-19 state dict (``.pth``) to ``VGGWeights``.

  Args:
    path: ``torch.save(vgg19().state_dict())`` output (partial prefixes OK).
    preprocessing: ``"torch"`` for torchvision weights; ``"caffe"`` for the
      Caffe-converted .pth files some style-transfer code uses.
    use_torch: see ``read_torch_state_dict``.
  """
  state = read_torch_state_dict(path, use_torch=use_torch)
  return make_weights(params_from_state_dict(state, path), preprocessing, source=path)


def load_h5(path: str, preprocessing: str = "caffe") -> VGGWeights:
  """Converts Keras VGG19 weights (``.h5``, groups ``block{b}_conv{c}``) to ``VGGWeights``.

  Reads Keras 2 weight files (``block1_conv1/block1_conv1/kernel:0`` or
  ``..._W_1:0``), full-model files (``model_weights/...``) and Keras 3
  ``.weights.h5`` (``layers/block1_conv1/vars/{0,1}``): in each layer group
  the 4-D dataset is the HWIO kernel and the 1-D one the bias. Needs h5py.
  """
  try:
    import h5py
  except ImportError:
    raise WeightsError(f"{path}: reading Keras .h5 files needs h5py: pip install 'jaxstyle[keras]' "
                       "(or h5py)") from None
  params: dict[str, dict[str, np.ndarray]] = {}
  try:
    with h5py.File(path, "r") as f:
      root = f["model_weights"] if "model_weights" in f else f
      groups: dict[str, Any] = {}

      def visit(name, obj):
        if isinstance(obj, h5py.Group) and "optimizer" not in name.lower():
          m = re.fullmatch(r"block(\d)_conv(\d)", name.rsplit("/", 1)[-1])
          if m and f"conv{m.group(1)}_{m.group(2)}" in CHANNELS:
            groups.setdefault(f"conv{m.group(1)}_{m.group(2)}", obj)

      root.visititems(visit)
      for layer, group in groups.items():
        arrays = []
        group.visititems(lambda _, obj: arrays.append(obj[()]) if isinstance(obj, h5py.Dataset)
                         else None)
        kernels = [a for a in arrays if np.ndim(a) == 4]
        biases = [a for a in arrays if np.ndim(a) == 1]
        if len(kernels) != 1 or len(biases) != 1:
          raise WeightsError(f"{path}: Keras layer {group.name} should hold one 4-D kernel and one "
                             f"1-D bias, found {len(kernels)} and {len(biases)}")
        params[layer] = {"kernel": kernels[0], "bias": biases[0]}
  except WeightsError:
    raise
  except Exception as e:
    raise WeightsError(f"{path}: cannot read this Keras .h5 file ({type(e).__name__}: {e})") from None
  if not params:
    raise WeightsError(f"{path}: no Keras VGG19 layers 'block{{b}}_conv{{c}}' found")
  return make_weights(params, preprocessing, source=path)


def load_any(path: str, preprocessing: str | None = None) -> VGGWeights:
  """Loads weights from a jaxstyle ``.npz``, a PyTorch ``.pth`` or a Keras ``.h5``.

  The format is detected from the content. ``preprocessing`` overrides the
  format's convention (npz: stored; pth: ``torch``; h5: ``caffe``).
  """
  if not os.path.isfile(path):
    raise WeightsError(f"{path}: no such file")
  return load_weights(path, preprocessing)


def convert(src: str, dst: str, preprocessing: str | None = None) -> VGGWeights:
  """Converts ``src`` (npz/pth/h5) to the canonical ``.npz`` at ``dst`` (atomic)."""
  if not os.path.isfile(src):
    raise WeightsError(f"{src}: no such file")
  weights = load_any(src, preprocessing)
  save_weights(weights, dst)
  return weights


# ----------------------------------------------------------------------------
# Download (torchvision's official file).

TORCHVISION_URL = "https://download.pytorch.org/models/vgg19-dcbb9e9d.pth"


def _default_fetch(url: str, out: BinaryIO, progress: bool) -> None:
  """Streams ``url`` into ``out`` with a tqdm progress bar on stderr."""
  from tqdm import tqdm
  with urllib.request.urlopen(url, timeout=60) as response:
    total = response.headers.get("Content-Length")
    with tqdm(total=int(total) if total else None, unit="B", unit_scale=True, unit_divisor=1024,
              desc=os.path.basename(url), disable=not progress, file=sys.stderr) as bar:
      while chunk := response.read(1 << 20):
        out.write(chunk)
        bar.update(len(chunk))


def download(url: str = TORCHVISION_URL, dest: str | None = None, *,
             fetch: Callable[[str, BinaryIO, bool], None] | None = None,
             progress: bool = True, force: bool = False) -> str:
  """Downloads torchvision VGG-19 weights, verifies, converts and caches them.

  The file name carries the first hex digits of the file's SHA-256
  (torchvision's convention, e.g. ``vgg19-dcbb9e9d.pth``); a mismatch is an
  error and nothing is written. The ``.pth`` is parsed without executing
  pickled code and only the converted ``.npz`` is kept.

  Args:
    url: where to fetch the ``.pth`` (``file://`` URLs work).
    dest: output ``.npz``; default ``~/.cache/jaxstyle/vgg19.npz``.
    fetch: ``fetch(url, fileobj, progress)`` writes the bytes (for tests).
    progress: show a progress bar.
    force: overwrite an existing ``dest``.

  Returns:
    The path of the cached ``.npz``.
  """
  dest = os.path.expanduser(dest or os.path.join(CACHE_DIR, CACHE_FILE))
  if os.path.exists(dest) and not force:
    return dest
  name = os.path.basename(urllib.request.urlparse(url).path)
  m = re.search(r"-([0-9a-f]{8,64})\.", name)
  if not m:
    raise WeightsError(f"{url}: the file name carries no SHA-256 prefix (like vgg19-dcbb9e9d.pth); "
                       "refusing to use an unverifiable download")
  expected = m.group(1)
  directory = os.path.dirname(os.path.abspath(dest))
  os.makedirs(directory, exist_ok=True)
  fd, tmp = tempfile.mkstemp(prefix=".download-", suffix=".pth", dir=directory)
  try:
    with os.fdopen(fd, "wb") as out:
      try:
        (fetch or _default_fetch)(url, out, progress)
      except OSError as e:
        raise WeightsError(f"{url}: download failed ({e}); check the connection, or fetch the file "
                           "yourself and run `python -m jaxstyle.vgg convert FILE.pth DEST.npz`") from None
    digest = rundir.file_sha256(tmp)
    if not digest.startswith(expected):
      raise WeightsError(f"{url}: checksum mismatch (sha256 {digest[:len(expected)]}…, "
                         f"expected {expected}…); the download is corrupt or not the official file")
    weights = load_pth(tmp, preprocessing="torch")
    weights = dataclasses.replace(weights, source=url)
    save_weights(weights, dest)
  finally:
    if os.path.exists(tmp):
      os.remove(tmp)
  return dest


# ----------------------------------------------------------------------------
# Command line.


def describe(weights: VGGWeights) -> str:
  """Human-readable summary: convention, layers and shapes, deepest tap."""
  lines = [f"source: {weights.source}",
           f"preprocessing: {weights.preprocessing}",
           f"layers: {len(weights.layers)} of {len(CONV_LAYERS)} conv layers "
           f"({weights.layers[0]}..{weights.layers[-1]}); deepest tap: {weights.deepest_layer}"]
  total = 0
  for name in weights.layers:
    k, b = weights.params[name]["kernel"], weights.params[name]["bias"]
    total += np.size(k) + np.size(b)
    lines.append(f"  {name}: kernel {tuple(np.shape(k))} HWIO, bias {tuple(np.shape(b))}")
  lines.append(f"parameters: {total:,}")
  return "\n".join(lines)


class _Parser(argparse.ArgumentParser):

  def error(self, message):
    sys.stderr.write(f"error: {message} (see `python -m jaxstyle.vgg --help`)\n")
    sys.exit(2)


def _parser() -> argparse.ArgumentParser:
  p = _Parser(prog="python -m jaxstyle.vgg",
              description="Convert, inspect and download VGG-19 weights for jaxstyle.")
  sub = p.add_subparsers(dest="command", required=True, parser_class=_Parser)
  c = sub.add_parser("convert", help="convert a .pth / .h5 / .npz to the jaxstyle .npz format")
  c.add_argument("src", help="torchvision state dict (.pth), Keras weights (.h5) or jaxstyle .npz")
  c.add_argument("dst", help="output .npz (written atomically)")
  c.add_argument("--preprocessing", choices=sorted(PREPROCESSING), default=None,
                 help="input convention of the weights; default: torch for .pth, caffe for .h5, "
                 "the stored one for .npz")
  i = sub.add_parser("info", help="print the layers and preprocessing of a weight file")
  i.add_argument("file", help=".npz, .pth or .h5")
  d = sub.add_parser("download", help="fetch torchvision's VGG-19, verify its SHA-256 prefix, "
                     "convert and cache it")
  d.add_argument("--url", default=TORCHVISION_URL, help="source URL (default: %(default)s)")
  d.add_argument("--dest", default=os.path.join(CACHE_DIR, CACHE_FILE),
                 help="output .npz (default: %(default)s)")
  d.add_argument("--force", action="store_true", help="overwrite an existing output")
  d.add_argument("--no_progress", action="store_true", help="no progress bar")
  return p


def main(argv: Sequence[str] | None = None) -> int:
  """``python -m jaxstyle.vgg``; user errors print one line and return 2."""
  args = _parser().parse_args(argv)
  try:
    if args.command == "convert":
      if not args.dst.endswith(".npz"):
        raise WeightsError(f"{args.dst}: the output must be a .npz file")
      weights = convert(args.src, args.dst, args.preprocessing)
      print(f"wrote {args.dst}: {len(weights.layers)} conv layers "
            f"({weights.layers[0]}..{weights.layers[-1]}), preprocessing {weights.preprocessing}")
    elif args.command == "info":
      if not os.path.isfile(args.file):
        raise WeightsError(f"{args.file}: no such file")
      print(describe(load_any(args.file)))
    else:
      path = os.path.expanduser(args.dest)
      if os.path.exists(path) and not args.force:
        print(f"{path} exists (use --force to download again)")
      else:
        print(f"wrote {download(args.url, path, progress=not args.no_progress, force=args.force)}")
  except JaxstyleError as e:
    sys.stderr.write("error: " + " ".join(str(e).split()) + "\n")
    return 2
  return 0


if __name__ == "__main__":
  sys.exit(main())
