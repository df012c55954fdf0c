"""benchmark.py all (benchmarks.suite): presets and seeds reach each benchmark, one suite file, failures isolated."""

import dataclasses
import json

import pytest

import benchmarks  # experiments/ is on sys.path (conftest)
from benchmarks import registry, suite
from conftest import run_experiment

REGISTERED = benchmarks.load_all()


def test_every_quick_setting_is_an_option_of_its_benchmark():
  for name, changes in suite.QUICK.items():
    assert name in suite.SUITE, name
    if name not in REGISTERED:
      continue
    fields = {f.name for f in dataclasses.fields(REGISTERED[name].default_options())}
    assert set(changes) <= fields, (name, set(changes) - fields)


def test_options_get_the_preset_seed_and_checkpoint():
  vgg = suite.options_for(REGISTERED["vgg"], "quick", seed=7, checkpoint="RUN")
  assert vgg.sizes == suite.QUICK["vgg"]["sizes"] and vgg.seed == 7
  assert suite.options_for(REGISTERED["vgg"], "full", 7, "").sizes == REGISTERED["vgg"].options().sizes
  cgan = suite.options_for(REGISTERED["cgan"], "full", seed=3, checkpoint="")
  assert cgan.config.seed == 3 and cgan.config.g_width == 32  # the benchmark's own defaults kept
  pers = suite.options_for(REGISTERED["personalize"], "quick", seed=1, checkpoint="RUN")
  assert pers.checkpoint == "RUN" and pers.seed == 1


def test_suite_file_records_skips_and_failures(tmp_path, monkeypatch):
  calls = []

  def fine(options):
    calls.append(options.sizes)
    return {"n": len(options.sizes)}

  def broken(options):
    raise RuntimeError("out of memory\nmore")

  fake = dict(REGISTERED)
  fake["vgg"] = dataclasses.replace(REGISTERED["vgg"], run=fine)
  fake["gatys"] = dataclasses.replace(REGISTERED["gatys"], run=broken)
  monkeypatch.setattr(registry, "_REGISTRY", fake)
  out = tmp_path / "suite.json"
  result = suite.run_suite(("vgg", "gatys", "personalize"), "quick", 5, "", str(out))
  on_disk = json.loads(out.read_text())
  assert on_disk["records"] == json.loads(json.dumps(result["records"]))
  assert on_disk["suite"] == "jaxstyle-benchmarks" and on_disk["seed"] == 5
  (record,) = on_disk["records"]
  assert record["benchmark"] == "vgg" and record["results"] == {"n": 2}
  assert record["config"]["seed"] == 5 and calls == [suite.QUICK["vgg"]["sizes"]]
  assert on_disk["failed"] == {"gatys": "RuntimeError: out of memory"}
  assert "--checkpoint" in on_disk["skipped"]["personalize"]
  assert on_disk["meta"]["git"]["commit"] is None or len(on_disk["meta"]["git"]["commit"]) == 40


def test_all_command_line_errors_and_help():
  proc = run_experiment("benchmark.py", "all", "--only=vgg,nope", check=False)
  assert proc.returncode == 2 and proc.stderr.strip().startswith("error: --only"), proc.stderr
  assert "nope" in proc.stderr
  proc = run_experiment("benchmark.py", "all", "--help")
  for flag in ("--preset", "--seed", "--checkpoint", "--only", "--skip", "--out"):
    assert flag in proc.stdout, flag
  assert "  all " in run_experiment("benchmark.py", "--help").stdout


@pytest.mark.parametrize("name", ["retrieval"])
def test_real_benchmark_through_the_suite(tmp_path, monkeypatch, name):
  """A real (cheap) benchmark through the suite: its record is the one benchmark.py NAME writes."""
  monkeypatch.setitem(suite.QUICK, name, {"sizes": (500,), "dim": 8, "k": 3, "chunk": 128,
                                          "repeats": 1})
  result = suite.run_suite((name,), "quick", 0, "", str(tmp_path / "s.json"))
  (record,) = result["records"]
  (row,) = record["results"]["sizes"]
  assert row["n"] == 500 and row["matches_numpy"]
  assert record["meta"]["memory"]["host_peak_rss_mib"] > 0


