"""Train states and pure per-device train steps.

A step is ``step(state, batch) -> (state, metrics)``, written for ONE device's
share of the global batch, with a named batch axis (``AXIS = "batch"``) for the
cross-device reductions. ``jaxstyle.parallel`` decides how it runs (jit on one
device, ``jax.shard_map`` on a mesh, or ``jax.pmap``); the numbers do not depend
on that choice nor on the number of devices, up to float reassociation.

Gradient convention (valid under shard_map with ``check_vma=True``, with
``check_vma=False`` and under pmap alike): parameters are explicitly cast to
device-varying before differentiation (``lax.pcast(..., to="varying")``), so
``jax.grad`` returns each device's *local* gradient of its local mean loss,
and the step then ``pmean``s the gradients. (Differentiating an invariant
parameter under check_vma instead sums the gradients over devices
implicitly, while pmap does not; casting first makes both behave the same.)
"""

from __future__ import annotations

from typing import Any, Callable, Mapping

import flax
import jax
import jax.numpy as jnp
import optax
from jax import lax

from jaxstyle import losses
from jaxstyle.nets import cgan

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


def init_cgan_state(config: cgan.CGANConfig, seed: int, g_tx: optax.GradientTransformation,
                    d_tx: optax.GradientTransformation, g_ema: bool = False) -> TrainState:
  """Initial cGAN state: params from ``fold_in(key(seed), 0)``, step keys from ``fold_in(key(seed), 1)``.

  With ``g_ema`` the state also carries an average of the generator's params (``state.ema["g"]``).
  """
  root = jax.random.key(seed)
  g_params, d_params = cgan.init_params(config, jax.random.fold_in(root, 0))
  return create_state({"g": g_params, "d": d_params}, {"g": g_tx, "d": d_tx},
                      jax.random.fold_in(root, 1), ema=("g",) if g_ema else ())


def make_cgan_step(config: cgan.CGANConfig, g_tx: optax.GradientTransformation,
                   d_tx: optax.GradientTransformation, loss: str = "nonsaturating",
                   axis_name: str | None = AXIS, ema_decay: float = 0.999) -> StepFn:
  """One alternating cGAN update (D, then G against the updated D), per device.

  The returned ``step(state, batch)`` takes this device's share of the global
  batch: ``batch["image"]`` float32 [b, 28, 28, 1] in [0, 1] and
  ``batch["label"]`` int32 [b]. The noise z [B, z_dim] is drawn for the whole
  global batch (B = b * devices) from the step key and each device takes its
  rows, so every device count sees the same z for the same example. The
  generator runs forward once: its VJP is kept from the D update and reused
  for the G update.

  If the state carries ``ema["g"]`` it is updated with ``ema_decay`` after the
  G update.

  Returns metrics (averaged over the global batch): ``d_loss``, ``g_loss``,
  ``d_real`` and ``d_fake`` (mean D logits on real / generated images).
  """
  if loss not in losses.GAN_LOSSES:
    raise ValueError(f"unknown GAN loss {loss!r}; choose one of {losses.GAN_LOSSES}")
  gen = cgan.Generator(config)
  disc = cgan.Discriminator(config)

  def step(state: TrainState, batch: Batch):
    images = batch["image"].astype(config.dtype)
    labels = batch["label"].astype(jnp.int32)
    b = labels.shape[0]
    global_b = b * axis_size(axis_name)
    z = jax.random.normal(step_key(state), (global_b, config.z_dim), config.dtype)
    z = local_slice(z, b, axis_name)

    g_params = state.params["g"]
    d_params = state.params["d"]

    # Generator forward once; keep its VJP for the G update.
    fake, g_vjp = jax.vjp(lambda p: gen.apply({"params": p}, z, labels),
                          to_varying(g_params, axis_name))

    # Discriminator update on real and (constant) generated images.
    def d_loss_fn(dp):
      logits = disc.apply({"params": dp}, jnp.concatenate([images, fake], 0),
                          jnp.concatenate([labels, labels], 0))
      real_logits, fake_logits = logits[:b], logits[b:]
      return losses.gan_d_loss(real_logits, fake_logits, loss), (real_logits, fake_logits)

    (d_loss, (real_logits, fake_logits)), d_grads = jax.value_and_grad(d_loss_fn, has_aux=True)(
        to_varying(d_params, axis_name))
    d_grads = pmean(d_grads, axis_name)
    d_updates, d_opt_state = d_tx.update(d_grads, state.opt_state["d"], d_params)
    d_params = optax.apply_updates(d_params, d_updates)

    # Generator update against the new discriminator, through the kept VJP.
    def g_loss_fn(images_fake):
      return losses.gan_g_loss(disc.apply({"params": d_params}, images_fake, labels), loss)

    g_loss, d_fake_images = jax.value_and_grad(g_loss_fn)(fake)
    (g_grads,) = g_vjp(d_fake_images)
    g_grads = pmean(g_grads, axis_name)
    g_updates, g_opt_state = g_tx.update(g_grads, state.opt_state["g"], g_params)
    g_params = optax.apply_updates(g_params, g_updates)

    ema = dict(state.ema)
    if "g" in ema:
      ema["g"] = ema_update(ema["g"], g_params, ema_decay)
    new_state = state.replace(step=state.step + 1, params={"g": g_params, "d": d_params},
                              opt_state={"g": g_opt_state, "d": d_opt_state}, ema=ema)
    metrics = pmean({"d_loss": d_loss, "g_loss": g_loss, "d_real": jnp.mean(real_logits),
                     "d_fake": jnp.mean(fake_logits)}, axis_name)
    return new_state, metrics

  return step


