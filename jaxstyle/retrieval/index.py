"""The style index: an in-memory ``StyleIndex`` and its ``.npz`` file format.

Index file (``save_index`` / ``load_index``): one ``.npz`` with no object
arrays, read with ``allow_pickle=False``:

* ``meta``: 0-d string, JSON: ``{"format": "jaxstyle-style-index",
  "version": 1, "descriptor": DescriptorConfig dict, "vgg": {"fingerprint",
  "source", "preprocessing"}, "library", "complete", "failed": [[relpath,
  message], ...], "count", "descriptor_dim", "whitening": {"dim"} or null}``;
* ``paths`` [N] str (POSIX paths relative to the library root, sorted),
  ``sha256`` [N] str, ``size`` [N] int64, ``mtime_ns`` [N] int64;
* ``base`` [N, D] float32 base descriptors; ``search`` [N, d] float32 search
  descriptors;
* ``whiten_mean`` [D] and ``whiten_proj`` [D, d] float32 (empty when the index
  is not whitened).

Writes go to a temporary file beside the target and are renamed over it, so a
failed or interrupted write never replaces a good index. Unusable files
(missing, corrupt, foreign, another version, inconsistent shapes) raise
``RetrievalError``.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import os

import numpy as np

from jaxstyle import config as cfglib
from jaxstyle import vgg
from jaxstyle.errors import JaxstyleError
from jaxstyle.fileio import atomic_open
from jaxstyle.retrieval.descriptors import DescriptorConfig, descriptor_dim
from jaxstyle.errors import RetrievalError
from jaxstyle.retrieval.whiten import Whitening, apply_whitening, fit_whitening

INDEX_FORMAT = "jaxstyle-style-index"
INDEX_VERSION = 1


def weights_fingerprint(weights: vgg.VGGWeights) -> str:
  """SHA-256 over the layer names, shapes and float32 bytes of the weights."""
  h = hashlib.sha256(weights.preprocessing.encode())
  for name in weights.layers:
    for kind in ("kernel", "bias"):
      a = np.ascontiguousarray(np.asarray(weights.params[name][kind], np.float32))
      h.update(f"{name}/{kind}{a.shape}".encode())
      h.update(a.tobytes())
  return h.hexdigest()


@dataclasses.dataclass
class StyleIndex:
  """An in-memory index.

  Attributes:
    config: the descriptor config.
    vgg: ``{"fingerprint", "source", "preprocessing"}`` of the VGG weights.
    paths: relative POSIX paths, sorted.
    sha256, size, mtime_ns: per file.
    base: ``[N, D]`` float32 base descriptors.
    whitening: fitted whitening or ``None``.
    search: ``[N, d]`` float32 search descriptors.
    library: library root when built (informational).
    failed: ``[(relpath, message)]`` unreadable files of the last build.
    complete: ``False`` for a resumable partial index.
  """

  config: DescriptorConfig
  vgg: dict
  paths: list
  sha256: list
  size: np.ndarray
  mtime_ns: np.ndarray
  base: np.ndarray
  whitening: Whitening | None = None
  search: np.ndarray | None = None
  library: str = ""
  failed: list = dataclasses.field(default_factory=list)
  complete: bool = True

  def __len__(self) -> int:
    return len(self.paths)

  def refit(self) -> "StyleIndex":
    """Refits the whitening on ``base`` and recomputes ``search``."""
    self.whitening = fit_whitening(self.base, self.config)
    self.search = apply_whitening(self.base, self.whitening)
    return self

  def query_descriptors(self, base: np.ndarray) -> np.ndarray:
    """Maps query base descriptors ``[Q, D]`` into the search space ``[Q, d]``."""
    return apply_whitening(base, self.whitening)


def _meta(index: StyleIndex) -> dict:
  return {
      "format": INDEX_FORMAT, "version": INDEX_VERSION,
      "descriptor": cfglib.to_dict(index.config), "vgg": dict(index.vgg), "library": index.library,
      "complete": bool(index.complete), "failed": [list(f) for f in index.failed],
      "count": len(index), "descriptor_dim": int(index.base.shape[1]),
      "whitening": None if index.whitening is None else {"dim": index.whitening.dim},
  }


def save_index(index: StyleIndex, path: str) -> None:
  """Writes ``index`` to ``path`` atomically (temporary file + rename).

  ``search`` and ``whitening`` are written as they are; when ``search`` is
  ``None`` the index is ``refit`` first.
  """
  if index.search is None:
    index.refit()
  d = index.base.shape[1]
  arrays = {
      "meta": np.asarray(json.dumps(_meta(index), sort_keys=True)),
      "paths": np.asarray(index.paths, dtype=np.str_).reshape(-1),
      "sha256": np.asarray(index.sha256, dtype=np.str_).reshape(-1),
      "size": np.asarray(index.size, np.int64).reshape(-1),
      "mtime_ns": np.asarray(index.mtime_ns, np.int64).reshape(-1),
      "base": np.asarray(index.base, np.float32).reshape(-1, d),
      "search": np.asarray(index.search, np.float32),
      "whiten_mean": (np.zeros((0,), np.float32) if index.whitening is None
                      else index.whitening.mean),
      "whiten_proj": (np.zeros((0, 0), np.float32) if index.whitening is None
                      else index.whitening.proj),
  }
  with atomic_open(path) as f:
    np.savez(f, **arrays)


def load_index(path: str) -> StyleIndex:
  """Reads an index written by ``save_index``; ``RetrievalError`` if unusable."""
  if not os.path.exists(path):
    raise RetrievalError(f"{path}: no such index file; build one with "
                         f"`experiments/retrieve.py index --library DIR --out {path}`")
  advice = "rebuild it with `experiments/retrieve.py index --rebuild ...`"
  try:
    with np.load(path, allow_pickle=False) as data:
      arrays = {k: data[k] for k in data.files}
    if not all(isinstance(a, np.ndarray) for a in arrays.values()):  # np.load: non-.npy as bytes
      raise ValueError("a member is not a .npy array")
    meta = json.loads(str(arrays["meta"]))
    if not isinstance(meta, dict):
      raise ValueError(f"its meta is a JSON {type(meta).__name__}, not an object")
  except Exception as e:  # noqa: BLE001 - zip/npz/json errors all mean "corrupt"
    raise RetrievalError(f"{path}: not a readable style index ({type(e).__name__}: {e}); "
                         f"{advice}") from None
  if meta.get("format") != INDEX_FORMAT:
    raise RetrievalError(f"{path}: not a jaxstyle style index (format {meta.get('format')!r}); "
                         f"{advice}")
  if meta.get("version") != INDEX_VERSION:
    raise RetrievalError(f"{path}: index version {meta.get('version')} is not supported "
                         f"(expected {INDEX_VERSION}); {advice}")
  try:
    config = cfglib.validate(cfglib.from_dict(DescriptorConfig, meta["descriptor"]))
    for key, ndim in (("paths", 1), ("sha256", 1), ("size", 1), ("mtime_ns", 1), ("base", 2),
                      ("search", 2), ("whiten_mean", 1), ("whiten_proj", 2)):
      if arrays[key].ndim != ndim:
        raise ValueError(f"{key} has shape {arrays[key].shape}, expected rank {ndim}")
    if not isinstance(meta.get("vgg", {}), dict) or not isinstance(meta.get("failed", []), list):
      raise ValueError("meta 'vgg' must be an object and 'failed' a list")
    n = len(arrays["paths"])
    base = arrays["base"]
    for key in ("sha256", "size", "mtime_ns", "base", "search"):
      if arrays[key].shape[0] != n:
        raise ValueError(f"{key} has {arrays[key].shape[0]} rows for {n} paths")
    if n and base.shape[1] != descriptor_dim(config):
      raise ValueError(f"descriptor dim {base.shape[1]} != {descriptor_dim(config)} of its config")
    whitening = None
    if arrays["whiten_proj"].size:
      whitening = Whitening(mean=arrays["whiten_mean"], proj=arrays["whiten_proj"])
      if whitening.proj.shape[0] != base.shape[1] or arrays["search"].shape[1] != whitening.dim \
          or whitening.mean.shape != (base.shape[1],):
        raise ValueError("whitening shapes do not match the descriptors")
    if not (np.all(np.isfinite(base)) and np.all(np.isfinite(arrays["search"]))):
      raise ValueError("non-finite descriptors")
    return StyleIndex(
        config=config, vgg=dict(meta.get("vgg", {})), paths=[str(p) for p in arrays["paths"]],
        sha256=[str(h) for h in arrays["sha256"]], size=arrays["size"],
        mtime_ns=arrays["mtime_ns"], base=base.astype(np.float32), whitening=whitening,
        search=arrays["search"].astype(np.float32), library=str(meta.get("library", "")),
        failed=[tuple(f) for f in meta.get("failed", [])], complete=bool(meta.get("complete")))
  except (KeyError, ValueError, TypeError, JaxstyleError) as e:
    raise RetrievalError(f"{path}: corrupt style index ({type(e).__name__}: {e}); {advice}") \
        from None


def check_compatible(index: StyleIndex, config: DescriptorConfig, fingerprint: str,
                     path: str) -> None:
  """Raises ``RetrievalError`` if ``index`` was built with another config/VGG."""
  if index.config != config:
    theirs, ours = cfglib.to_dict(index.config), cfglib.to_dict(config)
    diff = {k: (theirs[k], ours[k]) for k in ours if theirs.get(k) != ours[k]}
    raise RetrievalError(
        f"{path} was built with another descriptor config (index vs requested: {diff}); "
        "use the same --descriptor settings, pass --rebuild to replace it, or choose another --out")
  if index.vgg.get("fingerprint") != fingerprint:
    raise RetrievalError(
        f"{path} was built with other VGG weights ({index.vgg.get('source')}, fingerprint "
        f"{str(index.vgg.get('fingerprint'))[:12]}…) than the ones given now "
        f"(fingerprint {fingerprint[:12]}…); pass the same --vgg_weights or rebuild the index")
