"""Tests of jaxstyle.data.StyleCrops: crops are slices of the right style with its Grams, seeded, split."""

import numpy as np
import pytest

from jaxstyle.data import StyleCrops
from jaxstyle.errors import ConfigError, DataError

N, S, C = 5, 12, 4


def _pool(seed=0, **kw):
  rng = np.random.default_rng(seed)
  images = (rng.integers(0, 256, (N, S, S, 3)) / 255.0).astype(np.float32)  # exact in uint8
  grams = {"relu1_1": rng.standard_normal((N, 3, 3)).astype(np.float32),
           "relu2_1": rng.standard_normal((N, 6, 6)).astype(np.float32)}
  return images, grams, StyleCrops(images, grams, C, 8, seed=7, **kw)


def test_each_crop_is_a_slice_of_its_style_with_that_styles_grams():
  images, grams, pool = _pool()
  batch = pool.batch(3)
  idx, offsets = pool.global_draws(3)
  assert batch["style"].shape == (8, C, C, 3) and batch["style"].dtype == np.float32
  for k, (i, (t, l)) in enumerate(zip(idx, offsets)):
    assert 0 <= t <= S - C and 0 <= l <= S - C
    np.testing.assert_array_equal(batch["style"][k], images[i, t:t + C, l:l + C])
    for layer, g in grams.items():
      np.testing.assert_array_equal(batch["style_grams"][layer][k], g[i])


def test_draws_are_seeded_by_step_and_cover_the_styles():
  _, _, pool = _pool()
  a, b = pool.batch(5), pool.batch(5)
  np.testing.assert_array_equal(a["style"], b["style"])
  assert not np.array_equal(pool.global_draws(5)[0], pool.global_draws(6)[0])
  counts = np.bincount(np.concatenate([pool.global_draws(s)[0] for s in range(400)]), minlength=N)
  # 3200 uniform draws over 5 styles: 640 each, std about 23
  assert counts.min() > 540 and counts.max() < 740, counts
  other = StyleCrops(*_pool()[:2], C, 8, seed=8)
  assert not np.array_equal(other.global_draws(5)[0], pool.global_draws(5)[0])


def test_process_slices_concatenate_to_the_one_process_batch():
  _, _, whole = _pool()
  parts = [_pool(process_index=p, process_count=2)[2].batch(2) for p in range(2)]
  np.testing.assert_array_equal(np.concatenate([p["style"] for p in parts]), whole.batch(2)["style"])
  np.testing.assert_array_equal(np.concatenate([p["style_grams"]["relu2_1"] for p in parts]),
                                whole.batch(2)["style_grams"]["relu2_1"])


def test_bad_inputs_are_refused():
  images, grams, _ = _pool()
  with pytest.raises(DataError, match="stacked squares"):
    StyleCrops(images[:, :, :10], grams, C, 8, 0)
  with pytest.raises(DataError, match="smaller than the 13x13 crops"):
    StyleCrops(images, grams, 13, 8, 0)
  with pytest.raises(DataError, match="for the 5 style images"):
    StyleCrops(images, {"relu1_1": grams["relu1_1"][:4]}, C, 8, 0)
  with pytest.raises(ConfigError, match="does not split over 3 processes"):
    StyleCrops(images, grams, C, 8, 0, process_count=3)


def test_weights_set_the_share_of_each_style():
  images, grams, _ = _pool()
  pool = StyleCrops(images, grams, C, 8, seed=3, weights=[2, 2, 0, 0, 0])
  idx = np.concatenate([pool.global_draws(s)[0] for s in range(200)])
  assert set(idx.tolist()) == {0, 1} and 700 < np.sum(idx == 0) < 900  # 1600 draws, half each
  with pytest.raises(ConfigError, match="5 finite non-negative"):
    StyleCrops(images, grams, C, 8, 0, weights=[1, -1, 0, 0, 0])
