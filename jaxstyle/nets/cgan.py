"""Label-conditioned DCGAN-style generator and projection discriminator (Flax linen).

The generator upsamples by sub-pixel convolution (3x3 conv to 4x the
channels, then a 2x pixel shuffle) rather than transposed convolution: on
XLA:CPU a stride-2 ConvTranspose (lowered to an input-dilated convolution)
measured ~13x slower forward+backward for the same shapes (see BUILD_NOTES.md).

Images are float32 NHWC in [0, 1] at both boundaries (the generator ends in a
sigmoid; the discriminator maps its input to [-1, 1] itself). Labels are int32
class indices in ``0..num_classes-1``.

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


@dataclasses.dataclass(frozen=True)
class CGANConfig:
  """Architecture of the MNIST-sized conditional GAN.

  Attributes:
    z_dim: noise dimension.
    num_classes: number of labels.
    g_width: generator channels at 14x14 (2 * g_width at 7x7).
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
  d_width: int = 64
  embed_dim: int = 32
  d_feature_dim: int = 256
  image_size: int = 28
  channels: int = 1
  dtype: str = "float32"


def depth_to_space(x: jax.Array, r: int) -> jax.Array:
  """Pixel shuffle: [B, H, W, r*r*C] -> [B, H*r, W*r, C]; channel (i*r + j)*C + c goes to (r*h+i, r*w+j, c)."""
  b, h, w, c = x.shape
  x = x.reshape(b, h, w, r, r, c // (r * r))
  return x.transpose(0, 1, 3, 2, 4, 5).reshape(b, h * r, w * r, c // (r * r))


def _dt(cfg: CGANConfig) -> dict:
  return {"dtype": cfg.dtype, "param_dtype": cfg.dtype}


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
    h = nn.relu(nn.GroupNorm(num_groups=1, name="norm0", **_dt(cfg))(h))
    h = nn.Conv(4 * cfg.g_width, (3, 3), padding="SAME", name="up1", **_dt(cfg))(h)
    h = depth_to_space(h, 2)
    h = nn.relu(nn.GroupNorm(num_groups=1, name="norm1", **_dt(cfg))(h))
    h = nn.Conv(4 * cfg.channels, (3, 3), padding="SAME", name="up2", **_dt(cfg))(h)
    return nn.sigmoid(depth_to_space(h, 2))


class Discriminator(nn.Module):
  """D(x, y): images float32 [B, S, S, C] in [0, 1], labels int32 [B] -> logits float32 [B].

  Projection discriminator (Miyato & Koyama, 2018): ``psi(phi(x)) + <embed(y), phi(x)>``.
  """
  config: CGANConfig

  @nn.compact
  def __call__(self, images: jax.Array, labels: jax.Array) -> jax.Array:
    cfg = self.config
    h = images.astype(cfg.dtype) * 2.0 - 1.0
    h = nn.leaky_relu(nn.Conv(cfg.d_width, (4, 4), strides=(2, 2), padding="SAME", name="conv1", **_dt(cfg))(h), 0.2)
    h = nn.leaky_relu(nn.Conv(2 * cfg.d_width, (4, 4), strides=(2, 2), padding="SAME", name="conv2", **_dt(cfg))(h), 0.2)
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
