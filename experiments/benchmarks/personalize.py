"""Benchmark: personalization with simulated users, and learning from liked images.

  python experiments/benchmark.py personalize --checkpoint runs/stylizer_quick \
      [--pairs 10 --seeds 3 --rounds 20 --k 4] [--figure curves.png] [--out results.json]
  # choosing the preference model's settings, on development users only:
  python experiments/benchmark.py personalize --checkpoint runs/stylizer_quick --users dev \
      --parts simulated --gp lengthscale=2.0,estimate_from=shown --out dev.json

Simulated users (``jaxstyle.personalize.simulate``): each of ``pairs``
(target, photo) pairs takes as its hidden target the encoder latent of one of
the run's held-out paintings (``config.json``'s ``unseen_style_files``, never
seen in training) and as its photo one of the run's held-out photos
(``eval_dir``, centre crops of ``size``²), cycling. The style space is fitted
on the run's other paintings and bank styles only (the targets stay held
out). Every session starts at the space's origin (the collection's mean
style) and runs ``rounds`` rounds of ``k`` candidates, for each strategy
(``gp``: jaxstyle's preference model; ``random``; ``follow_winner``), each
user (``noiseless``; ``noisy``: Luce draws with τ calibrated so that
``noisy_best_rate`` of the picks of the noiseless ``gp`` sessions' rounds
would be the best) and ``seeds`` seeds. The measure after each round is the
style distance of the estimate's output to the target's output on the photo,
relative to the start's; results hold per-round medians and quartiles over
pairs × seeds, every session's curve, the goals' checks, the floor (the
target projected into the space) and the realised best-pick rates.
``--users dev`` replaces the held-out pairs with *development* users: targets
spread over the paintings the encoder trained on (left out of the style space
too) and the run's training photos, so that settings (``--gp``: preference
model overrides) are chosen without looking at the held-out pairs.

With ``liked_collections`` > 0, learning from liked images is measured too:
the paintings of each of the first such artists with >= ``liked_min``
paintings form a collection; method (a) (encoder mean) and (b) (Gram fit on
``liked_photos`` training photos, the run's ``content_dir``) are scored by
the style loss of their outputs on held-out photos against the collection's
pooled Grams.

``crops_paintings`` > 0 (part ``crops``): for each held-out painting,
``crops`` random crops are the liked images; the profile learnt from them is
compared, by the style loss of outputs on held-out photos against the whole
painting, with the best bank style and with the encoder latent of the whole
painting (the issue's targets: below the former, within 1.25x of the latter).
"""

from __future__ import annotations

import csv
import dataclasses
import json
import os
import time

from benchmarks.registry import register
from jaxstyle import config as cfglib


@dataclasses.dataclass(frozen=True)
class Options:
  """The flags of ``benchmark.py personalize``."""
  checkpoint: str = cfglib.setting("", "Run directory of train_stylizer.py (required).")
  pairs: int = cfglib.setting(10, "(target, photo) pairs: held-out paintings x held-out photos.",
                              gt=0)
  seeds: int = cfglib.setting(3, "Seeds per pair and strategy.", gt=0)
  rounds: int = cfglib.setting(20, "Rounds per session.", gt=0)
  k: int = cfglib.setting(4, "Candidates per round.", ge=2)
  size: int = cfglib.setting(128, "Side of the photos' centre crops.", ge=32)
  photos: int = cfglib.setting(4, "Held-out photos used (cycled over the pairs).", gt=0)
  space_dims: int = cfglib.setting(8, "Style-space dimensions.", gt=0)
  strategies: tuple[str, ...] = cfglib.setting(("gp", "random", "follow_winner"),
                                               "Strategies to run.")
  noisy_best_rate: float = cfglib.setting(0.8, "The noisy user's share of best picks (tunes τ).",
                                          gt=0, lt=1)
  seed: int = cfglib.setting(0, "Base seed (session keys fold pair and seed into it).")
  figure: str = cfglib.setting("", "Write the curves (median and quartiles) as a PNG here.")
  liked_collections: int = cfglib.setting(6, "Artist collections for the from-images comparison "
                                          "(0: skip it).", ge=0)
  liked_min: int = cfglib.setting(5, "Paintings an artist needs to form a collection.", ge=3)
  liked_photos: int = cfglib.setting(4, "Training photos the Gram fit uses (and held-out photos "
                                     "it is scored on).", gt=0)
  liked_steps: int = cfglib.setting(150, "Gram-fit steps.", ge=0)
  crops_paintings: int = cfglib.setting(10, "Held-out paintings for the crops test (0: skip it).",
                                        ge=0)
  crops: int = cfglib.setting(5, "Random crops per painting (the liked images).", ge=3)
  users: str = cfglib.setting(
      "heldout", "Simulated users' targets: heldout (the run's held-out paintings and photos: the "
      "measurement) or dev (training paintings and training photos: for choosing settings, so "
      "the held-out pairs never steer a choice).", choices=("heldout", "dev"))
  gp: str = cfglib.setting("", "Preference-model settings that differ from the defaults, e.g. "
                           "lengthscale=2.0,signal=4 (PreferenceConfig fields).")
  parts: tuple[str, ...] = cfglib.setting(("simulated", "liked", "crops"),
                                          "Parts to run: simulated (users), liked (artist "
                                          "collections), crops (crops of held-out paintings).")


