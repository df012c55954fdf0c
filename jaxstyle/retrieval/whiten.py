"""PCA whitening of base descriptors (unsupervised, fitted on a library).

PCA is fitted on the library's base descriptors ``[N, D]``, keeping
``whiten_dim`` components, each divided by ``(λ_i + reg·λ_1)^(α/2)``
(``α = whiten_alpha``, ``reg = whiten_reg``); the result is L2-normalised:
the *search descriptor* ``[d]``. ``build_index`` refits it every time it
writes a complete index; queries are mapped with the stored parameters. Libraries smaller than
``whiten_min_images`` are not whitened (search descriptor = base descriptor).
"""

from __future__ import annotations

import dataclasses

import numpy as np

from jaxstyle.retrieval.descriptors import DescriptorConfig


@dataclasses.dataclass(frozen=True)
class Whitening:
  """``y = l2n((x − mean) @ proj)``; ``proj`` [D, d] has the scaling folded in."""

  mean: np.ndarray
  proj: np.ndarray

  @property
  def dim(self) -> int:
    return int(self.proj.shape[1])


def fit_whitening(base: np.ndarray, config: DescriptorConfig,
                  max_samples: int = 50_000) -> Whitening | None:
  """PCA whitening fitted on base descriptors ``[N, D]`` (float64 internally).

  Returns ``None`` when the config has no whitening or the library has fewer
  than ``config.whiten_min_images`` descriptors. Libraries larger than
  ``max_samples`` are fitted on an evenly spaced subset (deterministic).
  """
  n = base.shape[0]
  if not config.whitening or n < max(config.whiten_min_images, 2):
    return None
  x = np.asarray(base, np.float64)
  if n > max_samples:
    x = x[np.linspace(0, n - 1, max_samples).round().astype(np.int64)]
  mean = x.mean(axis=0)
  xc = x - mean
  m = xc.shape[0]
  if m <= xc.shape[1]:  # kernel trick: eigenvectors of the m×m Gram.
    ev, u = np.linalg.eigh(xc @ xc.T)
    ev, u = ev[::-1], u[:, ::-1]
    keep = min(config.whiten_dim, int(np.sum(ev > ev[0] * 1e-10)))
    ev, u = np.maximum(ev[:keep], 0.0), u[:, :keep]
    axes = (xc.T @ u) / np.sqrt(np.maximum(ev, 1e-300))  # [D, keep], unit columns
  else:
    ev, v = np.linalg.eigh(xc.T @ xc)
    ev, v = ev[::-1], v[:, ::-1]
    keep = min(config.whiten_dim, int(np.sum(ev > ev[0] * 1e-10)))
    ev, axes = np.maximum(ev[:keep], 0.0), v[:, :keep]
  var = ev / m
  scale = (var + config.whiten_reg * var[0]) ** (-config.whiten_alpha / 2.0)
  # Fix each axis' sign (largest-magnitude loading positive): deterministic output.
  signs = np.sign(axes[np.argmax(np.abs(axes), axis=0), np.arange(keep)])
  signs[signs == 0] = 1.0
  proj = axes * signs * scale
  return Whitening(mean=mean.astype(np.float32), proj=proj.astype(np.float32))


def apply_whitening(base: np.ndarray, whitening: Whitening | None) -> np.ndarray:
  """Search descriptors ``[N, d]`` float32, L2-normalised (identity if ``None``)."""
  base = np.asarray(base, np.float32)
  if whitening is None:
    return base
  y = (base - whitening.mean) @ whitening.proj
  return (y / np.maximum(np.linalg.norm(y, axis=1, keepdims=True), 1e-12)).astype(np.float32)
