"""Tests of jaxstyle.metrics registry and generator metrics: real-data sanity, determinism."""

import os

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from jaxstyle import data as jdata
from jaxstyle import metrics
from jaxstyle.nets import classifier


# ----------------------------------------------------------------------------
# Registry.


def test_registry_builtins_and_errors():
  for name in metrics.DEFAULT_METRICS:
    assert name in metrics.registered()
  with pytest.raises(metrics.MetricError, match="registered metrics: .*fid"):
    metrics.get("no_such_metric")
  with pytest.raises(ValueError, match="already registered"):
    metrics.register("fid")(lambda data: {})


def test_registry_custom_metric_is_used_by_evaluator(oracle, real_small):
  images, labels = real_small

  @metrics.register("test_mean_pixel")
  def _mean_pixel(data):
    return {"mean_pixel": float(data.fake_images.mean()), "n": float(data.fake_labels.shape[0])}

  try:
    ev = metrics.Evaluator(oracle, images, labels, names=("test_mean_pixel",), num_samples=40,
                           sample_batch_size=16)
    out = ev.evaluate_images(images[:30], labels[:30])
    assert out == {"mean_pixel": pytest.approx(float(images[:30].mean())), "n": 30.0}
  finally:
    metrics.unregister("test_mean_pixel")
  assert "test_mean_pixel" not in metrics.registered()
  with pytest.raises(metrics.MetricError):
    metrics.Evaluator(oracle, images, labels, names=("test_mean_pixel",))


# ----------------------------------------------------------------------------
# With the committed oracle on real MNIST (a few thousand images at most).


@pytest.fixture(scope="module")
def oracle():
  return classifier.load_oracle()


@pytest.fixture(scope="module")
def mnist_test(shared_data):
  images, labels = jdata.load_mnist_idx(os.path.join(shared_data, "mnist"), "test")
  return jdata.to_float_nhwc(images), labels


@pytest.fixture(scope="module")
def real_small(mnist_test):
  images, labels = mnist_test
  return images[:2000], labels[:2000]


def _real_sampler(pool_images, pool_labels):
  """sample_fn drawing real images of the requested labels (a 'perfect' generator)."""
  by_class = [jnp.asarray(pool_images[pool_labels == c]) for c in range(10)]

  def sample_fn(key, labels):
    out = []
    keys = jax.random.split(key, labels.shape[0])
    for k, y in zip(keys, np.asarray(labels)):
      i = jax.random.randint(k, (), 0, by_class[y].shape[0])
      out.append(by_class[y][i])
    return jnp.stack(out)

  return sample_fn


def _collapsed_sampler(pool_images, pool_labels):
  """sample_fn returning one fixed real image per class (total mode collapse)."""
  firsts = jnp.asarray(np.stack([pool_images[pool_labels == c][0] for c in range(10)]))
  return lambda key, labels: firsts[labels]


def _noise_sampler(key, labels):
  return jax.random.uniform(key, (labels.shape[0], 28, 28, 1))


def test_metrics_on_real_and_fake_generators(oracle, mnist_test):
  images, labels = mnist_test
  ref_images, ref_labels = images[:1000], labels[:1000]
  pool_images, pool_labels = images[1000:3000], labels[1000:3000]
  ev = metrics.Evaluator(oracle, ref_images, ref_labels, num_samples=500, sample_batch_size=100)
  key = jax.random.key(0)

  real = ev(_real_sampler(pool_images, pool_labels), key)
  collapsed = ev(_collapsed_sampler(pool_images, pool_labels), key)
  noise = ev(_noise_sampler, key)

  # A generator that returns real digits: accurate, diverse, FID near the floor.
  assert real["oracle_accuracy"] >= 0.97  # 500 draws; the 0.99 claim is tested on all 10k
  assert 0.85 <= real["diversity"] <= 1.15 and 0.85 <= real["diversity_pixel"] <= 1.15
  assert real["inception_score"] > 8.5
  floor = ev.fid_floor(pool_images[:500])
  assert real["fid"] < 2.0 * floor
  # Mode collapse: still "accurate", but zero diversity and a much larger FID.
  assert collapsed["diversity"] == pytest.approx(0.0, abs=1e-6)
  assert collapsed["diversity_pixel"] == pytest.approx(0.0, abs=1e-6)
  assert collapsed["fid"] > 10 * real["fid"]
  # Noise: chance-level accuracy, huge FID.
  assert noise["oracle_accuracy"] < 0.3
  assert noise["fid"] > 50 * real["fid"]
  for r in (real, collapsed, noise):
    assert set(r) == {"oracle_accuracy", "oracle_accuracy_min_class", "fid", "inception_score",
                      "diversity", "diversity_min", "diversity_pixel"}


def test_fid_floor_real_vs_real_is_small(oracle, mnist_test, shared_data):
  test_images, _ = mnist_test
  train_u8, _ = jdata.load_mnist_idx(os.path.join(shared_data, "mnist"), "train")
  # Seeded random subsets: MNIST's files are ordered by writer population (test[:5000] vs
  # test[5000:] alone gives FID ~23), so first-N slices overstate the floor.
  rng = np.random.default_rng(0)
  test_sub = test_images[rng.permutation(test_images.shape[0])[:2000]]
  train_sub = jdata.to_float_nhwc(train_u8[rng.permutation(train_u8.shape[0])[:2000]])
  floor = metrics.fid_floor(oracle, test_sub, train_sub)
  # Real test vs real train, against real test vs noisy (sigma 0.3) but still legible test images.
  noisy = np.clip(train_sub + 0.3 * rng.normal(size=train_sub.shape), 0, 1).astype(np.float32)
  corrupted = metrics.fid_floor(oracle, test_sub, noisy)
  assert oracle.accuracy(noisy, np.asarray(oracle.predict(train_sub))) > 0.9  # mostly still legible
  assert 0.0 < floor < 0.1 * corrupted


def test_evaluate_generator_is_deterministic(oracle, real_small):
  images, labels = real_small
  sample_fn = _real_sampler(images, labels)
  run = lambda k: metrics.evaluate_generator(sample_fn, oracle, images[:500], labels[:500],
                                             num_samples=200, key=jax.random.key(k),
                                             sample_batch_size=50)
  a, b, c = run(3), run(3), run(4)
  assert a == b
  assert a != c


def test_generate_chunks_pads_and_validates():
  calls = []

  def sample_fn(key, labels):
    calls.append(labels.shape[0])
    return jnp.broadcast_to(labels[:, None, None, None].astype(jnp.float32) / 10, (labels.shape[0], 2, 2, 1))

  labels = metrics.balanced_labels(23, 10)
  np.testing.assert_array_equal(np.bincount(labels), [3, 3, 3] + [2] * 7)
  out = metrics.generate(sample_fn, jax.random.key(0), labels, batch_size=10)
  assert out.shape == (23, 2, 2, 1) and calls == [10, 10, 10]
  np.testing.assert_allclose(out[:, 0, 0, 0], labels / 10, rtol=1e-6)
  with pytest.raises(metrics.MetricError, match=r"\[0, 1\]"):
    metrics.generate(lambda k, y: -jnp.ones((y.shape[0], 2, 2, 1)), jax.random.key(0), labels, 10)
  with pytest.raises(metrics.MetricError, match="shape"):
    metrics.generate(sample_fn, jax.random.key(0), labels, 10, image_shape=(28, 28, 1))
