"""The feed-forward stylization generator: every normalisation is instance norm + StyleMod.

Contract of ``Stylizer`` / ``apply_stylizer`` / ``stylizer_fn``:

* ``(params, images, latent) -> stylized``. ``images``: float32 RGB in [0, 1],
  NHWC ``[B, H, W, 3]``, any ``H, W >= min_image_size(config)`` (odd sizes
  included); ``latent``: ``[B, latent_dim]``, ``[1, latent_dim]`` or
  ``[latent_dim]`` (broadcast over the batch). The output is float32
  ``[B, H, W, 3]`` in [0, 1], exactly the input size.
* Architecture (Johnson et al. 2016 with conditional instance norm): a
  ``stem_kernel`` stride-1 conv to ``widths[0]`` channels, one 3x3 stride-2
  conv per further entry of ``widths``, ``residual_blocks`` residual blocks at
  ``widths[-1]`` channels, then per stride-2 conv one 2x upsample
  (``upsample``: nearest or bilinear, never a transposed conv) + 3x3 conv back
  down the widths, and a ``stem_kernel`` conv to RGB with the ``output``
  activation (``sigmoid``, or ``tanh`` rescaled to [0, 1]).
* Every conv reflection-pads its input (``reflect_pad``); convs followed by a
  normalisation have no bias (instance norm removes it). The input is
  reflection-padded at the bottom/right to a multiple of ``2**(len(widths)-1)``
  (``pad_to_multiple``) and the output cropped back, so any size works.
* Every normalisation is ``StyleInstanceNorm``: parameter-free instance norm
  (per example and channel over H, W, in float32) followed by
  ``jaxstyle.nets.stylemod.StyleMod`` of the latent, ``x·(1+s)+b``. StyleMod's
  dense map is zero-initialised, so a fresh generator computes the same
  function for every latent. The dense map's bias is the unconditional affine
  of the norm layer: at the zero latent each layer applies only that bias.
* Flat maps: upsample + conv maps a constant to a constant (no checkerboard),
  and in exact arithmetic a flat input gives a flat output. Instance norm,
  however, rescales any variation of a near-flat map to unit variance (gain up
  to ``1/sqrt(norm_eps)`` per norm), so ulp-level differences between
  positions in a conv's floating-point sums can grow into low-frequency
  variation of a wholly flat image (or tile) once the StyleMods are trained.
* Image-wide statistics (for tiled inference, ``jaxstyle.inference.tiling``):
  ``apply(..., mutable=[NORM_STATS])`` also returns every norm layer's
  statistics (``{"norm_stats": {layer: {"mean", "var"}}}``, float32
  ``[B, 1, 1, C]``, computed over the whole padded map); passing such a
  collection in the variables makes every norm use it instead of the map's
  own. With imposed statistics the generator is a purely local function:
  an output pixel depends only on inputs within ``receptive_radius(config)``
  pixels, so tiles cut at multiples of ``config.multiple`` with that much
  context reproduce the whole-image output.
* Identity: the zero latent is the identity style (see
  ``jaxstyle.nets.style_encoder``); that it reproduces the content is a
  property the training must give it, not one of the architecture.
* ``dtype``: the compute dtype of convs and activations (``bfloat16`` or
  ``float32``); parameters are always float32, norms and the output activation
  are computed in float32, and the output is float32.
* Too small images or a latent of the wrong size raise ``StylizerInputError``
  (a ``JaxstyleError`` and ``ValueError``).
* Shapes are checked in Python, so everything is jit-able; the padding uses
  only fixed pad widths and slices, so ``jax.export`` with symbolic H, W works
  when the symbolic shape states ``H, W >= min_image_size(config)`` as
  constraints.
"""

from __future__ import annotations

import dataclasses
from typing import Callable

import flax.linen as nn
import jax
import jax.numpy as jnp

from jaxstyle import config as cfglib
from jaxstyle.errors import StylizerInputError  # noqa: F401  (re-exported)
from jaxstyle.nets.layers import (DTYPES, UPSAMPLES, check_images_and_latent, jitted_init, moments,
                                  normalize, pad_to_multiple, reflect_pad, upsample_2x)
from jaxstyle.nets.stylemod import StyleMod

OUTPUTS = ("sigmoid", "tanh")
NORM_STATS = "norm_stats"  # the variable collection of recorded / imposed instance-norm statistics


