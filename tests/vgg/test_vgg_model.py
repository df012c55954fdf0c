"""Tests for jaxstyle.vgg.model: parity with an independent PyTorch VGG-19,
pooling, deterministic gradients, real partial weights, jit, bf16."""

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
import pytest
import torch
from peers import vgg as peer_vgg

from jaxstyle import vgg
from jaxstyle.nets import layers

RELU_TAPS = [t for t in vgg.TAPS if t.startswith("relu")]


@pytest.fixture(scope="module")
def torch_vgg_file(tmp_path_factory):
  """A full random VGG-19 saved as torchvision would (with a classifier entry)."""
  path = tmp_path_factory.mktemp("pth") / "vgg19.pth"
  return peer_vgg.save_torchvision_pth(str(path), seed=0), str(path)


def _rel_err(a, b):
  a, b = np.asarray(a, np.float64), np.asarray(b, np.float64)
  return np.linalg.norm(a - b) / np.linalg.norm(b)


def _images(shape, seed=0):
  return np.random.default_rng(seed).uniform(0.0, 1.0, shape).astype(np.float32)


@pytest.mark.parametrize("convention", ["torch", "caffe"])
def test_parity_with_independent_torch_vgg19(torch_vgg_file, convention):
  features, path = torch_vgg_file
  weights = vgg.load_pth(path, preprocessing=convention)
  assert weights.preprocessing == convention and weights.layers == vgg.CONV_LAYERS
  images = _images((2, 37, 52, 3))  # non-square, odd: exercises the floor pooling
  rgb = torch.from_numpy(images.astype(np.float64)).permute(0, 3, 1, 2)
  x = peer_vgg.preprocess(rgb, convention)
  expected = peer_vgg.relu_outputs(features, x)
  got = jax.jit(lambda w, x: vgg.extract(w, x, RELU_TAPS))(weights, jnp.asarray(images))
  assert set(got) == set(RELU_TAPS)
  errors = {}
  for tap in RELU_TAPS:
    assert got[tap].shape == expected[tap].shape, tap
    assert got[tap].dtype == jnp.float32
    errors[tap] = _rel_err(got[tap], expected[tap])
    assert errors[tap] < 1e-5, (tap, errors[tap])
  print(f"{convention}: max relative error {max(errors.values()):.2e} at {max(errors, key=errors.get)}")
  assert expected["relu5_4"].shape == (2, 2, 3, 512)  # 37x52 -> 18x26 -> 9x13 -> 4x6 -> 2x3

# ----------------------------------------------------------------------------
# Pooling.


def test_reshape_max_pool_matches_flax_and_has_deterministic_grad():
  x = jnp.asarray(np.random.default_rng(1).normal(size=(2, 7, 9, 5)).astype(np.float32))
  assert vgg.max_pool_2x2 is layers.max_pool_2x2 and vgg.POOLING["max"] is layers.max_pool_2x2
  ours = vgg.max_pool_2x2(x)
  ref = nn.max_pool(x, (2, 2), strides=(2, 2), padding="VALID")
  assert ours.shape == (2, 3, 4, 5)  # odd sizes drop the last row/column
  np.testing.assert_array_equal(ours, ref)
  np.testing.assert_array_equal(ours, vgg.max_pool_2x2(x[:, :6, :8]))
  w = jnp.asarray(np.random.default_rng(2).normal(size=ours.shape).astype(np.float32))
  grad = jax.jit(jax.grad(lambda v: jnp.sum(vgg.max_pool_2x2(v) * w)))
  g1, g2 = grad(x), grad(x)
  np.testing.assert_array_equal(g1, g2)
  g_ref = jax.grad(lambda v: jnp.sum(nn.max_pool(v, (2, 2), strides=(2, 2), padding="VALID") * w))(x)
  np.testing.assert_array_equal(g1, g_ref)  # no ties in random data: same gradient
  assert np.all(np.asarray(g1)[:, 6, :, :] == 0) and np.all(np.asarray(g1)[:, :, 8, :] == 0)
  avg = vgg.avg_pool_2x2(x)
  np.testing.assert_allclose(avg, nn.avg_pool(x, (2, 2), strides=(2, 2), padding="VALID"),
                             rtol=1e-6, atol=1e-6)


