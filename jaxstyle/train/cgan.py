"""The cGAN's per-device train step, its initial state and its sampler.

The step follows the conventions of ``jaxstyle.train.state`` (one device's
share of the batch, named batch axis, ``pmean`` of local gradients); the
networks are ``jaxstyle.nets.cgan``.
"""

from __future__ import annotations

from typing import Any, Callable

import jax
import jax.numpy as jnp
import optax

from jaxstyle import losses
from jaxstyle.nets import cgan
from jaxstyle.train.state import (AXIS, Batch, StepFn, TrainState, axis_size, create_state, ema_update,
                                  local_slice, pmean, step_key, to_varying)


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
