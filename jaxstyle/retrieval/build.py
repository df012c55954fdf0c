"""Incremental, resumable building of a style index from a folder of images.

``build_index(library, out, ...)`` indexes every image file under
``library`` (``images.iter_image_files``: recursive, hidden files skipped):

* **Incremental.** A file whose relative path, size and mtime match the index
  at ``out`` (or the partial file) is reused without being read; otherwise
  its SHA-256 is computed and a stored descriptor with the same content hash
  is reused (moved, touched or duplicated files are not re-embedded); only new
  or changed content is embedded. Files no longer present are dropped.
  Unreadable files are skipped, listed in ``BuildReport.failed`` and in the
  index meta, and retried next time.
* **Resumable.** Every ``save_every`` newly embedded images, the descriptors so
  far are written atomically to ``partial_path(out)`` (the index format with
  ``complete=false``); the next call picks them up. ``out`` is replaced only
  once, atomically, by the complete index, and the partial file is removed.
"""

from __future__ import annotations

import dataclasses
import os
from typing import Callable, Sequence

import numpy as np

from jaxstyle import images as images_lib
from jaxstyle import vgg
from jaxstyle.fileio import file_sha256
from jaxstyle.retrieval.descriptors import DescriptorConfig, Embedder, descriptor_dim, get_config
from jaxstyle.retrieval.encoder import load_encoder
from jaxstyle.errors import RetrievalError
from jaxstyle.retrieval.index import (StyleIndex, check_compatible, load_index, save_index,
                                      weights_fingerprint)


def partial_path(out: str) -> str:
  """Where ``build_index`` keeps its resumable partial index."""
  return out + ".partial"


@dataclasses.dataclass
class BuildReport:
  """What ``build_index`` did (counts of files)."""

  total: int = 0
  embedded: int = 0
  reused: int = 0
  resumed: int = 0
  dropped: int = 0
  failed: list = dataclasses.field(default_factory=list)


@dataclasses.dataclass(frozen=True)
class _Record:
  """One indexed file: content hash, size, mtime and base descriptor."""

  sha256: str
  size: int
  mtime_ns: int
  base: np.ndarray


@dataclasses.dataclass(frozen=True)
class _Todo:
  """A file whose content has no descriptor yet."""

  path: str
  rel: str
  sha256: str
  size: int
  mtime_ns: int


def _relpath(path: str, library: str) -> str:
  return os.path.relpath(path, library).replace(os.sep, "/")


def _library_files(library: str) -> list[str]:
  files = images_lib.iter_image_files(library)
  if not files:
    raise RetrievalError(f"{library}: no image files found (looked for "
                         f"{', '.join(images_lib.IMAGE_EXTENSIONS)}, recursively)")
  return files


def _load_compatible(path: str, config: DescriptorConfig, fingerprint: str, strict: bool
                     ) -> StyleIndex | None:
  """The index at ``path`` if it exists and matches; else ``None`` (or raises if ``strict``)."""
  if not os.path.exists(path):
    return None
  try:
    index = load_index(path)
    check_compatible(index, config, fingerprint, path)
    return index
  except RetrievalError:
    if strict:
      raise
    return None


def _known(sources: Sequence[tuple[str, StyleIndex | None]]
           ) -> tuple[dict[str, tuple[_Record, str]], dict[str, np.ndarray]]:
  """Stored descriptors by relative path (with their source name) and by content hash."""
  by_path: dict[str, tuple[_Record, str]] = {}
  by_hash: dict[str, np.ndarray] = {}
  for name, index in sources:
    if index is None:
      continue
    for i, p in enumerate(index.paths):
      record = _Record(index.sha256[i], int(index.size[i]), int(index.mtime_ns[i]), index.base[i])
      by_path[p] = (record, name)
      by_hash[record.sha256] = record.base
  return by_path, by_hash


def _plan(files: Sequence[str], library: str, by_path: dict, by_hash: dict,
          report: BuildReport) -> tuple[dict[str, _Record], list[_Todo]]:
  """Reusable records by relative path, and the files that must be embedded."""
  records: dict[str, _Record] = {}
  todo: list[_Todo] = []
  for path in files:
    rel = _relpath(path, library)
    try:
      st = os.stat(path)
    except OSError as e:
      report.failed.append((rel, f"cannot stat ({e.strerror or e})"))
      continue
    old = by_path.get(rel)
    if old is not None and old[0].size == st.st_size and old[0].mtime_ns == st.st_mtime_ns:
      records[rel] = dataclasses.replace(old[0], size=st.st_size, mtime_ns=st.st_mtime_ns)
      report.resumed += old[1] == "partial"
      report.reused += old[1] == "previous"
      continue
    try:
      sha = file_sha256(path)
    except OSError as e:
      report.failed.append((rel, f"cannot read ({e.strerror or e})"))
      continue
    if sha in by_hash:
      records[rel] = _Record(sha, st.st_size, st.st_mtime_ns, by_hash[sha])
      report.reused += 1
      continue
    todo.append(_Todo(path, rel, sha, st.st_size, st.st_mtime_ns))
  return records, todo


