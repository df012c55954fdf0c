"""FID / Inception-Score math and distances: generic, extractor-agnostic statistics.

NumPy, float64 throughout; any feature extractor or classifier plugs in.

* ``gaussian_stats(features [N, D]) -> (mu [D], sigma [D, D])``
* ``sqrtm_psd(a)``, ``trace_sqrt_product(s1, s2)``,
  ``frechet_distance(mu1, sigma1, mu2, sigma2)``, ``fid_from_features(a, b)``
* ``inception_score(probs [N, C], num_splits=1) -> (mean, std)``, ``softmax(logits)``
* ``mean_pairwise_distance(x)``, ``per_class_pairwise_distance(x, labels, c)``

Bad shapes raise ``MetricError``. FID is biased upward for small samples:
compare FIDs only when computed from the same numbers of images.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from jaxstyle.metrics.registry import MetricError


def gaussian_stats(features: Any) -> tuple[np.ndarray, np.ndarray]:
  """Mean float64 [D] and unbiased covariance float64 [D, D] of features [N, D] (N >= 2)."""
  x = np.asarray(features, np.float64)
  if x.ndim != 2 or x.shape[0] < 2:
    raise MetricError(f"gaussian_stats needs features [N >= 2, D], got shape {x.shape}")
  mu = x.mean(axis=0)
  centered = x - mu
  sigma = centered.T @ centered / (x.shape[0] - 1)
  return mu, sigma


def sqrtm_psd(a: Any) -> np.ndarray:
  """Symmetric square root of a symmetric positive semi-definite matrix, float64.

  ``a`` is symmetrised, diagonalised with ``numpy.linalg.eigh`` (a = V diag(w) V^T),
  and rebuilt as V diag(sqrt(max(w, 0))) V^T. Clamping the tiny negative
  eigenvalues that rounding gives rank-deficient covariances (e.g. dead ReLU
  features) keeps the result real and PSD.
  """
  a = np.asarray(a, np.float64)
  a = 0.5 * (a + a.T)
  w, v = np.linalg.eigh(a)
  return (v * np.sqrt(np.clip(w, 0.0, None))) @ v.T


def trace_sqrt_product(sigma1: Any, sigma2: Any) -> float:
  """tr((sigma1 sigma2)^{1/2}) for symmetric PSD sigma1, sigma2, in float64.

  sigma1 sigma2 is not symmetric, but it is similar to the symmetric PSD matrix
  M = sigma1^{1/2} sigma2 sigma1^{1/2} (conjugate by sigma1^{1/2}), so both have
  the same non-negative eigenvalues and tr((sigma1 sigma2)^{1/2}) = sum_i sqrt(eig_i(M)).
  We compute sigma1^{1/2} with ``sqrtm_psd`` and the eigenvalues of M with
  ``eigvalsh``: only symmetric eigendecompositions, no general (complex) matrix
  square root, no SciPy, no iteration that can fail to converge.
  """
  s1_half = sqrtm_psd(sigma1)
  m = s1_half @ np.asarray(sigma2, np.float64) @ s1_half
  w = np.linalg.eigvalsh(0.5 * (m + m.T))
  return float(np.sqrt(np.clip(w, 0.0, None)).sum())


def frechet_distance(mu1: Any, sigma1: Any, mu2: Any, sigma2: Any) -> float:
  """Squared Frechet (2-Wasserstein) distance between N(mu1, sigma1) and N(mu2, sigma2).

  d^2 = |mu1 - mu2|^2 + tr(sigma1) + tr(sigma2) - 2 tr((sigma1 sigma2)^{1/2}),
  computed in float64 (see ``trace_sqrt_product``); rounding below zero is
  clamped to 0. mu: [D]; sigma: [D, D] symmetric PSD.
  """
  mu1, mu2 = np.asarray(mu1, np.float64), np.asarray(mu2, np.float64)
  sigma1, sigma2 = np.asarray(sigma1, np.float64), np.asarray(sigma2, np.float64)
  d = mu1.shape[0]
  if mu1.shape != (d,) or mu2.shape != (d,) or sigma1.shape != (d, d) or sigma2.shape != (d, d):
    raise MetricError(f"frechet_distance: shape mismatch mu1 {mu1.shape}, sigma1 {sigma1.shape}, "
                      f"mu2 {mu2.shape}, sigma2 {sigma2.shape}")
  diff = mu1 - mu2
  value = diff @ diff + np.trace(sigma1) + np.trace(sigma2) - 2.0 * trace_sqrt_product(sigma1, sigma2)
  return float(max(value, 0.0))


def fid_from_features(feats_a: Any, feats_b: Any) -> float:
  """Frechet distance between Gaussians fitted to features [Na, D] and [Nb, D].

  Works with any feature extractor (the oracle's penultimate layer here,
  Inception pool3 for the classic FID). Note the estimate is biased upward for
  small N, so only compare FIDs computed with the same sample sizes.
  """
  return frechet_distance(*gaussian_stats(feats_a), *gaussian_stats(feats_b))


def inception_score(probs: Any, num_splits: int = 1, eps: float = 1e-12) -> tuple[float, float]:
  """Inception-Score analogue of class probabilities [N, C] from any classifier.

  IS = exp(E_x KL(p(y|x) || p(y))), p(y) the mean of p(y|x) over the split,
  computed in float64. Ranges from 1 (every image gets the same distribution)
  to C (confident, one-hot predictions with balanced classes). With
  ``num_splits`` > 1 the N rows are cut into equal consecutive splits and the
  mean and (population) std of the per-split scores are returned; otherwise std = 0.
  """
  p = np.asarray(probs, np.float64)
  if p.ndim != 2 or p.shape[0] < num_splits or num_splits < 1:
    raise MetricError(f"inception_score needs probs [N >= num_splits, C] and num_splits >= 1, "
                      f"got shape {p.shape}, num_splits={num_splits}")
  scores = []
  for part in np.array_split(p, num_splits):
    py = part.mean(axis=0, keepdims=True)
    kl = np.sum(part * (np.log(part + eps) - np.log(py + eps)), axis=1)
    scores.append(np.exp(kl.mean()))
  return float(np.mean(scores)), float(np.std(scores))


def mean_pairwise_distance(x: Any) -> float:
  """Mean Euclidean distance over all pairs i != j of rows of x [N >= 2, ...], float64."""
  x = np.asarray(x, np.float64).reshape(np.shape(x)[0], -1)
  n = x.shape[0]
  if n < 2:
    raise MetricError(f"mean_pairwise_distance needs at least 2 rows, got {n}")
  sq = np.einsum("ij,ij->i", x, x)
  d2 = sq[:, None] + sq[None, :] - 2.0 * (x @ x.T)
  np.fill_diagonal(d2, 0.0)
  return float(np.sqrt(np.clip(d2, 0.0, None)).sum() / (n * (n - 1)))


def per_class_pairwise_distance(x: Any, labels: Any, num_classes: int,
                                max_per_class: int | None = 1000) -> np.ndarray:
  """``mean_pairwise_distance`` of the rows of each class -> float64 [num_classes].

  At most ``max_per_class`` rows (the first ones) of each class are used, to
  bound the O(n^2) cost. Classes with fewer than 2 rows raise MetricError.
  """
  x = np.asarray(x)
  labels = np.asarray(labels)
  out = np.zeros(num_classes, np.float64)
  for c in range(num_classes):
    rows = x[labels == c][:max_per_class]
    if rows.shape[0] < 2:
      raise MetricError(f"per-class diversity needs >= 2 images of class {c}, got {rows.shape[0]}")
    out[c] = mean_pairwise_distance(rows)
  return out


def softmax(logits: Any) -> np.ndarray:
  """Row softmax in float64 of logits [N, C]."""
  z = np.asarray(logits, np.float64)
  z = z - z.max(axis=-1, keepdims=True)
  e = np.exp(z)
  return e / e.sum(axis=-1, keepdims=True)
