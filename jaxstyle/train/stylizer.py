"""The stylization network's per-device train step, its settings, initial state and evaluation.

Contract (networks: ``jaxstyle.nets.stylizer``, ``style_encoder``, ``patchgan``):

* State: ``TrainState.params`` holds ``"g"`` (generator), ``"bank"`` (the
  ``StyleBank``, unless ``latent_source="encoder"``), ``"encoder"`` (the
  ``StyleEncoder``, unless ``latent_source="bank"``) and ``"d"`` (the PatchGAN,
  when ``d_steps > 0``). ``g_tx`` updates g, bank and encoder; ``d_tx`` the D.
* The step follows ``jaxstyle.train.state``'s conventions: ``batch["content"]``
  is this device's share, float32 ``[b, H, W, 3]`` in [0, 1]; params are cast
  to device-varying before differentiation and the local gradients are
  ``pmean``-ed; metrics are ``pmean``-ed batch means.
* Styles: ``style_images`` float32 ``[N, S_h, S_w, 3]`` (``S_h >= H``,
  ``S_w >= W``) and their target Grams (``style_grams``: position-averaged, of
  the whole style images unless given) are closed over, with the VGG weights.
* Randomness, all drawn for the global batch from ``step_key(state)`` (each
  device takes its rows, so the numbers do not depend on the device count):
  one style index per example, uniform over the N styles, and for each example
  an ``H x W`` crop of its style image at a uniform offset (the encoder's input
  and the D's real patch; each further D update draws fresh crops).
* Latents: ``"bank"``: the bank row of the example's style; ``"encoder"``: the
  encoder applied to the style crop; ``"both"``: bank for even, encoder for odd
  global example indices. The D sees the latent through ``stop_gradient``:
  latents learn only through the generator's output. Networks named in
  ``freeze`` are constants of the step (no gradient, no update; e.g. a trained
  generator while the encoder learns in a second phase).
* Encoder-only styles (e.g. hundreds of paintings, too many to close over):
  when the batch also carries ``batch["style"]`` (float32 ``[b, H, W, 3]``,
  crops of the crop size) and ``batch["style_grams"]`` (``{style layer:
  [b, C, C]}``, their styles' targets; ``jaxstyle.data.StyleCrops`` makes
  both), every encoder example takes its style crop (the encoder's input and
  the D's real patch) and its target Grams from the batch instead; bank
  examples are unchanged. Needs ``latent_source`` ``"encoder"`` or
  ``"both"``.
* Generator loss, batch mean of per-example terms (the units of
  ``jaxstyle.optimize.objective``, so the numbers compare with Gatys runs):
  ``content = Σ_l w_l · mean(½ (F_l(X) − F_l(C))²)``;
  ``style = Σ_l w_l · losses.style_layer_loss(Ĝ_l(X), Ĝ_l(S_style), normalization)``;
  ``tv = losses.total_variation_loss(X) / (H W)``;
  ``identity = mean((G(C, 0) − C)²)`` over pixels and channels (the zero
  latent must reproduce the content; computed when ``identity_weight > 0``,
  on the first ``identity_examples`` examples of each device's batch, or all
  of them when it is 0);
  ``adv = losses.gan_g_loss(D(X, w))`` against the D after this step's D
  updates. ``g_loss = α·content + β·style + γ·tv + identity_weight·identity +
  adv_weight·adv``.
* D: ``d_steps`` updates per step, before the G update, each
  ``losses.gan_d_loss(D(real, w), D(X, w))`` with the step's generated X (one
  generator forward per step; its VJP is reused for the G update).
  ``adv_weight = 0`` leaves the G update independent of D (D still trains and
  reports its accuracy unless ``d_steps = 0``).
* Metrics: ``g_loss``, ``content``, ``style``, ``tv``; ``identity`` when
  ``identity_weight > 0``; with ``d_steps > 0`` also ``adv`` (value only when
  ``adv_weight = 0``), ``d_loss``, ``d_real``/``d_fake`` (mean patch logits)
  and ``d_acc`` = ½(share of real patches with logit > 0 + share of fake
  patches with logit < 0); the ``d_*`` metrics are those of the last D
  update, before it is applied.
* Errors: invalid settings raise ``ConfigError``; layers the VGG weights do not
  reach ``WeightsError``; style images smaller than the crops ``DataError``.
"""

