"""TensorBoard event files of run directories (jaxstyle.tblog through RunDir), read back independently.

The reader is TensorBoard's own ``EventAccumulator`` (not tensorboardX): every
scalar must equal the metrics.jsonl row of its step, every image must decode
to the pixels of the samples/*.png of its step, and a resumed run must not
show a step twice.
"""

import io
import json
import os
import sys
import types

import numpy as np
import pytest
from conftest import run_experiment
from PIL import Image

from jaxstyle import images, rundir, tblog

pytest.importorskip("tensorboard")
# TensorBoard's own switch to its TensorFlow stub (//tensorboard/compat:no_tensorflow): reading
# event files needs no TensorFlow, and importing it would take seconds.
sys.modules.setdefault("tensorboard.compat.notf", types.ModuleType("tensorboard.compat.notf"))
from tensorboard.backend.event_processing import event_accumulator as ea  # noqa: E402


def read_events(logdir):
  """({tag: [(step, value)]}, {tag: [(step, uint8 HWC pixels)]}) as TensorBoard shows them
  (tags whose every event was purged are left out)."""
  acc = ea.EventAccumulator(str(logdir), size_guidance={ea.SCALARS: 0, ea.IMAGES: 0})
  acc.Reload()
  tags = acc.Tags()
  scalars = {t: [(e.step, e.value) for e in acc.Scalars(t)] for t in tags["scalars"]}
  pictures = {t: [(e.step, np.asarray(Image.open(io.BytesIO(e.encoded_image_string))))
                  for e in acc.Images(t)] for t in tags["images"]}
  return ({t: v for t, v in scalars.items() if v}, {t: v for t, v in pictures.items() if v})


def numeric_rows(run_path):
  """{name: [(step, value)]} of metrics.jsonl's finite numbers, in file order."""
  out = {}
  for row in rundir.RunDir(run_path).read_metrics():
    for name, value in row.items():
      if name != "step" and tblog.scalar_value(value) is not None:
        out.setdefault(name, []).append((row["step"], float(np.float32(value))))
  return out


def assert_events_match_run(run_path):
  """The run's TensorBoard scalars are metrics.jsonl, its images are samples/*.png."""
  scalars, pictures = read_events(os.path.join(run_path, "tensorboard"))
  assert scalars == numeric_rows(run_path)
  samples = sorted(os.listdir(os.path.join(run_path, "samples")))
  assert [f"step_{step:05d}.png" for step, _ in pictures.get("samples", [])] == samples
  for step, pixels in pictures["samples"]:
    png = np.asarray(Image.open(os.path.join(run_path, "samples", f"step_{step:05d}.png")))
    if png.ndim == 2:  # a grey PNG: TensorBoard holds it as grey RGB
      assert pixels.shape == png.shape + (3,) and (pixels == pixels[..., :1]).all()
      pixels = pixels[..., 0]
    np.testing.assert_array_equal(pixels, png)
  return scalars


@pytest.mark.slow  # two cGAN processes: about a minute on the 2-core CI machine
def test_cgan_killed_then_resumed_shows_each_step_once(tmp_path, shared_data):
  workdir = tmp_path / "run"
  flags = [f"--mnist_dir={os.path.join(shared_data, 'mnist')}", f"--workdir={workdir}",
           "--batch_size=16", "--z_dim=8", "--g_width=8", "--d_width=8", "--embed_dim=4",
           "--d_feature_dim=16", "--progress=false", "--seed=3", "--num_steps=4", "--log_every=1",
           "--checkpoint_every=2", "--sample_every=2", "--eval_every=0"]
  killed = run_experiment("train_cgan.py", *flags, "--debug_kill_at_step=3", check=False)
  assert killed.returncode == -9, killed.stderr[-2000:]
  first, _ = read_events(workdir / "tensorboard")
  assert [s for s, _ in first["g_loss"]] == [1, 2, 3]  # flushed as logged: nothing lost to the kill
  run_experiment("train_cgan.py", *flags)  # resumes from the step-2 checkpoint
  assert len(os.listdir(workdir / "tensorboard")) == 2
  scalars = assert_events_match_run(str(workdir))
  assert [s for s, _ in scalars["g_loss"]] == [1, 2, 3, 4]  # step 3 once: the resumed run's
  assert set(scalars) >= {"g_loss", "d_loss"}
  assert sorted(os.listdir(workdir / "samples")) == ["step_00002.png", "step_00004.png"]


