"""Tests of jaxstyle.nets.cgan: conv lowerings in the nets, generator and discriminator."""

import jax
import jax.numpy as jnp
import numpy as np
import flax.linen as nn
import pytest

from jaxstyle.nets import cgan, layers

TINY = dict(z_dim=8, g_width=8, d_width=8, embed_dim=4, d_feature_dim=16)


@pytest.mark.slow  # compiles every lowering of both networks (about 30 s)
def test_conv_lowerings_share_parameters_and_outputs():
  """Every lowering has nn.Conv's parameter tree and initial values, and computes the same nets."""
  base = dict(z_dim=8, g_width=8, d_width=16, embed_dim=4, d_feature_dim=16, dtype="float64")
  z = np.random.default_rng(1).normal(size=(3, 8))
  y = np.array([0, 4, 9], np.int32)
  with jax.enable_x64(True):
    x = jnp.asarray(np.random.default_rng(2).random((3, 28, 28, 1)))
    flax_conv = nn.Conv(16, (4, 4), (2, 2), padding="SAME", dtype="float64", param_dtype="float64")
    nn_conv_params = flax_conv.init(jax.random.key(3), x)
    for lowering in ("xla", "matmul"):
      conv = layers.Conv(16, (4, 4), (2, 2), lowering=lowering, dtype="float64", param_dtype="float64")
      params = conv.init(jax.random.key(3), x)
      assert jax.tree.all(jax.tree.map(np.array_equal, params, nn_conv_params))
      np.testing.assert_allclose(np.asarray(conv.apply(params, x)),
                                 np.asarray(flax_conv.apply(nn_conv_params, x)), rtol=1e-12, atol=1e-12)
    outs = {}
    for lowering in layers.CONV_LOWERINGS:
      cfg = cgan.CGANConfig(**base, conv_lowering=lowering)
      g, d = cgan.init_params(cfg, jax.random.key(0))
      images = cgan.Generator(cfg).apply({"params": g}, jnp.asarray(z), y)
      outs[lowering] = (jax.tree.map(np.asarray, (g, d)), np.asarray(images),
                        np.asarray(cgan.Discriminator(cfg).apply({"params": d}, images, y)))
    ref = outs["xla"]
    for lowering in ("matmul", "auto"):
      assert jax.tree.all(jax.tree.map(np.array_equal, outs[lowering][0], ref[0]))
      np.testing.assert_allclose(outs[lowering][1], ref[1], rtol=1e-12, atol=1e-12)
      np.testing.assert_allclose(outs[lowering][2], ref[2], rtol=1e-10, atol=1e-10)
  with pytest.raises(ValueError, match="conv_lowering"):
    cgan.init_params(cgan.CGANConfig(conv_lowering="fft"), jax.random.key(0))


@pytest.mark.parametrize("head,norm", [(0, "layer"), (4, "layer"), (4, "none")])
def test_generator_and_discriminator_shapes_and_conditioning(head, norm):
  cfg = cgan.CGANConfig(**TINY, g_head_width=head, g_norm=norm)
  g_params, d_params = cgan.init_params(cfg, jax.random.key(0))
  norms = sorted(k for k in g_params if k.startswith("norm"))
  assert norms == ([] if norm == "none" else ["norm0", "norm1", "norm2"][:3 if head else 2])
  assert ("head" in g_params) == bool(head)
  if head:
    assert g_params["up2"]["kernel"].shape == (3, 3, 8, 4 * head)
    assert g_params["head"]["kernel"].shape == (3, 3, head, 1)
  z = jax.random.normal(jax.random.key(1), (5, cfg.z_dim))
  y = jnp.array([0, 1, 2, 3, 4], jnp.int32)
  gen = jax.jit(lambda z, y: cgan.Generator(cfg).apply({"params": g_params}, z, y))
  disc = jax.jit(lambda x, y: cgan.Discriminator(cfg).apply({"params": d_params}, x, y))
  x = gen(z, y)
  assert x.shape == (5, 28, 28, 1) and x.dtype == jnp.float32
  assert float(x.min()) >= 0.0 and float(x.max()) <= 1.0
  # The label changes the image (G) and the logit (D, through the projection).
  x2 = gen(z, (y + 1) % 10)
  assert float(jnp.abs(x - x2).max()) > 1e-4
  logits = disc(x, y)
  logits2 = disc(x, (y + 1) % 10)
  assert logits.shape == (5,) and float(jnp.abs(logits - logits2).max()) > 1e-6
