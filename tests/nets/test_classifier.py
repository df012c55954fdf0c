"""Tests of the LeNet oracle: forward, committed checkpoint, save/load, training."""

import json
import os

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from jaxstyle import data as jdata
from jaxstyle import rundir
from jaxstyle.nets import classifier, layers
from jaxstyle.train import classifier as train_classifier


@pytest.fixture(scope="module")
def mnist_dir(shared_data):
  return os.path.join(shared_data, "mnist")


@pytest.fixture(scope="module")
def mnist_test(mnist_dir):
  images, labels = jdata.load_mnist_idx(mnist_dir, "test")
  return jdata.to_float_nhwc(images), labels


def test_classifier_uses_the_shared_max_pool():
  # The pool itself is tested against flax in tests/vgg/test_vgg_model.py.
  assert classifier.max_pool_2x2 is layers.max_pool_2x2


def test_forward_shapes_and_rgb_equivalence():
  model = classifier.LeNet()
  x = jax.random.uniform(jax.random.key(1), (3, 28, 28, 1))
  params = model.init(jax.random.key(0), x)
  logits, feats = model.apply(params, x)
  assert logits.shape == (3, 10) and feats.shape == (3, 128)
  assert logits.dtype == jnp.float32 and feats.dtype == jnp.float32
  assert bool(jnp.all(feats >= 0))  # post-ReLU
  logits_rgb, _ = model.apply(params, jnp.repeat(x, 3, axis=-1))
  np.testing.assert_allclose(logits_rgb, logits, rtol=1e-5, atol=1e-5)
  n_params = sum(a.size for a in jax.tree.leaves(params))
  assert n_params == (25 * 32 + 32) + (25 * 32 * 64 + 64) + (1024 * 128 + 128) + (128 * 10 + 10)


def test_committed_oracle_is_accurate_on_real_test_set(mnist_test):
  images, labels = mnist_test  # 10,000 images: one cheap batched forward pass
  oracle = classifier.load_oracle()
  assert os.path.exists(classifier.default_oracle_path())
  assert os.path.getsize(classifier.default_oracle_path()) < 3 * 2 ** 20
  acc = oracle.accuracy(images, labels)
  assert acc >= 0.99
  assert oracle.meta["test_accuracy"] == pytest.approx(acc, abs=2e-4)
  assert oracle.meta["num_test_images"] == 10000 and "train_classifier.py" in oracle.meta["command"]
  # Batch size (and the padding of the last batch) does not change results.
  small = classifier.Oracle(oracle.params, oracle.config, batch_size=300)
  lg_a, ft_a = oracle(images[:700])
  lg_b, ft_b = small(images[:700])
  np.testing.assert_allclose(lg_a, lg_b, rtol=1e-4, atol=1e-4)
  np.testing.assert_allclose(ft_a, ft_b, rtol=1e-4, atol=1e-4)


def test_save_load_round_trip(tmp_path):
  cfg = classifier.ClassifierConfig(conv_features=(4, 8), hidden=16)
  model = classifier.LeNet(cfg)
  x = jax.random.uniform(jax.random.key(2), (5, 28, 28, 1))
  params = model.init(jax.random.key(3), x)
  path = str(tmp_path / "o.npz")
  classifier.save_oracle(path, params, cfg, {"test_accuracy": 0.5, "seed": 7})
  with np.load(path, allow_pickle=False) as z:  # no pickle anywhere in the file
    assert "params/conv1/kernel" in z.files and classifier.META_KEY in z.files
    assert json.loads(str(z[classifier.META_KEY]))["seed"] == 7
  oracle = classifier.load_oracle(path)
  assert oracle.config == cfg and oracle.meta == {"test_accuracy": 0.5, "seed": 7}
  jax.tree.map(np.testing.assert_array_equal, oracle.params, params)
  logits, feats = oracle(x)
  ref_logits, ref_feats = model.apply(params, x)
  np.testing.assert_allclose(logits, ref_logits, rtol=1e-6)
  np.testing.assert_allclose(feats, ref_feats, rtol=1e-6)


def test_load_errors(tmp_path):
  with pytest.raises(classifier.OracleError, match="not found"):
    classifier.load_oracle(str(tmp_path / "missing.npz"))
  np.savez(tmp_path / "nometa.npz", a=np.zeros(3))
  with pytest.raises(classifier.OracleError, match="__meta__"):
    classifier.load_oracle(str(tmp_path / "nometa.npz"))
  params = classifier.LeNet().init(jax.random.key(0), jnp.zeros((1, 28, 28, 1)))
  path = str(tmp_path / "wrong.npz")
  classifier.save_oracle(path, params, classifier.ClassifierConfig(hidden=64))  # lies about shape
  with pytest.raises(classifier.OracleError, match="do not match"):
    classifier.load_oracle(path)
  (tmp_path / "garbage.npz").write_bytes(b"not a zip file")
  with pytest.raises(classifier.OracleError, match="readable"):
    classifier.load_oracle(str(tmp_path / "garbage.npz"))


def test_training_is_deterministic_and_learns(mnist_dir, tmp_path):
  images, labels = jdata.load_mnist_idx(mnist_dir, "train")
  x, y = jdata.to_float_nhwc(images[:1024]), labels[:1024]
  cfg = train_classifier.TrainConfig(epochs=1, batch_size=64, learning_rate=2e-3)
  run = rundir.RunDir(str(tmp_path / "run"))
  p1 = train_classifier.train_classifier(x, y, cfg, 0, run_dir=run, log_every=1)
  losses = [row["loss"] for row in run.read_metrics()]
  p2 = train_classifier.train_classifier(x, y, cfg, 0)
  p3 = train_classifier.train_classifier(x, y, cfg, 1)
  jax.tree.map(np.testing.assert_array_equal, p1, p2)
  assert any(not np.array_equal(a, b) for a, b in zip(jax.tree.leaves(p1), jax.tree.leaves(p3)))
  assert len(losses) == 16
  assert np.mean(losses[-4:]) < 0.5 * np.mean(losses[:2])
