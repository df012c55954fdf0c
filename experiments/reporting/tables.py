"""One renderer per benchmark: a record's ``results`` to labelled headline rows.

``RENDERERS[name](results) -> [(title, [(label, value), ...]), ...]``; labels
are the same for every record of a benchmark, so several result files line up
as columns of one table (``markdown.side_by_side``). ``sections(record)``
picks the renderer, and falls back to ``markdown.generic`` for unknown
benchmarks, free-form results, and records whose layout a renderer does not
recognise (with a note), so a new or changed benchmark never breaks the report.

Ratios are jaxstyle over the peer as the benchmark reports them (rates: above
1 is jaxstyle faster; times, e.g. gatys' s/step: below 1 is).
"""

from __future__ import annotations

import os
import re
from typing import Any, Callable

from reporting.load import Record
from reporting.markdown import Rows, Section, Timing, generic, timing

Renderer = Callable[[dict[str, Any]], list[Section]]
RENDERERS: dict[str, Renderer] = {}

PEER_NAMES = {"twin": "PyTorch twin", "transformer_net": "TransformerNet"}


def renderer(name: str) -> Callable[[Renderer], Renderer]:
  def register(fn: Renderer) -> Renderer:
    RENDERERS[name] = fn
    return fn
  return register


def sections(record: Record) -> tuple[list[Section], str | None]:
  """``record``'s sections and a note (None, or why the generic renderer was used)."""
  fn = RENDERERS.get(record.benchmark or "")
  if fn is None:
    return generic(record.results), None
  try:
    out = fn(record.results)
  except (KeyError, TypeError, ValueError, AttributeError, IndexError, ZeroDivisionError) as e:
    return generic(record.results), (f"{record.label}: layout not recognised by the {record.benchmark} "
                                     f"renderer ({type(e).__name__}: {e}); all values shown")
  return [s for s in out if s[1]], None


def _px(size: Any, batch: Any = None) -> str:
  return f"{size}px" + (f" b{batch}" if batch is not None else "")


@renderer("vgg")
def vgg(r: dict[str, Any]) -> list[Section]:
  mm = r.get("matmul_f32", {})
  rows: Rows = [("matmul f32 GFLOP/s", mm.get("gflops")),
                ("matmul f32 GFLOP/s per CPU-s", mm.get("gflops_per_cpu_s"))]
  for e in r["sizes"]:
    p = _px(e["size"], e.get("batch"))
    for key, name in (("forward", "forward"), ("fwd_bwd", "fwd+bwd")):
      if f"{key}_median_ms" not in e:
        continue
      rows += [(f"{p} {name} ms", timing(e, f"{key}_")),
               (f"{p} {name} best ms", e.get(f"{key}_best_ms")),
               (f"{p} {name} GFLOP/s", e.get(f"{key}_gflops")),
               (f"{p} {name} / matmul", e.get(f"{key}_vs_matmul")),
               (f"{p} {name} / matmul (CPU-s)", e.get(f"{key}_vs_matmul_cpu_s")),
               (f"{p} {name} compile s", e.get(f"{key}_compile_s"))]
  return [("", rows)]


@renderer("gatys")
def gatys(r: dict[str, Any]) -> list[Section]:
  rows: Rows = [("weights", r.get("weights_source"))]
  for size, e in sorted(r["sizes"].items(), key=lambda kv: int(kv[0])):
    p = _px(size)
    variants = [m.group(1) for k in e if (m := re.fullmatch(r"jax_(\w+?)_s_per_step", k))]
    for v in variants:
      low, high = (e.get(f"jax_{v}_spread_s_per_step") or [None, None])[:2]
      roof = e.get(f"jax_{v}_roofline") or {}
      rows += [(f"{p} jaxstyle {v} s/step", Timing(e[f"jax_{v}_s_per_step"], low, high)),
               (f"{p} jaxstyle {v} compile s", e.get(f"jax_{v}_compile_s")),
               (f"{p} jaxstyle {v} GFLOP/step (XLA)", roof.get("xla_gflop")),
               (f"{p} jaxstyle {v} GFLOP/s", roof.get("achieved_gflops")),
               (f"{p} jaxstyle {v} / matmul rate", roof.get("vs_matmul"))]
    if "torch_s_per_step" in e:
      rows += [(f"{p} PyTorch s/step (fastest setup)", e["torch_s_per_step"]),
               (f"{p} PyTorch fastest setup", e.get("torch_best"))]
      for v in variants:
        rows.append((f"{p} jaxstyle {v} / PyTorch time", e.get(f"ratio_jax_{v}_over_torch")))
    for v in variants:
      rows.append((f"{p} step-0 loss jaxstyle {v}", e.get(f"jax_{v}_loss0")))
    if "torch_loss0" in e:
      rows.append((f"{p} step-0 loss PyTorch", e["torch_loss0"]))
  return [("", rows)]


