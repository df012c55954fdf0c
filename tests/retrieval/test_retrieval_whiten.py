"""jaxstyle.retrieval.whiten: PCA whitening against an SVD reference."""

import numpy as np

from jaxstyle import retrieval as R


def test_whitening_matches_svd_reference():
  rng = np.random.default_rng(0)
  for n, d in ((30, 50), (80, 12)):  # kernel-trick path and covariance path
    x = rng.standard_normal((n, d)) @ rng.standard_normal((d, d))
    x /= np.linalg.norm(x, axis=1, keepdims=True)
    config = R.DescriptorConfig(whiten_dim=6, whiten_alpha=0.5, whiten_reg=0.1,
                                whiten_min_images=2)
    w = R.fit_whitening(x.astype(np.float32), config)
    got = R.apply_whitening(x.astype(np.float32), w)
    xc = x - x.mean(0)
    _, s, vt = np.linalg.svd(xc, full_matrices=False)
    var = s[:6] ** 2 / n
    y = xc @ vt[:6].T / (var + 0.1 * var[0]) ** 0.25
    y /= np.linalg.norm(y, axis=1, keepdims=True)
    # Axis signs are a convention: compare the (sign-free) cosine matrices.
    np.testing.assert_allclose(got @ got.T, y @ y.T, atol=1e-4)
  small = R.DescriptorConfig(whiten_dim=6, whiten_min_images=100)
  assert R.fit_whitening(x[:50].astype(np.float32), small) is None
