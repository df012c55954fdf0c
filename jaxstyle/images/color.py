"""Colour science for style transfer: YIQ, luminance and colour matching.

Images are float RGB in [0, 1], any leading shape ``[..., 3]``. The YIQ and
luminance functions use only array methods and ``@``, so they take NumPy or
JAX arrays (also under ``jax.jit``) and return the same kind, in the input's
dtype; ``match_color`` is NumPy (float64 inside, float32 out).

* YIQ uses the FCC NTSC matrix (rows Y, I, Q); ``yiq_to_rgb`` is its exact
  inverse and does not clip.
* ``match_luminance``: the style's luminance standardised to the content
  luminance's mean and std, clipped to [0, 1], as 3 equal channels (Gatys et
  al. 2016, "Preserving colour in neural artistic style transfer").
* ``match_color``: affine colour transfer, style pixels mapped to the
  content's RGB mean and covariance, clipped to [0, 1].
"""

from __future__ import annotations

from typing import Any

import numpy as np

# RGB -> YIQ (FCC NTSC); rows Y, I, Q.
RGB_TO_YIQ = np.array([[0.299, 0.587, 0.114],
                       [0.595716, -0.274453, -0.321263],
                       [0.211456, -0.522591, 0.311135]], np.float64)
YIQ_TO_RGB = np.linalg.inv(RGB_TO_YIQ)


def rgb_to_yiq(images: Any) -> Any:
  """``[..., 3]`` RGB -> YIQ (same shape and dtype)."""
  return images @ RGB_TO_YIQ.T.astype(images.dtype)


def yiq_to_rgb(images: Any) -> Any:
  """``[..., 3]`` YIQ -> RGB (same shape and dtype; not clipped)."""
  return images @ YIQ_TO_RGB.T.astype(images.dtype)


def luminance(images: Any) -> Any:
  """``[..., 3]`` RGB -> ``[..., 1]`` YIQ luminance."""
  return rgb_to_yiq(images)[..., :1]


def match_luminance(style: Any, content: Any) -> Any:
  """Style luminance with the content luminance's mean/std, clipped, as 3 equal channels."""
  ys, yc = luminance(style), luminance(content)
  y = (ys - ys.mean()) / (ys.std() + 1e-6) * yc.std() + yc.mean()
  return y.clip(0.0, 1.0).repeat(3, axis=-1)


def match_color(style: np.ndarray, content: np.ndarray) -> np.ndarray:
  """Affine colour transfer: style pixels with the content's RGB mean and covariance.

  ``x' = A (x − μ_s) + μ_c`` with ``A = Σ_c^½ Σ_s^−½`` (symmetric square
  roots, float64), then clipped to [0, 1]. Shapes ``[H, W, 3]`` in/out.
  """
  s = np.asarray(style, np.float64).reshape(-1, 3)
  c = np.asarray(content, np.float64).reshape(-1, 3)
  mu_s, mu_c = s.mean(0), c.mean(0)
  eps = 1e-5 * np.eye(3)

  def sqrtm(m, power):
    vals, vecs = np.linalg.eigh(m)
    return (vecs * np.maximum(vals, 1e-12) ** power) @ vecs.T

  a = sqrtm(np.cov(c.T) + eps, 0.5) @ sqrtm(np.cov(s.T) + eps, -0.5)
  out = (s - mu_s) @ a.T + mu_c
  return np.clip(out, 0, 1).reshape(np.shape(style)).astype(np.float32)