def _cgan_side(name: str, side: dict[str, Any]) -> Rows:
  rows: Rows = [(f"{name} steps/s", side["steps_per_s"]),
                (f"{name} ms/step", timing(side, "", "ms") if "median_ms" in side
                 else side.get("ms_per_step")),
                (f"{name} fastest setup", side.get("setup")),
                (f"{name} compile s", side.get("compile_s")),
                (f"{name} GFLOP/s (XLA count)", side.get("achieved_gflops")),
                (f"{name} / matmul rate", side.get("vs_matmul")),
                (f"{name} params", side.get("params"))]
  for setup, s in (side.get("setups") or {}).items():
    rows.append((f"{name} {setup} steps/s", s.get("steps_per_s")))
  return rows


@renderer("cgan")
def cgan(r: dict[str, Any]) -> list[Section]:
  rows = _cgan_side("jaxstyle", r["jax"])
  torch = r.get("torch")
  if isinstance(torch, dict):
    rows += _cgan_side("PyTorch", torch)
  elif torch is not None:
    rows.append(("PyTorch", torch))
  rows += [("jaxstyle / PyTorch steps/s", r.get("jax_over_torch")), ("warning", r.get("warning"))]
  return [("", [row for row in rows if row[1] is not None])]


@renderer("retrieval")
def retrieval(r: dict[str, Any]) -> list[Section]:
  rows: Rows = []
  for e in r["sizes"]:
    p = f"n={e['n']}"
    rows += [(f"{p} search s", Timing(e["seconds_median"], *_min_max(e.get("seconds_all")))),
             (f"{p} descriptors/s", e.get("descriptors_per_s")),
             (f"{p} first call s", e.get("first_call_s")),
             (f"{p} database MiB", e.get("database_mib")),
             (f"{p} peak RSS growth MiB", e.get("peak_rss_growth_mib")),
             (f"{p} matches NumPy", e.get("matches_numpy"))]
  return [("", rows)]


def _min_max(values: Any) -> tuple[float | None, float | None]:
  if isinstance(values, list) and len(values) > 1:
    return min(values), max(values)
  return None, None


@renderer("stylizer")
def stylizer(r: dict[str, Any]) -> list[Section]:
  inference: Rows = []
  for e in r.get("inference", []):
    p = _px(e["size"], e.get("batch"))
    j = e["jaxstyle"]
    inference += [(f"{p} jaxstyle ms", timing(j)), (f"{p} jaxstyle img/s", j.get("img_per_s")),
                  (f"{p} jaxstyle compile s", j.get("compile_s"))]
    for peer, name in PEER_NAMES.items():
      if isinstance(e.get(peer), dict):
        inference += [(f"{p} {name} img/s", e[peer].get("img_per_s")),
                      (f"{p} {name} fastest variant", e[peer].get("best")),
                      (f"{p} jaxstyle / {name}", e.get(f"jaxstyle_over_{peer}"))]
  train: Rows = []
  t = r.get("train")
  if isinstance(t, dict):
    train += [("crop, batch", f"{t.get('crop')}, {t.get('batch')}"),
              ("jaxstyle steps/s", t["jaxstyle"].get("steps_per_s")),
              ("jaxstyle step ms", timing(t["jaxstyle"]))]
    if isinstance(t.get("twin"), dict):
      train += [("PyTorch twin steps/s", t["twin"].get("steps_per_s")),
                ("PyTorch twin fastest variant", t["twin"].get("best")),
                ("jaxstyle / PyTorch twin", t.get("jaxstyle_over_twin"))]
  memory: Rows = []
  for e in r.get("peak_memory") or []:
    for impl in ("jaxstyle",) + tuple(PEER_NAMES):
      if isinstance(e.get(impl), dict):
        memory.append((f"{_px(e['size'], e.get('batch'))} {PEER_NAMES.get(impl, impl)} peak MiB",
                       e[impl].get("peak_mib", e[impl].get("error"))))
  model: Rows = [(f"params {PEER_NAMES.get(k, k)}", v) for k, v in (r.get("params") or {}).items()]
  model += [("twin max abs diff", r.get("twin_max_abs_diff")),
            ("fast CPU convs applied", r.get("fast_cpu_convs_applied")),
            ("torch.compile error", r.get("torch_compile_error"))]
  return [("inference", inference), ("training step", train), ("peak memory", memory),
          ("model", [row for row in model if row[1] is not None])]


