"""benchmarks.cgan_quality: both sides' curves recorded; fixed seeds, identical quality numbers."""

import dataclasses
import os

import jax
import numpy as np
import pytest

import benchmarks  # experiments/ is on sys.path (conftest)
from benchmarks import cgan_quality, suite
from configs import cgan as cgan_config

from jaxstyle import config as cfglib

REGISTERED = benchmarks.load_all()
CURVE_FIELDS = ("step", "train_wall_s", "oracle_accuracy", "fid", "fid_ratio", "inception_score")
SIDE_FIELDS = ("setup", "params", "first_step_s", "train_wall_s", "eval_s", "steps_per_s",
               "step_to_accuracy", "time_to_accuracy_s", "step_to_fid", "time_to_fid_s", "final",
               "curve")


def _tiny_options(shared_data):
  config = cgan_config.Config(
      mnist_dir=os.path.join(shared_data, "mnist"), batch_size=16, z_dim=8, g_width=8,
      g_head_width=4, d_width=8, embed_dim=4, d_feature_dim=16, loss="hinge", ema_decay=0.9,
      lr_decay_begin=1, lr_decay_end=6, cpu_devices=0, seed=1)
  return cfglib.validate(cgan_quality.Options(
      steps=4, eval_every=2, eval_samples=40, probe_steps=1, torch_modes=("eager",),
      layouts=("nchw",), torch_threads=(1,), config=config))


def _quality(side: dict) -> list[dict]:
  return [{k: v for k, v in p.items() if k != "train_wall_s"} for p in side["curve"]]


@pytest.fixture(scope="module")
def first_run(shared_data):
  """A tiny run's record (both sides), and its options."""
  pytest.importorskip("torch")
  options = _tiny_options(shared_data)
  return benchmarks.run_benchmark("cgan_quality", options), options


@pytest.mark.slow  # two tiny trainings of both sides (about 60 s)
def test_same_seed_same_quality_numbers(first_run):
  """A second run (cheaper: JAX's op caches are warm) repeats every quality number exactly."""
  record, options = first_run
  first, again = record["results"], cgan_quality.run(options)
  for side in ("jax", "torch"):
    assert _quality(first[side]) == _quality(again[side]), side
  assert first["fid_floor"] == again["fid_floor"]


@pytest.mark.slow  # shares the runs above
def test_record_has_both_curves(first_run):
  record, _ = first_run
  assert record["benchmark"] == "cgan_quality" and record["config"]["steps"] == 4
  cfg = record["config"]["config"]
  assert cfg["g_width"] == 8 and "num_steps" not in cfg and "eval_every" not in cfg
  r = record["results"]
  assert r["eval_steps"] == [2, 4] and r["fid_floor"] > 0
  for side in ("jax", "torch"):
    out = r[side]
    for key in SIDE_FIELDS:
      assert key in out, (side, key)
    assert [p["step"] for p in out["curve"]] == [2, 4]
    for p in out["curve"]:
      for key in CURVE_FIELDS:
        assert key in p, (side, key)
      assert 0 <= p["oracle_accuracy"] <= 1
      assert p["fid_ratio"] == pytest.approx(p["fid"] / r["fid_floor"])
    assert out["final"]["step"] == 4
  assert r["torch"]["setup"] == "eager_nchw_1t" and r["torch"]["probe"]["best"] == "eager_nchw_1t"
  assert r["jax"]["params"] == r["torch"]["params"] and "warning" not in r
  for key in ("time_to_accuracy_s_jax_over_torch", "time_to_fid_s_jax_over_torch",
              "steps_per_s_jax_over_torch"):
    assert key in r


@pytest.mark.parametrize("arch", [{}, {"g_head_width": 0, "g_norm": "none"}])
def test_twin_starts_from_jaxstyles_parameters(arch):
  """The copied initial parameters give the twin jaxstyle's outputs (layouts mapped right)."""
  torch = pytest.importorskip("torch")
  from jaxstyle.nets import cgan
  config = cgan_config.Config(**{"z_dim": 8, "embed_dim": 4, "g_width": 8, "g_head_width": 4,
                                 "d_width": 8, "d_feature_dim": 16, **arch})
  params = cgan_quality._initial_state(config).params
  gen, disc = cgan_quality.make_twin(config, params)
  model = cgan_config.model_config(config)
  rng = np.random.default_rng(0)
  z = rng.standard_normal((4, config.z_dim)).astype(np.float32)
  y = np.arange(4, dtype=np.int32)
  x = rng.random((4, 28, 28, 1)).astype(np.float32)
  with torch.no_grad():
    g = gen(torch.from_numpy(z), torch.from_numpy(y).long()).permute(0, 2, 3, 1).numpy()
    d = disc(torch.from_numpy(x).permute(0, 3, 1, 2).contiguous(), torch.from_numpy(y).long())
  want_g = jax.jit(cgan.Generator(model).apply)({"params": params["g"]}, z, y)  # one compile
  want_d = jax.jit(cgan.Discriminator(model).apply)({"params": params["d"]}, x, y)
  np.testing.assert_allclose(g, want_g, atol=1e-5)
  np.testing.assert_allclose(d.numpy(), want_d, atol=1e-5)


def test_defaults_are_the_quick_recipe_and_the_suite_preset_applies():
  quick = cgan_config.get_config("quick")
  options = cgan_quality.default_options()
  for name in cgan_quality.used_fields():
    if name != "mnist_dir":
      assert getattr(options.config, name) == getattr(quick, name), name
  assert options.steps == quick.num_steps
  opts = suite.options_for(REGISTERED["cgan_quality"], "quick", seed=3, checkpoint="")
  assert opts.steps == suite.QUICK["cgan_quality"]["steps"] and opts.config.seed == 3
  assert dataclasses.replace(opts, steps=options.steps, config=options.config) == options
