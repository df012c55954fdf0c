"""Preference model of a human-in-the-loop style search: Luce picks over a GP utility.

Each round the user sees K candidate styles, points ``y`` of a d-dimensional
style space (whitened: the painting collection has about unit variance per
axis), and picks the one they like best. A Gaussian-process utility with a
Luce likelihood turns all picks into a (Laplace) posterior; an acquisition rule
proposes the next candidates. Everything is pure JAX, seeded by explicit keys,
and jit-able with the config (and ``num``) static. Arrays keep their float
dtype (float32 by default; float64 works under ``jax.enable_x64``).

History layout (fixed shapes, so ``jit`` compiles once per session):

* ``points`` float ``[R, K, d]``: the K candidates shown in round r;
* ``chosen`` int ``[R]``: index 0..K-1 of the pick within its round;
* ``mask`` bool ``[R]``: False marks a padding round. Padding rounds are
  ignored; their points are replaced by the origin (so any filler is fine).

The N = R·K flattened points X are the latent locations, f ∈ R^N the utility
there. A point shown in several rounds appears several times; that is fine,
since nothing below inverts the prior kernel matrix.

Model (GPML = Rasmussen & Williams 2006, ch. 3):

* Prior: f ~ GP(0, k), k(a, b) = signal² · exp(−‖a − b‖² / (2·lengthscale²));
  the training matrix is K = k(X, X) + jitter · I.
* Likelihood (Luce / Plackett–Luce top-1; Bradley–Terry for K = 2):
  p_r = softmax(f_r), P(pick c_r | round r) = p_r[c_r], and
  L(f) = Σ_r mask_r · log_softmax(f_r)[c_r]. Gradient
  g(f) = Σ_r mask_r (e_{c_r} − p_r) on round r's entries; negative Hessian
  W = blockdiag_r mask_r (diag(p_r) − p_r p_rᵀ) (PSD; singular, since every
  block maps the all-ones vector to 0).
* Laplace approximation: the mode f̂ of Ψ(f) = L(f) − ½ fᵀK⁻¹f by
  ``newton_steps`` Newton steps from f = 0, each
  f ← K (I + W K)⁻¹ (W f + g(f)) (GPML eq. 3.18 with
  (K⁻¹ + W)⁻¹ = K (I + W K)⁻¹: no K⁻¹, no W^{±½}; ``jnp.linalg.solve``).
  At the mode f̂ = K g(f̂).
* Prediction at Y ``[m, d]``, with k* = k(X, Y) and A = (I + W K)⁻¹ W
  (= (K + W⁻¹)⁻¹ where W is invertible; stored symmetrised in ``Posterior.a``):
  mean μ = k*ᵀ g(f̂) (= k*ᵀ K⁻¹ f̂), covariance Σ = k(Y, Y) − k*ᵀ A k*
  (= k** − k*ᵀK⁻¹k* + k*ᵀK⁻¹(K⁻¹ + W)⁻¹K⁻¹k*), variance diag(Σ) clipped at 0.
  An empty history gives f̂ = 0, μ = 0 and Σ = k(Y, Y) (variance signal²).
* Expected improvement over μ⁺: σ ← max(σ, eps), z = (μ − μ⁺) / σ,
  EI = (μ − μ⁺) Φ(z) + σ φ(z) (→ max(μ − μ⁺, 0) as σ → 0).
* ``candidate_pool``: round(pool_size · local_share) draws from
  N(incumbent, (ρ·local_radius)² I), each with its own scale
  ρ = 2^(−u·(local_scales − 1)), u ~ U[0, 1] (radii from local_radius down to
  local_radius / 2^(local_scales−1): EI can take small steps once the
  estimate is close and large ones early), the rest from N(0, prior_scale² I).
  ``radius_scale`` multiplies local_radius: ``round_radius_scale(config, r)``
  = max(radius_decay^r, RADIUS_FLOOR) after r rounds (1 with the default
  radius_decay = 1), so the local search can narrow as a session goes on, as
  a trust region does.
* ``propose`` picks ``num`` distinct pool points. "ei": greedy batch EI with
  μ⁺ = μ(incumbent); after each pick j the pool covariance is conditioned on
  f_j as if observed exactly at its mean (kriging believer, variance only):
  Σ ← Σ − Σ[:, j] Σ[j, :] / Σ[j, j], and picked points are excluded.
  "thompson": ``num`` independent joint draws f ~ N(μ, Σ + δI) over the pool
  (Cholesky; δ = THOMPSON_JITTER · signal²), each taking its argmax among the
  points not yet taken.
* ``estimate``: the point of highest posterior mean among the incumbent and
  the observed points (``estimate_from="shown"``, the default: the estimate
  is always a style the user has seen), or also a fresh pool around the
  incumbent (``"pool"``); ties keep the incumbent.

Errors: every function that takes the config validates it (``ConfigError``);
bad shapes and ``num`` outside 1..pool_size raise ``ValueError``.
"""

