"""Image files in and out: robust loading, folder listing and atomic saving.

Loaded images are NumPy float32 RGB in [0, 1], layout ``[H, W, 3]``.

Loading (``load_image``) decodes anything Pillow can decode (the file's bytes
decide, not its extension) and normalises it:

* Grayscale (``1``, ``L``, ``I;16*``, ``I``, ``F``) is replicated to 3
  channels. 16-bit data (``I;16*``; ``I`` is treated as 16-bit, the way Pillow
  represents 16-bit PNG/TIFF) is scaled by 1/65535 *before* any rounding, so
  the full 16-bit precision survives. ``F`` (float TIFF) is taken as already
  in [0, 1] and clipped.
* Palette images (``P``, ``PA``), including palette transparency, are
  expanded.
* Transparency (``LA``, ``RGBA``, premultiplied ``La``/``RGBa``, palette or
  colour-key transparency) is **composited over white**:
  ``rgb_out = a * rgb + (1 - a) * 1`` computed in float32 from the stored
  values, so a fully transparent pixel becomes exactly 1.0 (white) and a fully
  opaque one keeps its colour. White, not black, because transparent
  regions of logos/scans/drawings are meant to be "paper".
* CMYK (e.g. print JPEGs, including Adobe's inverted CMYK) is converted with
  Pillow's formula (no ICC colour management), so colours are approximately,
  not exactly, preserved.
* The EXIF orientation tag is applied (the array is what a viewer shows).
* Animated files (GIF, APNG, WebP) give their first frame.
* Limitation: Pillow decodes 16-bit-per-channel *colour* PNGs to 8 bits per
  channel; only 16-bit grayscale keeps 16-bit precision.

``load_image(path, size)`` equals ``ops.resize(load_image(path), size)``
exactly: the file is always decoded at full resolution (Pillow's DCT-domain
JPEG ``draft`` downscaling is not used). An image upscaled more than
``UPSCALE_WARN`` (4) times gives a ``JaxstyleWarning`` naming the file and both
sizes (``check_upscale``; the result would be a blur), once per load.

Pixel limit: ``max_pixels`` (per call) or, when a call gives none, the
process-wide default of ``set_max_pixels`` (commands set it from
``--max_pixels``), else Pillow's decompression-bomb limit. The error names
``--max_pixels``. ``read_size(path)`` reads only the header: (height, width).

Every bad file raises ``ImageError`` (a ``JaxstyleError``) whose message names
the file, the cause (missing, empty, truncated, not an image, unsupported
mode, too many pixels, ...) and what to do. ``load_batch`` collects those
errors and carries on with the good files.

Saving (``save_image``) writes PNG or JPEG (quality 95) chosen by the
extension, atomically: the data goes to a hidden temporary file in the same
directory, which is then renamed over the target with ``os.replace``, so a
reader never sees a half-written image.
"""

from __future__ import annotations

import os
import threading
import warnings
from collections.abc import Iterable

import numpy as np
from PIL import Image, ImageOps, UnidentifiedImageError

from jaxstyle.errors import ConfigError, JaxstyleError, JaxstyleWarning
from jaxstyle.fileio import atomic_open
from jaxstyle.images.ops import _as_hwc, _check_positive, resize, target_size

IMAGE_EXTENSIONS = (".jpg", ".jpeg", ".png", ".bmp", ".gif", ".webp", ".tif", ".tiff")
SAVE_FORMATS = {".png": "PNG", ".jpg": "JPEG", ".jpeg": "JPEG"}
JPEG_QUALITY = 95
UPSCALE_WARN = 4.0  # upscaling by more than this gives a JaxstyleWarning
_max_pixels: list[int | None] = [None]  # set_max_pixels: the default of calls that give none

# Pillow's decompression-bomb guard is a module global that Pillow checks while
# opening and decoding. When a caller explicitly allows more pixels than Pillow's
# own hard limit, we lift the global for the duration of that one decode, under
# this lock (and restore it afterwards).
_PIL_GUARD_LOCK = threading.Lock()

