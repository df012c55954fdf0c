"""Tests of jaxstyle.train.optim: the learning-rate schedule reaches the optimizer."""

import jax.numpy as jnp
import optax
import pytest

from jaxstyle import train


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
