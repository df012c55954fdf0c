"""Seeded benchmarks; each writes one JSON record (measurements + date, machine, commit, versions).

  python experiments/benchmark.py NAME [flags] [--out results.json]
  python experiments/benchmark.py NAME --help    # that benchmark's flags
  python experiments/benchmark.py all [--preset quick|full] [--seed 0] [--checkpoint RUN] \
      --out results.json                         # the whole suite in one file (benchmarks.suite)
  python experiments/report.py results.json --out report/   # tables and plots

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
from jaxstyle import fileio

_ARGV = list(sys.argv)  # before run_subcommands drops the benchmark's name from sys.argv


def _subcommand(bench: benchmarks.Benchmark) -> cli.Subcommand:

  def define():
    bench.define_flags()
    flags.DEFINE_string("out", None, "Also write the JSON record to this file (folders created).")

  def main(argv):
    del argv
    if FLAGS.out:
      fileio.check_output_file(FLAGS.out, "--out")
    benchmarks.run_benchmark(bench.name, bench.options_from_flags(), out=FLAGS.out,
                             argv=_ARGV)

  return cli.Subcommand(bench.help, define=define, main=main)


def _suite_subcommand(registered: dict[str, benchmarks.Benchmark]) -> cli.Subcommand:
  from benchmarks import suite  # pylint: disable=g-import-not-at-top
  names = suite.suite_names(registered)

  def define():
    flags.DEFINE_enum("preset", "quick", list(suite.PRESETS), "quick: smaller sizes and fewer "
                      "steps (benchmarks.suite.QUICK, about 1.5 hours on a 2-core CPU); full: every "
                      "benchmark's own defaults (hours on a 2-core CPU).")
    flags.DEFINE_integer("seed", 0, "Seed given to every benchmark (weights, inputs, data order).")
    flags.DEFINE_string("checkpoint", "", "A train_stylizer.py run directory: stylizer_quality and "
                        "personalize need it (skipped without), retrieval_quality adds its "
                        "style encoder.")
    flags.DEFINE_list("only", [], f"Run only these benchmarks (default: all of {','.join(names)}).")
    flags.DEFINE_list("skip", [], "Leave these benchmarks out.")
    flags.DEFINE_string("out", None, "Write the suite JSON here (rewritten after each benchmark, "
                        "so an interrupted suite keeps what it finished).")
    flags.DEFINE_bool("update", False, "Add to the suite already in --out (same --preset and "
                      "--seed): its records of benchmarks not run now are kept, those run now are "
                      "replaced. Without it --out is started afresh.")
    flags.DEFINE_bool("isolate", True, "Run each benchmark in a fresh Python process (its own "
                      "JAX start: device count, XLA flags, peak memory); --noisolate runs them "
                      "all in this process.")

  def main(argv):
    del argv
    if FLAGS.out:
      fileio.check_output_file(FLAGS.out, "--out")
    for flag in ("only", "skip"):
      unknown = [n for n in FLAGS[flag].value if n not in names]
      if unknown:
        raise cli.UsageError(f"--{flag}: unknown benchmark(s) {', '.join(unknown)}; choose from "
                             f"{', '.join(names)}")
    chosen = tuple(n for n in names if (not FLAGS.only or n in FLAGS.only) and n not in FLAGS.skip)
    if FLAGS.update and not FLAGS.out:
      raise cli.UsageError("--update needs --out (the suite file to add to)")
    keep = suite.previous_suite(FLAGS.out, FLAGS.preset, FLAGS.seed) if FLAGS.update else None
    result = suite.run_suite(chosen, FLAGS.preset, FLAGS.seed, FLAGS.checkpoint, FLAGS.out,
                             argv=_ARGV, isolate=FLAGS.isolate, keep=keep)
    done = [r["benchmark"] for r in result["records"]]
    print(f"done: {', '.join(done) or 'nothing'}"
          + "".join(f"; skipped {n}: {why}" for n, why in result["skipped"].items())
          + "".join(f"; FAILED {n}: {why}" for n, why in result["failed"].items()))
    if result["failed"]:
      sys.exit(1)

  return cli.Subcommand("every benchmark in one run and one suite file (--preset, --seed)",
                        define=define, main=main)


if __name__ == "__main__":
  _registered = benchmarks.load_all()
  _commands = {"all": _suite_subcommand(_registered)}
  _commands.update({name: _subcommand(b) for name, b in _registered.items()})
  cli.run_subcommands(_commands, doc=__doc__)
