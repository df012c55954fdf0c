"""L-BFGS for image optimisation: pure jitted pieces, a backtracking line search on the host.

``make(loss_fn, project, first_step, memory_size)`` returns ``(init, step)``
with the same shape as Gatys' Adam step: ``init(p, *args) -> state`` and
``step(p, state, *args) -> (p, state, aux)``, where ``aux`` belongs to the
point *before* the update (the loss rule of ``gatys``). ``loss_fn(p, *args)``
returns ``(loss, aux)``; ``project`` maps a point back into the feasible set
(clipping to [0, 1] for pixels).

Why the line search runs in Python: XLA:CPU runs the VGG forward+backward
2.5x slower inside a nested computation (a ``lax.while_loop`` or ``lax.cond``
body) than at the top level of a program (256², this jaxlib: 834–838 ms
against 333 ms), and optax's zoom line search evaluates the loss inside a
``while_loop``. Here every evaluation is one top-level jitted call
(``trial``), and the host only compares two floats per trial. An accepted
trial's value, gradient and aux are carried to the next step, so a step
costs one loss-and-gradient evaluation when its first trial is accepted.

The maths (Nocedal & Wright, Numerical Optimization, Alg. 7.4), with
``s_i = x_{i+1} − x_i`` and ``y_i = g_{i+1} − g_i`` of the last ``m`` accepted
steps, ``ρ_i = 1 / (s_iᵀ y_i)``:

* direction ``d = H g`` by the two-loop recursion, ``H_0 = γ I`` with
  ``γ = s_kᵀ y_k / y_kᵀ y_k`` of the newest pair; with no pair yet,
  ``γ = first_step · sqrt(n) / ‖g‖``, so the first step moves the ``n``
  parameters by ``first_step`` root-mean-square (for pixels: Adam's learning
  rate, the size of Adam's first step);
* a pair is stored only when ``sᵀy > 1e-10 · yᵀy`` (positive curvature keeps
  ``H`` positive definite, so ``d`` is a descent direction);
* line search: ``q(t) = project(x − t d)`` for ``t = 1, ½, ¼, …`` (at most
  ``max_backtracks`` halvings), accepting the first with the Armijo
  condition on the projected step ``f(q) ≤ f(x) + c₁ gᵀ(q − x)``,
  ``c₁ = 1e-4``. When no trial is accepted the point stays, the memory is
  cleared and the next direction is the scaled gradient.

Memory is kept in order, newest last (a shift per stored pair): empty slots
have ``s = y = 0`` and ``ρ = 0`` and drop out of the recursion, so it needs
no mask. Float32 throughout; deterministic (no random numbers).
"""

from __future__ import annotations

from typing import Any, Callable, NamedTuple

import jax
import jax.numpy as jnp

Array = jax.Array
ARMIJO_C1 = 1e-4
CURVATURE_EPS = 1e-10
MAX_BACKTRACKS = 10


class Memory(NamedTuple):
  """The last ``m`` curvature pairs, oldest first.

  ``s``, ``y``: ``[m, *p.shape]``; ``rho``: ``[m]`` (0 for an empty slot).
  """
  s: Array
  y: Array
  rho: Array


class State(NamedTuple):
  """What a step needs of the current point: its memory, loss, gradient, aux and next direction."""
  memory: Memory
  value: Array
  grad: Array
  aux: Any
  direction: Array


def empty_memory(p: Array, size: int) -> Memory:
  z = jnp.zeros((size,) + p.shape, p.dtype)
  return Memory(z, z, jnp.zeros((size,), p.dtype))


def push(memory: Memory, s: Array, y: Array) -> Memory:
  """``memory`` with ``(s, y)`` appended, the oldest dropped; unchanged unless ``sᵀy > eps·yᵀy``."""
  sy, yy = jnp.vdot(s, y), jnp.vdot(y, y)
  ok = sy > CURVATURE_EPS * yy
  shifted = Memory(jnp.concatenate([memory.s[1:], s[None]]),
                   jnp.concatenate([memory.y[1:], y[None]]),
                   jnp.concatenate([memory.rho[1:], (1.0 / jnp.where(ok, sy, 1.0))[None]]))
  return jax.tree.map(lambda new, old: jnp.where(ok, new, old), shifted, memory)


def direction(memory: Memory, g: Array, first_step: float) -> Array:
  """``H g`` by the two-loop recursion (see the module docstring for ``H_0``)."""
  s, y, rho = memory
  m = rho.shape[0]
  alphas = [None] * m
  q = g
  for i in range(m - 1, -1, -1):
    alphas[i] = rho[i] * jnp.vdot(s[i], q)
    q = q - alphas[i] * y[i]
  # A stored pair has sᵀy > 0, hence yᵀy > 0; an empty newest slot selects the first-step scale.
  gamma = jnp.where(rho[-1] > 0, 1.0 / (rho[-1] * jnp.vdot(y[-1], y[-1])),
                    first_step * jnp.sqrt(jnp.asarray(g.size, g.dtype))
                    / jnp.maximum(jnp.linalg.norm(g), 1e-30))
  r = gamma * q
  for i in range(m):
    r = r + s[i] * (alphas[i] - rho[i] * jnp.vdot(y[i], r))
  return r


def make(loss_fn: Callable[..., tuple[Array, Any]], project: Callable[[Array], Array],
         first_step: float, memory_size: int, *,
         max_backtracks: int = MAX_BACKTRACKS) -> tuple[Callable, Callable]:
  """``(init, step)`` of L-BFGS on ``loss_fn``; see the module docstring.

  Args:
    loss_fn: ``(p, *args) -> (loss, aux)``, pure and differentiable in ``p``.
    project: ``p -> p`` onto the feasible set (identity when unconstrained).
    first_step: root-mean-square change of the first step.
    memory_size: curvature pairs kept (``m``).
    max_backtracks: halvings of the step before giving up on a direction.

  Returns:
    ``init(p, *args) -> State`` (one evaluation) and ``step(p, state, *args)
    -> (p, state, aux of the point before the step)``.
  """
  value_and_grad = jax.value_and_grad(loss_fn, has_aux=True)

  @jax.jit
  def evaluate(p, *args):
    (value, aux), g = value_and_grad(p, *args)
    return value, g, aux

  @jax.jit
  def trial(p, d, t, g, *args):
    q = project(p - t * d)
    (value, aux), gq = value_and_grad(q, *args)
    return q, value, gq, aux, jnp.vdot(g, q - p)

  @jax.jit
  def advance(memory, p, q, g, gq):
    memory = push(memory, q - p, gq - g)
    return memory, direction(memory, gq, first_step)

  @jax.jit
  def restart(p, g):
    memory = empty_memory(p, memory_size)
    return memory, direction(memory, g, first_step)

  def init(p, *args) -> State:
    value, g, aux = evaluate(p, *args)
    memory, d = restart(p, g)
    return State(memory, value, g, aux, d)

  def step(p, state: State, *args):
    t, value = 1.0, float(state.value)
    for _ in range(max_backtracks + 1):
      q, v, gq, aux, decrease = trial(p, state.direction, t, state.grad, *args)
      if float(v) <= value + ARMIJO_C1 * float(decrease):
        memory, d = advance(state.memory, p, q, state.grad, gq)
        return q, State(memory, v, gq, aux, d), state.aux
      t *= 0.5
    memory, d = restart(p, state.grad)
    return p, state._replace(memory=memory, direction=d), state.aux

  return init, step
