"""Benchmark: the style/content trade-off of Gatys optimisation over the style weight β and steps.

  python experiments/benchmark.py stylize_tradeoff [--pairs chelsea:starry_night,...] [--size 160]
      [--betas 1e-4,3e-4,1e-3,3e-3,1e-2,3e-2,1e-1] [--steps 100,150,300] [--seed 0]
      [--figure outputs.png] [--curve curve.png] [--out results.json]

For each ``content:style`` pair (photo × painting, both centre crops of
``size``², ``jaxstyle.data.center_crop_file``) and each ``β`` of ``betas``,
``optimize.stylize`` runs ``max(steps)`` Adam steps with every other setting
at its ``StylizeConfig`` default (α = 1, γ = 0, lr 0.05, content init, the
default layers: style relu1_1, relu2_1, relu3_1; content relu3_2) and the
real partial Keras/Caffe VGG-19 weights. Two distances, unweighted loss parts
of ``optimize.evaluate`` (the optimisation's own loss):

* ``style_reduction`` = style loss of the photo itself / style loss of the
  output: how many times closer to the painting's Gram matrices the output is
  than the photo was (1 = no stylisation; the painting itself is at ∞);
* ``content_ratio`` = content loss of the output / content loss of the
  painting itself, both against the photo: 0 = the photo's content unchanged,
  1 = as far from the photo's relu3_2 features as the painting is.

Shorter runs come from the same optimisation: Adam with a constant rate has
no schedule, so the first ``s`` steps of a longer run are an ``s``-step run;
the image after ``s`` updates is the one history row ``s`` (step ``s + 1``)
scores, before its update. The longest run is scored with ``evaluate`` on the
returned image. ``summary``: per (β, steps), the median and quartiles of both
numbers over the pairs. ``compile_s`` (one per β, a 1-step run first) is
apart from ``run_s`` (each whole optimisation).

``--figure``: a contact sheet (rows = the first ``figure_pairs`` pairs;
columns = photo, painting, the output at each β after ``figure_steps``
steps, each labelled with its two numbers). ``--curve``: style reduction
(log) against content ratio, medians with quartile bars, one line per steps
value, points labelled with β. The default pairs use only content/ and
styles/ images (public domain), so both figures may be published.
"""

from __future__ import annotations

import dataclasses
import os
import sys
import time

from benchmarks import registry
from benchmarks.registry import each_at_least, register
from jaxstyle import config as cfglib

DEFAULT_PAIRS = ("chelsea:starry_night", "astronaut:great_wave", "coffee:udnie",
                 "rocket:the_scream", "camera:kandinsky_composition_vii",
                 "coins:matisse_woman_with_a_hat")
DEFAULT_BETAS = (1e-4, 3e-4, 1e-3, 3e-3, 1e-2, 3e-2, 1e-1)
_IMAGE_EXTENSIONS = (".png", ".jpg", ".jpeg")



def _betas_check(values: tuple[float, ...]) -> str | None:
  if not values or min(values) <= 0:
    return "needs at least one β, each > 0"
  return None


@dataclasses.dataclass(frozen=True)
class Options:
  """The flags of ``benchmark.py stylize_tradeoff``."""
  pairs: tuple[str, ...] = cfglib.setting(
      DEFAULT_PAIRS, "content:style pairs, comma-separated: paths, file names in "
      "<data_dir>/content and <data_dir>/styles, or a name that is a file's stem or its end "
      "after an underscore (chelsea = skimage_chelsea.png, the_scream = munch_the_scream.jpg).",
      check=registry.content_style_pairs)
  data_dir: str | None = cfglib.setting(None, "Shared data folder (default: ../shared/data beside "
                                        "the repository, or $JAXSTYLE_SHARED_DATA).")
  vgg_weights: str | None = cfglib.setting(None, "Path of the partial VGG-19 weights (default: "
                                           "<data_dir>/vgg19/…PARTIAL.npz).")
  size: int = cfglib.setting(160, "Side of the centre crops of photo and painting (the output "
                             "size).", ge=32)
  betas: tuple[float, ...] = cfglib.setting(DEFAULT_BETAS, "Style weights β to measure, "
                                            "comma-separated.", check=_betas_check)
  steps: tuple[int, ...] = cfglib.setting((100, 150, 300), "Step counts to score, comma-separated "
                                          "(one run of the largest per pair and β).",
                                          check=each_at_least(1, "step count"))
  seed: int = cfglib.setting(0, "Seed of the PRNG key given to stylize (the content init draws "
                             "no random numbers, so runs are deterministic anyway).")
  figure: str = cfglib.setting("", "Write the contact sheet PNG here (empty: none).")
  figure_pairs: int = cfglib.setting(2, "Rows of the contact sheet: the first pairs.", ge=1)
  figure_steps: int = cfglib.setting(0, "Steps of the contact sheet's outputs (0: the largest of "
                                     "--steps; another value runs its pairs again).", ge=0)
  curve: str = cfglib.setting("", "Write the trade-off curve PNG here (empty: none).")