# First bytes of the formats we list in IMAGE_EXTENSIONS, to tell "truncated or
# corrupt image" from "not an image at all" in error messages.
_MAGIC = (
    (b"\x89PNG\r\n\x1a\n", "PNG"),
    (b"\xff\xd8", "JPEG"),
    (b"GIF87a", "GIF"),
    (b"GIF89a", "GIF"),
    (b"BM", "BMP"),
    (b"II*\x00", "TIFF"),
    (b"MM\x00*", "TIFF"),
)


class ImageError(JaxstyleError):
  """An image file is missing, empty, truncated, corrupt or not an image.

  Attributes:
    path: the offending file.
    cause: short description of what is wrong.
  """

  def __init__(self, path: str | os.PathLike, cause: str, advice: str = ""):
    self.path = os.fspath(path)
    self.cause = cause
    self.advice = advice
    message = f"{self.path}: {cause}"
    if advice:
      message += f"; {advice}"
    super().__init__(message)

  def __reduce__(self):
    # Picklable (e.g. across multiprocessing data-loader workers).
    return type(self), (self.path, self.cause, self.advice)


# --------------------------------------------------------------------------- #
# Loading
# --------------------------------------------------------------------------- #


def _sniff(path: str) -> str | None:
  """Name of the image format the file's first bytes announce, if any."""
  try:
    with open(path, "rb") as f:
      head = f.read(16)
  except OSError:
    return None
  for magic, name in _MAGIC:
    if head.startswith(magic):
      return name
  if head[:4] == b"RIFF" and head[8:12] == b"WEBP":
    return "WebP"
  return None


def _describe_non_image(path: str) -> str:
  try:
    with open(path, "rb") as f:
      head = f.read(512)
  except OSError as e:
    return f"cannot read file ({e.strerror or e})"
  stripped = head.lstrip()
  if stripped.startswith(b"<svg") or (stripped.startswith(b"<?xml") and b"<svg" in head):
    return "not a raster image (it is SVG vector graphics, which is unsupported)"
  if stripped[:1] in (b"<",) and b"html" in head.lower():
    return "not an image (it is an HTML page, perhaps a failed download)"
  try:
    head.decode("utf-8")
    is_text = b"\x00" not in head
  except UnicodeDecodeError:
    is_text = False
  if is_text:
    return "not an image (the file contains text)"
  return "not an image in a format Pillow can decode (unknown or unsupported format)"


def _open_error(path: str, err: Exception) -> ImageError:
  """Maps an exception raised while opening/decoding ``path`` to an ImageError."""
  if isinstance(err, Image.DecompressionBombError):
    return ImageError(path, f"too many pixels for Pillow's decompression-bomb guard ({err})",
                      "if you trust this file, raise the limit with --max_pixels (max_pixels= "
                      "in Python)")
  if isinstance(err, UnidentifiedImageError):
    sniffed = _sniff(path)
    if sniffed:
      return ImageError(path, f"corrupt or truncated {sniffed} file (its header cannot be read)",
                        "re-export or re-download it, or remove it")
    return ImageError(path, _describe_non_image(path),
                      "convert it to PNG or JPEG, or remove it from the input")
  text = str(err) or type(err).__name__
  lowered = text.lower()
  if "truncated" in lowered or isinstance(err, EOFError) or "broken data stream" in lowered or \
      "unexpected end" in lowered or "premature end" in lowered:
    cause = f"truncated or corrupt image data ({text})"
  else:
    fmt = _sniff(path)
    cause = (f"corrupt, truncated or unsupported {fmt + ' ' if fmt else ''}image data "
             f"({type(err).__name__}: {text})")
  return ImageError(path, cause, "re-export or re-download it, or remove it")


