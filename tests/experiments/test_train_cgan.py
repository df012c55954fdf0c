"""End-to-end tests of experiments/train_cgan.py (subprocesses on the real MNIST files)."""

import json
import os

import jax
import numpy as np
import pytest
from PIL import Image

from conftest import run_experiment
from jaxstyle import checkpoint, train
from jaxstyle.nets import cgan

TINY_FLAGS = ["--batch_size=16", "--z_dim=8", "--g_width=8", "--d_width=8", "--embed_dim=4",
              "--d_feature_dim=16", "--progress=false", "--seed=3", "--log_every=2"]


def _flags(shared_data, workdir, *extra):
  return [f"--mnist_dir={os.path.join(shared_data, 'mnist')}", f"--workdir={workdir}", *TINY_FLAGS,
          *extra]


def _final_state(workdir, decay=(0, 0)):
  cfg = cgan.CGANConfig(z_dim=8, g_width=8, d_width=8, embed_dim=4, d_feature_dim=16)
  tx = train.adam(train.linear_decay(2e-4, *decay))
  template = jax.tree.map(np.asarray, train.init_cgan_state(cfg, 0, tx, tx, g_ema=True))
  ck = checkpoint.Checkpointer(os.path.join(workdir, "checkpoints"))
  state = ck.restore(template)
  ck.close()
  return state


def test_run_directory_contents(tmp_path, shared_data):
  wd = tmp_path / "run"
  proc = run_experiment("train_cgan.py", *_flags(shared_data, wd, "--num_steps=6", "--sample_every=3",
                                                 "--eval_every=6", "--eval_samples=100",
                                                 "--checkpoint_every=3", "--parallel=jit"))
  summary = json.loads(proc.stdout.strip().splitlines()[-1])
  assert summary["step"] == 6 and 0.0 <= summary["oracle_accuracy"] <= 1.0
  config = json.loads((wd / "config.json").read_text())
  assert config["config"]["batch_size"] == 16 and config["config"]["loss"] == "nonsaturating"
  assert config["num_devices"] == 1 and "jax" in config["versions"]
  rows = [json.loads(line) for line in (wd / "metrics.jsonl").read_text().splitlines()]
  assert [r["step"] for r in rows if "d_loss" in r] == [2, 4, 6]
  evals = [r for r in rows if "fid" in r]
  assert len(evals) == 1 and evals[0]["step"] == 6
  for key in ("oracle_accuracy", "fid", "fid_floor", "inception_score", "diversity"):
    assert np.isfinite(evals[0][key]), key
  assert evals[0]["fid"] > evals[0]["fid_floor"] > 0  # 6 steps of training are far from real digits
  assert sorted(os.listdir(wd / "samples")) == ["step_00003.png", "step_00006.png"]
  grid = np.asarray(Image.open(wd / "samples" / "step_00006.png"))
  assert grid.shape[:2] == (10 * 30 + 2, 10 * 30 + 2)  # 10x10 tiles of 28 px, 2 px padding
  assert sorted(os.listdir(wd / "checkpoints"))[:2] == ["3", "6"]
  # Rerunning the finished command resumes at step 6 and trains no further.
  again = run_experiment("train_cgan.py", *_flags(shared_data, wd, "--num_steps=6", "--sample_every=3",
                                                  "--eval_every=0", "--checkpoint_every=3",
                                                  "--parallel=jit"))
  assert json.loads(again.stdout.strip().splitlines()[-1])["resumed_from"] == 6


