"""Tests for ``python -m jaxstyle.vgg convert|info|download`` (run as subprocesses)."""

import os
import subprocess
import sys

import numpy as np
import pytest
from conftest import ROOT
from peers import vgg as peer_vgg

from jaxstyle import vgg

COMMANDS = ("convert", "info", "download")


@pytest.fixture(scope="module")
def torch_vgg_file(tmp_path_factory):
  """A full random VGG-19 saved as torchvision would (with a classifier entry)."""
  path = tmp_path_factory.mktemp("pth") / "vgg19.pth"
  return peer_vgg.save_torchvision_pth(str(path), seed=0), str(path)


def _cli(*args):
  env = dict(os.environ)
  env.pop("XLA_FLAGS", None)
  return subprocess.run([sys.executable, "-m", "jaxstyle.vgg", *map(str, args)], cwd=ROOT, env=env,
                        capture_output=True, text=True, timeout=300)


def _one_error_line(proc, pattern):
  assert proc.returncode == 2, (proc.returncode, proc.stderr)
  lines = proc.stderr.strip().splitlines()
  assert len(lines) == 1 and lines[0].startswith("error: ") and pattern in lines[0], proc.stderr


def test_cli_convert_info_and_usage_errors(tmp_path, torch_vgg_file):
  _, pth = torch_vgg_file
  dst = tmp_path / "out.npz"
  proc = _cli("convert", pth, dst, "--preprocessing", "caffe")  # the README's positional form
  assert proc.returncode == 0, proc.stderr
  w = vgg.load_weights(str(dst))
  assert w.preprocessing == "caffe" and w.layers == vgg.CONV_LAYERS
  np.testing.assert_array_equal(w.params["conv1_1"]["kernel"], vgg.load_pth(pth).params["conv1_1"]["kernel"])
  proc = _cli("info", dst)
  assert proc.returncode == 0, proc.stderr
  assert "preprocessing: caffe" in proc.stdout and "16 of 16" in proc.stdout
  assert "conv5_4: kernel (3, 3, 512, 512) HWIO" in proc.stdout
  proc = _cli("convert", pth)  # bad usage, end to end: one line, exit 2
  _one_error_line(proc, "needs SRC and DST.npz")


def test_cli_usage_errors(tmp_path, torch_vgg_file):
  _, pth = torch_vgg_file
  for args, pattern in ((("convert", pth, tmp_path / "o.npz", "--preprocessing", "tf"),
                         "--preprocessing=tf: value should be one of <caffe|torch>"),
                        (("frobnicate",), "unknown command 'frobnicate'"),
                        (("convert", pth, tmp_path / "o.txt"), "must be a .npz"),
                        (("info", tmp_path / "missing.pth"), "missing.pth: no such file"),
                        (("download", "--src=x"), "Unknown command line flag 'src'")):
    _one_error_line(_cli(*args), pattern)
  proc = _cli()  # no command: the list of commands, then one error line
  assert proc.returncode == 2 and all(c in proc.stderr for c in COMMANDS), proc.stderr
  assert proc.stderr.strip().splitlines()[-1] == "error: choose a command: convert, info, download"
  assert not (tmp_path / "o.npz").exists() and not (tmp_path / "o.txt").exists()


@pytest.mark.slow  # four CLI subprocesses (about 13 s)
def test_cli_flag_forms(tmp_path, torch_vgg_file):
  """--src/--dst/--file are the same as the positionals, in any order."""
  _, pth = torch_vgg_file
  dst = tmp_path / "flags.npz"
  proc = _cli("convert", "--preprocessing", "torch", f"--dst={dst}", "--src", pth)
  assert proc.returncode == 0, proc.stderr
  assert vgg.load_weights(str(dst)).preprocessing == "torch"
  proc = _cli("info", "--file", dst)
  assert proc.returncode == 0 and "preprocessing: torch" in proc.stdout, proc.stderr
  _one_error_line(_cli("info", dst, "extra"), "unexpected positional arguments: extra")


@pytest.mark.parametrize("command", ("",) + COMMANDS)
def test_cli_help_exits_0(command):
  own = {"": COMMANDS, "convert": ("src:", "dst:", "preprocessing:"), "info": ("file:",),
         "download": ("url:", "dest:", "force:", "no_progress:")}[command]
  proc = _cli(*([command] if command else []), "--help")
  assert proc.returncode == 0, proc.stderr
  for word in own:
    assert word in proc.stdout, (command, word, proc.stdout)
  if command == "download":
    assert "preprocessing:" not in proc.stdout  # each command lists only its own flags


@pytest.mark.parametrize("command", COMMANDS)
def test_cli_bad_flag_is_one_error_line(command):
  _one_error_line(_cli(command, "--no_such_flag=1"), "no_such_flag")
