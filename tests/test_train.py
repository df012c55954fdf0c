"""Tests of jaxstyle.train and jaxstyle.nets.cgan: nets, the cGAN step, the resumable loop."""

import jax
import jax.numpy as jnp
import numpy as np
import flax.linen as nn
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
    got = cgan.conv_as_matmul(jnp.asarray(x), jnp.asarray(w), (stride, stride), pads)
    np.testing.assert_allclose(np.asarray(got), _numpy_conv(x, w, stride, pads), rtol=1e-12, atol=1e-12)
    xla = lambda x, w: jax.lax.conv_general_dilated(x, w, (stride, stride), "SAME",
                                                   dimension_numbers=("NHWC", "HWIO", "NHWC"))
    mm = lambda x, w: cgan.conv_as_matmul(x, w, (stride, stride), pads)
    cot = jnp.asarray(rng.normal(size=got.shape))
    g_xla = jax.grad(lambda x, w: jnp.sum(xla(x, w) * cot), argnums=(0, 1))(jnp.asarray(x), jnp.asarray(w))
    g_mm = jax.grad(lambda x, w: jnp.sum(mm(x, w) * cot), argnums=(0, 1))(jnp.asarray(x), jnp.asarray(w))
    for a, b in zip(g_mm, g_xla):
      np.testing.assert_allclose(np.asarray(a), np.asarray(b), rtol=1e-10, atol=1e-10)


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
      conv = cgan.Conv(16, (4, 4), (2, 2), lowering=lowering, dtype="float64", param_dtype="float64")
      params = conv.init(jax.random.key(3), x)
      assert jax.tree.all(jax.tree.map(np.array_equal, params, nn_conv_params))
      np.testing.assert_allclose(np.asarray(conv.apply(params, x)),
                                 np.asarray(flax_conv.apply(nn_conv_params, x)), rtol=1e-12, atol=1e-12)
    outs = {}
    for lowering in cgan.CONV_LOWERINGS:
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
    cgan.CGANConfig(conv_lowering="fft")


def test_linear_decay_schedule():
  assert train.linear_decay(1e-3) == 1e-3  # no decay: the constant itself
  sched = train.linear_decay(1e-3, 100, 300)
  for step, want in [(0, 1e-3), (100, 1e-3), (200, 5e-4), (300, 0.0), (1000, 0.0)]:
    assert float(sched(step)) == pytest.approx(want, rel=1e-6, abs=1e-12)
  with pytest.raises(ValueError, match="begin < end"):
    train.linear_decay(1e-3, 300, 100)
  # The decayed rate reaches the optimizer: with lr 0 after ``end`` the params stop moving.
  tx = train.adam(train.linear_decay(0.1, 0, 2))
  params = {"w": jnp.ones(3)}
  state = tx.init(params)
  history = []
  for _ in range(4):
    updates, state = tx.update({"w": jnp.ones(3)}, state, params)
    params = optax.apply_updates(params, updates)
    history.append(float(params["w"][0]))
  assert history[0] < 1.0 and history[1] < history[0] and history[3] == history[2] == history[1]


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
