"""Learning a user's style from images they like, with a trained stylizer frozen.

Contract:

* ``encoder_mean(model, liked)``: the mean of the style encoder's latents of
  the liked images (each at its own size: float32 RGB [0, 1] ``[H, W, 3]``,
  shorter side >= ``jaxstyle.inference.MIN_STYLE_SIDE``). Method (a).
* ``fit_latent(model, photos, target, start, steps, learning_rate)``: method
  (b). Adam on the latent ``z`` (the stylizer stays frozen) minimising the
  mean over ``photos`` of the run's style loss between the Grams of
  ``G(photo, z)`` and ``target`` (the collection's pooled Grams,
  ``gram_match.pooled_grams``), starting from ``start`` (method (a)'s latent).
  Returns the latent and the loss per step. Deterministic (no randomness).
* ``outlier_scores(config, grams)``: for each liked image ``i``, the style
  distance of its Grams to the pooled Grams of the others (leave-one-out),
  and its robust z-score ``(s_i − median(s)) / (1.4826 · MAD(s))``; images
  with ``z > outlier_z`` fit the profile poorly. Needs >= 3 images.
* ``learn_from_images(model, liked, photos, config)`` runs all three and
  returns a ``LikedResult`` whose ``latent`` is ``config.method``'s
  (``fit``: method (b), the default — it reached a lower style loss on
  held-out photos in every measured collection, see BUILD_NOTES.md; ``mean``:
  method (a)).
* ``evaluate_latents(model, photos, target, latents)``: the style loss of
  each latent's outputs on (held-out) ``photos`` against ``target``, mean over
  photos: how (a) and (b) are compared.
* Errors: fewer than ``MIN_LIKED`` images or more than ``MAX_LIKED``
  (``ConfigError``); a run without a style encoder (``CheckpointError``, from
  ``encode_style``).
"""

from __future__ import annotations

import dataclasses
from typing import Callable, Sequence

import jax
import jax.numpy as jnp
import numpy as np
import optax

from jaxstyle import config as cfglib
from jaxstyle.errors import ConfigError
from jaxstyle.personalize import gram_match
from jaxstyle.train.stylizer import style_grams

MIN_LIKED = 3
MAX_LIKED = 64
METHODS = ("fit", "mean")


@dataclasses.dataclass(frozen=True)
class FromImagesConfig:
  """Settings of learning a style from liked images."""
  style_size: int = cfglib.setting(256, "Shorter side (pixels) of each liked image before the "
                                   "style encoder and its Gram statistics (the stylizer's "
                                   "training style size is a good choice).", ge=32)
  photo_size: int = cfglib.setting(128, "Side of the square centre crops of the photos the Gram "
                                   "fit stylizes.", ge=32)
  steps: int = cfglib.setting(150, "Adam steps of the Gram fit (method fit).", ge=0)
  learning_rate: float = cfglib.setting(0.05, "Adam learning rate of the Gram fit, in latent "
                                        "units.", gt=0, check=cfglib.finite)
  method: str = cfglib.setting("fit", "The profile's latent: fit (the encoder mean refined so "
                               "stylized photos match the collection's pooled Grams) or mean "
                               "(the mean of the style encoder's latents).", choices=METHODS)
  outlier_z: float = cfglib.setting(3.0, "Robust z-score above which a liked image is reported "
                                    "as fitting the collection poorly.", gt=0,
                                    check=cfglib.finite)


@dataclasses.dataclass
class LikedResult:
  """What ``learn_from_images`` found (NumPy)."""
  latent: np.ndarray          # [D] the profile's latent (config.method's)
  latent_mean: np.ndarray     # [D] method (a)
  latent_fit: np.ndarray      # [D] method (b) (= latent_mean when steps == 0)
  fit_losses: np.ndarray      # [steps + 1] style loss before each step and after the last
  scores: np.ndarray          # [N] leave-one-out style distance per liked image
  robust_z: np.ndarray        # [N]
  outliers: list[int]         # indices with robust_z > outlier_z, worst first
  method: str


def check_count(n: int, what: str = "liked images") -> None:
  """Raises ``ConfigError`` unless ``MIN_LIKED <= n <= MAX_LIKED``."""
  if not MIN_LIKED <= n <= MAX_LIKED:
    raise ConfigError(f"{n} {what}: a collection needs {MIN_LIKED} to {MAX_LIKED} images (pass a "
                      "folder with that many)")


def encoder_mean(model, liked: Sequence[np.ndarray]) -> np.ndarray:
  """Mean style-encoder latent [D] of the liked images (method (a))."""
  z = [np.asarray(model.encode_style(model.params, jnp.asarray(im)[None]))[0] for im in liked]
  return np.mean(np.stack(z), axis=0).astype(np.float32)