def resolve(name: str, folder: str) -> str:
  """A path, a file of ``folder``, or the one image of ``folder`` whose stem is or ends in ``_name``."""
  if os.path.isfile(name):
    return name
  if os.path.isfile(os.path.join(folder, name)):
    return os.path.join(folder, name)
  files = sorted(f for f in os.listdir(folder) if f.lower().endswith(_IMAGE_EXTENSIONS)) \
      if os.path.isdir(folder) else []
  stems = {f: os.path.splitext(f)[0] for f in files}
  hits = [f for f, s in stems.items() if s == name] or \
         [f for f, s in stems.items() if s.endswith("_" + name)]
  if len(hits) != 1:
    why = f"matches {', '.join(hits)}" if hits else "matches no file"
    raise FileNotFoundError(f"image {name!r} is not a path and {why} of {folder}")
  return os.path.join(folder, hits[0])


def beta_label(beta: float) -> str:
  """1e-3 -> '1e-3', 3e-4 -> '3e-4', 0.5 -> '0.5'."""
  mantissa, exponent = f"{beta:.3e}".split("e")
  mantissa = mantissa.rstrip("0").rstrip(".")
  return f"{mantissa}e{int(exponent)}" if int(exponent) < -1 else f"{beta:g}"


def _quartiles(xs) -> dict:
  import numpy as np  # pylint: disable=g-import-not-at-top
  q = np.percentile(np.asarray(xs, np.float64), [25, 50, 75])
  return {"q25": float(q[0]), "median": float(q[1]), "q75": float(q[2])}


def summarize(runs: list[dict], betas, steps) -> list[dict]:
  """Per (β, steps): medians and quartiles over the pairs of both numbers."""
  out = []
  for s in steps:
    for b in betas:
      rows = [r for r in runs if r["beta"] == b and r["steps"] == s]
      red, cr = _quartiles([r["style_reduction"] for r in rows]), _quartiles(
          [r["content_ratio"] for r in rows])
      out.append({"beta": b, "steps": s, "pairs": len(rows),
                  "style_reduction_median": red["median"], "style_reduction_q25": red["q25"],
                  "style_reduction_q75": red["q75"], "content_ratio_median": cr["median"],
                  "content_ratio_q25": cr["q25"], "content_ratio_q75": cr["q75"]})
  return out


@register("stylize_tradeoff", help="Gatys style/content trade-off over β and steps (real VGG, "
          "photo x painting pairs)", options=Options)
