"""Style latents: the style encoder (any style image), the style bank (training styles), identity.

Contract:

* ``style_statistics(weights, images, taps)``: ``images`` float32 RGB in
  [0, 1], NHWC ``[B, H, W, 3]``, any size the VGG taps allow (each 2x2 pool
  needs >= 2x2 pixels). Returns float32 ``[B, stats_dim(taps)]``: for each tap
  in the given order, the per-channel mean over H, W, then the per-channel
  standard deviation ``sqrt(var + STD_EPS)``. Means over positions, so the
  statistics do not depend on the image size as such (only on what the
  network sees at that scale). Any tap list of ``jaxstyle.vgg.TAPS`` that the
  weights reach works (the shared partial weights reach relu3_4; full weights
  relu5_4).
* ``StyleEncoder`` maps statistics to a latent ``[B, latent_dim]``:
  ``log1p`` of the (non-negative) statistics, which brings VGG magnitudes that
  differ by orders of magnitude between taps and weight conventions to O(1),
  then (``standardize``) ``(h − μ) / σ`` with per-feature ``input_mean`` μ and
  ``input_std`` σ, parameters fixed at initialisation from the training
  styles (``input_moments`` + ``with_input_moments``; gradients stopped), then
  an MLP (``hidden`` ReLU layers, a linear output). Without the
  standardisation every image's log-statistics share a large common offset,
  so each hidden unit sees nearly the same sign for every image: the quick
  run's encoder kept 4 of its 256 hidden units alive and mapped all 193
  paintings onto a 3-dimensional set of latents (BUILD_NOTES.md). ``apply_style_encoder``
  runs VGG and the encoder from images (Ghiasi et al. 2017, with VGG
  statistics in place of an Inception embedding).
* ``StyleBank``: a learned ``[num_styles, latent_dim]`` table, one latent per
  training style (conditional instance norm, Dumoulin et al. 2017: each
  style's per-layer affine is ``StyleMod`` of its latent). Initialised
  ``normal(stddev)`` (default 1), never zeros: with zero-initialised StyleMod
  kernels, an all-zero bank is a stationary point (the kernels' gradient is
  ``latent^T · grad`` = 0 and the latents' gradient is ``grad · kernel^T`` = 0),
  so nothing would learn to depend on the style.
* Identity: the zero latent (``identity_latent``). At the zero latent every
  StyleMod applies only its unconditional bias, the same for every style and
  checkpoint. The training loop trains the zero latent to reconstruct the
  content (so "identity" is a trained property, not an architectural one).
  ``with_strength(latent, t) = t · latent`` interpolates from identity (t = 0)
  to the style (t = 1); since StyleMod is affine in the latent, this
  interpolates every layer's scale and bias linearly, as Dumoulin et al.
  interpolate conditional-instance-norm parameters. ``mix_latents`` is the
  convex combination of several latents.
"""

from __future__ import annotations

import dataclasses
from typing import Any, Sequence

import flax.linen as nn
import jax
import jax.numpy as jnp

from jaxstyle import config as cfglib
from jaxstyle import vgg
from jaxstyle.nets.layers import jitted_init

STD_EPS = 1e-6
DEFAULT_TAPS = ("relu1_1", "relu2_1", "relu3_1")
VGG_DTYPES = {"float32": jnp.float32, "bfloat16": jnp.bfloat16}


@dataclasses.dataclass(frozen=True)
class StyleEncoderConfig:
  """The style encoder: VGG statistics at ``taps`` -> MLP -> latent."""
  latent_dim: int = cfglib.setting(64, "Size of the style latent (the stylizer's latent_dim).",
                                   gt=0, resume=True)
  taps: tuple[str, ...] = cfglib.setting(
      DEFAULT_TAPS, "VGG taps whose per-channel mean and std describe a style (full weights: "
      "e.g. relu1_1,relu2_1,relu3_1,relu4_1,relu5_1).", check=vgg.check_taps, resume=True)
  hidden: tuple[int, ...] = cfglib.setting((256,), "Hidden widths of the encoder MLP.", gt=0,
                                           resume=True)
  vgg_dtype: str = cfglib.setting("float32", "Compute dtype of the VGG features.",
                                  choices=tuple(VGG_DTYPES))
  standardize: bool = cfglib.setting(
      False, "Standardise the log-statistics per feature with moments fixed at initialisation "
      "from the training styles (keeps the hidden ReLUs alive; false: the first runs' encoder).",
      resume=True)


def stats_dim(taps: Sequence[str]) -> int:
  """Length of the statistics vector: ``2 * sum(channels)`` (mean and std per channel)."""
  return 2 * sum(vgg.tap_channels(t) for t in taps)


def style_statistics(weights: vgg.VGGWeights, images: jax.Array, taps: Sequence[str], *,
                     dtype: Any = jnp.float32) -> jax.Array:
  """Per-channel mean and std of VGG features at ``taps``: float32 [B, stats_dim(taps)].

  Raises ``WeightsError`` if a tap is deeper than ``weights`` reach.
  """
  taps = tuple(taps)
  feats = vgg.extract(weights, images, taps, dtype=dtype)
  parts = []
  for tap in taps:
    f = feats[tap].astype(jnp.float32)
    mean = jnp.mean(f, axis=(1, 2))
    var = jnp.mean(jnp.square(f - mean[:, None, None, :]), axis=(1, 2))
    parts += [mean, jnp.sqrt(var + STD_EPS)]
  return jnp.concatenate(parts, axis=-1)


