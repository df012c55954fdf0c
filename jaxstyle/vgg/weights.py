"""VGG-19 weights: the ``VGGWeights`` pytree and its canonical ``.npz`` format.

* ``VGGWeights.params``: ``{"conv1_1": {"kernel": [3, 3, 3, 64] HWIO, "bias":
  [64]}, ...}`` (float32) for a prefix of ``CONV_LAYERS`` (possibly all 16);
  ``preprocessing`` is a key of ``PREPROCESSING``; ``source`` names the file.
  It is a pytree (params are the leaves, the rest is static), so it can be
  passed into ``jax.jit``.
* Canonical file: one ``.npz`` (read with ``allow_pickle=False``) holding
  ``conv{b}_{c}/kernel`` (HWIO, float32), ``conv{b}_{c}/bias`` and
  ``preprocessing`` (one string; a file without it is read as ``caffe``).
  Partial files (e.g. conv1_1…conv3_4) are legal; deeper layers then raise
  ``WeightsError`` naming the deepest available layer. Written atomically.
* ``load_weights`` also reads a torchvision state dict (``.pth``,
  ``features.{i}.weight`` OIHW; never executing pickled code, with or without
  PyTorch) or Keras weights (``.h5``, ``block{b}_conv{c}`` HWIO; needs h5py),
  detected by content; ``convert`` writes any of them as the canonical
  ``.npz``.
* Path resolution (``resolve_weights_path``): the explicit path (the
  ``--vgg_weights`` flag), else ``$JAXSTYLE_VGG19``, else
  ``~/.cache/jaxstyle/vgg19.npz``; a missing file raises ``WeightsError``
  naming all three and how to get weights.
"""

from __future__ import annotations

import dataclasses
import os
import re
from typing import Any, Iterable, Mapping

import jax
import jax.numpy as jnp
import numpy as np

from jaxstyle import fileio
from jaxstyle.vgg import keras, torch_pickle
from jaxstyle.errors import WeightsError
from jaxstyle.vgg.formats import HDF5, TORCH_LEGACY, TORCH_ZIP, sniff_format
from jaxstyle.vgg.model import CHANNELS, CONV_LAYERS, deepest_conv
from jaxstyle.vgg.preprocessing import PREPROCESSING

ENV_VAR = "JAXSTYLE_VGG19"
CACHE_DIR = os.path.join("~", ".cache", "jaxstyle")
CACHE_FILE = "vgg19.npz"


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
# weights can be passed *into* jit instead of being closed over (closed-over
# weights become compile-time constants; see BUILD_NOTES.md).
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
  fmt = sniff_format(path)
  if fmt in (TORCH_ZIP, TORCH_LEGACY):
    return load_pth(path, preprocessing or "torch")
  if fmt == HDF5:
    return load_h5(path, preprocessing or "caffe")
  try:
    with np.load(path, allow_pickle=False) as data:
      arrays = {k: data[k] for k in data.files}
  except Exception as e:  # zipfile / ValueError / OSError all mean "not our format"
    raise WeightsError(f"{path}: not a readable jaxstyle VGG .npz ({type(e).__name__}: {e}); "
                       "convert other formats with `python -m jaxstyle.vgg convert`") from e
  for key, value in arrays.items():
    if not isinstance(value, np.ndarray):  # np.load hands back a non-.npy member as raw bytes
      raise WeightsError(f"{path}: member {key!r} is not a .npy array; not a jaxstyle VGG .npz "
                         "(re-convert it with `python -m jaxstyle.vgg convert`)")
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
  with fileio.atomic_open(path) as f:
    np.savez(f, **arrays)


def random_weights(key: jax.Array, upto: str = "conv5_4",
                   preprocessing: str = "caffe") -> VGGWeights:
  """He-initialised weights for layers conv1_1…``upto`` (tests, baselines).

  Deterministic in ``key`` (typed or raw): drawn with NumPy seeded from the
  key's bits (not with ``jax.random``, which is slow eagerly on a CPU).
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


# Index of each conv in torchvision's ``vgg19().features`` (ReLU after each,
# MaxPool at 4, 9, 18, 27, 36).
TORCHVISION_INDICES: dict[str, int] = dict(zip(
    CONV_LAYERS, (0, 2, 5, 7, 10, 12, 14, 16, 19, 21, 23, 25, 28, 30, 32, 34)))
_TORCH_INDEX_TO_CONV = {i: name for name, i in TORCHVISION_INDICES.items()}


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
  state = torch_pickle.read_torch_state_dict(path, use_torch=use_torch)
  return make_weights(params_from_state_dict(state, path), preprocessing, source=path)


def load_h5(path: str, preprocessing: str = "caffe") -> VGGWeights:
  """Converts Keras VGG19 weights (``.h5``, groups ``block{b}_conv{c}``) to ``VGGWeights``.

  Reads Keras 2 weight files (``block1_conv1/block1_conv1/kernel:0`` or
  ``..._W_1:0``), full-model files (``model_weights/...``) and Keras 3
  ``.weights.h5`` (``layers/block1_conv1/vars/{0,1}``): in each layer group
  the 4-D dataset is the HWIO kernel and the 1-D one the bias. Needs h5py.
  """
  return make_weights(keras.read_h5_params(path), preprocessing, source=path)


def convert(src: str, dst: str, preprocessing: str | None = None) -> VGGWeights:
  """Converts ``src`` (npz/pth/h5) to the canonical ``.npz`` at ``dst`` (atomic)."""
  if not os.path.isfile(src):
    raise WeightsError(f"{src}: no such file")
  weights = load_weights(src, preprocessing)
  save_weights(weights, dst)
  return weights


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
