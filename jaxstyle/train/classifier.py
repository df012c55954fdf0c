"""Training the LeNet oracle (``jaxstyle.nets.classifier``): its step, its settings, a run.

``train_classifier(images, labels, config, seed)`` runs ``jaxstyle.train.fit``
on one device (``DataParallel("jit")``) over the batches of a
``jaxstyle.data.BatchIterator`` (drop-remainder epochs, each a fresh
permutation drawn from ``(seed, epoch)``), with AdamW and a cosine decay over
the whole run (``jaxstyle.train.optim.adamw_cosine``). It is deterministic
given ``seed``: the params are initialised from ``fold_in(key(seed), 0)``.

The step follows ``jaxstyle.train.state``'s conventions (one device's share of
the batch, named batch axis): ``batch["image"]`` float32 [b, 28, 28, 1] in
[0, 1], ``batch["label"]`` int32 [b]; metrics ``loss`` (mean softmax cross
entropy) and ``accuracy`` of the batch.
"""

from __future__ import annotations

import dataclasses
from typing import Any, Callable

import jax
import jax.numpy as jnp
import numpy as np
import optax

from jaxstyle import config as cfglib
from jaxstyle import data, parallel
from jaxstyle.nets.classifier import ClassifierConfig, LeNet
from jaxstyle.train.loop import fit
from jaxstyle.train.optim import adamw_cosine
from jaxstyle.train.state import AXIS, StepFn, TrainState, create_state, pmean, to_varying

NET = "classifier"  # the key of the params in TrainState.params


@dataclasses.dataclass(frozen=True)
class TrainConfig:
  """How the oracle is trained (its architecture is ``model``)."""
  epochs: int = cfglib.setting(5, "Passes over the training set.", gt=0)
  batch_size: int = cfglib.setting(128, "Training batch size (one device).", gt=0)
  learning_rate: float = cfglib.setting(1e-3, "Peak AdamW learning rate (cosine-decayed to 0).", gt=0)
  weight_decay: float = cfglib.setting(1e-4, "AdamW decoupled weight decay.", ge=0)
  model: ClassifierConfig = cfglib.setting(ClassifierConfig(), "The classifier's architecture.",
                                           flag=False)


def init_classifier_state(config: TrainConfig, seed: int, tx: optax.GradientTransformation,
                          image_shape: tuple[int, ...] = (28, 28, 1)) -> TrainState:
  """Initial state: ``LeNet`` variables from ``fold_in(key(seed), 0)`` under ``params[NET]``."""
  root = jax.random.key(seed)
  variables = LeNet(config.model).init(jax.random.fold_in(root, 0),
                                       jnp.zeros((1,) + tuple(image_shape), jnp.float32))
  return create_state({NET: variables}, {NET: tx}, jax.random.fold_in(root, 1))


def make_classifier_step(config: TrainConfig, tx: optax.GradientTransformation,
                         axis_name: str | None = AXIS) -> StepFn:
  """One softmax cross-entropy update of the classifier, per device; see the module docstring."""
  model = LeNet(config.model)

  def loss_fn(variables, images, labels):
    logits, _ = model.apply(variables, images)
    loss = optax.softmax_cross_entropy_with_integer_labels(logits, labels).mean()
    return loss, jnp.mean(jnp.argmax(logits, -1) == labels)

  def step(state: TrainState, batch):
    variables = state.params[NET]
    labels = batch["label"].astype(jnp.int32)
    (loss, acc), grads = jax.value_and_grad(loss_fn, has_aux=True)(
        to_varying(variables, axis_name), batch["image"], labels)
    grads = pmean(grads, axis_name)
    updates, opt_state = tx.update(grads, state.opt_state[NET], variables)
    new_state = state.replace(step=state.step + 1, params={NET: optax.apply_updates(variables, updates)},
                              opt_state={NET: opt_state})
    return new_state, pmean({"loss": loss, "accuracy": acc}, axis_name)

  return step


def train_classifier(images: np.ndarray, labels: np.ndarray, config: TrainConfig, seed: int, *,
                     hooks: tuple[tuple[int, Callable[[int, Any], dict | None]], ...] = (),
                     run_dir: Any | None = None, log_every: int = 20, progress: bool = False) -> Any:
  """Trains a ``LeNet`` from scratch; returns its variables (``{"params": ...}``, host NumPy).

  Args:
    images: float32 [N, 28, 28, 1] in [0, 1].
    labels: int32 [N].
    config: training settings (validated here).
    seed: seeds the initialisation and the batch order.
    hooks: ``(every, fn)`` pairs; ``fn(step, variables) -> dict | None`` runs
      after every ``every``-th step and the last one, with the current host
      variables; a dict is logged to ``run_dir``'s metrics.jsonl.
    run_dir: a ``jaxstyle.rundir.RunDir`` (its metrics.jsonl restarts) or None.
    log_every: log ``loss`` and ``accuracy`` of the batch every this many steps.
    progress: show a progress bar.

  Raises:
    ConfigError: an invalid setting. DataError: fewer images than a batch.
  """
  cfglib.validate(config)
  iterator = data.BatchIterator({"image": images, "label": labels}, config.batch_size, seed=seed)
  num_steps = config.epochs * iterator.steps_per_epoch
  tx = adamw_cosine(config.learning_rate, num_steps, config.weight_decay)
  runner = parallel.DataParallel("jit")

  def with_variables(fn):
    return lambda step, state: fn(step, runner.get_state(state.params[NET]))

  final, _ = fit(runner=runner, step_fn=runner.compile(make_classifier_step(config, tx)),
                 init_state=lambda: jax.tree.map(np.asarray, init_classifier_state(
                     config, seed, tx, images.shape[1:])),
                 batches=iterator.batch, num_steps=num_steps,
                 run_dir=run_dir, log_every=log_every,
                 hooks=tuple((every, with_variables(fn)) for every, fn in hooks),
                 progress=progress, desc="oracle")
  return final.params[NET]
