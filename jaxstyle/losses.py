"""Style, content, total-variation and GAN losses as pure, batched functions.

Conventions (also in BUILD_NOTES.md):

* Feature maps are NHWC: ``[B, H, W, C]``. For a layer, ``N = C`` (number of
  feature maps) and ``M = H * W`` (size of each map).
* ``gram_matrix(F)`` returns the *position-averaged* Gram matrix
  ``Ĝ = FᵀF / M`` (shape ``[B, C, C]``), accumulated in at least float32 (bf16
  features accumulate in f32; float64 stays float64). Averaging over positions makes Gram matrices of images of
  different sizes comparable (a style image need not match the output size).
* The default style normalisation ``"gatys"`` is the seed design's
  ``L_s = 1/(4N²M²) ‖G(X) − G(S)‖²`` with raw Grams ``G = FᵀF``; with
  ``Ĝ = G/M`` this is ``1/(4N²) ‖Ĝ(X) − Ĝ(S)‖²``, identical when X and S have
  the same size. Other named normalisations (see ``STYLE_NORMALIZATIONS``):
  ``"chw"`` = ``‖G/(CHW) − ·‖²`` (Johnson et al. 2016; 4× ``gatys``), and
  ``"hw"`` = ``‖Ĝ(X) − Ĝ(S)‖²`` (no channel normalisation: wide layers weigh
  more).
* Content loss is the seed's ``L_c = ½ ‖F(X) − F(C)‖²`` (a sum, not a mean).
* Perceptual and style/content losses return one value per batch element
  (shape ``[B]``); GAN losses return the batch mean (a scalar).
"""

from __future__ import annotations

from typing import Callable, Mapping, Sequence

import jax
import jax.numpy as jnp

Array = jax.Array


def _acc_dtype(x: Array):
  """Accumulation dtype: at least float32 (bf16/f16 -> f32; f64 stays f64)."""
  return jnp.promote_types(x.dtype, jnp.float32)

# Scale applied to ‖Ĝ(X) − Ĝ(S)‖² (Ĝ = FᵀF / M) as a function of N = channels.
STYLE_NORMALIZATIONS: dict[str, Callable[[int], float]] = {
    "gatys": lambda n: 1.0 / (4.0 * n * n),
    "chw": lambda n: 1.0 / (n * n),
    "hw": lambda n: 1.0,
}

# bf16 has an 8-bit significand: unit roundoff u = 2^-8. A Gram entry of
# bf16-rounded features accumulated in float32 is then within
# (2u + u²) · (|F|ᵀ|F|)/M of the float32 Gram (plus float32 accumulation error).
BF16_GRAM_RELATIVE_BOUND = 2.0 * 2.0**-8 + 2.0**-16


def gram_matrix(features: Array, normalize: bool = True) -> Array:
  """Gram matrices of NHWC feature maps.

  Args:
    features: ``[B, H, W, C]`` (any float dtype; bf16 is accumulated in f32).
    normalize: divide by ``M = H * W`` (default). ``False`` gives raw ``FᵀF``.

  Returns:
    ``[B, C, C]`` in float32 (float64 for float64 features).
  """
  if features.ndim != 4:
    raise ValueError(f"gram_matrix expects NHWC features [B,H,W,C], got shape {features.shape}")
  b, h, w, c = features.shape
  f = features.reshape(b, h * w, c)
  g = jnp.einsum("bmi,bmj->bij", f, f, preferred_element_type=_acc_dtype(f))
  return g / (h * w) if normalize else g


