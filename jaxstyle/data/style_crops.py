"""Seeded per-example style crops, with each style's target Grams, as batch inputs of a train step.

Contract:

* ``StyleCrops(images, grams, crop_size, global_batch_size, seed)`` holds N
  square style images (float32 ``[N, S, S, 3]`` in [0, 1], kept as uint8) and
  their target Grams (``{layer: [N, C, C]}``, NumPy float32, e.g.
  ``jaxstyle.train.style_grams`` of the whole images), any number of styles
  (hundreds of paintings take ``N · S² · 3`` bytes plus the Grams).
* ``batch(step)`` returns this process's share of global batch ``step``:
  ``{"style": float32 [b, crop, crop, 3], "style_grams": {layer: [b, C, C]}}``
  with ``b = global_batch_size / process_count``: for every example of the
  global batch one style, uniform over the N (or drawn with ``weights``, one
  per style, normalised), and a crop at a uniform offset.
* Determinism: the global draw is a function of ``(seed, step)`` only
  (``np.random.default_rng([seed, step, 2])``; ``PhotoCrops`` uses stream 1),
  and process ``process_index`` gets the contiguous slice ``process_index``,
  so processes together read the one-process batch and a resumed run reads
  what an uninterrupted run reads.
* Errors: ``DataError`` for images that are not one stacked RGB array, Grams
  that do not match them, or a crop larger than the images; ``ConfigError``
  for a batch size the processes cannot split.
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np

from jaxstyle.data.batches import to_float_nhwc
from jaxstyle.errors import ConfigError, DataError


class StyleCrops:
  """Seeded crops of a style set with their Grams (see the module docstring)."""

  def __init__(self, images: np.ndarray, grams: Mapping[str, np.ndarray], crop_size: int,
               global_batch_size: int, seed: int, *, weights=None, process_index: int = 0,
               process_count: int = 1):
    images = np.asarray(images)
    if images.ndim != 4 or images.shape[-1] != 3 or images.shape[1] != images.shape[2]:
      raise DataError(f"style images must be stacked squares [N, S, S, 3], got shape {images.shape}; "
                      "load them with jaxstyle.data.load_styles(square=True)")
    n, side = images.shape[0], images.shape[1]
    bad = {k: np.shape(v) for k, v in grams.items() if np.ndim(v) != 3 or np.shape(v)[0] != n}
    if not grams or bad:
      raise DataError(f"style Grams must be {{layer: [{n}, C, C]}} for the {n} style images, got "
                      f"{bad or 'none'}")
    if crop_size > side:
      raise DataError(f"style images of {side}x{side} pixels are smaller than the {crop_size}x"
                      f"{crop_size} crops; load the styles at least at the crop size")
    if global_batch_size <= 0 or global_batch_size % process_count:
      raise ConfigError(f"batch size {global_batch_size} does not split over {process_count} "
                        "processes")
    if weights is not None:
      weights = np.asarray(weights, np.float64)
      if (weights.shape != (n,) or not np.all(np.isfinite(weights)) or weights.min() < 0
          or not weights.sum() > 0):
        raise ConfigError(f"style weights must be {n} finite non-negative numbers, not all 0")
      self._cdf = np.cumsum(weights / weights.sum())
    else:
      self._cdf = None
    self._images = np.round(np.clip(images, 0, 1) * 255).astype(np.uint8)
    self._grams = {k: np.asarray(v, np.float32) for k, v in grams.items()}
    self.num_styles, self.side, self.crop_size = n, side, int(crop_size)
    self.global_batch_size, self.seed = int(global_batch_size), seed
    self.local_batch_size = self.global_batch_size // process_count
    self.process_index = process_index

  def global_draws(self, step: int) -> tuple[np.ndarray, np.ndarray]:
    """(style index [B], [top, left] [B, 2]) of every example of global batch ``step``."""
    u = np.random.default_rng([self.seed, step, 2]).random((self.global_batch_size, 3))
    if self._cdf is None:
      idx = np.floor(u[:, 0] * self.num_styles).astype(np.int64)
    else:
      idx = np.searchsorted(self._cdf, u[:, 0], side="right")
    idx = np.minimum(idx, self.num_styles - 1)
    offsets = np.floor(u[:, 1:] * (self.side - self.crop_size + 1)).astype(np.int64)
    return idx, offsets

  def batch(self, step: int) -> dict:
    """This process's ``{"style": [b, crop, crop, 3], "style_grams": {layer: [b, C, C]}}``."""
    idx, offsets = self.global_draws(step)
    lo = self.process_index * self.local_batch_size
    sel = slice(lo, lo + self.local_batch_size)
    c = self.crop_size
    crops = np.stack([self._images[i, t:t + c, l:l + c] for i, (t, l) in zip(idx[sel], offsets[sel])])
    return {"style": to_float_nhwc(crops),
            "style_grams": {k: v[idx[sel]] for k, v in self._grams.items()}}
