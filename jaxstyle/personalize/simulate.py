"""Simulated users and baseline searches: how the choice loop is measured without people.

Contract:

* A simulated user secretly prefers a target latent ``z*``. Shown K
  candidate latents, it scores each by ``d_i``: the style distance
  (``gram_match.gram_distance``, the run's style loss) between the
  candidate's output on the user's photo and the target's output on that
  photo, divided by the start's distance ``d_0`` (so 1 = as far as the
  start). The ``noiseless`` user picks ``argmin d_i``; the ``noisy`` user
  draws a pick with Bradley–Terry/Luce probabilities
  ``P(i) ∝ exp(−d_i / τ)`` (``tau``), tuned so that about 20% of picks are
  not the best (``calibrate_tau``).
* Strategies (all start from the same estimate, usually the style space's
  origin = the collection's mean style, and show the current estimate as
  candidate 0 of every round):
  - ``gp``: ``jaxstyle.personalize.choices.Session`` (the preference model);
  - ``random``: K−1 new candidates drawn from the style prior N(0, I); the
    estimate moves to the pick (random search judged by the user);
  - ``follow_winner``: K−1 new candidates from N(estimate, r²I); the
    estimate moves to the pick and r shrinks by ``shrink`` each round (down
    to ``min_radius``).
* ``run_user(...)`` returns the relative distance ``d(estimate_t)/d_0`` for
  t = 0..rounds, the picks and every round's candidate distances; ``best_pick_rate`` how often the pick was the
  best candidate. Every draw comes from the given key: same key → same curve.
"""

from __future__ import annotations

import dataclasses
from typing import Callable

import jax
import jax.numpy as jnp
import numpy as np

from jaxstyle.personalize import choices as choices_lib
from jaxstyle.personalize import gram_match
from jaxstyle.personalize import preference as pref

STRATEGIES = ("gp", "random", "follow_winner")


@dataclasses.dataclass(frozen=True)
class BaselineConfig:
  """Settings of the two baselines (chosen before any measurement, not tuned on the test pairs)."""
  radius: float = 1.0        # follow_winner's first radius (whitened units)
  shrink: float = 0.8        # its radius factor per round
  min_radius: float = 0.05


class StyleJudge:
  """Relative style distances of latents' outputs on one photo to the target's (see the contract)."""

  def __init__(self, grams_of: gram_match.OutputGrams, photo: np.ndarray, target_latent: np.ndarray,
               start_latent: np.ndarray):
    self._grams_of, self._cfg = grams_of, grams_of.config
    self._photo = jnp.asarray(photo, jnp.float32)[None]
    self._target = {k: v[0] for k, v in self._grams(np.asarray(target_latent)[None]).items()}
    self.d0 = float(self.absolute(np.asarray(start_latent)[None])[0])

  def _grams(self, latents: np.ndarray) -> dict:
    photos = jnp.broadcast_to(self._photo, (latents.shape[0],) + self._photo.shape[1:])
    return self._grams_of(photos, latents)

  def absolute(self, latents: np.ndarray) -> np.ndarray:
    return np.asarray(gram_match.gram_distance(self._cfg, self._grams(latents), self._target),
                      np.float64)

  def __call__(self, latents: np.ndarray) -> np.ndarray:
    return self.absolute(latents) / self.d0


def pick(distances: np.ndarray, tau: float | None, key: jax.Array) -> int:
  """The simulated user's pick: argmin (``tau`` None) or a Luce draw ``P ∝ exp(−d/τ)``."""
  if tau is None:
    return int(np.argmin(distances))
  return int(jax.random.categorical(key, -jnp.asarray(distances, jnp.float32) / tau))


def _baseline_candidates(strategy: str, estimate: np.ndarray, radius: float, key: jax.Array,
                         num: int) -> np.ndarray:
  noise = np.asarray(jax.random.normal(key, (num, estimate.shape[0])), np.float32)
  if strategy == "random":
    return noise
  return estimate[None] + radius * noise


def run_user(strategy: str, judge: Callable[[np.ndarray], np.ndarray], to_latent: Callable,
             start: np.ndarray, *, rounds: int, k: int, key: jax.Array, tau: float | None = None,
             pref_config: pref.PreferenceConfig | None = None,
             baseline: BaselineConfig = BaselineConfig()) -> dict:
  """One simulated session: ``{"curve": [rounds+1], "picks", "best", "distances": [rounds][K]}``.

  Args:
    strategy: one of ``STRATEGIES``.
    judge: relative distances [n] of style-space points' outputs (given as latents [n, D]).
    to_latent: style-space coordinates [n, d] -> latents [n, D].
    start: the start estimate [d].
    rounds, k: rounds and candidates per round.
    key: the session's key (the strategy's and the user's draws fold it).
    tau: the user's noise (None: noiseless).
    pref_config: the preference model's settings (``gp``).
    baseline: the baselines' settings.
  """
  if strategy not in STRATEGIES:
    raise ValueError(f"unknown strategy {strategy!r}; choose one of {STRATEGIES}")
  k_strategy, k_user = jax.random.split(key)
  start = np.asarray(start, np.float32)
  curve = [float(judge(to_latent(start[None]))[0])]
  picks, best, distances = [], [], []
  session = None
  if strategy == "gp":
    session = choices_lib.Session(pref_config or pref.PreferenceConfig(), start, k=k,
                                  capacity=rounds, key=k_strategy)
  estimate, radius = start, baseline.radius
  for r in range(rounds):
    if session is not None:
      shown = session.candidates
    else:
      new = _baseline_candidates(strategy, estimate, radius, jax.random.fold_in(k_strategy, r), k - 1)
      shown = np.concatenate([estimate[None], new])
    d = judge(to_latent(shown))
    distances.append(d.tolist())
    choice = pick(d, tau, jax.random.fold_in(k_user, r))
    picks.append(choice)
    best.append(bool(d[choice] <= d.min()))
    if session is not None:
      estimate = session.record(choice)
      curve.append(float(judge(to_latent(estimate[None]))[0]))
    else:
      estimate = shown[choice]
      radius = max(radius * baseline.shrink, baseline.min_radius)
      curve.append(float(d[choice]))
  return {"curve": curve, "picks": picks, "best": best, "distances": distances}


def best_pick_rate(results: list[dict]) -> float:
  """Share of picks that were the best candidate of their round, over sessions."""
  flags = [b for r in results for b in r["best"]]
  return float(np.mean(flags)) if flags else float("nan")


def calibrate_tau(distance_sets: list[np.ndarray], target_rate: float = 0.8) -> float:
  """τ such that Luce draws over these candidate distance sets pick the best ``target_rate`` of the time.

  The expected best-pick rate ``mean_r softmax(−d_r/τ)[argmin d_r]`` (exact,
  not sampled) falls monotonically as τ grows, so bisection on log τ finds it.
  """

  def rate(tau):
    vals = []
    for d in distance_sets:
      p = np.exp(-(d - d.min()) / tau)
      vals.append(p[np.argmin(d)] / p.sum())
    return float(np.mean(vals))

  lo, hi = 1e-6, 1e3
  for _ in range(100):
    mid = np.sqrt(lo * hi)
    if rate(mid) > target_rate:
      lo = mid
    else:
      hi = mid
  return float(np.sqrt(lo * hi))
