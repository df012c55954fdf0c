"""Benchmark: a trained stylizer against published outputs of a feed-forward style-transfer model.

  python experiments/benchmark.py stylizer_published --checkpoint runs/stylizer_quick \
      --published PATH/TO/fast-style-transfer [--out results.json]

``published`` is a checkout of a feed-forward implementation's repository with
its example photos and results; the default ``pairs`` follow
lengstrom/fast-style-transfer (Engstrom's TensorFlow version of Johnson et
al.): ``examples/content/chicago.jpg`` and ``stata.jpg`` stylized with The
Great Wave, Udnie, The Scream and The Shipwreck of the Minotaur
(``examples/results/*.jpg``). Nothing of it ships with jaxstyle; the
photos and outputs are for internal evaluation only, never for figures.

Each pair is ``result=content:style``: the published output, the photo it was
made from (both under ``published``) and the style, a file stem of
``styles_dir``. The stylizer runs on the photo resized to the published
output's exact size (whole image or tiles: ``jaxstyle.inference``; or at
``network_side`` and resized to it), with the
bank latent when the style is a bank style, else the encoder's latent of the
style image at the run's ``style_size`` (an unseen style).

Both outputs are scored by an independent VGG: the PyTorch trunk of
``experiments/peers/vgg.py`` built from the same ImageNet weights (the only
ones here), float32, not jaxstyle's code:

* style distance, per ReLU tap ``l`` (every one the weights have):
  ``‖Ĝ_l(X) − Ĝ_l(S)‖²_F / ‖Ĝ_l(S)‖²_F`` with ``Ĝ = F Fᵀ / (H W)``
  (position-averaged, so images of different sizes compare; relative, so
  every layer counts alike: raw distances grow by orders of magnitude with
  depth), averaged over ``style_layers`` and reported at two scales of the
  style image: shorter side ``style_size`` of the run (jaxstyle's training
  scale) and the output's shorter side;
* content distance: ``mean((F_l(X) − F_l(C))²) / mean(F_l(C)²)`` averaged over
  ``content_layers``, against the photo at the output's size.

Lower is better on both; ``*_over_published`` ratios are jaxstyle / published
per pair, with medians over the pairs in ``summary``.
"""

from __future__ import annotations

import dataclasses
import os

from benchmarks.registry import register
from jaxstyle import config as cfglib

LENGSTROM_PAIRS = (
    "examples/results/chicago_wave.jpg=examples/content/chicago.jpg:hokusai_great_wave",
    "examples/results/chicago_udnie.jpg=examples/content/chicago.jpg:picabia_udnie",
    "examples/results/stata_udnie.jpg=examples/content/stata.jpg:picabia_udnie",
    "examples/results/chicago_the_scream.jpg=examples/content/chicago.jpg:munch_the_scream",
    "examples/results/chicago_wreck.jpg=examples/content/chicago.jpg:turner_shipwreck_of_the_minotaur",
)


@dataclasses.dataclass(frozen=True)
class Options:
  """The flags of ``benchmark.py stylizer_published``."""
  checkpoint: str = cfglib.setting("", "Run directory of train_stylizer.py (required).")
  published: str = cfglib.setting("", "Checkout of the published implementation's repository "
                                  "(required), e.g. lengstrom/fast-style-transfer.")
  pairs: tuple[str, ...] = cfglib.setting(
      LENGSTROM_PAIRS, "Comparisons 'result=content:style': the published output and its photo "
      "(paths under --published) and a style file stem of --styles_dir.")
  styles_dir: str = cfglib.setting("../shared/data/styles", "Folder of the style images.")
  style_layers: tuple[str, ...] = cfglib.setting(
      ("relu1_1", "relu1_2", "relu2_1", "relu2_2", "relu3_1", "relu3_2", "relu3_3", "relu3_4"),
      "ReLU taps of the style distance.")
  content_layers: tuple[str, ...] = cfglib.setting(("relu2_2", "relu3_4"),
                                                   "ReLU taps of the content distance.")
  network_side: int = cfglib.setting(
      0, "Shorter side at which jaxstyle stylizes the photo, its output then resized (Lanczos) to "
      "the published output's size, as a user does with stylize.py --size for larger strokes; 0: "
      "at the published size.", ge=0)
  figure: str = cfglib.setting("", "Also write a panel PNG here (content | published | jaxstyle per "
                               "pair), for internal viewing only: the published images are not ours "
                               "to redistribute.")


def _median(xs):
  import numpy as np  # pylint: disable=g-import-not-at-top
  return float(np.median(np.asarray(xs, np.float64)))


def parse_pair(text: str) -> tuple[str, str, str]:
  """``'result=content:style'`` -> (result, content, style); raises ConfigError."""
  from jaxstyle.errors import ConfigError  # pylint: disable=g-import-not-at-top

  result, sep, rest = text.partition("=")
  content, sep2, style = rest.rpartition(":")
  if not (sep and sep2 and result and content and style):
    raise ConfigError(f"--pairs: {text!r} is not 'result=content:style' (e.g. "
                      f"{LENGSTROM_PAIRS[0]!r})")
  return result, content, style