def make_cgan_sampler(config: cgan.CGANConfig) -> Callable[[Any, jax.Array, jax.Array], jax.Array]:
  """``sample(g_params, z [N, z_dim], labels int32 [N]) -> images float32 [N, 28, 28, 1]`` (jitted)."""
  gen = cgan.Generator(config)
  return jax.jit(lambda p, z, y: gen.apply({"params": p}, z, y))


def fit(*, runner: Any, step_fn: Callable, init_state: Callable[[], Any], batches: Callable[[int], Any],
        num_steps: int, checkpointer: Any | None = None, run_dir: Any | None = None,
        log_every: int = 50, hooks: tuple = (), on_step_end: Callable[[int], None] | None = None,
        progress: bool = True, desc: str = "train", is_main: bool = True) -> tuple[Any, int]:
  """The generic resumable training loop.

  Args:
    runner: a ``jaxstyle.parallel.DataParallel`` (``put_state``, ``get_state``,
      ``put_batch``, ``get_metrics``).
    step_fn: ``runner.compile(step)``.
    init_state: returns the host state at step 0 (called only when there is no
      checkpoint to resume from; it is also the template for restoring).
    batches: ``batches(step)`` -> this process's host batch of global step ``step``.
    num_steps: train until the state's step is ``num_steps``.
    checkpointer: a ``jaxstyle.checkpoint.Checkpointer`` or None. The loop
      resumes from its latest step, saves when due and at the end.
    run_dir: a ``jaxstyle.rundir.RunDir`` for metrics.jsonl (main process only).
    log_every: log the step metrics every this many steps (and at the end).
    hooks: ``(every, fn)`` pairs; ``fn(step, device_state) -> dict | None`` runs
      after steps that are multiples of ``every`` (and the last step); a dict
      is logged to metrics.jsonl.
    on_step_end: called with the step number after everything else of that step.
    progress: show a tqdm bar with the latest losses.
    is_main: this process writes metrics and shows progress.

  Returns:
    (final host state, the step training started from).
  """
  template = init_state()
  start = 0
  host_state = template
  if checkpointer is not None and checkpointer.latest_step() is not None:
    start = int(checkpointer.latest_step())
    host_state = checkpointer.restore(template, start)
  if run_dir is not None and is_main:
    run_dir.truncate_metrics(after_step=start)
  state = runner.put_state(host_state)
  bar = None
  if progress and is_main and start < num_steps:
    from tqdm.auto import tqdm  # pylint: disable=g-import-not-at-top
    bar = tqdm(total=num_steps, initial=start, desc=desc, dynamic_ncols=True)
  try:
    for step in range(start, num_steps):
      state, metrics = step_fn(state, runner.put_batch(batches(step)))
      done = step + 1
      last = done == num_steps
      if (log_every and done % log_every == 0) or last:
        host_metrics = runner.get_metrics(metrics)
        if run_dir is not None and is_main:
          run_dir.log_metrics(done, host_metrics)
        if bar is not None:
          bar.set_postfix({k: f"{v:.3f}" for k, v in host_metrics.items()}, refresh=False)
      for every, fn in hooks:
        if (every and done % every == 0) or (every and last):
          out = fn(done, state)
          if out and run_dir is not None and is_main:
            run_dir.log_metrics(done, out)
      if checkpointer is not None and (checkpointer.should_save(done) or last):
        checkpointer.save(done, lambda: runner.get_state(state), force=last)
      if bar is not None:
        bar.update(1)
      if on_step_end is not None:
        on_step_end(done)
  finally:
    if bar is not None:
      bar.close()
    if checkpointer is not None:
      checkpointer.wait()
  return runner.get_state(state), start
