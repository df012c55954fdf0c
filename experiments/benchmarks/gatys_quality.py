"""Benchmark: Gatys quality (seeded final losses) and time to a PyTorch twin's quality.

  python experiments/benchmark.py gatys_quality [--size 512] [--torch_steps 300]
      [--max_steps 1000] [--jax_settings adam,lbfgs,adam_ms2] [--quality_size 256]
      [--quality_steps 300] [--pairs content.png:style.jpg,...] [--seed 0] [--no_torch]
      [--out results.json]

Objective (both parts, both sides): the real partial Keras/Caffe VGG-19
weights, the default layers (style relu1_1, relu2_1, relu3_1; content
relu3_2), ``optimize.StylizeConfig`` defaults with ``gamma`` (TV weight,
default 1e-2 as in the ``gatys`` benchmark) and Adam lr 0.05, content init,
pixels clipped to [0, 1] after every update. Images: ``--pairs`` of
``content:style`` files (names in ``<data_dir>/content`` and
``<data_dir>/styles``, or paths), each centre-cropped to the side in use
(``jaxstyle.data.center_crop_file``).

Loss rule (every curve, both sides): entry ``i`` of a loss curve is the total
loss returned by step ``i + 1``, which is the loss of the *current* image
before that step's update (the image after ``i`` updates and clips; entry 0
is the content image). A run "reaches" a target at the first step whose
returned loss is <= the target; ``steps_to_reach`` counts the steps run up to
and including that one, and its time is the wall time of those steps.

1. ``quality``: for each pair at ``--quality_size``² and each of
   ``--quality_settings``, ``optimize.stylize`` with ``--quality_steps`` steps
   (key ``PRNGKey(seed)``; the content init draws no random numbers). Reported:
   ``final`` = ``optimize.evaluate`` of the returned image (after all updates):
   total / content / style / tv, and the loss curve. Deterministic: the same
   seed on the same machine gives the same numbers.
2. ``time_to_quality``, on the first pair at ``--size``²:

   * parity: the loss parts of jaxstyle's ``Objective`` and of the twin
     (``peers.gatys.TorchGatys``, eager) on the content image (the step-0
     loss) and on a seeded noisy copy (content and TV terms are ~0 on the
     content image); a total differing by more than 1e-3 relative raises
     ``ParityError`` (the comparison would be meaningless).
   * torch: every variant of ``timing.TorchGrid`` (eager / torch.compile of the
     loss x NCHW / channels_last x thread counts) runs one untimed step
     (compilation) and ``--probe_steps`` timed steps; the fastest median step
     is chosen (``probe``, ``best``). That variant then runs ``--torch_steps``
     Adam steps from a fresh start (dynamo reset; Inductor's on-disk caches
     filled by the probe may shorten its compilation): ``time_s`` includes
     the compilation in the first step, ``compile_s`` = first step - median
     step in compile mode (0 in eager), ``time_without_compile_s`` = their
     difference. The target ``L*`` is its last curve entry (the loss returned
     by step ``--torch_steps``); it is exactly repeatable when the same variant
     wins (variants agree only to float rounding).
   * jax: each of ``--jax_settings`` runs until its loss <= ``L*`` or
     ``--max_steps`` steps (without torch: ``--max_steps`` steps, no target).
     ``adam`` and ``lbfgs`` (one L-BFGS iteration, line search included, per
     step) run step by step: ``optimize.Objective`` and
     ``optimize.make_stepper``, compiled before the clock (``compile_s``),
     each step blocked on its loss. ``adam_ms2`` (``num_scales=2``): the step API is one
     scale only (moving between scales is inside ``optimize.stylize``), so it
     is one ``stylize`` call with ``scale_steps = (ms_coarse_steps, max_steps
     - ms_coarse_steps)``, stopped from its callback when a step of the finest
     scale reaches ``L*``; its time is that whole call's (targets and resizes
     of both scales included), ``compile_s`` is an earlier 1-step-per-scale
     call (compilation plus 2 steps), and its first ``coarse_steps`` curve
     entries are at the coarse size. Per setting: ``steps_to_reach``,
     ``reached``, ``time_to_reach_s`` (without compilation),
     ``time_to_reach_with_compile_s``, the loss curve, ``time_ratio`` = jax
     ``time_to_reach_s`` / torch ``time_without_compile_s``
     (``time_ratio_with_compile``: both with compilation),
     ``goal_time_ratio`` (0.5) and ``met`` (reached and ratio <= goal;
     ``met_with_compile`` likewise). Targets (content features, Grams) are
     computed before the clock starts on both sides, except in ``adam_ms2``.
"""

