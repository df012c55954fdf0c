"""VGG-19 convolutional trunk (Flax linen) with named taps.

* Taps, in network order (``TAPS``): ``conv{b}_{c}``, ``relu{b}_{c}`` for each
  conv of ``BLOCKS`` and ``pool{b}`` after each block (``conv1_1`` …
  ``relu5_4``, ``pool5``). ``CONV_LAYERS`` lists the 16 convs, ``CHANNELS``
  their output channels.
* ``VGG19`` (and ``extract`` / ``feature_fn``, which bind ``VGGWeights``)
  return ``{tap: [B, h, w, C]}`` for the requested taps only, and compute only
  up to the deepest one. Input: float32 RGB in [0, 1], NHWC, any H×W with at
  least 2×2 pixels before every pool computed; preprocessing happens inside
  from the weights' convention.
* Pooling (``POOLING``): ``"max"`` (default) or ``"avg"``, 2×2 stride 2 from
  ``jaxstyle.nets.layers`` (reshape + max: deterministic gradient; floor for
  odd sizes, like Keras "valid" and torchvision ``ceil_mode=False``).
* Errors: an unknown tap or a tap deeper than the weights reach raises
  ``WeightsError``; a bad image shape, pooling name or too small image raises
  ``ValueError``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Callable, Iterable, Sequence

import flax.linen as nn
import jax
import jax.numpy as jnp

from jaxstyle.nets.layers import avg_pool_2x2, max_pool_2x2
from jaxstyle.errors import WeightsError
from jaxstyle.vgg.preprocessing import preprocess

if TYPE_CHECKING:
  from jaxstyle.vgg.weights import VGGWeights

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


POOLING = {"max": max_pool_2x2, "avg": avg_pool_2x2}


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


def tap_channels(tap: str) -> int:
  """Channels of VGG-19 tap ``tap`` (e.g. 64 for relu1_1 and pool1, 512 for relu5_1)."""
  return CHANNELS[deepest_conv([tap])]


def check_taps(taps: Sequence[str]) -> str | None:
  """Problem text for a list of tap names (empty, unknown or repeated names), else None.

  Usable as a ``jaxstyle.config.setting(check=...)``.
  """
  if not taps:
    return "needs at least one VGG layer, e.g. relu1_1,relu2_1,relu3_1"
  unknown = [t for t in taps if t not in _TAP_INDEX]
  if unknown:
    return (f"unknown VGG-19 layer(s) {', '.join(map(repr, unknown))}; valid names are "
            "conv/relu{b}_{c} and pool{b}, e.g. relu1_1, relu3_2, pool2")
  if len(set(taps)) != len(taps):
    return "lists a layer twice"
  return None


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
