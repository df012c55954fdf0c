"""NaN and Inf in training: an in-step guard and the host-side watch of the loop.

* ``guard_nonfinite(step)`` wraps a per-device step ``step(state, batch) ->
  (state, metrics)``: when any metric (the losses) or any leaf of the new
  ``state.params`` is not finite, the step returns the OLD state with only
  ``step`` advanced, and reports ``metrics["nonfinite"] = 1.0`` (else 0.0).
  Gradients are not visible to a wrapper, but a non-finite gradient makes the
  updated parameters non-finite under every optax optimiser jaxstyle uses, so
  checking the parameters covers it. The decision is the same on every device
  (metrics and parameters are replicated after ``pmean``), and for finite
  steps the result is bit-identical to the unwrapped step.
* ``NonFiniteWatch`` keeps the (still on-device) metrics of the steps since its
  last check and, at each ``check``, finds the first flagged step: it raises
  ``NonFiniteError`` naming that step and the loss terms that were not finite
  (or "the gradients" when every loss was finite), or with ``skip=True``
  counts the skipped updates.
"""

from __future__ import annotations

import math
from typing import Any, Callable

import jax
import jax.numpy as jnp

from jaxstyle.errors import NonFiniteError

FLAG = "nonfinite"


def _all_finite(tree: Any) -> jax.Array:
  leaves = [jnp.all(jnp.isfinite(x)) for x in jax.tree.leaves(tree)
            if jnp.issubdtype(jnp.asarray(x).dtype, jnp.inexact)]
  return jnp.all(jnp.stack(leaves)) if leaves else jnp.asarray(True)


def guard_nonfinite(step: Callable) -> Callable:
  """``step`` that keeps the previous state when a loss or the new parameters are not finite."""

  def guarded(state, batch):
    new, metrics = step(state, batch)
    ok = jnp.logical_and(_all_finite(metrics), _all_finite(new.params))
    kept = jax.tree.map(lambda n, o: jnp.where(ok, n, o), new, state.replace(step=new.step))
    return kept, {**metrics, FLAG: jnp.where(ok, 0.0, 1.0).astype(jnp.float32)}

  return guarded


class NonFiniteWatch:
  """The loop's record of non-finite steps (see the module docstring).

  Args:
    get_metrics: the runner's ``get_metrics`` (device metrics -> host floats).
    skip: count flagged steps instead of stopping.
  """

  def __init__(self, get_metrics: Callable[[Any], dict], skip: bool = False):
    self.get_metrics = get_metrics
    self.skip = skip
    self.pending: list[tuple[int, Any]] = []
    self.skipped_since_log = 0
    self.skipped_total = 0

  def add(self, step: int, metrics: Any) -> None:
    if FLAG in metrics:
      self.pending.append((step, metrics))

  def check(self, last_good: int | None = None) -> None:
    """Looks at every step since the last check; raises or counts (see the class)."""
    pending, self.pending = self.pending, []
    if not pending:
      return
    flags = jax.device_get([m[FLAG] for _, m in pending])
    for (step, metrics), flag in zip(pending, flags):
      if float(jnp.max(jnp.asarray(flag))) == 0.0:
        continue
      if self.skip:
        self.skipped_since_log += 1
        self.skipped_total += 1
        continue
      host = self.get_metrics(metrics)
      terms = [f"{k}={v}" for k, v in sorted(host.items())
               if k != FLAG and not math.isfinite(float(v))]
      what = ("loss " + ", ".join(terms)) if terms else "the gradients (every loss was finite)"
      kept = (f"the last good checkpoint is step {last_good}" if last_good is not None else
              "no checkpoint was saved yet")
      raise NonFiniteError(f"step {step}: non-finite {what}; training stopped and {kept}; lower the "
                           "learning rate, or rerun with --skip_nonfinite to skip such updates")

  def log_fields(self) -> dict:
    """``{"nonfinite_skipped": n}`` since the last call (only when skipping)."""
    if not self.skip:
      return {}
    out = {"nonfinite_skipped": self.skipped_since_log}
    self.skipped_since_log = 0
    return out