from __future__ import annotations

import dataclasses
import functools
from typing import Callable, Sequence

import jax
import jax.numpy as jnp
import optax
from jax import lax

from jaxstyle import config as cfglib
from jaxstyle import losses, vgg
from jaxstyle.errors import DataError
from jaxstyle.nets import patchgan
from jaxstyle.nets import style_encoder as se
from jaxstyle.nets import stylizer as st
from jaxstyle.optimize.config import (DEFAULT_CONTENT_LAYERS, DEFAULT_STYLE_LAYERS, Layers,
                                      StylizeConfig, check_style_layers, layers_setting)
from jaxstyle.train.state import (AXIS, StepFn, TrainState, axis_size, create_state, local_slice, pmean,
                                  step_key, to_varying)

LATENT_SOURCES = ("bank", "encoder", "both")
G_SIDE = ("g", "bank", "encoder")  # the params g_tx updates (those present)


def _known_networks(names: tuple[str, ...]) -> str | None:
  unknown = [n for n in names if n not in G_SIDE]
  return f"names unknown networks {unknown}; choose among {', '.join(G_SIDE)}" if unknown else None


@dataclasses.dataclass(frozen=True)
class StylizerLoss:
  """The latents, loss terms and loss network of the stylizer's training (flat: every field is a flag)."""
  latent_source: str = cfglib.setting(
      "both", "Latents that drive the generator in training: the style bank, the style encoder, or "
      "both (bank for even, encoder for odd examples).", choices=LATENT_SOURCES, resume=True)
  content_layers: Layers = layers_setting(
      DEFAULT_CONTENT_LAYERS, "Content layers 'tap:weight' (classic with full weights: relu4_2).")
  style_layers: Layers = layers_setting(
      DEFAULT_STYLE_LAYERS, "Style layers 'tap:weight' (classic with full weights: "
      "relu1_1,relu2_1,relu3_1,relu4_1,relu5_1).", check=check_style_layers)
  # α, β, γ as the optimisation stylizer declares them (same units and checks). β keeps the
  # 1e-3 the stylizer configs were tuned with; Gatys' default moved to 1e-2 on its own trade-off.
  content_weight: float = cfglib.like(StylizeConfig, "alpha")
  style_weight: float = cfglib.like(
      StylizeConfig, "beta", 1e-3, help="Style loss weight β (Gram loss; units as stylize.py's "
      "--beta). 1e-3: what the stylizer configs were tuned with. Tuned for the Keras/Caffe "
      "weights (0-255 inputs).")
  tv_weight: float = cfglib.like(StylizeConfig, "gamma")
  identity_weight: float = cfglib.setting(
      1e5, "Weight of the identity term: mean squared pixel error of G(content, zero latent) "
      "against the content (strength 0 must give the content back); 0 turns it off.", ge=0,
      check=cfglib.finite)
  identity_examples: int = cfglib.setting(
      0, "Examples of each device's batch (the first ones) that also run with the zero latent for "
      "the identity term; 0: all of them. Fewer make the step cheaper.", ge=0)
  adv_weight: float = cfglib.setting(0.0, "Adversarial weight λ_adv; 0 is the pure perceptual "
                                     "model.", ge=0, check=cfglib.finite)
  gan_loss: str = cfglib.setting("hinge", "GAN loss of the PatchGAN.", choices=losses.GAN_LOSSES)
  d_steps: int = cfglib.setting(1, "Discriminator updates per generator update (0: no "
                                "discriminator).", ge=0)
  normalization: str = cfglib.setting("gatys", "Gram normalisation of the style loss.",
                                      choices=tuple(losses.STYLE_NORMALIZATIONS))
  vgg_pooling: str = cfglib.setting("max", "VGG pooling of the loss network.",
                                    choices=tuple(vgg.POOLING))
  vgg_dtype: str = cfglib.setting("float32", "Compute dtype of the loss network.",
                                  choices=tuple(se.VGG_DTYPES))
  bank_stddev: float = cfglib.setting(1.0, "Std of the style bank's initial latents.", gt=0)
  freeze: tuple[str, ...] = cfglib.setting(
      (), "Networks of the generator side that are not updated (g, bank, encoder), e.g. g,bank to "
      "train the encoder in a second phase on a trained generator.", check=_known_networks)

  def check(self):
    if self.adv_weight > 0 and self.d_steps == 0:
      raise cfglib.invalid("d_steps", self.d_steps, "must be >= 1 when adv_weight > 0")
    if self.content_weight > 0 and not self.content_layers:
      raise cfglib.invalid("content_layers", self.content_layers, "is empty but content_weight > 0")
    if not set(self.generator_side) - set(self.freeze):
      raise cfglib.invalid("freeze", ",".join(self.freeze), "leaves nothing of the generator side "
                           "to train")

  @property
  def generator_side(self) -> tuple[str, ...]:
    """The networks ``g_tx`` trains for this latent source (in ``G_SIDE`` order)."""
    return tuple(k for k in G_SIDE if not (k == "bank" and self.latent_source == "encoder")
                 and not (k == "encoder" and self.latent_source == "bank"))

  @property
  def vgg_layers(self) -> tuple[str, ...]:
    """The loss network's taps: content layers, then style layers (no repeats)."""
    names = [t for t, _ in self.content_layers] + [t for t, _ in self.style_layers]
    return tuple(dict.fromkeys(names))


