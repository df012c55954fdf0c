"""Tests of jaxstyle.nets.layers' pixel shuffle and matmul convolution against NumPy loops."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from jaxstyle.nets import layers


def test_depth_to_space_matches_numpy_loops():
  x = np.random.default_rng(0).normal(size=(2, 3, 4, 12)).astype(np.float32)
  got = np.asarray(layers.depth_to_space(jnp.asarray(x), 2))
  want = np.zeros((2, 6, 8, 3), np.float32)
  for h in range(3):
    for w in range(4):
      for i in range(2):
        for j in range(2):
          want[:, 2 * h + i, 2 * w + j, :] = x[:, h, w, (i * 2 + j) * 3:(i * 2 + j + 1) * 3]
  np.testing.assert_array_equal(got, want)


def _numpy_conv(x, w, stride, pads):
  """Float64 direct convolution: x [B, H, W, C], w [KH, KW, C, O], explicit padding."""
  x = np.pad(np.asarray(x, np.float64), ((0, 0), pads[0], pads[1], (0, 0)))
  w = np.asarray(w, np.float64)
  kh, kw = w.shape[:2]
  oh, ow = (x.shape[1] - kh) // stride + 1, (x.shape[2] - kw) // stride + 1
  out = np.zeros((x.shape[0], oh, ow, w.shape[3]))
  for r in range(oh):
    for c in range(ow):
      window = x[:, r * stride:r * stride + kh, c * stride:c * stride + kw, :]
      out[:, r, c, :] = np.einsum("bijc,ijco->bo", window, w)
  return out


@pytest.mark.parametrize("shape,kernel,stride", [((2, 28, 28, 1), 4, 2), ((2, 14, 14, 3), 4, 2),
                                                 ((2, 7, 7, 5), 3, 1), ((1, 9, 6, 2), 3, 2)])
def test_conv_as_matmul_matches_numpy_and_xla_gradients(shape, kernel, stride):
  rng = np.random.default_rng(0)
  x = rng.normal(size=shape)
  w = rng.normal(size=(kernel, kernel, shape[-1], 6))
  pads = jax.lax.padtype_to_pads(shape[1:3], (kernel, kernel), (stride, stride), "SAME")
  with jax.enable_x64(True):
    got = layers.conv_as_matmul(jnp.asarray(x), jnp.asarray(w), (stride, stride), pads)
    np.testing.assert_allclose(np.asarray(got), _numpy_conv(x, w, stride, pads), rtol=1e-12, atol=1e-12)
    xla = lambda x, w: jax.lax.conv_general_dilated(x, w, (stride, stride), "SAME",
                                                   dimension_numbers=("NHWC", "HWIO", "NHWC"))
    mm = lambda x, w: layers.conv_as_matmul(x, w, (stride, stride), pads)
    cot = jnp.asarray(rng.normal(size=got.shape))
    g_xla = jax.grad(lambda x, w: jnp.sum(xla(x, w) * cot), argnums=(0, 1))(jnp.asarray(x), jnp.asarray(w))
    g_mm = jax.grad(lambda x, w: jnp.sum(mm(x, w) * cot), argnums=(0, 1))(jnp.asarray(x), jnp.asarray(w))
    for a, b in zip(g_mm, g_xla):
      np.testing.assert_allclose(np.asarray(a), np.asarray(b), rtol=1e-10, atol=1e-10)
