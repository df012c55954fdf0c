"""StyleMod: the seed design's "style adjustment layer".

A dense map from a style latent ``w`` to a per-channel scale ``s`` and bias
``b``, applied to NHWC features as ``x · (1 + s) + b``. The dense layer is
zero-initialised, so a fresh StyleMod is the identity and a stylizer starts
from its content path.
"""

from __future__ import annotations

import flax.linen as nn
import jax
import jax.numpy as jnp


def style_modulate(x: jax.Array, scale: jax.Array, bias: jax.Array) -> jax.Array:
  """``x · (1 + scale) + bias`` with ``x`` [B, H, W, C] and ``scale``/``bias`` [B, C]."""
  return x * (1.0 + scale[:, None, None, :]) + bias[:, None, None, :]


class StyleMod(nn.Module):
  """Per-channel modulation of feature maps by a style latent.

  Attributes:
    kernel_init: initialiser of the latent → (scale, bias) map (zeros: identity at init).
  """

  kernel_init: nn.initializers.Initializer = nn.initializers.zeros

  @nn.compact
  def __call__(self, x: jax.Array, w: jax.Array) -> jax.Array:
    """Args: ``x`` [B, H, W, C] features; ``w`` [B, D] style latents. Returns [B, H, W, C]."""
    channels = x.shape[-1]
    sb = nn.Dense(2 * channels, kernel_init=self.kernel_init, name="affine")(w.astype(jnp.float32))
    scale, bias = jnp.split(sb, 2, axis=-1)
    return style_modulate(x, scale.astype(x.dtype), bias.astype(x.dtype))