def _to_float_rgb(im: Image.Image, path: str) -> np.ndarray:
  """Decoded PIL image (any mode) -> float32 [H, W, 3] in [0, 1]."""
  mode = im.mode
  if "transparency" in im.info and mode in ("P", "L", "RGB", "LA", "PA"):
    im = im.convert("RGBA")
    mode = "RGBA"
  if mode == "P":
    im = im.convert("RGB")
    mode = "RGB"
  elif mode in ("PA", "La", "RGBa"):
    im = im.convert("RGBA")
    mode = "RGBA"
  elif mode == "1":
    im = im.convert("L")
    mode = "L"
  elif mode in ("CMYK", "YCbCr", "HSV", "RGBX"):
    im = im.convert("RGB")
    mode = "RGB"

  if mode in ("RGB", "RGBA", "L", "LA"):
    a = np.asarray(im, dtype=np.float32) / np.float32(255.0)
  elif mode.startswith("I;16") or mode == "I":
    a = np.asarray(im).astype(np.float32)
    a = np.clip(a, 0.0, 65535.0) / np.float32(65535.0)
    mode = "L"
  elif mode == "F":
    a = np.clip(np.asarray(im, dtype=np.float32), 0.0, 1.0)
    mode = "L"
  else:
    raise ImageError(path, f"unsupported colour mode {mode!r}",
                     "convert it to an RGB or grayscale PNG/JPEG")

  if a.ndim == 2:
    a = a[:, :, None]
  if mode in ("RGBA", "LA"):
    alpha = a[:, :, -1:]
    a = a[:, :, :-1] * alpha + (np.float32(1.0) - alpha)
  if a.shape[-1] == 1:
    a = np.repeat(a, 3, axis=-1)
  if not np.all(np.isfinite(a)):
    raise ImageError(path, "image contains NaN or infinite values", "re-export it")
  return np.ascontiguousarray(a, dtype=np.float32)


def _decode(path: str, max_pixels: int | None) -> np.ndarray:
  """Opens, checks the pixel count, decodes and normalises one file.

  Pillow's warnings are held back while decoding: if decoding fails the
  ImageError says it all; if it succeeds they are re-issued naming the file.
  """
  with open(path, "rb") as f, warnings.catch_warnings(record=True) as caught:
    warnings.simplefilter("always")
    im = Image.open(f)
    w, h = im.size
    limit = Image.MAX_IMAGE_PIXELS if max_pixels is None else max_pixels
    if limit is not None and w * h > limit:
      raise ImageError(path, f"image is {w}x{h} = {w * h} pixels, more than the limit of {limit}",
                       f"if you trust this file, raise the limit with --max_pixels={w * h} "
                       "(max_pixels= in Python)")
    im.load()
    im = ImageOps.exif_transpose(im)
    image = _to_float_rgb(im, path)
  for warning in caught:
    if not issubclass(warning.category, Image.DecompressionBombWarning):
      warnings.warn(f"{path}: {warning.message}", warning.category, stacklevel=3)
  return image


def set_max_pixels(max_pixels: int | None) -> int | None:
  """Sets the pixel limit of loads that give no ``max_pixels`` (None: Pillow's); returns the old one."""
  if max_pixels is not None:
    max_pixels = _check_positive("max_pixels", max_pixels)
  old, _max_pixels[0] = _max_pixels[0], max_pixels
  return old


def read_size(path: str | os.PathLike) -> tuple[int, int] | None:
  """(height, width) of an image file from its header (nothing decoded); None if unreadable."""
  try:
    with warnings.catch_warnings(), Image.open(os.fspath(path)) as im:
      warnings.simplefilter("ignore")
      w, h = im.size
  except Exception:  # noqa: BLE001 - load_image reports what is wrong with the file
    return None
  return h, w


def check_upscale(path: str | os.PathLike, hw: tuple[int, int], new_hw: tuple[int, int]) -> None:
  """Warns (``JaxstyleWarning``) when an image of size ``hw`` is enlarged more than ``UPSCALE_WARN`` times."""
  factor = max(new_hw[0] / max(hw[0], 1), new_hw[1] / max(hw[1], 1))
  if factor > UPSCALE_WARN:
    warnings.warn(f"{os.fspath(path)}: {hw[1]}x{hw[0]} pixels upscaled {factor:.3g}x to "
                  f"{new_hw[1]}x{new_hw[0]}; the result will be blurry: use a larger image or a "
                  "smaller size", JaxstyleWarning, stacklevel=3)


