"""The choice loop's engine: candidates to show, a pick recorded, the next estimate.

Contract (style-space coordinates ``[d]`` throughout; front ends map them to
latents with ``StyleSpace.to_latent`` and show stylized photos):

* Each round shows K candidates. Candidate 0 is always the current estimate
  (the user's style so far: "keep mine"); candidates 1..K−1 are new
  proposals. A pick is an index 0..K−1; "none of these" is recorded as a pick
  of candidate 0 (none of the new ones beats the current estimate).
* ``Session`` holds the history as fixed-capacity arrays (``points`` [R, K,
  d], ``chosen`` [R], ``mask`` [R]; R = ``capacity``) so the jitted model runs
  compile once per session. ``record(choice)`` fits the preference model
  (``config.utility``: ``ideal_point`` — Luce likelihood over a quadratic
  utility around the user's ideal point, importance-sampled — or
  ``preference`` — over a GP utility, Laplace approximation) to every pick so
  far, moves the estimate (the shown style of highest posterior expected
  utility; for the GP, of highest posterior mean utility), and proposes the
  next K−1 candidates by the acquisition rule. Everything draws from ``fold_in(key, round)``: the
  same key, start and picks give the same candidates and estimates.
* ``Session.from_history`` replays a recorded list of rounds (what a profile
  stores), so an interrupted session continues where it stopped. The rounds
  come from a file, so ``check_history`` validates all of them first: a
  malformed round (not an object, candidates not a finite [K, d] array of
  numbers, a choice not null or an integer 0..K−1) raises ``ConfigError``
  naming the round.
"""

from __future__ import annotations

import functools

import jax
import jax.numpy as jnp
import numpy as np

from jaxstyle import config as cfglib
from jaxstyle.errors import ConfigError
from jaxstyle.personalize import ideal_point
from jaxstyle.personalize import preference as pref


@functools.lru_cache(maxsize=16)
def _round_fns(config: pref.PreferenceConfig, num_new: int):
  """Jitted (first, after) for one config and number of new candidates per round."""

  if config.utility == "ideal":
    return _ideal_round_fns(config, num_new)

  def first(incumbent, key):
    empty = pref.fit(config, jnp.zeros((1, num_new + 1, incumbent.shape[0]), jnp.float32),
                     jnp.zeros((1,), jnp.int32), jnp.zeros((1,), bool))
    return pref.propose(config, empty, incumbent, key, num_new)

  def after(points, chosen, mask, incumbent, key):
    k_est, k_prop = jax.random.split(key)
    post = pref.fit(config, points, chosen, mask)
    scale = pref.round_radius_scale(config, jnp.sum(mask))
    new_incumbent = pref.estimate(config, post, incumbent, k_est, scale)
    return new_incumbent, pref.propose(config, post, new_incumbent, k_prop, num_new, scale)

  return jax.jit(first), jax.jit(after)


def _ideal_round_fns(config: pref.PreferenceConfig, num_new: int):
  """(first, after) of the ideal-point model (``ideal_point.py``)."""

  def first(incumbent, key):
    d = incumbent.shape[0]
    k_fit, k_prop = jax.random.split(key)
    empty = ideal_point.fit(config, jnp.zeros((1, num_new + 1, d), jnp.float32),
                            jnp.zeros((1,), jnp.int32), jnp.zeros((1,), bool), k_fit)
    return ideal_point.propose(config, empty, k_prop, num_new)

  def after(points, chosen, mask, incumbent, key):
    k_fit, key = jax.random.split(key)
    post = ideal_point.fit(config, points, chosen, mask, k_fit)
    if config.ideal_estimate == "mean":
      estimate = ideal_point.estimate(config, post)
    else:
      estimate = ideal_point.estimate_shown(config, post, points, mask, incumbent)
    return estimate, ideal_point.propose(config, post, key, num_new)

  return jax.jit(first), jax.jit(after)