def style_layer_loss(gram_x: Array, gram_s: Array, normalization: str = "gatys") -> Array:
  """Style loss of one layer from position-averaged Grams.

  Args:
    gram_x: ``[B, C, C]`` Grams of the generated images.
    gram_s: ``[C, C]`` or ``[B, C, C]`` target Grams.
    normalization: a key of ``STYLE_NORMALIZATIONS``.

  Returns:
    ``[B]``.
  """
  try:
    scale = STYLE_NORMALIZATIONS[normalization](gram_x.shape[-1])
  except KeyError:
    raise ValueError(f"unknown style normalization {normalization!r}; "
                     f"choose one of {sorted(STYLE_NORMALIZATIONS)}") from None
  diff = gram_x - gram_s
  return scale * jnp.sum(jnp.square(diff), axis=(-2, -1))


def style_loss(feats_x: Mapping[str, Array], target_grams: Mapping[str, Array],
               layer_weights: Mapping[str, float], normalization: str = "gatys") -> Array:
  """``Σ_l w_l · L_s,l`` over the layers in ``layer_weights``.

  Args:
    feats_x: layer name -> ``[B, H, W, C]`` features of the generated images.
    target_grams: layer name -> ``[C, C]`` or ``[B, C, C]`` target Grams
      (from ``style_targets``).
    layer_weights: layer name -> weight ``w_l``.
    normalization: see ``STYLE_NORMALIZATIONS``.

  Returns:
    ``[B]``.
  """
  total = 0.0
  for name, weight in layer_weights.items():
    total = total + weight * style_layer_loss(gram_matrix(feats_x[name]), target_grams[name],
                                              normalization)
  return total


def style_targets(style_feats: Sequence[Mapping[str, Array]],
                  blend_weights: Sequence[float] | None = None) -> dict[str, Array]:
  """Target Grams for one style or a weighted blend of several.

  Args:
    style_feats: one features dict per style image (each ``[1, H_i, W_i, C]``
      per layer; sizes may differ between styles).
    blend_weights: one weight per style (normalised to sum to 1); default equal.

  Returns:
    layer name -> ``[C, C]`` blended Gram ``Σ_i w_i Ĝ_l(S_i)``.
  """
  if not style_feats:
    raise ValueError("style_targets needs at least one style")
  n = len(style_feats)
  w = jnp.ones((n,), jnp.float32) if blend_weights is None else jnp.asarray(blend_weights, jnp.float32)
  if w.shape != (n,):
    raise ValueError(f"{n} styles but {w.shape[0] if w.ndim else 0} blend weights")
  w = w / jnp.sum(w)
  out = {}
  for name in style_feats[0]:
    grams = [gram_matrix(f[name]).mean(axis=0) for f in style_feats]
    out[name] = sum(wi * g for wi, g in zip(w, grams))
  return out


def content_loss(feat_x: Array, feat_c: Array) -> Array:
  """``½ ‖F(X) − F(C)‖²`` per batch element: ``[B, H, W, C]`` ×2 -> ``[B]``."""
  diff = feat_x - feat_c
  diff = diff.astype(_acc_dtype(diff))
  return 0.5 * jnp.sum(jnp.square(diff), axis=tuple(range(1, diff.ndim)))


def total_variation_loss(images: Array, kind: str = "l2") -> Array:
  """Total variation per image: ``[B, H, W, C]`` -> ``[B]``.

  ``kind="l2"``: ``Σ (x[i+1,j] − x[i,j])² + (x[i,j+1] − x[i,j])²``;
  ``kind="l1"``: the same with absolute values (anisotropic TV).
  """
  dy = images[:, 1:, :, :] - images[:, :-1, :, :]
  dx = images[:, :, 1:, :] - images[:, :, :-1, :]
  if kind == "l2":
    f = jnp.square
  elif kind == "l1":
    f = jnp.abs
  else:
    raise ValueError(f"unknown total variation kind {kind!r}; choose 'l2' or 'l1'")
  return jnp.sum(f(dy), axis=(1, 2, 3)) + jnp.sum(f(dx), axis=(1, 2, 3))


