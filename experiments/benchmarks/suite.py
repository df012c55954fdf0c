"""``benchmark.py all``: every benchmark in one run, one seed, one suite file.

  python experiments/benchmark.py all [--preset quick|full] [--seed 0] [--checkpoint RUN]
      [--only vgg,gatys,...] [--skip personalize,...] --out results.json

A suite file is one JSON object::

  {"suite": "jaxstyle-benchmarks", "version": 1, "preset": "quick", "seed": 0,
   "records": [record, ...],             # benchmarks.results records, in SUITE order
   "skipped": {name: reason},            # e.g. needs --checkpoint
   "failed": {name: "Type: message"},    # the suite goes on; exit status 1 at the end
   "meta": {...}}                        # as a record's, for the whole run

Each benchmark runs in a fresh Python process of its own (``--noisolate``: all
in this one), as ``benchmark.py all --only NAME`` would, so it starts JAX with
its own device count and XLA flags (the cGAN's 2 CPU devices, the stylizer's
fast-convolution flag: both are fixed when JAX starts) and its peak memory is
its own. It runs with its own defaults (``full``) or the
smaller ``QUICK`` settings, ``seed`` wherever it has one (the cGAN's in its
``Config``), and ``checkpoint`` for those that measure a trained stylizer.
``--out`` is rewritten after every benchmark, so an interrupted suite keeps
what it finished. In one process, the suite first asks for the most
``cpu_devices`` any selected benchmark wants (the cGAN's 2); single-device
benchmarks use the first device, but the stylizer's flag cannot be applied
once an earlier benchmark has started JAX. ``experiments/report.py`` reads suite files.
"""

from __future__ import annotations

import dataclasses
import json
import os
import subprocess
import sys
import tempfile
import traceback
from typing import Any

from benchmarks import registry, results
from jaxstyle import config as cfglib
from jaxstyle.errors import JaxstyleError

_BENCHMARK_PY = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))),
                             "benchmark.py")

# The suite, in the order it runs (speed first, then quality). stylizer_published needs a checkout
# of a published model's repository, so it runs only by name.
SUITE = ("vgg", "gatys", "gatys_quality", "cgan", "cgan_quality", "retrieval", "stylizer",
         "retrieval_quality", "stylizer_quality", "stylize_tradeoff", "personalize")
# Benchmarks that measure a trained stylizer (run directory of train_stylizer.py).
NEEDS_CHECKPOINT = ("stylizer_quality", "personalize")
# Optional checkpoint: the style encoder joins the retrieval descriptors when given.
TAKES_CHECKPOINT = NEEDS_CHECKPOINT + ("retrieval_quality",)

# ``--preset quick``: each benchmark's settings that differ from its defaults (about 20-30 minutes
# on a 2-core CPU with a checkpoint). ``full`` uses every benchmark's defaults.
QUICK: dict[str, dict[str, Any]] = {
    "vgg": {"sizes": (128, 256), "repeats": 3},
    "gatys": {"sizes": (256,), "steps": 3},
    "gatys_quality": {"size": 256, "quality_steps": 100},
    "cgan": {"steps": 10},
    "cgan_quality": {"steps": 6000, "eval_every": 1000},  # the quick recipe's targets come by ~6000
    "retrieval": {"sizes": (100_000,)},
    "stylizer": {"sizes": (256,), "batches": (1,), "memory_size": 256, "memory_batches": (1,)},
    "stylizer_quality": {"photos": 1, "gatys_steps": 100, "unseen_count": 2},
    "personalize": {"pairs": 2, "seeds": 1, "rounds": 5, "parts": ("simulated",)},
    "stylize_tradeoff": {"size": 96, "betas": (1e-3, 1e-2, 1e-1), "steps": (50, 100)},
}
PRESETS = ("quick", "full")


def suite_names(registered: dict[str, registry.Benchmark]) -> tuple[str, ...]:
  """The suite's benchmarks that are registered, in order."""
  return tuple(n for n in SUITE if n in registered)


def options_for(bench: registry.Benchmark, preset: str, seed: int, checkpoint: str) -> Any:
  """``bench``'s options: its defaults, the preset's changes, ``seed`` and ``checkpoint``."""
  opts = bench.default_options()
  changes = dict(QUICK.get(bench.name, {})) if preset == "quick" else {}
  names = {f.name for f in dataclasses.fields(opts)}
  changes = {k: v for k, v in changes.items() if k in names}
  if "seed" in names:
    changes["seed"] = seed
  elif getattr(opts, "config", None) is not None and hasattr(opts.config, "seed"):
    changes["config"] = dataclasses.replace(opts.config, seed=seed)
  if checkpoint and bench.name in TAKES_CHECKPOINT and "checkpoint" in names:
    changes["checkpoint"] = checkpoint
  return cfglib.validate(dataclasses.replace(opts, **changes))


def cpu_devices_wanted(names: tuple[str, ...], preset: str, seed: int, checkpoint: str) -> int:
  """The most host CPU devices any of ``names`` asks for (its config's ``cpu_devices``), or 0."""
  benches = registry.registered()
  wanted = 0
  for name in names:
    try:
      options = options_for(benches[name], preset, seed, checkpoint)
    except Exception:  # pylint: disable=broad-except  reported when the benchmark runs
      continue
    wanted = max(wanted, getattr(getattr(options, "config", None), "cpu_devices", 0) or 0)
  return wanted


