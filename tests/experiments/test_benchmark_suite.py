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
