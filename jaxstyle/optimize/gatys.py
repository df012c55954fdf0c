"""Style transfer and texture synthesis by image optimisation (Gatys et al.).

``stylize`` optimises the pixels of an image so that its VGG-19 features match
a content image at the content layers and the (blended) Gram matrices of one or
more style images at the style layers; ``synthesize`` does the same with Gram
matching only, from noise (texture synthesis / style generation); ``evaluate``
reports the same loss parts for a given image. The loss is
``objective.Objective``; the settings are ``config.StylizeConfig``.

An optimiser is a ``Stepper`` (``make_stepper``): ``init`` and ``step(p,
opt_state, variables, targets) -> (p, opt_state, metrics)``, a jitted pure
function for Adam, a Python line search over jitted evaluations for L-BFGS
(``lbfgs``); a Python loop runs the steps and a callback sees every step's
losses.

Conventions:

* Images: float32 RGB in [0, 1]; ``[H, W, 3]`` (or ``[1, H, W, 3]``) in,
  ``[H, W, 3]`` NumPy out. Output size = content size (``stylize``) or ``size``
  (``synthesize``).
* Pixels are kept in [0, 1] by projection (clip after every update,
  ``parametrization="clip"``, the default) or by optimising logits
  (``"sigmoid"``).
* Resizing (content and style images at every scale, the image between
  scales) is ``jaxstyle.images.resize(..., method="bilinear")``.
* Multi-scale: ``num_scales`` sizes, each ``scale_factor`` × the previous,
  ending at the output size (no side below ``MIN_SIDE``). The image is
  optimised at the coarsest size, upsampled and optimised further;
  the optimiser state restarts at every scale. By default
  (``upsample="residual"``) only the change made so far (image − content) is
  upsampled and added to the content at the finer size, so the photo's fine
  detail is not blurred. Peak memory is that of the finest scale
  (``memory_estimate``: a conservative bound, see there). Style images
  are resized at every scale to ``style_scale`` × the current longer side, so
  a texture keeps its size relative to the image.
* Colour preservation (Gatys et al. 2016, "Preserving colour in neural
  artistic style transfer"): ``"luminance"`` transfers on the YIQ luminance
  only (style luminance matched to the content's mean/std) and recombines
  the result's Y with the content's I, Q; ``"histogram"`` first maps the
  style colours to the content's colour mean/covariance and transfers in RGB
  (``jaxstyle.images.color``).
* Style blend weights (``style_weights``): one per style image, finite,
  >= 0, not all 0, normalised to sum 1; None = equal weights.
* Errors: ``OptimizationError`` for bad inputs (no styles, mismatched style
  weights, non-image arrays, NaN pixels) and a non-finite loss (naming the
  step and the settings to lower); ``ConfigError`` (from
  ``jaxstyle.config.validate``) for a bad config and ``WeightsError`` for
  layers beyond the weights.
"""

from __future__ import annotations

import dataclasses
import functools
import math
from typing import Any, Callable, Sequence

import jax
import jax.numpy as jnp
import numpy as np
import optax

from jaxstyle import config as cfglib
from jaxstyle import vgg
from jaxstyle.errors import OptimizationError
from jaxstyle.images.color import luminance, match_color, match_luminance, rgb_to_yiq, yiq_to_rgb
from jaxstyle.images.ops import resize
from jaxstyle.optimize import lbfgs
from jaxstyle.optimize.config import MIN_SIDE, SYNTHESIS, StylizeConfig, synthesis_config
from jaxstyle.optimize.objective import Objective

Array = jax.Array
RESIZE = "bilinear"  # the ``jaxstyle.images.resize`` method used at every scale


@dataclasses.dataclass
class Result:
  """Output of ``stylize``/``synthesize``.

  Attributes:
    image: float32 ``[H, W, 3]`` in [0, 1].
    history: one dict per step: ``step`` (1-based, global), ``scale``,
      ``height``, ``width``, ``loss``, ``content``, ``style``, ``tv``
      (unweighted parts, floats).
  """

  image: np.ndarray
  history: list[dict]


# ----------------------------------------------------------------------------
# The step.


def _to_param(x: Array, parametrization: str) -> Array:
  if parametrization == "sigmoid":
    x = jnp.clip(x, 1e-3, 1 - 1e-3)
    return jnp.log(x) - jnp.log1p(-x)
  return x


