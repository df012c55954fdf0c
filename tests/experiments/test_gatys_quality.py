"""benchmark.py gatys_quality: seeded quality numbers repeat exactly, loss parity, record layout.

Tiny sizes and few steps; no timing is asserted.
"""

import json

import pytest

from conftest import run_experiment

TINY = ("--size=48", "--quality_size=48", "--quality_steps=5", "--torch_steps=5",
        "--probe_steps=1", "--torch_modes=eager", "--layouts=nchw", "--torch_threads=1",
        "--max_steps=50", "--seed=3")
FAST = ("--quality_settings=adam", "--jax_settings=adam,adam_ms2")


def _bench(*args):
  proc = run_experiment("benchmark.py", "gatys_quality", *args, timeout=300)
  record = json.loads(proc.stdout)
  assert record["benchmark"] == "gatys_quality"
  return record["results"]


def _numbers(results):
  """Everything but the timings: final losses, loss curves, targets, steps to reach."""
  q = {(p["content"], p["style"], name): (s["final"], s["loss_curve"])
       for p in results["quality"]["pairs"] for name, s in p["settings"].items()}
  t = results["time_to_quality"]
  torch = t.get("torch", {})
  jax = {name: (r["loss_curve"], r["steps_to_reach"], r["reached"], r["steps_run"])
         for name, r in t["jax"].items()}
  return q, torch.get("loss_curve"), torch.get("last_parts"), t["target_loss"], jax, t.get("parity")


@pytest.fixture(scope="module")
def two_runs():
  pytest.importorskip("torch")
  return _bench(*TINY, *FAST), _bench(*TINY, *FAST)


@pytest.mark.slow  # two benchmark subprocesses (about 50 s); the step-0 parity is also in optimize/test_gatys.py
def test_same_seed_gives_identical_numbers(two_runs):
  a, b = two_runs
  assert _numbers(a) == _numbers(b)


@pytest.mark.slow  # shares the two runs above
def test_step0_losses_agree_between_jaxstyle_and_twin(two_runs):
  t = two_runs[0]["time_to_quality"]
  parity = t["parity"]
  assert parity["ok"] and set(parity["images"]) == {"content", "noisy_content"}
  for img in parity["images"].values():
    assert img["rel_diff_loss"] <= 1e-3
  # Every curve starts at the content image's loss (the loss before the first update).
  j0, t0 = t["jax"]["adam"]["loss_curve"][0], t["torch"]["loss_curve"][0]
  assert j0 == pytest.approx(parity["jax_loss0"], rel=1e-6)
  assert t0 == pytest.approx(parity["torch_loss0"], rel=1e-6)
  assert j0 == pytest.approx(t0, rel=1e-3)


@pytest.mark.slow  # shares the two runs above
def test_record_fields(two_runs):
  r = two_runs[0]
  assert r["seed"] == 3 and "loss_rule" in r and r["objective"]["learning_rate"] == 0.05
  q = r["quality"]
  assert q["size"] == 48 and q["steps"] == 5 and len(q["pairs"]) == 2
  for pair in q["pairs"]:
    s = pair["settings"]["adam"]
    assert set(s["final"]) == {"loss", "content", "style", "tv"}
    assert len(s["loss_curve"]) == 5
  t = r["time_to_quality"]
  assert t["size"] == 48 and t["content"] == "skimage_chelsea.png"
  torch = t["torch"]
  assert torch["best"] == "eager_nchw_1t" and list(torch["probe"]) == ["eager_nchw_1t"]
  assert len(torch["loss_curve"]) == 5 and t["target_loss"] == torch["loss_curve"][-1]
  for key in ("time_s", "compile_s", "time_without_compile_s", "first_step_s", "median_step_s"):
    assert torch[key] >= 0, key
  assert set(t["jax"]) == {"adam", "adam_ms2"}
  for name, j in t["jax"].items():
    for key in ("steps_to_reach", "reached", "time_to_reach_s", "time_to_reach_with_compile_s",
                "compile_s", "loss_curve", "time_ratio", "time_ratio_with_compile",
                "goal_time_ratio", "met", "met_with_compile"):
      assert key in j, (name, key)
    assert j["goal_time_ratio"] == 0.5
    curve = j["loss_curve"]
    assert 1 <= len(curve) <= 50 and j["steps_run"] == len(curve)
    if j["reached"]:  # stops at the first step whose (pre-update) loss is <= L*
      assert curve[-1] <= t["target_loss"] and j["steps_to_reach"] == len(curve)
  assert t["jax"]["adam"]["api"] == "make_stepper" and t["jax"]["adam_ms2"]["api"] == "stylize"
  assert t["jax"]["adam_ms2"]["coarse_steps"] == 2 and t["jax"]["adam_ms2"]["coarse_size"] == 24


def test_parity_mismatch_raises(monkeypatch, shared_data, vgg_partial):
  """A twin with another objective (β doubled) must stop the benchmark, not be timed."""
  pytest.importorskip("torch")
  import jax
  from benchmarks import gatys_quality as gq
  from jaxstyle import optimize
  from peers import gatys as peer_gatys
  options = gq.Options(data_dir=shared_data, pairs=gq.DEFAULT_PAIRS[:1])
  pair = gq._load_pairs(options, 32)[0]
  cfg = optimize.StylizeConfig(gamma=1e-2)
  build = gq._torch_gatys
  monkeypatch.setattr(gq, "_torch_gatys", lambda pg, w, c, p, channels_last: build(
      pg, w, c.replace(beta=2 * c.beta), p, channels_last))
  with pytest.raises(gq.ParityError, match="do not optimise the same objective"):
    gq._parity(options, peer_gatys, vgg_partial, cfg, pair,
               gq._prepare(vgg_partial, cfg, pair, jax, optimize))


def test_help_exits_0():
  proc = run_experiment("benchmark.py", "gatys_quality", "--help")
  for flag in ("--pairs", "--quality_steps", "--torch_steps", "--jax_settings", "no_torch"):
    assert flag in proc.stdout, flag


@pytest.mark.slow  # every setting, twice: about a minute
def test_all_settings_repeat_exactly():
  pytest.importorskip("torch")
  a, b = (_bench(*TINY, "--quality_settings=adam,lbfgs,adam_ms2") for _ in range(2))
  assert set(a["time_to_quality"]["jax"]) == {"adam", "lbfgs", "adam_ms2"}
  assert set(a["quality"]["pairs"][0]["settings"]) == {"adam", "lbfgs", "adam_ms2"}
  assert _numbers(a) == _numbers(b)


@pytest.mark.slow
def test_no_torch_runs_jaxstyle_curves_only():
  r = _bench(*TINY, *FAST, "--no_torch", "--max_steps=4")["time_to_quality"]
  assert "torch" not in r and "parity" not in r and r["target_loss"] is None
  for j in r["jax"].values():
    assert len(j["loss_curve"]) == 4 and j["reached"] is False and "time_ratio" not in j
