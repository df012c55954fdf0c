"""The report's figures: PNG files written with matplotlib's Agg renderer, byte-for-byte repeatable.

Each function takes records (one per result file, overlaid: colour per
series, line style per file) and a path, writes the figure there and returns
True, or returns False without writing when the records hold nothing to plot:

* ``throughput``: rate against resolution (or library size), jaxstyle and
  peer lines (``THROUGHPUT``: vgg, gatys, stylizer inference, retrieval);
* ``scaling``: rate against device count, from cGAN setups or from records of
  one benchmark measured on several device counts of one device kind;
* ``personalize_curves``: median relative distance per round with the
  quartile band, one line per strategy, one panel per simulated user;
* ``retrieval_bars``: P@1 and P@5 of every retrieval_quality variant;
* ``quality_over_time``: cgan_quality's oracle accuracy and FID ratio against
  training wall time, jaxstyle and PyTorch;
* ``run_curves``: a training run's metrics, one panel per metric family;
* ``metric_curves``: chosen metrics of several runs, one panel per metric,
  the runs overlaid (``experiments/plot.py``), optionally ``smoothed``.

Figures are built on ``matplotlib.figure.Figure`` (no pyplot state) under the
default style, and saved without the Software tag, so the same inputs give
the same bytes.
"""

from __future__ import annotations

import contextlib
import dataclasses
import math
import re
from typing import Any, Callable, Iterator, Sequence

from benchmarks.personalize import strategy_name
from jaxstyle import fileio
from reporting.load import Record, Run

DPI = 100
LINESTYLES = ("-", "--", ":", "-.")
MAX_PANELS = 12
MAX_LINES = 10


@contextlib.contextmanager
def _figure(panels: int, cols: int = 3, size: tuple[float, float] = (5.0, 3.6),
            sharey: bool = False) -> Iterator[tuple[Any, list[Any]]]:
  import matplotlib  # pylint: disable=g-import-not-at-top
  matplotlib.use("Agg")
  from matplotlib.figure import Figure  # pylint: disable=g-import-not-at-top
  from matplotlib import style  # pylint: disable=g-import-not-at-top

  cols = max(1, min(cols, panels))
  rows = math.ceil(panels / cols)
  with style.context("default"):
    fig = Figure(figsize=(size[0] * cols, size[1] * rows), layout="constrained")
    axes = fig.subplots(rows, cols, sharey=sharey, squeeze=False).ravel().tolist()
    for ax in axes[panels:]:
      ax.set_visible(False)
    yield fig, axes[:panels]


def _save(fig: Any, path: str) -> None:
  with fileio.atomic_open(path, "wb") as f:
    fig.savefig(f, format="png", dpi=DPI, metadata={"Software": None})


def _log_axes(ax: Any, xs: Sequence[float], base: int) -> None:
  """Log-log axes: x ticks at the data's own x values, plain-number labels on both axes."""
  from matplotlib import ticker  # pylint: disable=g-import-not-at-top
  ax.set_xscale("log", base=base)
  ax.set_yscale("log")
  ticks = sorted(set(xs))
  ax.xaxis.set_major_locator(ticker.FixedLocator(ticks))
  ax.xaxis.set_major_formatter(ticker.FixedFormatter([f"{x:g}" for x in ticks]))
  ax.xaxis.set_minor_locator(ticker.NullLocator())
  ax.yaxis.set_major_formatter(ticker.LogFormatter())
  ax.yaxis.set_minor_formatter(ticker.LogFormatter(labelOnlyBase=False, minor_thresholds=(1, 0.5)))
  ax.grid(alpha=0.3, which="both")


def _style(i: int) -> str:
  return LINESTYLES[i % len(LINESTYLES)]


def _name(series: str, record: Record, records: Sequence[Record]) -> str:
  return f"{series} — {record.label}" if len(records) > 1 else series


# ----------------------------------------------------------------------------- throughput


@dataclasses.dataclass(frozen=True)
class Point:
  series: str
  x: float
  y: float
  peer: bool = False


def _vgg(r: dict[str, Any]) -> list[Point]:
  out = []
  for e in r["sizes"]:
    b = e.get("batch", 1)
    for key, name in (("forward", "forward"), ("fwd_bwd", "fwd+bwd")):
      if e.get(f"{key}_median_ms"):
        out.append(Point(f"jaxstyle {name} b{b}", e["size"], 1e3 * b / e[f"{key}_median_ms"]))
      if e.get(f"torch_{key}_median_ms"):  # the twin's fastest variant at this size
        out.append(Point(f"PyTorch {name} b{b} (fastest setup)", e["size"],
                         1e3 * b / e[f"torch_{key}_median_ms"], True))
  return out