def _to_image(p: Array, parametrization: str) -> Array:
  return jax.nn.sigmoid(p) if parametrization == "sigmoid" else p


@dataclasses.dataclass(frozen=True)
class Stepper:
  """An optimiser as two functions over the ``[1, H, W, 3]`` parameter ``p``.

  ``init(p, variables, targets) -> state``; ``step(p, state, variables,
  targets) -> (p, state, parts)``, with ``parts`` the losses of ``p``
  *before* the update (float32 scalars: ``loss``, ``content``, ``style``,
  ``tv``).
  """

  init: Callable
  step: Callable


def make_stepper(objective: Objective, config: StylizeConfig) -> Stepper:
  """The optimiser of ``config.optimizer`` on ``objective``.

  ``adam``: ``step`` is one jitted pure function (``optax.adam`` with
  ``config.learning_rate``, then the projection). ``lbfgs``:
  ``jaxstyle.optimize.lbfgs`` (``config.lbfgs_memory`` pairs, first step of
  ``config.learning_rate`` RMS pixels), whose ``step`` runs its line search in
  Python over jitted evaluations; it usually costs one evaluation per step,
  like Adam.
  """
  param = config.parametrization

  def loss_fn(p, variables, targets):
    parts = objective.parts(variables, _to_image(p, param), targets)
    return parts["loss"], parts

  def project(p):
    return jnp.clip(p, 0.0, 1.0) if param == "clip" else p

  if config.optimizer == "lbfgs":
    return Stepper(*lbfgs.make(loss_fn, project, config.learning_rate, config.lbfgs_memory))
  optimizer = optax.adam(config.learning_rate)

  def step(p, opt_state, variables, targets):
    (_, parts), g = jax.value_and_grad(loss_fn, has_aux=True)(p, variables, targets)
    updates, opt_state = optimizer.update(g, opt_state, p)
    return project(optax.apply_updates(p, updates)), opt_state, parts

  return Stepper(lambda p, variables, targets: optimizer.init(p), jax.jit(step))


@dataclasses.dataclass(frozen=True)
class _Fns:
  stepper: Stepper
  targets: Callable
  parts: Callable


def _step_key(config: StylizeConfig) -> StylizeConfig:
  """``config`` with the fields that do not change the step set to defaults."""
  d = StylizeConfig()
  return config.replace(steps=1, init=d.init, noise_std=d.noise_std, num_scales=1,
                        scale_factor=d.scale_factor, scale_steps=(), upsample=d.upsample,
                        preserve_color=d.preserve_color, style_scale=d.style_scale)


@functools.lru_cache(maxsize=16)
def _compiled(preprocessing: str, config: StylizeConfig) -> _Fns:
  """Jitted step/targets/loss functions, shared by calls with the same settings.

  Nothing is closed over but hashable settings (VGG variables, targets and
  images are arguments), so the cache never holds arrays and XLA's own cache
  reuses compilations across ``stylize``/``synthesize``/``evaluate`` calls.
  """
  objective = Objective(preprocessing, config)
  return _Fns(make_stepper(objective, config), jax.jit(objective.targets),
              jax.jit(objective.parts))


# ----------------------------------------------------------------------------
# Inputs and scales.


def _as_image(x: Any, name: str) -> np.ndarray:
  arr = np.asarray(x, np.float32)
  if arr.ndim == 4 and arr.shape[0] == 1:
    arr = arr[0]
  if arr.ndim != 3 or arr.shape[-1] != 3 or min(arr.shape[:2]) < 1:
    raise OptimizationError(f"{name} must be an RGB image [H, W, 3] (or [1, H, W, 3]), "
                            f"got shape {arr.shape}")
  if not np.all(np.isfinite(arr)):
    raise OptimizationError(f"{name} has NaN or infinite pixels")
  return arr


def _check_config(config: StylizeConfig, weights: vgg.VGGWeights) -> None:
  """``ConfigError`` for a bad setting, ``WeightsError`` for layers ``vgg`` lacks."""
  cfglib.validate(config)
  weights.check_layers(config.layers())