@dataclasses.dataclass(frozen=True)
class StylizerTrainConfig(StylizerLoss):
  """How the stylizer is trained (see the module docstring): the loss settings and the architectures."""
  generator: st.StylizerConfig = cfglib.setting(st.StylizerConfig(), "The generator's architecture.",
                                                flag=False, resume=True)
  discriminator: patchgan.PatchGANConfig = cfglib.setting(
      patchgan.PatchGANConfig(), "The PatchGAN's architecture.", flag=False, resume=True)
  encoder: se.StyleEncoderConfig = cfglib.setting(se.StyleEncoderConfig(), "The style encoder's "
                                                  "architecture.", flag=False, resume=True)

  def check(self):
    super().check()
    dims = {"generator": self.generator.latent_dim, "discriminator": self.discriminator.latent_dim,
            "encoder": self.encoder.latent_dim}
    if len(set(dims.values())) != 1:
      raise cfglib.invalid("latent_dim", dims, "the generator, discriminator and encoder must share "
                           "one latent_dim")

  @property
  def networks(self) -> tuple[str, ...]:
    """Keys of ``TrainState.params`` for this config."""
    keys = list(self.generator_side)
    if self.d_steps > 0:
      keys.append("d")
    return tuple(keys)


def _features(config: StylizerTrainConfig, weights: vgg.VGGWeights, images: jax.Array,
              layers: Sequence[str]) -> dict[str, jax.Array]:
  return vgg.extract(weights, images, layers, pooling=config.vgg_pooling,
                     dtype=se.VGG_DTYPES[config.vgg_dtype])


def style_grams(config: StylizerTrainConfig, weights: vgg.VGGWeights,
                style_images: jax.Array | Sequence[jax.Array]) -> dict[str, jax.Array]:
  """Target Grams ``{style layer: float32 [N, C, C]}`` of N style images (sizes may differ)."""
  layers = tuple(t for t, _ in config.style_layers)
  weights.check_layers(layers)
  fn = _gram_fn(config)
  grams = [fn(weights, jnp.asarray(im, jnp.float32)) for im in style_images]
  return {k: jnp.stack([g[k] for g in grams]) for k in layers}


@functools.lru_cache(maxsize=8)
def _gram_fn(config: StylizerTrainConfig) -> Callable:
  """Jitted ``(weights, image [H, W, 3]) -> {style layer: Gram [C, C]}`` (one compile per config and size)."""
  layers = tuple(t for t, _ in config.style_layers)
  return jax.jit(lambda w, x: {k: losses.gram_matrix(f)[0] for k, f in
                               _features(config, w, x[None], layers).items()})


