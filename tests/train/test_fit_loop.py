"""Tests of jaxstyle.train.loop: the resumable training loop, with a model-free step."""

import jax
import jax.numpy as jnp
import numpy as np
import optax

import pytest

from jaxstyle import checkpoint, errors, parallel, rundir, train


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


def _fit(tmp_path, tx, num_steps, batches=_batch, skip=False, ckpt_every=2):
  runner = parallel.DataParallel("jit")
  init = lambda: jax.tree.map(np.asarray, train.create_state(
      {"w": jnp.zeros(3)}, {"w": tx}, jax.random.key(0)))
  step_fn = runner.compile(train.guard_nonfinite(_noisy_regression_step(tx)))
  ckpt = checkpoint.Checkpointer(str(tmp_path / "ck"), every=ckpt_every, keep=10)
  run = rundir.RunDir(str(tmp_path / "run"))
  try:
    return train.fit(runner=runner, step_fn=step_fn, init_state=init, batches=batches,
                     num_steps=num_steps, checkpointer=ckpt, run_dir=run, log_every=1,
                     progress=False, skip_nonfinite=skip), ckpt.all_steps(), run.read_metrics()
  finally:
    ckpt.close()


def _nan_at(bad_step):
  def batches(step):
    b = _batch(step)
    return {**b, "x": b["x"] * np.float32("nan")} if step + 1 == bad_step else b
  return batches


def test_guard_is_bit_identical_on_finite_steps(tmp_path):
  tx = train.adam(1e-2)
  runner = parallel.DataParallel("jit")
  init = lambda: jax.tree.map(np.asarray, train.create_state(
      {"w": jnp.zeros(3)}, {"w": tx}, jax.random.key(0)))
  plain, _ = train.fit(runner=runner, step_fn=runner.compile(_noisy_regression_step(tx)),
                       init_state=init, batches=_batch, num_steps=5, progress=False)
  (guarded, _), _, rows = _fit(tmp_path, tx, 5)
  assert jax.tree.all(jax.tree.map(np.array_equal, plain, guarded))
  assert all("nonfinite" not in r for r in rows)  # the per-step flag is not logged


def test_nonfinite_step_stops_naming_step_and_term_and_keeps_last_good_checkpoint(tmp_path):
  with pytest.raises(errors.NonFiniteError, match=r"step 5: non-finite loss loss=nan.*step 4"):
    _fit(tmp_path, train.adam(1e-2), 8, batches=_nan_at(5))
  ck = checkpoint.Checkpointer(str(tmp_path / "ck"))
  assert ck.all_steps() == [2, 4]
  ck.close()
  rows = rundir.RunDir(str(tmp_path / "run")).read_metrics()
  assert [r["step"] for r in rows] == [1, 2, 3, 4]  # nothing of the bad step is logged


def test_skip_nonfinite_skips_exactly_that_update(tmp_path):
  tx = train.adam(1e-2)
  (state, _), steps, rows = _fit(tmp_path / "a", tx, 6, batches=_nan_at(3), skip=True)
  assert steps == [2, 4, 6] and int(state.step) == 6
  assert [r["nonfinite_skipped"] for r in rows] == [0, 0, 1, 0, 0, 0]
  # Reference: two clean steps, no update at step 3 (only the counter moves), then steps 4-6.
  runner = parallel.DataParallel("jit")
  step = runner.compile(_noisy_regression_step(tx), donate_state=False)
  (ref, _), _, _ = _fit(tmp_path / "b", tx, 2)
  ref = runner.put_state(ref.replace(step=np.int32(3)))
  for i in (3, 4, 5):
    ref, _ = step(ref, runner.put_batch(_batch(i)))
  assert jax.tree.all(jax.tree.map(np.array_equal, runner.get_state(ref), state))


def test_guard_keeps_the_previous_state_exactly():
  tx = train.adam(1e-2)
  runner = parallel.DataParallel("jit")
  state = runner.put_state(jax.tree.map(np.asarray, train.create_state(
      {"w": jnp.arange(3.0)}, {"w": tx}, jax.random.key(0))))
  step = runner.compile(train.guard_nonfinite(_noisy_regression_step(tx)), donate_state=False)
  bad = runner.put_batch({k: v * np.float32("nan") for k, v in _batch(0).items()})
  new, metrics = step(state, bad)
  assert float(metrics["nonfinite"]) == 1.0 and int(new.step) == 1
  assert jax.tree.all(jax.tree.map(np.array_equal, new.replace(step=state.step), state))
  good, metrics = step(state, runner.put_batch(_batch(0)))
  assert float(metrics["nonfinite"]) == 0.0
  assert not np.array_equal(good.params["w"], state.params["w"])