def _check_widths(widths: tuple[int, ...]) -> str | None:
  return None if len(widths) >= 1 else "needs at least one width"


def _check_odd(k: int) -> str | None:
  return None if k % 2 == 1 else "must be odd (the conv keeps the size with symmetric padding)"


@dataclasses.dataclass(frozen=True)
class StylizerConfig:
  """Architecture of the stylization generator (see the module docstring)."""
  latent_dim: int = cfglib.setting(64, "Size of the style latent that drives every StyleMod.",
                                   gt=0, resume=True)
  widths: tuple[int, ...] = cfglib.setting(
      (32, 64, 128), "Encoder channels: a stem conv to the first width, then one 3x3 stride-2 conv "
      "per further width; the decoder mirrors them.", gt=0, check=_check_widths, resume=True)
  stem_kernel: int = cfglib.setting(9, "Kernel size of the first and the last conv.", gt=0,
                                    check=_check_odd, resume=True)
  residual_blocks: int = cfglib.setting(5, "Residual blocks at the lowest resolution.", ge=0,
                                        resume=True)
  upsample: str = cfglib.setting("nearest", "Decoder 2x upsampling before each conv.",
                                 choices=UPSAMPLES, resume=True)
  output: str = cfglib.setting("sigmoid", "Output activation to [0, 1]: sigmoid or (tanh+1)/2.",
                               choices=OUTPUTS, resume=True)
  norm_eps: float = cfglib.setting(1e-5, "Epsilon of the instance norms.", gt=0, resume=True)
  dtype: str = cfglib.setting("float32", "Compute dtype (parameters stay float32).",
                              choices=tuple(DTYPES), resume=True)

  @property
  def multiple(self) -> int:
    """Internal size multiple: ``2 ** (number of stride-2 convs)``."""
    return 2 ** (len(self.widths) - 1)


