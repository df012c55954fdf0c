"""Tests of jaxstyle.images.ops: resizing, crops, grids and side-by-side panels."""

import numpy as np
import pytest

from jaxstyle import images


# --------------------------------------------------------------------------- #
# Geometry
# --------------------------------------------------------------------------- #


def test_resize_keeps_aspect():
  img = np.random.default_rng(0).random((100, 300, 3), np.float32)
  assert images.resize(img, 64).shape == (21, 64, 3)
  assert images.resize(img, 64, side="shorter").shape == (64, 192, 3)
  assert images.resize(img.transpose(1, 0, 2), 64).shape == (64, 21, 3)
  assert images.resize(img, (7, 9)).shape == (7, 9, 3)
  assert images.resize(img[:, :, 0], 30).shape == (10, 30)
  assert images.resize(img, 600).shape == (200, 600, 3)          # upscaling
  assert images.target_size(3, 1000, 10) == (1, 10)               # never 0 pixels
  out = images.resize(img, 64)
  assert out.dtype == np.float32 and out.min() >= 0.0 and out.max() <= 1.0
  np.testing.assert_array_equal(images.resize(img, 300), img)      # same size: unchanged
  with pytest.raises(ValueError, match="size"):
    images.resize(img, 0)
  u8 = (img * 255).astype(np.uint8)
  for fn in (lambda: images.resize(u8, 10), lambda: images.make_grid(u8[None], 1),
             lambda: images.side_by_side([img, u8])):
    with pytest.raises(ValueError, match="divide uint8 images by 255"):
      fn()


def test_resize_constant_and_antialiased():
  const = np.full((40, 60, 3), 0.3, np.float32)
  np.testing.assert_allclose(images.resize(const, 17), 0.3, atol=1e-5)
  # A one-pixel checkerboard downscaled 4x averages to grey with an antialiased filter
  # (point sampling would give pure 0/1 aliasing).
  yy, xx = np.mgrid[:64, :64]
  board = ((yy + xx) % 2).astype(np.float32)[:, :, None].repeat(3, -1)
  small = images.resize(board, 16)
  inner = small[2:-2, 2:-2]
  np.testing.assert_allclose(inner, 0.5, atol=0.02)


def test_resize_bilinear_matches_jax_linear_antialiased():
  import jax
  img = np.random.default_rng(2).random((37, 53, 3), np.float32)
  for hw in ((12, 17), (37, 53), (80, 101)):                     # down, same, up
    ours = images.resize(img, hw, method="bilinear")
    ref = np.clip(np.asarray(jax.image.resize(img, (*hw, 3), "linear", antialias=True)), 0, 1)
    np.testing.assert_allclose(ours, ref, atol=1e-5)
  assert np.abs(images.resize(img, (12, 17)) - images.resize(img, (12, 17), method="bilinear")
                ).max() > 0.01                                   # Lanczos is another filter
  with pytest.raises(ValueError, match="method"):
    images.resize(img, 10, method="cubic")


def test_crops():
  img = np.arange(5 * 6, dtype=np.float32).reshape(5, 6, 1)
  np.testing.assert_array_equal(images.center_crop(img, 3), img[1:4, 1:4])
  np.testing.assert_array_equal(images.center_crop(img, (2, 6)), img[1:3, :])
  with pytest.raises(ValueError, match="larger"):
    images.center_crop(img, 6)
  crops = [images.random_crop(img, (2, 3), np.random.default_rng(s)) for s in range(20)]
  again = [images.random_crop(img, (2, 3), np.random.default_rng(s)) for s in range(20)]
  for c, d in zip(crops, again):
    np.testing.assert_array_equal(c, d)
    assert c.shape == (2, 3, 1)
    top, left = divmod(int(c[0, 0, 0]), 6)          # a real window of the image
    np.testing.assert_array_equal(c, img[top:top + 2, left:left + 3])
  assert len({float(c[0, 0, 0]) for c in crops}) > 1


# --------------------------------------------------------------------------- #
# Panels
# --------------------------------------------------------------------------- #


def test_make_grid_layout():
  n, h, w = 5, 2, 3
  batch = np.stack([np.full((h, w, 3), (i + 1) / 10, np.float32) for i in range(n)])
  grid = images.make_grid(batch, nrow=3, pad=1, pad_value=0.9)
  assert grid.shape == (2 * (h + 1) + 1, 3 * (w + 1) + 1, 3)
  expected = np.full(grid.shape, 0.9, np.float32)
  for i in range(n):
    r, c = divmod(i, 3)
    top, left = 1 + r * (h + 1), 1 + c * (w + 1)
    expected[top:top + h, left:left + w] = (i + 1) / 10
  np.testing.assert_array_equal(grid, expected)
  assert grid[4, 9, 0] == np.float32(0.9)          # unused cell (row 1, col 2)
  one = images.make_grid(batch[:, :, :, :1], nrow=8, pad=0)
  assert one.shape == (h, n * w, 1)
  np.testing.assert_array_equal(one[0, ::w, 0], batch[:, 0, 0, 0])


def test_side_by_side():
  a = np.zeros((10, 20, 3), np.float32)
  b = np.ones((20, 20, 1), np.float32)             # grayscale, taller: resized to height 10
  c = np.full((5, 15, 3), 0.5, np.float32)         # shorter: upscaled to 10 x 30
  out = images.side_by_side([a, b, c], pad=2, pad_value=0.7)
  assert out.shape == (10, 20 + 2 + 10 + 2 + 30, 3)
  np.testing.assert_array_equal(out[:, :20], 0.0)
  np.testing.assert_array_equal(out[:, 20:22], np.float32(0.7))
  np.testing.assert_allclose(out[:, 22:32], 1.0, atol=1e-5)
  np.testing.assert_allclose(out[:, 34:], 0.5, atol=1e-5)
  assert images.side_by_side([a, c], height=40, pad=0).shape == (40, 80 + 120, 3)