class _Scorer:
  """The independent VGG's distances (see the module docstring)."""

  def __init__(self, weights, style_layers, content_layers):
    import torch  # pylint: disable=g-import-not-at-top

    from peers import vgg as torch_vgg  # pylint: disable=g-import-not-at-top

    weights.check_layers(list(style_layers) + list(content_layers))
    self._torch, self._vgg = torch, torch_vgg
    self._features = torch_vgg.features_from_params(weights.params)
    self._convention = weights.preprocessing
    self.style_layers, self.content_layers = tuple(style_layers), tuple(content_layers)

  def feats(self, image):
    torch = self._torch
    x = torch.from_numpy(image.transpose(2, 0, 1)[None].copy()).float()
    with torch.no_grad():
      out = self._vgg.taps(self._features, self._vgg.preprocess(x, self._convention),
                           self.style_layers + self.content_layers)
    return {k: v[0].reshape(v.shape[1], -1).double() for k, v in out.items()}

  def grams(self, feats):
    return {k: (feats[k] @ feats[k].T) / feats[k].shape[1] for k in self.style_layers}

  def style(self, feats, style_grams) -> dict[str, float]:
    g = self.grams(feats)
    per = {k: float(((g[k] - style_grams[k]) ** 2).sum() / (style_grams[k] ** 2).sum()) for k in g}
    return {"total": sum(per.values()) / len(per), **per}

  def content(self, feats, content_feats) -> float:
    return sum(float(((feats[k] - content_feats[k]) ** 2).mean() / (content_feats[k] ** 2).mean())
               for k in self.content_layers) / len(self.content_layers)


@register("stylizer_published", help="trained stylizer vs a published feed-forward model's outputs",
          options=Options)
def run(options: Options) -> dict:
  """Scores jaxstyle's and the published outputs with an independent VGG; see the module docstring."""
  from jaxstyle import cpu_tuning  # pylint: disable=g-import-not-at-top

  cpu_tuning.use_fast_cpu_convs()
  from absl import logging  # pylint: disable=g-import-not-at-top

  logging.set_verbosity(logging.WARNING)  # Orbax logs every restore at INFO level
  import json  # pylint: disable=g-import-not-at-top

  import numpy as np  # pylint: disable=g-import-not-at-top

  from jaxstyle import images, inference  # pylint: disable=g-import-not-at-top
  from jaxstyle.errors import ConfigError  # pylint: disable=g-import-not-at-top

  if not options.checkpoint or not options.published:
    raise ConfigError("--checkpoint (a train_stylizer.py run) and --published (a checkout of the "
                      "published implementation) are both required")
  pairs = [parse_pair(p) for p in options.pairs]
  model = inference.load_stylizer(options.checkpoint)
  style_size = json.load(open(os.path.join(options.checkpoint, "config.json")))["config"]["style_size"]
  scorer = _Scorer(model.weights(), options.style_layers, options.content_layers)
  rows, panels = [], []
  for result, content_path, style in pairs:
    published = images.load_image(os.path.join(options.published, result))
    h, w = published.shape[:2]
    photo = images.resize(images.load_image(os.path.join(options.published, content_path)), (h, w))
    style_files = [f for f in os.listdir(options.styles_dir) if os.path.splitext(f)[0] == style]
    if not style_files:
      raise ConfigError(f"--pairs: no style {style!r} in {options.styles_dir}")
    style_path = os.path.join(options.styles_dir, style_files[0])
    if style in model.style_names:
      source, latent = "bank", model.bank_latent(style)
    else:
      source = "encoder"
      latent = np.asarray(model.encode_style(
          model.params, images.load_image(style_path, style_size, side="shorter")[None]))[0]
    small = photo if not options.network_side else images.resize(photo, options.network_side,
                                                                  side="shorter")
    ours = inference.stylize_image(model.config.generator, model.params["g"], small, latent)
    ours = ours if ours.shape == photo.shape else np.clip(images.resize(ours, (h, w)), 0, 1)
    cfeats = scorer.feats(photo)
    outputs = {"jaxstyle": scorer.feats(ours), "published": scorer.feats(published)}
    row = {"result": result, "content": content_path, "style": style, "latent": source,
           "size": [h, w]}
    for scale, side in (("train_scale", style_size), ("output_scale", min(h, w))):
      target = scorer.grams(scorer.feats(images.load_image(style_path, side, side="shorter")))
      for name, feats in outputs.items():
        d = scorer.style(feats, target)
        row[f"{name}_style_{scale}"] = d["total"]
        row[f"{name}_style_{scale}_per_layer"] = {k: v for k, v in d.items() if k != "total"}
      row[f"style_{scale}_over_published"] = (row[f"jaxstyle_style_{scale}"]
                                              / row[f"published_style_{scale}"])
    for name, feats in outputs.items():
      row[f"{name}_content"] = scorer.content(feats, cfeats)
    row["content_over_published"] = row["jaxstyle_content"] / row["published_content"]
    rows.append(row)
    print(json.dumps({k: v for k, v in row.items() if not k.endswith("per_layer")}), flush=True)
    if options.figure:
      panels.append(images.side_by_side([photo, published, ours], height=256))
  if options.figure:
    width = max(p.shape[1] for p in panels)
    images.save_image(options.figure, np.concatenate(
        [images.resize(p, (round(p.shape[0] * width / p.shape[1]), width)) for p in panels]))
  summary = {}
  for key in ("style_train_scale_over_published", "style_output_scale_over_published",
              "content_over_published"):
    summary[f"{key}_median"] = _median([r[key] for r in rows])
    bank = [r[key] for r in rows if r["latent"] == "bank"]
    if bank:
      summary[f"{key}_median_bank"] = _median(bank)
  summary["pairs_better_on_both"] = sum(
      r["style_output_scale_over_published"] < 1 and r["content_over_published"] < 1 for r in rows)
  return {"rows": rows, "summary": summary, "checkpoint": os.path.abspath(options.checkpoint),
          "step": model.step, "published": os.path.abspath(options.published)}
