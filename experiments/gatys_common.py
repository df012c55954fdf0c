"""Flags and helpers shared by experiments/stylize.py and experiments/generate.py.

Defines the optimisation flags (loss weights, layers, optimiser, scales, ...),
turns them into a ``jaxstyle.optimize.StylizeConfig`` and drives the tqdm bar
and metrics.jsonl from the per-step callback.
"""

from __future__ import annotations

import math
import os

import common
from absl import flags

from jaxstyle import optimize

FLAGS = flags.FLAGS

_D = optimize.StylizeConfig()


def _layers_str(layers) -> str:
  return ",".join(f"{k}:{w:g}" for k, w in layers)


def define_style_flags():
  flags.DEFINE_multi_string("style", None, "Style image (PNG/JPEG/...); repeat the flag to blend "
                            "several styles, e.g. --style a.jpg --style b.jpg.")
  flags.DEFINE_list("style_weights", None, "Blend weights, one per --style, comma-separated "
                    "(e.g. 0.7,0.3); normalised to sum 1. Default: equal weights.")


def define_optimization_flags(*, content: bool, steps: int, lr: float, gamma: float):
  """Optimisation flags; ``content=False`` omits the content-loss flags (generate)."""
  common.define_seed()
  common.define_vgg_weights()
  flags.DEFINE_integer("steps", steps, "Optimisation steps in total (over all scales).")
  flags.DEFINE_enum("optimizer", "adam", list(optimize.OPTIMIZERS),
                    "adam (default) or lbfgs (optax.lbfgs + zoom line search; --lr unused).")
  flags.DEFINE_float("lr", lr, "Adam learning rate in pixel units (pixels are in [0, 1]).")
  flags.DEFINE_string("style_layers", _layers_str(_D.style_layers),
                      "Style layers with weights, 'tap:weight' comma-separated (weight defaults "
                      "to 1). Default fits the partial VGG weights (<= relu3_4); with full "
                      "weights the classic set is relu1_1,relu2_1,relu3_1,relu4_1,relu5_1.")
  if content:
    flags.DEFINE_string("content_layers", _layers_str(_D.content_layers),
                        "Content layers with weights, 'tap:weight' comma-separated. Classic "
                        "(full weights): relu4_2.")
    flags.DEFINE_float("alpha", _D.alpha, "Content loss weight α (per-element mean content loss).")
    flags.DEFINE_enum("init", "content", list(optimize.INITS),
                      "Start image: content, noise (grey + Gaussian noise) or image (--init_image).")
    flags.DEFINE_string("init_image", None, "Start image for --init=image.")
    flags.DEFINE_enum("preserve_color", "none", list(optimize.PRESERVE_COLOR),
                      "Colour preservation: none; luminance (transfer on YIQ luminance, keep the "
                      "content's chroma); histogram (match style colours to the content first).")
  flags.DEFINE_float("beta", _D.beta, "Style loss weight β (Gram loss, 'gatys' normalisation). "
                     "Tuned for the Keras/Caffe weights (0-255 inputs).")
  flags.DEFINE_float("gamma", gamma, "Total-variation weight γ (squared TV per pixel).")
  flags.DEFINE_enum("parametrization", _D.parametrization, list(optimize.PARAMETRIZATIONS),
                    "Keep pixels in [0, 1] by clipping after each step (clip) or via a sigmoid.")
  flags.DEFINE_integer("num_scales", 1, "Coarse-to-fine scales (1 = single scale). Each scale is "
                       "--scale_factor times the previous; steps are split evenly.")
  flags.DEFINE_float("scale_factor", _D.scale_factor, "Size ratio between consecutive scales.")
  flags.DEFINE_float("style_scale", _D.style_scale, "Style image longer side = this x the output "
                     "longer side (larger = bigger brush strokes).")
  flags.DEFINE_enum("pooling", _D.pooling, ["max", "avg"], "VGG pooling.")
  flags.DEFINE_enum("dtype", _D.dtype, list(optimize.DTYPES), "VGG compute dtype.")


def parse_layers(flag: str, value: str) -> tuple[tuple[str, float], ...]:
  out = []
  for item in [v.strip() for v in (value or "").split(",") if v.strip()]:
    name, _, w = item.partition(":")
    try:
      weight = float(w) if w else 1.0
    except ValueError:
      raise common.UsageError(f"--{flag}: bad weight in {item!r}; use tap:weight, e.g. relu1_1:1")
    out.append((name.strip(), weight))
  return tuple(out)


