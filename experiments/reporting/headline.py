"""The report's headline: the few numbers a reader looks for first, one row each.

``HEADLINES[name](results) -> Rows`` picks, from a record of benchmark
``name``, rows labelled so that the same claim lines up across result files
(``rows(records)`` concatenates them in suite order; ``document`` shows one
column per input file). Every speed row is jaxstyle's *speed* over the peer's
at its best (above 1: jaxstyle faster), whatever the benchmark's own ratio
convention; time-to-quality rows are jaxstyle's time over the peer's (below 1:
jaxstyle sooner); quality rows are the benchmark's own numbers. A record whose
layout a headline does not recognise gives no rows (its own section still
shows everything).
"""

from __future__ import annotations

from typing import Any, Callable, Sequence

from benchmarks.personalize import strategy_name
from reporting.load import Record
from reporting.markdown import Rows

Headline = Callable[[dict[str, Any]], Rows]
HEADLINES: dict[str, Headline] = {}
ORDER = ("vgg", "gatys", "cgan", "stylizer", "retrieval", "gatys_quality", "cgan_quality",
         "stylizer_quality", "retrieval_quality", "personalize", "stylize_tradeoff")


def headline(name: str) -> Callable[[Headline], Headline]:
  def register(fn: Headline) -> Headline:
    HEADLINES[name] = fn
    return fn
  return register


def _inv(x: Any) -> float | None:
  return 1.0 / x if isinstance(x, (int, float)) and x else None


def rows(records: Sequence[Record]) -> Rows:
  """The headline rows of ``records`` (one input file's), in ``ORDER``."""
  by_name = {r.benchmark: r for r in records if r.benchmark in HEADLINES}
  out: Rows = []
  for name in ORDER:
    if name in by_name:
      try:
        out += [row for row in HEADLINES[name](by_name[name].results) if row[1] is not None]
      except (KeyError, TypeError, ValueError, AttributeError, IndexError, ZeroDivisionError):
        continue
  return out


@headline("vgg")
def vgg(r: dict[str, Any]) -> Rows:
  e = max(r["sizes"], key=lambda s: s["size"])
  p = f"{e['size']}px"
  return [(f"VGG-19 forward {p}: jaxstyle speed / PyTorch best", e.get("jax_over_torch_forward")),
          (f"VGG-19 forward+backward {p}: jaxstyle speed / PyTorch best",
           e.get("jax_over_torch_fwd_bwd")),
          (f"VGG-19 forward {p}: jaxstyle share of the f32 matmul rate", e.get("forward_vs_matmul"))]


@headline("gatys")
def gatys(r: dict[str, Any]) -> Rows:
  size, e = max(r["sizes"].items(), key=lambda kv: int(kv[0]))
  return [(f"Gatys step {size}px: jaxstyle speed / PyTorch best",
           _inv(e.get("ratio_jax_f32_over_torch"))),
          (f"Gatys step {size}px: jaxstyle share of the f32 matmul rate",
           (e.get("jax_f32_roofline") or {}).get("vs_matmul"))]


@headline("cgan")
def cgan(r: dict[str, Any]) -> Rows:
  return [("cGAN train step: jaxstyle speed / PyTorch best", r.get("jax_over_torch")),
          ("cGAN train step: jaxstyle steps/s", r["jax"].get("steps_per_s"))]


@headline("stylizer")
def stylizer(r: dict[str, Any]) -> Rows:
  out: Rows = []
  inf = r.get("inference") or []
  if inf:
    e = max(inf, key=lambda x: (x["size"], x.get("batch", 1)))
    out += [(f"stylizer inference {e['size']}px: jaxstyle speed / twin's best",
             e.get("jaxstyle_over_twin")),
            (f"stylizer inference {e['size']}px: jaxstyle img/s", e["jaxstyle"].get("img_per_s"))]
  t = r.get("train")
  if isinstance(t, dict):
    out.append(("stylizer train step: jaxstyle speed / twin's best", t.get("jaxstyle_over_twin")))
  return out


@headline("retrieval")
def retrieval(r: dict[str, Any]) -> Rows:
  e = max(r["sizes"], key=lambda s: s["n"])
  return [(f"retrieval exact top-k, {e['n']} descriptors: s/query", e.get("seconds_median"))]


@headline("gatys_quality")
def gatys_quality(r: dict[str, Any]) -> Rows:
  t = r["time_to_quality"]
  jax_runs = {k: v for k, v in t["jax"].items() if v.get("time_ratio") is not None}
  out: Rows = []
  if jax_runs:
    best = min(jax_runs, key=lambda k: jax_runs[k]["time_ratio"])
    out += [(f"Gatys time to twin's {t['torch']['steps']}-step loss {t['size']}px: jaxstyle/PyTorch "
             "(goal ≤ 0.5)", jax_runs[best]["time_ratio"]),
            (f"Gatys time to twin's loss {t['size']}px: fastest jaxstyle setting", best)]
  return out


@headline("cgan_quality")
def cgan_quality(r: dict[str, Any]) -> Rows:
  j = r["jax"]
  steps = j["final"]["step"]
  return [(f"cGAN time to {r['targets']['oracle_accuracy']:.0%} oracle accuracy: jaxstyle/PyTorch",
           r.get("time_to_accuracy_s_jax_over_torch")),
          (f"cGAN time to FID ≤ {r['targets']['fid_ratio']:g}× floor: jaxstyle/PyTorch",
           r.get("time_to_fid_s_jax_over_torch")),
          (f"cGAN oracle accuracy after {steps} steps: jaxstyle", j["final"].get("oracle_accuracy")),
          (f"cGAN FID / floor after {steps} steps: jaxstyle", j["final"].get("fid_ratio"))]


@headline("stylizer_quality")
def stylizer_quality(r: dict[str, Any]) -> Rows:
  s = r["summary"]
  return [("stylizer bank style loss / Gatys' (held-out photos)", s.get("bank_over_gatys_style")),
          ("stylizer: Gatys time / network time per image", s.get("gatys_over_network_time"))]


@headline("retrieval_quality")
def retrieval_quality(r: dict[str, Any]) -> Rows:
  c = r.get("chosen_on_image_half", {})
  return [("retrieval P@1, unseen images (descriptor chosen on the other half)",
           c.get("unseen_p_at_1"))]


@headline("personalize")
def personalize(r: dict[str, Any]) -> Rows:
  out: Rows = []
  for user in ("noiseless", "noisy"):
    for strategy in ("gp", "follow_winner"):
      name = strategy_name(strategy, r.get("gp") or {})
      median = ((r.get("summary") or {}).get(strategy) or {}).get(user, {}).get("median")
      if median:
        n = len(median) - 1
        out.append((f"personalization {user}, {name}: distance left @{n}", median[n]))
  return out


@headline("stylize_tradeoff")
def stylize_tradeoff(r: dict[str, Any]) -> Rows:
  beta = 1e-2 if 1e-2 in r["betas"] else r["betas"][len(r["betas"]) // 2]
  rows_ = [s for s in r["summary"] if s["beta"] == beta]
  s = max(rows_, key=lambda x: x["steps"])
  return [(f"Gatys β={beta:g}, {s['steps']} steps: style distance ÷ (median)",
           s["style_reduction_median"]),
          (f"Gatys β={beta:g}, {s['steps']} steps: content / painting's (median)",
           s["content_ratio_median"])]
