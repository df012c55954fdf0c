"""The choice session (candidates, picks, replay) and the simulated users, on synthetic utilities."""

import jax
import numpy as np
import pytest

from jaxstyle.errors import ConfigError
from jaxstyle.personalize import choices, simulate
from jaxstyle.personalize import preference as pref

CFG = pref.PreferenceConfig(pool_size=96)  # the default model (ideal point)
CFGS = {"ideal": CFG, "gp": pref.PreferenceConfig(utility="gp", pool_size=96)}
D = 3


def _quadratic_judge(target):
  """Relative squared distance to ``target`` in coordinates (latents = coordinates here)."""
  d0 = float(np.sum(target ** 2))
  return lambda pts: np.sum((np.asarray(pts, np.float64) - target) ** 2, axis=-1) / d0


def _run(session, picks):
  trace = []
  for c in picks:
    trace.append(session.candidates.copy())
    trace.append(session.record(c).copy())
  trace.append(session.candidates.copy())
  return trace


@pytest.mark.parametrize("utility", CFGS)
def test_candidate_zero_is_the_estimate_and_none_keeps_it(utility):
  cfg = CFGS[utility]
  s = choices.Session(cfg, np.zeros(D, np.float32), k=4, capacity=4, key=0)
  assert s.candidates.shape == (4, D) and np.array_equal(s.candidates[0], np.zeros(D))
  assert len({tuple(c) for c in s.candidates}) == 4  # distinct proposals
  est = s.record(2)
  assert np.array_equal(s.candidates[0], est) and s.round == 1
  a = choices.Session(cfg, np.zeros(D, np.float32), k=4, capacity=4, key=0)
  b = choices.Session(cfg, np.zeros(D, np.float32), k=4, capacity=4, key=0)
  assert np.array_equal(a.record(None), b.record(0))  # "none of these" = keep the current estimate


@pytest.mark.parametrize("utility", CFGS)
def test_same_key_same_session_other_key_other_candidates(utility):
  cfg = CFGS[utility]
  picks = [1, 3, None, 2]
  t1 = _run(choices.Session(cfg, np.zeros(D, np.float32), k=4, capacity=5, key=7), picks)
  t2 = _run(choices.Session(cfg, np.zeros(D, np.float32), k=4, capacity=5, key=7), picks)
  t3 = _run(choices.Session(cfg, np.zeros(D, np.float32), k=4, capacity=5, key=8), picks)
  assert all(np.array_equal(a, b) for a, b in zip(t1, t2))
  assert not np.array_equal(t1[0], t3[0])


@pytest.mark.parametrize("utility", CFGS)
def test_replayed_history_continues_exactly(utility):
  """An interrupted session replayed from its records gives the same estimate and next candidates."""
  cfg = CFGS[utility]
  picks = [2, 1, 3, None, 1]
  full = choices.Session(cfg, np.zeros(D, np.float32), k=4, capacity=5, key=3)
  records = []
  for c in picks[:3]:
    shown = full.candidates.copy()
    full.record(c)
    records.append({"candidates": shown.tolist(), "choice": c})
  resumed = choices.Session.from_history(cfg, np.zeros(D, np.float32), records, k=4, capacity=5,
                                         key=3)
  assert np.array_equal(resumed.estimate, full.estimate)
  assert np.array_equal(resumed.candidates, full.candidates)
  for c in picks[3:]:
    assert np.array_equal(resumed.record(c), full.record(c))


def test_bad_picks_and_a_full_session_are_refused():
  s = choices.Session(CFG, np.zeros(D, np.float32), k=3, capacity=1, key=0)
  with pytest.raises(ConfigError, match="not a candidate"):
    s.record(3)
  s.record(1)
  with pytest.raises(ConfigError, match="full"):
    s.record(1)
  with pytest.raises(ConfigError, match="at least 2"):
    choices.Session(CFG, np.zeros(D, np.float32), k=1)
  with pytest.raises(ConfigError, match="same --k"):
    choices.Session.from_history(CFG, np.zeros(D, np.float32),
                                 [{"candidates": np.zeros((3, D)).tolist(), "choice": 1}], k=4)


def test_calibrated_tau_gives_the_target_best_pick_rate():
  rng = np.random.default_rng(0)
  sets = [rng.random(4) for _ in range(50)]
  tau = simulate.calibrate_tau(sets, 0.8)
  p = [np.exp(-d / tau) / np.sum(np.exp(-d / tau)) for d in sets]  # independent softmax
  assert abs(np.mean([pi[np.argmin(d)] for pi, d in zip(p, sets)]) - 0.8) < 1e-6


def test_noisy_pick_follows_luce_probabilities():
  d, tau = np.array([0.2, 0.5, 0.3, 0.9]), 0.25
  want = np.exp(-d / tau) / np.exp(-d / tau).sum()
  keys = jax.random.split(jax.random.key(0), 4000)
  counts = np.bincount([simulate.pick(d, tau, k) for k in keys], minlength=4) / 4000
  assert np.abs(counts - want).max() < 0.03
  assert simulate.pick(d, None, keys[0]) == 0


@pytest.mark.parametrize("strategy", simulate.STRATEGIES + ("gp_utility",))
def test_strategies_on_a_synthetic_user(strategy):
  target = np.array([1.2, -0.8, 0.5])
  judge = _quadratic_judge(target)
  kw = dict(rounds=8, k=4, pref_config=CFGS["gp"] if strategy == "gp_utility" else CFG)
  strategy = "gp" if strategy == "gp_utility" else strategy
  a = simulate.run_user(strategy, judge, lambda y: y, np.zeros(D, np.float32),
                        key=jax.random.key(1), **kw)
  b = simulate.run_user(strategy, judge, lambda y: y, np.zeros(D, np.float32),
                        key=jax.random.key(1), **kw)
  assert a == b  # seeded
  curve = np.asarray(a["curve"])
  assert curve[0] == pytest.approx(1.0) and curve.shape == (9,)
  assert np.all(np.isfinite(curve)) and len(a["distances"]) == 8 and all(a["best"])
  if strategy != "gp":  # the estimate moves only to a pick no worse than itself
    assert np.all(np.diff(curve) <= 1e-12)
  assert curve[-1] < 0.6


@pytest.mark.parametrize("utility", CFGS)
def test_the_preference_model_beats_random_search_on_a_synthetic_user(utility):
  """Median over 6 targets y* ~ N(0, I_8) after 12 rounds, noiseless user, shipped settings
  (both utility models).

  (Against follow-the-winner the comparison that counts is on real styles: benchmark.py
  personalize, BUILD_NOTES.md; on this quadratic toy the two trade places from round to round.)
  """
  rng = np.random.default_rng(123)
  final = {s: [] for s in ("gp", "random")}
  for i in range(6):
    judge = _quadratic_judge(rng.standard_normal(8))
    for strategy in final:
      final[strategy].append(simulate.run_user(
          strategy, judge, lambda y: y, np.zeros(8, np.float32), rounds=12, k=4,
          key=jax.random.key(i), pref_config=CFGS[utility])["curve"][-1])
  gp, rnd = np.median(final["gp"]), np.median(final["random"])
  assert gp < 0.5 * rnd and gp < 0.3, (gp, rnd)
