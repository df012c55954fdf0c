"""Settings of Gatys optimisation: ``StylizeConfig``, layer sets and choices.

``StylizeConfig`` is frozen data (hashable: it keys the compilation cache).
Every field is a ``jaxstyle.config.setting`` with its help text and checks;
``jaxstyle.config.validate(cfg)`` is the one place that checks a config
(``ConfigError`` naming the setting), and flags, config.json
(``jaxstyle.config.to_dict``/``from_dict``) derive from the fields. Layer lists
are ``((tap, weight), ...)``; their flag text is ``tap:weight`` comma-separated
(``parse_layers``/``format_layers``). Defaults are tuned for the Keras/Caffe
weights (inputs in 0–255); loss weights are not portable between weight
families.
"""

from __future__ import annotations

import dataclasses
import math
from typing import Any

import jax.numpy as jnp

from jaxstyle import config as cfglib
from jaxstyle import losses
from jaxstyle import vgg
from jaxstyle.errors import ConfigError

Layers = tuple[tuple[str, float], ...]

# Layers the partial Keras/Caffe weights (conv1_1 … conv3_4) can serve.
DEFAULT_STYLE_LAYERS: Layers = (("relu1_1", 1.0), ("relu2_1", 1.0), ("relu3_1", 1.0))
DEFAULT_CONTENT_LAYERS: Layers = (("relu3_2", 1.0),)
# The classic Gatys set; needs full VGG-19 weights.
CLASSIC_STYLE_LAYERS: Layers = (("relu1_1", 1.0), ("relu2_1", 1.0), ("relu3_1", 1.0),
                                ("relu4_1", 1.0), ("relu5_1", 1.0))
CLASSIC_CONTENT_LAYERS: Layers = (("relu4_2", 1.0),)

INITS = ("content", "noise", "image")
OPTIMIZERS = ("adam", "lbfgs")
PARAMETRIZATIONS = ("clip", "sigmoid")
PRESERVE_COLOR = ("none", "luminance", "histogram")
UPSAMPLE = ("residual", "image")
DTYPES = {"float32": jnp.float32, "bfloat16": jnp.bfloat16}
MIN_SIDE = 16  # smallest side at any scale (relu3_x maps are side/4)

# What ``synthesize`` changes in a config: no content loss, start from noise.
SYNTHESIS = {"alpha": 0.0, "content_layers": (), "init": "noise", "preserve_color": "none"}


def parse_layers(text: str) -> Layers:
  """``"relu1_1:1,relu2_1:0.5"`` → ``(("relu1_1", 1.0), ("relu2_1", 0.5))``; no weight = 1."""
  out = []
  for item in [v.strip() for v in (text or "").split(",") if v.strip()]:
    name, _, weight = item.partition(":")
    try:
      out.append((name.strip(), float(weight) if weight.strip() else 1.0))
    except ValueError:
      raise ConfigError(f"bad weight in {item!r}; use tap:weight, e.g. relu1_1:1") from None
  return tuple(out)


def format_layers(layers: Layers) -> str:
  """Inverse of ``parse_layers``: ``"relu1_1:1,relu2_1:0.5"``."""
  return ",".join(f"{tap}:{weight:g}" for tap, weight in layers)


def _check_layers(layers: Layers) -> str | None:
  problem = vgg.check_taps([layer for layer, _ in layers]) if layers else None
  if problem:
    return problem
  for layer, weight in layers:
    if not math.isfinite(weight) or weight < 0:
      return f"weight of {layer} must be finite and >= 0, got {weight!r}"
  return None


def check_style_layers(layers: Layers) -> str | None:
  if not layers:
    return "is empty; give at least one layer, e.g. relu1_1,relu2_1,relu3_1"
  return _check_layers(layers)



def layers_setting(default: Layers, help_text: str, check=_check_layers) -> Any:
  """A ``tap:weight`` list setting (parsed, formatted and checked as such)."""
  return cfglib.setting(default, help_text, check=check, parse=parse_layers, format=format_layers)


