"""Benchmark: a trained stylizer's losses and speed against Gatys optimisation, on held-out photos.

  python experiments/benchmark.py stylizer_quality --checkpoint runs/stylizer_quick \
      [--photos 2] [--size 256] [--gatys_steps 300] [--unseen ../shared/data/paintings/paintings.csv \
      --unseen_count 10] [--out results.json]

For each of the first ``photos`` held-out photos (the run's ``eval_dir``,
centre crops of ``size``²) and each bank style (the run's style images at
its ``style_size``, as in training):

* the network's output with the bank latent and with the encoder's latent of
  the style image, and ``gatys_steps`` Adam steps of ``jaxstyle.optimize``
  (the run's content and style layers and weights α, β, γ; content init; the
  style image at the same size, so both have the same Gram targets);
* all three scored by one function (``jaxstyle.train.stylizer.make_scorer``):
  content and style loss per image in the training units;
* wall time per image: the network's (after compilation; median of
  ``repeats``) and Gatys' (its whole optimisation, compilation excluded by a
  first, untimed run).

Ratios are over medians: network style / Gatys style (the goal: <= 1.5 for
bank styles), Gatys time / network time (the goal: >= 100). With ``unseen``
(a style source: folder, files or CSV), the first ``unseen_count`` of its
styles that are not bank styles go through the encoder (and Gatys) on the
first ``unseen_photos`` photos (styles the run's encoder trained on, its
``--encoder_styles``, are skipped too), and
``unseen_over_train_style`` is the encoder's median style loss on them over
its median on the bank styles on the same photos (the goal: <= 2), and
``*_remaining_median`` the medians of the encoder's style loss over the photo's
own (the share of the style distance left: unlike the raw ratio, not swayed by
unseen paintings that are simply closer to photos than the bank's).
"""

from __future__ import annotations

import dataclasses
import json
import os
import time

from benchmarks.registry import register
from jaxstyle import config as cfglib


@dataclasses.dataclass(frozen=True)
class Options:
  """The flags of ``benchmark.py stylizer_quality``."""
  checkpoint: str = cfglib.setting("", "Run directory of train_stylizer.py (required).")
  photos: int = cfglib.setting(2, "Held-out photos (the first ones of the run's eval_dir).", gt=0)
  size: int = cfglib.setting(256, "Side of the photos' centre crops.", ge=32)
  gatys_steps: int = cfglib.setting(300, "Adam steps of the Gatys reference.", gt=0)
  repeats: int = cfglib.setting(5, "Timed repeats of the network (median).", ge=1)
  unseen: str = cfglib.setting("", "Style source for unseen styles (folder, file or CSV); empty: "
                               "skip.")
  unseen_count: int = cfglib.setting(10, "Unseen styles to use (the first ones not in the bank).",
                                     ge=1)
  unseen_photos: int = cfglib.setting(1, "Held-out photos per unseen style (the first ones).", gt=0)
  unseen_gatys: bool = cfglib.setting(True, "Also run Gatys on the unseen pairs (each run costs "
                                      "as much as a bank pair).")
  bank_gatys: bool = cfglib.setting(True, "Run Gatys on the bank pairs (false: the network's "
                                    "losses only, e.g. to compare two runs quickly).")
  figure: str = cfglib.setting("", "Also write a panel PNG here: one row per --figure_photos x "
                               "--figure_styles pair, content | style | Gatys | network.")
  figure_photos: tuple[str, ...] = cfglib.setting(
      ("../shared/data/content/skimage_chelsea.png", "../shared/data/content/skimage_astronaut.png"),
      "Photos of the panel (public-domain or CC0 ones for figures that are published).")
  strength_figure: str = cfglib.setting(
      "", "Also write a strip PNG here: the first --figure_photos photo, then the network at strength "
      "0, 1/4, 1/2, 3/4, 1 of the first --figure_styles style.")
  compare: str = cfglib.setting("", "Another run directory (e.g. the same recipe with the "
                                "discriminator on) for --compare_figure.")
  compare_figure: str = cfglib.setting(
      "", "Also write a panel PNG here: per --figure_photos x --figure_styles pair, photo | this run | "
      "the --compare run, both with their bank latents.")
  figure_styles: tuple[str, ...] = cfglib.setting(
      ("vangogh_starry_night", "hokusai_great_wave"), "Bank styles of the panel.")


def _median(xs):
  import numpy as np  # pylint: disable=g-import-not-at-top
  return float(np.median(np.asarray(xs, np.float64)))


