"""VGG-19 feature extractor (Flax linen), its preprocessing and its weights.

* ``VGG19`` returns a dict of named activations (``conv1_1``, ``relu1_1``, …,
  ``pool1``, …, ``relu5_4``, ``pool5``) and computes only up to the deepest
  requested layer. Input: float32 RGB in [0, 1], NHWC, any H×W.
* Preprocessing is a property of the weights (``PREPROCESSING``): ``caffe``
  (BGR, 0–255, ImageNet mean subtracted; Keras/Caffe weights) or ``torch``
  (RGB, ImageNet mean/std; torchvision weights). ``VGGWeights`` carries its
  convention, so callers never choose it.
* 2×2/2 max-pooling is implemented as reshape + max: its gradient is
  deterministic on every backend (XLA's select-and-scatter is not, on GPU)
  and it equals ``flax.linen.max_pool`` in the forward pass. Odd sizes follow
  the floor convention of Caffe, Keras ("valid") and torchvision
  (``ceil_mode=False``): the last row/column of an odd-sized map is dropped.
* Weights live in one canonical ``.npz``: ``conv{b}_{c}/kernel`` (HWIO,
  float32), ``conv{b}_{c}/bias`` and ``preprocessing`` (a string). Partial
  files (e.g. conv1_1…conv3_4) are legal; deeper layers then raise
  ``WeightsError`` naming the deepest available layer.
* Weight path resolution: explicit argument, else ``$JAXSTYLE_VGG19``, else
  ``~/.cache/jaxstyle/vgg19.npz``.
"""

from __future__ import annotations

import dataclasses
import os
from typing import Any, Callable, Iterable, Mapping, Sequence

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np

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
  layers = list(layers)
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
    wanted = set(layers)
    stop = _TAP_INDEX[deepest_conv(layers)]
    stop = max(stop, max(_TAP_INDEX[name] for name in wanted))
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
    need = deepest_conv(layers)
    if need not in self.params:
      too_deep = [t for t in layers if _TAP_INDEX[t] > _TAP_INDEX[self.deepest_layer]]
      raise WeightsError(
          f"VGG layer(s) {', '.join(too_deep)} need {need}, but the weights from {self.source} "
          f"stop at {self.layers[-1]} (deepest available layer: {self.deepest_layer}); "
          f"choose layers up to {self.deepest_layer} or use full VGG-19 weights "
          f"(`python -m jaxstyle.vgg download`)")

  def variables(self) -> dict:
    """The Flax variables dict for ``VGG19.apply``."""
    return {"params": jax.tree.map(jnp.asarray, {k: dict(v) for k, v in self.params.items()})}


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
  params = {k: {"kernel": np.asarray(v["kernel"], np.float32), "bias": np.asarray(v["bias"], np.float32)}
            for k, v in params.items() if k in CHANNELS}
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
  """Loads canonical ``.npz`` weights (no pickles).

  Args:
    path: file; ``None`` resolves via ``resolve_weights_path``.
    preprocessing: overrides the stored convention. Files without a stored
      ``preprocessing`` entry are taken to be Keras/Caffe (``"caffe"``), the
      family whose ``conv{b}_{c}/kernel`` HWIO key layout this format follows.
  """
  path = resolve_weights_path(path)
  try:
    with np.load(path, allow_pickle=False) as data:
      arrays = {k: data[k] for k in data.files}
  except Exception as e:  # zipfile / ValueError / OSError all mean "not our format"
    raise WeightsError(f"{path}: not a readable jaxstyle VGG .npz ({type(e).__name__}: {e}); "
                       "convert other formats with `python -m jaxstyle.vgg convert`") from e
  stored = str(arrays.pop("preprocessing")) if "preprocessing" in arrays else None
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
  directory = os.path.dirname(os.path.abspath(path))
  os.makedirs(directory, exist_ok=True)
  tmp = os.path.join(directory, f".tmp-{os.getpid()}-{os.path.basename(path)}")
  with open(tmp, "wb") as f:
    np.savez(f, **arrays)
  os.replace(tmp, path)


def random_weights(key: jax.Array, upto: str = "conv5_4",
                   preprocessing: str = "caffe") -> VGGWeights:
  """He-initialised weights for layers conv1_1…``upto`` (tests, baselines)."""
  layers = CONV_LAYERS[:CONV_LAYERS.index(upto) + 1]
  params, cin = {}, 3
  for name, k in zip(layers, jax.random.split(key, len(layers))):
    cout = CHANNELS[name]
    std = np.sqrt(2.0 / (9 * cin))
    params[name] = {"kernel": np.asarray(jax.random.normal(k, (3, 3, cin, cout)) * std, np.float32),
                    "bias": np.zeros((cout,), np.float32)}
    cin = cout
  return make_weights(params, preprocessing, source=f"random({upto})")


# ----------------------------------------------------------------------------
# Pure-function entry points.


def extract(weights: VGGWeights, images: jax.Array, layers: Sequence[str], *,
            pooling: str = "max", dtype: Any = jnp.float32) -> dict[str, jax.Array]:
  """Features of ``images`` ([B, H, W, 3] RGB [0, 1]) at ``layers``.

  Jit-compatible (``weights`` is closed over as constants unless you pass
  ``weights.variables()`` through ``apply`` yourself). Raises
  ``WeightsError`` if a layer is deeper than the weights reach.
  """
  weights.check_layers(layers)
  model = VGG19(preprocessing=weights.preprocessing, pooling=pooling, dtype=dtype)
  return model.apply(weights.variables(), images, tuple(layers))


def feature_fn(weights: VGGWeights, layers: Sequence[str], *, pooling: str = "max",
               dtype: Any = jnp.float32) -> Callable[[jax.Array], dict[str, jax.Array]]:
  """Returns ``f(images) -> {layer: features}`` with weights bound (jit-friendly)."""
  weights.check_layers(layers)
  model = VGG19(preprocessing=weights.preprocessing, pooling=pooling, dtype=dtype)
  variables = weights.variables()
  layers = tuple(layers)

  def f(images: jax.Array) -> dict[str, jax.Array]:
    return model.apply(variables, images, layers)

  return f