def load_image(path: str | os.PathLike, size: int | None = None, *, side: str = "longer",
               max_pixels: int | None = None, min_side: int | None = None) -> np.ndarray:
  """Loads an image file as float32 RGB in [0, 1].

  See the module docstring for how each colour mode, transparency (composited
  over white), 16-bit data, CMYK, EXIF orientation and animation are handled.

  Args:
    path: image file (any format Pillow decodes; the content decides).
    size: if given, resize (Lanczos, antialiased) so the longer side (or the
      shorter side, with ``side="shorter"``) is ``size`` pixels, keeping the
      aspect ratio. Small images are upscaled.
    side: ``"longer"`` or ``"shorter"``: which side ``size`` refers to.
    max_pixels: refuse images with more than this many pixels (width*height)
      before decoding them. ``None`` uses ``set_max_pixels``'s value if one
      is set, else Pillow's default guard
      (``PIL.Image.MAX_IMAGE_PIXELS``, about 89.5 M pixels), but refuses where
      Pillow would only warn. A value above Pillow's limit overrides it.
    min_side: refuse images whose shorter side (as stored, before resizing)
      is below this many pixels (e.g. a thumbnail given as a style image).

  Returns:
    float32 array [H, W, 3], values in [0, 1].

  Raises:
    ImageError: the file is missing, empty, truncated/corrupt, not an image, in
      an unsupported mode, or has too many pixels.
    ConfigError: ``size``/``max_pixels`` is not a positive integer.
  """
  path = os.fspath(path)
  if size is not None:
    size = _check_positive("size", size)
  if side not in ("longer", "shorter"):
    raise ConfigError(f"side must be 'longer' or 'shorter', got {side!r}")
  if max_pixels is not None:
    max_pixels = _check_positive("max_pixels", max_pixels)
  else:
    max_pixels = _max_pixels[0]
  if not os.path.exists(path):
    raise ImageError(path, "no such file", "check the path")
  if os.path.isdir(path):
    raise ImageError(path, "is a directory, not an image file",
                     "pass an image file (or use iter_image_files for a folder)")
  try:
    nbytes = os.path.getsize(path)
  except OSError as e:
    raise ImageError(path, f"cannot read file ({e.strerror or e})", "check its permissions") from e
  if nbytes == 0:
    raise ImageError(path, "file is empty (0 bytes)",
                     "re-export or re-download it, or remove it")

  pil_limit = Image.MAX_IMAGE_PIXELS
  lift = max_pixels is not None and pil_limit is not None and max_pixels > 2 * pil_limit
  try:
    if lift:
      with _PIL_GUARD_LOCK:
        Image.MAX_IMAGE_PIXELS = None
        try:
          image = _decode(path, max_pixels)
        finally:
          Image.MAX_IMAGE_PIXELS = pil_limit
    else:
      image = _decode(path, max_pixels)
  except ImageError:
    raise
  except PermissionError as e:
    raise ImageError(path, f"cannot read file ({e.strerror or e})", "check its permissions") from e
  except MemoryError as e:
    raise ImageError(path, "not enough memory to decode the image",
                     "use a smaller image or pass a smaller max_pixels") from e
  except Exception as e:  # noqa: BLE001 - decoders raise many types on bad data.
    raise _open_error(path, e) from e
  if min_side is not None and min(image.shape[:2]) < min_side:
    raise ImageError(path, f"is only {image.shape[1]}x{image.shape[0]} pixels",
                     f"use an image with at least {min_side} pixels on its shorter side")
  if size is not None:
    hw = image.shape[:2]
    check_upscale(path, hw, target_size(*hw, size, side))
    image = resize(image, size, side=side)
  return image


