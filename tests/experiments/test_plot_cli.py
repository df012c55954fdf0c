"""experiments/plot.py: training curves of run directories (metrics.jsonl written by RunDir.log_metrics)."""

import os

import numpy as np
import pytest
from conftest import run_experiment
from PIL import Image
from reporting import load, plots

from jaxstyle import rundir


def make_run(path, metrics, steps=range(1, 21), seed=0):
  """A run directory whose metrics.jsonl RunDir.log_metrics wrote: ``metrics`` names, noisy decay."""
  rng = np.random.default_rng(seed)
  run = rundir.RunDir(str(path))
  for step in steps:
    run.log_metrics(step, {m: float(np.exp(-step / (5 + i)) + 0.05 * rng.random())
                           for i, m in enumerate(metrics)})
  run.close()
  return str(path)


def png(path):
  pixels = np.asarray(Image.open(path).convert("RGB")).astype(int)
  assert pixels.std() > 10 and len(np.unique(pixels.reshape(-1, 3), axis=0)) > 50  # drawn, not blank
  return pixels


def one_error_line(proc, *words):
  assert proc.returncode == 2, proc.stderr
  lines = [ln for ln in proc.stderr.strip().splitlines() if not ln.startswith("warning:")]
  assert len(lines) == 1 and lines[0].startswith("error:"), proc.stderr
  for w in words:
    assert str(w) in lines[0], (w, lines[0])


def test_runs_overlaid_one_panel_per_metric(tmp_path):
  a = make_run(tmp_path / "a" / "run", ["d_loss", "g_loss", "fid"])
  b = make_run(tmp_path / "b" / "run", ["d_loss", "g_loss", "eval_style/wave"], steps=range(2, 31, 2))
  rundir.RunDir(b).log_metrics(32, {"d_loss": float("nan")})  # non-finite: left out of the curve
  out = tmp_path / "plots"
  proc = run_experiment("plot.py", a, b, "--out", out, "--smooth=0.6")
  assert proc.stdout.split() == [str(out / "curves.png")]
  pixels = png(out / "curves.png")
  assert pixels.shape[:2] == (2 * 340, 3 * 480)  # 4 metrics: 2 rows of 3 panels, 4.8 x 3.4 in at 100 dpi
  # --metrics: the chosen ones, in that order; one panel.
  proc = run_experiment("plot.py", a, b, "--out", out / "one", "--metrics=g_loss")
  assert png(out / "one" / "curves.png").shape[:2] == (340, 480)
  # The legends: runs by directory, parent/dir where the names clash.
  runs = load.read_runs([a, b, make_run(tmp_path / "c", ["x"])])
  assert load.run_labels(runs) == ["a/run", "b/run", "c"]


def test_many_metrics_continue_on_further_pages(tmp_path):
  run = make_run(tmp_path / "wide", [f"m{i:02d}" for i in range(14)], steps=range(1, 4))
  proc = run_experiment("plot.py", run, "--out", tmp_path / "out")
  assert proc.stdout.split() == [str(tmp_path / "out" / "curves.png"),
                                 str(tmp_path / "out" / "curves_2.png")]
  assert png(tmp_path / "out" / "curves.png").shape[:2] == (4 * 340, 3 * 480)
  assert png(tmp_path / "out" / "curves_2.png").shape[:2] == (340, 2 * 480)


def test_smoothing_is_tensorboards_debiased_average():
  assert plots.smoothed([1.0, 2.0, 3.0], 0.0) == [1.0, 2.0, 3.0]
  ys = plots.smoothed([4.0, 0.0], 0.5)
  assert ys[0] == 4.0 and ys[1] == pytest.approx((0.5 * 0.5 * 4.0) / (1 - 0.25))


def test_bad_inputs_one_error_line_exit_2(tmp_path):
  good = make_run(tmp_path / "good", ["loss"])
  out = tmp_path / "out"
  one_error_line(run_experiment("plot.py", tmp_path / "missing", "--out", out, check=False),
                 "missing", "no such run directory", "--workdir")
  (tmp_path / "empty").mkdir()
  one_error_line(run_experiment("plot.py", good, tmp_path / "empty", "--out", out, check=False),
                 "empty", "no metrics.jsonl")
  (tmp_path / "garbage").mkdir()
  (tmp_path / "garbage" / "metrics.jsonl").write_text("{not json\n\x00\x01\n")
  one_error_line(run_experiment("plot.py", tmp_path / "garbage", "--out", out, check=False),
                 os.path.join(tmp_path / "garbage", "metrics.jsonl"), "no numeric metrics")
  one_error_line(run_experiment("plot.py", good, "--metrics=loss,fid", "--out", out, check=False),
                 "--metrics", "fid", "loss")
  one_error_line(run_experiment("plot.py", good, "--smooth=1.5", "--out", out, check=False), "--smooth")
  one_error_line(run_experiment("plot.py", good, check=False), "--out")
  one_error_line(run_experiment("plot.py", "--out", out, check=False), "run directory")
  assert not out.exists()


def test_help_explains_every_flag():
  proc = run_experiment("plot.py", "--help")
  for flag in ("--out", "--metrics", "--smooth"):
    assert flag in proc.stdout
  assert "RUN [RUN ...]" in proc.stdout and "tensorboard --logdir" in proc.stdout