from __future__ import annotations

import dataclasses
import os
import statistics
import sys
import time

from benchmarks import registry, timing
from benchmarks.registry import register
from jaxstyle import config as cfglib

JAX_SETTINGS = ("adam", "lbfgs", "adam_ms2")
GOAL_TIME_RATIO = 0.5
PARITY_RTOL = 1e-3
DEFAULT_PAIRS = ("skimage_chelsea.png:vangogh_starry_night.jpg",
                 "skimage_astronaut.png:hokusai_great_wave.jpg")


class ParityError(RuntimeError):
  """jaxstyle's and the twin's step-0 losses differ: the two sides optimise different objectives."""



@dataclasses.dataclass(frozen=True)
class Options(timing.TorchGridOptions):
  """The flags of ``benchmark.py gatys_quality`` (and the PyTorch grid's)."""
  pairs: tuple[str, ...] = cfglib.setting(
      DEFAULT_PAIRS, "content:style image pairs, comma-separated: file names in <data_dir>/content "
      "and <data_dir>/styles, or paths. The first pair is also the time-to-quality pair.",
      check=registry.content_style_pairs)
  data_dir: str | None = cfglib.setting(None, "Shared data folder (default: ../shared/data beside "
                                        "the repository, or $JAXSTYLE_SHARED_DATA).")
  vgg_weights: str | None = cfglib.setting(None, "Path of the partial VGG-19 weights (default: "
                                           "<data_dir>/vgg19/…PARTIAL.npz).")
  seed: int = cfglib.setting(0, "Seed of jaxstyle's PRNG key and torch.manual_seed.")
  gamma: float = cfglib.setting(1e-2, "Total-variation weight γ of the objective (both sides).",
                                ge=0, check=cfglib.finite)
  quality_size: int = cfglib.setting(256, "Side of the quality part's centre crops.", ge=32)
  quality_steps: int = cfglib.setting(300, "Steps of each quality run.", ge=1)
  quality_settings: tuple[str, ...] = cfglib.setting(
      ("adam",), "jaxstyle settings of the quality part.",
      choices=JAX_SETTINGS)
  size: int = cfglib.setting(512, "Side of the time-to-quality images.", ge=32)
  torch_steps: int = cfglib.setting(300, "Adam steps of the PyTorch twin; its loss at the last one "
                                    "is the target L*.", ge=1)
  probe_steps: int = cfglib.setting(3, "Timed steps per PyTorch variant when choosing the fastest "
                                    "(after one untimed step).", ge=1)
  jax_settings: tuple[str, ...] = cfglib.setting(
      JAX_SETTINGS, "jaxstyle settings racing to L*: adam (lr 0.05), lbfgs, adam_ms2 (Adam, "
      "num_scales=2, through optimize.stylize).", choices=JAX_SETTINGS)
  max_steps: int = cfglib.setting(1000, "Most steps of a jaxstyle setting (all scales together); "
                                  "without torch every setting runs this many.", ge=2)
  ms_coarse_steps: int = cfglib.setting(0, "Steps at the coarse scale of adam_ms2 (0: torch_steps "
                                        "// 2, how stylize splits a torch_steps budget).", ge=0)
  no_torch: bool = cfglib.setting(False, "Skip the PyTorch side: the quality part and jaxstyle's "
                                  "curves only.")