def _check_styles(styles: Sequence[Any],
                  style_weights: Sequence[float] | None) -> tuple[list, list]:
  if styles is None or len(styles) == 0:
    raise OptimizationError("no style images given; pass at least one style image")
  styles = [_as_image(s, f"style image {i}") for i, s in enumerate(styles)]
  if style_weights is None:
    blend = [1.0] * len(styles)
  else:
    blend = [float(w) for w in style_weights]
    if len(blend) != len(styles):
      raise OptimizationError(f"{len(styles)} style image(s) but {len(blend)} style weight(s); "
                              "give one weight per style")
    if any(not math.isfinite(w) or w < 0 for w in blend) or sum(blend) <= 0:
      raise OptimizationError(f"style weights {blend} must be finite, >= 0 and not all 0")
  return styles, blend


def scale_sizes(height: int, width: int, num_scales: int,
                factor: float) -> list[tuple[int, int]]:
  """Sizes coarse → fine ending at ``(height, width)``; each ≥ ``MIN_SIDE``."""
  out = []
  for k in range(num_scales - 1, -1, -1):
    f = factor ** k
    out.append((max(MIN_SIDE, round(height / f)), max(MIN_SIDE, round(width / f))))
  return out


def _scale_styles(styles: list[np.ndarray], hw: tuple[int, int], style_scale: float) -> list:
  longer = max(1, round(style_scale * max(hw)))
  return [resize(s, longer, method=RESIZE) for s in styles]


def _next_image(x: Array, prev_content: np.ndarray | None, content: np.ndarray | None,
                hw: tuple[int, int], upsample: str) -> np.ndarray:
  """The image of the previous scale carried to size ``hw``."""
  x = np.asarray(x)
  if upsample == "residual" and content is not None:
    # Upsample only what the optimisation changed (bilinear is linear and stays in
    # [0, 1], so this is resize(x - prev_content)); the content's own detail comes
    # from the content image at the new size.
    delta = resize(x, hw, method=RESIZE) - resize(prev_content, hw, method=RESIZE)
    return np.clip(content + delta, 0.0, 1.0)
  return resize(x, hw, method=RESIZE)


# ----------------------------------------------------------------------------
# Memory.

RUNTIME_BYTES = 512 * 2 ** 20  # XLA runtime and compiled code, measured about 0.35-0.5 GB on CPU


def _activations_per_pixel(layers: Sequence[str]) -> float:
  """Floats of VGG conv outputs per input pixel, up to the deepest conv ``layers`` need."""
  deepest = vgg.CONV_LAYERS.index(vgg.deepest_conv(layers))
  return sum(vgg.CHANNELS[name] / 4 ** (int(name[4]) - 1) for name in vgg.CONV_LAYERS[:deepest + 1])


def memory_estimate(config: StylizeConfig, hw: tuple[int, int], style_hws: Sequence[tuple[int, int]],
                    weights: vgg.VGGWeights | None = None) -> int:
  """A conservative estimate of the peak bytes of ``stylize``/``synthesize`` at output size ``hw``.

  With ``F`` the floats of VGG conv outputs per input pixel up to the deepest
  layer used (sum of channels / 4^(block-1); 224 for the default layers, 290
  for relu5_1), ``P`` the output pixels and ``S`` the style pixels at the
  finest scale (each style's longer side = ``style_scale`` x the output's)::

    bytes = 4 * (P * (3F + 24 [+ F + 6 m + 6 for L-BFGS]) + S * F) + weights + RUNTIME_BYTES

  3F: the step's activations kept for the gradient and its gradient buffers;
  24: the image-sized arrays (content, pixels, gradient, Adam moments, ...);
  L-BFGS adds 2 ``lbfgs_memory`` (``m``) image-sized history vectors (and
  their shifted copies) and, as slack, a forward's activations for the line
  search's trial point; ``S * F``: the style targets' forward pass.
  float32 throughout (bfloat16 needs less). Measured on CPU (512 x 512 and
  1024 x 1024, default layers) it is 1.2-1.45 x the growth of the peak RSS
  (tests/test_bad_input.py checks it).

  Args:
    config: the settings (layers, optimizer, ``style_scale``).
    hw: output (height, width).
    style_hws: (height, width) of each style image as given (any size).
    weights: the VGG weights (their bytes count twice: host and device);
      None counts the convs the layers need.
  """
  layers = config.layers()
  f = _activations_per_pixel(layers)
  pixels = hw[0] * hw[1]
  per_pixel = 3 * f + 24
  if config.optimizer == "lbfgs":
    per_pixel += f + 6 * config.lbfgs_memory + 6
  longer = config.style_scale * max(hw) if pixels else 0
  style_pixels = sum(longer * longer * min(h, w) / max(h, w, 1) for h, w in style_hws)
  if weights is not None:
    weight_bytes = sum(np.size(a) * 4 for layer in weights.params.values() for a in layer.values())
  else:
    deepest = vgg.CONV_LAYERS.index(vgg.deepest_conv(layers))
    cins = (3,) + tuple(vgg.CHANNELS[n] for n in vgg.CONV_LAYERS)
    weight_bytes = sum(4 * (9 * cins[i] + 1) * vgg.CHANNELS[n]
                       for i, n in enumerate(vgg.CONV_LAYERS[:deepest + 1]))
  return int(4 * (pixels * per_pixel + style_pixels * f) + 2 * weight_bytes + RUNTIME_BYTES)


