"""Generic building blocks shared by the networks (NHWC).

* ``max_pool_2x2`` / ``avg_pool_2x2``: 2×2 stride-2 pooling as reshape +
  max/mean. The max pool's gradient is deterministic on every backend (XLA's
  select-and-scatter is not, on GPU), and its forward pass equals
  ``flax.linen.max_pool(x, (2, 2), strides=(2, 2), padding="VALID")``. On exact
  ties inside a window the gradient is split evenly between the tied inputs
  (``flax.linen.max_pool``'s picks one).
* Odd sizes use the floor convention (Keras "valid", torchvision
  ``ceil_mode=False``): the last row/column of an odd-sized map is dropped, so
  ``[B, H, W, C] -> [B, H // 2, W // 2, C]``. Maps smaller than 2×2 give an
  empty spatial size; callers that need a check raise their own error.
* ``depth_to_space(x, r)``: pixel shuffle ``[B, H, W, r*r*C] -> [B, H*r, W*r, C]``.
* ``conv_as_matmul``: a 2-D convolution as patches @ kernel (equal to XLA's up
  to float summation order); ``Conv``: ``nn.Conv`` with "SAME" padding (same
  parameter names, shapes and initialisers) computed by either lowering
  (``CONV_LOWERINGS``: "xla", "matmul", or "auto", the rule in ``_auto_matmul``).
* ``reflect_pad``, ``pad_to_multiple`` (reflection padding, static pad widths
  so shapes may be symbolic), ``instance_norm`` (parameter-free, f32 statistics),
  ``upsample_2x`` (nearest or bilinear), ``check_images_and_latent`` (input
  checks of the style-conditioned networks, ``StylizerInputError``) and
  ``jitted_init`` (``jax.jit(module.init)`` cached per module definition).
"""

from __future__ import annotations

import functools
from typing import Callable, Sequence

import flax.linen as nn
import jax
import jax.numpy as jnp
from jax import lax

from jaxstyle.errors import StylizerInputError

CONV_LOWERINGS = ("auto", "xla", "matmul")


def _crop_even(x: jax.Array) -> jax.Array:
  h, w = x.shape[1] // 2 * 2, x.shape[2] // 2 * 2
  return x[:, :h, :w, :]


