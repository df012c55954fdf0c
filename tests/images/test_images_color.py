"""Tests of jaxstyle.images.color on real data."""

import os

import numpy as np

from jaxstyle import images

CONTENT = "content/skimage_chelsea.png"
STYLE = "styles/vangogh_starry_night.jpg"


def _img(shared_data, rel, size):
  return images.load_image(os.path.join(shared_data, rel), size)


def test_match_color_moments(shared_data):
  content = _img(shared_data, CONTENT, 64)
  style = _img(shared_data, STYLE, 64)
  out = images.match_color(style, content).reshape(-1, 3).astype(np.float64)
  c = content.reshape(-1, 3).astype(np.float64)
  # Clipping to [0, 1] perturbs the moments slightly.
  np.testing.assert_allclose(out.mean(0), c.mean(0), atol=0.01)
  np.testing.assert_allclose(np.cov(out.T), np.cov(c.T), atol=0.004)
