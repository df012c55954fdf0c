"""The stylizer's style encoder as a retrieval descriptor (``kind="encoder"``).

Contract:

* ``encoder_config(model, scale=256, whiten_dim=64)``: the descriptor config
  of a trained stylizer ``model`` (``jaxstyle.inference.LoadedStylizer``):
  its encoder taps as ``layers``, one working ``scale`` (the run's
  ``style_size`` is the natural choice: the encoder trained on styles of that
  size), ``dim`` = the latent size, ``checkpoint`` = the run directory and
  ``checkpoint_fingerprint`` = ``model.fingerprint``, so an index remembers
  exactly which encoder made it.
* ``encoder_stats(stats, taps)``: the encoder's input from tile statistics.
  The tiles of one image are averaged (``Embedder``): the mean of the tile
  means is the image's per-channel mean ``μ``, the mean of the tile Grams'
  diagonals is ``E[f²]``, so ``σ = sqrt(max(E[f²] − μ², 0) + STD_EPS)`` is the
  per-channel standard deviation over all the tiles' positions, exactly what
  ``nets.style_encoder.style_statistics`` computes on the tiles put side by
  side. Returns ``[B, stats_dim(taps)]`` in the encoder's order.
* ``latent_fn(model)``: ``f(stats) -> latents [B, D]`` (the encoder MLP,
  jit-able); ``latent_descriptor(latents, n_scales)``: the base descriptor of
  latents: each scale's latent L2-normalised, concatenated, L2-normalised (a
  profile's latent is repeated over the scales). The identity (no style) is
  the zero latent, so the direction of a latent from zero is its style.
* ``load_encoder(config, vgg_weights=None)``: the stylizer a config names,
  refused (``RetrievalError``) when the run is missing, has no encoder, or its
  parameters are not the ones the index was built with.
* ``check_encoder(config, model)``: ``RetrievalError`` unless ``model`` is the
  encoder ``config`` was made with; ``check_vgg(model, weights)``: unless
  ``weights`` are the VGG-19 weights the encoder was trained on (its inputs
  are statistics of those features, so other weights give meaningless
  latents).
"""

from __future__ import annotations

from typing import Any, Callable, Mapping

import jax
import jax.numpy as jnp
import numpy as np

from jaxstyle.errors import JaxstyleError, RetrievalError
from jaxstyle.nets import style_encoder as se
from jaxstyle.retrieval.descriptors import DescriptorConfig
from jaxstyle.retrieval.index import weights_fingerprint


def encoder_config(model: Any, scale: int = 256, whiten_dim: int = 64,
                   **overrides) -> DescriptorConfig:
  """The ``kind="encoder"`` descriptor config of a trained stylizer (see the contract)."""
  if "encoder" not in model.params:
    raise RetrievalError(f"{model.path or 'this stylizer'} has no style encoder "
                         f"(latent_source={model.config.latent_source}); train one with "
                         "--latent_source=encoder or both")
  settings = dict(kind="encoder", layers=tuple(model.config.encoder.taps), scales=(int(scale),),
                  dim=int(model.latent_dim), power=1.0, whiten_dim=int(whiten_dim),
                  checkpoint=model.path, checkpoint_fingerprint=model.fingerprint)
  settings.update(overrides)
  return DescriptorConfig(**settings)


def encoder_stats(stats: Mapping[str, tuple[jax.Array, jax.Array]], taps) -> jax.Array:
  """``[B, stats_dim(taps)]`` encoder input from tile-averaged ``(gram, mean)`` per tap."""
  parts = []
  for tap in taps:
    gram, mean = stats[tap]
    second = jnp.diagonal(gram.astype(jnp.float32), axis1=-2, axis2=-1)
    mean = mean.astype(jnp.float32)
    parts += [mean, jnp.sqrt(jnp.maximum(second - mean * mean, 0.0) + se.STD_EPS)]
  return jnp.concatenate(parts, axis=-1)


def latent_fn(model: Any) -> Callable[[jax.Array], jax.Array]:
  """``f(stats [B, S]) -> latents [B, D]``: the encoder MLP of ``model`` (jit-able)."""
  module = se.StyleEncoder(model.config.encoder)
  params = model.params["encoder"]
  return lambda stats: module.apply({"params": params}, stats)


def latent_descriptor(latents: jax.Array | np.ndarray, n_scales: int = 1) -> jax.Array:
  """Base descriptor ``[B, n_scales·D]`` of latents ``[B, D]`` or ``[B, n_scales, D]``."""
  z = jnp.asarray(latents, jnp.float32)
  if z.ndim == 2:
    z = jnp.repeat(z[:, None, :], n_scales, axis=1)
  z = z / jnp.maximum(jnp.linalg.norm(z, axis=-1, keepdims=True), 1e-12)
  z = z.reshape(z.shape[0], -1)
  return z / jnp.maximum(jnp.linalg.norm(z, axis=-1, keepdims=True), 1e-12)


def check_encoder(config: DescriptorConfig, model: Any) -> None:
  """``RetrievalError`` unless ``model`` is the stylizer whose encoder ``config`` names."""
  if model.fingerprint != config.checkpoint_fingerprint:
    raise RetrievalError(
        f"the stylizer {model.path} is not the one this encoder descriptor was made with "
        f"({config.checkpoint}, fingerprint {config.checkpoint_fingerprint[:12]}…, this one "
        f"{model.fingerprint[:12]}…; retrained or another step?); use that checkpoint or rebuild "
        "the index with --rebuild")
  if tuple(model.config.encoder.taps) != tuple(config.layers):
    raise RetrievalError(f"the stylizer {model.path}'s encoder reads taps "
                         f"{','.join(model.config.encoder.taps)}, the descriptor "
                         f"{','.join(config.layers)}; make the config with encoder_config(model)")


def check_vgg(model: Any, weights) -> None:
  """``RetrievalError`` unless ``weights`` are the VGG weights ``model``'s encoder trained on."""
  own = model.weights()
  if own is weights:
    return
  if weights_fingerprint(own) != weights_fingerprint(weights):
    raise RetrievalError(
        f"the encoder descriptor reads VGG features, and {weights.source} are not the VGG weights "
        f"the stylizer {model.path} was trained with ({own.source}); pass those with "
        "--vgg_weights (or leave --vgg_weights out)")


def load_encoder(config: DescriptorConfig, vgg_weights: str | None = None) -> Any:
  """The stylizer an encoder descriptor config names (see the contract)."""
  from jaxstyle.inference import load_stylizer  # pylint: disable=g-import-not-at-top

  try:
    model = load_stylizer(config.checkpoint, vgg_weights=vgg_weights)
  except JaxstyleError as e:
    raise RetrievalError(f"the encoder descriptor's stylizer {config.checkpoint} cannot be "
                         f"loaded ({e}); pass --checkpoint with the run the index was built "
                         "with, or rebuild the index") from None
  check_encoder(config, model)
  return model