@renderer("stylizer_quality")
def stylizer_quality(r: dict[str, Any]) -> list[Section]:
  rows = r.get("rows", [])
  head: Rows = [("checkpoint step", r.get("step")),
                ("bank pairs", sum(1 for x in rows if x.get("kind") == "bank")),
                ("unseen pairs", sum(1 for x in rows if x.get("kind") == "unseen"))]
  return [("", head + list(r["summary"].items()))]


@renderer("stylizer_published")
def stylizer_published(r: dict[str, Any]) -> list[Section]:
  pairs: Rows = []
  for e in r.get("rows", []):
    p = f"{e['style']} on {os.path.basename(str(e['content']))}"
    pairs += [(f"{p} style (train scale) / published", e.get("style_train_scale_over_published")),
              (f"{p} style (output scale) / published", e.get("style_output_scale_over_published")),
              (f"{p} content / published", e.get("content_over_published"))]
  return [("summary (jaxstyle / published; lower is better)",
           [("checkpoint step", r.get("step"))] + list(r["summary"].items())),
          ("per pair", pairs)]


ROUNDS = (5, 10, 20)


@renderer("personalize")
def personalize(r: dict[str, Any]) -> list[Section]:
  sim: Rows = []
  for strategy, by_user in (r.get("summary") or {}).items():
    for user, s in by_user.items():
      median = s["median"]
      for n in sorted({n for n in ROUNDS if n < len(median)} | {len(median) - 1}):
        sim.append((f"{strategy} {user}: median distance @ round {n}", median[n]))
      sim += [(f"{strategy} {user}: best-pick rate", r.get("best_pick_rate", {}).get(strategy, {}).get(user)),
              (f"{strategy} {user}: s/session", r.get("seconds_per_session", {}).get(strategy, {}).get(user))]
  if "summary" in r:
    sim += [("floor (target projected), median", r.get("floor_median")), ("tau (noisy user)", r.get("tau")),
            ("users", r.get("users")), ("pairs", len(r.get("targets") or []))]
  goals: Rows = list((r.get("goals") or {}).items())
  liked: Rows = []
  fi = r.get("from_images")
  if isinstance(fi, dict):
    if "skipped" in fi:
      liked.append(("skipped", fi["skipped"]))
    else:
      liked += [("fit better than mean in", f"{fi.get('fit_better_in')} of {fi.get('of')}"),
                ("fit / mean, median", fi.get("fit_over_mean_median"))]
  crops: Rows = []
  c = r.get("crops")
  if isinstance(c, dict):
    crops += [("method", c.get("method")),
              ("profile below best bank style in", f"{c.get('below_best_bank_in')} of {c.get('of')}"),
              ("within 1.25x of whole painting in", f"{c.get('within_1.25_of_whole_in')} of {c.get('of')}"),
              ("profile / whole painting, median", c.get("profile_over_whole_median"))]
  return [("simulated users (style distance relative to the start; lower is better)", sim),
          ("goals", goals), ("learning from liked images", liked), ("crops of held-out paintings", crops)]