_DEVICES_CHILD = """
import dataclasses, json, sys
sys.path.insert(0, {experiments!r})
import benchmarks
from benchmarks import registry, suite
benches = benchmarks.load_all()
seen = []

def first(options):  # starts JAX's backend, as vgg does at the head of the suite
  import jax.numpy as jnp
  return {{"x": float(jnp.ones(3).sum())}}

def cgan_like(options):
  import jax
  seen.append(len(jax.devices("cpu")))
  return {{}}

fake = dict(benches)
fake["vgg"] = dataclasses.replace(benches["vgg"], run=first)
fake["cgan"] = dataclasses.replace(benches["cgan"], run=cgan_like)
registry._REGISTRY = fake
result = suite.run_suite(("vgg", "cgan"), "quick", 0, "", None)
print(json.dumps({{"seen": seen, "failed": result["failed"],
                  "wanted": benches["cgan"].default_options().config.cpu_devices}}))
"""


def test_the_suite_starts_jax_with_the_cpu_devices_its_benchmarks_ask_for():
  """The cGAN's --cpu_devices is applied although an earlier benchmark started JAX first."""
  import os  # pylint: disable=g-import-not-at-top
  import subprocess  # pylint: disable=g-import-not-at-top
  import sys  # pylint: disable=g-import-not-at-top

  from conftest import EXPERIMENTS  # pylint: disable=g-import-not-at-top
  env = {k: v for k, v in os.environ.items() if k != "XLA_FLAGS"}
  proc = subprocess.run([sys.executable, "-c", _DEVICES_CHILD.format(experiments=EXPERIMENTS)],
                        capture_output=True, text=True, env=env, timeout=300, check=True)
  report = json.loads(proc.stdout.strip().splitlines()[-1])
  assert report["wanted"] == 2 and report["failed"] == {}
  assert report["seen"] == [2]


def test_each_benchmark_runs_in_its_own_process_and_failures_come_back(tmp_path):
  out = tmp_path / "suite.json"
  proc = run_experiment("benchmark.py", "all", "--only=retrieval,stylizer_quality",
                        f"--checkpoint={tmp_path / 'no_such_run'}", f"--out={out}", check=False)
  assert proc.returncode == 1, proc.stderr[-2000:]
  result = json.loads(out.read_text())
  (record,) = result["records"]
  assert record["benchmark"] == "retrieval" and record["results"]["sizes"][0]["matches_numpy"]
  # The record was made by a child suite of one, in its own process.
  assert "--noisolate" in record["meta"]["argv"] and "--only=retrieval" in record["meta"]["argv"]
  assert list(result["failed"]) == ["stylizer_quality"] and "no_such_run" in result["failed"][
      "stylizer_quality"]
  assert "FAILED stylizer_quality" in proc.stdout


_FLAG_CHILD = """
import dataclasses, json, sys
sys.path.insert(0, {experiments!r})
import benchmarks
from benchmarks import registry, suite
from jaxstyle import cpu_tuning
benches = benchmarks.load_all()
fake = dict(benches)
fake["stylizer"] = dataclasses.replace(
    benches["stylizer"], run=lambda options: {{"applied": cpu_tuning.use_fast_cpu_convs()}})
registry._REGISTRY = fake
result = suite.run_suite(("stylizer",), "quick", 0, "", None)
print(json.dumps(result["records"][0]["results"]))
"""


def test_an_in_process_suite_leaves_jax_unstarted_for_a_benchmarks_xla_flags():
  """The device request must not start JAX: the stylizer's conv flag is read when JAX starts."""
  import os  # pylint: disable=g-import-not-at-top
  import subprocess  # pylint: disable=g-import-not-at-top
  import sys  # pylint: disable=g-import-not-at-top

  from conftest import EXPERIMENTS  # pylint: disable=g-import-not-at-top
  env = {k: v for k, v in os.environ.items() if k != "XLA_FLAGS"}
  proc = subprocess.run([sys.executable, "-c", _FLAG_CHILD.format(experiments=EXPERIMENTS)],
                        capture_output=True, text=True, env=env, timeout=300, check=True)
  assert json.loads(proc.stdout.strip().splitlines()[-1]) == {"applied": True}


