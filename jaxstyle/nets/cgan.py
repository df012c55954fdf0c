"""Label-conditioned DCGAN-style generator and projection discriminator (Flax linen).

The generator upsamples by sub-pixel convolution (3x3 conv to 4x the
channels, then a 2x pixel shuffle) rather than transposed convolution: on
XLA:CPU a stride-2 ConvTranspose (lowered to an input-dilated convolution)
measured ~13x slower forward+backward for the same shapes (see BUILD_NOTES.md).

Images are float32 NHWC in [0, 1] at both boundaries (the generator ends in a
sigmoid; the discriminator maps its input to [-1, 1] itself). Labels are int32
class indices in ``0..num_classes-1``.

Convolutions can be lowered two ways with the same parameters (``conv_lowering``):
XLA's convolution, or explicit patches (strided slices concatenated along
channels) times a matrix. "auto" (the default) uses the second only for the
discriminator's input conv (1 -> d_width channels), where it measured faster
on XLA:CPU in the whole train step (BUILD_NOTES.md).

Normalisation is per example (GroupNorm with one group = layer norm over
H, W, C with per-channel affine parameters) rather than BatchNorm, so a train
step has no cross-example state and gives the same numbers whatever the
number of devices the batch is split over.
"""

from __future__ import annotations

import dataclasses
from typing import Sequence

import flax.linen as nn
import jax
import jax.numpy as jnp
from jax import lax

CONV_LOWERINGS = ("auto", "xla", "matmul")
G_NORMS = ("layer", "none")


@dataclasses.dataclass(frozen=True)
class CGANConfig:
  """Architecture of the MNIST-sized conditional GAN.

  Attributes:
    z_dim: noise dimension.
    num_classes: number of labels.
    g_width: generator channels at 14x14 (2 * g_width at 7x7).
    g_head_width: 0: the last sub-pixel conv makes the image directly (each
      2x2 output block from one 14x14 position); > 0: it makes this many
      channels at full resolution, then GroupNorm-ReLU and a 3x3 conv make the
      image (smoother strokes, more compute).
    g_norm: the generator's normalisation after each hidden layer, "layer"
      (GroupNorm with one group: per example over H, W, C) or "none".
    d_width: discriminator channels at 14x14 (2 * d_width at 7x7).
    embed_dim: size of the generator's label embedding.
    d_feature_dim: size of the discriminator's feature vector phi(x), which the
      projection term <embed(y), phi(x)> uses.
    image_size: output height and width (a multiple of 4).
    channels: output channels (1 for MNIST).
    dtype: parameter and computation dtype, "float32" (default) or "float64"
      (needs ``jax.enable_x64``; used by the exactness tests of parallel runs).
  """
  z_dim: int = 64
  num_classes: int = 10
  g_width: int = 64
  g_head_width: int = 0
  g_norm: str = "layer"
  d_width: int = 64
  embed_dim: int = 32
  d_feature_dim: int = 256
  image_size: int = 28
  channels: int = 1
  dtype: str = "float32"
  conv_lowering: str = "auto"

  def __post_init__(self):
    if self.g_norm not in G_NORMS:
      raise ValueError(f"g_norm={self.g_norm!r}: choose one of {G_NORMS}")
    if self.conv_lowering not in CONV_LOWERINGS:
      raise ValueError(f"conv_lowering={self.conv_lowering!r}: choose one of {CONV_LOWERINGS}")


def conv_as_matmul(x: jax.Array, kernel: jax.Array, strides: Sequence[int],
                   padding: Sequence[tuple[int, int]]) -> jax.Array:
  """2-D convolution (NHWC input, HWIO kernel, explicit padding) as patches @ kernel.

  Equals ``lax.conv_general_dilated(x, kernel, strides, padding, ("NHWC", "HWIO", "NHWC"))``
  up to float summation order. The patches [B, OH, OW, KH*KW*C] are the
  kernel's KH*KW strided views of the padded input, concatenated along
  channels in (row, column) order, which is the kernel's own HWIO order.
  """
  kh, kw, ci, co = kernel.shape
  sh, sw = strides
  x = jnp.pad(x, ((0, 0), tuple(padding[0]), tuple(padding[1]), (0, 0)))
  b, h, w, c = x.shape
  if c != ci:
    raise ValueError(f"input has {c} channels, kernel expects {ci}")
  oh, ow = (h - kh) // sh + 1, (w - kw) // sw + 1
  views = [lax.slice(x, (0, i, j, 0), (b, i + (oh - 1) * sh + 1, j + (ow - 1) * sw + 1, c), (1, sh, sw, 1))
           for i in range(kh) for j in range(kw)]
  patches = jnp.concatenate(views, axis=-1).reshape(b * oh * ow, kh * kw * ci)
  return jnp.dot(patches, kernel.reshape(kh * kw * ci, co)).reshape(b, oh, ow, co)


def _auto_matmul(in_features: int, features: int) -> bool:
  """The "auto" rule: patches @ kernel for convs from few channels (an image) to many.

  Measured on XLA:CPU in the whole cGAN train step (BUILD_NOTES.md): the
  discriminator's 1->32 stride-2 input conv is faster as a matmul (XLA's
  kernel gradient of a 1-channel conv is slow); for the wider layers the
  gain seen in isolation did not survive in the full step, or reversed.
  """
  return in_features < 8 and features >= 16