@pytest.mark.slow  # five training subprocesses
def test_sigkill_then_rerun_is_bit_identical(tmp_path, shared_data):
  # A decaying learning rate (its schedule count lives in the optimizer states) over 2 CPU devices.
  common = ["--num_steps=8", "--checkpoint_every=2", "--eval_every=0", "--sample_every=0",
            "--parallel=shard_map", "--cpu_devices=2", "--lr_decay_begin=3", "--lr_decay_end=8"]
  ref = tmp_path / "ref"
  run_experiment("train_cgan.py", *_flags(shared_data, ref, *common))
  want = _final_state(str(ref), decay=(3, 8))
  assert int(want.step) == 8
  assert json.loads((ref / "config.json").read_text())["num_devices"] == 2

  # (a) killed after step 5 (last checkpoint: 4); (b) killed while saving step 4.
  for name, kill in (("after_step", ["--debug_kill_at_step=5"]),
                     ("during_save", ["--debug_kill_at_step=4", "--debug_kill_during_save"])):
    wd = tmp_path / name
    killed = run_experiment("train_cgan.py", *_flags(shared_data, wd, *common, *kill), check=False)
    assert killed.returncode == -9, killed.stderr[-2000:]
    ck = checkpoint.Checkpointer(str(wd / "checkpoints"))
    latest = ck.latest_step()
    ck.close()
    assert latest in ((4,) if name == "after_step" else (2, 4))
    rerun = run_experiment("train_cgan.py", *_flags(shared_data, wd, *common))
    assert json.loads(rerun.stdout.strip().splitlines()[-1])["resumed_from"] == latest
    got = _final_state(str(wd), decay=(3, 8))
    assert jax.tree.all(jax.tree.map(np.array_equal, want, got)), name
    steps = [json.loads(line)["step"] for line in (wd / "metrics.jsonl").read_text().splitlines()]
    assert steps == [2, 4, 6, 8]  # no duplicated rows after the resume


def _bad(shared_data, tmp_path, *extra, env=None):
  proc = run_experiment("train_cgan.py", *_flags(shared_data, tmp_path / "bad", "--num_steps=2",
                                                 "--eval_every=0", *extra), env=env, check=False)
  lines = proc.stderr.strip().splitlines()
  assert proc.returncode == 2, proc.stderr[-2000:]
  assert len(lines) == 1 and lines[0].startswith("error: "), proc.stderr[-2000:]
  return lines[0]


@pytest.mark.slow  # one subprocess per bad flag (about 30 s); the checks themselves run in-process in test_train_cgan_config.py
def test_bad_flags_fail_fast_with_one_line(tmp_path, shared_data):
  assert "--dataset" in _bad(shared_data, tmp_path, "--dataset=cifar10")
  empty = tmp_path / "empty"
  empty.mkdir()
  assert "train-images-idx3-ubyte" in _bad(shared_data, tmp_path, f"--mnist_dir={empty}")
  assert "not divisible by the number of devices (4" in _bad(
      shared_data, tmp_path, "--batch_size=6", env={"XLA_FLAGS": "--xla_force_host_platform_device_count=4"})
  assert "--parallel" in _bad(shared_data, tmp_path, "--parallel=vmap")
  assert "--lr_decay_begin" in _bad(shared_data, tmp_path, "--lr_decay_begin=10", "--lr_decay_end=5")
  assert "--lr_decay_begin=10: needs a positive --lr_decay_end" in _bad(
      shared_data, tmp_path, "--lr_decay_begin=10")
  assert "--lr_decay_end=-3: must be >= 0" in _bad(shared_data, tmp_path, "--lr_decay_end=-3")
  assert "--d_learning_rate" in _bad(shared_data, tmp_path, "--d_learning_rate=0")
  assert "--cpu_devices" in _bad(shared_data, tmp_path, "--cpu_devices=-1")


# Both slow: a 2-device trainer subprocess each (about 28 s); test_train_cgan_config.py checks
# in-process that each flagfile gives its config variant.
@pytest.mark.slow
@pytest.mark.parametrize("name", ["cgan_mnist_quick.flags", "cgan_mnist.flags"])
def test_shipped_flagfiles_run(tmp_path, shared_data, name):
  """The README's configurations parse and train (2 steps) with the recipe they document."""
  wd = tmp_path / "run"  # the flagfile path as the README gives it, relative to the repository root
  proc = run_experiment("train_cgan.py", f"--flagfile=experiments/configs/{name}",
                        f"--mnist_dir={os.path.join(shared_data, 'mnist')}", f"--workdir={wd}",
                        "--num_steps=2", "--eval_every=0", "--sample_every=0", "--progress=false")
  assert json.loads(proc.stdout.strip().splitlines()[-1])["step"] == 2
  config = json.loads((wd / "config.json").read_text())
  assert config["num_devices"] == 2  # --cpu_devices=2
  assert config["config"]["loss"] == "hinge" and config["model"]["g_head_width"] == 16