def _gatys(r: dict[str, Any]) -> list[Point]:
  out = []
  for size, e in r["sizes"].items():
    for k, v in e.items():
      m = re.fullmatch(r"jax_(\w+?)_s_per_step", k)
      if m and v:
        out.append(Point(f"jaxstyle {m.group(1)}", int(size), 1.0 / v))
    if e.get("torch_s_per_step"):
      out.append(Point("PyTorch (fastest setup)", int(size), 1.0 / e["torch_s_per_step"], True))
  return out


def _stylizer(r: dict[str, Any]) -> list[Point]:
  out = []
  for e in r.get("inference", []):
    b = e.get("batch", 1)
    if e["jaxstyle"].get("img_per_s"):
      out.append(Point(f"jaxstyle b{b}", e["size"], e["jaxstyle"]["img_per_s"]))
    for peer, name in (("twin", "PyTorch twin"), ("transformer_net", "TransformerNet")):
      if isinstance(e.get(peer), dict) and e[peer].get("img_per_s"):
        out.append(Point(f"{name} b{b}", e["size"], e[peer]["img_per_s"], True))
  return out


def _retrieval(r: dict[str, Any]) -> list[Point]:
  return [Point("jaxstyle top-k", e["n"], e["descriptors_per_s"]) for e in r["sizes"]
          if e.get("descriptors_per_s")]


# benchmark -> (x label, y label, points of a record's results)
THROUGHPUT: dict[str, tuple[str, str, Callable[[dict[str, Any]], list[Point]]]] = {
    "vgg": ("image side (px)", "images/s", _vgg),
    "gatys": ("image side (px)", "optimisation steps/s", _gatys),
    "stylizer": ("image side (px)", "images/s (inference)", _stylizer),
    "retrieval": ("library size (descriptors)", "descriptors searched/s", _retrieval),
}


def points(record: Record) -> list[Point]:
  """``record``'s throughput points ([] for other benchmarks or an unrecognised layout)."""
  spec = THROUGHPUT.get(record.benchmark or "")
  if spec is None:
    return []
  try:
    return spec[2](record.results)
  except (KeyError, TypeError, ValueError, AttributeError, ZeroDivisionError):
    return []


def _series_order(per_record: list[list[Point]]) -> list[str]:
  return list(dict.fromkeys(p.series for pts in per_record for p in pts))


def throughput(records: Sequence[Record], path: str) -> bool:
  per_record = [points(r) for r in records]
  if not any(per_record) or records[0].benchmark not in THROUGHPUT:
    return False
  xlabel, ylabel, _ = THROUGHPUT[records[0].benchmark]
  order = _series_order(per_record)
  with _figure(1, size=(7.5, 4.8)) as (fig, (ax,)):
    for i, (record, pts) in enumerate(zip(records, per_record)):
      for series in order:
        line = sorted((p.x, p.y, p.peer) for p in pts if p.series == series)
        if not line:
          continue
        ax.plot([p[0] for p in line], [p[1] for p in line], color=f"C{order.index(series) % 10}",
                ls=_style(i), marker="s" if line[0][2] else "o", label=_name(series, record, records))
    _log_axes(ax, [p.x for pts in per_record for p in pts], 2 if "px" in xlabel else 10)
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    ax.set_title(f"{records[0].benchmark}: throughput (median; squares: peers)")
    if len(ax.get_lines()) > 8:  # many records side by side: the legend beside the axes, not on them
      ax.legend(fontsize="x-small", loc="upper left", bbox_to_anchor=(1.01, 1.0))
    else:
      ax.legend(fontsize="small")
    _save(fig, path)
  return True


# ----------------------------------------------------------------------------- scaling


def scaling_lines(records: Sequence[Record]) -> dict[str, dict[int, float]]:
  """Line name -> {device count: rate}, lines with at least two device counts only."""
  lines: dict[str, dict[int, float]] = {}
  for record in records:
    if record.benchmark == "cgan" and isinstance(record.results.get("jax"), dict):
      for setup in (record.results["jax"].get("setups") or {}).values():
        if isinstance(setup, dict) and isinstance(setup.get("devices"), int) and setup.get("steps_per_s"):
          lines.setdefault(_name("jaxstyle train steps/s", record, records), {}).setdefault(
              setup["devices"], setup["steps_per_s"])
    if record.device_count is None:
      continue
    for p in points(record):
      if not p.peer:
        name = f"{p.series} at {p.x:g} ({record.device_kind})"
        lines.setdefault(name, {}).setdefault(record.device_count, p.y)
  return {k: v for k, v in lines.items() if len(v) >= 2}