def run(options: Options) -> dict:
  """Measures the trade-off curve; see the module docstring."""
  o = options
  import jax  # pylint: disable=g-import-not-at-top
  import numpy as np  # pylint: disable=g-import-not-at-top

  from jaxstyle import data, optimize, vgg  # pylint: disable=g-import-not-at-top

  root = registry.shared_data_dir(o.data_dir)
  weights = vgg.load_weights(o.vgg_weights or os.path.join(
      root, "vgg19", "vgg19_imagenet_keras_conv1_1-conv3_4_PARTIAL.npz"))
  steps = tuple(sorted(set(o.steps)))
  longest = steps[-1]
  base = optimize.StylizeConfig(steps=longest)
  key = jax.random.PRNGKey(o.seed)
  pairs = []
  for text in o.pairs:
    c, s = text.split(":")
    cpath, spath = resolve(c, os.path.join(root, "content")), resolve(s, os.path.join(root, "styles"))
    photo, painting = data.center_crop_file(cpath, o.size), data.center_crop_file(spath, o.size)
    pairs.append({"pair": text, "content": os.path.basename(cpath), "style": os.path.basename(spath),
                  "photo": photo, "painting": painting,
                  # The two references: the photo's own style loss, the painting's content loss.
                  "photo_style": optimize.evaluate(weights, photo, photo, [painting],
                                                   config=base)["style"],
                  "painting_content": optimize.evaluate(weights, painting, photo, [painting],
                                                        config=base)["content"]})

  def score(pair, parts, beta, s, run_s=None):
    row = {"pair": pair["pair"], "beta": beta, "steps": s, "style": parts["style"],
           "content": parts["content"],
           "style_reduction": pair["photo_style"] / max(parts["style"], 1e-30),
           "content_ratio": parts["content"] / pair["painting_content"]}
    if run_s is not None:
      row["run_s"] = run_s
    return row

  runs, compile_s, sheet = [], {}, {}
  figure_steps = o.figure_steps or longest
  for beta in o.betas:
    cfg = base.replace(beta=beta)
    t0 = time.perf_counter()
    optimize.stylize(weights, pairs[0]["photo"], [pairs[0]["painting"]], None,
                     cfg.replace(steps=1), key)  # compiles this β's step, untimed
    compile_s[beta_label(beta)] = time.perf_counter() - t0
    for i, pair in enumerate(pairs):
      t0 = time.perf_counter()
      res = optimize.stylize(weights, pair["photo"], [pair["painting"]], None, cfg, key)
      run_s = time.perf_counter() - t0
      final = optimize.evaluate(weights, res.image, pair["photo"], [pair["painting"]], config=base)
      for s in steps:
        # History row s is step s + 1's loss of the image after s updates (see the docstring).
        parts = final if s == longest else res.history[s]
        runs.append(score(pair, parts, beta, s, run_s if s == longest else None))
      if o.figure and i < o.figure_pairs:
        image = res.image
        if figure_steps != longest:
          image = optimize.stylize(weights, pair["photo"], [pair["painting"]], None,
                                   cfg.replace(steps=figure_steps), key).image
        parts = optimize.evaluate(weights, image, pair["photo"], [pair["painting"]], config=base)
        sheet[(i, beta)] = (image, score(pair, parts, beta, figure_steps))
      print({k: (round(v, 4) if isinstance(v, float) else v) for k, v in runs[-1].items()},
            file=sys.stderr, flush=True)

  summary = summarize(runs, o.betas, steps)
  out = {"weights_source": weights.source,
         "stylize_config": {k: v for k, v in cfglib.to_dict(base).items()
                            if k not in ("beta", "steps")},  # the rest, β and steps vary
         "layers": {"content": dict(base.content_layers), "style": dict(base.style_layers)},
         "size": o.size, "steps": list(steps), "betas": list(o.betas), "seed": o.seed,
         "pairs": [{k: p[k] for k in ("pair", "content", "style", "photo_style", "painting_content")}
                   for p in pairs],
         "runs": runs, "summary": summary, "compile_s": compile_s,
         "s_per_step_median": float(np.median([r["run_s"] for r in runs if "run_s" in r]) / longest)}
  if o.figure:
    write_sheet(o.figure, pairs[:o.figure_pairs], o.betas, sheet, figure_steps)
    out["figure"] = {"path": o.figure, "pairs": [p["pair"] for p in pairs[:o.figure_pairs]],
                     "steps": figure_steps}
  if o.curve:
    write_curve(o.curve, summary, o.betas, steps, o.size, len(pairs))
    out["curve"] = {"path": o.curve}
  return out


# ----------------------------------------------------------------------------
# Figures (matplotlib's Agg renderer; no timestamps in the files).


def _save(fig, path: str) -> None:
  os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
  fig.savefig(path, format="png", dpi=100, bbox_inches="tight", pad_inches=0.05,
              metadata={"Software": None})


def _figure(**kwargs):
  import matplotlib  # pylint: disable=g-import-not-at-top
  matplotlib.use("Agg")
  from matplotlib.figure import Figure  # pylint: disable=g-import-not-at-top
  return Figure(**kwargs)


def _times(x: float) -> str:
  return f"{x:.0f}" if x >= 100 else f"{x:.3g}"


