"""Tests of jaxstyle.train and jaxstyle.nets.cgan: nets, the cGAN step, the resumable loop."""

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

from jaxstyle import checkpoint, losses, parallel, train
from jaxstyle.nets import cgan

TINY = dict(z_dim=8, g_width=8, d_width=8, embed_dim=4, d_feature_dim=16)


def _batch(n=8, seed=0, dtype=np.float32):
  rng = np.random.default_rng(seed)
  return {"image": rng.random((n, 28, 28, 1)).astype(dtype),
          "label": rng.integers(0, 10, n).astype(np.int32)}


def test_depth_to_space_matches_numpy_loops():
  x = np.random.default_rng(0).normal(size=(2, 3, 4, 12)).astype(np.float32)
  got = np.asarray(cgan.depth_to_space(jnp.asarray(x), 2))
  want = np.zeros((2, 6, 8, 3), np.float32)
  for h in range(3):
    for w in range(4):
      for i in range(2):
        for j in range(2):
          want[:, 2 * h + i, 2 * w + j, :] = x[:, h, w, (i * 2 + j) * 3:(i * 2 + j + 1) * 3]
  np.testing.assert_array_equal(got, want)


def test_generator_and_discriminator_shapes_and_conditioning():
  cfg = cgan.CGANConfig(**TINY)
  g_params, d_params = cgan.init_params(cfg, jax.random.key(0))
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


def test_fit_resumes_bit_identically(tmp_path):
  cfg = cgan.CGANConfig(**TINY)
  tx = train.adam(2e-4)
  runner = parallel.DataParallel("jit")
  step_fn = runner.compile(train.make_cgan_step(cfg, tx, tx))
  init = lambda: jax.tree.map(np.asarray, train.init_cgan_state(cfg, 0, tx, tx))
  batches = lambda s: _batch(seed=s)

  full, _ = train.fit(runner=runner, step_fn=step_fn, init_state=init, batches=batches, num_steps=6,
                      checkpointer=None, progress=False)

  ckpt = checkpoint.Checkpointer(str(tmp_path / "ck"), every=2, keep=2)
  part, start = train.fit(runner=runner, step_fn=step_fn, init_state=init, batches=batches,
                          num_steps=4, checkpointer=ckpt, progress=False)
  assert start == 0 and ckpt.all_steps() == [2, 4]
  resumed, start = train.fit(runner=runner, step_fn=step_fn, init_state=init, batches=batches,
                             num_steps=6, checkpointer=ckpt, progress=False)
  ckpt.close()
  assert start == 4 and int(resumed.step) == 6
  assert jax.tree.all(jax.tree.map(np.array_equal, full, resumed))
