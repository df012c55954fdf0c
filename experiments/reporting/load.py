"""Reading the report's inputs: benchmark result files and training run directories.

A result file holds one of:

* one benchmark record (``benchmarks.results``: ``{"benchmark", "config",
  "results", "meta"}``);
* a suite, ``{"suite": ..., "records": [record, ...]}`` (``benchmark.py all``);
* a JSON list of records;
* any other JSON object: a *free-form* result (hand-written notes such as
  ``experiments/results/personalize_dev.json``), kept whole and rendered by
  the generic flattener.

Anything else (a missing or unreadable file, invalid JSON, a record whose
``results`` is not an object, an empty suite) raises ``ReportInputError``
naming the file. A run directory must hold ``metrics.jsonl``
(``jaxstyle.rundir``); its rows are read with ``RunDir.read_metrics``.
"""

from __future__ import annotations

import dataclasses
import json
import math
import os
from typing import Any

from jaxstyle.errors import JaxstyleError


class ReportInputError(JaxstyleError):
  """A result file or run directory that cannot be read or has an unexpected layout."""


@dataclasses.dataclass(frozen=True)
class Record:
  """One benchmark record (``benchmark`` None: a free-form JSON object, kept in ``results``)."""
  benchmark: str | None
  results: dict[str, Any]
  config: dict[str, Any]
  meta: dict[str, Any]
  path: str
  label: str = ""

  @property
  def device_kind(self) -> str | None:
    devices = self.meta.get("devices")
    return devices.get("kind") if isinstance(devices, dict) else None

  @property
  def device_count(self) -> int | None:
    devices = self.meta.get("devices")
    count = devices.get("count") if isinstance(devices, dict) else None
    return count if isinstance(count, int) else None


@dataclasses.dataclass(frozen=True)
class Source:
  """One result file: its ``layout`` (record, suite, list, free-form) and records."""
  path: str
  layout: str
  records: tuple[Record, ...]
  label: str = ""


@dataclasses.dataclass(frozen=True)
class Run:
  """A training run directory: ``rows`` of metrics.jsonl (``{"step", name: value}``)."""
  path: str
  name: str
  rows: tuple[dict[str, Any], ...]

  def series(self) -> dict[str, tuple[list[int], list[float]]]:
    """Metric name -> (steps, values), finite numbers only, names in first-seen order."""
    out: dict[str, tuple[list[int], list[float]]] = {}
    for row in self.rows:
      step = row.get("step")
      if not isinstance(step, (int, float)) or isinstance(step, bool):
        continue
      for name, value in row.items():
        if name == "step" or isinstance(value, bool) or not isinstance(value, (int, float)):
          continue
        if math.isfinite(value):
          xs, ys = out.setdefault(name, ([], []))
          xs.append(step)
          ys.append(float(value))
    return out


def _record(obj: Any, path: str, where: str) -> Record:
  if not isinstance(obj, dict) or "benchmark" not in obj:
    raise ReportInputError(f"{path}: {where} is not a benchmark record (a JSON object with "
                           "\"benchmark\" and \"results\")")
  name, results = obj.get("benchmark"), obj.get("results")
  if not isinstance(name, str) or not name:
    raise ReportInputError(f"{path}: {where} has no benchmark name (\"benchmark\" must be a string)")
  if not isinstance(results, dict):
    raise ReportInputError(f"{path}: {where} ({name}) has no \"results\" object")
  config, meta = obj.get("config", {}), obj.get("meta", {})
  if not isinstance(config, dict) or not isinstance(meta, dict):
    raise ReportInputError(f"{path}: {where} ({name}): \"config\" and \"meta\" must be objects")
  return Record(name, results, config, meta, path)


def parse(obj: Any, path: str) -> Source:
  """The records of one parsed result file (see the module docstring)."""
  if isinstance(obj, dict) and ("suite" in obj or "records" in obj):
    items = obj.get("records")
    if not isinstance(items, list) or not items:
      raise ReportInputError(f"{path}: a suite file needs a non-empty \"records\" list")
    return Source(path, "suite", tuple(_record(r, path, f"records[{i}]") for i, r in enumerate(items)))
  if isinstance(obj, dict) and "benchmark" in obj:
    return Source(path, "record", (_record(obj, path, "the file"),))
  if isinstance(obj, list):
    if not obj:
      raise ReportInputError(f"{path}: an empty list holds no benchmark records")
    return Source(path, "list", tuple(_record(r, path, f"item [{i}]") for i, r in enumerate(obj)))
  if isinstance(obj, dict) and obj:
    return Source(path, "free-form", (Record(None, obj, {}, {}, path),))
  raise ReportInputError(f"{path}: expected a benchmark record, a suite ({{\"suite\", \"records\"}}) "
                         f"or a list of records, not {type(obj).__name__ if obj is not None else 'null'}"
                         f"{' (empty)' if isinstance(obj, dict) else ''}")