@renderer("retrieval_quality")
def retrieval_quality(r: dict[str, Any]) -> list[Section]:
  ci, cc = r.get("chosen_on_image_half", {}), r.get("chosen_on_class_half", {})
  head: Rows = [("images", r.get("images")), ("classes", r.get("classes")), ("embed s", r.get("embed_s")),
                ("chosen on dev images", ci.get("variant")), ("chosen: dev P@1", ci.get("dev_p_at_1")),
                ("chosen: unseen P@1", ci.get("unseen_p_at_1")),
                ("chosen on classes A", cc.get("variant")), ("chosen: A P@1", cc.get("a_p_at_1")),
                ("chosen: B P@1", cc.get("b_p_at_1"))]
  variants: Rows = []
  for variant, by_split in r["scores"].items():
    a = by_split.get("all", {})
    variants += [(f"{variant} P@1", a.get("p_at_1")), (f"{variant} P@5", a.get("p_at_5")),
                 (f"{variant} mAP", a.get("map")),
                 (f"{variant} unseen-images P@1", by_split.get("images_unseen", {}).get("p_at_1"))]
  return [("", head), ("every variant (all images, leave-one-out)", variants)]


@renderer("gatys_quality")
def gatys_quality(r: dict[str, Any]) -> list[Section]:
  quality: Rows = []
  for pair in r["quality"]["pairs"]:
    p = f"{os.path.splitext(pair['content'])[0]} x {os.path.splitext(pair['style'])[0]}"
    for setting, q in pair["settings"].items():
      quality += [(f"{p} {setting}: final loss", q["final"]["loss"]),
                  (f"{p} {setting}: content", q["final"]["content"]),
                  (f"{p} {setting}: style", q["final"]["style"])]
  t = r["time_to_quality"]
  torch = t["torch"]
  ttq: Rows = [("size", t["size"]), ("target loss (PyTorch's last)", t["target_loss"]),
               ("loss parity (relative difference at step 0)", t["parity"].get("rel_diff_loss0")),
               ("PyTorch fastest variant", torch.get("best")),
               (f"PyTorch {torch.get('steps')} steps s", torch.get("time_s")),
               ("PyTorch s/step", torch.get("median_step_s"))]
  for setting, j in t["jax"].items():
    ttq += [(f"jaxstyle {setting}: steps to target", j.get("steps_to_reach")),
            (f"jaxstyle {setting}: s to target", j.get("time_to_reach_s")),
            (f"jaxstyle {setting}: s/step", j.get("median_step_s")),
            (f"jaxstyle {setting}: / PyTorch time (goal {j.get('goal_time_ratio')})",
             j.get("time_ratio"))]
  return [("time to the PyTorch twin's quality", ttq), ("final losses (quality part)", quality)]


@renderer("cgan_quality")
def cgan_quality(r: dict[str, Any]) -> list[Section]:
  rows: Rows = [("FID floor", r.get("fid_floor")), ("note", r.get("note"))]
  for side, name in (("jax", "jaxstyle"), ("torch", "PyTorch")):
    d = r.get(side)
    if not isinstance(d, dict):
      continue
    rows += [(f"{name} setup", d.get("setup")), (f"{name} steps/s", d.get("steps_per_s")),
             (f"{name} steps to target accuracy", d.get("step_to_accuracy")),
             (f"{name} s to target accuracy", d.get("time_to_accuracy_s")),
             (f"{name} steps to target FID", d.get("step_to_fid")),
             (f"{name} s to target FID", d.get("time_to_fid_s"))]
    rows += [(f"{name} final {k}", v) for k, v in d["final"].items()]
  rows += [("time to accuracy: jaxstyle / PyTorch", r.get("time_to_accuracy_s_jax_over_torch")),
           ("time to FID: jaxstyle / PyTorch", r.get("time_to_fid_s_jax_over_torch")),
           ("steps/s: jaxstyle / PyTorch", r.get("steps_per_s_jax_over_torch"))]
  return [("", [row for row in rows if row[1] is not None])]


@renderer("stylize_tradeoff")
def stylize_tradeoff(r: dict[str, Any]) -> list[Section]:
  rows: Rows = [("size", r.get("size")), ("pairs", len(r.get("pairs") or [])),
                ("s/step (median)", r.get("s_per_step_median"))]
  for s in r["summary"]:
    p = f"β={s['beta']:g} @{s['steps']}"
    rows += [(f"{p}: style distance ÷", Timing(s["style_reduction_median"],
                                               s.get("style_reduction_q25"),
                                               s.get("style_reduction_q75"))),
             (f"{p}: content / painting's", Timing(s["content_ratio_median"],
                                                   s.get("content_ratio_q25"),
                                                   s.get("content_ratio_q75")))]
  return [("medians over pairs (quartiles)", rows)]
