"""Querying an index: images or personal style profiles to the top-k library files.

A query image is embedded with the index's own descriptor config, mapped into
its search space with the stored whitening, and searched exactly
(``topk_search``). The VGG weights must be the ones the index was built with
(same fingerprint); an ``encoder`` index also needs its stylizer (loaded from
the config's ``checkpoint`` unless given, and checked by fingerprint).

A ``.style`` profile (``jaxstyle.personalize``) is a style latent of a
stylizer, so it queries an ``encoder`` index of the same checkpoint directly:
its latent becomes the base descriptor (``encoder.latent_descriptor``), with no
image and no VGG pass. Profiles of another checkpoint, and indexes of another
descriptor kind, are refused with the way out.
"""

from __future__ import annotations

from typing import Sequence

import numpy as np

from jaxstyle import images as images_lib
from jaxstyle import vgg
from jaxstyle.errors import RetrievalError
from jaxstyle.retrieval import encoder as enc
from jaxstyle.retrieval.descriptors import Embedder
from jaxstyle.retrieval.index import StyleIndex, weights_fingerprint
from jaxstyle.retrieval.search import topk_search

PROFILE_SUFFIX = ".style"


def query_index(index: StyleIndex, weights: vgg.VGGWeights, image_paths: Sequence[str],
                k: int = 10, batch_size: int = 8, chunk_size: int = 65_536, encoder=None
                ) -> tuple[np.ndarray, np.ndarray]:
  """Top-k library files for each query image.

  Args:
    index: a complete index.
    weights: the VGG-19 weights the index was built with.
    image_paths: query image files.
    k: results per query (clamped to the index size).
    batch_size: tiles per VGG batch.
    chunk_size: index rows per matrix product (see ``topk_search``).
    encoder: an ``encoder`` index's stylizer (default: ``load_encoder``).

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
  if index.config.kind == "encoder" and encoder is None:
    encoder = enc.load_encoder(index.config)
  ims = [images_lib.load_image(p, max(index.config.scales), side="shorter") for p in image_paths]
  (base,) = Embedder(weights, index.config, batch_size=batch_size, encoder=encoder).embed(ims)
  return topk_search(index.query_descriptors(base), index.search, k, chunk_size)


def query_profile(index: StyleIndex, profile_path: str, k: int = 10,
                  chunk_size: int = 65_536) -> tuple[np.ndarray, np.ndarray]:
  """Top-k library files for a personal ``.style`` profile (see the module docstring).

  Returns:
    ``(scores [1, k], indices [1, k])`` into ``index.paths``, best first.

  Raises:
    RetrievalError: the index is not an ``encoder`` index.
    ProfileError: the profile is unreadable or made for another checkpoint.
  """
  from jaxstyle.personalize import profile as profile_lib  # pylint: disable=g-import-not-at-top

  config = index.config
  if config.kind != "encoder":
    raise RetrievalError(
        f"{profile_path}: a {PROFILE_SUFFIX} profile is a style latent of a stylizer, and this "
        f"index holds {config.kind} descriptors; build an index with `retrieve.py index "
        "--descriptor encoder --checkpoint RUN` (RUN: the profile's stylizer)")
  profile = profile_lib.load_profile(profile_path)
  profile_lib.check_profile_for(profile, latent_dim=config.dim,
                                fingerprint=config.checkpoint_fingerprint, path=profile_path)
  base = np.asarray(enc.latent_descriptor(profile.latent[None], len(config.scales)))
  return topk_search(index.query_descriptors(base), index.search, k, chunk_size)