def _resolve(name: str, folder: str) -> str:
  if os.path.exists(name):
    return name
  path = os.path.join(folder, name)
  if not os.path.exists(path):
    raise FileNotFoundError(f"image {name!r} is neither a path nor a file of {folder}")
  return path


def _load_pairs(o: Options, size: int) -> list[dict]:
  from jaxstyle import data  # pylint: disable=g-import-not-at-top
  root, out = registry.shared_data_dir(o.data_dir), []
  for pair in o.pairs:
    c, s = pair.split(":")
    cpath = _resolve(c, os.path.join(root, "content"))
    spath = _resolve(s, os.path.join(root, "styles"))
    out.append({"content": c, "style": s, "content_img": data.center_crop_file(cpath, size),
                "style_img": data.center_crop_file(spath, size)})
  return out


def _setting_config(cfg, setting: str):
  if setting == "lbfgs":
    return cfg.replace(optimizer="lbfgs")
  if setting == "adam_ms2":
    return cfg.replace(num_scales=2)
  return cfg


def _floats(parts) -> dict:
  return {k: float(v) for k, v in parts.items()}


@register("gatys_quality", help="Gatys final losses (seeded) and time to the PyTorch twin's loss",
          options=Options)
def run(options: Options) -> dict:
  """Both parts; see the module docstring."""
  o = options
  import jax  # pylint: disable=g-import-not-at-top

  from jaxstyle import optimize, vgg  # pylint: disable=g-import-not-at-top

  path = o.vgg_weights or os.path.join(registry.shared_data_dir(o.data_dir), "vgg19",
                                       "vgg19_imagenet_keras_conv1_1-conv3_4_PARTIAL.npz")
  weights = vgg.load_weights(path)
  cfg = optimize.StylizeConfig(gamma=o.gamma)
  key = jax.random.PRNGKey(o.seed)
  result = {
      "objective": {"weights_source": weights.source, "content_layers": dict(cfg.content_layers),
                    "style_layers": dict(cfg.style_layers), "alpha": cfg.alpha, "beta": cfg.beta,
                    "gamma": cfg.gamma, "learning_rate": cfg.learning_rate, "init": cfg.init,
                    "parametrization": cfg.parametrization},
      "loss_rule": "curve[i] = loss returned by step i+1 = loss of the image after i updates "
                   "(before that step's update), both sides",
      "seed": o.seed}
  result["quality"] = _quality(o, weights, cfg, key, optimize)
  print({"quality_final": {f"{p['content']}:{p['style']}": {k: v["final"] for k, v in
                                                             p["settings"].items()}
                           for p in result["quality"]["pairs"]}}, file=sys.stderr, flush=True)
  result["time_to_quality"] = _time_to_quality(o, weights, cfg, key, jax, optimize)
  return result


def _quality(o: Options, weights, cfg, key, optimize) -> dict:
  """Final losses of ``stylize`` with ``quality_steps`` steps, per pair and setting."""
  out = {"size": o.quality_size, "steps": o.quality_steps, "pairs": []}
  for pair in _load_pairs(o, o.quality_size):
    settings = {}
    for setting in o.quality_settings:
      c = _setting_config(cfg, setting).replace(steps=o.quality_steps)
      t0 = time.perf_counter()
      res = optimize.stylize(weights, pair["content_img"], [pair["style_img"]], config=c, key=key)
      wall = time.perf_counter() - t0
      final = optimize.evaluate(weights, res.image, pair["content_img"], [pair["style_img"]],
                                config=c)
      settings[setting] = {"final": final, "loss_curve": [h["loss"] for h in res.history],
                           "time_s_with_compile": wall}
    out["pairs"].append({"content": pair["content"], "style": pair["style"], "settings": settings})
  return out


