"""Using a trained stylizer: load a run, stylize any size, export it for programs without jaxstyle.

* ``run``: ``load_stylizer(run_dir) -> LoadedStylizer`` (the pure jitted
  ``(params, images, latent) -> images``, ``encode_style``, ``bank_latent``),
  ``params_fingerprint``.
* ``tiling``: ``stylize_image`` (one pass, or image-wide norm statistics and
  exact tiles for large images), ``memory_estimate``, ``stylize_memory``.
* ``export``: ``export_stylizer`` / ``load_exported`` (``jax.export``, symbolic
  batch, height and width).
"""

from __future__ import annotations

from jaxstyle.inference.export import export_stylizer, load_exported
from jaxstyle.inference.run import (MIN_CONTENT_SIDE, MIN_STYLE_SIDE, LoadedStylizer, load_stylizer,
                                    params_fingerprint)
from jaxstyle.inference.tiling import (image_statistics, memory_estimate, stylize_image,
                                       stylize_memory)

__all__ = ["MIN_CONTENT_SIDE", "MIN_STYLE_SIDE", "LoadedStylizer", "export_stylizer",
           "image_statistics", "load_exported", "load_stylizer", "memory_estimate", "params_fingerprint",
           "stylize_image", "stylize_memory"]
