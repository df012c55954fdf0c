"""Style-conditioned PatchGAN discriminator (Isola et al. 2017) with projection (Miyato & Koyama 2018).

Contract of ``PatchGAN`` / ``apply_patchgan``:

* ``(params, images, latent) -> logits``. ``images``: float32 RGB in [0, 1],
  NHWC ``[B, H, W, 3]`` (mapped to [-1, 1] inside); ``latent``:
  ``[B, latent_dim]``, ``[1, latent_dim]`` or ``[latent_dim]``. Returns
  float32 ``[B, h, w]``: one real/fake logit per local patch of
  ``receptive_field(config)`` pixels (70 for four widths, the 70x70 PatchGAN).
* Layers: 4x4 convs with zero padding 1 and leaky ReLU (``leaky_slope``);
  stride 2 for all widths but the last, which has stride 1; then a 4x4
  stride-1 conv to ``feature_dim`` channels and leaky ReLU, the patch features
  ``phi``. Per position: ``logit = <v, phi> + c + <E latent, phi>`` (a 1x1
  linear head plus the projection term with a bias-free embedding ``E`` of the
  latent). Each stride-2 layer maps size ``n`` to ``n // 2``; each stride-1
  layer to ``n - 1``.
* ``norm``: ``"instance"`` (parameter-free instance norm after every conv but
  the first; those convs have no bias) or ``"none"``. The first layer is never
  normalised.
* ``spectral_norm``: divide every kernel (convs, head, embedding) by its
  largest singular value, estimated by ``spectral_iterations`` power-iteration
  steps from a fixed start vector on every call (stateless, so the apply
  function stays pure; the estimate never exceeds the true value, so the
  normalised norm is >= 1 and approaches 1 as iterations grow).
* ``dtype``: conv compute dtype; parameters are float32, logits float32.
* A latent of the wrong size or an image smaller than ``min_image_size``
  raises ``jaxstyle.nets.stylizer.StylizerInputError``.
"""

from __future__ import annotations

import dataclasses

import flax.linen as nn
import jax
import jax.numpy as jnp
from jax import lax

from jaxstyle import config as cfglib
from jaxstyle.nets.layers import DTYPES, check_images_and_latent, instance_norm, jitted_init

NORMS = ("instance", "none")


def _check_widths(widths: tuple[int, ...]) -> str | None:
  return None if len(widths) >= 2 else "needs at least two widths (one stride-2, one stride-1 layer)"


@dataclasses.dataclass(frozen=True)
class PatchGANConfig:
  """Architecture of the style-conditioned PatchGAN (see the module docstring)."""
  latent_dim: int = cfglib.setting(64, "Size of the style latent (the stylizer's latent_dim).",
                                   gt=0, resume=True)
  widths: tuple[int, ...] = cfglib.setting(
      (64, 128, 256, 512), "Conv channels: stride 2 for all but the last (stride 1); four widths "
      "give 70x70 patches.", gt=0, check=_check_widths, resume=True)
  feature_dim: int = cfglib.setting(256, "Channels of the patch features used by the head and "
                                    "the projection.", gt=0, resume=True)
  norm: str = cfglib.setting("instance", "Normalisation after every conv but the first.",
                             choices=NORMS, resume=True)
  spectral_norm: bool = cfglib.setting(False, "Spectrally normalise every kernel.", resume=True)
  spectral_iterations: int = cfglib.setting(10, "Power-iteration steps per call of the "
                                            "spectral norm.", gt=0, resume=True)
  leaky_slope: float = cfglib.setting(0.2, "Negative slope of the leaky ReLUs.", ge=0, lt=1,
                                      resume=True)
  dtype: str = cfglib.setting("float32", "Compute dtype (parameters stay float32).",
                              choices=tuple(DTYPES), resume=True)


def receptive_field(config: PatchGANConfig) -> int:
  """Side in pixels of the input patch one logit sees."""
  strides = [2] * (len(config.widths) - 1) + [1, 1]
  rf, jump = 1, 1
  for s in strides:
    rf += 3 * jump
    jump *= s
  return rf


def min_image_size(config: PatchGANConfig) -> int:
  """Smallest H and W with at least one logit."""
  return 3 * 2 ** (len(config.widths) - 1)  # the two stride-1 layers need 3 pixels to leave 1


