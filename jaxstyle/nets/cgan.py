"""Label-conditioned DCGAN-style generator and projection discriminator (Flax linen).

The generator upsamples by sub-pixel convolution (3x3 conv to 4x the
channels, then a 2x pixel shuffle, ``jaxstyle.nets.layers.depth_to_space``)
rather than transposed convolution, which is much slower on XLA:CPU
(BUILD_NOTES.md).

Images are float32 NHWC in [0, 1] at both boundaries (the generator ends in a
sigmoid; the discriminator maps its input to [-1, 1] itself). Labels are int32
class indices in ``0..num_classes-1``.

Every convolution is ``jaxstyle.nets.layers.Conv``, lowered as
``CGANConfig.conv_lowering`` says (same parameters either way).

Normalisation is per example (GroupNorm with one group = layer norm over
H, W, C with per-channel affine parameters) rather than BatchNorm, so a train
step has no cross-example state and gives the same numbers whatever the
number of devices the batch is split over.
"""

from __future__ import annotations

import dataclasses

import flax.linen as nn
import jax
import jax.numpy as jnp

from jaxstyle import config as cfglib
from jaxstyle.nets.layers import CONV_LOWERINGS, Conv, conv_as_matmul, depth_to_space  # noqa: F401

G_NORMS = ("layer", "none")
DTYPES = ("float32", "float64")


def _multiple_of_4(size: int) -> str | None:
  return None if size % 4 == 0 else "must be a multiple of 4"


@dataclasses.dataclass(frozen=True)
class CGANConfig:
  """Architecture of the MNIST-sized conditional GAN.

  Every field is a ``jaxstyle.config.setting`` whose help text documents it;
  ``cfglib.validate(config)`` checks the values (``init_params`` does).
  Architecture settings are ``resume=True``: a checkpoint only restores into
  the architecture that wrote it.
  """
  z_dim: int = cfglib.setting(64, "Noise dimension.", gt=0, resume=True)
  num_classes: int = cfglib.setting(10, "Number of labels (10 for MNIST).", gt=0, resume=True,
                                    flag=False)
  g_width: int = cfglib.setting(64, "Generator channels at 14x14 (twice that at 7x7).", gt=0,
                                resume=True)
  g_head_width: int = cfglib.setting(
      0, "Generator channels at full resolution before a last 3x3 conv makes the image; 0: no "
      "full-resolution layer (the last sub-pixel conv makes the image, each 2x2 output block "
      "from one 14x14 position). > 0 gives smoother strokes for more compute.", ge=0, resume=True)
  g_norm: str = cfglib.setting(
      "layer", "Generator normalisation after each hidden layer: per-example layer norm "
      "(GroupNorm, one group: over H, W, C) or none.", choices=G_NORMS, resume=True)
  d_width: int = cfglib.setting(64, "Discriminator channels at 14x14 (twice that at 7x7).", gt=0,
                                resume=True)
  embed_dim: int = cfglib.setting(32, "Generator label-embedding size.", gt=0, resume=True)
  d_feature_dim: int = cfglib.setting(
      256, "Discriminator feature size: the length of phi(x), used by the projection term "
      "<embed(y), phi(x)>.", gt=0, resume=True)
  image_size: int = cfglib.setting(28, "Image height and width (a multiple of 4; 28 for MNIST).",
                                   gt=0, check=_multiple_of_4, resume=True, flag=False)
  channels: int = cfglib.setting(1, "Image channels (1 for MNIST).", gt=0, resume=True, flag=False)
  dtype: str = cfglib.setting(
      "float32", "Parameter and compute dtype; float64 (needs jax_enable_x64) is for exactness "
      "checks of parallel runs.", choices=DTYPES, resume=True)
  conv_lowering: str = cfglib.setting(
      "auto", "How the convolutions are computed (same parameters, same numbers up to float "
      "summation order): xla (XLA's convolution), matmul (patches @ kernel) or auto (matmul "
      "only where it measured faster: convs from a few channels to many, i.e. the "
      "discriminator's input conv).", choices=CONV_LOWERINGS)


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
  """Initial (generator, discriminator) parameters from one key.

  Raises:
    ConfigError: ``config`` has an invalid setting.
  """
  cfglib.validate(config)
  kg, kd = jax.random.split(key)
  z = jnp.zeros((1, config.z_dim), config.dtype)
  y = jnp.zeros((1,), jnp.int32)
  x = jnp.zeros((1, config.image_size, config.image_size, config.channels), config.dtype)
  g_params = Generator(config).init(kg, z, y)["params"]
  d_params = Discriminator(config).init(kd, x, y)["params"]
  return g_params, d_params
