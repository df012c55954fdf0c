"""jaxstyle's benchmarks: one registry, one module per benchmark, JSON records.

  python experiments/benchmark.py NAME [flags] [--out results.json]

A new benchmark is one new module here (see ``registry``) added to
``MODULES``. ``run_benchmark(name, options, out)`` runs one in-process and
returns its record (``results``: the measurements plus date, machine, git
commit, versions, XLA flags and devices).
"""

from __future__ import annotations

import importlib
from typing import Any

from benchmarks import results
from benchmarks.registry import Benchmark, register, registered  # noqa: F401

MODULES = ("vgg", "gatys", "gatys_quality", "cgan", "cgan_quality", "retrieval", "stylizer",
           "stylizer_quality", "stylizer_published", "personalize", "retrieval_quality",
           "stylize_tradeoff")


def load_all() -> dict[str, Benchmark]:
  """Imports every benchmark module; returns name -> benchmark (cheap: no JAX, no torch)."""
  for module in MODULES:
    importlib.import_module(f"benchmarks.{module}")
  return registered()


def run_benchmark(name: str, options: Any, out: str | None = None,
                  argv: list[str] | None = None) -> dict[str, Any]:
  """Runs benchmark ``name`` with ``options``; prints its record, writes it to ``out``; returns it.

  ``argv``: the command line to record (default: ``sys.argv``).
  """
  bench = load_all()[name]
  started = results.start(argv)
  measured = bench.run(options)
  record = results.make_record(name, bench.config_dict(options), measured, results.finish(started))
  results.write_record(record, out)
  return record