def perceptual_loss(feats_x: Mapping[str, Array], *, images: Array | None = None,
                    content_feats: Mapping[str, Array] | None = None,
                    content_layers: Mapping[str, float] | None = None,
                    target_grams: Mapping[str, Array] | None = None,
                    style_layers: Mapping[str, float] | None = None,
                    alpha: float = 1.0, beta: float = 1.0, gamma: float = 0.0,
                    normalization: str = "gatys") -> tuple[Array, dict[str, Array]]:
  """``α·L_c + β·L_s + γ·L_tv`` per batch element.

  Args:
    feats_x: layer -> features of the generated images.
    images: ``[B, H, W, 3]`` generated images (needed when ``gamma != 0``).
    content_feats: layer -> content features (broadcastable to ``feats_x``).
    content_layers: layer -> weight of its content loss.
    target_grams: layer -> target Gram (``style_targets``).
    style_layers: layer -> weight ``w_l``.
    alpha, beta, gamma: content, style and TV weights.
    normalization: style normalisation name.

  Returns:
    ``(total [B], {"content": [B], "style": [B], "tv": [B]})`` (unweighted parts).
  """
  batch = next(iter(feats_x.values())).shape[0]
  zero = jnp.zeros((batch,), _acc_dtype(next(iter(feats_x.values()))))
  lc = zero
  if content_layers:
    lc = sum(w * content_loss(feats_x[k], content_feats[k]) for k, w in content_layers.items())
  ls = zero
  if style_layers:
    ls = style_loss(feats_x, target_grams, style_layers, normalization)
  ltv = zero
  if gamma:
    if images is None:
      raise ValueError("perceptual_loss: gamma != 0 needs `images` for the TV term")
    ltv = total_variation_loss(images)
  total = alpha * lc + beta * ls + gamma * ltv
  return total, {"content": lc, "style": ls, "tv": ltv}


# ----------------------------------------------------------------------------
# Adversarial losses (logits in, batch-mean scalar out).

GAN_LOSSES = ("nonsaturating", "hinge", "lsgan")


def gan_d_loss(real_logits: Array, fake_logits: Array, kind: str = "nonsaturating") -> Array:
  """Discriminator loss from raw logits (any shape; mean over all elements).

  * ``nonsaturating`` (the cGAN objective, maximising
    ``E log D(x,y) + E log(1 − D(G(z,y),y))``): ``softplus(−r) + softplus(f)``.
  * ``hinge``: ``relu(1 − r) + relu(1 + f)``.
  * ``lsgan``: ``½(r − 1)² + ½f²``.
  """
  r = real_logits.astype(_acc_dtype(real_logits))
  f = fake_logits.astype(_acc_dtype(fake_logits))
  if kind == "nonsaturating":
    return jnp.mean(jax.nn.softplus(-r)) + jnp.mean(jax.nn.softplus(f))
  if kind == "hinge":
    return jnp.mean(jax.nn.relu(1.0 - r)) + jnp.mean(jax.nn.relu(1.0 + f))
  if kind == "lsgan":
    return 0.5 * jnp.mean(jnp.square(r - 1.0)) + 0.5 * jnp.mean(jnp.square(f))
  raise ValueError(f"unknown GAN loss {kind!r}; choose one of {GAN_LOSSES}")


def gan_g_loss(fake_logits: Array, kind: str = "nonsaturating") -> Array:
  """Generator loss from the discriminator's logits on generated samples.

  * ``nonsaturating``: ``softplus(−f)`` (= −log D(G(z))).
  * ``hinge``: ``−f``.
  * ``lsgan``: ``½(f − 1)²``.
  """
  f = fake_logits.astype(_acc_dtype(fake_logits))
  if kind == "nonsaturating":
    return jnp.mean(jax.nn.softplus(-f))
  if kind == "hinge":
    return -jnp.mean(f)
  if kind == "lsgan":
    return 0.5 * jnp.mean(jnp.square(f - 1.0))
  raise ValueError(f"unknown GAN loss {kind!r}; choose one of {GAN_LOSSES}")
