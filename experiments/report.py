"""Benchmark records (and training runs) to a Markdown report with tables and PNG plots.

  python experiments/report.py results.json [more.json ...] [--runs RUN_DIR,RUN_DIR] --out report/

Writes ``report/report.md`` (atomically) and its figures under
``report/plots/`` (linked with relative paths). The same inputs give the same
bytes: nothing in the report depends on when it was made.

Inputs (``reporting.load``): each results file holds one record of
``experiments/benchmark.py`` (``benchmarks.results``), a suite
(``{"suite", "records": [...]}``) or a JSON list of records; another JSON
object is shown as free-form results. Several files are shown side by side:
one table column per record (file stem and device kind), overlaid plots.
``--runs`` takes training run directories (``metrics.jsonl``,
``jaxstyle.rundir``); each gives a summary table and a figure of its curves.

The report has, per input file, the date, machine, devices, git commit,
library versions and XLA flags; per benchmark, its headline numbers
(``reporting.tables``: a renderer per benchmark, every scalar for unknown
ones) and figures (``reporting.plots``: throughput against resolution,
scaling with device count, personalization curves, retrieval P@k).

A missing, unreadable or malformed input prints one ``error:`` line naming
the file and exits 2, as does a bad command line.
"""

from __future__ import annotations

import cli
from cli import FLAGS, flags

from jaxstyle import fileio
from reporting import document


def define_flags() -> None:
  flags.DEFINE_string("out", None, "Output folder: report.md and plots/ are written there "
                      "(created if missing).")
  flags.DEFINE_list("runs", [], "Training run directories (with metrics.jsonl) to plot, "
                    "comma-separated: --runs A,B,C.")


def main(argv: list[str]) -> None:
  files = argv[1:]
  if not FLAGS.out:
    raise cli.UsageError("--out is required: the folder for report.md and its plots")
  if not files and not FLAGS.runs:
    raise cli.UsageError("give at least one results file (or --runs RUN_DIR); see --help")
  fileio.check_output_dir(FLAGS.out, "--out")
  print(document.write(files, list(FLAGS.runs), FLAGS.out))


if __name__ == "__main__":
  define_flags()
  cli.run(main, positional=True)
