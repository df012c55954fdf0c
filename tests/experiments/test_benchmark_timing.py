"""benchmarks.timing: the median and spread of timed calls, and the PyTorch grid's variants and best."""

import itertools
import statistics

import pytest

from benchmarks import timing  # experiments/ is on sys.path (conftest)


def test_timed_reports_first_call_apart_and_the_median_with_its_spread(monkeypatch):
  # A fake clock: each call() advances it by the next duration; perf_counter reads it.
  durations = iter([9.0, 5.0, 0.010, 0.030, 0.020, 0.050, 0.040])  # first, 1 warm-up, 5 timed
  clock = {"t": 0.0}
  monkeypatch.setattr(timing.time, "perf_counter", lambda: clock["t"])

  def call():
    clock["t"] += next(durations)

  t = timing.timed(call, warmup=2, repeats=5)
  assert t["first_call_s"] == pytest.approx(9.0)
  want = [10.0, 30.0, 20.0, 50.0, 40.0]
  assert t["times_ms"] == pytest.approx(want)
  assert t["median_ms"] == pytest.approx(statistics.median(want))
  assert (t["min_ms"], t["max_ms"]) == pytest.approx((10.0, 50.0))
  assert t["iqr_ms"] == pytest.approx(40.0 - 20.0)
  assert t["repeats"] == 5


def test_grid_times_every_variant_and_keeps_the_fastest():
  torch = pytest.importorskip("torch")
  opts = timing.TorchGridOptions(torch_modes=("eager",), layouts=("nchw", "channels_last"),
                                 torch_threads=(1, 0))
  grid = timing.TorchGrid(opts, warmup=1, repeats=2)
  seen = []

  def build(v):
    seen.append((v.name, torch.get_num_threads()))
    x = torch.ones(8, 3, 16, 16).contiguous(memory_format=grid.fmt(v))
    return lambda: (x * 2).sum()

  out = grid.run(build, "calls_per_s")
  n = timing.threads(0)
  names = {f"eager_{l}_{t}t" for l, t in itertools.product(("nchw", "channels_last"), (1, n))}
  assert set(out["variants"]) == names and {s for s, _ in seen} == names
  assert all(threads == int(name.split("_")[-1][:-1]) for name, threads in seen)  # threads set
  rates = {k: v["calls_per_s"] for k, v in out["variants"].items()}
  assert out["best"] == max(rates, key=rates.get) and out["calls_per_s"] == max(rates.values())
  assert out["compile_error"] is None


def test_grid_keeps_eager_when_compile_fails(monkeypatch):
  torch = pytest.importorskip("torch")
  opts = timing.TorchGridOptions(torch_modes=("compile", "eager"), layouts=("nchw",),
                                 torch_threads=(1,))
  grid = timing.TorchGrid(opts, warmup=1, repeats=1)

  def broken_compile(fn, **kwargs):
    del fn, kwargs

    def call():
      raise RuntimeError("no C++ compiler here\nsecond line")
    return call

  monkeypatch.setattr(grid.torch, "compile", broken_compile)
  out = grid.run(lambda v: grid.compile(lambda: torch.ones(3).sum(), v), "calls_per_s")
  assert set(out["variants"]) == {"eager_nchw_1t"} and out["best"] == "eager_nchw_1t"
  assert out["compile_error"] == "RuntimeError: no C++ compiler here"


def test_xla_cost_counts_a_matmul_and_roofline_scales_by_devices():
  import jax  # pylint: disable=g-import-not-at-top
  import jax.numpy as jnp  # pylint: disable=g-import-not-at-top
  a = jnp.ones((64, 32), jnp.float32)
  b = jnp.ones((32, 16), jnp.float32)
  cost = timing.xla_cost(jax.jit(jnp.dot).lower(a, b).compile())
  assert cost["xla_gflop"] == pytest.approx(2 * 64 * 32 * 16 / 1e9)
  r = timing.roofline(cost, median_ms=2.0, matmul={"gflops": 10.0}, devices=2)
  assert r["achieved_gflops"] == pytest.approx(2 * cost["xla_gflop"] / 2e-3)
  assert r["vs_matmul"] == pytest.approx(r["achieved_gflops"] / 10.0)
  assert "vs_matmul" not in timing.roofline(cost, 2.0, None)
  gpu = timing.roofline(cost, median_ms=2.0, matmul={"gflops": 10.0}, backend="gpu")
  assert "achieved_gflops" not in gpu and "cuDNN" in gpu["roofline_note"]
  assert gpu["xla_gflop"] == cost["xla_gflop"]