def _run_isolated(name: str, preset: str, seed: int, checkpoint: str) -> dict[str, Any]:
  """``name`` as a suite of one in a fresh Python process; that suite (or a failure of its own)."""
  with tempfile.TemporaryDirectory(prefix="jaxstyle-bench-") as tmp:
    out = os.path.join(tmp, "suite.json")
    cmd = [sys.executable, _BENCHMARK_PY, "all", "--noisolate", f"--only={name}",
           f"--preset={preset}", f"--seed={seed}", f"--checkpoint={checkpoint}", f"--out={out}"]
    # The child's progress goes to stderr as usual; its stdout (the "done" line) too.
    proc = subprocess.run(cmd, stdout=sys.stderr, check=False)
    if not os.path.exists(out):
      return {"records": [], "skipped": {},
              "failed": {name: f"the benchmark's process ended with status {proc.returncode}"}}
    with open(out, encoding="utf-8") as f:
      return json.load(f)


def previous_suite(path: str, preset: str, seed: int) -> dict[str, Any] | None:
  """The suite already in ``path`` (None if there is none), checked to be of ``preset`` and ``seed``."""
  if not os.path.exists(path):
    return None
  try:
    with open(path, encoding="utf-8") as f:
      old = json.load(f)
  except (OSError, ValueError) as e:
    raise JaxstyleError(f"{path}: cannot read it as a suite file ({e}); to start afresh, pass "
                        "another --out or leave out --update") from e
  if not isinstance(old, dict) or old.get("suite") != "jaxstyle-benchmarks":
    raise JaxstyleError(f"{path}: not a suite file of benchmark.py all; pass another --out")
  if (old.get("preset"), old.get("seed")) != (preset, seed):
    raise JaxstyleError(f"{path}: a suite of --preset {old.get('preset')} --seed {old.get('seed')}; "
                        f"--update adds to a suite of the same preset and seed only (asked: "
                        f"{preset}, {seed})")
  return old


def run_suite(names: tuple[str, ...], preset: str, seed: int, checkpoint: str, out: str | None,
              argv: list[str] | None = None, isolate: bool = False,
              keep: dict[str, Any] | None = None) -> dict[str, Any]:
  """Runs ``names`` in order; writes the suite to ``out`` after each; returns it.

  ``isolate``: each benchmark in its own process (``benchmark.py all`` does this by default).
  ``keep``: an earlier suite (``previous_suite``) whose records, skips and failures of
  benchmarks not in ``names`` stay in the result (``--update``); those in ``names`` are redone.
  """
  if not isolate:
    from jaxstyle import parallel  # pylint: disable=g-import-not-at-top
    # The device count is fixed when JAX starts, so the suite asks for what its data-parallel
    # benchmarks need (the cGAN's --cpu_devices) before the first one runs; single-device
    # benchmarks run on the first device as before.
    parallel.request_cpu_devices(cpu_devices_wanted(names, preset, seed, checkpoint))
  benches = registry.registered()
  started = results.start(argv)
  suite: dict[str, Any] = {"suite": "jaxstyle-benchmarks", "version": 1, "preset": preset,
                           "seed": seed, "records": [], "skipped": {}, "failed": {}}
  if keep:
    suite["records"] = [r for r in keep.get("records", []) if r.get("benchmark") not in names]
    for part in ("skipped", "failed"):
      suite[part] = {n: v for n, v in keep.get(part, {}).items() if n not in names}
    suite["updated_from"] = {"meta": keep.get("meta"), "kept": [r.get("benchmark")
                                                                for r in suite["records"]]}
  order = {n: i for i, n in enumerate(SUITE)}
  for i, name in enumerate(names):
    bench = benches[name]
    if name in NEEDS_CHECKPOINT and not checkpoint:
      suite["skipped"][name] = "needs --checkpoint (a train_stylizer.py run directory)"
      continue
    print(f"[{i + 1}/{len(names)}] {name}", file=sys.stderr, flush=True)
    if isolate:
      child = _run_isolated(name, preset, seed, checkpoint)
      suite["records"].extend(child.get("records", []))
      for part in ("skipped", "failed"):
        suite[part].update(child.get(part, {}))
    else:
      try:
        options = options_for(bench, preset, seed, checkpoint)
        bench_started = results.start(argv)
        measured = bench.run(options)
        suite["records"].append(results.make_record(name, bench.config_dict(options), measured,
                                                    results.finish(bench_started)))
      except (JaxstyleError, Exception) as e:  # pylint: disable=broad-except  one failure must not end the suite
        suite["failed"][name] = f"{type(e).__name__}: {str(e).strip().splitlines()[0] if str(e).strip() else ''}"
        traceback.print_exc(file=sys.stderr)
    suite["records"].sort(key=lambda r: order.get(r.get("benchmark"), len(order)))
    suite["meta"] = results.finish(started)
    results.write_record(suite, out, echo=False)
  suite["meta"] = results.finish(started)
  results.write_record(suite, out, echo=False)
  return suite
