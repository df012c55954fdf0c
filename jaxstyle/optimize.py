"""Style transfer and texture synthesis by image optimisation (Gatys et al.).

``stylize`` optimises the pixels of an image so that its VGG-19 features match
a content image at the content layers and the (blended) Gram matrices of one or
more style images at the style layers; ``synthesize`` does the same with Gram
matching only, from noise (texture synthesis / style generation).

One jitted pure step ``(x, opt_state, targets) -> (x, opt_state, metrics)`` and
a Python loop around it; a callback sees every step's losses.

Conventions (all recorded in ``StylizeConfig.to_dict()`` → config.json):

* Images: float32 RGB in [0, 1]; ``[H, W, 3]`` (or ``[1, H, W, 3]``) in,
  ``[H, W, 3]`` NumPy out. Output size = content size (``stylize``) or ``size``
  (``synthesize``).
* Loss ``α·L_c + β·L_s + γ·L_tv`` with
  ``L_c = Σ_l w_l · mean(½ (F_l(X) − F_l(C))²)`` (content loss per feature
  element, so α does not depend on the image size),
  ``L_s = Σ_l w_l · 1/(4N_l²) ‖Ĝ_l(X) − Ĝ_l(S)‖²`` (``losses.style_loss``,
  position-averaged Grams, "gatys" normalisation) and
  ``L_tv = mean over pixels of Σ_c (Δx² + Δy²)`` (squared TV per pixel).
  Defaults are tuned for the Keras/Caffe weights (inputs in 0–255), see
  BUILD_NOTES.md; loss weights are not portable between weight families.
* Pixels are kept in [0, 1] by projection (clip after every update,
  ``parametrization="clip"``, the default: it converged to lower losses than
  the sigmoid parametrisation in our measurements, see BUILD_NOTES.md) or by
  optimising logits (``"sigmoid"``).
* Multi-scale: ``num_scales`` sizes, each ``scale_factor`` × the previous,
  ending at the output size. The image is optimised at the coarsest size,
  upsampled (bilinear) and optimised further; the optimiser state restarts at
  every scale. By default (``upsample="residual"``) only the change made so
  far (image − content) is upsampled and added to the content at the finer
  size, so the photo's fine detail is not blurred. Peak memory is that of the
  finest scale (multi-scale saves time, not memory). Style images are resized at every scale to
  ``style_scale`` × the current longer side, so a texture keeps its size
  relative to the image.
* Colour preservation (Gatys et al. 2016, "Preserving colour in neural
  artistic style transfer"): ``"luminance"`` transfers on the YIQ luminance
  only (style luminance matched to the content's mean/std) and recombines
  the result's Y with the content's I, Q; ``"histogram"`` first maps the
  style colours to the content's colour mean/covariance and transfers in RGB.
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

from jaxstyle import losses
from jaxstyle import vgg as vgglib
from jaxstyle.errors import ConfigError, JaxstyleError

Array = jax.Array

# Layers the partial Keras/Caffe weights (conv1_1 … conv3_4) can serve.
DEFAULT_STYLE_LAYERS: tuple[tuple[str, float], ...] = (("relu1_1", 1.0), ("relu2_1", 1.0),
                                                       ("relu3_1", 1.0))
DEFAULT_CONTENT_LAYERS: tuple[tuple[str, float], ...] = (("relu3_2", 1.0),)
# The classic Gatys set; needs full VGG-19 weights.
CLASSIC_STYLE_LAYERS: tuple[tuple[str, float], ...] = (("relu1_1", 1.0), ("relu2_1", 1.0),
                                                       ("relu3_1", 1.0), ("relu4_1", 1.0),
                                                       ("relu5_1", 1.0))
CLASSIC_CONTENT_LAYERS: tuple[tuple[str, float], ...] = (("relu4_2", 1.0),)

INITS = ("content", "noise", "image")
OPTIMIZERS = ("adam", "lbfgs")
PARAMETRIZATIONS = ("clip", "sigmoid")
PRESERVE_COLOR = ("none", "luminance", "histogram")
UPSAMPLE = ("residual", "image")
DTYPES = {"float32": jnp.float32, "bfloat16": jnp.bfloat16}
MIN_SIDE = 16  # smallest side at any scale (relu3_x maps are side/4)

# RGB -> YIQ (FCC NTSC); rows Y, I, Q.
RGB_TO_YIQ = np.array([[0.299, 0.587, 0.114],
                       [0.595716, -0.274453, -0.321263],
                       [0.211456, -0.522591, 0.311135]], np.float64)
YIQ_TO_RGB = np.linalg.inv(RGB_TO_YIQ)


class OptimizationError(JaxstyleError):
  """The optimisation diverged (non-finite loss) or was given bad inputs."""


@dataclasses.dataclass(frozen=True)
class StylizeConfig:
  """Settings of ``stylize``/``synthesize`` (data; defaults tuned on CPU-2c).

  Attributes:
    content_layers: ``((tap, weight), ...)`` for the content loss.
    style_layers: ``((tap, weight), ...)`` for the style loss (``w_l``).
    alpha, beta, gamma: content, style and total-variation weights.
    normalization: Gram normalisation (``losses.STYLE_NORMALIZATIONS``).
    init: ``"content"`` (start from the content image), ``"noise"`` (mid-grey
      plus Gaussian noise of std ``noise_std``) or ``"image"`` (``init_image``).
    noise_std: std of the init noise (pixel units).
    optimizer: ``"adam"`` (default) or ``"lbfgs"`` (``optax.lbfgs`` with its
      zoom line search; ``learning_rate`` is then unused).
    learning_rate: Adam step size in pixel units.
    steps: optimisation steps in total over all scales.
    parametrization: ``"clip"`` (project to [0, 1] after each update) or
      ``"sigmoid"`` (optimise logits).
    preserve_color: ``"none"``, ``"luminance"`` or ``"histogram"``.
    num_scales: 1 = single scale; k > 1 = coarse-to-fine over k sizes.
    scale_factor: size ratio between consecutive scales.
    scale_steps: steps per scale (coarse → fine, sums to ``steps``); empty =
      ``steps`` split evenly (remainder to the finest scale).
    upsample: between scales, ``"residual"`` upsamples the change made so far
      (result − content) and adds it to the content at the finer size, so the
      photo's fine detail is not blurred (stylize only); ``"image"``
      upsamples the image itself (always used by ``synthesize``).
    style_scale: style image longer side = this × output longer side.
    pooling: ``"max"`` or ``"avg"`` VGG pooling.
    dtype: VGG compute dtype, ``"float32"`` or ``"bfloat16"``.
    lbfgs_memory: L-BFGS history size.
  """

  content_layers: tuple[tuple[str, float], ...] = DEFAULT_CONTENT_LAYERS
  style_layers: tuple[tuple[str, float], ...] = DEFAULT_STYLE_LAYERS
  alpha: float = 1.0
  beta: float = 1e-3
  gamma: float = 0.0
  normalization: str = "gatys"
  init: str = "content"
  noise_std: float = 0.1
  optimizer: str = "adam"
  learning_rate: float = 0.05
  steps: int = 300
  parametrization: str = "clip"
  preserve_color: str = "none"
  num_scales: int = 1
  scale_factor: float = 2.0
  scale_steps: tuple[int, ...] = ()
  upsample: str = "residual"
  style_scale: float = 1.0
  pooling: str = "max"
  dtype: str = "float32"
  lbfgs_memory: int = 10

  def replace(self, **changes: Any) -> "StylizeConfig":
    return dataclasses.replace(self, **changes)

  def to_dict(self) -> dict:
    d = dataclasses.asdict(self)
    d["content_layers"] = {k: float(w) for k, w in self.content_layers}
    d["style_layers"] = {k: float(w) for k, w in self.style_layers}
    d["content_loss"] = "sum_l w_l * mean(0.5 * (F_l(X) - F_l(C))^2)"
    d["style_loss"] = f"sum_l w_l * losses.style_layer_loss(normalization={self.normalization!r})"
    d["tv_loss"] = "mean over pixels of sum_c (dx^2 + dy^2)"
    return d

  def validate(self, weights: vgglib.VGGWeights | None = None, need_content: bool = True) -> None:
    """Raises ``ConfigError`` naming the bad setting."""
    def bad(name, msg):
      raise ConfigError(f"stylize config: {name} {msg}")

    for name in ("alpha", "beta", "gamma", "learning_rate", "noise_std", "scale_factor",
                 "style_scale"):
      v = getattr(self, name)
      if not isinstance(v, (int, float)) or not math.isfinite(v) or v < 0:
        bad(name, f"must be a finite number >= 0, got {v!r}")
    for name in ("learning_rate", "scale_factor", "style_scale"):
      if getattr(self, name) <= 0:
        bad(name, f"must be > 0, got {getattr(self, name)!r}")
    if self.steps < 1:
      bad("steps", f"must be >= 1, got {self.steps}")
    if self.num_scales < 1:
      bad("num_scales", f"must be >= 1, got {self.num_scales}")
    if self.scale_steps:
      if len(self.scale_steps) != self.num_scales or sum(self.scale_steps) != self.steps:
        bad("scale_steps", f"{list(self.scale_steps)} must have num_scales={self.num_scales} "
            f"entries summing to steps={self.steps}")
      if min(self.scale_steps) < 0:
        bad("scale_steps", "entries must be >= 0")
    for name, allowed in (("init", INITS), ("optimizer", OPTIMIZERS),
                          ("parametrization", PARAMETRIZATIONS),
                          ("preserve_color", PRESERVE_COLOR), ("upsample", UPSAMPLE),
                          ("pooling", tuple(vgglib.POOLING)),
                          ("dtype", tuple(DTYPES)),
                          ("normalization", tuple(losses.STYLE_NORMALIZATIONS))):
      if getattr(self, name) not in allowed:
        bad(name, f"must be one of {', '.join(allowed)}, got {getattr(self, name)!r}")
    if not self.style_layers:
      bad("style_layers", "is empty; give at least one layer, e.g. relu1_1")
    if need_content and self.alpha > 0 and not self.content_layers:
      bad("content_layers", "is empty but alpha > 0")
    for group in ("content_layers", "style_layers"):
      for layer, w in getattr(self, group):
        if layer not in vgglib.TAPS:
          bad(group, f"has unknown VGG-19 layer {layer!r} (e.g. relu1_1, relu3_2)")
        if not math.isfinite(w) or w < 0:
          bad(group, f"weight of {layer} must be finite and >= 0, got {w!r}")
    if weights is not None:
      weights.check_layers(self.layers())

  def layers(self) -> tuple[str, ...]:
    """All taps the loss needs (content first, no duplicates)."""
    out = []
    for layer, _ in self.content_layers + self.style_layers:
      if layer not in out:
        out.append(layer)
    return tuple(out)

  def steps_per_scale(self) -> tuple[int, ...]:
    if self.scale_steps:
      return tuple(self.scale_steps)
    base = self.steps // self.num_scales
    out = [base] * self.num_scales
    out[-1] += self.steps - base * self.num_scales
    return tuple(out)


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
# Colour helpers (NumPy / jnp, [..., 3]).


def rgb_to_yiq(images: Array) -> Array:
  """``[..., 3]`` RGB -> YIQ (same shape)."""
  return images @ jnp.asarray(RGB_TO_YIQ.T, images.dtype)


def yiq_to_rgb(images: Array) -> Array:
  """``[..., 3]`` YIQ -> RGB (not clipped)."""
  return images @ jnp.asarray(YIQ_TO_RGB.T, images.dtype)


def luminance(images: Array) -> Array:
  """``[..., 3]`` RGB -> ``[..., 1]`` YIQ luminance."""
  return rgb_to_yiq(images)[..., :1]


def match_luminance(style: Array, content: Array) -> Array:
  """Style luminance (3 equal channels) with the content luminance's mean/std."""
  ys, yc = luminance(style), luminance(content)
  y = (ys - ys.mean()) / (ys.std() + 1e-6) * yc.std() + yc.mean()
  return jnp.repeat(jnp.clip(y, 0.0, 1.0), 3, axis=-1)