@register("stylizer_quality", help="trained stylizer vs Gatys: losses and time per image",
          options=Options)
def run(options: Options) -> dict:
  """Scores the network and Gatys on held-out photos; see the module docstring."""
  from jaxstyle import cpu_tuning  # pylint: disable=g-import-not-at-top

  cpu_tuning.use_fast_cpu_convs()
  from absl import logging  # pylint: disable=g-import-not-at-top

  logging.set_verbosity(logging.WARNING)  # Orbax logs every restore at INFO level
  import jax  # pylint: disable=g-import-not-at-top
  import jax.numpy as jnp  # pylint: disable=g-import-not-at-top
  import numpy as np  # pylint: disable=g-import-not-at-top

  from jaxstyle import data, images, inference, optimize, train  # pylint: disable=g-import-not-at-top
  from jaxstyle.errors import ConfigError  # pylint: disable=g-import-not-at-top

  if not options.checkpoint:
    raise ConfigError("--checkpoint is required: the run directory of train_stylizer.py")
  model = inference.load_stylizer(options.checkpoint)
  record = json.load(open(os.path.join(options.checkpoint, "config.json")))
  run_cfg = record["config"]
  cfg = model.config
  weights = model.weights()
  photos, skipped = data.center_crops(run_cfg["eval_dir"], options.photos, options.size)
  bad = {p for p, _ in skipped}
  paths = [p for p in data.list_images(run_cfg["eval_dir"]) if p not in bad][:len(photos)]
  _, bank_styles = data.load_styles(record["style_files"], run_cfg["style_size"], square=True)
  scorer = train.make_scorer(cfg, weights)
  gatys_cfg = optimize.StylizeConfig(content_layers=cfg.content_layers, style_layers=cfg.style_layers,
                                     alpha=cfg.content_weight, beta=cfg.style_weight,
                                     gamma=cfg.tv_weight, steps=options.gatys_steps, init="content",
                                     normalization=cfg.normalization)

  def score(x, content, style):
    g = train.style_grams(cfg, weights, style[None])
    out = scorer(jnp.asarray(x)[None], jnp.asarray(content)[None], g)
    return {k: float(v[0]) for k, v in out.items() if k in ("content", "style")}

  def timed_network(photo, z):
    y = model(model.params, photo[None], z)
    jax.block_until_ready(y)
    ts = []
    for _ in range(options.repeats):
      t0 = time.perf_counter()
      y = model(model.params, photo[None], z)
      jax.block_until_ready(y)
      ts.append(time.perf_counter() - t0)
    return np.asarray(y[0]), _median(ts)

  def timed_gatys(photo, style):
    t0 = time.perf_counter()
    res = optimize.stylize(weights, photo, [style], None, gatys_cfg, jax.random.key(0))
    return res.image, time.perf_counter() - t0

  if options.bank_gatys or options.unseen_gatys or options.figure:
    optimize.stylize(weights, photos[0], [bank_styles[0]], None,
                     gatys_cfg.replace(steps=2), jax.random.key(0))  # compile, untimed

  rows = []

  def evaluate(kind, name, style, latents, count=None, gatys=True):
    for i, photo in enumerate(photos[:count]):
      row = {"kind": kind, "style": name, "photo": os.path.basename(paths[i])}
      for source, z in latents.items():
        y, t = timed_network(photo, z)
        row.update({f"{source}_{k}": v for k, v in score(y, photo, style).items()})
        row[f"{source}_time_s"] = t
      if gatys:
        g, t = timed_gatys(photo, style)
        row.update({f"gatys_{k}": v for k, v in score(g, photo, style).items()})
        row["gatys_time_s"] = t
      row.update({f"photo_{k}": v for k, v in score(photo, photo, style).items()})
      rows.append(row)
      print(json.dumps(row), flush=True)

  for k, name in enumerate(model.style_names):
    lat = {"bank": model.bank_latent(name)[None]} if "bank" in model.params else {}
    if "encoder" in model.params:
      lat["encoder"] = np.asarray(model.encode_style(model.params, bank_styles[k][None]))
    evaluate("bank", name, bank_styles[k], lat, gatys=options.bank_gatys)
  if options.unseen and "encoder" in model.params:
    seen = {os.path.abspath(p) for p in record.get("encoder_style_files", [])}
    files = [p for p in data.style_files(options.unseen)
             if os.path.splitext(os.path.basename(p))[0] not in model.style_names
             and os.path.abspath(p) not in seen][:options.unseen_count]
    names, unseen = data.load_styles(files, run_cfg["style_size"], square=True)
    for name, style in zip(names, unseen):
      evaluate("unseen", name, style,
               {"encoder": np.asarray(model.encode_style(model.params, style[None]))},
               count=options.unseen_photos, gatys=options.unseen_gatys)

  if options.figure:
    panel_rows = []
    for p in options.figure_photos:
      photo = data.center_crop_file(p, options.size)
      for name in options.figure_styles:
        style = bank_styles[model.style_names.index(name)]
        net, _ = timed_network(photo, model.bank_latent(name)[None])
        gatys, _ = timed_gatys(photo, style)
        panel_rows.append(images.side_by_side([photo, style, gatys, net], height=options.size))
    images.save_image(options.figure, np.concatenate(panel_rows, axis=0))

  if options.strength_figure:
    from jaxstyle.nets import style_encoder as se  # pylint: disable=g-import-not-at-top

    photo = data.center_crop_file(options.figure_photos[0], options.size)
    z = model.bank_latent(options.figure_styles[0])[None]
    strip = [photo] + [timed_network(photo, se.with_strength(z, t))[0] for t in (0, .25, .5, .75, 1)]
    images.save_image(options.strength_figure, images.side_by_side(strip, height=options.size))

  if options.compare_figure:
    other = inference.load_stylizer(options.compare)
    panel_rows = []
    for p in options.figure_photos:
      photo = data.center_crop_file(p, options.size)
      for name in options.figure_styles:
        outs = [np.asarray(m(m.params, photo[None], m.bank_latent(name)[None]))[0] for m in (model, other)]
        panel_rows.append(images.side_by_side([photo] + outs, height=options.size))
    images.save_image(options.compare_figure, np.concatenate(panel_rows, axis=0))

  bank = [r for r in rows if r["kind"] == "bank"]
  unseen_rows = [r for r in rows if r["kind"] == "unseen"]
  out = {"rows": rows, "checkpoint": os.path.abspath(options.checkpoint), "step": model.step,
         "photos": [os.path.basename(p) for p in paths]}
  summary = {}
  for source in ("bank", "encoder"):
    if bank and f"{source}_style" in bank[0]:
      summary[f"{source}_style_median"] = _median([r[f"{source}_style"] for r in bank])
      summary[f"{source}_content_median"] = _median([r[f"{source}_content"] for r in bank])
      summary[f"{source}_time_s_median"] = _median([r[f"{source}_time_s"] for r in bank])
      if options.bank_gatys:
        summary[f"{source}_over_gatys_style"] = _median(
            [r[f"{source}_style"] / r["gatys_style"] for r in bank])
  summary["photo_style_median"] = _median([r["photo_style"] for r in bank])
  if options.bank_gatys:
    summary["gatys_style_median"] = _median([r["gatys_style"] for r in bank])
    summary["gatys_content_median"] = _median([r["gatys_content"] for r in bank])
    summary["gatys_time_s_median"] = _median([r["gatys_time_s"] for r in bank])
    summary["gatys_over_network_time"] = (summary["gatys_time_s_median"]
                                          / summary["bank_time_s_median"])
  if unseen_rows:
    summary["unseen_encoder_style_median"] = _median([r["encoder_style"] for r in unseen_rows])
    summary["unseen_encoder_content_median"] = _median([r["encoder_content"] for r in unseen_rows])
    if options.unseen_gatys:
      summary["unseen_gatys_style_median"] = _median([r["gatys_style"] for r in unseen_rows])
      summary["unseen_encoder_over_gatys_style"] = _median(
          [r["encoder_style"] / r["gatys_style"] for r in unseen_rows])
    # Style distance left, relative to the photo's own: comparable between easy and hard styles.
    summary["unseen_encoder_remaining_median"] = _median(
        [r["encoder_style"] / r["photo_style"] for r in unseen_rows])
    summary["train_encoder_remaining_median"] = _median(
        [r["encoder_style"] / r["photo_style"] for r in bank])
    same_photos = {r["photo"] for r in unseen_rows}
    summary["train_encoder_style_median_same_photos"] = _median(
        [r["encoder_style"] for r in bank if r["photo"] in same_photos])
    summary["unseen_over_train_style"] = (summary["unseen_encoder_style_median"]
                                          / summary["train_encoder_style_median_same_photos"])
  out["summary"] = summary
  return out