def _quartiles(curves):
  import numpy as np  # pylint: disable=g-import-not-at-top

  a = np.asarray(curves, np.float64)
  q = np.percentile(a, [25, 50, 75], axis=0)
  return {"q25": q[0].tolist(), "median": q[1].tolist(), "q75": q[2].tolist()}


def strategy_name(strategy: str, settings: dict) -> str:
  """How the plot, tables and report name a strategy; ``settings`` is a record's ``gp`` dict
  (``cfglib.to_dict`` of a ``PreferenceConfig``; records from before the ideal-point model have no
  ``utility`` and mean the GP)."""
  if strategy != "gp":
    return {"random": "random picks", "follow_winner": "follow the winner"}.get(strategy, strategy)
  if settings.get("utility", "gp") == "ideal":
    return "jaxstyle (ideal point + Luce, Thompson)"
  acquisition = "EI" if settings.get("acquisition", "ei") == "ei" else "Thompson"
  return f"jaxstyle (GP + Luce, {acquisition})"


def _plot(path, summary, rounds, settings):
  import matplotlib  # pylint: disable=g-import-not-at-top

  matplotlib.use("Agg")
  import matplotlib.pyplot as plt  # pylint: disable=g-import-not-at-top

  fig, axes = plt.subplots(1, 2, figsize=(11, 4.2), sharey=True)
  colors = {"gp": "tab:blue", "random": "tab:gray", "follow_winner": "tab:orange"}
  x = list(range(rounds + 1))
  for ax, user in zip(axes, ("noiseless", "noisy")):
    for strat, by_user in summary.items():
      s = by_user[user]
      ax.plot(x, s["median"], color=colors.get(strat), label=strategy_name(strat, settings),
              lw=2)
      ax.fill_between(x, s["q25"], s["q75"], color=colors.get(strat), alpha=0.18)
    ax.axhline(0.5, color="k", lw=0.6, ls=":")
    ax.axhline(0.25, color="k", lw=0.6, ls=":")
    ax.set_title(f"{user} simulated user")
    ax.set_xlabel("round")
    ax.set_yscale("log")
    ax.grid(alpha=0.3)
  axes[0].set_ylabel("style distance to the hidden target\n(relative to the start)")
  axes[0].legend(loc="lower left")
  fig.tight_layout()
  os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
  fig.savefig(path, dpi=110)
  plt.close(fig)


def _liked_photos(options, run_cfg):
  """(fit photos: the run's training photos, test photos: its held-out ones), centre crops."""
  from jaxstyle import data  # pylint: disable=g-import-not-at-top

  return (data.center_crops(run_cfg["content_dir"], options.liked_photos, options.size)[0],
          data.center_crops(run_cfg["eval_dir"], options.liked_photos, options.size)[0])


