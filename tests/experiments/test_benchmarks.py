"""experiments/benchmark.py: the command line, the JSON record, and the cGAN twin's architecture.

Smoke runs with tiny sizes; no timing is asserted.
"""

import json

import pytest

from conftest import run_experiment

BENCHMARKS = ("vgg", "gatys", "cgan", "retrieval", "stylizer", "stylizer_quality", "stylizer_published")


def test_help_lists_every_benchmark():
  proc = run_experiment("benchmark.py", "--help")
  for name in BENCHMARKS:
    assert f"  {name} " in proc.stdout, name


def test_unknown_benchmark_is_one_error_line_exit_2():
  proc = run_experiment("benchmark.py", "nope", check=False)
  assert proc.returncode == 2
  lines = proc.stderr.strip().splitlines()
  assert len(lines) == 1 and lines[0].startswith("error:") and "nope" in lines[0], proc.stderr


def test_cgan_flags_come_from_the_cgan_config():
  """`benchmark.py cgan --help`: the Config's model/optimiser flags, not its training-loop flags."""
  proc = run_experiment("benchmark.py", "cgan", "--help")
  for flag in ("--g_head_width", "--loss", "--learning_rate", "--adam_b1", "--batch_size",
               "--steps", "--torch_threads", "--out"):
    assert flag in proc.stdout, flag
  for flag in ("--num_steps", "--eval_every", "--workdir", "--mnist_dir", "--sizes"):
    assert flag not in proc.stdout, flag
  bad = run_experiment("benchmark.py", "cgan", "--loss=nope", check=False)
  assert bad.returncode == 2 and bad.stderr.strip().startswith("error:"), bad.stderr


def test_smoke_run_writes_record_with_metadata(tmp_path):
  out = tmp_path / "sub" / "retrieval.json"
  proc = run_experiment("benchmark.py", "retrieval", "--sizes=300", "--dim=8", "--k=3",
                        "--chunk=128", "--repeats=1", f"--out={out}")
  record = json.loads(out.read_text())
  assert json.loads(proc.stdout) == record
  assert record["benchmark"] == "retrieval"
  assert record["config"]["sizes"] == [300] and record["config"]["k"] == 3
  (row,) = record["results"]["sizes"]
  assert row["n"] == 300 and row["matches_numpy"] and "first_call_s" in row
  meta = record["meta"]
  for key in ("date", "duration_s", "machine", "git", "versions", "xla_flags", "devices", "argv",
              "memory"):
    assert key in meta, key
  assert meta["memory"]["host_peak_rss_mib"] > 50  # Python + JAX alone is more than that
  assert meta["machine"]["cpu_model"] and meta["machine"]["cores"] >= 1
  assert set(meta["git"]) == {"commit", "dirty"}
  for lib in ("jax", "jaxlib", "flax", "optax", "orbax.checkpoint", "torch"):
    assert lib in meta["versions"], lib
  assert meta["devices"]["count"] >= 1 and meta["devices"]["kind"]
  assert "retrieval" in meta["argv"]


@pytest.mark.slow  # two cGAN benchmarks (jaxstyle and PyTorch), about 40 s each
@pytest.mark.parametrize("arch", [[], ["--g_head_width=4", "--g_norm=none", "--loss=hinge"]])
def test_bench_cgan_same_architecture_both_setups(arch):
  pytest.importorskip("torch")
  proc = run_experiment("benchmark.py", "cgan", "--steps=2", "--repeats=1", "--warmup=1",
                        "--batch_size=8", "--g_width=8", "--d_width=8", "--d_feature_dim=16",
                        "--embed_dim=4", "--z_dim=8", "--cpu_devices=2", "--torch_threads=1",
                        "--torch_modes=eager", *arch)
  out = json.loads(proc.stdout)["results"]
  jax_setups = out["jax"]["setups"]
  assert set(jax_setups) == {"jit", "shard_map_2dev"}
  assert jax_setups["jit"]["devices"] == 1 and jax_setups["shard_map_2dev"]["devices"] == 2
  assert all(s["compile_s"] > 0 for s in jax_setups.values())  # compile time apart from steps
  for s in jax_setups.values():  # XLA's count of one step (per partition) over the time of one step
    assert s["achieved_gflops"] == pytest.approx(
        s["devices"] * s["xla_gflop"] / (s["ms_per_step"] / 1e3), rel=1e-6)
  # The PyTorch grid: every requested variant timed, the fastest is the reference.
  setups = out["torch"]["setups"]
  assert set(setups) == {"eager_nchw_1t", "eager_channels_last_1t"}
  assert all(s["threads"] == 1 and s["mode"] == "eager" for s in setups.values())
  assert out["torch"]["steps_per_s"] == max(s["steps_per_s"] for s in setups.values())
  # Same architecture: the in-house PyTorch nets have exactly jaxstyle's parameter count.
  assert out["jax"]["params"] == out["torch"]["params"] and "warning" not in out
  assert out["jax_over_torch"] == pytest.approx(out["jax"]["steps_per_s"] / out["torch"]["steps_per_s"])


def test_gatys_step_benchmark_runs_and_both_sides_start_at_the_same_loss(tmp_path):
  """`benchmark.py gatys` at a tiny size: the jitted jaxstyle step (``optimize.make_stepper``) and
  the PyTorch twin evaluate the same objective on the same images and real partial weights."""
  pytest.importorskip("torch")
  out = tmp_path / "gatys.json"
  run_experiment("benchmark.py", "gatys", "--sizes=32", "--steps=2", "--repeats=1", "--warmup=1",
                 "--torch_modes=eager", "--layouts=nchw", "--torch_threads=1", f"--out={out}")
  entry = json.loads(out.read_text())["results"]["sizes"]["32"]
  assert entry["jax_f32_compile_s"] > 0 and entry["jax_f32_s_per_step"] > 0
  lo, hi = entry["jax_f32_spread_s_per_step"]
  assert lo <= entry["jax_f32_s_per_step"] <= hi
  assert entry["jax_f32_roofline"]["xla_gflop"] > 0
  assert entry["torch_best"] == "eager_nchw_1t" and entry["torch_s_per_step"] > 0
  assert entry["jax_f32_loss0"] > 0
  assert entry["jax_f32_loss0"] == pytest.approx(entry["torch_loss0"], rel=1e-4)
  assert entry["ratio_jax_f32_over_torch"] == pytest.approx(
      entry["jax_f32_s_per_step"] / entry["torch_s_per_step"])
