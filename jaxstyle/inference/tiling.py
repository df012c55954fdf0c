"""Stylizing images of any size in bounded memory: image-wide norm statistics, then exact tiles.

Contract of ``stylize_image(config, g_params, image, latent, ...)``:

* ``image``: float32 RGB [H, W, 3] in [0, 1], any ``H, W >= min_image_size``;
  ``latent`` [latent_dim]. Returns float32 [H, W, 3] in [0, 1].
* Images with ``H * W <= whole_pixels`` run in one pass (the plain generator).
* Larger images run in two phases:
  1. **Statistics**: the generator runs once on the image resized so that
     its longer side is at most ``stats_side`` (unchanged if it already fits)
     and records every instance norm's mean and variance
     (``jaxstyle.nets.stylizer.NORM_STATS``).
  2. **Tiles**: the image is cut into a grid of ``tile`` x ``tile`` cores
     (``tile`` a multiple of the generator's ``multiple``); each core runs with
     ``halo = receptive_radius`` pixels of real context on every side (rounded
     up to the multiple, clipped at the image border) and the recorded
     statistics imposed on every norm. With imposed statistics the generator
     is local, so each core equals the whole-image output with those
     statistics: there are no seams and nothing to blend. When the image fits
     ``stats_side``, the statistics are the image's own and the tiled output
     equals the one-pass output (up to float summation order).
     Per-tile statistics would instead give each tile its own contrast and
     colour cast (flat tiles such as sky are amplified into blotches).
* Memory: one generator pass at ``stats_side`` (longer side) plus one at
  ``(tile + 2 halo)²``, plus the input and output images on the host;
  ``memory_estimate`` gives the activation bytes of a pass, ``stylize_memory``
  the whole call's (passes, host images and the runtime).
* Tiles of each distinct shape compile once (at most nine shapes per grid).
"""

from __future__ import annotations

import functools
import math
from collections.abc import Callable

import jax
import jax.numpy as jnp
import numpy as np

from jaxstyle.errors import StylizerInputError
from jaxstyle.nets import stylizer as st

WHOLE_PIXELS = 1024 * 1024
STATS_SIDE = 1024
TILE = 512


@functools.lru_cache(maxsize=8)
def _passes(config: st.StylizerConfig) -> tuple[Callable, Callable, Callable]:
  """Jitted (plain pass, statistics pass, pass with imposed statistics) of ``config``'s generator."""
  module = st.Stylizer(config)

  def plain(params, x, z):
    return module.apply({"params": params}, x, z)

  def record(params, x, z):
    _, variables = module.apply({"params": params}, x, z, mutable=[st.NORM_STATS])
    return variables[st.NORM_STATS]

  def imposed(params, stats, x, z):
    return module.apply({"params": params, st.NORM_STATS: stats}, x, z)

  return jax.jit(plain), jax.jit(record), jax.jit(imposed)


def halo(config: st.StylizerConfig) -> int:
  """Context pixels around each tile core: ``receptive_radius`` rounded up to ``config.multiple``."""
  m = config.multiple
  return int(math.ceil(st.receptive_radius(config) / m) * m)


def memory_estimate(config: st.StylizerConfig, height: int, width: int) -> int:
  """Bytes of the largest activations of one generator pass at ``height x width`` (batch 1, float32).

  Counts the widest full-resolution stage's maps a pass keeps alive at once
  (about three) per scale; an estimate for refusing sizes, not an exact figure.
  """
  total = 0
  for k, c in enumerate(config.widths):
    total += 3 * c * math.ceil(height / 2 ** k) * math.ceil(width / 2 ** k) * 4
  return total + 2 * height * width * 3 * 4


def stylize_memory(config: st.StylizerConfig, height: int, width: int, *,
                   whole_pixels: int = WHOLE_PIXELS, tile: int = TILE,
                   stats_side: int = STATS_SIDE) -> int:
  """Estimated peak bytes of ``stylize_image`` on a ``height x width`` image (for refusing sizes).

  The largest pass (``memory_estimate``: the whole image, or the statistics
  pass and one tile with its halo) + four float32 copies of the image on the
  host (input, output, colour post-processing, saving) + 512 MiB of runtime.
  """
  host = 4 * height * width * 3 * 4 + 512 * 2 ** 20
  if height * width <= whole_pixels:
    return host + memory_estimate(config, height, width)
  scale = min(1.0, stats_side / max(height, width))
  side = tile + 2 * halo(config)
  return host + max(memory_estimate(config, round(height * scale), round(width * scale)),
                    memory_estimate(config, min(side, height), min(side, width)))


def image_statistics(config: st.StylizerConfig, g_params: dict, image: np.ndarray, latent: jax.Array,
                     stats_side: int = STATS_SIDE) -> dict:
  """The norm statistics of ``image`` (resized to fit ``stats_side``), ``{layer: {"mean", "var"}}``."""
  h, w = image.shape[:2]
  x = jnp.asarray(image, jnp.float32)[None]
  scale = stats_side / max(h, w)
  if scale < 1:
    size = (1, max(st.min_image_size(config), round(h * scale)),
            max(st.min_image_size(config), round(w * scale)), 3)
    x = jax.image.resize(x, size, "linear", antialias=True)
  return _passes(config)[1](g_params, x, latent)


def _starts(n: int, tile: int) -> list[int]:
  return list(range(0, n, tile))


def stylize_image(config: st.StylizerConfig, g_params: dict, image: np.ndarray, latent: jax.Array, *,
                  whole_pixels: int = WHOLE_PIXELS, tile: int = TILE, stats_side: int = STATS_SIDE,
                  progress: Callable[[int, int], None] | None = None) -> np.ndarray:
  """Stylizes one image of any size (see the module contract).

  Args:
    config, g_params: the generator.
    image: float32 [H, W, 3] in [0, 1].
    latent: [latent_dim].
    whole_pixels: images with at most this many pixels run in one pass.
    tile: core side of the tiles (a multiple of ``config.multiple``).
    stats_side: longer side of the statistics pass.
    progress: called with (tiles done, tiles in all) after each tile.

  Raises:
    StylizerInputError: a bad image shape, a too small image or a bad tile size.
  """
  image = np.asarray(image, np.float32)
  if image.ndim != 3 or image.shape[-1] != 3:
    raise StylizerInputError(f"stylize_image takes one RGB image [H, W, 3], got shape {image.shape}")
  if tile < config.multiple or tile % config.multiple:
    raise StylizerInputError(f"tile={tile} must be a positive multiple of {config.multiple}")
  h, w = image.shape[:2]
  latent = jnp.asarray(latent, jnp.float32).reshape(1, -1)
  plain, _, imposed = _passes(config)
  if h * w <= whole_pixels:
    return np.asarray(plain(g_params, jnp.asarray(image)[None], latent)[0])
  stats = image_statistics(config, g_params, image, latent, stats_side)
  pad = halo(config)
  out = np.empty_like(image)
  grid = [(y, x) for y in _starts(h, tile) for x in _starts(w, tile)]
  for i, (y0, x0) in enumerate(grid):
    y1, x1 = min(y0 + tile, h), min(x0 + tile, w)
    ry0, rx0 = max(0, y0 - pad), max(0, x0 - pad)
    ry1, rx1 = min(h, y1 + pad), min(w, x1 + pad)
    region = jnp.asarray(image[ry0:ry1, rx0:rx1])[None]
    res = imposed(g_params, stats, region, latent)[0]
    out[y0:y1, x0:x1] = np.asarray(res[y0 - ry0:y1 - ry0, x0 - rx0:x1 - rx0])
    if progress is not None:
      progress(i + 1, len(grid))
  return out