def _liked(options, model, record, fit_photos, test_photos):
  """Method (a) vs (b) on artist collections (see the module docstring)."""
  import numpy as np  # pylint: disable=g-import-not-at-top

  from jaxstyle import images, inference  # pylint: disable=g-import-not-at-top
  from jaxstyle.personalize import from_images as fi  # pylint: disable=g-import-not-at-top
  from jaxstyle.personalize import gram_match  # pylint: disable=g-import-not-at-top
  from jaxstyle.train.stylizer import style_grams  # pylint: disable=g-import-not-at-top

  run_cfg = record["config"]
  csv_path = next((s for s in run_cfg.get("encoder_styles") or [] if s.endswith(".csv")), None)
  if csv_path is None:
    return {"skipped": "the run's encoder styles are not a CSV with an artist column"}
  with open(csv_path, newline="", encoding="utf-8") as f:
    rows = list(csv.DictReader(f))
  base = os.path.dirname(csv_path)
  by_artist: dict[str, list[str]] = {}
  for r in rows:
    by_artist.setdefault(r.get("artist", ""), []).append(os.path.join(base, r["file"]))
  groups = [(a, p) for a, p in by_artist.items() if a and len(p) >= options.liked_min]
  groups = groups[:options.liked_collections]

  cfg = fi.FromImagesConfig(steps=options.liked_steps, photo_size=options.size,
                            style_size=run_cfg["style_size"])
  out = []
  for artist, paths in groups:
    liked = [images.load_image(p, cfg.style_size, side="shorter",
                               min_side=inference.MIN_STYLE_SIDE) for p in paths]
    t0 = time.perf_counter()
    res = fi.learn_from_images(model, liked, fit_photos, cfg)
    seconds = time.perf_counter() - t0
    target = gram_match.pooled_grams(style_grams(model.config, model.weights(), liked))
    held = fi.evaluate_latents(model, test_photos, target, np.stack([res.latent_mean, res.latent_fit]))
    out.append({"artist": artist, "images": len(paths), "heldout_style_mean": float(held[0]),
                "heldout_style_fit": float(held[1]), "fit_over_mean": float(held[1] / held[0]),
                "train_style_mean": float(res.fit_losses[0]),
                "train_style_fit": float(np.min(res.fit_losses)),
                "outliers": [os.path.basename(paths[i]) for i in res.outliers],
                "robust_z": [round(float(z), 3) for z in res.robust_z], "seconds": seconds})
  ratios = [g["fit_over_mean"] for g in out]
  return {"collections": out,
          "fit_over_mean_median": float(np.median(ratios)) if ratios else None,
          "fit_better_in": int(sum(r < 1 for r in ratios)), "of": len(ratios)}


def _gp_config(text: str):
  """``PreferenceConfig`` with ``name=value,...`` overrides (values cast to the field's type)."""
  from jaxstyle.errors import ConfigError  # pylint: disable=g-import-not-at-top
  from jaxstyle.personalize import preference as pref  # pylint: disable=g-import-not-at-top

  overrides = {}
  fields = {s.name: s for s in cfglib.settings(pref.PreferenceConfig)}
  for part in filter(None, (t.strip() for t in text.split(","))):
    name, _, value = part.partition("=")
    if name not in fields or not value:
      raise ConfigError(f"--gp entry {part!r}: write NAME=VALUE with NAME one of {sorted(fields)}")
    overrides[name] = type(fields[name].default)(value)
  return cfglib.validate(pref.PreferenceConfig(**overrides))


