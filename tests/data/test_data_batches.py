"""Tests of jaxstyle.data.batches: float conversion and the seeded batch iterator."""

import numpy as np
import pytest

from jaxstyle import data


def test_to_float_nhwc():
  x = np.array([[[0, 255], [51, 102]]], np.uint8)
  y = data.to_float_nhwc(x)
  assert y.shape == (1, 2, 2, 1) and y.dtype == np.float32
  np.testing.assert_allclose(y[0, :, :, 0], [[0.0, 1.0], [0.2, 0.4]], rtol=1e-6)


def _iterator(n=50, batch=8, seed=3, **kw):
  arrays = {"x": np.arange(n) * 10, "y": np.arange(n)}
  return data.BatchIterator(arrays, batch, seed=seed, **kw)


def test_batches_cover_each_epoch_once_and_drop_remainder():
  it = _iterator()
  assert it.steps_per_epoch == 6
  for epoch in range(3):
    seen = np.concatenate([it.batch(epoch * 6 + s)["y"] for s in range(6)])
    assert len(set(seen.tolist())) == 48  # no repeats; 2 examples dropped
    np.testing.assert_array_equal(seen, it.permutation(epoch)[:48])
  assert not np.array_equal(it.permutation(0), it.permutation(1))  # reshuffled per epoch
  b = it.batch(7)
  np.testing.assert_array_equal(b["x"], b["y"] * 10)  # arrays stay aligned


def test_batches_are_seeded_and_random_access():
  a, b, c = _iterator(seed=3), _iterator(seed=3), _iterator(seed=4)
  for step in (0, 5, 13):
    np.testing.assert_array_equal(a.batch(step)["y"], b.batch(step)["y"])
  assert not np.array_equal(a.batch(0)["y"], c.batch(0)["y"])
  # Resuming at step k reads what an uninterrupted pass reads at step k.
  sequential = [batch["y"] for _, batch in _iterator(seed=3).iterate(0, 15)]
  resumed = [batch["y"] for _, batch in _iterator(seed=3).iterate(9, 6)]
  for k in range(6):
    np.testing.assert_array_equal(sequential[9 + k], resumed[k])


def test_process_shards_partition_the_global_batch():
  full = _iterator(batch=12)
  shards = [_iterator(batch=12, process_index=p, process_count=3) for p in range(3)]
  for step in (0, 4, 9):
    parts = [s.batch(step)["y"] for s in shards]
    assert all(len(p) == 4 for p in parts)
    np.testing.assert_array_equal(np.concatenate(parts), full.batch(step)["y"])


def test_iterator_errors():
  with pytest.raises(data.DataError, match="not divisible"):
    _iterator(batch=10, process_count=3)
  with pytest.raises(data.DataError, match="batch size"):
    _iterator(batch=51)
  with pytest.raises(data.DataError, match="common length"):
    data.BatchIterator({"x": np.zeros(3), "y": np.zeros(4)}, 1, seed=0)
