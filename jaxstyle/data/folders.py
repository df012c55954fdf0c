"""Image folders as training data: content photos with seeded random crops, and style images.

Contract:

* ``list_images(folder)``: the image files under ``folder`` (recursive, sorted,
  by extension; ``jaxstyle.images.iter_image_files``). A missing folder or one
  without image files raises ``DataError`` naming it.
* ``center_crop_file(path, size)``: one image file, shorter side resized to
  ``size``, centre cropped to ``size`` x ``size`` (float32; ``ImageError`` if
  unreadable).
* ``center_crops(folder, n, size)``: the first ``n`` readable images of
  ``folder`` (``list_images`` order), shorter side resized to ``size`` and
  centre cropped: float32 ``[m, size, size, 3]``, ``m <= n``, plus the
  ``(path, reason)`` of the unreadable files met on the way (skipped). The
  fixed held-out photos of evaluations and benchmarks.
* ``PhotoCrops``: decodes every photo once (``jaxstyle.images.load_image``,
  shorter side resized to ``resize_to``, default ``round(1.5 * crop_size)``)
  and keeps it in memory as uint8 (about ``resize_to² · aspect · 3`` bytes per
  photo). Files that cannot be decoded are skipped and listed in ``errors``
  as ``(path, reason)``; if no photo is usable, ``DataError`` names the folder.
  ``batch(step)`` returns this process's part of global batch ``step``:
  float32 ``[global_batch_size / process_count, crop_size, crop_size, 3]`` in
  [0, 1] (uint8 values / 255).
* Determinism: global batch ``step`` is a function of ``(seed, step)`` only.
  Which photos it holds is ``jaxstyle.data.BatchIterator``'s order over the
  photos (a fresh permutation per epoch from ``(seed, epoch)``, last partial
  batch dropped, so ``global_batch_size <= number of photos``). Crop offsets
  and horizontal flips are drawn for the whole global batch from
  ``(seed, step)``; process ``process_index`` of ``process_count`` gets the
  contiguous slice ``process_index`` of it. Hence the processes' batches,
  concatenated in process order, equal the one-process batch, and a run that
  resumes at step ``k`` reads what an uninterrupted run reads.
* Styles come from a folder, an image file, a CSV with a ``file`` (or
  ``path``) column of paths relative to the CSV's folder (e.g.
  ``paintings.csv``), or a list of any of these: ``style_files(source)``
  lists the files without decoding them; ``load_styles(source, size)``
  returns ``(names, images)``: names are the file stems (``hokusai_great_wave``), in
  the order given (a folder: sorted); images are float32 RGB in [0, 1], the
  ``side`` side resized to ``size``; with ``square=True`` each is also centre
  cropped to ``size`` x ``size`` and they come stacked as ``[N, size, size, 3]``
  (else a list of ``[H_i, W_i, 3]``). Styles define a model, so any
  unreadable style file, a missing CSV column, an empty source or two styles
  with the same name raise ``DataError`` (listing every bad file).
"""

from __future__ import annotations

import csv
import os
from collections.abc import Sequence

import numpy as np

from jaxstyle import images as imlib
from jaxstyle.data.batches import BatchIterator, to_float_nhwc
from jaxstyle.errors import ConfigError, DataError

CSV_PATH_COLUMNS = ("file", "path")  # the first one present names the image files


def list_images(folder: str | os.PathLike, recursive: bool = True) -> list[str]:
  """Sorted image files under ``folder``; ``DataError`` if it is missing or holds none."""
  folder = os.fspath(folder)
  try:
    paths = imlib.iter_image_files(folder, recursive=recursive)
  except imlib.ImageError as e:
    raise DataError(str(e)) from None
  if not paths:
    raise DataError(f"{folder}: no image files ({', '.join(e[1:] for e in imlib.IMAGE_EXTENSIONS)}) "
                    "in this folder; pass a folder of photos")
  return paths


def center_crop_file(path: str | os.PathLike, size: int) -> np.ndarray:
  """One image file as a ``[size, size, 3]`` centre crop (see the module contract)."""
  return imlib.center_crop(imlib.load_image(os.fspath(path), size, side="shorter"), size)