def load_batch(paths: Iterable[str | os.PathLike], size: int | None = None, *,
               side: str = "longer", max_pixels: int | None = None
               ) -> tuple[np.ndarray | list[np.ndarray], list[tuple[str, str]]]:
  """Loads many images, collecting bad files instead of stopping at the first.

  Args:
    paths: image files, in the order wanted.
    size, side, max_pixels: as for ``load_image``.

  Returns:
    (images, errors). ``images`` holds the good files in input order: a float32
    array [N, H, W, 3] when all have the same shape (an empty [0, 0, 0, 3]
    array if there are none), otherwise a list of [H, W, 3] arrays. ``errors``
    is a list of (path, message) for every bad file, in input order, where
    message is the ImageError's text.
  """
  images, errors = [], []
  for p in paths:
    try:
      images.append(load_image(p, size, side=side, max_pixels=max_pixels))
    except ImageError as e:
      errors.append((os.fspath(p), str(e)))
  if not images:
    return np.zeros((0, 0, 0, 3), np.float32), errors
  if all(im.shape == images[0].shape for im in images):
    return np.stack(images), errors
  return images, errors


def iter_image_files(directory: str | os.PathLike, recursive: bool = True) -> list[str]:
  """Image files under ``directory``, by extension, sorted.

  Extensions (case-insensitive): jpg, jpeg, png, bmp, gif, webp, tif, tiff.
  Hidden files and hidden directories (name starting with ".") are skipped.

  Returns:
    Sorted list of paths (``directory`` joined with the relative path).

  Raises:
    ImageError: ``directory`` does not exist or is not a directory.
  """
  directory = os.fspath(directory)
  if not os.path.isdir(directory):
    raise ImageError(directory, "no such directory" if not os.path.exists(directory)
                     else "is not a directory", "pass a folder that holds image files")
  found = []
  for root, dirs, files in os.walk(directory):
    dirs[:] = sorted(d for d in dirs if not d.startswith("."))
    if not recursive:
      dirs[:] = []
    for name in files:
      if not name.startswith(".") and name.lower().endswith(IMAGE_EXTENSIONS):
        found.append(os.path.join(root, name))
  return sorted(found)


# --------------------------------------------------------------------------- #
# Saving
# --------------------------------------------------------------------------- #


def to_uint8(image: np.ndarray) -> np.ndarray:
  """Float image in [0, 1] -> uint8 in [0, 255] (clip, then round to nearest).

  Raises ValueError on NaN/inf (a diverged result should not be saved as a
  plausible-looking picture).
  """
  image = np.asarray(image)
  if image.dtype == np.uint8:
    return image
  image = image.astype(np.float32, copy=False)
  if not np.all(np.isfinite(image)):
    raise ValueError("image contains NaN or infinite values; refusing to convert it to uint8")
  return np.round(np.clip(image, 0.0, 1.0) * 255.0).astype(np.uint8)


def save_image(path: str | os.PathLike, image: np.ndarray) -> str:
  """Saves an image atomically as PNG or JPEG (quality 95), by extension.

  The parent directory is created if needed. Data is written to a hidden
  temporary file next to ``path`` and renamed over it (``os.replace``), so
  ``path`` either keeps its old content or holds the complete new image.

  Args:
    path: target file; extension ``.png``, ``.jpg`` or ``.jpeg`` (any case).
    image: [H, W], [H, W, 1] or [H, W, 3] float in [0, 1] (or uint8).

  Returns:
    ``path`` as a string.

  Raises:
    ImageError: unsupported extension, or the file cannot be written.
    ValueError: bad shape or non-finite values.
  """
  path = os.fspath(path)
  ext = os.path.splitext(path)[1].lower()
  if ext not in SAVE_FORMATS:
    raise ImageError(path, f"unsupported output extension {ext or '(none)'!r}",
                     "use .png (lossless) or .jpg/.jpeg")
  hwc = _as_hwc(image)
  if hwc.shape[-1] not in (1, 3):
    raise ValueError(f"image must have 1 or 3 channels, got shape {np.shape(image)}")
  data = to_uint8(hwc)
  pil = Image.fromarray(data[:, :, 0] if data.shape[-1] == 1 else data,
                        mode="L" if data.shape[-1] == 1 else "RGB")
  fmt = SAVE_FORMATS[ext]
  options = {"quality": JPEG_QUALITY} if fmt == "JPEG" else {}
  try:
    with atomic_open(path) as f:
      pil.save(f, format=fmt, **options)
  except OSError as e:
    raise ImageError(path, f"cannot write image ({e.strerror or e})",
                     "check the path, free disk space and permissions") from e
  return path