def parse_style_weights(n_styles: int) -> list[float] | None:
  if not FLAGS.style_weights:
    return None
  try:
    w = [float(v) for v in FLAGS.style_weights]
  except ValueError:
    raise common.UsageError(f"--style_weights={','.join(FLAGS.style_weights)}: not numbers")
  if len(w) != n_styles:
    raise common.UsageError(f"--style_weights has {len(w)} value(s) but {n_styles} --style "
                            "image(s) were given; give one weight per style")
  if any(not math.isfinite(v) or v < 0 for v in w) or sum(w) <= 0:
    raise common.UsageError(f"--style_weights={','.join(FLAGS.style_weights)} must be finite, "
                            ">= 0 and not all zero")
  return w


def style_paths() -> list[str]:
  paths = [p for p in (FLAGS.style or [])]
  if not paths:
    raise common.UsageError("no style image: pass --style PATH (repeat it to blend styles)")
  return paths


def build_config(*, content: bool) -> optimize.StylizeConfig:
  """StylizeConfig from the flags (raises UsageError naming the flag)."""
  for name in ("beta", "gamma", "lr", "scale_factor", "style_scale") + (("alpha",) if content else ()):
    v = getattr(FLAGS, name)
    if not math.isfinite(v) or v < 0 or (name in ("lr", "scale_factor", "style_scale") and v <= 0):
      raise common.UsageError(f"--{name}={v} must be a finite number "
                              f"{'> 0' if name in ('lr', 'scale_factor', 'style_scale') else '>= 0'}")
  if FLAGS.steps < 1:
    raise common.UsageError(f"--steps={FLAGS.steps} must be >= 1")
  if FLAGS.num_scales < 1:
    raise common.UsageError(f"--num_scales={FLAGS.num_scales} must be >= 1")
  kw = dict(style_layers=parse_layers("style_layers", FLAGS.style_layers),
            beta=FLAGS.beta, gamma=FLAGS.gamma, optimizer=FLAGS.optimizer,
            learning_rate=FLAGS.lr, steps=FLAGS.steps, parametrization=FLAGS.parametrization,
            num_scales=FLAGS.num_scales, scale_factor=FLAGS.scale_factor,
            style_scale=FLAGS.style_scale, pooling=FLAGS.pooling, dtype=FLAGS.dtype)
  if not kw["style_layers"]:
    raise common.UsageError("--style_layers is empty; give e.g. relu1_1,relu2_1,relu3_1")
  if content:
    kw.update(content_layers=parse_layers("content_layers", FLAGS.content_layers),
              alpha=FLAGS.alpha, init=FLAGS.init, preserve_color=FLAGS.preserve_color)
    return optimize.StylizeConfig(**kw)
  return optimize.synthesis_config(**kw)


def vgg_record(weights) -> dict:
  """What config.json records about the VGG weights."""
  family = {"caffe": "Keras/Caffe VGG-19 (BGR, 0-255, ImageNet mean subtracted)",
            "torch": "torchvision VGG-19 (RGB, ImageNet mean/std)"}
  source = os.path.abspath(weights.source) if os.path.exists(weights.source) else weights.source
  return {"source": source, "preprocessing": weights.preprocessing,
          "family": family.get(weights.preprocessing, weights.preprocessing),
          "layers": list(weights.layers), "deepest_layer": weights.deepest_layer}


class Progress:
  """tqdm bar + metrics.jsonl writer, used as the optimisation callback."""

  def __init__(self, run, total: int, desc: str, extra: dict | None = None):
    from tqdm import tqdm
    self.run = run
    self.extra = extra or {}
    self.bar = tqdm(total=total, desc=desc, dynamic_ncols=True, mininterval=0.5)

  def __call__(self, row: dict):
    self.run.log_metrics(row["step"], {**self.extra, **{k: v for k, v in row.items() if k != "step"}})
    self.bar.set_postfix(loss=f"{row['loss']:.4g}", style=f"{row['style']:.4g}",
                         content=f"{row['content']:.4g}", size=f"{row['height']}x{row['width']}",
                         refresh=False)
    self.bar.update(1)

  def close(self):
    self.bar.close()