from __future__ import annotations

import dataclasses
from typing import NamedTuple

import jax
import jax.numpy as jnp
from jax.scipy.stats import norm

from jaxstyle import config as cfglib

Array = jax.Array

EI_EPS = 1e-9           # floor of σ in expected_improvement
BELIEVER_EPS = 1e-12    # pivots Σ[j, j] below this (relative to signal²) are not conditioned on
THOMPSON_JITTER = 1e-4  # δ / signal² added to the pool covariance before its Cholesky factor
RADIUS_FLOOR = 1 / 16   # the smallest round_radius_scale


@dataclasses.dataclass(frozen=True)
class PreferenceConfig:
  """The preference model's settings: which utility model, and each model's prior, fit and
  acquisition (``utility=gp``: this module's docstring; ``utility=ideal``: ``ideal_point.py``)."""
  lengthscale: float = cfglib.setting(
      2.5, "utility=gp: RBF lengthscale of the utility, in whitened style-space units (chosen "
      "on simulated users with training paintings as targets: BUILD_NOTES.md).", gt=0,
      check=cfglib.finite)
  signal: float = cfglib.setting(
      8.0, "utility=gp: prior std of the utility, in Luce logit units (large: a person's picks "
      "are mostly consistent, so utilities may differ by many logits).", gt=0,
      check=cfglib.finite)
  jitter: float = cfglib.setting(
      1e-5, "utility=gp: added to the diagonal of the training kernel matrix.", ge=0,
      check=cfglib.finite)
  newton_steps: int = cfglib.setting(30, "utility=gp: Newton steps of the Laplace mode search.",
                                     gt=0)
  acquisition: str = cfglib.setting(
      "ei", "utility=gp: how new candidates are chosen: greedy batch expected improvement or "
      "Thompson sampling.", choices=("ei", "thompson"))
  pool_size: int = cfglib.setting(512, "utility=gp: random candidate points scored per proposal.",
                                  gt=0)
  local_radius: float = cfglib.setting(
      1.0, "utility=gp: std of the pool's draws around the incumbent.", gt=0, check=cfglib.finite)
  local_scales: int = cfglib.setting(
      4, "utility=gp: octaves of radii of the local draws: each is drawn at local_radius / "
      "2^(u·(local_scales−1)), u uniform in [0, 1] (1: one radius).", gt=0)
  local_share: float = cfglib.setting(
      1.0, "utility=gp: share of the pool drawn around the incumbent (the rest is drawn from the "
      "prior).", ge=0, le=1)
  prior_scale: float = cfglib.setting(
      1.0, "utility=gp: std of the pool's draws around the origin.", gt=0, check=cfglib.finite)
  radius_decay: float = cfglib.setting(
      1.0, "utility=gp: factor on local_radius per round done (1: a fixed radius; e.g. 0.85 "
      "narrows the local search as a session goes on, down to 1/16 of local_radius).", gt=0,
      le=1)
  utility: str = cfglib.setting(
      "ideal", "The utility model: gp (a Gaussian-process utility, EI or Thompson proposals from a "
      "pool) or ideal (a quadratic utility around the user's ideal point, Thompson proposals: "
      "ideal_point.py).", choices=("gp", "ideal"))
  ideal_scale: float = cfglib.setting(
      16.0, "utility=ideal: prior median of the utility's scale s, in Luce logits per squared "
      "whitened unit (chosen on development users: BUILD_NOTES.md).", gt=0, check=cfglib.finite)
  ideal_scale_sd: float = cfglib.setting(1.0, "utility=ideal: prior std of the log of that "
                                         "scale.", gt=0, check=cfglib.finite)
  ideal_metric: str = cfglib.setting(
      "iso", "utility=ideal: the distance the user's taste falls with: iso (the same on every "
      "axis) or diag (a weight per axis, inferred).", choices=("iso", "diag"))
  ideal_metric_sd: float = cfglib.setting(0.5, "utility=ideal, ideal_metric=diag: prior std of "
                                          "each axis weight's log.", gt=0, check=cfglib.finite)
  ideal_particles: int = cfglib.setting(2048, "utility=ideal: importance-sampling particles.",
                                        gt=1)
  ideal_iterations: int = cfglib.setting(
      10, "utility=ideal: adaptive importance-sampling rounds (the likelihood tempered by 2^-n "
      "in all but the last 2).", gt=0)
  ideal_estimate: str = cfglib.setting(
      "shown", "utility=ideal: the estimate: shown (the start or a shown style, whichever has the "
      "highest posterior expected utility: always a style the user has seen) or mean (the "
      "posterior mean ideal point). Chosen on development users: BUILD_NOTES.md.",
      choices=("shown", "mean"))
  estimate_from: str = cfglib.setting(
      "shown", "utility=gp: where the estimate is the highest posterior mean: pool (the "
      "incumbent, every shown point and a fresh pool around the incumbent) or shown (only points "
      "the user has seen).", choices=("pool", "shown"))


