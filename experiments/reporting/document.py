"""Assembles ``report.md`` from the loaded inputs; writes the figures under ``plots/``.

Layout: a title and legend; ``## Headline`` (``reporting.headline``: the
first numbers to look at, one column per result file); ``## Inputs`` (per result file: what it holds, date,
machine, devices, git commit, versions, XLA flags); ``## Benchmarks`` (per
benchmark name, in first-seen order: its tables, one column per record, and
its figures); ``## Other results`` (free-form JSON files, flattened);
``## Training runs`` (per run: a summary table and its curves).
"""

from __future__ import annotations

import os
import re
from typing import Any, Callable, Sequence

from jaxstyle import fileio
from reporting import headline, load, markdown, plots, tables
from reporting.load import Record, Run, Source

REPORT = "report.md"
VERSIONS = ("python", "jax", "jaxlib", "flax", "optax", "orbax.checkpoint", "torch")
PLOTS_DIR = "plots"

LEGEND = ("Tables: one column per result file (file stem and device kind). Timings: median "
          "(min–max) over the timed repeats where the record has them. Ratios are jaxstyle over "
          "the peer as the benchmark reports them: for rates (img/s, steps/s) above 1 means "
          "jaxstyle is faster, for times (s/step) below 1 does. `–`: not in that record.")

HEADLINE_LEGEND = ("Speed rows: jaxstyle's speed over the peer's at its best (above 1: jaxstyle "
                   "faster). Time-to-quality rows: jaxstyle's time over the peer's (below 1: "
                   "jaxstyle sooner). Each benchmark's section below has the measurements behind "
                   "its rows.")


def _slug(text: str) -> str:
  return re.sub(r"[^A-Za-z0-9_.-]+", "_", text).strip("_") or "x"


def _distinct(values: list[Any]) -> str:
  shown = list(dict.fromkeys(markdown.cell(v) for v in values if v not in (None, "", {})))
  return "; ".join(shown) if shown else markdown.MISSING


def _meta_rows(source: Source) -> list[tuple[str, str]]:
  metas = [r.meta for r in source.records]

  def get(*keys: str) -> list[Any]:
    out = []
    for m in metas:
      for k in keys:
        m = m.get(k) if isinstance(m, dict) else None
      out.append(m)
    return out

  machines = [f"{m.get('cpu_model')}, {m.get('cores')} cores" if isinstance(m, dict) else None
              for m in get("machine")]
  devices = [f"{d.get('kind')} × {d.get('count')} ({d.get('backend')})" if isinstance(d, dict) else None
             for d in get("devices")]
  commits = [f"{g.get('commit')}{' (dirty)' if g.get('dirty') else ''}"
             if isinstance(g, dict) and g.get("commit") else None for g in get("git")]
  versions = [(lib, _distinct([v.get(lib) or "absent" for v in get("versions") if isinstance(v, dict)
                                and lib in v])) for lib in VERSIONS]
  flags = [f"`{x}`" if x else "(none)" for x in get("xla_flags")]
  return ([("records", ", ".join(r.benchmark or "free-form" for r in source.records)),
           ("date", _distinct(get("date"))), ("machine", _distinct(machines)),
           ("devices", _distinct(devices)), ("git commit", _distinct(commits))]
          + versions + [("XLA flags", _distinct(flags) if any(metas) else markdown.MISSING)])


def inputs_section(sources: Sequence[Source]) -> list[str]:
  out = ["## Inputs\n"]
  for s in sources:
    out.append(f"### Input: {s.label}\n")
    out.append(f"`{s.path}`: {s.layout}"
               + (" (not a benchmark record: its values are shown flattened)" if s.layout == "free-form"
                  else "") + "\n")
    if s.layout != "free-form":
      out.append(markdown.table(["", "value"], _meta_rows(s), numeric=False))
  return out


def _tables(records: Sequence[Record]) -> tuple[list[str], list[str]]:
  """(Markdown of the benchmark's tables, notes)."""
  per_record, notes = [], []
  for r in records:
    secs, note = tables.sections(r)
    per_record.append(secs)
    if note:
      notes.append(note)
  titles = list(dict.fromkeys(t for secs in per_record for t, _ in secs))
  out = []
  for title in titles:
    if title:
      out.append(f"#### {title}\n")
    rows = [next((rows for t, rows in secs if t == title), []) for secs in per_record]
    out.append(markdown.side_by_side([r.label for r in records], rows))
  return out, notes


