"""The ideal-point preference model against float64 NumPy references: likelihood, and the posterior
mean against numerical integration on a grid."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from jaxstyle.personalize import choices, ideal_point, simulate
from jaxstyle.personalize import preference as pref

CFG = pref.PreferenceConfig(utility="ideal", ideal_particles=4096, ideal_iterations=6)
fit = jax.jit(ideal_point.fit, static_argnums=0)


def np_log_likelihood(points, chosen, mask, theta, scale, axis_weights=1.0):
  """Σ_r mask_r log softmax_j(−s Σ_i a_i (x_rji − θ_i)²)[c_r] in float64."""
  total = 0.0
  for x, c, m in zip(np.asarray(points, np.float64), chosen, mask):
    if m:
      u = -scale * (axis_weights * (x - theta) ** 2).sum(-1)
      total += u[c] - (u.max() + np.log(np.exp(u - u.max()).sum()))
  return total


def _history(rng, target, rounds, k, d, scale=None):
  """Rounds of K random points; picks by the nearest to ``target`` (or Luce draws at ``scale``)."""
  points = rng.standard_normal((rounds, k, d))
  sq = ((points - target) ** 2).sum(-1)
  if scale is None:
    chosen = sq.argmin(1)
  else:
    p = np.exp(-scale * (sq - sq.min(1, keepdims=True)))
    chosen = np.array([rng.choice(k, p=q / q.sum()) for q in p])
  return points, chosen.astype(np.int32)


@pytest.mark.parametrize("metric", ["iso", "diag"])
def test_log_likelihood_matches_numpy_and_ignores_padding(metric):
  rng = np.random.default_rng(0)
  points, chosen = _history(rng, np.array([0.3, -0.5, 1.0]), 5, 4, 3)
  mask = np.array([True, True, False, True, True])
  parts = [rng.standard_normal((7, 3)), rng.normal(1.0, 0.5, (7, 1))]
  if metric == "diag":
    parts.append(rng.normal(0.0, 0.5, (7, 3)))
  particles = np.concatenate(parts, axis=1)
  got = ideal_point.log_likelihood(jnp.asarray(points, jnp.float32), jnp.asarray(chosen),
                                   jnp.asarray(mask), jnp.asarray(particles, jnp.float32))
  want = [np_log_likelihood(points, chosen, mask, p[:3], np.exp(p[3]),
                            np.exp(p[4:]) if metric == "diag" else 1.0) for p in particles]
  np.testing.assert_allclose(np.asarray(got), want, rtol=2e-5, atol=2e-4)
  padded = ideal_point.log_likelihood(
      jnp.asarray(np.where(mask[:, None, None], points, 99.0), jnp.float32), jnp.asarray(chosen),
      jnp.asarray(mask), jnp.asarray(particles, jnp.float32))
  np.testing.assert_allclose(np.asarray(padded), np.asarray(got), rtol=1e-6)


def test_empty_history_is_the_prior():
  post = fit(CFG, jnp.zeros((2, 4, 3)), jnp.zeros((2,), jnp.int32), jnp.zeros((2,), bool),
             jax.random.key(0))
  w = np.asarray(post.weights, np.float64)
  assert w.sum() == pytest.approx(1.0, abs=1e-5)
  theta = np.asarray(post.particles[:, :3], np.float64)
  mean = w @ theta
  cov = (theta - mean).T @ ((theta - mean) * w[:, None])
  np.testing.assert_allclose(mean, 0.0, atol=0.1)
  np.testing.assert_allclose(cov, np.eye(3), atol=0.15)
  log_s = np.asarray(post.particles[:, 3], np.float64)
  assert w @ log_s == pytest.approx(np.log(CFG.ideal_scale), abs=0.1)


@pytest.mark.parametrize("scale", [None, 3.0])
def test_posterior_mean_matches_grid_integration(scale):
  """d = 2: the sampler's posterior mean of θ equals the mean by quadrature over (θ₁, θ₂, log s)."""
  rng = np.random.default_rng(1 if scale is None else 2)
  target = np.array([0.8, -0.6])
  points, chosen = _history(rng, target, 8, 4, 2, scale)
  mask = np.ones(8, bool)
  post = fit(CFG, jnp.asarray(points, jnp.float32), jnp.asarray(chosen), jnp.asarray(mask),
             jax.random.key(3))
  got = np.asarray(ideal_point.estimate(CFG, post), np.float64)

  grid = np.linspace(-4, 4, 161)
  lam = np.linspace(np.log(CFG.ideal_scale) - 4 * CFG.ideal_scale_sd,
                    np.log(CFG.ideal_scale) + 4 * CFG.ideal_scale_sd, 33)
  t1, t2 = np.meshgrid(grid, grid, indexing="ij")
  thetas = np.stack([t1.ravel(), t2.ravel()], 1)                        # [G, 2]
  sq = ((points[None] - thetas[:, None, None, :]) ** 2).sum(-1)           # [G, R, K]
  log_post = np.empty((thetas.shape[0], lam.size))
  for j, l in enumerate(lam):
    u = -np.exp(l) * sq
    u -= u.max(-1, keepdims=True)
    logp = u - np.log(np.exp(u).sum(-1, keepdims=True))
    ll = np.take_along_axis(logp, chosen[None, :, None], -1)[..., 0].sum(-1)
    log_post[:, j] = (ll - 0.5 * (thetas ** 2).sum(1)
                      - 0.5 * ((l - np.log(CFG.ideal_scale)) / CFG.ideal_scale_sd) ** 2)
  w = np.exp(log_post - log_post.max())
  want = (w.sum(1) @ thetas) / w.sum()
  spread = np.sqrt((w.sum(1) @ ((thetas - want) ** 2).sum(1)) / w.sum())
  # Monte-Carlo error of ~4000 weighted particles (measured 0.02-0.03 of the spread): bound 0.08.
  assert np.linalg.norm(got - want) < 0.08 * spread, (got, want, spread)
  assert np.linalg.norm(want - target) < np.linalg.norm(target)  # the picks do inform θ