# Settings added after profiles were first written, with the values that reproduce those profiles'
# sessions (a recorded "preference" dict without the key predates it).
LEGACY_VALUES = {"estimate_from": "pool", "radius_decay": 1.0, "utility": "gp",
                 "ideal_estimate": "mean"}


def config_from_record(record: dict) -> PreferenceConfig:
  """The ``PreferenceConfig`` a profile recorded (``cfglib.to_dict``), older records included."""
  return cfglib.validate(cfglib.from_dict(PreferenceConfig, {**LEGACY_VALUES, **record}))


class Posterior(NamedTuple):
  """The Laplace posterior: everything ``predict`` needs."""
  points: Array  # [N, d] flattened history points (padding rounds at the origin)
  f: Array       # [N]    Laplace mode f̂
  grad: Array    # [N]    g(f̂) (= K⁻¹ f̂)
  a: Array       # [N, N] (I + W K)⁻¹ W, symmetrised


def rbf_kernel(config: PreferenceConfig, a: Array, b: Array) -> Array:
  """k(a_i, b_j) = signal² · exp(−‖a_i − b_j‖² / (2·lengthscale²)).

  Args:
    config: the preference config (lengthscale, signal).
    a: ``[n, d]`` points.
    b: ``[m, d]`` points.

  Returns:
    ``[n, m]`` kernel matrix (no jitter).
  """
  cfglib.validate(config)
  if a.ndim != 2 or b.ndim != 2 or a.shape[1] != b.shape[1]:
    raise ValueError(f"rbf_kernel needs [n, d] and [m, d] points, got {a.shape} and {b.shape}")
  sq = jnp.sum(jnp.square(a[:, None, :] - b[None, :, :]), axis=-1)
  return config.signal**2 * jnp.exp(-0.5 * sq / config.lengthscale**2)


def log_likelihood(f: Array, chosen: Array, mask: Array) -> Array:
  """L(f) = Σ_r mask_r · log_softmax(f_r)[c_r] for utilities ``f`` ``[R, K]``: a scalar."""
  logp = jax.nn.log_softmax(f, axis=-1)
  picked = jnp.take_along_axis(logp, chosen[:, None].astype(jnp.int32), axis=-1)[:, 0]
  return jnp.sum(jnp.where(mask, picked, jnp.zeros_like(picked)))


def _likelihood_terms(f: Array, chosen: Array, mask: Array) -> tuple[Array, Array]:
  """Gradient g ``[R, K]`` and negative-Hessian blocks ``[R, K, K]`` of ``log_likelihood``."""
  p = jax.nn.softmax(f, axis=-1)
  m = mask.astype(f.dtype)[:, None]
  onehot = jax.nn.one_hot(chosen, f.shape[-1], dtype=f.dtype)
  grad = m * (onehot - p)
  blocks = m[:, :, None] * (jax.vmap(jnp.diag)(p) - p[:, :, None] * p[:, None, :])
  return grad, blocks


def _block_diag(blocks: Array) -> Array:
  """Dense ``[R·K, R·K]`` block-diagonal matrix of ``[R, K, K]`` blocks."""
  r, k, _ = blocks.shape
  eye = jnp.eye(r, dtype=blocks.dtype)
  return (eye[:, None, :, None] * blocks[:, :, None, :]).reshape(r * k, r * k)


