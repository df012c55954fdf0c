"""L-BFGS (jaxstyle.optimize.lbfgs) against float64 NumPy and on problems with known minima."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from jaxstyle.optimize import lbfgs


def _dense_inverse_hessian(pairs, gamma, n):
  """The L-BFGS matrix in float64: H = γI, then H ← (I − ρsyᵀ) H (I − ρysᵀ) + ρssᵀ, oldest first."""
  h = gamma * np.eye(n)
  for s, y in pairs:
    rho = 1.0 / (s @ y)
    v = np.eye(n) - rho * np.outer(y, s)
    h = v.T @ h @ v + rho * np.outer(s, s)
  return h


@pytest.mark.parametrize("memory_size,pushes", [(5, 3), (3, 5)])
def test_direction_is_the_dense_lbfgs_matrix_times_the_gradient(memory_size, pushes):
  rng = np.random.default_rng(0)
  n = 7
  q = rng.normal(size=(n, n))
  a = q @ q.T + n * np.eye(n)  # SPD, so every pair has sᵀy > 0
  pairs = [(s, a @ s) for s in rng.normal(size=(pushes, n))]
  g = rng.normal(size=n)
  memory = lbfgs.empty_memory(jnp.zeros(n, jnp.float32), memory_size)
  for s, y in pairs:
    memory = lbfgs.push(memory, jnp.asarray(s, jnp.float32), jnp.asarray(y, jnp.float32))
  kept = pairs[-memory_size:]
  s_new, y_new = kept[-1]
  want = _dense_inverse_hessian(kept, (s_new @ y_new) / (y_new @ y_new), n) @ g
  got = np.asarray(lbfgs.direction(memory, jnp.asarray(g, jnp.float32), 0.05), np.float64)
  np.testing.assert_allclose(got, want, rtol=2e-4, atol=1e-6 * np.abs(want).max())


def test_first_direction_moves_by_first_step_rms_and_bad_curvature_is_not_stored():
  g = jnp.asarray(np.random.default_rng(1).normal(size=(4, 5, 3)) * 100, jnp.float32)
  memory = lbfgs.empty_memory(g, 4)
  d = lbfgs.direction(memory, g, 0.05)
  assert float(jnp.sqrt(jnp.mean(d ** 2))) == pytest.approx(0.05, rel=1e-5)
  np.testing.assert_allclose(np.asarray(d / jnp.linalg.norm(d)),
                             np.asarray(g / jnp.linalg.norm(g)), atol=1e-6)
  s = jnp.ones_like(g)
  same = lbfgs.push(memory, s, -s)  # sᵀy < 0: not a curvature pair
  for a, b in zip(jax.tree.leaves(same), jax.tree.leaves(memory)):
    np.testing.assert_array_equal(np.asarray(a), np.asarray(b))
  stored = lbfgs.push(memory, s, 2 * s)
  assert float(stored.rho[-1]) == pytest.approx(1 / (2 * g.size))
  assert float(stored.rho[0]) == 0.0


def _run(loss, x0, steps, project=lambda x: x, first_step=0.1, memory_size=10):
  init, step = lbfgs.make(loss, project, first_step, memory_size)
  x, state = jnp.asarray(x0, jnp.float32), None
  state = init(x)
  values = []
  for _ in range(steps):
    x, state, aux = step(x, state)
    values.append(float(aux))
  return np.asarray(x, np.float64), values


def test_minimises_an_ill_conditioned_quadratic_monotonically():
  rng = np.random.default_rng(2)
  n = 30
  q, _ = np.linalg.qr(rng.normal(size=(n, n)))
  a = q @ np.diag(np.logspace(0, 2, n)) @ q.T  # condition number 100
  b = rng.normal(size=n)
  x_star = np.linalg.solve(a, b)
  aj, bj = jnp.asarray(a, jnp.float32), jnp.asarray(b, jnp.float32)

  def loss(x):
    f = 0.5 * x @ aj @ x - bj @ x
    return f, f

  x, values = _run(loss, np.zeros(n), 60)
  assert np.linalg.norm(x - x_star) <= 1e-3 * np.linalg.norm(x_star)
  assert all(b <= a + 1e-6 * abs(a) for a, b in zip(values, values[1:]))
  # Plain steepest descent with the same first step is far from the minimum after as many steps.
  gd = np.zeros(n)
  for _ in range(60):
    gd -= (a @ gd - b) / 100.0  # 1/L, the largest safe fixed step
  assert np.linalg.norm(gd - x_star) > 10 * np.linalg.norm(x - x_star)


def test_rosenbrock_reaches_its_minimum():
  def loss(x):
    f = (1 - x[0]) ** 2 + 100 * (x[1] - x[0] ** 2) ** 2
    return f, f

  x, values = _run(loss, [-1.2, 1.0], 120)
  np.testing.assert_allclose(x, [1.0, 1.0], atol=2e-3)
  assert values[-1] < 1e-5


def test_projected_steps_reach_the_box_constrained_minimum():
  """A separable quadratic: the minimum over [0, 1]ⁿ is the clipped unconstrained one."""
  rng = np.random.default_rng(3)
  n = 40
  diag = np.logspace(0, 1.5, n)
  centre = rng.uniform(-0.5, 1.5, n)  # about half the coordinates end on a bound
  dj, cj = jnp.asarray(diag, jnp.float32), jnp.asarray(centre, jnp.float32)

  def loss(x):
    f = 0.5 * jnp.sum(dj * (x - cj) ** 2)
    return f, f

  x, _ = _run(loss, np.full(n, 0.5), 80, project=lambda x: jnp.clip(x, 0.0, 1.0))
  np.testing.assert_allclose(x, np.clip(centre, 0, 1), atol=1e-3)


def test_no_accepted_trial_keeps_the_point_and_clears_the_memory():
  x0 = jnp.asarray([0.3, 0.7], jnp.float32)

  def loss(x):  # finite only at x0: every trial step is rejected
    f = jnp.sum(x) + jnp.where(jnp.any(x != x0), jnp.inf, 0.0)
    return f, f

  init, step = lbfgs.make(loss, lambda x: x, 0.1, 4, max_backtracks=3)
  state = init(x0)
  state = state._replace(memory=lbfgs.push(state.memory, jnp.ones(2), jnp.ones(2)))
  x, after, aux = step(x0, state)
  np.testing.assert_array_equal(np.asarray(x), np.asarray(x0))
  assert float(aux) == pytest.approx(1.0)
  assert not np.any(np.asarray(after.memory.rho))
  np.testing.assert_allclose(np.asarray(after.direction), 0.1 * np.ones(2), rtol=1e-6)


def test_each_piece_is_traced_once_whatever_the_line_search_does():
  traces = []

  def loss(x):
    traces.append(1)
    f = jnp.sum((x - 2.0) ** 4) + jnp.sum(x)
    return f, f

  _, values = _run(loss, np.zeros(5), 25, first_step=3.0)  # large first step: backtracks
  assert len(traces) == 2  # the start evaluation and the trial, each compiled once
  assert values[-1] < values[0]