def outlier_scores(config, grams: dict) -> tuple[np.ndarray, np.ndarray]:
  """(scores [N], robust z [N]): see the module contract."""
  n = next(iter(grams.values())).shape[0]
  if n < MIN_LIKED:
    raise ConfigError(f"outlier scores need at least {MIN_LIKED} images, got {n}")
  scores = np.array([float(gram_match.gram_distance(config, {k: v[i:i + 1] for k, v in grams.items()},
                                                     gram_match.leave_one_out(grams, i))[0])
                     for i in range(n)])
  med = np.median(scores)
  mad = 1.4826 * np.median(np.abs(scores - med))
  z = (scores - med) / max(mad, 1e-12 * max(abs(med), 1.0))
  return scores, z


def _loss_fn(model) -> Callable:
  grams_of = gram_match.OutputGrams(model)
  cfg = model.config

  def loss(z, photos, target):
    latents = jnp.broadcast_to(z, (photos.shape[0], z.shape[-1]))
    return jnp.mean(gram_match.gram_distance(cfg, grams_of.fn(grams_of.params, photos, latents),
                                             target))

  return loss


def evaluate_latents(model, photos: np.ndarray, target: dict, latents: np.ndarray) -> np.ndarray:
  """Mean style loss over ``photos`` of each latent's outputs against ``target``: [L]."""
  loss = jax.jit(_loss_fn(model))
  photos = jnp.asarray(photos, jnp.float32)
  return np.array([float(loss(jnp.asarray(z, jnp.float32), photos, target)) for z in latents])


def fit_latent(model, photos: np.ndarray, target: dict, start: np.ndarray, steps: int,
               learning_rate: float, progress: Callable[[int, float], None] | None = None
               ) -> tuple[np.ndarray, np.ndarray]:
  """Method (b): ``(latent [D], losses [steps + 1])`` (see the module contract)."""
  loss = _loss_fn(model)
  opt = optax.adam(learning_rate)
  photos = jnp.asarray(photos, jnp.float32)

  @jax.jit
  def step(z, opt_state, photos, target):  # photos and target are arguments, not folded constants
    value, grad = jax.value_and_grad(loss)(z, photos, target)
    updates, opt_state = opt.update(grad, opt_state, z)
    return optax.apply_updates(z, updates), opt_state, value

  z = jnp.asarray(start, jnp.float32)
  opt_state = opt.init(z)
  history = []
  best, best_loss = z, np.inf
  for i in range(steps):
    new_z, opt_state, value = step(z, opt_state, photos, target)
    value = float(value)
    history.append(value)
    if value < best_loss:  # the loss of z (before this step's update)
      best, best_loss = z, value
    if progress is not None:
      progress(i, value)
    z = new_z
  final = float(jax.jit(loss)(z, photos, target))
  history.append(final)
  if final < best_loss:
    best = z
  return np.asarray(best, np.float32), np.asarray(history, np.float64)


def learn_from_images(model, liked: Sequence[np.ndarray], photos: np.ndarray,
                      config: FromImagesConfig = FromImagesConfig(),
                      progress: Callable[[int, float], None] | None = None) -> LikedResult:
  """Methods (a) and (b) and the outlier report for one collection (see the module contract).

  Args:
    model: a ``LoadedStylizer`` with a style encoder.
    liked: the liked images, float32 RGB [0, 1] ``[H, W, 3]`` (any sizes).
    photos: ``[B, S, S, 3]`` photos the Gram fit stylizes.
    config: the settings.
    progress: called as ``progress(step, loss)`` during the fit.
  """
  cfglib.validate(config)
  check_count(len(liked))
  grams = style_grams(model.config, model.weights(), liked)
  target = gram_match.pooled_grams(grams)
  z_mean = encoder_mean(model, liked)
  if config.steps > 0:
    z_fit, losses = fit_latent(model, photos, target, z_mean, config.steps, config.learning_rate,
                               progress)
  else:
    z_fit, losses = z_mean, evaluate_latents(model, photos, target, z_mean[None])
  scores, z = outlier_scores(model.config, grams)
  outliers = [int(i) for i in np.argsort(-z) if z[i] > config.outlier_z]
  chosen = z_fit if config.method == "fit" else z_mean
  return LikedResult(latent=np.asarray(chosen, np.float32), latent_mean=z_mean, latent_fit=z_fit,
                     fit_losses=losses, scores=scores, robust_z=z, outliers=outliers,
                     method=config.method)