FigureFn = Callable[[Sequence[Record], str], bool]
FIGURES: tuple[tuple[str, str, FigureFn], ...] = (
    ("throughput", "throughput against size", plots.throughput),
    ("scaling", "scaling with device count", plots.scaling),
    ("curves", "personalization curves", lambda rs, p: rs[0].benchmark == "personalize"
     and plots.personalize_curves(rs, p)),
    ("p_at_k", "retrieval P@k", lambda rs, p: rs[0].benchmark == "retrieval_quality"
     and plots.retrieval_bars(rs, p)),
    ("time_to_quality", "quality against training time", lambda rs, p:
     rs[0].benchmark == "cgan_quality" and plots.quality_over_time(rs, p)),
)


def benchmark_section(name: str, records: Sequence[Record], out_dir: str) -> list[str]:
  out = [f"### {name}\n"]
  body, notes = _tables(records)
  out += body
  out += [f"> note: {n}\n" for n in notes]
  for key, title, fn in FIGURES:
    rel = f"{PLOTS_DIR}/{_slug(name)}_{key}.png"
    if fn(records, os.path.join(out_dir, rel)):
      out.append(f"![{name}: {title}]({rel})\n")
  return out


def runs_section(runs: Sequence[Run], out_dir: str) -> list[str]:
  out = ["## Training runs\n"]
  for i, run in enumerate(runs):
    out.append(f"### {run.name}\n")
    series = run.series()
    steps = [r["step"] for r in run.rows if isinstance(r.get("step"), (int, float))]
    out.append(f"`{run.path}`: {len(run.rows)} rows of metrics.jsonl"
               + (f", steps {min(steps)}–{max(steps)}" if steps else "") + "\n")
    rows = [[name, ys[-1], min(ys), max(ys), xs[-1]] for name, (xs, ys) in series.items()]
    if rows:
      out.append(markdown.table(["metric", "last", "min", "max", "last step"], rows))
    rel = f"{PLOTS_DIR}/run{i + 1}_{_slug(run.name)}.png"
    if plots.run_curves(run, os.path.join(out_dir, rel)):
      out.append(f"![{run.name}: training curves]({rel})\n")
  return out


def build(sources: Sequence[Source], runs: Sequence[Run], out_dir: str) -> str:
  """The text of report.md; the figures are written under ``out_dir/plots/``."""
  os.makedirs(os.path.join(out_dir, PLOTS_DIR), exist_ok=True)
  out = ["# jaxstyle benchmark report\n",
         f"{len(sources)} result file(s), {len(runs)} training run(s). {LEGEND}\n"]
  heads = [headline.rows(s.records) for s in sources]
  if any(heads):
    out += ["## Headline\n", HEADLINE_LEGEND + "\n",
            markdown.side_by_side([s.label for s in sources], heads)]
  if sources:
    out += inputs_section(sources)
  groups: dict[str, list[Record]] = {}
  free = []
  for s in sources:
    for r in s.records:
      if r.benchmark is None:
        free.append(r)
      else:
        groups.setdefault(r.benchmark, []).append(r)
  if groups:
    out.append("## Benchmarks\n")
    for name, records in groups.items():
      out += benchmark_section(name, records, out_dir)
  if free:
    out.append("## Other results\n")
    for r in free:
      out.append(f"### {r.label}\n")
      out += _tables([r])[0]
  if runs:
    out += runs_section(runs, out_dir)
  return "\n".join(out)


def write(files: Sequence[str], runs: Sequence[str], out_dir: str) -> str:
  """Reads the inputs (``load``), writes ``out_dir/report.md`` atomically and the figures;
  returns report.md's path. Raises ``load.ReportInputError`` naming a bad input."""
  sources = load.read_sources(list(files))
  run_data = load.read_runs(list(runs))
  path = os.path.join(out_dir, REPORT)
  fileio.atomic_write_text(path, build(sources, run_data, out_dir))
  return path