def _time_to_quality(o: Options, weights, cfg, key, jax, optimize) -> dict:
  pair = _load_pairs(dataclasses.replace(o, pairs=o.pairs[:1]), o.size)[0]
  out = {"size": o.size, "content": pair["content"], "style": pair["style"],
         "max_steps": o.max_steps, "goal_time_ratio": GOAL_TIME_RATIO}
  torch_ok = False
  if not o.no_torch:
    try:
      import torch  # pylint: disable=g-import-not-at-top,unused-import
      torch_ok = True
    except ImportError:
      out["torch"] = {"skipped": "torch is not importable"}
  target = None
  prepared = _prepare(weights, cfg, pair, jax, optimize)
  if torch_ok:
    from peers import gatys as peer_gatys  # pylint: disable=g-import-not-at-top
    out["parity"] = _parity(o, peer_gatys, weights, cfg, pair, prepared)
    out["torch"] = _run_torch(o, peer_gatys, weights, cfg, pair)
    target = out["torch"]["target_loss"]
  out["target_loss"] = target
  out["jax"] = {}
  for setting in o.jax_settings:
    if setting == "adam_ms2":
      r = _run_jax_multiscale(o, weights, cfg, pair, key, target, optimize)
    else:
      r = _run_jax_steps(o, _setting_config(cfg, setting), pair, prepared, target, jax,
                         optimize)
    if target is not None:
      t = out["torch"]
      r["time_ratio"] = timing.ratio(r["time_to_reach_s"], t["time_without_compile_s"])
      r["time_ratio_with_compile"] = timing.ratio(r["time_to_reach_with_compile_s"], t["time_s"])
      r["goal_time_ratio"] = GOAL_TIME_RATIO
      r["met"] = bool(r["reached"] and r["time_ratio"] <= GOAL_TIME_RATIO)
      r["met_with_compile"] = bool(r["reached"]
                                   and r["time_ratio_with_compile"] <= GOAL_TIME_RATIO)
    out["jax"][setting] = r
    print({setting: {k: v for k, v in r.items() if k != "loss_curve"}}, file=sys.stderr,
          flush=True)
  return out


def _prepare(weights, cfg, pair, jax, optimize) -> tuple:
  """``(objective, variables, targets)`` of ``pair``, shared by the parity check and the steps.

  The objective does not depend on the optimiser, so adam and lbfgs share it.
  """
  import jax.numpy as jnp  # pylint: disable=g-import-not-at-top
  objective = optimize.Objective(weights.preprocessing, cfg)
  variables = weights.variables()
  targets = jax.jit(objective.targets)(variables, jnp.asarray(pair["content_img"]),
                                       [jnp.asarray(pair["style_img"])], [1.0])
  return objective, variables, jax.block_until_ready(targets)


def _parity(o: Options, peer_gatys, weights, cfg, pair, prepared) -> dict:
  """Loss parts of both sides on the content image (step 0) and on a seeded noisy copy of it.

  The noisy copy exercises the content and TV terms, which are ~0 on the content image.
  ``ParityError`` when a total differs by more than ``PARITY_RTOL`` relative.
  """
  import jax  # pylint: disable=g-import-not-at-top
  import jax.numpy as jnp  # pylint: disable=g-import-not-at-top
  import numpy as np  # pylint: disable=g-import-not-at-top
  torch = peer_gatys.torch
  objective, variables, targets = prepared
  content = pair["content_img"]
  parts = jax.jit(objective.parts)
  tg = _torch_gatys(peer_gatys, weights, cfg, pair, channels_last=False)
  noise = np.random.RandomState(o.seed).normal(0.0, 0.1, content.shape)
  images = {"content": content, "noisy_content": np.clip(content + noise, 0, 1).astype(np.float32)}
  out = {"rtol": PARITY_RTOL, "images": {}}
  for name, img in images.items():
    ours = _floats(parts(variables, jnp.asarray(img)[None], targets))
    x = torch.from_numpy(np.ascontiguousarray(img.transpose(2, 0, 1)))[None]
    with torch.no_grad():
      theirs = _floats(tg.loss(x))
    rel = abs(ours["loss"] - theirs["loss"]) / max(abs(theirs["loss"]), 1e-12)
    out["images"][name] = {"jax": ours, "torch": theirs, "rel_diff_loss": rel,
                           "abs_diff": {k: abs(ours[k] - theirs[k]) for k in ours}}
    if rel > PARITY_RTOL:
      raise ParityError(f"{name}: losses differ by {rel:.3g} relative (> {PARITY_RTOL}): jaxstyle "
                        f"{ours}, PyTorch twin {theirs}; the two sides do not optimise the same "
                        "objective, so their times are not comparable")
  c = out["images"]["content"]
  out.update(jax_loss0=c["jax"]["loss"], torch_loss0=c["torch"]["loss"],
             rel_diff_loss0=c["rel_diff_loss"], ok=True)
  return out