class StyleEncoder(nn.Module):
  """Statistics [B, stats_dim] -> latents float32 [B, latent_dim] (``log1p``, then the MLP)."""
  config: StyleEncoderConfig

  @nn.compact
  def __call__(self, stats: jax.Array) -> jax.Array:
    cfg = self.config
    want = stats_dim(cfg.taps)
    if stats.ndim != 2 or stats.shape[-1] != want:
      raise ValueError(f"style statistics have shape {stats.shape}, expected [batch, {want}] "
                       f"for taps {','.join(cfg.taps)}")
    h = jnp.log1p(jnp.maximum(stats.astype(jnp.float32), 0.0))
    if cfg.standardize:
      mean = self.param("input_mean", nn.initializers.zeros, (want,), jnp.float32)
      std = self.param("input_std", nn.initializers.ones, (want,), jnp.float32)
      h = (h - jax.lax.stop_gradient(mean)) / jax.lax.stop_gradient(std)
    for i, width in enumerate(cfg.hidden):
      h = nn.relu(nn.Dense(width, name=f"hidden{i}")(h))
    return nn.Dense(cfg.latent_dim, name="out")(h)


def init_style_encoder(config: StyleEncoderConfig, key: jax.Array) -> dict:
  """Initial encoder parameters (float32); same key → bit-identical. No VGG weights needed."""
  cfglib.validate(config)
  stats = jnp.zeros((1, stats_dim(config.taps)))
  return jitted_init(StyleEncoder(config))(key, stats)["params"]


def input_moments(config: StyleEncoderConfig, weights: vgg.VGGWeights,
                  images: Sequence[jax.Array], *, min_std: float = 1e-3) -> tuple[jax.Array, jax.Array]:
  """Per-feature mean and std (floored at ``min_std``) of the log-statistics of ``images``.

  ``images``: [H, W, 3] arrays (sizes may differ), e.g. a run's training styles.
  """
  taps = tuple(config.taps)
  fn = jax.jit(lambda x: jnp.log1p(jnp.maximum(style_statistics(
      weights, x[None], taps, dtype=VGG_DTYPES[config.vgg_dtype]), 0.0))[0])
  h = jnp.stack([fn(jnp.asarray(im, jnp.float32)) for im in images])
  return jnp.mean(h, axis=0), jnp.maximum(jnp.std(h, axis=0), min_std)


def with_input_moments(params: dict, mean: jax.Array, std: jax.Array) -> dict:
  """Encoder ``params`` with ``input_mean``/``input_std`` replaced (a ``standardize`` encoder's)."""
  if "input_mean" not in params:
    raise ValueError("these encoder parameters have no input_mean: the config has standardize=False")
  return {**params, "input_mean": jnp.asarray(mean, jnp.float32),
          "input_std": jnp.asarray(std, jnp.float32)}


def apply_style_encoder(config: StyleEncoderConfig, params: dict, weights: vgg.VGGWeights,
                        images: jax.Array) -> jax.Array:
  """Latents [B, latent_dim] of style ``images`` ([B, H, W, 3] RGB [0, 1]). Jit-able."""
  stats = style_statistics(weights, images, config.taps, dtype=VGG_DTYPES[config.vgg_dtype])
  return StyleEncoder(config).apply({"params": params}, stats)


class StyleBank(nn.Module):
  """Learned latents, one per training style: ``indices`` int [B] -> float32 [B, latent_dim].

  Attributes:
    num_styles: rows of the table (N).
    latent_dim: columns (D).
    stddev: the table is initialised ``normal(stddev)`` (see the module docstring).
  """
  num_styles: int
  latent_dim: int
  stddev: float = 1.0

  @nn.compact
  def __call__(self, indices: jax.Array) -> jax.Array:
    table = self.param("latents", nn.initializers.normal(self.stddev),
                       (self.num_styles, self.latent_dim), jnp.float32)
    return jnp.take(table, indices, axis=0)


def init_style_bank(num_styles: int, latent_dim: int, key: jax.Array, *,
                    stddev: float = 1.0) -> dict:
  """Initial bank parameters ``{"latents": [num_styles, latent_dim]}``; same key → bit-identical."""
  if num_styles < 1 or latent_dim < 1:
    raise ValueError(f"a style bank needs num_styles >= 1 and latent_dim >= 1, got "
                     f"{num_styles} and {latent_dim}")
  bank = StyleBank(num_styles, latent_dim, stddev)
  return jitted_init(bank)(key, jnp.zeros((1,), jnp.int32))["params"]


def identity_latent(latent_dim: int) -> jax.Array:
  """The identity (content reconstruction) latent: zeros [latent_dim]."""
  return jnp.zeros((latent_dim,), jnp.float32)


def with_strength(latent: jax.Array, strength: float | jax.Array) -> jax.Array:
  """``strength · latent``: 0 is the identity latent, 1 the style itself."""
  return jnp.asarray(strength, jnp.float32) * latent


def mix_latents(latents: jax.Array | Sequence[jax.Array], weights: Sequence[float]) -> jax.Array:
  """Convex combination ``sum_k weights_k · latents_k / sum_k weights_k``.

  Args:
    latents: [K, D] (or K arrays [D]).
    weights: K non-negative numbers with a positive sum (normalised here).

  Raises:
    ValueError: mismatched K, a negative weight or a zero sum.
  """
  latents = jnp.stack(latents) if isinstance(latents, (list, tuple)) else jnp.asarray(latents)
  w = [float(x) for x in weights]
  if latents.ndim != 2 or latents.shape[0] != len(w):
    raise ValueError(f"mix_latents needs one weight per latent: {len(w)} weights for latents "
                     f"of shape {latents.shape}")
  if any(x < 0 for x in w) or sum(w) <= 0:
    raise ValueError(f"mix weights must be >= 0 with a positive sum, got {w}")
  wn = jnp.asarray(w, jnp.float32) / sum(w)
  return jnp.tensordot(wn, latents.astype(jnp.float32), axes=1)