def min_image_size(config: StylizerConfig) -> int:
  """Smallest H and W the generator takes (every reflection pad must be narrower than its map)."""
  return max(2 * config.multiple, config.stem_kernel // 2 + 1)


class StyleInstanceNorm(nn.Module):
  """Instance norm, then ``StyleMod`` of the latent: ``IN(x)·(1+s(w))+b(w)``.

  The statistics are ``x``'s own unless the variables hold a ``NORM_STATS``
  collection (``mean``/``var`` [B or 1, 1, 1, C]); when that collection is
  mutable and empty, the layer records its statistics there (see the module
  docstring, "Image-wide statistics").
  """
  eps: float = 1e-5

  @nn.compact
  def __call__(self, x: jax.Array, w: jax.Array) -> jax.Array:
    """Args: ``x`` [B, H, W, C]; ``w`` [B, D]. Returns [B, H, W, C] in ``x``'s dtype."""
    if self.has_variable(NORM_STATS, "mean"):
      mean, var = self.get_variable(NORM_STATS, "mean"), self.get_variable(NORM_STATS, "var")
    else:
      mean, var = moments(x)
      if self.is_mutable_collection(NORM_STATS):
        self.put_variable(NORM_STATS, "mean", mean)
        self.put_variable(NORM_STATS, "var", var)
    return StyleMod(name="mod")(normalize(x, mean, var, self.eps), w)


class ReflectConv(nn.Module):
  """Square conv with reflection padding ``kernel // 2``: stride 1 keeps the size, stride 2 halves even sizes."""
  features: int
  kernel: int
  stride: int = 1
  use_bias: bool = False
  dtype: str = "float32"

  @nn.compact
  def __call__(self, x: jax.Array) -> jax.Array:
    x = reflect_pad(x, self.kernel // 2)
    return nn.Conv(self.features, (self.kernel, self.kernel), (self.stride, self.stride),
                   padding="VALID", use_bias=self.use_bias, dtype=DTYPES[self.dtype],
                   param_dtype=jnp.float32, name="conv")(x)


class ResidualBlock(nn.Module):
  """``x + norm2(conv2(relu(norm1(conv1(x)))))`` with 3x3 reflection-padded convs."""
  eps: float = 1e-5
  dtype: str = "float32"

  @nn.compact
  def __call__(self, x: jax.Array, w: jax.Array) -> jax.Array:
    c = x.shape[-1]
    h = ReflectConv(c, 3, dtype=self.dtype, name="conv1")(x)
    h = nn.relu(StyleInstanceNorm(self.eps, name="norm1")(h, w))
    h = ReflectConv(c, 3, dtype=self.dtype, name="conv2")(h)
    return x + StyleInstanceNorm(self.eps, name="norm2")(h, w)


class Stylizer(nn.Module):
  """The generator; ``__call__(images, latent)`` follows the module contract."""
  config: StylizerConfig

  @nn.compact
  def __call__(self, images: jax.Array, latent: jax.Array) -> jax.Array:
    cfg = self.config
    w = check_images_and_latent(images, latent, latent_dim=cfg.latent_dim,
                                min_size=min_image_size(cfg))
    h_in, w_in = images.shape[1], images.shape[2]
    dt, eps = cfg.dtype, cfg.norm_eps
    x = pad_to_multiple(images.astype(jnp.float32) * 2.0 - 1.0, cfg.multiple).astype(DTYPES[dt])
    x = ReflectConv(cfg.widths[0], cfg.stem_kernel, dtype=dt, name="stem")(x)
    x = nn.relu(StyleInstanceNorm(eps, name="stem_norm")(x, w))
    for i, width in enumerate(cfg.widths[1:], start=1):
      x = ReflectConv(width, 3, stride=2, dtype=dt, name=f"down{i}")(x)
      x = nn.relu(StyleInstanceNorm(eps, name=f"down{i}_norm")(x, w))
    for i in range(cfg.residual_blocks):
      x = ResidualBlock(eps, dt, name=f"res{i}")(x, w)
    for i, width in enumerate(reversed(cfg.widths[:-1]), start=1):
      x = ReflectConv(width, 3, dtype=dt, name=f"up{i}")(upsample_2x(x, cfg.upsample))
      x = nn.relu(StyleInstanceNorm(eps, name=f"up{i}_norm")(x, w))
    x = ReflectConv(3, cfg.stem_kernel, use_bias=True, dtype=dt, name="head")(x)
    x = x[:, :h_in, :w_in].astype(jnp.float32)
    if cfg.output == "tanh":
      return (jnp.tanh(x) + 1.0) * 0.5
    return nn.sigmoid(x)


def receptive_radius(config: StylizerConfig) -> int:
  """Pixels of context on each side that determine one output pixel under imposed statistics.

  An upper bound: every 3x3 conv at scale ``2**k`` adds ``2**k`` pixels, each
  stride-2 conv and each nearest/bilinear upsample at most ``2**k`` more, the
  two stem convs ``stem_kernel // 2`` each.
  """
  n_down = len(config.widths) - 1
  lowest = 2 ** n_down
  r = 2 * (config.stem_kernel // 2)
  r += sum(2 * 2 ** k for k in range(n_down))            # the stride-2 convs (3x3, plus the stride)
  r += 2 * config.residual_blocks * lowest               # two 3x3 convs per block at the lowest scale
  r += sum(2 * 2 ** k for k in range(n_down))            # the decoder's upsample + 3x3 conv per scale
  return r


def init_stylizer(config: StylizerConfig, key: jax.Array,
                  image_shape: tuple[int, int, int, int] = (1, 64, 64, 3)) -> dict:
  """Initial generator parameters (float32 pytree) from ``key`` (one jitted init).

  ``image_shape`` ([B, H, W, 3]) is only the tracing shape: the parameters do
  not depend on it. Same key → bit-identical parameters.
  """
  cfglib.validate(config)
  images = jnp.zeros(image_shape, jnp.float32)
  latent = jnp.zeros((config.latent_dim,), jnp.float32)
  return jitted_init(Stylizer(config))(key, images, latent)["params"]


def apply_stylizer(config: StylizerConfig, params: dict, images: jax.Array,
                   latent: jax.Array) -> jax.Array:
  """Stylizes ``images`` with ``latent`` (see the module contract)."""
  return Stylizer(config).apply({"params": params}, images, latent)


def stylizer_fn(config: StylizerConfig) -> Callable[[dict, jax.Array, jax.Array], jax.Array]:
  """The pure ``(params, images, latent) -> images`` for ``config``, ready for ``jax.jit``."""
  module = Stylizer(config)

  def fn(params: dict, images: jax.Array, latent: jax.Array) -> jax.Array:
    return module.apply({"params": params}, images, latent)

  return fn
