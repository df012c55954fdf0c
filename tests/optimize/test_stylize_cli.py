"""End-to-end tests of experiments/stylize.py and experiments/generate.py (subprocesses, real data)."""

import json
import os

import numpy as np
import pytest

from conftest import ROOT, run_experiment
from jaxstyle import config as cfglib
from jaxstyle import images, optimize


@pytest.fixture(scope="module")
def paths(shared_data, vgg_partial_path):
  return {"content": os.path.join(shared_data, "content", "skimage_chelsea.png"),
          "style": os.path.join(shared_data, "styles", "vangogh_starry_night.jpg"),
          "style2": os.path.join(shared_data, "styles", "hokusai_great_wave.jpg"),
          "vgg": vgg_partial_path}


def _stylize(paths, out, *extra, check=True):
  return run_experiment("stylize.py", f"--content={paths['content']}", f"--style={paths['style']}",
                        f"--vgg_weights={paths['vgg']}", f"--out={out}", *extra, check=check)


def test_stylize_run_dir_and_bit_identical_rerun(paths, tmp_path):
  args = ("--size=64", "--steps=6", "--seed=1", "--num_scales=2")
  _stylize(paths, tmp_path / "a.png", *args)
  _stylize(paths, tmp_path / "b.png", *args, f"--workdir={tmp_path / 'run_b'}")
  a, b = (tmp_path / "a.png").read_bytes(), (tmp_path / "b.png").read_bytes()
  assert a == b  # same seed -> bit-identical file
  run = tmp_path / "a_run"  # default workdir: next to --out
  cfg = json.loads((run / "config.json").read_text())
  assert cfg["vgg"]["preprocessing"] == "caffe" and "Caffe" in cfg["vgg"]["family"]
  assert cfg["vgg"]["source"] == paths["vgg"] and cfg["vgg"]["deepest_layer"] == "relu3_4"
  # config.json holds every setting and round-trips to the config that ran.
  assert cfglib.from_dict(optimize.StylizeConfig, cfg["config"]) == optimize.StylizeConfig(
      steps=6, num_scales=2)
  assert cfg["config"]["style_layers"] == [["relu1_1", 1.0], ["relu2_1", 1.0], ["relu3_1", 1.0]]
  assert cfg["seed"] == 1 and "style_loss" in cfg["loss"]
  rows = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]
  assert [r["step"] for r in rows] == list(range(1, 7))
  assert all(np.isfinite(r["loss"]) and "style" in r and "content" in r for r in rows)
  result = images.load_image(run / "result.png")
  out = images.load_image(tmp_path / "a.png")
  np.testing.assert_array_equal(result, out)
  assert max(out.shape[:2]) == 64
  panel = images.load_image(run / "side_by_side.png")
  assert panel.shape[0] == out.shape[0] and panel.shape[1] > 2 * out.shape[1]
  content = images.load_image(paths["content"], 64)
  assert np.mean(np.abs(out - content)) > 0.01  # stylised, not a copy


def test_flagfile_blend_and_colour(paths, tmp_path):
  flagfile = os.path.join(ROOT, "experiments", "configs", "stylize_quick.flags")
  _stylize(paths, tmp_path / "o.png", f"--flagfile={flagfile}", "--size=48", "--steps=3",
           f"--style={paths['style2']}", "--style_weights=0.7,0.3", "--preserve_color=luminance")
  cfg = json.loads((tmp_path / "o_run" / "config.json").read_text())
  assert cfg["inputs"]["style_weights"] == [0.7, 0.3]
  assert len(cfg["inputs"]["styles"]) == 2 and cfg["config"]["preserve_color"] == "luminance"
  assert cfg["size"] == 48 and cfg["config"]["steps"] == 3  # overrides after the flagfile win


def test_generate_different_seeds(paths, tmp_path):
  run_experiment("generate.py", f"--style={paths['style2']}", f"--vgg_weights={paths['vgg']}",
                 "--n=2", "--size=48x64", "--steps=8", "--seed=0", f"--out_dir={tmp_path}")
  a = images.load_image(tmp_path / "sample_00.png")
  b = images.load_image(tmp_path / "sample_01.png")
  assert a.shape == (48, 64, 3)
  assert np.mean(np.abs(a - b)) > 0.02
  rows = [json.loads(line) for line in (tmp_path / "metrics.jsonl").read_text().splitlines()]
  assert [r["sample"] for r in rows] == [0] * 8 + [1] * 8
  assert (tmp_path / "grid.png").exists() and (tmp_path / "side_by_side.png").exists()
  config = json.loads((tmp_path / "config.json").read_text())["config"]
  assert cfglib.from_dict(optimize.StylizeConfig, config) == optimize.synthesis_config(steps=8)


def test_help_documents_every_flag():
  """Every StylizeConfig setting is a flag with its help (generate: all but the content ones)."""
  import gatys_common
  proc = run_experiment("stylize.py", "--help", check=False)
  text = proc.stdout + proc.stderr
  assert proc.returncode == 0, text
  settings = cfglib.settings(optimize.StylizeConfig)
  fields = [s.cli_name for s in settings]
  for flag in ["content", "style", "style_weights", "out", "size", "seed", "vgg_weights",
               "workdir", "init_image"] + fields:
    assert f"--{flag}:" in text, flag
  for s in settings:
    assert " ".join(s.help.split()[:4]) in " ".join(text.split()), s.name
  gen = run_experiment("generate.py", "--help", check=False)
  text = gen.stdout + gen.stderr
  for flag in ["style", "n", "size", "out_dir", "seed"] + [
      f for s, f in zip(settings, fields) if s.name not in gatys_common.CONTENT_ONLY]:
    assert f"--{flag}:" in text, flag
  for name in gatys_common.CONTENT_ONLY:
    assert f"--{name}:" not in text, name


@pytest.mark.parametrize("case", ["unreadable", "no_style", "weights", "size0", "nonfinite"])
def test_bad_input_exits_2_with_one_line(paths, tmp_path, case):
  out = tmp_path / "o.png"
  if case == "unreadable":
    bad = tmp_path / "notes.png"
    bad.write_text("this is not an image")
    proc = run_experiment("stylize.py", f"--content={bad}", f"--style={paths['style']}",
                          f"--vgg_weights={paths['vgg']}", f"--out={out}", "--steps=1",
                          check=False)
    needle = "notes.png"
  elif case == "no_style":
    proc = run_experiment("stylize.py", f"--content={paths['content']}",
                          f"--vgg_weights={paths['vgg']}", f"--out={out}", check=False)
    needle = "--style"
  elif case == "weights":
    proc = _stylize(paths, out, "--style_weights=0.7,0.3", check=False)
    needle = "--style_weights"
  elif case == "size0":
    proc = _stylize(paths, out, "--size=0", check=False)
    needle = "--size"
  else:
    proc = _stylize(paths, out, "--size=32", "--steps=3", "--beta=1e38", check=False)
    needle = "not finite"
  assert proc.returncode == 2, proc.stderr
  lines = [line for line in proc.stderr.splitlines() if line.startswith("error:")]
  assert len(lines) == 1 and needle in lines[0], proc.stderr
  assert "Traceback" not in proc.stderr
  assert not out.exists()
  assert not (tmp_path / "o_run" / "result.png").exists()