def _torch_gatys(peer_gatys, weights, cfg, pair, channels_last: bool):
  tv = peer_gatys.TorchVGG(weights.params, weights.preprocessing, channels_last=channels_last)
  return peer_gatys.TorchGatys(tv, pair["content_img"], pair["style_img"],
                               dict(cfg.content_layers), dict(cfg.style_layers), cfg.alpha,
                               cfg.beta, cfg.gamma, cfg.learning_rate)


def _run_torch(o: Options, peer_gatys, weights, cfg, pair) -> dict:
  """Probes every grid variant; runs ``torch_steps`` steps in the fastest from a fresh start."""
  torch = peer_gatys.torch
  grid = timing.TorchGrid(o, warmup=1, repeats=o.probe_steps)

  def build(v):
    tg = _torch_gatys(peer_gatys, weights, cfg, pair, v.channels_last)
    tg.loss = grid.compile(tg.loss, v)
    return tg.step

  probe = grid.run(build, "steps_per_s")
  if probe["best"] is None:
    raise RuntimeError(f"no PyTorch variant ran (compile error: {probe['compile_error']})")
  b = probe["variants"][probe["best"]]
  v = timing.Variant(b["mode"], b["layout"], b["threads"])
  default_threads = torch.get_num_threads()
  torch.manual_seed(o.seed)
  torch.set_num_threads(v.threads)
  torch._dynamo.reset()  # pylint: disable=protected-access
  try:
    tg = _torch_gatys(peer_gatys, weights, cfg, pair, v.channels_last)
    tg.loss = grid.compile(tg.loss, v)
    curve, times, parts = [], [], None
    for _ in range(o.torch_steps):
      t0 = time.perf_counter()
      parts = tg.step()  # floats: blocks until the step is done
      times.append(time.perf_counter() - t0)
      curve.append(parts["loss"])
  finally:
    torch._dynamo.reset()  # pylint: disable=protected-access
    torch.set_num_threads(default_threads)
  median = statistics.median(times[1:] or times)
  compile_s = max(0.0, times[0] - median) if v.mode == "compile" else 0.0
  total = sum(times)
  return {"steps": o.torch_steps, "best": probe["best"], "compile_error": probe["compile_error"],
          "probe": {k: {f: p[f] for f in ("median_ms", "min_ms", "max_ms", "first_call_s",
                                         "times_ms", "mode", "layout", "threads")}
                    for k, p in probe["variants"].items()},
          "mode": v.mode, "layout": v.layout, "threads": v.threads,
          "time_s": total, "compile_s": compile_s, "time_without_compile_s": total - compile_s,
          "first_step_s": times[0], "median_step_s": median, "last_parts": parts,
          "target_loss": curve[-1], "loss_curve": curve}


def _reach(curve: list[float], target: float | None) -> int | None:
  """1-based step whose returned loss first is <= ``target`` (None: never, or no target)."""
  if target is None:
    return None
  return next((i + 1 for i, v in enumerate(curve) if v <= target), None)


