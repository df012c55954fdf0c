"""The cGAN benchmark runs both frameworks on the same architecture (a smoke run, no timing asserted)."""

import json

import pytest

from conftest import run_experiment


@pytest.mark.parametrize("arch", [[], ["--g_head_width=4", "--g_norm=none", "--loss=hinge"]])
def test_bench_cgan_same_architecture_both_setups(arch):
  pytest.importorskip("torch")
  proc = run_experiment("benchmark.py", "cgan", "--steps=1", "--repeats=1", "--warmup=1",
                        "--batch_size=8", "--g_width=8", "--d_width=8", "--d_feature_dim=16",
                        "--embed_dim=4", "--z_dim=8", "--cpu_devices=2", "--torch_threads=1", *arch)
  out = json.loads(proc.stdout)
  jax_setups = out["jax"]["setups"]
  assert set(jax_setups) == {"jit", "shard_map_2dev"}
  assert jax_setups["jit"]["devices"] == 1 and jax_setups["shard_map_2dev"]["devices"] == 2
  assert out["torch"]["setups"]["1_threads"]["threads"] == 1
  # Same architecture: the in-house PyTorch nets have exactly jaxstyle's parameter count.
  assert out["jax"]["params"] == out["torch"]["params"] and "warning" not in out
  assert out["jax_over_torch"] == pytest.approx(out["jax"]["steps_per_s"] / out["torch"]["steps_per_s"])