def _perceptual(config: StylizerTrainConfig, weights: vgg.VGGWeights, out: jax.Array,
                content_feats: dict[str, jax.Array], grams: dict[str, jax.Array]) -> dict[str, jax.Array]:
  """Unweighted content, style and TV terms, each [B] (see the module docstring)."""
  feats = _features(config, weights, out, config.vgg_layers)
  b = out.shape[0]
  content = jnp.zeros((b,), jnp.float32)
  for tap, w in config.content_layers:
    f = feats[tap].astype(jnp.float32)
    content = content + w * losses.content_loss(f, content_feats[tap]) / (f.size // b)
  style = losses.style_loss(feats, grams, dict(config.style_layers), config.normalization)
  tv = losses.total_variation_loss(out) / (out.shape[1] * out.shape[2])
  return {"content": content, "style": style, "tv": tv}


def _weighted(config: StylizerTrainConfig, parts: dict[str, jax.Array]) -> jax.Array:
  c = config
  total = c.content_weight * parts["content"] + c.style_weight * parts["style"] + c.tv_weight * parts["tv"]
  if "identity" in parts:
    total = total + c.identity_weight * parts["identity"]
  if "adv" in parts and c.adv_weight > 0:
    total = total + c.adv_weight * parts["adv"]
  return total


def init_stylizer_state(config: StylizerTrainConfig, seed: int, g_tx: optax.GradientTransformation,
                        d_tx: optax.GradientTransformation, num_styles: int) -> TrainState:
  """Initial state for ``num_styles`` bank styles (params keyed as ``config.networks``).

  Params come from ``fold_in(key(seed), 0)`` (folded once more per network),
  step keys from ``fold_in(key(seed), 1)``; same seed → bit-identical state.
  """
  cfglib.validate(config)
  root = jax.random.key(seed)
  pkey = jax.random.fold_in(root, 0)
  nets = config.networks
  params = {"g": st.init_stylizer(config.generator, jax.random.fold_in(pkey, 0))}
  if "bank" in nets:
    params["bank"] = se.init_style_bank(num_styles, config.generator.latent_dim,
                                        jax.random.fold_in(pkey, 1), stddev=config.bank_stddev)
  if "encoder" in nets:
    params["encoder"] = se.init_style_encoder(config.encoder, jax.random.fold_in(pkey, 2))
  if "d" in nets:
    params["d"] = patchgan.init_patchgan(config.discriminator, jax.random.fold_in(pkey, 3))
  return create_state(params, {k: d_tx if k == "d" else g_tx for k in params},
                      jax.random.fold_in(root, 1))


def make_scorer(config: StylizerLoss, weights: vgg.VGGWeights) -> Callable[..., dict]:
  """Jitted ``score(images [B,H,W,3], content [B,H,W,3], grams {layer: [B,C,C]}) -> {name: [B]}``.

  The per-example ``content``, ``style`` and ``tv`` terms of the step's loss
  (unweighted), for any images: a stylizer's outputs or Gatys results alike,
  so both are measured in the same units against the same targets.
  """
  weights.check_layers(config.vgg_layers)
  taps = [t for t, _ in config.content_layers]

  def score(images, content, grams):
    cfeats = {k: v.astype(jnp.float32) for k, v in _features(config, weights, content, taps).items()}
    return _perceptual(config, weights, images, cfeats, grams)

  return jax.jit(score)


def make_stylizer_eval(config: StylizerTrainConfig, weights: vgg.VGGWeights) -> Callable[..., dict]:
  """Jitted ``evaluate(g_params, content [B,H,W,3], latents [B,D], grams {layer: [B,C,C]}) -> dict``.

  Batch means of ``content``, ``style``, ``tv``, ``identity`` (always) and
  ``loss`` (their weighted sum, without the adversarial term), as the step
  computes them.
  """
  cfglib.validate(config)
  weights.check_layers(config.vgg_layers)

  def evaluate(g_params, content, latents, grams):
    g = st.Stylizer(config.generator)
    b = content.shape[0]
    out = g.apply({"params": g_params}, jnp.concatenate([content, content]),
                  jnp.concatenate([latents, jnp.zeros_like(latents)]))
    cfeats = _features(config, weights, content, [t for t, _ in config.content_layers])
    parts = _perceptual(config, weights, out[:b], cfeats, grams)
    parts = {k: jnp.mean(v) for k, v in parts.items()}
    parts["identity"] = jnp.mean(jnp.square(out[b:] - content))
    parts["loss"] = _weighted(config, parts)
    return parts

  return jax.jit(evaluate)


def _batch_styles(config: StylizerTrainConfig, batch, content_shape, odd):
  """(encoder-example mask [b], style crops, Grams) from the batch, or None (see the docstring)."""
  if "style" not in batch:
    return None
  if config.latent_source == "bank":
    raise cfglib.invalid("latent_source", config.latent_source, "must be 'encoder' or 'both' when "
                         "the batch carries encoder-only styles (batch['style'])")
  crops = batch["style"].astype(jnp.float32)
  if crops.shape != content_shape:
    raise DataError(f"batch['style'] has shape {crops.shape}; it must match the content crops "
                    f"{content_shape}")
  wanted = {t for t, _ in config.style_layers}
  if set(batch.get("style_grams", {})) != wanted:
    raise DataError(f"batch['style_grams'] must hold the style layers {sorted(wanted)}, got "
                    f"{sorted(batch.get('style_grams', {}))}")
  enc = odd if config.latent_source == "both" else jnp.ones_like(odd)
  return enc, crops, {k: v.astype(jnp.float32) for k, v in batch["style_grams"].items()}


def make_stylizer_step(config: StylizerTrainConfig, weights: vgg.VGGWeights, style_images: jax.Array,
                       g_tx: optax.GradientTransformation, d_tx: optax.GradientTransformation, *,
                       grams: dict[str, jax.Array] | None = None,
                       axis_name: str | None = AXIS) -> StepFn:
  """``step(state, batch) -> (state, metrics)``, one device's update (see the module docstring).

  Args:
    config: the training settings (validated here).
    weights: the loss network's VGG weights (closed over).
    style_images: float32 [N, S_h, S_w, 3], the training styles in bank order.
    g_tx, d_tx: the optimizers of the generator side and of the D.
    grams: target Grams ``{style layer: [N, C, C]}``; default ``style_grams`` of ``style_images``.
    axis_name: the named batch axis (None under a plain ``jax.jit``).
  """
  cfglib.validate(config)
  taps = config.vgg_layers + (config.encoder.taps if config.latent_source != "bank" else ())
  weights.check_layers(taps)
  styles = jnp.asarray(style_images, jnp.float32)
  if styles.ndim != 4 or styles.shape[-1] != 3:
    raise DataError(f"style images must be one stacked float32 array [N, H, W, 3], got shape "
                    f"{styles.shape}; load them with jaxstyle.data.folders.load_styles(square=True)")
  grams = style_grams(config, weights, styles) if grams is None else grams
  num_styles, sh, sw = styles.shape[:3]
  gen = st.Stylizer(config.generator)
  disc = patchgan.PatchGAN(config.discriminator)
  identity = config.identity_weight > 0
  content_taps = [t for t, _ in config.content_layers]

  def step(state: TrainState, batch):
    content = batch["content"].astype(jnp.float32)
    b, h, w = content.shape[:3]
    if h > sh or w > sw:
      raise DataError(f"style images of {sh}x{sw} pixels are smaller than the {h}x{w} content crops; "
                      "load the styles at least at the crop size")
    gb = b * axis_size(axis_name)
    n_id = min(config.identity_examples or b, b)
    # Every draw of the step from one uniform [rows, global batch] (a single PRNG kernel): row 0
    # the style indices, rows 2j+1, 2j+2 the crop offsets of D update j (j = 0: also the encoder's).
    u = jax.random.uniform(step_key(state), (1 + 2 * max(config.d_steps, 1), gb))
    u = local_slice(u.T, b, axis_name).T

    def uniform_int(row, n):
      return jnp.minimum(jnp.floor(u[row] * n).astype(jnp.int32), n - 1)

    idx = uniform_int(0, num_styles)

    def style_crops(j):
      tops, lefts = uniform_int(2 * j + 1, sh - h + 1), uniform_int(2 * j + 2, sw - w + 1)
      return jax.vmap(lambda i, t, l: lax.dynamic_slice(styles, (i, t, l, 0), (1, h, w, 3))[0])(
          idx, tops, lefts)

    real = style_crops(0)
    odd = local_slice(jnp.arange(gb) % 2 == 1, b, axis_name)
    cfeats = {k: v.astype(jnp.float32) for k, v in _features(config, weights, content, content_taps).items()}
    targets = {k: v[idx] for k, v in grams.items()}
    from_batch = _batch_styles(config, batch, content.shape, odd)
    if from_batch is not None:
      enc, batch_real, batch_grams = from_batch
      real = jnp.where(enc[:, None, None, None], batch_real, real)
      targets = {k: jnp.where(enc[:, None, None], batch_grams[k], v) for k, v in targets.items()}
    g_side = {k: state.params[k] for k in G_SIDE if k in state.params and k not in config.freeze}
    frozen = {k: state.params[k] for k in config.freeze if k in state.params}

    def forward(p):
      p = {**frozen, **p}
      if config.latent_source == "encoder":
        lat = se.apply_style_encoder(config.encoder, p["encoder"], weights, real)
      else:
        lat = p["bank"]["latents"][idx]
        if config.latent_source == "both":
          lat = jnp.where(odd[:, None], se.apply_style_encoder(config.encoder, p["encoder"], weights,
                                                               real), lat)
      x, z = content, lat
      if identity:
        x = jnp.concatenate([content, content[:n_id]])
        z = jnp.concatenate([lat, jnp.zeros_like(lat[:n_id])])
      return gen.apply({"params": p["g"]}, x, z), lat

    out, g_vjp, lat = jax.vjp(forward, to_varying(g_side, axis_name), has_aux=True)
    lat = lax.stop_gradient(lat)
    fake = lax.stop_gradient(out[:b])
    params, opt_state, metrics = dict(state.params), dict(state.opt_state), {}

    for j in range(config.d_steps):
      real_j = real if j == 0 else style_crops(j)
      if j > 0 and from_batch is not None:
        real_j = jnp.where(enc[:, None, None, None], batch_real, real_j)

      def d_loss_fn(dp):
        logits = disc.apply({"params": dp}, jnp.concatenate([real_j, fake]),
                            jnp.concatenate([lat, lat]))
        return losses.gan_d_loss(logits[:b], logits[b:], config.gan_loss), (logits[:b], logits[b:])

      (d_loss, (r, f)), d_grads = jax.value_and_grad(d_loss_fn, has_aux=True)(
          to_varying(params["d"], axis_name))
      d_updates, opt_state["d"] = d_tx.update(pmean(d_grads, axis_name), opt_state["d"], params["d"])
      params["d"] = optax.apply_updates(params["d"], d_updates)
      metrics.update(d_loss=d_loss, d_real=jnp.mean(r), d_fake=jnp.mean(f),
                     d_acc=0.5 * (jnp.mean(r > 0) + jnp.mean(f < 0)))

    def g_loss_fn(out):
      x = out[:b]
      parts = {k: jnp.mean(v) for k, v in _perceptual(config, weights, x, cfeats, targets).items()}
      if identity:
        parts["identity"] = jnp.mean(jnp.square(out[b:] - content[:n_id]))
      if config.d_steps > 0:
        x_adv = x if config.adv_weight > 0 else lax.stop_gradient(x)
        parts["adv"] = losses.gan_g_loss(disc.apply({"params": params["d"]}, x_adv, lat),
                                         config.gan_loss)
      return _weighted(config, parts), parts

    (g_loss, parts), d_out = jax.value_and_grad(g_loss_fn, has_aux=True)(out)
    (g_grads,) = g_vjp(d_out)
    g_grads = pmean(g_grads, axis_name)
    for k, p in g_side.items():
      updates, opt_state[k] = g_tx.update(g_grads[k], opt_state[k], p)
      params[k] = optax.apply_updates(p, updates)
    metrics.update(parts, g_loss=g_loss)
    return state.replace(step=state.step + 1, params=params, opt_state=opt_state), pmean(metrics, axis_name)

  return step