def _run_jax_steps(o: Options, c, pair, prepared, target, jax, optimize) -> dict:
  """One setting step by step (``make_stepper``), until ``target`` or ``max_steps``.

  Compilation is done before the clock: Adam's jitted step is compiled ahead;
  L-BFGS's jitted pieces by an untimed ``init`` and one step on the same inputs
  (so its ``compile_s`` also holds two or more loss evaluations). L-BFGS's
  ``init`` (one loss evaluation) is timed as part of its first step.
  """
  import jax.numpy as jnp  # pylint: disable=g-import-not-at-top
  objective, variables, targets = prepared
  stepper = optimize.make_stepper(objective, c)
  p = jnp.asarray(pair["content_img"])[None]
  t0 = time.perf_counter()
  if c.optimizer == "lbfgs":
    jax.block_until_ready(stepper.step(p, stepper.init(p, variables, targets), variables, targets))
    step = stepper.step
  else:
    state = stepper.init(p, variables, targets)
    step = stepper.step.lower(p, state, variables, targets).compile()
  compile_s = time.perf_counter() - t0
  curve, times = [], []
  t0 = time.perf_counter()
  state = jax.block_until_ready(stepper.init(p, variables, targets))
  init_s = time.perf_counter() - t0
  for _ in range(o.max_steps):
    t0 = time.perf_counter()
    p, state, parts = step(p, state, variables, targets)
    loss = float(parts["loss"])  # blocks until the step is done
    times.append(time.perf_counter() - t0)
    curve.append(loss)
    if target is not None and loss <= target:
      break
  times[0] += init_s
  reached = _reach(curve, target)
  n = reached or len(curve)
  return {"api": "make_stepper", "optimizer": c.optimizer, "compile_s": compile_s,
          "init_s": init_s, "steps_run": len(curve), "steps_to_reach": reached,
          "reached": reached is not None,
          "time_to_reach_s": sum(times[:n]) if reached else None,
          "time_to_reach_with_compile_s": compile_s + sum(times[:n]) if reached else None,
          "time_s": sum(times), "median_step_s": statistics.median(times), "loss_curve": curve}


class _Reached(Exception):
  """Raised from ``stylize``'s callback to stop at the target."""


def _run_jax_multiscale(o: Options, weights, cfg, pair, key, target, optimize) -> dict:
  """``adam_ms2``: one ``stylize`` call, stopped from its callback at ``target``."""
  coarse = o.ms_coarse_steps or o.torch_steps // 2
  if not 1 <= coarse < o.max_steps:
    raise ValueError(f"adam_ms2 needs 1 <= coarse steps ({coarse}) < max_steps ({o.max_steps})")
  c = _setting_config(cfg, "adam_ms2")
  content, styles = pair["content_img"], [pair["style_img"]]
  t0 = time.perf_counter()
  optimize.stylize(weights, content, styles, config=c.replace(steps=2), key=key)
  compile_s = time.perf_counter() - t0
  rows, stamps = [], []

  def callback(row):
    stamps.append(time.perf_counter())
    rows.append(row)
    if target is not None and row["scale"] == 1 and row["loss"] <= target:
      raise _Reached()

  c = c.replace(steps=o.max_steps, scale_steps=(coarse, o.max_steps - coarse))
  t0 = time.perf_counter()
  try:
    optimize.stylize(weights, content, styles, config=c, key=key, callback=callback)
  except _Reached:
    pass
  curve = [r["loss"] for r in rows]
  fine = [r["loss"] if r["scale"] == 1 else float("inf") for r in rows]
  reached = _reach(fine, target)
  n = reached or len(rows)
  steps_s = [b - a for a, b in zip([t0] + stamps[:-1], stamps)]
  return {"api": "stylize", "optimizer": "adam", "num_scales": 2, "coarse_steps": coarse,
          "coarse_size": rows[0]["height"], "compile_s": compile_s, "steps_run": len(rows),
          "steps_to_reach": reached, "fine_steps_to_reach": reached - coarse if reached else None,
          "reached": reached is not None,
          "time_to_reach_s": stamps[n - 1] - t0 if reached else None,
          "time_to_reach_with_compile_s": compile_s + stamps[n - 1] - t0 if reached else None,
          "time_s": stamps[-1] - t0,
          "median_step_s": statistics.median(steps_s[coarse:] or steps_s),
          "loss_curve": curve}