def check_history_arrays(points: Array, chosen: Array, mask: Array):
  """``ValueError`` unless the history is points [R, K, d], chosen [R], mask [R] (both models)."""
  if points.ndim != 3 or chosen.shape != points.shape[:1] or mask.shape != points.shape[:1]:
    raise ValueError(f"history needs points [R, K, d], chosen [R], mask [R]; got "
                     f"{points.shape}, {chosen.shape}, {mask.shape}")


def fit(config: PreferenceConfig, points: Array, chosen: Array, mask: Array) -> Posterior:
  """The Laplace posterior of a history (see the module docstring for layout and formulas)."""
  cfglib.validate(config)
  points, chosen, mask = jnp.asarray(points), jnp.asarray(chosen), jnp.asarray(mask, bool)
  check_history_arrays(points, chosen, mask)
  points = as_float(points)
  r, k, d = points.shape
  x = jnp.where(mask[:, None, None], points, jnp.zeros_like(points)).reshape(r * k, d)
  n = r * k
  eye = jnp.eye(n, dtype=x.dtype)
  kmat = rbf_kernel(config, x, x) + config.jitter * eye

  def terms(f):
    g, blocks = _likelihood_terms(f.reshape(r, k), chosen, mask)
    return g.reshape(n), _block_diag(blocks)

  def newton(_, f):
    g, w = terms(f)
    return kmat @ jnp.linalg.solve(eye + w @ kmat, w @ f + g)

  f = jax.lax.fori_loop(0, config.newton_steps, newton, jnp.zeros((n,), x.dtype))
  g, w = terms(f)
  a = jnp.linalg.solve(eye + w @ kmat, w)
  return Posterior(points=x, f=f, grad=g, a=0.5 * (a + a.T))


def predict_cov(config: PreferenceConfig, post: Posterior, y: Array) -> tuple[Array, Array]:
  """Posterior mean ``[m]`` and covariance ``[m, m]`` of the utility at ``y`` ``[m, d]``."""
  cfglib.validate(config)
  y = as_float(jnp.asarray(y))
  ks = rbf_kernel(config, y, post.points)  # [m, N]
  cov = rbf_kernel(config, y, y) - ks @ post.a @ ks.T
  return ks @ post.grad, 0.5 * (cov + cov.T)


def predict(config: PreferenceConfig, post: Posterior, y: Array) -> tuple[Array, Array]:
  """Posterior mean ``[m]`` and variance ``[m]`` (≥ 0) of the utility at ``y`` ``[m, d]``."""
  cfglib.validate(config)
  y = as_float(jnp.asarray(y))
  ks = rbf_kernel(config, y, post.points)
  var = config.signal**2 - jnp.sum((ks @ post.a) * ks, axis=-1)
  return ks @ post.grad, jnp.maximum(var, 0.0)


def expected_improvement(mean: Array, std: Array, best: Array, eps: float = EI_EPS) -> Array:
  """EI = (μ − μ⁺) Φ(z) + σ φ(z), z = (μ − μ⁺)/σ, σ floored at ``eps`` (broadcasts)."""
  sigma = jnp.maximum(std, eps)
  diff = mean - best
  z = diff / sigma
  return diff * norm.cdf(z) + sigma * norm.pdf(z)


def round_radius_scale(config: PreferenceConfig, rounds_done) -> Array:
  """max(radius_decay ** rounds_done, RADIUS_FLOOR): the local radius factor of the next proposals."""
  return jnp.maximum(jnp.float32(config.radius_decay) ** jnp.asarray(rounds_done, jnp.float32),
                     RADIUS_FLOOR)


def candidate_pool(config: PreferenceConfig, key: Array, incumbent: Array,
                   radius_scale: Array | float = 1.0) -> Array:
  """``[pool_size, d]``: round(pool_size·local_share) draws around ``incumbent``, the rest around 0."""
  cfglib.validate(config)
  incumbent = as_float(jnp.asarray(incumbent))
  if incumbent.ndim != 1:
    raise ValueError(f"incumbent must be one point [d], got shape {incumbent.shape}")
  d = incumbent.shape[0]
  n_local = int(round(config.pool_size * config.local_share))
  k_local, k_prior, k_scale = jax.random.split(key, 3)
  u = jax.random.uniform(k_scale, (n_local, 1), incumbent.dtype)
  radius = (config.local_radius * jnp.asarray(radius_scale, incumbent.dtype)
            * jnp.exp2(-u * (config.local_scales - 1)))
  local = incumbent + radius * jax.random.normal(k_local, (n_local, d), incumbent.dtype)
  prior = config.prior_scale * jax.random.normal(k_prior, (config.pool_size - n_local, d),
                                                 incumbent.dtype)
  return jnp.concatenate([local, prior], axis=0)