def center_crops(folder: str | os.PathLike, n: int, size: int
                 ) -> tuple[np.ndarray, list[tuple[str, str]]]:
  """The first ``n`` readable images of ``folder``, centre crops (see the module contract)."""
  out, skipped = [], []
  for p in list_images(folder):
    if len(out) == n:
      break
    try:
      out.append(center_crop_file(p, size))
    except imlib.ImageError as e:
      skipped.append((p, str(e)))
  crops = np.stack(out) if out else np.zeros((0, size, size, 3), np.float32)
  return crops.astype(np.float32), skipped


def _decode_all(paths: Sequence[str], size: int, side: str, max_pixels: int | None
                ) -> tuple[list[str], list[np.ndarray], list[tuple[str, str]]]:
  """(good paths, uint8 images, [(bad path, reason)]), decoding each file once."""
  good, arrays, errors = [], [], []
  for p in paths:
    try:
      arrays.append(imlib.to_uint8(imlib.load_image(p, size, side=side, max_pixels=max_pixels)))
      good.append(p)
    except imlib.ImageError as e:
      errors.append((p, str(e)))
  return good, arrays, errors


class PhotoCrops:
  """Seeded random crops of content photos held in memory (see the module docstring).

  Attributes:
    paths: the usable photos, in index order.
    errors: ``(path, reason)`` of every file that was skipped.
    order: the ``BatchIterator`` over photo indices that orders the batches.
    crop_size, resize_to, flip, seed, global_batch_size, local_batch_size.
  """

  def __init__(self, source: str | os.PathLike | Sequence[str], crop_size: int, global_batch_size: int,
               seed: int, *, resize_to: int | None = None, flip: bool = True,
               process_index: int = 0, process_count: int = 1, max_pixels: int | None = None):
    """Decodes the photos.

    Args:
      source: a folder (``list_images``) or a list of image files.
      crop_size: side of the square crops in pixels.
      global_batch_size: crops per step over all processes (<= number of photos).
      seed: seeds the photo order, the crop offsets and the flips.
      resize_to: the shorter side of every photo after decoding (>= crop_size);
        default ``round(1.5 * crop_size)``.
      flip: mirror each crop horizontally with probability 1/2.
      process_index, process_count: this process's slice of the global batch.
      max_pixels: refuse larger files (``jaxstyle.images.load_image``).

    Raises:
      DataError: no usable photo, or a batch size the photos cannot fill.
      ConfigError: a bad crop or resize size.
    """
    if isinstance(crop_size, bool) or not isinstance(crop_size, (int, np.integer)) or crop_size < 1:
      raise ConfigError(f"crop size must be a positive number of pixels, got {crop_size!r}")
    resize_to = int(round(1.5 * crop_size)) if resize_to is None else resize_to
    if isinstance(resize_to, bool) or not isinstance(resize_to, (int, np.integer)) or resize_to < crop_size:
      raise ConfigError(f"resize_to={resize_to!r}: the photos' shorter side must be at least the "
                        f"crop size {crop_size}")
    if isinstance(source, (str, os.PathLike)):
      where, paths = os.fspath(source), list_images(source)
    else:
      paths = [os.fspath(p) for p in source]
      where = f"the {len(paths)} listed files"
    self.paths, self._images, self.errors = _decode_all(paths, resize_to, "shorter", max_pixels)
    if not self._images:
      detail = f" ({self.errors[0][1]}{'; ...' if len(self.errors) > 1 else ''})" if self.errors else ""
      raise DataError(f"{where}: no usable photo among {len(paths)} files{detail}; "
                      "pass a folder of readable images")
    self.crop_size = int(crop_size)
    self.resize_to = int(resize_to)
    self.flip = flip
    self.seed = seed
    try:
      self.order = BatchIterator({"index": np.arange(len(self._images))}, global_batch_size, seed,
                                 process_index=process_index, process_count=process_count)
    except DataError as e:
      raise DataError(f"{where}: {e}") from None
    self.global_batch_size = self.order.global_batch_size
    self.local_batch_size = self.order.local_batch_size

  @property
  def num_photos(self) -> int:
    return len(self._images)

  @property
  def steps_per_epoch(self) -> int:
    return self.order.steps_per_epoch

  def global_crops(self, step: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(photo index, [top, left], flip) of each crop of global batch ``step`` ([B], [B, 2], [B])."""
    idx = self.order.global_indices(step)
    u = np.random.default_rng([self.seed, step, 1]).random((len(idx), 3))
    spans = np.array([[self._images[i].shape[0], self._images[i].shape[1]] for i in idx])
    offsets = np.floor(u[:, :2] * (spans - self.crop_size + 1)).astype(np.int64)
    flips = (u[:, 2] < 0.5) & self.flip
    return idx, offsets, flips

  def batch(self, step: int) -> np.ndarray:
    """This process's crops of global batch ``step``: float32 [local_batch_size, crop, crop, 3]."""
    idx, offsets, flips = self.global_crops(step)
    start = self.order.process_index * self.local_batch_size
    c = self.crop_size
    out = np.empty((self.local_batch_size, c, c, 3), np.uint8)
    for k, j in enumerate(range(start, start + self.local_batch_size)):
      top, left = offsets[j]
      crop = self._images[idx[j]][top:top + c, left:left + c]
      out[k] = crop[:, ::-1] if flips[j] else crop
    return to_float_nhwc(out)


def style_files(source) -> list[str]:
  """The image files a style source names (a folder, an image file, a CSV, or a list of these), in order.

  Nothing is decoded (e.g. to split styles into training and held-out ones).
  Raises ``DataError`` for a folder without images or a CSV without a path column.
  """
  if not isinstance(source, (str, os.PathLike)):
    return [p for item in source for p in style_files(item)]
  source = os.fspath(source)
  if os.path.isdir(source):
    return list_images(source)
  if not source.lower().endswith(".csv"):
    return [source]
  try:
    with open(source, newline="", encoding="utf-8") as f:
      rows = list(csv.DictReader(f))
  except OSError as e:
    raise DataError(f"{source}: cannot read the CSV ({e.strerror or e}); check the path") from None
  columns = list(rows[0]) if rows else []
  column = next((c for c in CSV_PATH_COLUMNS if c in columns), None)
  if column is None:
    raise DataError(f"{source}: no {' or '.join(repr(c) for c in CSV_PATH_COLUMNS)} column with the "
                    f"image files (columns: {', '.join(columns) or 'none'}); add one")
  base = os.path.dirname(source)
  return [os.path.join(base, r[column]) for r in rows if r[column]]


def load_styles(source, size: int, *, side: str = "shorter", square: bool = False,
                max_pixels: int | None = None) -> tuple[list[str], np.ndarray | list[np.ndarray]]:
  """Style images and their names (see the module docstring for the contract).

  Args:
    source: a folder, an image file, a ``.csv`` with a ``file``/``path``
      column, or a list of these.
    size: target length in pixels of the ``side`` side.
    side: ``"shorter"`` (default: every image then holds a ``size`` square)
      or ``"longer"``.
    square: centre-crop each to ``size`` x ``size`` and stack them.
    max_pixels: as for ``jaxstyle.images.load_image``.

  Returns:
    ``(names, images)``.

  Raises:
    DataError: no style, an unreadable file, a CSV without a path column, or
      a name used twice.
  """
  if square and side != "shorter":
    raise ConfigError("load_styles(square=True) needs side='shorter' (the square is cut from it)")
  paths = style_files(source)
  if not paths:
    raise DataError(f"{source}: names no style image; pass a folder, files or a CSV of images")
  images, errors = imlib.load_batch(paths, size, side=side, max_pixels=max_pixels)
  if errors:
    raise DataError(f"{len(errors)} style image(s) cannot be used: "
                    f"{' | '.join(reason for _, reason in errors)}")
  names = [os.path.splitext(os.path.basename(p))[0] for p in paths]
  seen: dict[str, str] = {}
  for name, p in zip(names, paths):
    if name in seen:
      raise DataError(f"two styles are named {name!r} ({seen[name]} and {p}); styles are named by "
                      "their file stem, so rename one")
    seen[name] = p
  if square:
    return names, np.stack([imlib.center_crop(im, size) for im in images])
  return names, list(images)
