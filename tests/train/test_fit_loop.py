"""Tests of jaxstyle.train.loop: the resumable training loop, with a model-free step."""

import jax
import jax.numpy as jnp
import numpy as np
import optax

from jaxstyle import checkpoint, parallel, train


def _noisy_regression_step(tx):
  """A per-device step that uses every part of the state: params, Adam state, the step key."""

  def step(state, batch):
    def loss_fn(w):
      return jnp.mean((batch["x"] @ w - batch["y"]) ** 2)

    w = state.params["w"]
    loss, grad = jax.value_and_grad(loss_fn)(train.to_varying(w, train.AXIS))
    grad = train.pmean(grad, train.AXIS) + 0.01 * jax.random.normal(train.step_key(state), w.shape)
    updates, opt_state = tx.update(grad, state.opt_state["w"], w)
    new = state.replace(step=state.step + 1, params={"w": optax.apply_updates(w, updates)},
                        opt_state={"w": opt_state})
    return new, {"loss": train.pmean(loss, train.AXIS)}

  return step


def _batch(step):
  rng = np.random.default_rng(step)
  x = rng.normal(size=(8, 3)).astype(np.float32)
  return {"x": x, "y": x @ np.array([1.0, -2.0, 0.5], np.float32)}


def test_fit_resumes_bit_identically(tmp_path):
  tx = train.adam(1e-2)
  runner = parallel.DataParallel("jit")
  step_fn = runner.compile(_noisy_regression_step(tx))
  init = lambda: jax.tree.map(np.asarray, train.create_state(
      {"w": jnp.zeros(3)}, {"w": tx}, jax.random.key(0)))

  full, _ = train.fit(runner=runner, step_fn=step_fn, init_state=init, batches=_batch, num_steps=6,
                      checkpointer=None, progress=False)

  ckpt = checkpoint.Checkpointer(str(tmp_path / "ck"), every=2, keep=2)
  part, start = train.fit(runner=runner, step_fn=step_fn, init_state=init, batches=_batch,
                          num_steps=4, checkpointer=ckpt, progress=False)
  assert start == 0 and ckpt.all_steps() == [2, 4]
  resumed, start = train.fit(runner=runner, step_fn=step_fn, init_state=init, batches=_batch,
                             num_steps=6, checkpointer=ckpt, progress=False)
  ckpt.close()
  assert start == 4 and int(resumed.step) == 6
  assert jax.tree.all(jax.tree.map(np.array_equal, full, resumed))
  assert not np.array_equal(full.params["w"], part.params["w"])  # it trained on after the resume
