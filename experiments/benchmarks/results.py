"""Benchmark records: the measurements plus what they were measured on, as JSON.

A record (``make_record``) is one JSON object::

  {"benchmark": "vgg",
   "config":  {every option of the run (jaxstyle.config.to_dict)},
   "results": {what the benchmark's run() returned},
   "meta": {"date": ISO-8601 UTC start, "duration_s": float,
            "machine": {"cpu_model", "cores", "cores_available", "platform",
                        "load_average_start", "load_average_end"},
            "git": {"commit": sha or null, "dirty": bool or null},  # at the start; dirty
                   # if the tree had uncommitted changes at the start or the end
                   # ("commit_at_end" only when HEAD moved during the run)
            "versions": {"python", "jax", "jaxlib", "flax", "optax",
                         "orbax.checkpoint", "numpy", "torch" (null if absent)},
            "xla_flags": $XLA_FLAGS, "argv": [...],
            "devices": {"backend", "kind", "count", "local_count"},
            "memory": {"host_peak_rss_mib": the process's peak resident set,
                       "device_peak_mib": peak bytes in use on device 0 where the
                       backend reports it (GPU), else null}}}

``write_record`` prints it to stdout and, given a path, writes it there
atomically (parent folders created). Device fields initialise JAX, so
``finish`` is called after the benchmark has run.
"""

from __future__ import annotations

import datetime
import importlib.metadata
import json
import os
import platform
import subprocess
import sys
import time
from typing import Any

_REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def cpu_model() -> str:
  """The CPU's model name (``/proc/cpuinfo``; else ``platform.processor()``)."""
  try:
    with open("/proc/cpuinfo", encoding="utf-8") as f:
      for line in f:
        if line.lower().startswith("model name"):
          return line.split(":", 1)[1].strip()
  except OSError:
    pass
  return platform.processor() or platform.machine()


def git_state(repo: str = _REPO) -> dict[str, Any]:
  """``{"commit": sha, "dirty": bool}`` of ``repo``; None values outside a git checkout."""

  def git(*args):
    return subprocess.run(["git", "-C", repo, *args], capture_output=True, text=True, timeout=30,
                          check=True).stdout.strip()

  try:
    return {"commit": git("rev-parse", "HEAD"),
            "dirty": bool(git("status", "--porcelain", "--untracked-files=no"))}
  except (OSError, subprocess.SubprocessError):
    return {"commit": None, "dirty": None}


def versions() -> dict[str, str | None]:
  """Versions of Python, JAX and friends (``jaxstyle.rundir.versions``) and torch."""
  from jaxstyle import rundir  # pylint: disable=g-import-not-at-top
  out: dict[str, str | None] = dict(rundir.versions())
  try:
    out["torch"] = importlib.metadata.version("torch")
  except importlib.metadata.PackageNotFoundError:
    out["torch"] = None
  return out


def devices() -> dict[str, Any]:
  """Backend, device kind and counts (initialises JAX)."""
  import jax  # pylint: disable=g-import-not-at-top
  devs = jax.devices()
  return {"backend": jax.default_backend(), "kind": devs[0].device_kind, "count": len(devs),
          "local_count": jax.local_device_count()}


def memory() -> dict[str, float | None]:
  """Peak host memory of this process and peak device memory (where the backend reports it)."""
  import jax  # pylint: disable=g-import-not-at-top
  from benchmarks import timing  # pylint: disable=g-import-not-at-top
  device_peak = None
  try:
    stats = jax.devices()[0].memory_stats() or {}
    if "peak_bytes_in_use" in stats:
      device_peak = stats["peak_bytes_in_use"] / 2.0 ** 20
  except (AttributeError, NotImplementedError, RuntimeError):
    pass
  return {"host_peak_rss_mib": timing.peak_rss_mib(), "device_peak_mib": device_peak}


def start(argv: list[str] | None = None) -> dict[str, Any]:
  """What is known before the benchmark runs (date, load, ``argv``); pass it to ``finish``."""
  return {"date": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
          "t0": time.perf_counter(), "load_average_start": list(os.getloadavg()),
          "argv": list(sys.argv if argv is None else argv), "git": git_state()}


def _git_over_run(at_start: dict[str, Any], at_end: dict[str, Any]) -> dict[str, Any]:
  """The commit that was checked out when the run started, dirty if the tree had uncommitted
  changes at its start or its end (an edit made while a long benchmark runs is not lost)."""
  known = [g["dirty"] for g in (at_start, at_end) if g["dirty"] is not None]
  out = {"commit": at_start["commit"], "dirty": any(known) if known else None}
  if at_end["commit"] != at_start["commit"]:
    out["commit_at_end"] = at_end["commit"]
  return out


def finish(started: dict[str, Any]) -> dict[str, Any]:
  """The ``meta`` section of a record, from ``start()``'s output."""
  return {
      "date": started["date"],
      "duration_s": time.perf_counter() - started["t0"],
      "machine": {"cpu_model": cpu_model(), "cores": os.cpu_count(),
                  "cores_available": len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity")
                  else os.cpu_count(),
                  "platform": platform.platform(),
                  "load_average_start": started["load_average_start"],
                  "load_average_end": list(os.getloadavg())},
      "git": _git_over_run(started["git"], git_state()),
      "versions": versions(),
      "xla_flags": os.environ.get("XLA_FLAGS", ""),
      "argv": started["argv"],
      "devices": devices(),
      "memory": memory(),
  }


def make_record(name: str, config: dict[str, Any], results: dict[str, Any],
                meta: dict[str, Any]) -> dict[str, Any]:
  return {"benchmark": name, "config": config, "results": results, "meta": meta}


def to_json(record: dict[str, Any]) -> str:
  """``record`` as indented JSON (NumPy/JAX values converted as config.json's are)."""
  from jaxstyle.rundir import jsonable  # pylint: disable=g-import-not-at-top
  return json.dumps(jsonable(record), indent=2, sort_keys=True) + "\n"


def write_record(record: dict[str, Any], out: str | None = None, echo: bool = True) -> str:
  """Prints ``record`` as JSON on stdout (``echo``) and writes it to ``out`` if given; returns the text."""
  from jaxstyle import fileio  # pylint: disable=g-import-not-at-top
  text = to_json(record)
  if out:
    parent = os.path.dirname(os.path.abspath(out))
    os.makedirs(parent, exist_ok=True)
    fileio.atomic_write_text(out, text)
  if echo:
    sys.stdout.write(text)
    sys.stdout.flush()
  return text