def match_color(style: np.ndarray, content: np.ndarray) -> np.ndarray:
  """Affine colour transfer: style pixels with the content's RGB mean and covariance.

  ``x' = A (x − μ_s) + μ_c`` with ``A = Σ_c^½ Σ_s^−½`` (symmetric square
  roots, float64), then clipped to [0, 1]. Shapes ``[H, W, 3]`` in/out.
  """
  s = np.asarray(style, np.float64).reshape(-1, 3)
  c = np.asarray(content, np.float64).reshape(-1, 3)
  mu_s, mu_c = s.mean(0), c.mean(0)
  eps = 1e-5 * np.eye(3)
  def sqrtm(m, power):
    vals, vecs = np.linalg.eigh(m)
    return (vecs * np.maximum(vals, 1e-12) ** power) @ vecs.T
  a = sqrtm(np.cov(c.T) + eps, 0.5) @ sqrtm(np.cov(s.T) + eps, -0.5)
  out = (s - mu_s) @ a.T + mu_c
  return np.clip(out, 0, 1).reshape(np.shape(style)).astype(np.float32)


# ----------------------------------------------------------------------------
# Loss and step.


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


def _resize(img: Array, hw: tuple[int, int]) -> Array:
  """Antialiased bilinear resize of ``[H, W, 3]`` (identity if same size)."""
  if tuple(img.shape[:2]) == tuple(hw):
    return jnp.asarray(img)
  return jnp.clip(jax.image.resize(jnp.asarray(img), (*hw, img.shape[-1]), "linear",
                                   antialias=True), 0.0, 1.0)