def scaling(records: Sequence[Record], path: str) -> bool:
  lines = scaling_lines(records)
  if not lines:
    return False
  with _figure(1, size=(7.5, 4.8)) as (fig, (ax,)):
    for i, (name, by_count) in enumerate(list(lines.items())[:MAX_LINES * 2]):
      counts = sorted(by_count)
      ax.plot(counts, [by_count[c] for c in counts], marker="o", color=f"C{i % 10}",
              ls=_style(i // 10), label=name)
    _log_axes(ax, [c for by_count in lines.values() for c in by_count], 2)
    ax.set_xlabel("devices")
    ax.set_ylabel(THROUGHPUT[records[0].benchmark][1] if records[0].benchmark in THROUGHPUT
                  else "train steps/s")
    ax.set_title(f"{records[0].benchmark}: scaling with device count")
    ax.legend(fontsize="small")
    _save(fig, path)
  return True


# ----------------------------------------------------------------------------- personalize


def personalize_curves(records: Sequence[Record], path: str) -> bool:
  with_summary = [r for r in records if isinstance(r.results.get("summary"), dict) and r.results["summary"]]
  if not with_summary:
    return False
  strategies = list(dict.fromkeys(s for r in with_summary for s in r.results["summary"]))
  users = list(dict.fromkeys(u for r in with_summary for by in r.results["summary"].values() for u in by))
  with _figure(len(users), cols=2, size=(6.0, 4.4), sharey=True) as (fig, axes):
    for ax, user in zip(axes, users):
      for i, record in enumerate(with_summary):
        for strategy in strategies:
          s = record.results["summary"].get(strategy, {}).get(user)
          if not s or not s.get("median"):
            continue
          x = list(range(len(s["median"])))
          color = f"C{strategies.index(strategy) % 10}"
          ax.plot(x, s["median"], color=color, ls=_style(i), lw=2,
                  label=_name(strategy_name(strategy, record.results.get("gp") or {}), record,
                              with_summary))
          if len(s.get("q25", [])) == len(x) == len(s.get("q75", [])):
            ax.fill_between(x, s["q25"], s["q75"], color=color, alpha=0.15, lw=0)
      for level in (0.5, 0.25):
        ax.axhline(level, color="k", lw=0.6, ls=":")
      ax.set_yscale("log")
      ax.set_title(f"{user} simulated user")
      ax.set_xlabel("round")
      ax.grid(alpha=0.3, which="both")
    axes[0].set_ylabel("style distance to the target\n(relative to the start; median, IQR band)")
    axes[0].legend(fontsize="small", loc="lower left")
    _save(fig, path)
  return True


def quality_over_time(records: Sequence[Record], path: str) -> bool:
  """cgan_quality: oracle accuracy and FID / floor against training wall time, both sides."""
  sides = [(r, side, name) for r in records for side, name in (("jax", "jaxstyle"), ("torch", "PyTorch"))
           if isinstance(r.results.get(side), dict) and r.results[side].get("curve")]
  if not sides:
    return False
  with _figure(2, cols=2, size=(6.0, 4.4)) as (fig, axes):
    for record, side, name in sides:
      curve = record.results[side]["curve"]
      x = [p["train_wall_s"] for p in curve]
      style = dict(color="C0" if side == "jax" else "C1", ls=_style(records.index(record)), lw=2,
                   marker="o", ms=4, label=_name(f"{name} ({record.results[side].get('setup')})",
                                                 record, records))
      axes[0].plot(x, [p["oracle_accuracy"] for p in curve], **style)
      axes[1].plot(x, [p["fid_ratio"] for p in curve], **style)
    targets = sides[0][0].results.get("targets", {})
    for ax, key, label in ((axes[0], "oracle_accuracy", "oracle accuracy"),
                           (axes[1], "fid_ratio", "FID / real-vs-real floor")):
      if isinstance(targets.get(key), (int, float)):
        ax.axhline(targets[key], color="k", lw=0.8, ls=":", label=f"target {targets[key]:g}")
      ax.set_xlabel("training wall time, s (evaluations excluded)")
      ax.set_ylabel(label)
      ax.grid(alpha=0.3, which="both")
    axes[1].set_yscale("log")
    axes[0].legend(fontsize="small", loc="lower right")
    _save(fig, path)
  return True


# ----------------------------------------------------------------------------- retrieval


def retrieval_bars(records: Sequence[Record], path: str, split: str = "all") -> bool:
  scored = [r for r in records if isinstance(r.results.get("scores"), dict) and r.results["scores"]]
  if not scored:
    return False
  variants = list(dict.fromkeys(v for r in scored for v in r.results["scores"]))
  height = 0.8 / len(scored)
  with _figure(2, cols=2, size=(6.0, 0.45 * len(variants) + 1.6), sharey=True) as (fig, axes):
    for ax, (key, title) in zip(axes, (("p_at_1", "P@1"), ("p_at_5", "P@5"))):
      for i, record in enumerate(scored):
        ys, xs = [], []
        for j, v in enumerate(variants):
          value = record.results["scores"].get(v, {}).get(split, {}).get(key)
          if isinstance(value, (int, float)):
            ys.append(j + (i - (len(scored) - 1) / 2) * height)
            xs.append(value)
        ax.barh(ys, xs, height=height, color=f"C{i % 10}", label=record.label)
      ax.set_yticks(range(len(variants)), variants)
      ax.set_xlim(0, 1)
      ax.set_title(f"{title} ({split} images, leave-one-out)")
      ax.grid(alpha=0.3, axis="x")
    axes[0].invert_yaxis()  # shared: once for both panels
    if len(scored) > 1:
      axes[1].legend(fontsize="small", loc="lower right")
    _save(fig, path)
  return True


# ----------------------------------------------------------------------------- training runs

_STAT_TOKENS = {"min", "max", "mean", "median", "std", "class"}


def family(name: str) -> str:
  """A metric's panel: the part before ``/``; ``loss`` or ``accuracy`` if named so; else the
  name less trailing statistics (``diversity_min`` -> ``diversity``)."""
  if "/" in name:
    return name.split("/", 1)[0]
  tokens = name.split("_")
  if "loss" in tokens:
    return "loss"
  if "accuracy" in tokens or "acc" in tokens:
    return "accuracy"
  while len(tokens) > 1 and tokens[-1] in _STAT_TOKENS:
    tokens.pop()
  return "_".join(tokens)


def families(run: Run) -> dict[str, list[str]]:
  out: dict[str, list[str]] = {}
  for name in run.series():
    out.setdefault(family(name), []).append(name)
  return out


def log_scale(values: Sequence[float]) -> bool:
  """True when every value is positive and they span more than 100x."""
  return bool(values) and min(values) > 0 and max(values) / min(values) > 100


def run_curves(run: Run, path: str) -> bool:
  series = run.series()
  groups = list(families(run).items())[:MAX_PANELS]
  if not groups:
    return False
  with _figure(len(groups), cols=3, size=(4.6, 3.4)) as (fig, axes):
    for ax, (fam, names) in zip(axes, groups):
      values = []
      for name in names[:MAX_LINES]:
        steps, ys = series[name]
        ax.plot(steps, ys, marker="." if len(ys) < 30 else None, label=name)
        values += ys
      if log_scale(values):
        ax.set_yscale("log")
      ax.set_title(fam)
      ax.set_xlabel("step")
      ax.grid(alpha=0.3, which="both")
      if len(names) > 1:
        ax.legend(fontsize="x-small")
    fig.suptitle(f"training run {run.name}")
    _save(fig, path)
  return True


def smoothed(values: Sequence[float], weight: float) -> list[float]:
  """TensorBoard's smoothing: an exponential moving average with ``weight`` in [0, 1), debiased
  at the start (weight 0 gives the values back)."""
  out, last, norm = [], 0.0, 0.0
  for v in values:
    last = weight * last + (1.0 - weight) * v
    norm = weight * norm + (1.0 - weight)
    out.append(last / norm)
  return out


def metric_curves(runs: Sequence[Run], labels: Sequence[str], names: Sequence[str], path: str,
                  smooth: float = 0.0) -> bool:
  """One panel per metric of ``names`` (at most ``MAX_PANELS``), one line per run (colour and
  legend ``labels[i]``); with ``smooth`` > 0 the raw curves are drawn faint behind the smoothed
  ones. Returns False without writing when no run has any of ``names``."""
  from matplotlib import ticker  # pylint: disable=g-import-not-at-top

  per_run = [run.series() for run in runs]
  names = [n for n in names if any(n in s for s in per_run)][:MAX_PANELS]
  if not names:
    return False
  with _figure(len(names), cols=min(3, len(names)), size=(4.8, 3.4)) as (fig, axes):
    for ax, name in zip(axes, names):
      values = []
      for i, (series, label) in enumerate(zip(per_run, labels)):
        if name not in series:
          continue
        steps, ys = series[name]
        colour, style = f"C{i % 10}", _style(i // 10)
        if smooth > 0:
          ax.plot(steps, ys, color=colour, linestyle=style, alpha=0.25, linewidth=0.8)
        ax.plot(steps, smoothed(ys, smooth), color=colour, linestyle=style,
                marker="." if len(ys) < 30 else None, label=label)
        values += ys
      if log_scale(values):
        ax.set_yscale("log")
      ax.set_title(name)
      ax.set_xlabel("step")
      ax.xaxis.set_major_locator(ticker.MaxNLocator(integer=True))
      ax.grid(alpha=0.3, which="both")
      ax.legend(fontsize="x-small")
    _save(fig, path)
  return True
