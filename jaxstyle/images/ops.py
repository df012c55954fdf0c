"""Image geometry and panels: resizing, crops, grids and side-by-side strips.

Every function works on NumPy float images with values in [0, 1], layout
``[H, W, C]`` for one image (``[H, W]`` accepted) and ``[N, H, W, C]`` for a
batch (NHWC); integer images are refused (divide uint8 by 255 first).

Resizing uses Pillow's Lanczos (a=3) filter on float32 planes by default, or
its bilinear (triangle) filter with ``method="bilinear"``, which equals
``jax.image.resize(..., "linear", antialias=True)`` up to float32 rounding.
Pillow widens the kernel by the downscale factor, so downscaling is
antialiased; results are clipped back to [0, 1] (Lanczos overshoots at edges;
bilinear never leaves the input's range). Resizing happens on the stored
(sRGB-encoded) values, not in linear light. ``size`` is the target
length of the *longer* side (``side="shorter"`` for the shorter side), the
other side keeps the aspect ratio, rounded to the nearest pixel (at least 1).
Bad sizes raise ``ConfigError``.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np
from PIL import Image

from jaxstyle.errors import ConfigError

RESAMPLE = Image.Resampling.LANCZOS  # the default filter
RESAMPLING = {"lanczos": RESAMPLE, "bilinear": Image.Resampling.BILINEAR}


# --------------------------------------------------------------------------- #
# Sizes and geometry
# --------------------------------------------------------------------------- #


def _check_positive(name: str, value) -> int:
  if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value <= 0:
    raise ConfigError(f"{name} must be a positive integer number of pixels, got {value!r}")
  return int(value)


def target_size(height: int, width: int, size: int, side: str = "longer") -> tuple[int, int]:
  """(height, width) after scaling so the longer (or shorter) side is ``size``.

  Args:
    height, width: current size in pixels.
    size: target length in pixels of the side chosen by ``side``.
    side: ``"longer"`` (default) or ``"shorter"``.

  Returns:
    (new_height, new_width); the other side keeps the aspect ratio, rounded
    to the nearest pixel and at least 1.
  """
  size = _check_positive("size", size)
  if side not in ("longer", "shorter"):
    raise ConfigError(f"side must be 'longer' or 'shorter', got {side!r}")
  ref = max(height, width) if side == "longer" else min(height, width)
  # height * size / ref is exact (size) for the reference side.
  return max(1, int(round(height * size / ref))), max(1, int(round(width * size / ref)))


def _check_float(image: np.ndarray, name: str) -> None:
  if not np.issubdtype(image.dtype, np.floating):
    raise ValueError(f"{name} must be a float image in [0, 1], got dtype {image.dtype}"
                     + (" (divide uint8 images by 255)" if image.dtype == np.uint8 else ""))


def _as_hwc(image: np.ndarray, name: str = "image") -> np.ndarray:
  image = np.asarray(image)
  if image.ndim == 2:
    image = image[:, :, None]
  if image.ndim != 3:
    raise ValueError(f"{name} must have shape [H, W] or [H, W, C], got {image.shape}")
  return image


def resize(image: np.ndarray, size: int | tuple[int, int], *, side: str = "longer",
           method: str = "lanczos") -> np.ndarray:
  """Resizes one image with an antialiased Pillow filter.

  Args:
    image: [H, W, C] (or [H, W]) float array, values nominally in [0, 1]
      (NumPy, or anything ``np.asarray`` takes, e.g. a JAX array).
    size: an int is the new length of the longer side (or shorter side with
      ``side="shorter"``), keeping the aspect ratio; a tuple is the exact
      (height, width).
    side: ``"longer"`` or ``"shorter"`` (only for an int ``size``).
    method: a key of ``RESAMPLING``: ``"lanczos"`` (default, sharpest) or
      ``"bilinear"`` (what the Gatys optimisation uses between scales).

  Returns:
    float32 [new_H, new_W, C] (same rank as the input), clipped to [0, 1].
  """
  if method not in RESAMPLING:
    raise ConfigError(f"resize method must be one of {', '.join(RESAMPLING)}, got {method!r}")
  arr = np.asarray(image)
  _check_float(arr, "image")
  hwc = _as_hwc(arr)
  h, w, c = hwc.shape
  if isinstance(size, (tuple, list)):
    if len(size) != 2:
      raise ConfigError(f"size must be an int or (height, width), got {size!r}")
    new_h, new_w = (_check_positive("height", size[0]), _check_positive("width", size[1]))
  else:
    new_h, new_w = target_size(h, w, size, side)
  hwc = hwc.astype(np.float32, copy=False)
  if (new_h, new_w) == (h, w):
    out = np.array(hwc, dtype=np.float32)
  else:
    planes = [np.asarray(Image.fromarray(np.ascontiguousarray(hwc[:, :, k]), mode="F")
                         .resize((new_w, new_h), RESAMPLING[method])) for k in range(c)]
    out = np.stack(planes, axis=-1)
  out = np.clip(out, 0.0, 1.0).astype(np.float32, copy=False)
  return out if arr.ndim == 3 else out[:, :, 0]


def _crop_size(size) -> tuple[int, int]:
  if isinstance(size, (tuple, list)):
    if len(size) != 2:
      raise ConfigError(f"crop size must be an int or (height, width), got {size!r}")
    return _check_positive("crop height", size[0]), _check_positive("crop width", size[1])
  s = _check_positive("crop size", size)
  return s, s


def center_crop(image: np.ndarray, size: int | tuple[int, int]) -> np.ndarray:
  """Central crop of ``size`` (int = square, or (height, width)) from [H, W, ...].

  When the margin is odd, the extra pixel is dropped from the bottom/right.
  Raises ValueError if the crop is larger than the image.
  """
  image = np.asarray(image)
  ch, cw = _crop_size(size)
  h, w = image.shape[:2]
  if ch > h or cw > w:
    raise ValueError(f"crop {ch}x{cw} is larger than the image {h}x{w}")
  top, left = (h - ch) // 2, (w - cw) // 2
  return image[top:top + ch, left:left + cw]


def random_crop(image: np.ndarray, size: int | tuple[int, int],
                rng: np.random.Generator) -> np.ndarray:
  """Uniformly random crop of ``size`` from [H, W, ...], drawn from ``rng``."""
  image = np.asarray(image)
  ch, cw = _crop_size(size)
  h, w = image.shape[:2]
  if ch > h or cw > w:
    raise ValueError(f"crop {ch}x{cw} is larger than the image {h}x{w}")
  top = int(rng.integers(0, h - ch + 1))
  left = int(rng.integers(0, w - cw + 1))
  return image[top:top + ch, left:left + cw]


# --------------------------------------------------------------------------- #
# Panels
# --------------------------------------------------------------------------- #


def make_grid(batch: np.ndarray | Sequence[np.ndarray], nrow: int = 8, pad: int = 2,
              pad_value: float = 1.0) -> np.ndarray:
  """Tiles a batch into one image, row by row.

  Args:
    batch: [N, H, W, C] float (C = 1 or 3), or a sequence of N [H, W, C]
      images of one shape.
    nrow: images per row (the grid has ceil(N / nrow) rows).
    pad: pixels of ``pad_value`` around and between tiles.
    pad_value: fill value of the padding and of unused cells.

  Returns:
    float32 [rows*(H+pad)+pad, ncols*(W+pad)+pad, C], where
    ncols = min(nrow, N). Image i sits at row i // nrow, column i % nrow, i.e.
    its top-left pixel is at (pad + (i // nrow) * (H + pad),
    pad + (i % nrow) * (W + pad)).
  """
  arr = np.asarray(batch)
  _check_float(arr, "batch")
  arr = arr.astype(np.float32, copy=False)
  if arr.ndim == 3:
    arr = arr[..., None]
  if arr.ndim != 4 or arr.shape[0] == 0:
    raise ValueError(f"batch must have shape [N, H, W, C] with N >= 1, got {arr.shape}")
  nrow = _check_positive("nrow", nrow)
  if pad < 0:
    raise ValueError(f"pad must be >= 0, got {pad}")
  n, h, w, c = arr.shape
  ncols = min(nrow, n)
  rows = math.ceil(n / nrow)
  grid = np.full((rows * (h + pad) + pad, ncols * (w + pad) + pad, c), pad_value, np.float32)
  for i in range(n):
    top = pad + (i // nrow) * (h + pad)
    left = pad + (i % nrow) * (w + pad)
    grid[top:top + h, left:left + w] = arr[i]
  return grid


def side_by_side(images: Sequence[np.ndarray], height: int | None = None, pad: int = 2,
                 pad_value: float = 1.0) -> np.ndarray:
  """Concatenates images horizontally at a common height (e.g. content | style | result).

  Args:
    images: [H_i, W_i, C_i] float images, C_i in {1, 3} (grayscale is
      replicated to RGB); [H, W] is accepted too.
    height: common height; each image is resized (aspect kept) to it.
      ``None``: the first image's height.
    pad: columns of ``pad_value`` between neighbouring images (none at the
      outer edges).
    pad_value: fill value of the separators.

  Returns:
    float32 [height, sum(W_i') + pad*(len-1), 3].
  """
  if len(images) == 0:
    raise ValueError("side_by_side needs at least one image")
  panels = []
  for k, im in enumerate(images):
    im = _as_hwc(im, f"images[{k}]")
    _check_float(im, f"images[{k}]")
    im = im.astype(np.float32, copy=False)
    if im.shape[-1] == 1:
      im = np.repeat(im, 3, axis=-1)
    if im.shape[-1] != 3:
      raise ValueError(f"images[{k}] must have 1 or 3 channels, got shape {im.shape}")
    panels.append(im)
  if height is None:
    height = panels[0].shape[0]
  height = _check_positive("height", height)
  resized = []
  for im in panels:
    h, w = im.shape[:2]
    if h != height:
      new_w = max(1, int(round(w * height / h)))
      im = resize(im, (height, new_w))
    resized.append(im)
  parts = []
  for k, im in enumerate(resized):
    if k and pad:
      parts.append(np.full((height, pad, 3), pad_value, np.float32))
    parts.append(im)
  return np.concatenate(parts, axis=1)