class Conv(nn.Module):
  """``nn.Conv`` with "SAME" padding (same parameter names, shapes and initialisers), lowered by choice.

  ``lowering``: "xla" (``lax.conv_general_dilated``), "matmul" (``conv_as_matmul``)
  or "auto" (``_auto_matmul``: whichever measured faster for the layer's shape on XLA:CPU).
  """
  features: int
  kernel_size: tuple[int, int]
  strides: tuple[int, int] = (1, 1)
  lowering: str = "auto"
  dtype: str = "float32"
  param_dtype: str = "float32"

  @nn.compact
  def __call__(self, x: jax.Array) -> jax.Array:
    kh, kw = self.kernel_size
    kernel = self.param("kernel", nn.initializers.lecun_normal(),
                        (kh, kw, x.shape[-1], self.features), self.param_dtype)
    bias = self.param("bias", nn.initializers.zeros_init(), (self.features,), self.param_dtype)
    x = x.astype(self.dtype)
    padding = lax.padtype_to_pads(x.shape[1:3], (kh, kw), self.strides, "SAME")
    auto = self.lowering == "auto" and _auto_matmul(x.shape[-1], self.features)
    if self.lowering == "matmul" or auto:
      y = conv_as_matmul(x, kernel, self.strides, padding)
    else:
      y = lax.conv_general_dilated(x, kernel, self.strides, padding,
                                   dimension_numbers=("NHWC", "HWIO", "NHWC"))
    return y + bias


def depth_to_space(x: jax.Array, r: int) -> jax.Array:
  """Pixel shuffle: [B, H, W, r*r*C] -> [B, H*r, W*r, C]; channel (i*r + j)*C + c goes to (r*h+i, r*w+j, c)."""
  b, h, w, c = x.shape
  x = x.reshape(b, h, w, r, r, c // (r * r))
  return x.transpose(0, 1, 3, 2, 4, 5).reshape(b, h * r, w * r, c // (r * r))


def _dt(cfg: CGANConfig) -> dict:
  return {"dtype": cfg.dtype, "param_dtype": cfg.dtype}


def _g_norm(cfg: CGANConfig, name: str):
  if cfg.g_norm == "none":
    return lambda h: h
  return nn.GroupNorm(num_groups=1, name=name, **_dt(cfg))


def _conv(cfg: CGANConfig, features: int, kernel: int, stride: int, name: str) -> Conv:
  return Conv(features, (kernel, kernel), (stride, stride), lowering=cfg.conv_lowering, name=name,
              **_dt(cfg))


class Generator(nn.Module):
  """G(z, y): noise float32 [B, z_dim] and labels int32 [B] -> images float32 [B, S, S, C] in [0, 1]."""
  config: CGANConfig

  @nn.compact
  def __call__(self, z: jax.Array, labels: jax.Array) -> jax.Array:
    cfg = self.config
    s = cfg.image_size // 4
    emb = nn.Embed(cfg.num_classes, cfg.embed_dim, name="label_embed", **_dt(cfg))(labels)
    h = jnp.concatenate([z.astype(cfg.dtype), emb], axis=-1)
    h = nn.Dense(s * s * 2 * cfg.g_width, name="fc", **_dt(cfg))(h)
    h = h.reshape(h.shape[0], s, s, 2 * cfg.g_width)
    h = nn.relu(_g_norm(cfg, "norm0")(h))
    h = _conv(cfg, 4 * cfg.g_width, 3, 1, "up1")(h)
    h = depth_to_space(h, 2)
    h = nn.relu(_g_norm(cfg, "norm1")(h))
    if not cfg.g_head_width:
      h = _conv(cfg, 4 * cfg.channels, 3, 1, "up2")(h)
      return nn.sigmoid(depth_to_space(h, 2))
    # Full-resolution head: sub-pixel up to g_head_width channels at S x S, then a 3x3 conv.
    h = depth_to_space(_conv(cfg, 4 * cfg.g_head_width, 3, 1, "up2")(h), 2)
    h = nn.relu(_g_norm(cfg, "norm2")(h))
    return nn.sigmoid(_conv(cfg, cfg.channels, 3, 1, "head")(h))


class Discriminator(nn.Module):
  """D(x, y): images float32 [B, S, S, C] in [0, 1], labels int32 [B] -> logits float32 [B].

  Projection discriminator (Miyato & Koyama, 2018): ``psi(phi(x)) + <embed(y), phi(x)>``.
  """
  config: CGANConfig

  @nn.compact
  def __call__(self, images: jax.Array, labels: jax.Array) -> jax.Array:
    cfg = self.config
    h = images.astype(cfg.dtype) * 2.0 - 1.0
    h = nn.leaky_relu(_conv(cfg, cfg.d_width, 4, 2, "conv1")(h), 0.2)
    h = nn.leaky_relu(_conv(cfg, 2 * cfg.d_width, 4, 2, "conv2")(h), 0.2)
    h = h.reshape(h.shape[0], -1)
    phi = nn.leaky_relu(nn.Dense(cfg.d_feature_dim, name="fc", **_dt(cfg))(h), 0.2)
    out = nn.Dense(1, name="out", **_dt(cfg))(phi)[:, 0]
    emb = nn.Embed(cfg.num_classes, cfg.d_feature_dim, name="label_embed", **_dt(cfg))(labels)
    return out + jnp.sum(emb * phi, axis=-1)


def init_params(config: CGANConfig, key: jax.Array) -> tuple[dict, dict]:
  """Initial (generator, discriminator) parameters from one key."""
  kg, kd = jax.random.split(key)
  z = jnp.zeros((1, config.z_dim), config.dtype)
  y = jnp.zeros((1,), jnp.int32)
  x = jnp.zeros((1, config.image_size, config.image_size, config.channels), config.dtype)
  g_params = Generator(config).init(kg, z, y)["params"]
  d_params = Discriminator(config).init(kd, x, y)["params"]
  return g_params, d_params
