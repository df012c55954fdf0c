"""Ideal-point preference model: Luce picks over a quadratic utility centred on the user's taste.

The alternative to the GP utility of ``preference.py`` (``PreferenceConfig.utility
= "ideal"``). The user is assumed to have a favourite point θ of the whitened
style space and to like a style less the farther it is from θ:

* Utility u(y) = −s Σ_i a_i (y_i − θ_i)², s > 0 the consistency of the user's
  picks in Luce logits per squared whitened unit; ``ideal_metric="iso"``:
  a_i = 1, ``"diag"``: a weight per axis, inferred too. Likelihood of round
  r's pick c_r among its K points x_{r,j} (Luce; Bradley–Terry for K = 2):
  P(c_r | θ, s, a) = softmax_j u(x_{r,j})[c_r]; L = Σ_r mask_r log P(c_r | ·).
* Prior, independent Gaussians over a particle (θ, log s[, log a]):
  θ ~ N(0, I) (the space is whitened, so the painting collection itself is
  the prior on tastes), log s ~ N(log s₀, σ_s²) (s₀ = ``ideal_scale``,
  σ_s = ``ideal_scale_sd``), log a_i ~ N(0, ``ideal_metric_sd``²). The user's
  noise is inferred with the taste: a consistent user's picks narrow the
  posterior fast and a noisy user's slowly.
* Posterior by adaptive, tempered importance sampling (population Monte
  Carlo): T = ``ideal_iterations`` rounds t = 0..T−1, each drawing
  ``ideal_particles`` particles p from q_t = N(μ_t, C_t) (q_0: the prior),
  weighting them w ∝ exp(β_t L(p) + log prior(p) − log q_t(p)) with
  β_t = min(1, 2^(t − T + IS_FULL_STEPS)) (the likelihood phased in, so
  that each round's target is near the last one's even when the posterior is
  sharp), and refitting μ_{t+1} = Σ w p,
  C_{t+1} = IS_INFLATE · Σ w (p − μ)(p − μ)ᵀ + IS_RIDGE · I. The last round's
  weighted particles (β = 1) are the posterior. (A Laplace approximation
  does not work here: a consistent user's picks are separable, so the
  likelihood has no curvature at its mode and the posterior would never
  narrow.)
* Estimate (``ideal_estimate``): "shown" (the default), the start or a
  shown point, whichever has the highest posterior expected utility
  E[u(y)] = −Σ_m w_m s_m Σ_i a_mi (y_i − θ_mi)² (always a style the user has
  seen, chosen by the model's judgement, not by the latest pick); "mean", the posterior mean of θ, Σ w θ (it minimises the expected
  squared distance to the ideal point if the model is right).
* Proposals (Thompson sampling): ``num`` distinct particles drawn by weight
  (without replacement: Gumbel top-k), their θ.
  As picks accumulate the posterior narrows and so do the proposals: the
  shrinking radius of a trust region, set by the evidence, not a schedule.

Pure JAX, jit-able with the config static; padding rounds (mask False) count
for nothing; every draw comes from the given key. Bad shapes raise
``ValueError``.
"""

from __future__ import annotations

from typing import NamedTuple

import jax
import jax.numpy as jnp

from jaxstyle.personalize import preference

Array = jax.Array

IS_INFLATE = 1.5  # the next proposal's covariance is this times the weighted particles' covariance
IS_RIDGE = 1e-4   # ... plus this times I
IS_FULL_STEPS = 2  # the last 2 rounds weigh by the whole likelihood; those before by 2^-1, 2^-2, …


class IdealPosterior(NamedTuple):
  """Weighted particles of the posterior over (θ, log s[, log a])."""
  particles: Array  # [M, d + 1] (iso) or [M, 2d + 1] (diag): θ, log s, then log a
  weights: Array    # [M], summing to 1


def _split(particles: Array, d: int):
  """θ ``[M, d]``, s ``[M]`` and the axis weights a ``[M, d]`` (ones for the iso metric)."""
  theta, scale = particles[:, :d], jnp.exp(particles[:, d])
  weights = jnp.exp(particles[:, d + 1:]) if particles.shape[1] > d + 1 else jnp.ones_like(theta)
  return theta, scale, weights


def log_likelihood(points: Array, chosen: Array, mask: Array, particles: Array) -> Array:
  """Σ_r mask_r log softmax_j(−s Σ_i a_i (x_{r,j,i} − θ_i)²)[c_r] for every particle ``[M]``.

  A particle is (θ, log s) (``[d + 1]``, a = 1) or (θ, log s, log a) (``[2d + 1]``).
  """
  theta, scale, weights = _split(particles, points.shape[-1])
  sq = jnp.einsum("mrkd,md->mrk", jnp.square(points[None] - theta[:, None, None, :]), weights)
  logp = jax.nn.log_softmax(-scale[:, None, None] * sq, axis=-1)
  picked = jnp.take_along_axis(logp, chosen[None, :, None], axis=-1)[..., 0]
  return jnp.sum(jnp.where(mask[None], picked, 0.0), axis=-1)