def read_source(path: str) -> Source:
  """Reads and parses one result file; ``ReportInputError`` names it on any problem."""
  try:
    with open(path, encoding="utf-8") as f:
      text = f.read()
  except FileNotFoundError:
    raise ReportInputError(f"{path}: no such file") from None
  except IsADirectoryError:
    raise ReportInputError(f"{path}: is a directory, not a result file") from None
  except (OSError, UnicodeDecodeError) as e:
    raise ReportInputError(f"{path}: cannot read it ({e})") from None
  try:
    obj = json.loads(text)
  except (ValueError, RecursionError) as e:  # RecursionError: nested too deep
    raise ReportInputError(f"{path}: not valid JSON ({e})") from None
  return parse(obj, path)


def _stem(path: str) -> str:
  return os.path.splitext(os.path.basename(path))[0]


def _unique(names: list[str], alternatives: list[str]) -> list[str]:
  """``names``, with duplicates replaced by their ``alternatives`` and then numbered."""
  names = [alt if names.count(n) > 1 else n for n, alt in zip(names, alternatives)]
  seen: dict[str, int] = {}
  out = []
  for n in names:
    seen[n] = seen.get(n, 0) + 1
    out.append(n if names.count(n) == 1 else f"{n} [{seen[n]}]")
  return out


def label_sources(sources: list[Source]) -> list[Source]:
  """Sets each file's label (its stem; parent/stem if stems clash) and each record's column label.

  A record's label is ``"<file label> (<device kind>)"``, with ``#n`` added
  when a file holds several records of the same benchmark.
  """
  stems = [_stem(s.path) for s in sources]
  parents = [os.path.join(os.path.basename(os.path.dirname(os.path.abspath(s.path))), _stem(s.path))
             for s in sources]
  out = []
  for source, label in zip(sources, _unique(stems, parents)):
    records, counts, seen = [], {}, {}
    for r in source.records:
      counts[r.benchmark] = counts.get(r.benchmark, 0) + 1
    for r in source.records:
      seen[r.benchmark] = seen.get(r.benchmark, 0) + 1
      text = f"{label} ({r.device_kind})" if r.device_kind else label
      if counts[r.benchmark] > 1:
        text += f" #{seen[r.benchmark]}"
      records.append(dataclasses.replace(r, label=text))
    out.append(dataclasses.replace(source, records=tuple(records), label=label))
  return out


def read_sources(paths: list[str]) -> list[Source]:
  """Reads every result file (in order) and labels them (``label_sources``)."""
  return label_sources([read_source(p) for p in paths])


def read_run(path: str) -> Run:
  """Reads a run directory's metrics.jsonl (``jaxstyle.rundir.RunDir.read_metrics``)."""
  from jaxstyle.rundir import RunDir  # pylint: disable=g-import-not-at-top

  if not os.path.isdir(path):
    raise ReportInputError(f"{path}: no such run directory; give the --workdir of a training run")
  metrics = os.path.join(path, "metrics.jsonl")
  if not os.path.isfile(metrics):
    raise ReportInputError(f"{path}: no metrics.jsonl in this run directory; give the --workdir of "
                           "a run that has logged metrics")
  try:
    rows = RunDir(path).read_metrics()
  except (OSError, UnicodeDecodeError) as e:
    raise ReportInputError(f"{metrics}: cannot read it ({e})") from None
  except ValueError as e:
    raise ReportInputError(f"{metrics}: a line is not valid JSON ({e}); fix or delete that line "
                           "(a run killed mid-write can leave one)") from None
  if not all(isinstance(r, dict) for r in rows):
    raise ReportInputError(f"{metrics}: every line must be a JSON object with \"step\"; fix or "
                           "delete the others")
  name = os.path.basename(os.path.normpath(os.path.abspath(path)))
  return Run(path, name, tuple(rows))


def read_runs(paths: list[str]) -> list[Run]:
  return [read_run(p) for p in paths]


def run_labels(runs: list[Run]) -> list[str]:
  """Each run's label: its directory's name; parent/name where names clash, then numbered."""
  parents = [os.path.join(os.path.basename(os.path.dirname(os.path.normpath(os.path.abspath(r.path)))),
                          r.name) for r in runs]
  return _unique([r.name for r in runs], parents)
