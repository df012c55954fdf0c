"""Optimizers of the training runs (optax).

* ``adam(learning_rate, b1=0.5)``: Adam with the GAN-customary beta1.
* ``linear_decay(learning_rate, begin, end)``: a constant, or an optax
  schedule decaying linearly to 0 between steps ``begin`` and ``end``.
* ``adamw_cosine(learning_rate, total_steps, weight_decay)``: AdamW whose
  learning rate decays from ``learning_rate`` to 0 over ``total_steps``
  (cosine), the classifier's optimizer.
"""

from __future__ import annotations

import optax


def adam(learning_rate: float | optax.Schedule, b1: float = 0.5,
         b2: float = 0.999) -> optax.GradientTransformation:
  """Adam with the GAN-customary beta1 = 0.5 (``learning_rate``: a number or an optax schedule)."""
  return optax.adam(learning_rate, b1=b1, b2=b2)


def linear_decay(learning_rate: float, begin: int = 0, end: int = 0) -> float | optax.Schedule:
  """``learning_rate`` until step ``begin``, then linearly down to 0 at step ``end`` (and 0 after).

  ``end == 0`` means no decay: the constant ``learning_rate`` itself is returned.
  """
  if end == 0:
    return learning_rate
  if not 0 <= begin < end:
    raise ValueError(f"learning-rate decay needs 0 <= begin < end, got begin={begin}, end={end}")
  return optax.linear_schedule(learning_rate, 0.0, transition_steps=end - begin, transition_begin=begin)


def adamw_cosine(learning_rate: float, total_steps: int,
                 weight_decay: float = 1e-4) -> optax.GradientTransformation:
  """AdamW with a cosine learning-rate decay from ``learning_rate`` to 0 over ``total_steps``."""
  schedule = optax.cosine_decay_schedule(learning_rate, max(1, total_steps))
  return optax.adamw(schedule, weight_decay=weight_decay)
