"""Training: train states, the generic loop, optimizers, and one file per model's step.

* ``state``: ``TrainState``, the batch axis ``AXIS``, ``create_state``,
  ``ema_update``, ``step_key``, and the collectives of per-device steps.
* ``loop``: ``fit``, the resumable training loop (hooks, checkpoints, logs).
* ``optim``: the optimizers (``adam``, ``linear_decay``, ``adamw_cosine``).
* ``cgan``: the cGAN step (``make_cgan_step``, ``init_cgan_state``,
  ``make_cgan_sampler``).
* ``classifier``: the oracle classifier's step and run (``train_classifier``,
  ``TrainConfig``).
* ``stylizer``: the stylization network's step (``StylizerTrainConfig``,
  ``init_stylizer_state``, ``make_stylizer_step``, ``make_stylizer_eval``,
  ``make_scorer``, ``style_grams``).

The generic modules import no model: ``import jaxstyle.train.state`` (what
``jaxstyle.parallel`` does) does not load ``jaxstyle.nets``. The model steps'
names are re-exported here lazily, on first use.
"""

from __future__ import annotations

import importlib

from jaxstyle.train.loop import fit
from jaxstyle.train.nonfinite import guard_nonfinite
from jaxstyle.train.optim import adam, adamw_cosine, linear_decay
from jaxstyle.train.state import (AXIS, Batch, StepFn, TrainState, axis_size, create_state, ema_update,
                                  local_slice, pmean, step_key, to_varying)

# name -> submodule of the model-specific steps (imported on first use).
_LAZY = {
    "init_cgan_state": "cgan",
    "make_cgan_step": "cgan",
    "make_cgan_sampler": "cgan",
    "init_classifier_state": "classifier",
    "make_classifier_step": "classifier",
    "train_classifier": "classifier",
    "StylizerTrainConfig": "stylizer",
    "init_stylizer_state": "stylizer",
    "make_stylizer_step": "stylizer",
    "make_stylizer_eval": "stylizer",
    "make_scorer": "stylizer",
    "style_grams": "stylizer",
}

__all__ = sorted(["AXIS", "Batch", "StepFn", "TrainState", "adam", "adamw_cosine", "axis_size",
                  "create_state", "ema_update", "fit", "guard_nonfinite", "linear_decay", "local_slice", "pmean",
                  "step_key", "to_varying", *_LAZY])


def __getattr__(name: str):
  """Imports the model-step modules on first use of one of their names."""
  if name in _LAZY:
    value = getattr(importlib.import_module(f"jaxstyle.train.{_LAZY[name]}"), name)
    globals()[name] = value
    return value
  raise AttributeError(f"module 'jaxstyle.train' has no attribute {name!r}")
