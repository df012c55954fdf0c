"""Train states, the named batch axis and the collectives of per-device steps.

A step is ``step(state, batch) -> (state, metrics)``, written for ONE device's
share of the global batch, with a named batch axis (``AXIS = "batch"``) for the
cross-device reductions. ``jaxstyle.parallel`` decides how it runs (jit on one
device, ``jax.shard_map`` on a mesh, or ``jax.pmap``); the numbers do not depend
on that choice nor on the number of devices, up to float reassociation.

Gradient convention (valid under shard_map with ``check_vma=True``, with
``check_vma=False`` and under pmap alike): parameters are explicitly cast to
device-varying before differentiation (``to_varying``, i.e.
``lax.pcast(..., to="varying")``), so ``jax.grad`` returns each device's
*local* gradient of its local mean loss, and the step then ``pmean``s the
gradients. (Differentiating an invariant parameter under check_vma instead
sums the gradients over devices implicitly, while pmap does not; casting first
makes both behave the same.) Every collective here is the identity when
``axis_name`` is None, so a step also runs under a plain ``jax.jit``.
"""

from __future__ import annotations

from typing import Any, Callable, Mapping

import flax
import jax
import jax.numpy as jnp
import optax
from jax import lax

AXIS = "batch"

Batch = Mapping[str, jax.Array]
StepFn = Callable[[Any, Batch], tuple[Any, dict[str, jax.Array]]]


@flax.struct.dataclass
class TrainState:
  """Everything a training run carries from step to step (a pytree).

  Attributes:
    step: int32 scalar, the number of steps taken.
    params: ``{network name: params}``, e.g. ``{"g": ..., "d": ...}``.
    opt_state: ``{network name: optax state}`` with the same keys as ``params``.
    key: uint32 [2] raw PRNG key data (``jax.random.key_data``); a step draws
      from ``fold_in(wrap_key_data(key), step)``, so the key itself never changes.
    ema: ``{network name: exponential moving average of its params}`` for the
      networks that keep one (e.g. ``{"g": ...}``), else empty.
  """
  step: jax.Array
  params: dict[str, Any]
  opt_state: dict[str, Any]
  key: jax.Array
  ema: dict[str, Any] = flax.struct.field(default_factory=dict)


def create_state(params: dict[str, Any], optimizers: Mapping[str, optax.GradientTransformation],
                 key: jax.Array, ema: tuple[str, ...] = ()) -> TrainState:
  """A fresh state at step 0 (``key``: a typed key from ``jax.random.key``).

  ``ema`` names the networks whose parameter average starts as a copy of their params.
  """
  return TrainState(step=jnp.zeros((), jnp.int32), params=dict(params),
                    opt_state={k: optimizers[k].init(v) for k, v in params.items()},
                    key=jax.random.key_data(key),
                    ema={k: jax.tree.map(jnp.array, params[k]) for k in ema})


def ema_update(ema: Any, params: Any, decay: float) -> Any:
  """``decay * ema + (1 - decay) * params``, leaf by leaf."""
  return jax.tree.map(lambda e, p: decay * e + (1.0 - decay) * p, ema, params)


def step_key(state: TrainState) -> jax.Array:
  """The typed key of the current step: ``fold_in(key, step)``."""
  return jax.random.fold_in(jax.random.wrap_key_data(state.key), state.step)


def to_varying(tree: Any, axis_name: str | None) -> Any:
  """Marks a replicated pytree as device-varying (identity when ``axis_name`` is None)."""
  if axis_name is None:
    return tree
  return jax.tree.map(lambda x: lax.pcast(x, axis_name, to="varying"), tree)


def pmean(tree: Any, axis_name: str | None) -> Any:
  """``lax.pmean`` over ``axis_name`` (identity when it is None)."""
  if axis_name is None:
    return tree
  return lax.pmean(tree, axis_name)


def local_slice(global_array: jax.Array, local_size: int, axis_name: str | None) -> jax.Array:
  """This device's rows ``[i * local_size, (i + 1) * local_size)`` of an array drawn for the global batch."""
  if axis_name is None:
    return global_array
  start = lax.axis_index(axis_name) * local_size
  return lax.dynamic_slice_in_dim(global_array, start, local_size, axis=0)


def axis_size(axis_name: str | None) -> int:
  """Number of devices along ``axis_name`` (1 when None)."""
  return 1 if axis_name is None else lax.psum(1, axis_name)