# ----------------------------------------------------------------------------
# Public entry points.


def _optimize(weights: vgg.VGGWeights, content: np.ndarray | None, styles: list,
              blend: list, out_hw: tuple[int, int], config: StylizeConfig, key: Array,
              init_image: np.ndarray | None,
              callback: Callable[[dict], None] | None) -> Result:
  fns = _compiled(weights.preprocessing, _step_key(config))
  stepper, targets_fn = fns.stepper, fns.targets
  variables = weights.variables()
  history: list[dict] = []
  sizes = scale_sizes(*out_hw, config.num_scales, config.scale_factor)
  x = prev_c = None
  global_step = 0
  for scale, (hw, n_steps) in enumerate(zip(sizes, config.steps_per_scale())):
    c = resize(content, hw, method=RESIZE) if content is not None else None
    s = _scale_styles(styles, hw, config.style_scale)
    targets = targets_fn(variables, c, s, blend)
    if x is not None:
      x = _next_image(x, prev_c, c, hw, config.upsample)
    elif config.init == "content":
      x = c
    elif config.init == "image":
      x = resize(init_image, hw, method=RESIZE)
    else:
      noise = jax.random.normal(jax.random.fold_in(key, scale), (*hw, 3), jnp.float32)
      x = jnp.clip(0.5 + config.noise_std * noise, 0.0, 1.0)
    prev_c = c
    p = _to_param(x[None], config.parametrization)
    opt_state = stepper.init(p, variables, targets)
    for _ in range(n_steps):
      p, opt_state, parts = stepper.step(p, opt_state, variables, targets)
      global_step += 1
      row = {k: float(v) for k, v in parts.items()}
      if not all(math.isfinite(v) for v in row.values()):
        bad = ", ".join(f"{k}={v}" for k, v in row.items())
        raise OptimizationError(
            f"loss is not finite at step {global_step} (scale {scale + 1}/{len(sizes)}, "
            f"{hw[0]}x{hw[1]}: {bad}); lower the learning rate (now {config.learning_rate}) "
            f"or the loss weights (alpha={config.alpha}, beta={config.beta}, gamma={config.gamma})")
      row.update(step=global_step, scale=scale, height=hw[0], width=hw[1])
      history.append(row)
      if callback is not None:
        callback(row)
    x = _to_image(p, config.parametrization)[0]
  image = np.asarray(jnp.clip(x, 0.0, 1.0), np.float32)
  return Result(image=image, history=history)


