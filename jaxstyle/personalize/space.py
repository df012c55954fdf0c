"""Where styles live: the style space of a trained stylizer's encoder, fitted on a painting collection.

Contract:

* ``encode_files(model, paths, size)``: the style encoder's latents
  ``[n, D]`` of the readable images among ``paths`` (shorter side resized to
  ``size``) and the ``(path, reason)`` of the unreadable ones, which are
  skipped.
* ``collection_files(model, include_unseen=True)``: the default collection
  of a run: its bank styles' files, the paintings its encoder trained on and
  (unless ``include_unseen`` is false: evaluations whose targets are the
  held-out paintings) its held-out ones (``config.json``'s ``style_files``,
  ``encoder_style_files``, ``unseen_style_files``), those that exist here.
* ``build_space(model, paths, dims, size)``: encodes the collection and fits
  ``profile.fit_style_space`` (PCA, whitened coordinates: the collection has
  unit variance along each axis, the origin is its mean style) with
  ``min(dims, effective_rank(latents))`` dimensions: a trained encoder may
  map a whole collection onto fewer directions than asked for (the quick
  run's: 3 of 64, BUILD_NOTES.md), and whitening a direction with no spread
  would blow noise up.
* ``effective_rank(latents)``: the number of principal directions whose
  singular value is at least ``RANK_TOL`` times the largest.
* Errors: fewer than ``dims + 1`` readable images (``ConfigError``, naming
  the count and the fix).
"""

from __future__ import annotations

import json
import os
from typing import Callable, Sequence

import jax.numpy as jnp
import numpy as np

from jaxstyle import images as imlib
from jaxstyle.errors import ConfigError
from jaxstyle.personalize.profile import StyleSpace, fit_style_space

RANK_TOL = 1e-2


def effective_rank(latents: np.ndarray) -> int:
  """Principal directions of ``latents`` [n, D] with singular value >= RANK_TOL × the largest."""
  x = np.asarray(latents, np.float64)
  s = np.linalg.svd(x - x.mean(axis=0), compute_uv=False)
  return int(np.sum(s >= RANK_TOL * s[0])) if s.size and s[0] > 0 else 0


def encode_files(model, paths: Sequence[str], size: int,
                 progress: Callable[[int, int], None] | None = None
                 ) -> tuple[np.ndarray, list[tuple[str, str]]]:
  """(latents [n, D], skipped [(path, reason)]) of ``paths`` (see the module contract)."""
  from jaxstyle.inference import MIN_STYLE_SIDE  # pylint: disable=g-import-not-at-top

  latents, skipped = [], []
  for i, p in enumerate(paths):
    try:
      im = imlib.load_image(p, size, side="shorter", min_side=MIN_STYLE_SIDE)
    except imlib.ImageError as e:
      skipped.append((os.fspath(p), str(e)))
      continue
    latents.append(np.asarray(model.encode_style(model.params, jnp.asarray(im)[None]))[0])
    if progress is not None:
      progress(i + 1, len(paths))
  d = model.latent_dim
  return (np.stack(latents).astype(np.float32) if latents else np.zeros((0, d), np.float32)), skipped


def collection_files(model, include_unseen: bool = True) -> list[str]:
  """The run's own paintings and bank styles that exist here (see the module contract)."""
  try:
    with open(os.path.join(model.path, "config.json")) as f:
      record = json.load(f)
  except (OSError, ValueError, RecursionError):  # RecursionError: JSON nested too deep
    return []
  files = []
  keys = ("style_files", "encoder_style_files") + (("unseen_style_files",) if include_unseen else ())
  for key in keys:
    listed = record.get(key) if isinstance(record, dict) else None  # a damaged file lists none
    files += [p for p in (listed if isinstance(listed, list) else [])
              if isinstance(p, str) and os.path.isfile(p)]
  return list(dict.fromkeys(files))


def build_space(model, paths: Sequence[str], dims: int, size: int = 256,
                progress: Callable[[int, int], None] | None = None, source: str = "") -> StyleSpace:
  """The style space of ``model`` over the images ``paths`` (see the module contract)."""
  latents, _ = encode_files(model, paths, size, progress)
  if latents.shape[0] < dims + 1:
    raise ConfigError(f"a {dims}-dimensional style space needs at least {dims + 1} readable style "
                      f"images, got {latents.shape[0]}; pass more with --space_styles or lower "
                      "--space_dims")
  rank = effective_rank(latents)
  if rank < 1:
    raise ConfigError(f"the style encoder maps all {latents.shape[0]} style images to one latent; "
                      "pass different --space_styles")
  return fit_style_space(latents, min(dims, rank),
                         source=source or f"{latents.shape[0]} style images")