def _snapshot(records: dict[str, _Record], config: DescriptorConfig, vgg_record: dict, library: str,
              failed: list, complete: bool) -> StyleIndex:
  """The index of ``records``; whitened only when ``complete`` (partial files are not searched)."""
  keys = sorted(records)
  base = (np.stack([records[k].base for k in keys]).astype(np.float32) if keys
          else np.zeros((0, descriptor_dim(config)), np.float32))
  index = StyleIndex(
      config=config, vgg=vgg_record, paths=keys, sha256=[records[k].sha256 for k in keys],
      size=np.asarray([records[k].size for k in keys], np.int64),
      mtime_ns=np.asarray([records[k].mtime_ns for k in keys], np.int64), base=base,
      library=os.path.abspath(library), failed=sorted(failed), complete=complete)
  if complete:
    return index.refit()
  index.search = base
  return index


def _embed_group(embedder: Embedder, group: Sequence[_Todo], library: str,
                 records: dict[str, _Record], by_hash: dict[str, np.ndarray],
                 report: BuildReport) -> int:
  """Embeds ``group`` into ``records``; returns how many files were readable."""
  (desc,), ok, failed = embedder.embed_files([t.path for t in group])
  for j, i in enumerate(ok):
    t = group[i]
    records[t.rel] = _Record(t.sha256, t.size, t.mtime_ns, desc[j])
    by_hash[t.sha256] = desc[j]
  report.failed.extend((_relpath(p, library), msg) for p, msg in failed)
  report.embedded += len(ok)
  return len(ok)


def build_index(library: str, out: str, weights: vgg.VGGWeights,
                config: DescriptorConfig, *, batch_size: int = 8, group_size: int = 32,
                save_every: int = 256, rebuild: bool = False,
                progress: Callable[[int, int], None] | None = None, encoder=None
                ) -> tuple[StyleIndex, BuildReport]:
  """Builds or updates the index of every image under ``library`` (see the module docstring).

  Args:
    library: folder (walked recursively; hidden files skipped).
    out: index file.
    weights: VGG-19 weights.
    config: descriptor config or preset name.
    batch_size: tiles per VGG batch.
    group_size: images loaded and embedded together.
    save_every: newly embedded images between partial saves (0 = never).
    rebuild: ignore (and replace) an existing index at ``out``, even one with
      another config or a corrupt one.
    progress: called as ``progress(done, total)`` before the first group and
      after each group.
    encoder: the trained stylizer of an ``encoder`` config (default: loaded
      from ``config.checkpoint``).

  Returns:
    ``(index, report)``; the index is also written to ``out``.

  Raises:
    RetrievalError: no image files, none readable, or ``out`` holds an index
      with another config/weights or a corrupt one (unless ``rebuild``).
  """
  config = get_config(config)
  fingerprint = weights_fingerprint(weights)
  files = _library_files(library)
  report = BuildReport(total=len(files))
  previous = None if rebuild else _load_compatible(out, config, fingerprint, strict=True)
  partial = _load_compatible(partial_path(out), config, fingerprint, strict=False)
  by_path, by_hash = _known([("previous", previous), ("partial", partial)])
  records, todo = _plan(files, library, by_path, by_hash, report)
  if previous is not None:
    report.dropped = len(set(previous.paths) - {_relpath(p, library) for p in files})

  vgg_record = {"fingerprint": fingerprint, "source": weights.source,
                "preprocessing": weights.preprocessing}
  if config.kind == "encoder" and encoder is None:
    encoder = load_encoder(config)
  embedder = Embedder(weights, config, batch_size=batch_size, encoder=encoder)
  done, since_save = len(files) - len(todo), 0
  if progress:
    progress(done, len(files))
  for start in range(0, len(todo), group_size):
    group = todo[start:start + group_size]
    since_save += _embed_group(embedder, group, library, records, by_hash, report)
    done += len(group)
    if save_every and since_save >= save_every and start + group_size < len(todo):
      save_index(_snapshot(records, config, vgg_record, library, report.failed, complete=False),
                 partial_path(out))
      since_save = 0
    if progress:
      progress(done, len(files))

  if not records:
    raise RetrievalError(f"{library}: none of the {len(files)} image files could be read "
                         f"(first error: {report.failed[0][1] if report.failed else '?'}); "
                         "no index written")
  index = _snapshot(records, config, vgg_record, library, report.failed, complete=True)
  save_index(index, out)
  if os.path.exists(partial_path(out)):
    os.unlink(partial_path(out))
  return index, report
