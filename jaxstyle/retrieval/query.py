"""Querying an index: images (or, later, personal style profiles) to the top-k library files.

A query image is embedded with the index's own descriptor config, mapped into
its search space with the stored whitening, and searched exactly
(``topk_search``). The VGG weights must be the ones the index was built with
(same fingerprint).
"""

from __future__ import annotations

from typing import Sequence

import numpy as np

from jaxstyle import images as images_lib
from jaxstyle import vgg
from jaxstyle.retrieval.descriptors import Embedder
from jaxstyle.errors import RetrievalError
from jaxstyle.retrieval.index import StyleIndex, weights_fingerprint
from jaxstyle.retrieval.search import topk_search

PROFILE_SUFFIX = ".style"


def query_index(index: StyleIndex, weights: vgg.VGGWeights, image_paths: Sequence[str],
                k: int = 10, batch_size: int = 8, chunk_size: int = 65_536
                ) -> tuple[np.ndarray, np.ndarray]:
  """Top-k library files for each query image.

  Args:
    index: a complete index.
    weights: the VGG-19 weights the index was built with.
    image_paths: query image files.
    k: results per query (clamped to the index size).
    batch_size: tiles per VGG batch.
    chunk_size: index rows per matrix product (see ``topk_search``).

  Returns:
    ``(scores [Q, k] float32, indices [Q, k] int64)`` into ``index.paths``,
    best first.

  Raises:
    RetrievalError: VGG weights differ from the index's.
    ImageError: a query image cannot be read.
  """
  fingerprint = weights_fingerprint(weights)
  if index.vgg.get("fingerprint") != fingerprint:
    raise RetrievalError(
        f"the index was built with other VGG weights ({index.vgg.get('source')}) than "
        f"{weights.source}; pass the same --vgg_weights or rebuild the index")
  ims = [images_lib.load_image(p, max(index.config.scales), side="shorter") for p in image_paths]
  (base,) = Embedder(weights, index.config, batch_size=batch_size).embed(ims)
  return topk_search(index.query_descriptors(base), index.search, k, chunk_size)


def query_profile(index: StyleIndex, profile_path: str, k: int = 10):
  """Query by a personal ``.style`` profile: not available yet.

  Profiles exist (``experiments/personalize.py``), but an index must be built
  with the style encoder's descriptor (``--descriptor encoder``, not built
  yet) for a profile's latent to be comparable, so this always raises
  ``RetrievalError``.
  """
  raise RetrievalError(
      f"{profile_path}: querying by a {PROFILE_SUFFIX} profile is not available yet: it needs an "
      "index built with the style encoder's descriptor, which this build does not have; query "
      "with --image (for example an image stylized with the profile)")
