"""jaxstyle.cli.run hides JAX's platform-probing INFO lines but not its warnings (a real command).

``experiments/stylize.py`` (a tiny image) initialises JAX, which probes for a
TPU and logs "Unable to initialize backend 'tpu'" at INFO. A bogus
PJRT_NAMES_AND_LIBRARY_PATHS makes the same logger (jax._src.xla_bridge) warn
for real, which must still show.
"""

import importlib.util
import os

import pytest
from conftest import run_experiment

PROBE_LINE = "Unable to initialize backend"
WARNING = "invalid value bogus in env var PJRT_NAMES_AND_LIBRARY_PATHS"


def stylize(shared_data, vgg_partial_path, tmp_path, *extra):
  return run_experiment(
      "stylize.py", f"--content={os.path.join(shared_data, 'content', 'skimage_chelsea.png')}",
      f"--style={os.path.join(shared_data, 'styles', 'vangogh_starry_night.jpg')}",
      f"--vgg_weights={vgg_partial_path}", f"--out={tmp_path / 'out.png'}", "--size=16", "--steps=1",
      "--num_scales=1", *extra, env={"PJRT_NAMES_AND_LIBRARY_PATHS": "bogus"})


def test_probing_info_hidden_warnings_kept(shared_data, vgg_partial_path, tmp_path):
  proc = stylize(shared_data, vgg_partial_path, tmp_path)
  assert PROBE_LINE not in proc.stderr, proc.stderr[-2000:]
  assert WARNING in proc.stderr, proc.stderr[-2000:]


@pytest.mark.skipif(importlib.util.find_spec("libtpu") is not None, reason="a TPU runtime probes fine")
def test_verbosity_flag_shows_them_again(shared_data, vgg_partial_path, tmp_path):
  proc = stylize(shared_data, vgg_partial_path, tmp_path, "--verbosity=0")
  assert f"{PROBE_LINE} 'tpu'" in proc.stderr and WARNING in proc.stderr, proc.stderr[-2000:]