def max_pool_2x2(x: jax.Array) -> jax.Array:
  """2×2 stride-2 max pool of NHWC ``x`` as reshape + max (floor for odd sizes)."""
  x = _crop_even(x)
  b, h, w, c = x.shape
  return x.reshape(b, h // 2, 2, w // 2, 2, c).max(axis=(2, 4))


def avg_pool_2x2(x: jax.Array) -> jax.Array:
  """2×2 stride-2 average pool of NHWC ``x`` as reshape + mean (floor for odd sizes)."""
  x = _crop_even(x)
  b, h, w, c = x.shape
  return x.reshape(b, h // 2, 2, w // 2, 2, c).mean(axis=(2, 4))


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

  Chosen by measurement on XLA:CPU in the whole cGAN train step (BUILD_NOTES.md):
  XLA's kernel gradient of a conv from 1 channel is slow; for wider layers
  the matmul did not pay off in the full step.
  """
  return in_features < 8 and features >= 16


class Conv(nn.Module):
  """``nn.Conv`` with "SAME" padding (same parameter names, shapes and initialisers), lowered by choice.

  ``lowering``: "xla" (``lax.conv_general_dilated``), "matmul" (``conv_as_matmul``)
  or "auto" (``_auto_matmul`` picks per layer shape).
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


DTYPES = {"float32": jnp.float32, "bfloat16": jnp.bfloat16}
UPSAMPLES = ("nearest", "bilinear")


def reflect_pad(x: jax.Array, pad: int | tuple[tuple[int, int], tuple[int, int]]) -> jax.Array:
  """Reflection padding (``np.pad(mode="reflect")``: edge not repeated) of NHWC ``x`` in H and W.

  ``pad``: one int for all four sides, or ``((top, bottom), (left, right))``.
  """
  if isinstance(pad, int):
    pad = ((pad, pad), (pad, pad))
  (t, b), (l, r) = pad
  if not (t or b or l or r):
    return x
  return jnp.pad(x, ((0, 0), (t, b), (l, r), (0, 0)), mode="reflect")


def pad_to_multiple(x: jax.Array, multiple: int) -> jax.Array:
  """Reflection-pads NHWC ``x`` at the bottom and right up to multiples of ``multiple``.

  Pads by the fixed ``multiple - 1`` and slices, which equals padding by
  exactly the missing amount (reflection rows do not depend on the pad width)
  and keeps every pad width static under symbolic shapes. Needs H, W >= multiple.
  """
  if multiple == 1:
    return x
  h, w = x.shape[1], x.shape[2]
  x = reflect_pad(x, ((0, multiple - 1), (0, multiple - 1)))
  return x[:, :multiple * ((h + multiple - 1) // multiple), :multiple * ((w + multiple - 1) // multiple)]


def moments(x: jax.Array) -> tuple[jax.Array, jax.Array]:
  """Per example and channel mean and biased variance of NHWC ``x`` over H, W: float32 [B, 1, 1, C] each."""
  xf = x.astype(jnp.float32)
  mean = jnp.mean(xf, axis=(1, 2), keepdims=True)
  return mean, jnp.mean(jnp.square(xf - mean), axis=(1, 2), keepdims=True)


def normalize(x: jax.Array, mean: jax.Array, var: jax.Array, eps: float = 1e-5) -> jax.Array:
  """``(x - mean) / sqrt(var + eps)`` in float32 (statistics broadcast over H, W); ``x``'s dtype."""
  return ((x.astype(jnp.float32) - mean) * jax.lax.rsqrt(var + eps)).astype(x.dtype)


def instance_norm(x: jax.Array, eps: float = 1e-5) -> jax.Array:
  """Parameter-free instance norm of NHWC ``x`` over H, W per example and channel.

  Computed in float32 (``(x - mean) / sqrt(var + eps)``, biased variance);
  returns ``x``'s dtype.
  """
  mean, var = moments(x)
  return normalize(x, mean, var, eps)


def upsample_2x(x: jax.Array, method: str = "nearest") -> jax.Array:
  """2x upsampling of NHWC ``x``: ``nearest`` (each pixel to a 2x2 block) or ``bilinear``.

  ``bilinear`` uses half-pixel centres and clamps at the edges, the convention
  of ``jax.image.resize(method="bilinear")`` for a 2x enlargement, written with
  fixed pads and slices so that it works under symbolic shapes.
  """
  if method == "nearest":
    b, h, w, c = x.shape
    x = jnp.broadcast_to(x[:, :, None, :, None, :], (b, h, 2, w, 2, c))
    return x.reshape(b, 2 * h, 2 * w, c)
  if method != "bilinear":
    raise ValueError(f"unknown upsample {method!r}; choose one of {UPSAMPLES}")
  for axis in (1, 2):
    pad = [(0, 0)] * 4
    pad[axis] = (1, 1)
    e = jnp.pad(x, pad, mode="edge")
    n = x.shape[axis]
    prev = jax.lax.slice_in_dim(e, 0, n, axis=axis)
    nxt = jax.lax.slice_in_dim(e, 2, n + 2, axis=axis)
    even, odd = 0.75 * x + 0.25 * prev, 0.75 * x + 0.25 * nxt
    x = jnp.stack([even, odd], axis=axis + 1)
    shape = list(even.shape)
    shape[axis] = 2 * n
    x = x.reshape(shape)
  return x


def check_images_and_latent(images: jax.Array, latent: jax.Array, *, latent_dim: int,
                            min_size: int, network: str = "stylizer") -> jax.Array:
  """Validates NHWC RGB ``images`` (H, W >= ``min_size``) and ``latent``; returns float32 [B, D].

  ``latent``: [D], [1, D] or [B, D] (broadcast over the batch). Raises
  ``StylizerInputError`` naming ``network`` and the problem.
  """
  if images.ndim != 4 or images.shape[-1] != 3:
    raise StylizerInputError(f"the {network} takes RGB images [B, H, W, 3], got shape {images.shape}")
  b, h, w = images.shape[:3]
  if h < min_size or w < min_size:
    raise StylizerInputError(f"images of {h}x{w} pixels are too small for the {network}: it needs "
                             f"at least {min_size}x{min_size}; upscale or pad the image")
  if latent.ndim == 1:
    latent = latent[None]
  if latent.ndim != 2 or latent.shape[-1] != latent_dim:
    raise StylizerInputError(f"latent has shape {latent.shape}, the {network} expects "
                             f"[{latent_dim}] or [batch, {latent_dim}] (latent_dim={latent_dim})")
  if latent.shape[0] not in (1, b):
    raise StylizerInputError(f"latent batch {latent.shape[0]} does not match the image batch {b}")
  return jnp.broadcast_to(latent.astype(jnp.float32), (b, latent_dim))


@functools.lru_cache(maxsize=32)
def jitted_init(module: nn.Module) -> Callable:
  """``jax.jit(module.init)``, compiled once per (frozen, hashable) module definition."""
  return jax.jit(module.init)
