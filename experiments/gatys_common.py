"""Flags and helpers shared by experiments/stylize.py and experiments/generate.py.

The optimisation flags are derived from ``jaxstyle.optimize.StylizeConfig``:
one flag per field, with the field's help, default and choices
(``cli.define_config_flags``; ``--lr`` is the flag of ``learning_rate``);
``build_config`` turns them back into a validated config (a bad value is a
``UsageError`` naming the flag). generate.py has no content image, so it gets no flags for
the content-only settings (``CONTENT_ONLY``). Also: the style-image flags, the
config.json record of the VGG weights, the upscaled-style warning, and the tqdm
bar + metrics.jsonl callback.
"""

from __future__ import annotations

import math
import os

import cli
from cli import FLAGS, flags

from jaxstyle import config as cfglib
from jaxstyle import optimize

# Settings that only matter with a content image: no flags in generate.py.
CONTENT_ONLY = tuple(optimize.SYNTHESIS) + ("upsample",)


def define_style_flags():
  flags.DEFINE_multi_string("style", None, "Style image (PNG/JPEG/...); repeat the flag to blend "
                            "several styles, e.g. --style a.jpg --style b.jpg.")
  flags.DEFINE_list("style_weights", None, "Blend weights, one per --style, comma-separated "
                    "(e.g. 0.7,0.3); normalised to sum 1. Default: equal weights.")


def define_optimization_flags(*, content: bool):
  """Defines --seed, --vgg_weights and one flag per StylizeConfig setting.

  Without ``content`` (generate.py), the ``CONTENT_ONLY`` settings get no flag.
  """
  cli.define_seed()
  cli.define_vgg_weights()
  cli.define_config_flags(optimize.StylizeConfig, exclude=() if content else CONTENT_ONLY)


def build_config(*, content: bool) -> optimize.StylizeConfig:
  """The validated StylizeConfig of the flags (``SYNTHESIS`` applied if not ``content``).

  Raises:
    cli.UsageError: naming the bad flag.
  """
  overrides = {} if content else dict(optimize.SYNTHESIS)
  return cli.config_from_flags(optimize.StylizeConfig, **overrides)


def parse_style_weights(n_styles: int) -> list[float] | None:
  if not FLAGS.style_weights:
    return None
  try:
    w = [float(v) for v in FLAGS.style_weights]
  except ValueError:
    raise cli.UsageError(f"--style_weights={','.join(FLAGS.style_weights)}: not numbers")
  if len(w) != n_styles:
    raise cli.UsageError(f"--style_weights has {len(w)} value(s) but {n_styles} --style "
                         "image(s) were given; give one weight per style")
  if any(not math.isfinite(v) or v < 0 for v in w) or sum(w) <= 0:
    raise cli.UsageError(f"--style_weights={','.join(FLAGS.style_weights)} must be finite, "
                         ">= 0 and not all zero")
  return w


def style_paths() -> list[str]:
  paths = [p for p in (FLAGS.style or [])]
  if not paths:
    raise cli.UsageError("no style image: pass --style PATH (repeat it to blend styles)")
  return paths


def warn_upscaled_styles(paths, styles, hw, style_scale: float) -> None:
  """A warning for each style image the optimisation enlarges more than 4x (its longer side
  becomes ``style_scale`` x the output's, ``jaxstyle.optimize``)."""
  from jaxstyle import images  # pylint: disable=g-import-not-at-top

  longer = max(1, round(style_scale * max(hw)))
  for path, style in zip(paths, styles):
    images.check_upscale(path, style.shape[:2], images.target_size(*style.shape[:2], longer))


def vgg_record(weights) -> dict:
  """What config.json records about the VGG weights."""
  family = {"caffe": "Keras/Caffe VGG-19 (BGR, 0-255, ImageNet mean subtracted)",
            "torch": "torchvision VGG-19 (RGB, ImageNet mean/std)"}
  source = os.path.abspath(weights.source) if os.path.exists(weights.source) else weights.source
  return {"source": source, "preprocessing": weights.preprocessing,
          "family": family.get(weights.preprocessing, weights.preprocessing),
          "layers": list(weights.layers), "deepest_layer": weights.deepest_layer}


def write_config(run, config: optimize.StylizeConfig, weights, **extra) -> None:
  """config.json: every setting (``jaxstyle.config.to_dict``), the loss terms, the VGG record."""
  run.write_config(cfglib.to_dict(config), loss=optimize.LOSS_TERMS, vgg=vgg_record(weights),
                   **extra)


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
