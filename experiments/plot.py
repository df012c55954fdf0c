r"""Training curves of run directories as PNGs: losses and metrics from metrics.jsonl, runs overlaid.

  python experiments/plot.py RUN [RUN ...] --out DIR [--metrics d_loss,fid] [--smooth 0.6]

Each RUN is a run directory (the --workdir of train_cgan.py, train_stylizer.py,
train_classifier.py, stylize.py or generate.py) holding metrics.jsonl. Writes
DIR/curves.png: one panel per metric, every run that has it drawn in its own
colour, the legend naming runs by their directory (parent/dir where two share a
name). Metrics are every finite number of metrics.jsonl in first-seen order,
or --metrics; beyond 12 of them the panels continue in curves_2.png, ... The
written paths are printed, one a line. (TensorBoard shows the same curves
live: ``tensorboard --logdir RUN/tensorboard``.)

A RUN that is not a directory or has no metrics.jsonl, a metrics.jsonl with
nothing to plot, or a --metrics name no run has prints one ``error:`` line
naming it and exits 2. A damaged line of metrics.jsonl (e.g. the last line of
a run still writing) is left out with a ``warning:`` line
(``jaxstyle.rundir.RunDir.read_metrics``).
"""

from __future__ import annotations

import os

import cli
from cli import FLAGS, flags

from jaxstyle.errors import DataError
from reporting import load, plots


def define_flags() -> None:
  flags.DEFINE_string("out", None, "Output folder for curves.png (and curves_2.png, ... beyond 12 "
                      "metrics); created if missing.")
  flags.DEFINE_list("metrics", [], "Metrics to plot, comma-separated, in this order (names as in "
                    "metrics.jsonl, e.g. d_loss,g_loss,fid). Default: every numeric metric of the runs.")
  flags.DEFINE_float("smooth", 0.0, "Smoothing weight in [0, 1): TensorBoard's exponential moving "
                     "average (0.6 is TensorBoard's default); the raw curves stay faint behind. 0: off.")


def choose_metrics(runs: list[load.Run], wanted: list[str]) -> list[str]:
  """``wanted`` (checked against the runs), or every metric of the runs in first-seen order."""
  available = list(dict.fromkeys(name for run in runs for name in run.series()))
  if not wanted:
    return available
  missing = [m for m in wanted if m not in available]
  if missing:
    raise cli.UsageError(f"--metrics: no run has {', '.join(missing)}; the runs have "
                         f"{', '.join(available)}")
  return list(dict.fromkeys(wanted))


def write_curves(runs: list[load.Run], names: list[str], out_dir: str, smooth: float) -> list[str]:
  """Draws ``names`` in pages of ``plots.MAX_PANELS`` panels; returns the PNG paths."""
  labels = load.run_labels(runs)
  paths = []
  for page, start in enumerate(range(0, len(names), plots.MAX_PANELS)):
    path = os.path.join(out_dir, "curves.png" if page == 0 else f"curves_{page + 1}.png")
    if plots.metric_curves(runs, labels, names[start:start + plots.MAX_PANELS], path, smooth):
      paths.append(path)
  return paths


def main(argv: list[str]) -> None:
  paths = argv[1:]
  if not paths:
    raise cli.UsageError("give at least one run directory (a --workdir with metrics.jsonl); see --help")
  if not FLAGS.out:
    raise cli.UsageError("--out is required: the folder for curves.png")
  if os.path.exists(FLAGS.out) and not os.path.isdir(FLAGS.out):
    raise cli.UsageError(f"--out {FLAGS.out} is a file; give a folder")
  if not 0.0 <= FLAGS.smooth < 1.0:
    raise cli.UsageError(f"--smooth={FLAGS.smooth}: must lie in [0, 1) (0: no smoothing)")
  runs = load.read_runs(paths)
  for run in runs:
    if not run.series():
      raise DataError(f"{os.path.join(run.path, 'metrics.jsonl')} holds no numeric metrics to plot; "
                      "give a run that has logged some")
  names = choose_metrics(runs, list(FLAGS.metrics))
  os.makedirs(FLAGS.out, exist_ok=True)
  for path in write_curves(runs, names, FLAGS.out, FLAGS.smooth):
    print(path)


if __name__ == "__main__":
  define_flags()
  cli.run(main, positional=True)