def test_vgg_input_gradient_is_bit_identical(vgg_partial):
  images = jnp.asarray(_images((1, 33, 30, 3), seed=3))
  f = vgg.feature_fn(vgg_partial, ["relu3_1"])
  grad = jax.jit(jax.grad(lambda x: jnp.sum(f(x)["relu3_1"] ** 2)))
  g1, g2 = np.asarray(grad(images)), np.asarray(grad(images))
  assert np.all(np.isfinite(g1)) and np.any(g1 != 0)
  np.testing.assert_array_equal(g1, g2)


# ----------------------------------------------------------------------------
# Real partial weights.


def test_real_partial_weights(vgg_partial, vgg_partial_path):
  assert vgg_partial.preprocessing == "caffe"
  assert vgg_partial.layers == vgg.CONV_LAYERS[:8] and vgg_partial.deepest_layer == "relu3_4"
  images = jnp.asarray(_images((2, 45, 38, 3), seed=4))
  feats = vgg.extract(vgg_partial, images, ["relu1_1", "relu2_1", "relu3_1", "relu3_4", "pool3"])
  assert feats["relu3_1"].shape == (2, 11, 9, 256) and feats["pool3"].shape == (2, 5, 4, 256)
  for name, f in feats.items():
    assert np.all(np.isfinite(f)) and float(jnp.max(f)) > 0, name
  # Features only depend on the layers computed: a shallower request gives the same numbers.
  np.testing.assert_array_equal(vgg.extract(vgg_partial, images, ["relu2_1"])["relu2_1"],
                                feats["relu2_1"])
  for too_deep in (["relu4_1"], ["relu1_1", "relu4_1"], ["conv5_1"], ["pool4"]):
    with pytest.raises(vgg.WeightsError, match=r"deepest available layer: relu3_4") as info:
      vgg.extract(vgg_partial, images, too_deep)
    assert vgg_partial_path in str(info.value) and "relu1_1" not in str(info.value).split("need")[0]
  with pytest.raises(vgg.WeightsError, match="unknown VGG-19 layer 'relu6_1'"):
    vgg.feature_fn(vgg_partial, ["relu6_1"])
  np.testing.assert_array_equal(vgg.extract(vgg_partial, images, "relu2_1")["relu2_1"],
                                feats["relu2_1"])  # a single name is one layer, not characters
  with pytest.raises(ValueError, match="too small for pool3"):
    vgg.extract(vgg_partial, images[:, :7, :7], ["pool3"])


def test_weights_are_a_pytree_for_jit(vgg_partial):
  images = jnp.asarray(_images((1, 20, 24, 3), seed=6))
  layers = ("relu1_2", "relu2_1")
  as_arg = jax.jit(lambda w, x: vgg.extract(w, x, layers))(vgg_partial, images)
  closed = vgg.feature_fn(vgg_partial, layers)(images)
  for name in layers:
    assert _rel_err(as_arg[name], closed[name]) < 1e-6  # jit vs eager: rounding only
  leaves, treedef = jax.tree.flatten(vgg_partial)
  assert len(leaves) == 16
  back = jax.tree.unflatten(treedef, leaves)
  assert back.preprocessing == "caffe" and back.layers == vgg_partial.layers


def test_bf16_features_close_to_f32(vgg_partial):
  images = jnp.asarray(_images((1, 40, 40, 3), seed=5))
  layers = ["relu1_1", "relu2_1", "relu3_1"]
  f32 = jax.jit(vgg.feature_fn(vgg_partial, layers))(images)
  bf16 = jax.jit(vgg.feature_fn(vgg_partial, layers, dtype=jnp.bfloat16))(images)
  for name in layers:
    assert bf16[name].dtype == jnp.bfloat16
    err = _rel_err(np.asarray(bf16[name], np.float32), f32[name])
    assert 1e-5 < err < 3e-2, (name, err)  # really computed in bf16, and still close