def stylize(weights: vgg.VGGWeights, content: Any, styles: Sequence[Any],
            style_weights: Sequence[float] | None = None,
            config: StylizeConfig = StylizeConfig(), key: Array | None = None, *,
            init_image: Any = None, callback: Callable[[dict], None] | None = None) -> Result:
  """Gatys style transfer of ``styles`` onto ``content``.

  Args:
    weights: VGG-19 weights (their preprocessing convention is used).
    content: ``[H, W, 3]`` float32 RGB in [0, 1]; the output has its size.
    styles: one or more ``[h_i, w_i, 3]`` style images (any sizes; resized to
      ``config.style_scale`` × the output's longer side).
    style_weights: blend weights, one per style (normalised to sum 1);
      None = equal.
    config: ``StylizeConfig``.
    key: PRNG key (used by ``init="noise"``); None = ``PRNGKey(0)``.
    init_image: ``[h, w, 3]`` start image for ``init="image"`` (resized).
    callback: called after every step with the history row (see ``Result``).

  Returns:
    ``Result`` with the ``[H, W, 3]`` image and per-step losses.

  Raises:
    OptimizationError: empty styles, mismatched style weights, bad images,
      non-finite loss. ConfigError / WeightsError: bad config or layers
      beyond the weights.
  """
  _check_config(config, weights)
  content = _as_image(content, "content image")
  styles, blend = _check_styles(styles, style_weights)
  if config.init == "image":
    if init_image is None:
      raise OptimizationError("init='image' needs init_image")
    init_image = _as_image(init_image, "init image")
  if key is None:
    key = jax.random.PRNGKey(0)
  if config.preserve_color == "luminance":
    styles = [match_luminance(s, content) for s in styles]
    if init_image is not None:
      init_image = luminance(init_image).repeat(3, axis=-1)
    res = _optimize(weights, luminance(content).repeat(3, axis=-1), styles, blend,
                    content.shape[:2], config, key, init_image, callback)
    yiq = np.concatenate([luminance(res.image), rgb_to_yiq(content)[..., 1:]], axis=-1)
    res.image = np.clip(yiq_to_rgb(yiq), 0.0, 1.0).astype(np.float32)
    return res
  if config.preserve_color == "histogram":
    styles = [match_color(s, content) for s in styles]
  return _optimize(weights, content, styles, blend, content.shape[:2], config, key, init_image,
                   callback)


def synthesize(weights: vgg.VGGWeights, styles: Sequence[Any], size: int | tuple[int, int],
               key: Array, style_weights: Sequence[float] | None = None,
               config: StylizeConfig | None = None, *,
               callback: Callable[[dict], None] | None = None) -> Result:
  """A new image in the style of ``styles`` by Gram matching from noise.

  Args:
    weights: VGG-19 weights.
    styles: one or more ``[h, w, 3]`` style images.
    size: output ``(height, width)``, or an int for a square image.
    key: PRNG key for the init noise; different keys give different images.
    style_weights: blend weights (one per style).
    config: defaults to ``synthesis_config()``; the content settings of
      ``SYNTHESIS`` (no content loss, noise init, no colour preservation)
      replace the config's own.
    callback: per-step callback (see ``stylize``).

  Returns:
    ``Result`` with a ``[height, width, 3]`` image.
  """
  config = (config or synthesis_config()).replace(**SYNTHESIS)
  _check_config(config, weights)
  hw = (size, size) if isinstance(size, (int, np.integer)) else tuple(size)
  if len(hw) != 2 or any(int(v) != v or v < 1 for v in hw):
    raise OptimizationError(f"size must be a positive int or (height, width), got {size!r}")
  hw = (int(hw[0]), int(hw[1]))
  if min(hw) < MIN_SIDE:
    raise OptimizationError(f"size {hw} too small: each side must be >= {MIN_SIDE} px")
  styles, blend = _check_styles(styles, style_weights)
  return _optimize(weights, None, styles, blend, hw, config, key, None, callback)


def evaluate(weights: vgg.VGGWeights, image: Any, content: Any | None, styles: Sequence[Any],
             style_weights: Sequence[float] | None = None,
             config: StylizeConfig = StylizeConfig()) -> dict[str, float]:
  """Loss parts of ``image`` against ``content``/``styles`` at ``image``'s size.

  Same loss as the optimisation (styles resized as at the finest scale).
  ``content`` may be None for synthesis (``alpha`` is then ignored).

  Returns:
    ``{"loss", "content", "style", "tv"}`` floats (unweighted parts + total).
  """
  image = _as_image(image, "image")
  styles, blend = _check_styles(styles, style_weights)
  if content is None:
    config = config.replace(alpha=0.0)
  else:
    content = resize(_as_image(content, "content image"), image.shape[:2], method=RESIZE)
  _check_config(config, weights)
  fns = _compiled(weights.preprocessing, _step_key(config))
  variables = weights.variables()
  s = _scale_styles(styles, image.shape[:2], config.style_scale)
  targets = fns.targets(variables, content, s, blend)
  parts = fns.parts(variables, jnp.asarray(image)[None], targets)
  return {k: float(v) for k, v in parts.items()}