def spectral_normalize(kernel: jax.Array, iterations: int) -> jax.Array:
  """``kernel / sigma``: ``sigma`` the largest singular value of ``kernel`` as [prod(shape[:-1]), shape[-1]].

  ``iterations`` power-iteration steps from the normalised all-ones vector; the
  singular vectors are not differentiated (Miyato et al. 2018), ``sigma`` is.
  """
  w = kernel.reshape(-1, kernel.shape[-1]).astype(jnp.float32)
  wg = lax.stop_gradient(w)
  u = jnp.full((w.shape[1],), 1.0 / jnp.sqrt(w.shape[1]), jnp.float32)
  v = u
  for _ in range(iterations):
    v = wg @ u
    v = v / (jnp.linalg.norm(v) + 1e-12)
    u = wg.T @ v
    u = u / (jnp.linalg.norm(u) + 1e-12)
  u, v = lax.stop_gradient(u), lax.stop_gradient(v)
  sigma = v @ (w @ u)
  return (w / sigma).reshape(kernel.shape).astype(kernel.dtype)


class _Conv(nn.Module):
  """4x4 conv, zero padding 1, optional spectral norm (params ``kernel`` HWIO, ``bias``)."""
  features: int
  stride: int
  use_bias: bool
  config: PatchGANConfig

  @nn.compact
  def __call__(self, x: jax.Array) -> jax.Array:
    cfg = self.config
    kernel = self.param("kernel", nn.initializers.lecun_normal(), (4, 4, x.shape[-1], self.features),
                        jnp.float32)
    if cfg.spectral_norm:
      kernel = spectral_normalize(kernel, cfg.spectral_iterations)
    dt = DTYPES[cfg.dtype]
    y = lax.conv_general_dilated(x.astype(dt), kernel.astype(dt), (self.stride, self.stride),
                                 ((1, 1), (1, 1)), dimension_numbers=("NHWC", "HWIO", "NHWC"))
    if self.use_bias:
      y = y + self.param("bias", nn.initializers.zeros_init(), (self.features,),
                         jnp.float32).astype(dt)
    return y


class _Dense(nn.Module):
  """Dense layer on the last axis with optional spectral norm and bias."""
  features: int
  use_bias: bool
  config: PatchGANConfig

  @nn.compact
  def __call__(self, x: jax.Array) -> jax.Array:
    kernel = self.param("kernel", nn.initializers.lecun_normal(), (x.shape[-1], self.features),
                        jnp.float32)
    if self.config.spectral_norm:
      kernel = spectral_normalize(kernel, self.config.spectral_iterations)
    y = jnp.dot(x.astype(jnp.float32), kernel)
    if self.use_bias:
      y = y + self.param("bias", nn.initializers.zeros_init(), (self.features,), jnp.float32)
    return y


class PatchGAN(nn.Module):
  """The discriminator; ``__call__(images, latent)`` follows the module contract."""
  config: PatchGANConfig

  @nn.compact
  def __call__(self, images: jax.Array, latent: jax.Array) -> jax.Array:
    cfg = self.config
    latent = check_images_and_latent(images, latent, latent_dim=cfg.latent_dim,
                                     min_size=min_image_size(cfg), network="discriminator")
    norm = cfg.norm == "instance"
    x = images.astype(jnp.float32) * 2.0 - 1.0
    layers = [(width, 2 if i < len(cfg.widths) - 1 else 1) for i, width in enumerate(cfg.widths)]
    layers.append((cfg.feature_dim, 1))
    for i, (width, stride) in enumerate(layers):
      x = _Conv(width, stride, use_bias=not (norm and i > 0), config=cfg, name=f"conv{i}")(x)
      if norm and i > 0:
        x = instance_norm(x)
      x = nn.leaky_relu(x, cfg.leaky_slope)
    phi = x.astype(jnp.float32)
    logits = _Dense(1, use_bias=True, config=cfg, name="head")(phi)[..., 0]
    emb = _Dense(cfg.feature_dim, use_bias=False, config=cfg, name="embed")(latent)
    return logits + jnp.einsum("bhwc,bc->bhw", phi, emb)


def init_patchgan(config: PatchGANConfig, key: jax.Array,
                  image_shape: tuple[int, int, int, int] = (1, 64, 64, 3)) -> dict:
  """Initial discriminator parameters (float32) from ``key``; ``image_shape`` only traces."""
  cfglib.validate(config)
  images = jnp.zeros(image_shape, jnp.float32)
  return jitted_init(PatchGAN(config))(key, images, jnp.zeros((config.latent_dim,)))["params"]


def apply_patchgan(config: PatchGANConfig, params: dict, images: jax.Array,
                   latent: jax.Array) -> jax.Array:
  """Patch logits float32 [B, h, w] of ``images`` under style ``latent``. Jit-able."""
  return PatchGAN(config).apply({"params": params}, images, latent)