@dataclasses.dataclass(frozen=True)
class StylizeConfig:
  """Settings of ``stylize``/``synthesize``/``evaluate`` (see each field's help)."""

  content_layers: Layers = layers_setting(
      DEFAULT_CONTENT_LAYERS, "Content layers with weights, 'tap:weight' comma-separated (weight "
      "defaults to 1). Classic (full weights): relu4_2.")
  style_layers: Layers = layers_setting(
      DEFAULT_STYLE_LAYERS, "Style layers with weights, 'tap:weight' comma-separated (weight "
      "defaults to 1). Default fits the partial VGG weights (<= relu3_4); with full weights the "
      "classic set is relu1_1,relu2_1,relu3_1,relu4_1,relu5_1.", check=check_style_layers)
  alpha: float = cfglib.setting(1.0, "Content loss weight α (per-element mean content loss).",
                                ge=0, check=cfglib.finite)
  beta: float = cfglib.setting(
      1e-2, "Style loss weight β (Gram loss). 1e-2: clearly stylized with recognisable content "
      "(the knee of the measured style/content trade-off; 1e-3 is gentle, 3e-2 and more lose "
      "content). Tuned for the Keras/Caffe weights (0-255 inputs).", ge=0, check=cfglib.finite)
  gamma: float = cfglib.setting(0.0, "Total-variation weight γ (squared TV per pixel).", ge=0,
                                check=cfglib.finite)
  normalization: str = cfglib.setting(
      "gatys", "Gram normalisation of the style loss.",
      choices=tuple(losses.STYLE_NORMALIZATIONS))
  init: str = cfglib.setting(
      "content", "Start image: content, noise (mid-grey + Gaussian noise of std noise_std) or "
      "image (a given start image, resized).", choices=INITS)
  noise_std: float = cfglib.setting(0.1, "Std of the init noise, in pixel units.", ge=0,
                                    check=cfglib.finite)
  optimizer: str = cfglib.setting(
      "adam", "adam, or lbfgs (L-BFGS with a backtracking line search; usually one loss "
      "evaluation per step like Adam, and about a third of Adam's steps to the same loss at "
      "512 px).", choices=OPTIMIZERS)
  learning_rate: float = cfglib.setting(
      0.05, "Adam learning rate in pixel units (pixels are in [0, 1]; logits with the sigmoid "
      "parametrization); with lbfgs, the RMS change of the first step in the same units.", gt=0,
      check=cfglib.finite, flag_name="lr")
  steps: int = cfglib.setting(300, "Optimisation steps in total (over all scales).", ge=1)
  parametrization: str = cfglib.setting(
      "clip", "Keep pixels in [0, 1] by clipping after each step (clip) or by optimising logits "
      "(sigmoid).", choices=PARAMETRIZATIONS)
  preserve_color: str = cfglib.setting(
      "none", "Colour preservation: none; luminance (transfer on the YIQ luminance, keep the "
      "content's chroma); histogram (match the style's colours to the content first).",
      choices=PRESERVE_COLOR)
  num_scales: int = cfglib.setting(
      1, "Coarse-to-fine scales (1 = single scale); each scale is scale_factor times the "
      "previous one.", ge=1)
  scale_factor: float = cfglib.setting(2.0, "Size ratio between consecutive scales.", gt=0,
                                       check=cfglib.finite)
  scale_steps: tuple[int, ...] = cfglib.setting(
      (), "Steps per scale, coarse to fine (num_scales entries summing to steps). Empty: steps "
      "split evenly, the remainder to the finest scale.", ge=0)
  upsample: str = cfglib.setting(
      "residual", "Between scales: residual upsamples the change made so far (result - content) "
      "and adds it to the content at the finer size, keeping the photo's detail; image "
      "upsamples the image itself (always so without a content image).", choices=UPSAMPLE)
  style_scale: float = cfglib.setting(
      1.0, "Style image longer side = this x the output's longer side (larger = bigger brush "
      "strokes).", gt=0, check=cfglib.finite)
  pooling: str = cfglib.setting("max", "VGG pooling.", choices=tuple(vgg.POOLING))
  dtype: str = cfglib.setting("float32", "VGG compute dtype.", choices=tuple(DTYPES))
  lbfgs_memory: int = cfglib.setting(10, "L-BFGS history size.", gt=0)

  def check(self) -> None:
    """Cross-field rules (``jaxstyle.config.validate`` calls it after the field checks)."""
    if self.scale_steps and (len(self.scale_steps) != self.num_scales
                             or sum(self.scale_steps) != self.steps):
      raise cfglib.invalid("scale_steps", self.scale_steps,
                           f"must have num_scales={self.num_scales} entries summing to "
                           f"steps={self.steps}")
    if self.alpha > 0 and not self.content_layers:
      raise cfglib.invalid("content_layers", self.content_layers,
                           "is empty but alpha > 0; give e.g. relu3_2, or set alpha to 0")

  def replace(self, **changes: Any) -> "StylizeConfig":
    return dataclasses.replace(self, **changes)

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


def synthesis_config(**overrides: Any) -> StylizeConfig:
  """Default config of ``synthesize``: ``StylizeConfig`` with ``SYNTHESIS`` applied."""
  return StylizeConfig(**{**SYNTHESIS, **overrides})
