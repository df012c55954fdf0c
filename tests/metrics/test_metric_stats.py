"""Tests of jaxstyle.metrics.stats against float64 references written here."""

import numpy as np
import pytest

from jaxstyle import metrics


# ----------------------------------------------------------------------------
# Independent float64 references (written here, not calling jaxstyle.metrics).


def _ref_sqrtm_denman_beavers(a, iters=100):
  """Principal square root of a matrix with positive real eigenvalues (Denman-Beavers)."""
  y, z = a.copy(), np.eye(a.shape[0])
  for _ in range(iters):
    y, z = 0.5 * (y + np.linalg.inv(z)), 0.5 * (z + np.linalg.inv(y))
  return y


def _ref_frechet(mu1, s1, mu2, s2):
  covmean = _ref_sqrtm_denman_beavers(s1 @ s2)
  return float(np.sum((mu1 - mu2) ** 2) + np.trace(s1) + np.trace(s2) - 2 * np.trace(covmean))


def _random_spd(rng, d, scale=1.0):
  a = rng.normal(size=(d, d))
  return scale * (a @ a.T / d + 0.1 * np.eye(d))


def test_gaussian_stats_matches_numpy_cov():
  x = np.random.default_rng(0).normal(size=(50, 4)).astype(np.float32)
  mu, sigma = metrics.gaussian_stats(x)
  assert mu.dtype == np.float64 and sigma.dtype == np.float64
  np.testing.assert_allclose(mu, x.astype(np.float64).mean(0), rtol=1e-12)
  np.testing.assert_allclose(sigma, np.cov(x.astype(np.float64), rowvar=False), rtol=1e-10)


def test_sqrtm_psd_squares_back_and_handles_rank_deficiency():
  rng = np.random.default_rng(1)
  a = _random_spd(rng, 6)
  r = metrics.sqrtm_psd(a)
  np.testing.assert_allclose(r @ r, a, atol=1e-10)
  np.testing.assert_allclose(r, r.T, atol=1e-12)
  b = rng.normal(size=(6, 2))
  low_rank = b @ b.T  # rank 2: eigenvalues round to tiny negatives
  r = metrics.sqrtm_psd(low_rank)
  assert np.all(np.isfinite(r))
  np.testing.assert_allclose(r @ r, low_rank, atol=1e-7)


def test_frechet_identical_gaussians_is_zero():
  rng = np.random.default_rng(2)
  mu, s = rng.normal(size=8), _random_spd(rng, 8)
  assert abs(metrics.frechet_distance(mu, s, mu, s)) < 1e-9


def test_frechet_diagonal_closed_form():
  rng = np.random.default_rng(3)
  mu1, mu2 = rng.normal(size=5), rng.normal(size=5)
  v1, v2 = rng.uniform(0.1, 3, size=5), rng.uniform(0.1, 3, size=5)
  expected = np.sum((mu1 - mu2) ** 2) + np.sum((np.sqrt(v1) - np.sqrt(v2)) ** 2)
  got = metrics.frechet_distance(mu1, np.diag(v1), mu2, np.diag(v2))
  np.testing.assert_allclose(got, expected, rtol=1e-10)


@pytest.mark.parametrize("d,seed", [(3, 0), (16, 1), (64, 2)])
def test_frechet_random_spd_matches_denman_beavers_reference(d, seed):
  rng = np.random.default_rng(seed)
  mu1, mu2 = rng.normal(size=d), rng.normal(size=d)
  s1, s2 = _random_spd(rng, d), _random_spd(rng, d, scale=2.0)
  np.testing.assert_allclose(metrics.frechet_distance(mu1, s1, mu2, s2),
                             _ref_frechet(mu1, s1, mu2, s2), rtol=1e-8)


def test_fid_from_features_matches_reference_on_samples():
  rng = np.random.default_rng(4)
  a = rng.normal(size=(400, 10))
  b = rng.normal(size=(300, 10)) @ rng.normal(size=(10, 10)) * 0.5 + 1.0
  ref = _ref_frechet(a.mean(0), np.cov(a, rowvar=False), b.mean(0), np.cov(b, rowvar=False))
  np.testing.assert_allclose(metrics.fid_from_features(a, b), ref, rtol=1e-8)
  # Symmetric in its arguments.
  np.testing.assert_allclose(metrics.fid_from_features(b, a), ref, rtol=1e-8)


def test_frechet_rejects_shape_mismatch():
  with pytest.raises(metrics.MetricError):
    metrics.frechet_distance(np.zeros(3), np.eye(3), np.zeros(4), np.eye(4))


# ----------------------------------------------------------------------------
# Inception score and pairwise distances.


def test_inception_score_bounds():
  k = 10
  uniform = np.full((100, k), 1.0 / k)
  assert metrics.inception_score(uniform)[0] == pytest.approx(1.0, abs=1e-9)
  one_hot = np.eye(k)[np.arange(200) % k]
  assert metrics.inception_score(one_hot)[0] == pytest.approx(k, rel=1e-9)
  collapsed = np.eye(k)[np.zeros(50, int)]  # confident but one class only
  assert metrics.inception_score(collapsed)[0] == pytest.approx(1.0, abs=1e-9)


def test_inception_score_matches_reference_and_splits():
  rng = np.random.default_rng(5)
  logits = rng.normal(size=(120, 7)) * 2
  p = np.exp(logits) / np.exp(logits).sum(1, keepdims=True)

  def ref(q):
    py = q.mean(0)
    return np.exp(np.mean([np.sum(row * np.log(row / py)) for row in q]))

  mean, std = metrics.inception_score(p)
  assert mean == pytest.approx(ref(p), rel=1e-9) and std == 0.0
  assert 1.0 <= mean <= 7.0
  mean3, std3 = metrics.inception_score(p, num_splits=3)
  parts = [ref(p[i * 40:(i + 1) * 40]) for i in range(3)]
  assert mean3 == pytest.approx(np.mean(parts), rel=1e-9)
  assert std3 == pytest.approx(np.std(parts), rel=1e-9)
  np.testing.assert_allclose(metrics.softmax(logits), p, rtol=1e-12)


def test_mean_pairwise_distance_matches_loop():
  x = np.random.default_rng(6).normal(size=(9, 2, 3))
  flat = x.reshape(9, -1)
  ref = np.mean([np.linalg.norm(flat[i] - flat[j]) for i in range(9) for j in range(9) if i != j])
  assert metrics.mean_pairwise_distance(x) == pytest.approx(ref, rel=1e-10)
  assert metrics.mean_pairwise_distance(np.ones((5, 3))) == 0.0
