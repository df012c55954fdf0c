"""Seeded benchmarks; each writes one JSON record (measurements + date, machine, commit, versions).

  python experiments/benchmark.py NAME [flags] [--out results.json]
  python experiments/benchmark.py NAME --help    # that benchmark's flags

Every benchmark takes ``--out PATH``: the record is printed on stdout and, with
``--out``, also written there. Each benchmark is a module of
``experiments/benchmarks/`` (its flags, ``run(options) -> dict``), registered
with ``@register``; the record layout is ``benchmarks.results``.
"""

from __future__ import annotations

import sys

import cli
from cli import FLAGS, flags

import benchmarks

_ARGV = list(sys.argv)  # before run_subcommands drops the benchmark's name from sys.argv


def _subcommand(bench: benchmarks.Benchmark) -> cli.Subcommand:

  def define():
    bench.define_flags()
    flags.DEFINE_string("out", None, "Also write the JSON record to this file (folders created).")

  def main(argv):
    del argv
    benchmarks.run_benchmark(bench.name, bench.options_from_flags(), out=FLAGS.out,
                             argv=_ARGV)

  return cli.Subcommand(bench.help, define=define, main=main)


if __name__ == "__main__":
  cli.run_subcommands({name: _subcommand(b) for name, b in benchmarks.load_all().items()},
                      doc=__doc__)