def test_proposals_are_seeded_and_narrow_as_picks_accumulate():
  rng = np.random.default_rng(5)
  target = np.array([1.0, 0.5, -0.5, 0.0])
  spreads = []
  for rounds in (2, 20):
    points, chosen = _history(rng, target, rounds, 4, 4)
    args = (jnp.asarray(points, jnp.float32), jnp.asarray(chosen), jnp.ones((rounds,), bool))
    post = fit(CFG, *args, jax.random.key(0))
    a = ideal_point.propose(CFG, post, jax.random.key(1), 64)
    b = ideal_point.propose(CFG, fit(CFG, *args, jax.random.key(0)), jax.random.key(1), 64)
    assert np.array_equal(np.asarray(a), np.asarray(b))
    assert len({tuple(p) for p in np.asarray(a).tolist()}) == 64  # distinct particles
    spreads.append(float(np.linalg.norm(np.std(np.asarray(a), axis=0))))
  assert spreads[1] < 0.5 * spreads[0], spreads


def test_session_with_the_ideal_point_model_replays_exactly_and_finds_the_target():
  """The choice session runs the model (utility=ideal): seeded replay, and a noiseless user in 4
  dimensions ends far closer to its target than it started."""
  target = np.array([1.2, -0.8, 0.5, 0.3])
  judge = lambda pts: np.sum((np.asarray(pts, np.float64) - target) ** 2, axis=-1) / np.sum(
      target ** 2)  # noqa: E731
  res = simulate.run_user("gp", judge, lambda y: y, np.zeros(4, np.float32), rounds=12, k=4,
                          key=jax.random.key(4), pref_config=CFG)
  assert res["curve"][0] == pytest.approx(1.0) and res["curve"][-1] < 0.2, res["curve"]
  full = choices.Session(CFG, np.zeros(4, np.float32), k=4, capacity=6, key=9)
  records = []
  for c in (2, 0, 3):
    records.append({"candidates": full.candidates.tolist(), "choice": c})
    full.record(c)
  resumed = choices.Session.from_history(CFG, np.zeros(4, np.float32), records, k=4, capacity=6,
                                         key=9)
  assert np.array_equal(resumed.estimate, full.estimate)
  assert np.array_equal(resumed.candidates, full.candidates)


@pytest.mark.parametrize("metric", ["iso", "diag"])
def test_expected_utility_and_the_shown_estimate_match_numpy(metric):
  """E[u(y)] over weighted particles against float64 NumPy; the shown estimate is the argmax over
  the incumbent and the kept rounds' points (a padding round's points never win)."""
  rng = np.random.default_rng(3)
  d, m = 3, 9
  parts = [rng.standard_normal((m, d)), rng.normal(1.0, 0.5, (m, 1))]
  if metric == "diag":
    parts.append(rng.normal(0.0, 0.5, (m, d)))
  particles = np.concatenate(parts, axis=1)
  w = rng.random(m)
  w /= w.sum()
  post = ideal_point.IdealPosterior(jnp.asarray(particles, jnp.float32), jnp.asarray(w, jnp.float32))
  cfg = pref.PreferenceConfig(utility="ideal", ideal_metric=metric)
  y = rng.standard_normal((5, d))
  a = np.exp(particles[:, d + 1:]) if metric == "diag" else np.ones((m, d))
  want = [-sum(w[i] * np.exp(particles[i, d]) * np.sum(a[i] * (yy - particles[i, :d]) ** 2)
               for i in range(m)) for yy in y]
  got = ideal_point.expected_utility(cfg, post, jnp.asarray(y, jnp.float32))
  np.testing.assert_allclose(np.asarray(got), want, rtol=1e-5)
  points = rng.standard_normal((3, 4, d))
  mask = np.array([True, False, True])
  theta_mean = (w[:, None] * particles[:, :d]).sum(0)
  points[1, 2] = theta_mean  # the best point of all, but in a padding round
  incumbent = rng.standard_normal(d)
  cands = np.concatenate([incumbent[None], points[0], points[2]])
  scores = ideal_point.expected_utility(cfg, post, jnp.asarray(cands, jnp.float32))
  best = ideal_point.estimate_shown(cfg, post, jnp.asarray(points, jnp.float32), jnp.asarray(mask),
                                    jnp.asarray(incumbent, jnp.float32))
  np.testing.assert_array_equal(np.asarray(best), cands[int(np.argmax(np.asarray(scores)))]
                                .astype(np.float32))


def test_shown_estimates_are_styles_the_user_saw():
  """With ideal_estimate=shown (the default) every estimate is the start or a shown candidate; with
  mean it is the posterior mean, which no round showed."""
  target = np.array([1.0, -0.6, 0.4])
  for rule in ("shown", "mean"):
    cfg = pref.PreferenceConfig(utility="ideal", ideal_particles=1024, ideal_iterations=6,
                                ideal_estimate=rule)
    session = choices.Session(cfg, np.zeros(3, np.float32), k=4, capacity=8, key=2)
    seen = [np.zeros(3, np.float32)]
    for _ in range(6):
      seen.extend(session.candidates)
      choice = int(np.argmin(np.sum((session.candidates - target) ** 2, axis=-1)))
      estimate = session.record(choice)
      was_seen = any(np.array_equal(estimate, s) for s in seen)
      assert was_seen == (rule == "shown"), (rule, estimate)
  assert pref.PreferenceConfig().ideal_estimate == "shown"