def write_sheet(path: str, pairs: list[dict], betas, sheet: dict, steps: int) -> None:
  """Rows = pairs; columns = photo, painting, output per β (``jaxstyle.images.make_grid``)."""
  from jaxstyle import images  # pylint: disable=g-import-not-at-top

  pad, cols = 2, 2 + len(betas)
  tiles = []
  for i, pair in enumerate(pairs):
    tiles += [pair["photo"], pair["painting"]] + [sheet[(i, b)][0] for b in betas]
  grid = images.make_grid(tiles, nrow=cols, pad=pad)
  tile = pairs[0]["photo"].shape[0]
  fig = _figure(figsize=(grid.shape[1] / 100, grid.shape[0] / 100))
  ax = fig.add_axes((0, 0, 1, 1))
  ax.imshow(grid, interpolation="nearest")
  centre = lambda k: pad + k * (tile + pad) + tile / 2
  ax.xaxis.tick_top()
  ax.set_xticks([centre(k) for k in range(cols)],
                ["photo", "painting"] + [f"β = {beta_label(b)}" for b in betas], fontsize=9)
  ax.set_yticks([centre(k) for k in range(len(pairs))],
                [f"{p['pair'].split(':')[0]}\n× {p['pair'].split(':')[1]}" for p in pairs],
                fontsize=8, ha="right", va="center")
  ax.tick_params(length=0)
  for spine in ax.spines.values():
    spine.set_visible(False)
  for i in range(len(pairs)):
    for k, b in enumerate(betas):
      row = sheet[(i, b)][1]
      ax.text(pad + (k + 2) * (tile + pad) + 3, pad + (i + 1) * (tile + pad) - pad - 4,
              f"style ÷{_times(row['style_reduction'])}\ncontent {row['content_ratio']:.2f}",
              fontsize=6.5, va="bottom", ha="left",
              bbox={"facecolor": "white", "alpha": 0.75, "pad": 1.2, "linewidth": 0})
  ax.set_xlabel(f"Gatys outputs after {steps} Adam steps, {tile} px centre crops; "
                "style ÷ = style distance reduction, content = content distance ratio",
                fontsize=8)
  _save(fig, path)


def write_curve(path: str, summary: list[dict], betas, steps, size: int, n_pairs: int) -> None:
  """Style reduction (log) against content ratio; medians and quartile bars; one line per steps."""
  fig = _figure(figsize=(7.0, 5.0), layout="constrained")
  ax = fig.add_subplot()
  for j, s in enumerate(steps):
    rows = [r for r in summary if r["steps"] == s]
    x = [r["content_ratio_median"] for r in rows]
    y = [r["style_reduction_median"] for r in rows]
    xerr = [[r["content_ratio_median"] - r["content_ratio_q25"] for r in rows],
            [r["content_ratio_q75"] - r["content_ratio_median"] for r in rows]]
    yerr = [[r["style_reduction_median"] - r["style_reduction_q25"] for r in rows],
            [r["style_reduction_q75"] - r["style_reduction_median"] for r in rows]]
    ax.errorbar(x, y, xerr=xerr, yerr=yerr, marker="o", ms=5, capsize=2, lw=1.6, elinewidth=0.8,
                label=f"{s} steps", color=f"C{j}")
    for r in rows if s == steps[-1] else ():  # the other lines' points are the same βs, in order
      ax.annotate(f"β = {beta_label(r['beta'])}", (r["content_ratio_median"],
                                                    r["style_reduction_median"]),
                  textcoords="offset points", xytext=(-8, 7), ha="right", fontsize=8,
                  color=f"C{j}")
  from matplotlib import ticker  # pylint: disable=g-import-not-at-top
  ax.set_yscale("log")
  ax.yaxis.set_major_formatter(ticker.LogFormatter())
  ax.yaxis.set_minor_formatter(ticker.LogFormatter(labelOnlyBase=False, minor_thresholds=(2, 0.5)))
  ax.set_xlim(left=0)
  ax.set_xlabel("content distance ratio (output's content loss / the painting's; 0 = the photo)")
  ax.set_ylabel("style distance reduction\n(photo's style loss / output's, ×)")
  ax.set_title(f"Gatys style/content trade-off over β: median of {n_pairs} photo × painting "
               f"pairs, {size} px\n(bars: quartiles over the pairs; β labels on the {steps[-1]}-step "
               "line, the others' points are the same βs in order)", fontsize=9)
  ax.grid(alpha=0.3, which="both")
  ax.legend(loc="lower right")
  _save(fig, path)