def _propose_ei(config, mean, cov, best, num):
  """Greedy batch EI with kriging-believer variance updates: ``num`` distinct pool indices."""
  tiny = BELIEVER_EPS * config.signal**2

  def pick(carry, _):
    cov, taken = carry
    std = jnp.sqrt(jnp.maximum(jnp.diag(cov), 0.0))
    ei = jnp.where(taken, -jnp.inf, expected_improvement(mean, std, best))
    j = jnp.argmax(ei)
    pivot = cov[j, j]
    col = cov[:, j]
    update = jnp.outer(col, col) / jnp.where(pivot > tiny, pivot, 1.0)
    cov = cov - jnp.where(pivot > tiny, update, jnp.zeros_like(update))
    return (cov, taken.at[j].set(True)), j

  taken = jnp.zeros(mean.shape, bool)
  _, idx = jax.lax.scan(pick, (cov, taken), None, length=num)
  return idx


def _propose_thompson(config, mean, cov, key, num):
  """``num`` joint posterior draws over the pool; each draw's argmax among untaken points."""
  p = mean.shape[0]
  chol = jnp.linalg.cholesky(cov + THOMPSON_JITTER * config.signal**2 * jnp.eye(p, dtype=cov.dtype))
  draws = mean + jax.random.normal(key, (num, p), mean.dtype) @ chol.T  # [num, p]

  def pick(taken, draw):
    j = jnp.argmax(jnp.where(taken, -jnp.inf, draw))
    return taken.at[j].set(True), j

  _, idx = jax.lax.scan(pick, jnp.zeros((p,), bool), draws)
  return idx


def propose(config: PreferenceConfig, post: Posterior, incumbent: Array, key: Array,
            num: int, radius_scale: Array | float = 1.0) -> Array:
  """``num`` new, distinct candidate points ``[num, d]`` from a fresh pool (``config.acquisition``).

  ``num`` must be static under ``jit`` and at most ``pool_size``.
  """
  cfglib.validate(config)
  if not 1 <= num <= config.pool_size:
    raise ValueError(f"num={num} must be in 1..pool_size={config.pool_size}")
  incumbent = as_float(jnp.asarray(incumbent))
  k_pool, k_draw = jax.random.split(key)
  pool = candidate_pool(config, k_pool, incumbent, radius_scale)
  mean, cov = predict_cov(config, post, pool)
  if config.acquisition == "ei":
    best, _ = predict(config, post, incumbent[None])
    idx = _propose_ei(config, mean, cov, best[0], num)
  else:
    idx = _propose_thompson(config, mean, cov, k_draw, num)
  return pool[idx]


def estimate(config: PreferenceConfig, post: Posterior, incumbent: Array, key: Array,
             radius_scale: Array | float = 1.0) -> Array:
  """The best guess ``[d]`` of the user's favourite: the highest posterior mean among the
  incumbent, the observed points and (``estimate_from="pool"``) a fresh pool around the
  incumbent."""
  cfglib.validate(config)
  incumbent = as_float(jnp.asarray(incumbent))
  cands = jnp.concatenate([incumbent[None], post.points.astype(incumbent.dtype)], axis=0)
  if config.estimate_from == "pool":
    cands = jnp.concatenate([cands, candidate_pool(config, key, incumbent, radius_scale)], axis=0)
  mean, _ = predict(config, post, cands)
  return cands[jnp.argmax(mean)]


def make_session_fns(config: PreferenceConfig):
  """Jitted ``(fit(points, chosen, mask), propose(post, incumbent, key, num, radius_scale=1),
  estimate(post, incumbent, key, radius_scale=1))`` closures over a validated ``config``
  (``num`` static)."""
  cfglib.validate(config)
  fit_fn = jax.jit(lambda points, chosen, mask: fit(config, points, chosen, mask))
  propose_fn = jax.jit(lambda post, incumbent, key, num, radius_scale=1.0: propose(
      config, post, incumbent, key, num, radius_scale), static_argnames="num")
  estimate_fn = jax.jit(lambda post, incumbent, key, radius_scale=1.0: estimate(
      config, post, incumbent, key, radius_scale))
  return fit_fn, propose_fn, estimate_fn


def as_float(x: Array) -> Array:
  """``x`` itself if it is floating point, else cast to the default float dtype."""
  return x if jnp.issubdtype(x.dtype, jnp.floating) else x.astype(jnp.result_type(float))