def _users(options, record, unseen):
  """(target files, photo folder, files the space leaves out) for ``options.users``."""
  if options.users == "heldout":
    return unseen, record["config"]["eval_dir"], []
  train = record.get("encoder_style_files") or []
  step = max(1, len(train) // options.pairs)
  targets = train[step // 2::step][:options.pairs]
  return targets, record["config"]["content_dir"], targets


def _crops(options, model, record, unseen, fit_photos, test_photos):
  """Profiles from random crops of held-out paintings vs the best bank style and the whole painting.

  Per painting: ``crops`` random squares of side ``style_size`` from the
  painting at twice that size (seeded) are the liked images; the profile
  (``learn_from_images``' default method, fitted on training photos) and,
  as references, every bank style and the encoder latent of the whole
  painting are scored by the style loss of their outputs on held-out photos
  against the whole painting's Grams.
  """
  import numpy as np  # pylint: disable=g-import-not-at-top

  from jaxstyle import images, inference  # pylint: disable=g-import-not-at-top
  from jaxstyle.personalize import from_images as fi  # pylint: disable=g-import-not-at-top
  from jaxstyle.personalize import gram_match  # pylint: disable=g-import-not-at-top
  from jaxstyle.personalize import space as space_lib  # pylint: disable=g-import-not-at-top
  from jaxstyle.train.stylizer import style_grams  # pylint: disable=g-import-not-at-top

  run_cfg = record["config"]
  side = run_cfg["style_size"]
  cfg = fi.FromImagesConfig(steps=options.liked_steps, photo_size=options.size, style_size=side)
  bank = np.stack([model.bank_latent(n) for n in model.style_names])
  rng = np.random.default_rng(options.seed)
  out = []
  for path in unseen[:options.crops_paintings]:
    big = images.load_image(path, 2 * side, side="shorter", min_side=inference.MIN_STYLE_SIDE)
    h, w = big.shape[:2]
    crops = []
    for _ in range(options.crops):
      y, x = int(rng.integers(0, h - side + 1)), int(rng.integers(0, w - side + 1))
      crops.append(big[y:y + side, x:x + side])
    res = fi.learn_from_images(model, crops, fit_photos, cfg)
    whole, _ = space_lib.encode_files(model, [path], side)
    target = gram_match.pooled_grams(style_grams(
        model.config, model.weights(), [images.load_image(path, side, side="shorter")]))
    held = fi.evaluate_latents(model, test_photos, target,
                               np.concatenate([res.latent[None], whole, bank]))
    profile, encoder_whole, banks = float(held[0]), float(held[1]), held[2:]
    out.append({"painting": os.path.basename(path), "profile": profile,
                "encoder_whole": encoder_whole,
                "best_bank": float(banks.min()),
                "best_bank_style": model.style_names[int(banks.argmin())],
                "profile_over_whole": profile / encoder_whole,
                "profile_below_best_bank": bool(profile < banks.min()),
                "outlier_crops": res.outliers})
  ratios = [o["profile_over_whole"] for o in out]
  return {"paintings": out, "method": cfg.method,
          "below_best_bank_in": int(sum(o["profile_below_best_bank"] for o in out)),
          "within_1.25_of_whole_in": int(sum(r <= 1.25 for r in ratios)), "of": len(out),
          "profile_over_whole_median": float(np.median(ratios)) if ratios else None}


@register("personalize", help="simulated users: jaxstyle's preference model vs random and "
          "follow-the-winner; from-images methods compared", options=Options)
def run(options: Options) -> dict:
  """Runs the simulated users (and the from-images comparison); see the module docstring."""
  from jaxstyle import cpu_tuning  # pylint: disable=g-import-not-at-top

  cpu_tuning.use_fast_cpu_convs()
  from absl import logging  # pylint: disable=g-import-not-at-top

  logging.set_verbosity(logging.WARNING)
  from jaxstyle import inference  # pylint: disable=g-import-not-at-top
  from jaxstyle.errors import ConfigError  # pylint: disable=g-import-not-at-top

  if not options.checkpoint:
    raise ConfigError("--checkpoint is required: the run directory of train_stylizer.py")
  model = inference.load_stylizer(options.checkpoint)
  with open(os.path.join(options.checkpoint, "config.json")) as f:
    record = json.load(f)
  unseen = [p for p in record.get("unseen_style_files") or [] if os.path.isfile(p)]
  if len(unseen) < 1:
    raise ConfigError(f"{options.checkpoint}: no held-out paintings (train with --encoder_holdout)")
  result = _simulated(options, model, record, unseen) if "simulated" in options.parts else {}
  liked = options.liked_collections and "liked" in options.parts
  crops = options.crops_paintings and "crops" in options.parts
  photos = _liked_photos(options, record["config"]) if liked or crops else None
  if liked:
    result["from_images"] = _liked(options, model, record, *photos)
  if crops:
    result["crops"] = _crops(options, model, record, unseen, *photos)
  return result


def _simulated(options, model, record, unseen):
  """The simulated users (see the module docstring)."""
  import jax  # pylint: disable=g-import-not-at-top
  import numpy as np  # pylint: disable=g-import-not-at-top
  from tqdm.auto import tqdm  # pylint: disable=g-import-not-at-top

  from jaxstyle import data  # pylint: disable=g-import-not-at-top
  from jaxstyle.personalize import gram_match, simulate  # pylint: disable=g-import-not-at-top
  from jaxstyle.personalize import space as space_lib  # pylint: disable=g-import-not-at-top

  target_files, photo_dir, leave_out = _users(options, record, unseen)
  pref_config = _gp_config(options.gp)
  t0 = time.perf_counter()
  leave_out = set(leave_out)
  collection = [p for p in space_lib.collection_files(model, include_unseen=False)
                if p not in leave_out]
  space = space_lib.build_space(model, collection, options.space_dims,
                                record["config"]["style_size"])
  space_s = time.perf_counter() - t0
  targets, _ = space_lib.encode_files(model, target_files, record["config"]["style_size"])
  photos = list(data.center_crops(photo_dir, options.photos, options.size)[0])
  photo_paths = data.list_images(photo_dir)[:len(photos)]
  grams_of = gram_match.OutputGrams(model)
  start = np.zeros((space.dim,), np.float32)
  pairs = [(i % len(targets), i % len(photos)) for i in range(options.pairs)]
  judges = [simulate.StyleJudge(grams_of, photos[p], targets[t], space.to_latent(start))
            for t, p in pairs]
  floors = [float(judges[i](space.to_latent(space.to_coords(targets[t][None])))[0])
            for i, (t, _) in enumerate(pairs)]
  base = jax.random.key(options.seed)

  def sessions(strategy, tau):
    out = []
    for i in range(len(pairs)):
      for s in range(options.seeds):
        key = jax.random.fold_in(jax.random.fold_in(base, i), s)
        t = time.perf_counter()
        res = simulate.run_user(strategy, judges[i], space.to_latent, start, rounds=options.rounds,
                                k=options.k, key=key, tau=tau, pref_config=pref_config)
        res["seconds"] = time.perf_counter() - t
        out.append(res)
        bar.update(1)
    return out

  total = len(options.strategies) * 2 * len(pairs) * options.seeds
  bar = tqdm(total=total, desc="simulated sessions", unit="session")
  runs = {s: {} for s in options.strategies}
  try:
    for strategy in options.strategies:
      runs[strategy]["noiseless"] = sessions(strategy, None)
    calib = runs.get("gp", runs[options.strategies[0]])["noiseless"]
    tau = simulate.calibrate_tau([np.asarray(d) for r in calib for d in r["distances"]],
                                 options.noisy_best_rate)
    for strategy in options.strategies:
      runs[strategy]["noisy"] = sessions(strategy, tau)
  finally:
    bar.close()
  summary = {s: {u: _quartiles([r["curve"] for r in rs]) for u, rs in by.items()}
             for s, by in runs.items()}
  result = {"space": {"dims": space.dim, "explained": space.explained.tolist(),
                      "source": space.source, "seconds": space_s},
            "users": options.users, "gp": cfglib.to_dict(pref_config),
            "targets": [os.path.basename(target_files[t]) for t, _ in pairs],
            "photos": [os.path.basename(photo_paths[p]) for _, p in pairs],
            "floor_median": float(np.median(floors)), "floors": floors, "tau": tau,
            "summary": summary,
            "best_pick_rate": {s: {u: simulate.best_pick_rate(rs) for u, rs in by.items()}
                               for s, by in runs.items()},
            "seconds_per_session": {s: {u: float(np.median([r["seconds"] for r in rs]))
                                        for u, rs in by.items()} for s, by in runs.items()},
            "curves": {s: {u: [r["curve"] for r in rs] for u, rs in by.items()}
                       for s, by in runs.items()}}
  if "gp" in summary:
    gp = summary["gp"]
    at = lambda user, r: gp[user]["median"][min(r, options.rounds)]  # noqa: E731
    goals = {"noiseless_round10_le_0.5": at("noiseless", 10) <= 0.5,
             "noiseless_round20_le_0.25": at("noiseless", 20) <= 0.25,
             "noisy_round20_le_0.5": at("noisy", 20) <= 0.5}
    for user in ("noiseless", "noisy"):
      others = [summary[s][user]["median"] for s in summary if s != "gp"]
      below = [all(gp[user]["median"][r] < o[r] for o in others)
               for r in range(5, options.rounds + 1)]
      goals[f"{user}_below_baselines_from_round5"] = bool(all(below))
      goals[f"{user}_rounds_not_below"] = [r for r, b in zip(range(5, options.rounds + 1), below)
                                           if not b]
    result["goals"] = goals
  if options.figure:
    _plot(options.figure, summary, options.rounds, cfglib.to_dict(pref_config))
    result["figure"] = options.figure
  return result
