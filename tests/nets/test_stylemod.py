import jax
import jax.numpy as jnp
import numpy as np

from jaxstyle.nets.stylemod import StyleMod, style_modulate


def test_stylemod_matches_numpy_reference():
  kx, kw, kp = jax.random.split(jax.random.key(0), 3)
  x = jax.random.normal(kx, (2, 5, 4, 3))
  w = jax.random.normal(kw, (2, 7))
  module = StyleMod(kernel_init=jax.nn.initializers.normal(0.5))
  params = module.init(kp, x, w)
  y = module.apply(params, x, w)

  kernel = np.asarray(params["params"]["affine"]["kernel"], np.float64)
  bias = np.asarray(params["params"]["affine"]["bias"], np.float64)
  sb = np.asarray(w, np.float64) @ kernel + bias
  s, b = sb[:, :3], sb[:, 3:]
  ref = np.asarray(x, np.float64) * (1 + s[:, None, None, :]) + b[:, None, None, :]
  np.testing.assert_allclose(np.asarray(y), ref, rtol=1e-5, atol=1e-5)


def test_stylemod_is_identity_at_init_and_depends_on_latent_after_update():
  x = jax.random.normal(jax.random.key(1), (2, 3, 3, 4))
  w = jax.random.normal(jax.random.key(2), (2, 6))
  module = StyleMod()
  params = module.init(jax.random.key(3), x, w)
  np.testing.assert_array_equal(np.asarray(module.apply(params, x, w)), np.asarray(x))

  # One gradient step towards a target makes the output depend on w.
  target = x * 2.0 + 1.0
  loss = lambda p: jnp.mean((module.apply(p, x, w) - target) ** 2)
  grads = jax.grad(loss)(params)
  params = jax.tree.map(lambda p, g: p - 0.5 * g, params, grads)
  assert loss(params) < loss(module.init(jax.random.key(3), x, w))
  y1 = module.apply(params, x, w)
  y2 = module.apply(params, x, -w)
  assert not np.allclose(np.asarray(y1), np.asarray(y2))


def test_style_modulate_broadcasts_per_channel():
  x = jnp.ones((1, 2, 2, 3))
  out = style_modulate(x, jnp.array([[0.0, 1.0, -1.0]]), jnp.array([[0.5, 0.0, 2.0]]))
  np.testing.assert_array_equal(np.asarray(out[0, 1, 1]), [1.5, 2.0, 2.0])
