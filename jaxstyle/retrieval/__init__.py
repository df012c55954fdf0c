"""Style retrieval: style descriptors, an on-disk index, exact top-k search.

An image becomes a *base descriptor* (``descriptors``: tiles per scale, VGG-19
Gram/mean statistics, optionally a count sketch, ``sketch``; or a trained stylizer's style-encoder
latent, ``encoder``), a library's base
descriptors are PCA-whitened into *search descriptors* (``whiten``), stored in
one ``.npz`` index (``index``) that is built incrementally and resumably
(``build``), and searched by cosine similarity, exactly (``search``,
``query``). Every name below is importable as ``jaxstyle.retrieval.NAME``.
"""

from __future__ import annotations

from jaxstyle.retrieval.build import BuildReport, build_index, partial_path
from jaxstyle.retrieval.descriptors import (DESCRIPTOR_KINDS, PRESETS, DescriptorConfig, Embedder,
                                            descriptor_dim, descriptor_fn, get_config,
                                            image_views, stats_fn, tile_starts)
from jaxstyle.errors import DescriptorError, RetrievalError
from jaxstyle.retrieval.encoder import (check_encoder, encoder_config, encoder_stats,
                                        latent_descriptor, load_encoder)
from jaxstyle.retrieval.index import (INDEX_FORMAT, INDEX_VERSION, StyleIndex, check_compatible,
                                      load_index, save_index, weights_fingerprint)
from jaxstyle.retrieval.query import PROFILE_SUFFIX, query_index, query_profile
from jaxstyle.retrieval.search import leave_one_out, topk_search
from jaxstyle.retrieval.sketch import count_sketch, sketch_params
from jaxstyle.retrieval.whiten import Whitening, apply_whitening, fit_whitening

__all__ = [
    "BuildReport", "DESCRIPTOR_KINDS", "DescriptorConfig", "DescriptorError", "Embedder",
    "INDEX_FORMAT", "INDEX_VERSION", "PRESETS", "PROFILE_SUFFIX", "RetrievalError", "StyleIndex",
    "Whitening", "apply_whitening", "build_index", "check_compatible", "count_sketch",
    "check_encoder", "descriptor_dim", "descriptor_fn", "encoder_config", "encoder_stats",
    "fit_whitening", "latent_descriptor", "load_encoder", "get_config", "image_views",
    "leave_one_out", "load_index", "partial_path", "query_index", "query_profile", "save_index",
    "sketch_params", "stats_fn", "tile_starts", "topk_search", "weights_fingerprint",
]
