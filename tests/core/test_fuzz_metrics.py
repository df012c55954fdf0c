"""Fuzz: ``metrics.jsonl`` readers: ``RunDir.read_metrics`` / ``truncate_metrics`` (resume) and
the report's ``read_run``.

Seed: eight rows as ``RunDir.log_metrics`` writes them; line-level and byte
mutations. Damaged lines are left out with a warning (documented); anything
else is ``ConfigError`` (``RunDir``) or ``ReportInputError`` (``read_run``).
"""

import json

import fuzz_testlib as fz
from jaxstyle.errors import ConfigError
from jaxstyle.rundir import RunDir
from reporting import load as report_load

SEED = 13
ROWS = [{"step": s, "loss": 1.0 / s, "fid": 3.5, "lr": 1e-4} for s in range(1, 9)]
METRICS = "".join(json.dumps(r, sort_keys=True) + "\n" for r in ROWS)


def test_fuzz_metrics(tmp_path):
  run = RunDir(str(tmp_path / "seed"))
  fz.write(run.metrics_path, METRICS.encode())
  assert run.read_metrics() == ROWS  # the seed itself is valid

  def read_and_truncate(run_dir):
    RunDir(run_dir).read_metrics()
    RunDir(run_dir).truncate_metrics(after_step=4)

  mutators = [lambda rng: fz.mutate_lines(METRICS, rng), lambda rng: fz.mutate_bytes(
      METRICS.encode(), rng)]
  fz.fuzz("RunDir.read_metrics+truncate_metrics", 300, SEED, str(tmp_path), ".jsonl", mutators,
          fz.in_folder(str(tmp_path), "metrics.jsonl", read_and_truncate), (ConfigError,),
          names_file=False)
  fz.fuzz("report.read_run", 200, SEED + 1, str(tmp_path), ".jsonl", mutators,
          fz.in_folder(str(tmp_path), "metrics.jsonl", report_load.read_run),
          (report_load.ReportInputError,), names_file=False)
