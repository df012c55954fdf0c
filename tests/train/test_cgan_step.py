"""Tests of jaxstyle.train.cgan: the cGAN step against a textbook update, determinism, errors."""

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

from jaxstyle import losses, train
from jaxstyle.nets import cgan

TINY = dict(z_dim=8, g_width=8, d_width=8, embed_dim=4, d_feature_dim=16)


def _batch(n=8, seed=0, dtype=np.float32):
  rng = np.random.default_rng(seed)
  return {"image": rng.random((n, 28, 28, 1)).astype(dtype),
          "label": rng.integers(0, 10, n).astype(np.int32)}


def _reference_step(cfg, tx, state, batch, loss):
  """The textbook alternating update, written independently (G forward twice, no VJP reuse)."""
  gen, disc = cgan.Generator(cfg), cgan.Discriminator(cfg)
  key = jax.random.fold_in(jax.random.wrap_key_data(state.key), state.step)
  z = jax.random.normal(key, (batch["label"].shape[0], cfg.z_dim), cfg.dtype)
  y = batch["label"]
  gp, dp = state.params["g"], state.params["d"]
  fake = jax.lax.stop_gradient(gen.apply({"params": gp}, z, y))

  def d_loss(dp):
    return losses.gan_d_loss(disc.apply({"params": dp}, batch["image"], y),
                             disc.apply({"params": dp}, fake, y), loss)

  dg = jax.grad(d_loss)(dp)
  du, dopt = tx.update(dg, state.opt_state["d"], dp)
  dp = optax.apply_updates(dp, du)

  def g_loss(gp):
    return losses.gan_g_loss(disc.apply({"params": dp}, gen.apply({"params": gp}, z, y), y), loss)

  gg = jax.grad(g_loss)(gp)
  gu, gopt = tx.update(gg, state.opt_state["g"], gp)
  return {"g": optax.apply_updates(gp, gu), "d": dp}


@pytest.mark.parametrize("loss", ["nonsaturating", pytest.param("hinge", marks=pytest.mark.slow),
                                  pytest.param("lsgan", marks=pytest.mark.slow)])


def test_cgan_step_matches_textbook_update(loss):
  with jax.enable_x64(True):
    cfg = cgan.CGANConfig(**TINY, dtype="float64")
    tx = train.adam(1e-3)
    state = train.init_cgan_state(cfg, 0, tx, tx, g_ema=True)
    batch = jax.tree.map(jnp.asarray, _batch(dtype=np.float64))
    step = jax.jit(train.make_cgan_step(cfg, tx, tx, loss, axis_name=None, ema_decay=0.9))
    reference = jax.jit(lambda state, batch: _reference_step(cfg, tx, state, batch, loss))
    for _ in range(3):  # a few steps, so the reference sees evolved params and optimizer states
      want = reference(state, batch)
      want_ema = jax.tree.map(lambda e, g: 0.9 * e + 0.1 * g, state.ema["g"], want["g"])
      state, metrics = step(state, batch)
      err = jax.tree.map(lambda a, b: float(jnp.max(jnp.abs(a - b))), state.params, want)
      assert max(jax.tree.leaves(err)) < 1e-10, err
      err = jax.tree.map(lambda a, b: float(jnp.max(jnp.abs(a - b))), state.ema["g"], want_ema)
      assert max(jax.tree.leaves(err)) < 1e-10, err
    assert int(state.step) == 3
    assert all(np.isfinite(float(v)) for v in metrics.values())


def test_same_seed_same_numbers_other_seed_differs():
  cfg = cgan.CGANConfig(**TINY)
  tx = train.adam(2e-4)
  step = jax.jit(train.make_cgan_step(cfg, tx, tx, axis_name=None))

  def run(seed):
    state = train.init_cgan_state(cfg, seed, tx, tx)
    for s in range(3):
      state, _ = step(state, jax.tree.map(jnp.asarray, _batch(seed=s)))
    return jax.tree.map(np.asarray, state.params)

  a, b, c = run(0), run(0), run(1)
  assert jax.tree.all(jax.tree.map(np.array_equal, a, b))
  assert not np.array_equal(a["g"]["fc"]["kernel"], c["g"]["fc"]["kernel"])


def test_unknown_loss_rejected():
  cfg = cgan.CGANConfig(**TINY)
  with pytest.raises(ValueError, match="unknown GAN loss"):
    train.make_cgan_step(cfg, train.adam(1e-3), train.adam(1e-3), "wasserstein")