class Session:
  """A from-choices session in style-space coordinates (see the module contract)."""

  def __init__(self, config: pref.PreferenceConfig, start: np.ndarray, *, k: int = 4,
               capacity: int = 64, key: jax.Array | int = 0):
    cfglib.validate(config)
    if k < 2:
      raise ConfigError(f"k={k}: a round needs at least 2 candidates")
    if capacity < 1:
      raise ConfigError(f"capacity={capacity}: a session needs room for at least one round")
    start = np.asarray(start, np.float32)
    if start.ndim != 1:
      raise ValueError(f"the start must be style-space coordinates [d], got shape {start.shape}")
    self.config, self.k, self.capacity = config, k, capacity
    self.key = jax.random.key(key) if isinstance(key, int) else key
    d = start.shape[0]
    self.points = np.zeros((capacity, k, d), np.float32)
    self.chosen = np.zeros((capacity,), np.int32)
    self.mask = np.zeros((capacity,), bool)
    self.round = 0
    self.estimate = start
    self._first, self._after = _round_fns(config, k - 1)
    new = self._first(jnp.asarray(start), self._round_key())
    self.candidates = np.concatenate([start[None], np.asarray(new, np.float32)])

  def _round_key(self) -> jax.Array:
    return jax.random.fold_in(self.key, self.round)

  def record(self, choice: int | None) -> np.ndarray:
    """Records the pick of this round's candidates (None: none of these); returns the new estimate."""
    if choice is None:
      choice = 0
    if not 0 <= int(choice) < self.k:
      raise ConfigError(f"choice {choice} is not a candidate of this round (0..{self.k - 1})")
    if self.round >= self.capacity:
      raise ConfigError(f"the session is full ({self.capacity} rounds); save the profile and start "
                        "a new session from it")
    r = self.round
    self.points[r], self.chosen[r], self.mask[r] = self.candidates, int(choice), True
    self.round += 1
    est, new = self._after(jnp.asarray(self.points), jnp.asarray(self.chosen), jnp.asarray(self.mask),
                           jnp.asarray(self.estimate), self._round_key())
    self.estimate = np.asarray(est, np.float32)
    self.candidates = np.concatenate([self.estimate[None], np.asarray(new, np.float32)])
    return self.estimate

  @classmethod
  def from_history(cls, config: pref.PreferenceConfig, start: np.ndarray, rounds: list[dict], *,
                   k: int = 4, capacity: int = 64, key: jax.Array | int = 0) -> "Session":
    """A session with ``rounds`` (dicts with ``"candidates"`` [K, d] and ``"choice"``) replayed."""
    start = np.asarray(start, np.float32)
    history = check_history(rounds, k, start.shape[-1] if start.ndim else 0)
    session = cls(config, start, k=k, capacity=max(capacity, len(history) + 1), key=key)
    for shown, choice in history:
      session.candidates = shown  # what the user actually saw
      session.record(choice)
    return session


def check_history(rounds, k: int, d: int) -> list[tuple[np.ndarray, int | None]]:
  """Recorded ``rounds`` as ``(candidates [k, d] float32, choice)``; ``ConfigError`` if malformed."""
  advice = "start a new session (without --start) or resume with the same --k"
  if not isinstance(rounds, (list, tuple)):
    raise ConfigError(f"the recorded rounds are a {type(rounds).__name__}, not a list; {advice}")
  history = []
  for i, rec in enumerate(rounds):
    where = f"recorded round {i + 1}"
    if not isinstance(rec, dict) or "candidates" not in rec:
      raise ConfigError(f'{where} is not an object with "candidates"; {advice}')
    try:
      with np.errstate(over="ignore"):  # beyond float32: inf, refused below
        shown = np.asarray(rec["candidates"], np.float32)
    except (TypeError, ValueError, OverflowError):
      raise ConfigError(f"{where}: its candidates are not a [K, d] array of numbers; {advice}") \
          from None
    if shown.shape != (k, d):
      raise ConfigError(f"{where} has candidates of shape {shown.shape}, the session shows "
                        f"{(k, d)}; resume with the same --k")
    if not np.all(np.isfinite(shown)):
      raise ConfigError(f"{where}: its candidates are not all finite; {advice}")
    choice = rec.get("choice")
    if choice is not None and (isinstance(choice, bool) or not isinstance(choice, int)
                               or not 0 <= choice < k):
      raise ConfigError(f"{where}: choice {choice!r} is neither null nor a candidate 0..{k - 1}; "
                        f"{advice}")
    history.append((shown, choice))
  return history
