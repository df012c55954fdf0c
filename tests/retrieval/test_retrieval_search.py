"""jaxstyle.retrieval.search: streamed top-k and leave-one-out against float64 references."""

import numpy as np
import pytest

from jaxstyle import retrieval as R


@pytest.mark.parametrize("n,chunk,k", [(1000, 128, 7), (257, 64, 300), (50, 1000, 5)])
def test_topk_streaming_equals_float64_brute_force(n, chunk, k):
  rng = np.random.default_rng(n)
  db = rng.standard_normal((n, 16)).astype(np.float32)
  q = rng.standard_normal((4, 16)).astype(np.float32)
  scores, idx = R.topk_search(q, db, k, chunk_size=chunk)
  ref_scores = q.astype(np.float64) @ db.astype(np.float64).T
  kk = min(k, n)
  ref_idx = np.argsort(-ref_scores, axis=1, kind="stable")[:, :kk]
  assert idx.shape == (4, kk) and scores.shape == (4, kk)
  np.testing.assert_array_equal(idx, ref_idx)
  np.testing.assert_allclose(scores, np.take_along_axis(ref_scores, ref_idx, 1), atol=1e-5)


def test_topk_ties_go_to_lower_index():
  db = np.ones((10, 4), np.float32)
  _, idx = R.topk_search(np.ones((1, 4), np.float32), db, 4, chunk_size=3)
  np.testing.assert_array_equal(idx[0], [0, 1, 2, 3])


def test_leave_one_out_matches_loop_reference():
  rng = np.random.default_rng(0)
  x = rng.standard_normal((30, 5))
  labels = rng.integers(0, 3, 30)
  got = R.leave_one_out(x, labels)
  xn = x / np.linalg.norm(x, axis=1, keepdims=True)
  p1, p5, aps = [], [], []
  for i in range(30):
    sims = [(float(xn[i] @ xn[j]), j) for j in range(30) if j != i]
    ranked = [j for _, j in sorted(sims, key=lambda t: -t[0])]
    rel = [labels[j] == labels[i] for j in ranked]
    p1.append(rel[0])
    p5.append(np.mean(rel[:5]))
    hits, precisions = 0, []
    for r, ok in enumerate(rel, 1):
      if ok:
        hits += 1
        precisions.append(hits / r)
    aps.append(np.mean(precisions))
  assert got["p_at_1"] == pytest.approx(np.mean(p1))
  assert got["p_at_5"] == pytest.approx(np.mean(p5))
  assert got["map"] == pytest.approx(np.mean(aps))