def test_update_keeps_other_records_and_redoes_the_chosen(tmp_path, monkeypatch):
  out = tmp_path / "suite.json"
  runs = {"vgg": 0, "gatys": 0}

  def counting(name):
    def run(options):
      runs[name] += 1
      return {"run": runs[name]}
    return run

  fake = dict(REGISTERED)
  for name in runs:
    fake[name] = dataclasses.replace(REGISTERED[name], run=counting(name))
  monkeypatch.setattr(registry, "_REGISTRY", fake)
  first = suite.run_suite(("vgg", "gatys"), "quick", 0, "", str(out))
  again = suite.run_suite(("vgg",), "quick", 0, "", str(out),
                          keep=suite.previous_suite(str(out), "quick", 0))
  assert [r["benchmark"] for r in again["records"]] == ["vgg", "gatys"]  # suite order kept
  assert again["records"][0]["results"] == {"run": 2}  # redone
  assert again["records"][1] == json.loads(json.dumps(first["records"][1]))  # kept as it was
  assert again["updated_from"]["kept"] == ["gatys"]
  with pytest.raises(suite.JaxstyleError, match="--preset quick --seed 0"):
    suite.previous_suite(str(out), "quick", 1)
  assert suite.previous_suite(str(tmp_path / "none.json"), "quick", 0) is None
  proc = run_experiment("benchmark.py", "all", "--update", "--only=retrieval", "--seed=3",
                        f"--out={out}", check=False)
  assert proc.returncode == 2 and proc.stderr.startswith("error: ") and "--seed 0" in proc.stderr


def test_git_state_reads_a_real_checkout(tmp_path):
  import subprocess  # pylint: disable=import-outside-toplevel

  from benchmarks import results  # pylint: disable=import-outside-toplevel

  def git(*args):
    subprocess.run(["git", "-C", str(tmp_path), *args], check=True, capture_output=True)

  assert results.git_state(str(tmp_path)) == {"commit": None, "dirty": None}  # not a checkout
  git("init", "-q")
  (tmp_path / "a.txt").write_text("one\n")
  git("add", "a.txt")
  git("-c", "user.name=t", "-c", "user.email=t@t", "commit", "-qm", "one")
  clean = results.git_state(str(tmp_path))
  assert len(clean["commit"]) == 40 and clean["dirty"] is False
  (tmp_path / "untracked.txt").write_text("x")  # untracked files do not count
  assert results.git_state(str(tmp_path))["dirty"] is False
  (tmp_path / "a.txt").write_text("two\n")
  assert results.git_state(str(tmp_path)) == {"commit": clean["commit"], "dirty": True}


A, A_DIRTY = {"commit": "a", "dirty": False}, {"commit": "a", "dirty": True}
UNKNOWN = {"commit": None, "dirty": None}


@pytest.mark.parametrize("start,end,expected", [
    (A, A, A),
    (A, A_DIRTY, A_DIRTY),  # an edit made while the benchmark ran, left uncommitted
    (A_DIRTY, A, A_DIRTY),  # one reverted before the end: the run may have imported it
    (A, {"commit": "b", "dirty": False}, {**A, "commit_at_end": "b"}),
    (UNKNOWN, UNKNOWN, UNKNOWN),  # outside a git checkout
])
def test_a_record_names_the_commit_at_its_start_and_any_change_during_it(monkeypatch, start, end,
                                                                         expected):
  from benchmarks import results  # pylint: disable=import-outside-toplevel

  states = iter([start, end])
  monkeypatch.setattr(results, "git_state", lambda repo=None: next(states))
  meta = results.finish(results.start(["benchmark.py", "x"]))
  assert meta["git"] == expected
