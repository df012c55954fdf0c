"""Fuzz: the image loader (``load_image``) decodes or raises ``ImageError`` naming the file.

Seeds are small valid images written with Pillow in every format and mode the
loader documents (PNG RGB/RGBA/L/P/16-bit, JPEG RGB/CMYK, GIF, BMP, TIFF,
WebP) plus a real photo of ../shared/data; mutations are byte-level (header,
body and tail flips, truncation, inserted/deleted chunks, empty files).
Cases run with ``max_pixels`` = 4 M pixels (a flipped size field must not
make a case decode gigabytes); a second, smaller pass uses the default guard.
"""

import io
import os
import struct
import zlib

import numpy as np
import pytest
from PIL import Image

import fuzz_testlib as fz
from jaxstyle import images

SEED = 13
ALLOWED = (images.ImageError,)


def _encode(im, fmt, **kw):
  buf = io.BytesIO()
  im.save(buf, format=fmt, **kw)
  return buf.getvalue()


@pytest.fixture(scope="module")
def seeds(shared_data):
  rng = np.random.default_rng(0)
  rgb = Image.fromarray(rng.integers(0, 256, (24, 32, 3), dtype=np.uint8))
  rgba = Image.fromarray(rng.integers(0, 256, (24, 32, 4), dtype=np.uint8))
  grey16 = Image.fromarray(rng.integers(0, 65535, (20, 20), dtype=np.uint16))
  out = {
      "png_rgb": _encode(rgb, "PNG"), "png_rgba": _encode(rgba, "PNG"),
      "png_l": _encode(rgb.convert("L"), "PNG"), "png_p": _encode(rgb.convert("P"), "PNG"),
      "png_16": _encode(grey16, "PNG"), "jpeg": _encode(rgb, "JPEG", quality=90),
      "jpeg_cmyk": _encode(rgb.convert("CMYK"), "JPEG"),
      "gif": _encode(rgb.convert("P"), "GIF"), "bmp": _encode(rgb, "BMP"),
      "tiff": _encode(rgb, "TIFF"), "webp": _encode(rgb, "WEBP"),
  }
  for name, key in (("skimage_coins.png", "real_png"), ("skimage_rocket.jpg", "real_jpeg")):
    with open(os.path.join(shared_data, "content", name), "rb") as f:
      out[key] = f.read()
  return out


def _png_size(data, rng):
  """A PNG whose IHDR declares another size (its CRC fixed, so only the size is wrong)."""
  sizes = [(65535, 65535), (10000, 10000), (5000, 5000), (1, 100000), (0, 10)]
  w, h = sizes[int(rng.integers(0, len(sizes)))]
  ihdr = b"IHDR" + struct.pack(">II", w, h) + data[24:29]
  return (data[:12] + ihdr + struct.pack(">I", zlib.crc32(ihdr)) + data[33:],
          f"png_rgb: IHDR size {w}x{h}")


def _mutators(seeds):
  return [lambda rng, name=name, data=data: _tagged(name, fz.mutate_bytes(data, rng))
          for name, data in sorted(seeds.items())] + [
              lambda rng: _png_size(seeds["png_rgb"], rng)]


def _tagged(name, result):
  data, desc = result
  return data, f"{name}: {desc}"


def test_seeds_decode(tmp_path, seeds):
  for name, data in seeds.items():
    image = images.load_image(fz.write(str(tmp_path / name), data))
    assert image.ndim == 3 and image.shape[-1] == 3, name


def test_fuzz_load_image(tmp_path, seeds):
  fz.fuzz("images.load_image[max_pixels=4M]", 700, SEED, str(tmp_path), ".img",
          _mutators(seeds), lambda p: images.load_image(p, max_pixels=1 << 22), ALLOWED)


def test_fuzz_load_image_default_guard(tmp_path, seeds):
  small = {k: v for k, v in seeds.items() if not k.startswith("real")}
  fz.fuzz("images.load_image", 200, SEED + 1, str(tmp_path), ".img", _mutators(small),
          images.load_image, ALLOWED)