def _longer_side_hw(h: int, w: int, longer: int) -> tuple[int, int]:
  s = longer / max(h, w)
  return max(1, round(h * s)), max(1, round(w * s))


def scale_sizes(height: int, width: int, num_scales: int,
                factor: float) -> list[tuple[int, int]]:
  """Sizes coarse → fine ending at ``(height, width)``; each ≥ ``MIN_SIDE``."""
  out = []
  for k in range(num_scales - 1, -1, -1):
    f = factor ** k
    out.append((max(MIN_SIDE, round(height / f)), max(MIN_SIDE, round(width / f))))
  return out


class _Objective:
  """Loss of an image batch ``[1, H, W, 3]`` against fixed targets."""

  def __init__(self, preprocessing: str, config: StylizeConfig):
    self.config = config
    self.model = vgglib.VGG19(preprocessing=preprocessing, pooling=config.pooling,
                              dtype=DTYPES[config.dtype])
    self.layers = config.layers()
    self.content_weights = dict(config.content_layers) if config.alpha > 0 else {}
    self.style_weights = dict(config.style_layers)

  def features(self, variables, x: Array) -> dict[str, Array]:
    return self.model.apply(variables, x, self.layers)

  def targets(self, variables, content: Array | None, styles: Sequence[Array],
              blend: Sequence[float]) -> dict:
    """Content features and blended target Grams (float32)."""
    style_feats = []
    for s in styles:
      f = self.model.apply(variables, s[None], tuple(self.style_weights))
      style_feats.append(f)
    grams = losses.style_targets(style_feats, blend)
    cfeats = {}
    if self.content_weights:
      f = self.features(variables, content[None])
      cfeats = {k: f[k].astype(jnp.float32) for k in self.content_weights}
    return {"content": cfeats, "grams": grams}

  def parts(self, variables, x: Array, targets: dict) -> dict[str, Array]:
    """Unweighted loss parts (scalars) and the weighted total."""
    feats = self.features(variables, x)
    lc = jnp.float32(0.0)
    for k, w in self.content_weights.items():
      f = feats[k].astype(jnp.float32)
      lc = lc + w * losses.content_loss(f, targets["content"][k])[0] / (f.size // f.shape[0])
    ls = losses.style_loss(feats, targets["grams"], self.style_weights,
                           self.config.normalization)[0]
    ltv = jnp.float32(0.0)
    if self.config.gamma:
      ltv = losses.total_variation_loss(x)[0] / (x.shape[1] * x.shape[2])
    c = self.config
    total = c.alpha * lc + c.beta * ls + c.gamma * ltv
    return {"loss": total, "content": lc, "style": ls, "tv": ltv}


def _to_param(x: Array, parametrization: str) -> Array:
  if parametrization == "sigmoid":
    x = jnp.clip(x, 1e-3, 1 - 1e-3)
    return jnp.log(x) - jnp.log1p(-x)
  return x


def _to_image(p: Array, parametrization: str) -> Array:
  return jax.nn.sigmoid(p) if parametrization == "sigmoid" else p


def make_optimizer(config: StylizeConfig) -> optax.GradientTransformation:
  if config.optimizer == "lbfgs":
    return optax.lbfgs(memory_size=config.lbfgs_memory)
  return optax.adam(config.learning_rate)


def make_step(objective: _Objective, optimizer: optax.GradientTransformation,
              config: StylizeConfig) -> Callable:
  """The pure step ``(p, opt_state, variables, targets) -> (p, opt_state, metrics)``.

  ``p`` is the ``[1, H, W, 3]`` parameter (pixels or logits); metrics are the
  losses *before* the update (float32 scalars).
  """
  param = config.parametrization

  def loss_fn(p, variables, targets):
    parts = objective.parts(variables, _to_image(p, param), targets)
    return parts["loss"], parts

  def project(p):
    return jnp.clip(p, 0.0, 1.0) if param == "clip" else p

  if config.optimizer == "adam":
    def step(p, opt_state, variables, targets):
      (_, parts), g = jax.value_and_grad(loss_fn, has_aux=True)(p, variables, targets)
      updates, opt_state = optimizer.update(g, opt_state, p)
      return project(optax.apply_updates(p, updates)), opt_state, parts
  else:
    def step(p, opt_state, variables, targets):
      value_fn = lambda q: loss_fn(q, variables, targets)[0]
      value, g = optax.value_and_grad_from_state(value_fn)(p, state=opt_state)
      updates, opt_state = optimizer.update(g, opt_state, p, value=value, grad=g,
                                            value_fn=value_fn)
      _, parts = loss_fn(p, variables, targets)  # extra forward for the reported parts
      return project(optax.apply_updates(p, updates)), opt_state, parts

  return step


@dataclasses.dataclass(frozen=True)
class _Fns:
  optimizer: optax.GradientTransformation
  step: Callable
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
  objective = _Objective(preprocessing, config)
  optimizer = make_optimizer(config)
  return _Fns(optimizer, jax.jit(make_step(objective, optimizer, config)),
              jax.jit(objective.targets), jax.jit(objective.parts))


# ----------------------------------------------------------------------------
# Public entry points.


def _check_styles(styles: Sequence[Any], weights: Sequence[float] | None) -> tuple[list, list]:
  if styles is None or len(styles) == 0:
    raise OptimizationError("no style images given; pass at least one style image")
  styles = [_as_image(s, f"style image {i}") for i, s in enumerate(styles)]
  if weights is None:
    blend = [1.0] * len(styles)
  else:
    blend = [float(w) for w in weights]
    if len(blend) != len(styles):
      raise OptimizationError(f"{len(styles)} style image(s) but {len(blend)} style weight(s); "
                              "give one weight per style")
    if any(not math.isfinite(w) or w < 0 for w in blend) or sum(blend) <= 0:
      raise OptimizationError(f"style weights {blend} must be finite, >= 0 and not all 0")
  return styles, blend


def _scale_styles(styles: list[np.ndarray], hw: tuple[int, int], style_scale: float) -> list:
  longer = max(1, round(style_scale * max(hw)))
  return [_resize(s, _longer_side_hw(s.shape[0], s.shape[1], longer)) for s in styles]


def _optimize(weights: vgglib.VGGWeights, content: np.ndarray | None, styles: list,
              blend: list, out_hw: tuple[int, int], config: StylizeConfig, key: Array,
              init_image: np.ndarray | None,
              callback: Callable[[dict], None] | None) -> Result:
  fns = _compiled(weights.preprocessing, _step_key(config))
  optimizer, step, targets_fn = fns.optimizer, fns.step, fns.targets
  variables = weights.variables()
  history: list[dict] = []
  sizes = scale_sizes(*out_hw, config.num_scales, config.scale_factor)
  x = prev_c = None
  global_step = 0
  for scale, (hw, n_steps) in enumerate(zip(sizes, config.steps_per_scale())):
    c = _resize(content, hw) if content is not None else None
    s = _scale_styles(styles, hw, config.style_scale)
    targets = targets_fn(variables, c, s, blend)
    if x is None:
      if config.init == "content":
        x = c
      elif config.init == "image":
        x = _resize(init_image, hw)
      else:
        noise = jax.random.normal(jax.random.fold_in(key, scale), (*hw, 3), jnp.float32)
        x = jnp.clip(0.5 + config.noise_std * noise, 0.0, 1.0)
    elif config.upsample == "residual" and c is not None:
      # Upsample only what the optimisation changed; the content's own detail
      # comes from the content image at the new size.
      delta = jax.image.resize(x - prev_c, (*hw, 3), "linear")
      x = jnp.clip(c + delta, 0.0, 1.0)
    else:
      x = jnp.clip(jax.image.resize(x, (*hw, 3), "linear"), 0.0, 1.0)
    prev_c = c
    p = _to_param(x[None], config.parametrization)
    opt_state = optimizer.init(p)
    for _ in range(n_steps):
      p, opt_state, parts = step(p, opt_state, variables, targets)
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


def stylize(vgg: vgglib.VGGWeights, content: Any, styles: Sequence[Any],
            weights: Sequence[float] | None = None, config: StylizeConfig = StylizeConfig(),
            key: Array | None = None, *, init_image: Any = None,
            callback: Callable[[dict], None] | None = None) -> Result:
  """Gatys style transfer of ``styles`` onto ``content``.

  Args:
    vgg: VGG-19 weights (their preprocessing convention is used).
    content: ``[H, W, 3]`` float32 RGB in [0, 1]; the output has its size.
    styles: one or more ``[h_i, w_i, 3]`` style images (any sizes; resized to
      ``config.style_scale`` × the output's longer side).
    weights: blend weights, one per style (normalised to sum 1); None = equal.
    config: ``StylizeConfig``.
    key: PRNG key (used by ``init="noise"``); None = ``PRNGKey(0)``.
    init_image: ``[h, w, 3]`` start image for ``init="image"`` (resized).
    callback: called after every step with the history row (see ``Result``).

  Returns:
    ``Result`` with the ``[H, W, 3]`` image and per-step losses.

  Raises:
    OptimizationError: empty styles, mismatched blend weights, bad images,
      non-finite loss. ConfigError / WeightsError: bad config or layers
      beyond the weights.
  """
  config.validate(vgg)
  content = _as_image(content, "content image")
  styles, blend = _check_styles(styles, weights)
  if config.init == "image":
    if init_image is None:
      raise OptimizationError("init='image' needs init_image")
    init_image = _as_image(init_image, "init image")
  if key is None:
    key = jax.random.PRNGKey(0)
  if config.preserve_color == "luminance":
    y_c = np.asarray(luminance(jnp.asarray(content)))
    s_lum = [np.asarray(match_luminance(jnp.asarray(s), jnp.asarray(content))) for s in styles]
    init = None
    if init_image is not None:
      init = np.repeat(np.asarray(luminance(jnp.asarray(init_image))), 3, axis=-1)
    res = _optimize(vgg, np.repeat(y_c, 3, -1), s_lum, blend, content.shape[:2], config, key,
                    init, callback)
    y_out = np.asarray(luminance(jnp.asarray(res.image)))
    yiq = np.concatenate([y_out, np.asarray(rgb_to_yiq(jnp.asarray(content)))[..., 1:]], -1)
    res.image = np.clip(np.asarray(yiq_to_rgb(jnp.asarray(yiq))), 0.0, 1.0).astype(np.float32)
    return res
  if config.preserve_color == "histogram":
    styles = [match_color(s, content) for s in styles]
  return _optimize(vgg, content, styles, blend, content.shape[:2], config, key, init_image,
                   callback)


def synthesis_config(**overrides: Any) -> StylizeConfig:
  """Default config of ``synthesize``: no content loss, noise init."""
  base = StylizeConfig(alpha=0.0, content_layers=(), init="noise", learning_rate=0.05,
                       gamma=0.0, steps=300)
  return base.replace(**overrides)


def synthesize(vgg: vgglib.VGGWeights, styles: Sequence[Any], size: int | tuple[int, int],
               key: Array, weights: Sequence[float] | None = None,
               config: StylizeConfig | None = None, *,
               callback: Callable[[dict], None] | None = None) -> Result:
  """A new image in the style of ``styles`` by Gram matching from noise.

  Args:
    vgg: VGG-19 weights.
    styles: one or more ``[h, w, 3]`` style images.
    size: output ``(height, width)``, or an int for a square image.
    key: PRNG key for the init noise; different keys give different images.
    weights: blend weights (one per style).
    config: defaults to ``synthesis_config()``; ``alpha`` must be 0 and
      ``init`` "noise" (or "image" is refused: there is no image).
    callback: per-step callback (see ``stylize``).

  Returns:
    ``Result`` with a ``[height, width, 3]`` image.
  """
  config = config or synthesis_config()
  if config.alpha != 0 or config.init != "noise":
    config = config.replace(alpha=0.0, init="noise")
  config.validate(vgg, need_content=False)
  hw = (size, size) if isinstance(size, (int, np.integer)) else tuple(size)
  if len(hw) != 2 or any(int(v) != v or v < 1 for v in hw):
    raise OptimizationError(f"size must be a positive int or (height, width), got {size!r}")
  hw = (int(hw[0]), int(hw[1]))
  if min(hw) < MIN_SIDE:
    raise OptimizationError(f"size {hw} too small: each side must be >= {MIN_SIDE} px")
  styles, blend = _check_styles(styles, weights)
  if config.preserve_color != "none":
    config = config.replace(preserve_color="none")
  return _optimize(vgg, None, styles, blend, hw, config, key, None, callback)


def evaluate(vgg: vgglib.VGGWeights, image: Any, content: Any | None, styles: Sequence[Any],
             weights: Sequence[float] | None = None,
             config: StylizeConfig = StylizeConfig()) -> dict[str, float]:
  """Loss parts of ``image`` against ``content``/``styles`` at ``image``'s size.

  Same loss as the optimisation (styles resized as at the finest scale).
  ``content`` may be None for synthesis (``alpha`` is then ignored).

  Returns:
    ``{"loss", "content", "style", "tv"}`` floats (unweighted parts + total).
  """
  image = _as_image(image, "image")
  styles, blend = _check_styles(styles, weights)
  if content is None:
    config = config.replace(alpha=0.0)
  else:
    content = _resize(_as_image(content, "content image"), image.shape[:2])
  config.validate(vgg, need_content=content is not None)
  fns = _compiled(vgg.preprocessing, _step_key(config))
  variables = vgg.variables()
  s = _scale_styles(styles, image.shape[:2], config.style_scale)
  targets = fns.targets(variables, content, s, blend)
  parts = fns.parts(variables, jnp.asarray(image)[None], targets)
  return {k: float(v) for k, v in parts.items()}