def _prior(config, d: int, dtype) -> tuple[Array, Array]:
  """Mean and standard deviations ``[p]`` of the independent Gaussian prior over a particle."""
  n_axes = d if config.ideal_metric == "diag" else 0
  mean = jnp.concatenate([jnp.zeros((d,), dtype), jnp.full((1,), jnp.log(config.ideal_scale), dtype),
                          jnp.zeros((n_axes,), dtype)])
  std = jnp.concatenate([jnp.ones((d,), dtype), jnp.full((1,), config.ideal_scale_sd, dtype),
                         jnp.full((n_axes,), config.ideal_metric_sd, dtype)])
  return mean, std


def fit(config, points: Array, chosen: Array, mask: Array, key: Array) -> IdealPosterior:
  """Adaptive importance sampling of the posterior (module docstring); layout as ``preference.py``."""
  points, chosen, mask = jnp.asarray(points), jnp.asarray(chosen, jnp.int32), jnp.asarray(mask, bool)
  preference.check_history_arrays(points, chosen, mask)
  points = preference.as_float(points)
  dtype, d = points.dtype, points.shape[-1]
  n = config.ideal_particles
  mean0, std0 = _prior(config, d, dtype)
  p = mean0.shape[0]

  def step(carry, xs):
    k, beta = xs
    mean, cov, _, _ = carry
    chol = jnp.linalg.cholesky(cov)
    z = jax.random.normal(k, (n, p), dtype)
    parts = mean + z @ chol.T
    log_q = -0.5 * jnp.sum(z * z, axis=-1) - jnp.sum(jnp.log(jnp.diag(chol)))
    log_prior = -0.5 * jnp.sum(jnp.square((parts - mean0) / std0), axis=-1)
    logw = beta * log_likelihood(points, chosen, mask, parts) + log_prior - log_q
    w = jax.nn.softmax(logw)
    new_mean = w @ parts
    centred = parts - new_mean
    new_cov = (centred * w[:, None]).T @ centred
    new_cov = IS_INFLATE * new_cov + IS_RIDGE * jnp.eye(p, dtype=dtype)
    return (new_mean, new_cov, parts, w), None

  init = (mean0, jnp.diag(std0**2), jnp.zeros((n, p), dtype), jnp.zeros((n,), dtype))
  steps = config.ideal_iterations
  betas = jnp.minimum(2.0 ** (jnp.arange(steps, dtype=dtype) - (steps - IS_FULL_STEPS)), 1.0)
  (_, _, parts, w), _ = jax.lax.scan(step, init, (jax.random.split(key, steps), betas))
  return IdealPosterior(particles=parts, weights=w)


def estimate(config, post: IdealPosterior) -> Array:
  """The posterior mean ideal point ``[d]`` (it minimises the expected squared distance to θ)."""
  return post.weights @ post.particles[:, :_dims(config, post)]


def expected_utility(config, post: IdealPosterior, y: Array) -> Array:
  """The posterior expected utility E[u(y)] = −Σ_m w_m s_m Σ_i a_mi (y_i − θ_mi)² at ``y``
  ``[n, d]``: ``[n]``."""
  theta, scale, weights = _split(post.particles, _dims(config, post))
  sq = jnp.einsum("mnd,md->mn", jnp.square(y[None] - theta[:, None, :]), weights)
  return -(post.weights @ (scale[:, None] * sq))


def estimate_shown(config, post: IdealPosterior, points: Array, mask: Array,
                   incumbent: Array) -> Array:
  """The point of highest posterior expected utility among ``incumbent`` ``[d]`` and the shown
  points of the rounds ``mask`` keeps (``points`` ``[R, K, d]``): always a style the user has
  seen; ties keep the incumbent."""
  d = incumbent.shape[-1]
  cands = jnp.concatenate([incumbent[None], points.reshape(-1, d).astype(incumbent.dtype)])
  keep = jnp.concatenate([jnp.ones((1,), bool), jnp.repeat(mask, points.shape[1])])
  score = jnp.where(keep, expected_utility(config, post, cands), -jnp.inf)
  return cands[jnp.argmax(score)]


def propose(config, post: IdealPosterior, key: Array, num: int) -> Array:
  """``num`` Thompson draws: distinct particles' θ drawn by weight, without replacement (Gumbel
  top-k) ``[num, d]``; ``num`` ≤ ``ideal_particles``."""
  gumbel = jax.random.gumbel(key, post.weights.shape, post.weights.dtype)
  _, idx = jax.lax.top_k(jnp.log(post.weights + 1e-30) + gumbel, num)  # without replacement
  return post.particles[idx, :_dims(config, post)]


def _dims(config, post: IdealPosterior) -> int:
  """d, from a particle's length (d + 1, or 2d + 1 for the diag metric)."""
  p = post.particles.shape[1]
  return (p - 1) // 2 if config.ideal_metric == "diag" else p - 1