@pytest.mark.slow  # a tiny stylizer run: about a minute on the 2-core CI machine
def test_stylizer_events_hold_its_metrics_and_colour_samples(tmp_path, shared_data, vgg_partial_path):
  import train_stylizer
  from stylizer_testlib import tiny_config

  workdir = str(tmp_path / "run")
  train_stylizer.train_and_evaluate(tiny_config(shared_data, vgg_partial_path, sample_every=2), workdir)
  scalars = assert_events_match_run(workdir)
  assert "eval_style_bank/hokusai_great_wave" in scalars and "eval_style_unseen" in scalars
  _, pictures = read_events(os.path.join(workdir, "tensorboard"))
  assert [s for s, _ in pictures["samples"]] == [2, 4] and pictures["samples"][0][1].shape[-1] == 3


def test_classifier_events_hold_its_metrics(tmp_path, shared_data):
  import train_classifier
  from configs import classifier as classifier_config

  workdir = str(tmp_path / "run")
  config = classifier_config.Config(mnist_dir=os.path.join(shared_data, "mnist"), num_train=256,
                                    num_test=100, epochs=1, batch_size=64, floor_sizes=(50,),
                                    output=str(tmp_path / "oracle.npz"), progress=False)
  train_classifier.train_and_evaluate(config, workdir)
  scalars, _ = read_events(os.path.join(workdir, "tensorboard"))
  assert scalars == numeric_rows(workdir) and {"loss", "test_accuracy"} <= set(scalars)


# ----------------------------------------------------------------------------- the writer itself


def test_resume_hides_later_steps_and_odd_values_are_skipped(tmp_path):
  run = rundir.RunDir(str(tmp_path / "run"))
  for step in range(1, 7):
    run.log_metrics(step, {"loss": np.float32(10 - step), "lr": 0.5})
  run.log_metrics(6, {"bad": float("nan"), "inf": np.inf, "flag": True, "name": "x",
                      "vec": np.ones(3), "one": np.ones((1, 1)), "jax": np.int64(7)})
  run.close()
  resumed = rundir.RunDir(str(tmp_path / "run"))  # as train.fit does after restoring step 4
  resumed.truncate_metrics(after_step=4)
  for step in (5, 6):
    resumed.log_metrics(step, {"loss": 100.0 + step})
  scalars, _ = read_events(os.path.join(resumed.path, "tensorboard"))
  assert scalars["loss"] == [(1, 9.0), (2, 8.0), (3, 7.0), (4, 6.0), (5, 105.0), (6, 106.0)]
  assert [s for s, _ in scalars["lr"]] == [1, 2, 3, 4]
  assert set(scalars) == {"loss", "lr"}  # the step-6 row of odd values was after the resume point
  assert scalars == numeric_rows(resumed.path)
  again = rundir.RunDir(str(tmp_path / "again"))
  again.log_metrics(1, {"bad": float("nan"), "flag": True, "name": "x", "vec": np.ones(3),
                        "one": np.ones((1, 1)), "n": np.int64(7)})
  assert read_events(again.tensorboard_dir)[0] == {"one": [(1, 1.0)], "n": [(1, 7.0)]}
  assert json.loads(open(again.metrics_path).read())["bad"] == "nan"  # metrics.jsonl keeps it


def test_save_sample_png_and_event_are_the_same_pixels(tmp_path):
  run = rundir.RunDir(str(tmp_path / "run"))
  grid = np.random.default_rng(0).uniform(size=(12, 20, 3)).astype(np.float32)
  path = run.save_sample(7, grid)
  assert path == os.path.join(run.samples_dir, "step_00007.png")
  _, pictures = read_events(run.tensorboard_dir)
  np.testing.assert_array_equal(pictures["samples"][0][1], images.to_uint8(grid))
  assert pictures["samples"][0][0] == 7
  with pytest.raises(ValueError, match="uint8"):
    run.tensorboard().image(1, "x", grid)


def test_only_the_main_process_writes(tmp_path, monkeypatch):
  monkeypatch.setattr(tblog, "_is_main_process", lambda: False)
  run = rundir.RunDir(str(tmp_path / "run"))
  run.log_metrics(1, {"loss": 1.0})
  run.save_sample(1, np.zeros((4, 4)))
  assert not os.path.exists(run.tensorboard_dir)
