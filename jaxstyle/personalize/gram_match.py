"""Gram statistics of a trained stylizer's outputs: the style distance personalization measures.

Contract:

* ``OutputGrams(model)``: for a ``jaxstyle.inference.LoadedStylizer``,
  ``grams(photos [B, H, W, 3], latents [B, D]) -> {layer: [B, C, C]}`` (its
  ``fn`` is the pure, jitted ``(params, photos, latents)`` form) of the
  stylized outputs at the run's style layers (``model.config``:
  layers, pooling and VGG dtype as in training).
* ``gram_distance(config, grams, target) -> [B]``: the run's style loss
  ``Σ_l w_l · 1/(4N_l²)‖Ĝ_l − T_l‖²`` (``losses.style_loss`` with the run's
  layer weights and normalisation) between each Gram set and ``target``
  (``{layer: [C, C]}`` or ``[B, C, C]``).
* ``pooled_grams(grams) -> {layer: [C, C]}``: the mean Gram of a collection
  (``{layer: [N, C, C]}``), the statistics a whole collection of liked images
  shares. ``leave_one_out(grams, i)`` is the mean without image ``i``.
"""

from __future__ import annotations

from typing import Mapping

import jax
import jax.numpy as jnp

from jaxstyle import losses, vgg
from jaxstyle.nets import style_encoder as se
from jaxstyle.nets import stylizer as st


def style_layer_weights(config) -> dict[str, float]:
  """``{layer: weight}`` of a stylizer run's style loss."""
  return dict(config.style_layers)


class OutputGrams:
  """Jitted Grams of a stylizer's outputs (see the module contract)."""

  def __init__(self, model):
    cfg = model.config
    self.config = cfg
    layers = tuple(t for t, _ in cfg.style_layers)
    weights = model.weights()
    weights.check_layers(layers)

    def output_grams(params, photos, latents):
      out = st.apply_stylizer(cfg.generator, params["g"], photos, latents)
      feats = vgg.extract(weights, out, layers, pooling=cfg.vgg_pooling,
                          dtype=se.VGG_DTYPES[cfg.vgg_dtype])
      return {k: losses.gram_matrix(f) for k, f in feats.items()}

    self.fn = jax.jit(output_grams)  # the pure (params, photos, latents) -> Grams
    self.params = model.params

  def __call__(self, photos: jax.Array, latents: jax.Array) -> dict[str, jax.Array]:
    return self.fn(self.params, jnp.asarray(photos, jnp.float32), jnp.asarray(latents, jnp.float32))


def gram_distance(config, grams: Mapping[str, jax.Array],
                  target: Mapping[str, jax.Array]) -> jax.Array:
  """Style loss [B] between ``grams`` ``{layer: [B, C, C]}`` and ``target`` (see the contract)."""
  total = 0.0
  for layer, w in style_layer_weights(config).items():
    total = total + w * losses.style_layer_loss(grams[layer], target[layer], config.normalization)
  return total


def pooled_grams(grams: Mapping[str, jax.Array]) -> dict[str, jax.Array]:
  """Mean Gram per layer of a collection ``{layer: [N, C, C]}`` -> ``{layer: [C, C]}``."""
  return {k: jnp.mean(v, axis=0) for k, v in grams.items()}


def leave_one_out(grams: Mapping[str, jax.Array], i: int) -> dict[str, jax.Array]:
  """Mean Gram per layer of the collection without image ``i`` (needs N >= 2)."""
  out = {}
  for k, v in grams.items():
    n = v.shape[0]
    out[k] = (jnp.sum(v, axis=0) - v[i]) / (n - 1)
  return out
