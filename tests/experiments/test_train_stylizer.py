"""train_stylizer.py end to end on real photos and paintings (tiny network), then using the run.

One tiny run (in-process, 4 devices) feeds the checks of the run directory,
``load_stylizer``, ``stylize.py --checkpoint`` and ``stylize.py export`` and
their bad-input handling (the subprocess-heavy checks, resume, determinism and the trained latent space are
marked slow).
"""

import dataclasses
import json
import os
import shutil

import numpy as np
import pytest
import train_stylizer

from conftest import run_experiment
from stylizer_testlib import PAINTINGS, tiny_config
from jaxstyle import images, inference


@pytest.fixture(scope="module")
def trained(tmp_path_factory, shared_data, vgg_partial_path):
  workdir = str(tmp_path_factory.mktemp("stylizer_run"))
  summary = train_stylizer.train_and_evaluate(tiny_config(shared_data, vgg_partial_path), workdir)
  return workdir, summary


def test_run_directory(trained):
  workdir, summary = trained
  assert summary["step"] == 4 and summary["resumed_from"] == 0
  record = json.load(open(os.path.join(workdir, "config.json")))
  assert record["styles"] == ["hokusai_great_wave", "picabia_udnie"]
  assert [os.path.basename(p) for p in record["unseen_style_files"]] == list(PAINTINGS[:1])
  assert [os.path.basename(p) for p in record["encoder_style_files"]] == list(PAINTINGS[1:])
  assert record["model"]["generator"]["widths"] == [8, 16]
  assert len(record["vgg_weights"]["sha256"]) == 64
  rows = [json.loads(line) for line in open(os.path.join(workdir, "metrics.jsonl"))]
  losses = [r for r in rows if "g_loss" in r]
  assert [r["step"] for r in losses] == [2, 4]
  assert all(np.isfinite(r[k]) for r in losses for k in ("content", "style", "d_acc", "identity"))
  ev = [r for r in rows if "eval_style_bank" in r][-1]
  for source in ("bank", "encoder"):
    assert ev[f"eval_style_{source}/picabia_udnie"] > 0 and ev[f"eval_content_{source}"] > 0
  assert np.isfinite(ev["eval_style_unseen"]) and ev["eval_style_unseen"] > 0
  grid = images.load_image(os.path.join(workdir, "samples", "step_00004.png"))
  assert grid.shape[:2] == (3 * 32 + 4 * 2, 3 * 32 + 4 * 2)  # styles row + 2 photos; photo + 2 styles


def test_load_stylizer_is_pure_and_encodes(trained):
  workdir, _ = trained
  model = inference.load_stylizer(workdir)
  assert model.step == 4 and model.style_names == ("hokusai_great_wave", "picabia_udnie")
  x = np.random.default_rng(0).random((2, 21, 35, 3)).astype(np.float32)
  z = model.bank_latent("picabia_udnie")
  a, b = np.asarray(model(model.params, x, z)), np.asarray(model(model.params, x, z))
  assert a.shape == x.shape and np.array_equal(a, b)
  style = np.random.default_rng(1).random((2, 32, 41, 3)).astype(np.float32)
  lat = np.asarray(model.encode_style(model.params, style))
  assert lat.shape == (2, 8) and np.all(np.isfinite(lat))
  with pytest.raises(inference.run.StyleNameError, match="bank styles: hokusai_great_wave"):
    model.bank_latent("udnie")
  with pytest.raises(inference.run.StylizerInputError, match="need H, W >= 32"):
    model.encode_style(model.params, x)  # 21 pixels high: too small a style image
  with pytest.raises(inference.run.StylizerInputError, match="latents of size 8"):
    model(model.params, x, np.zeros((2, 16), np.float32))


def test_stylize_cli_with_checkpoint(trained, shared_data, tmp_path):
  workdir, _ = trained
  photo = os.path.join(shared_data, "content", "skimage_chelsea.png")
  out = tmp_path / "o.png"
  run_experiment("stylize.py", "--checkpoint", workdir, "--content", photo, "--mix",
                 f"picabia_udnie:0.6,{os.path.join(shared_data, 'styles', 'munch_the_scream.jpg')}:0.4",
                 "--strength", "0.7", "--preserve_color", "luminance", "--size", "57", "--out", out)
  got = images.load_image(out)
  assert got.shape[:2] == images.load_image(photo, 57).shape[:2]
  # a folder with one unreadable file: the others are written, the bad one is named, exit 2
  src = tmp_path / "in"
  src.mkdir()
  shutil.copy(photo, src / "cat.png")
  (src / "broken.jpg").write_bytes(b"not a jpeg")
  proc = run_experiment("stylize.py", "--checkpoint", workdir, "--content", src, "--style",
                        "hokusai_great_wave", "--size", "40", "--out", tmp_path / "outdir", check=False)
  assert proc.returncode == 2 and "broken.jpg" in proc.stderr
  assert os.listdir(tmp_path / "outdir") == ["cat.png"]


@pytest.mark.slow
@pytest.mark.parametrize("args, words", [
    (["--style", "udnie"], "not a bank style"),
    (["--style", "hokusai_great_wave", "--strength", "1.5"], "--strength"),
    (["--mix", "picabia_udnie:x"], "STYLE:WEIGHT"),
])
def test_stylize_cli_bad_input(trained, shared_data, tmp_path, args, words):
  workdir, _ = trained
  out = tmp_path / "o.png"
  proc = run_experiment("stylize.py", "--checkpoint", workdir, "--content",
                        os.path.join(shared_data, "content", "skimage_coffee.png"), *args, "--out", out,
                        check=False)
  assert proc.returncode == 2, proc.stderr[-2000:]
  assert proc.stderr.strip().splitlines()[-1].startswith("error:") and words in proc.stderr
  assert "Traceback" not in proc.stderr and not out.exists()


@pytest.mark.slow
def test_stylize_cli_tiny_images(trained, shared_data, tmp_path):
  """An 8x8 style or content image: one error line naming the file and its size, exit 2, no output."""
  workdir, _ = trained
  tiny = tmp_path / "tiny.png"
  images.save_image(tiny, np.full((8, 8, 3), 0.5, np.float32))
  photo = os.path.join(shared_data, "content", "skimage_coffee.png")
  for content, style in ((photo, tiny), (tiny, "picabia_udnie")):
    out = tmp_path / "o.png"
    proc = run_experiment("stylize.py", "--checkpoint", workdir, "--content", content, "--style", style,
                          "--out", out, check=False)
    assert proc.returncode == 2, proc.stderr[-2000:]
    last = proc.stderr.strip().splitlines()[-1]
    assert last.startswith("error:") and "Traceback" not in proc.stderr, proc.stderr
    assert "tiny.png: is only 8x8 pixels" in proc.stderr and not out.exists()


@pytest.mark.slow
def test_checkpoint_of_another_architecture_is_refused(trained, tmp_path):
  workdir, _ = trained
  other = tmp_path / "other"
  shutil.copytree(workdir, other)
  record = json.load(open(other / "config.json"))
  record["model"]["generator"]["widths"] = [8, 24]
  (other / "config.json").write_text(json.dumps(record))
  with pytest.raises(inference.run.CheckpointError, match="does not match the architecture"):
    inference.load_stylizer(str(other))
  proc = run_experiment("stylize.py", "export", "--checkpoint", other, "--out", tmp_path / "x.jaxexport",
                        check=False)
  assert proc.returncode == 2 and "does not match the architecture" in proc.stderr
  assert not (tmp_path / "x.jaxexport").exists()


@pytest.mark.slow
def test_export_cli(trained, tmp_path):
  workdir, _ = trained
  path = tmp_path / "s.jaxexport"
  run_experiment("stylize.py", "export", "--checkpoint", workdir, "--out", path)
  call, meta = inference.load_exported(str(path))
  model = inference.load_stylizer(workdir)
  x = np.random.default_rng(1).random((1, 19, 23, 3)).astype(np.float32)
  z = np.asarray(meta["styles"]["hokusai_great_wave"], np.float32)[None]
  assert np.abs(np.asarray(call(x, z)) - np.asarray(model(model.params, x, z))).max() < 1e-5


@pytest.mark.slow
def test_resume_is_bit_identical_and_seeded(tmp_path, shared_data, vgg_partial_path):
  """2 steps + resume to 4 == 4 straight (same seed): every parameter bit-identical; another seed differs."""
  cfg = tiny_config(shared_data, vgg_partial_path, eval_dir="", sample_every=0, eval_every=0)
  straight, split = str(tmp_path / "a"), str(tmp_path / "b")
  train_stylizer.train_and_evaluate(cfg, straight)
  train_stylizer.train_and_evaluate(dataclasses.replace(cfg, num_steps=2), split)
  assert train_stylizer.train_and_evaluate(cfg, split)["resumed_from"] == 2
  a, b = inference.load_stylizer(straight).params, inference.load_stylizer(split).params
  import jax
  assert jax.tree.all(jax.tree.map(np.array_equal, a, b))
  other = str(tmp_path / "c")
  train_stylizer.train_and_evaluate(dataclasses.replace(cfg, seed=1), other)
  c = inference.load_stylizer(other).params
  assert not np.array_equal(a["g"]["head"]["conv"]["kernel"], c["g"]["head"]["conv"]["kernel"])


@pytest.fixture(scope="module")
def trained_longer(tmp_path_factory, shared_data, vgg_partial_path):
  """A tiny bank-only network trained 300 steps on real data, with what the latent-space tests need."""
  import jax.numpy as jnp

  from jaxstyle import data, train
  cfg = tiny_config(shared_data, vgg_partial_path, crop_size=48, style_size=64, widths=(8, 16, 32),
                    stem_kernel=5, residual_blocks=2, d_steps=0, adv_weight=0.0, latent_source="bank",
                    encoder_styles=(),
                    identity_weight=1e6, identity_examples=2, num_steps=300, learning_rate=2e-3,
                    eval_dir="", sample_every=0, eval_every=0, checkpoint_every=0, log_every=50)
  workdir = str(tmp_path_factory.mktemp("stylizer_longer"))
  train_stylizer.train_and_evaluate(cfg, workdir)
  model = inference.load_stylizer(workdir)
  weights = model.weights()
  scorer = train.make_scorer(model.config, weights)
  names, styles = data.load_styles(list(cfg.styles), cfg.style_size, square=True)
  photo = images.center_crop(images.load_image(
      os.path.join(shared_data, "content", "skimage_chelsea.png"), 64, side="shorter"), 64)[None]
  grams = {n: train.style_grams(model.config, weights, s[None]) for n, s in zip(names, styles)}

  def style_distance(latent, name):
    return float(scorer(model(model.params, photo, latent), photo, grams[name])["style"][0])

  def rmse_to_photo(latent):
    return float(jnp.sqrt(jnp.mean((model(model.params, photo, latent) - photo) ** 2)))

  return model, names, style_distance, rmse_to_photo


@pytest.mark.slow
def test_trained_latent_space_behaves(trained_longer):
  """After a short real training: style distance falls as strength rises, and a 50/50 mix lies between its
  parts in style distance to each."""
  from jaxstyle.nets import style_encoder as se
  model, names, style_distance, _ = trained_longer
  for name in names:
    z = model.bank_latent(name)
    d = [style_distance(se.with_strength(z, t), name) for t in (0.0, 0.5, 1.0)]
    assert d[0] > d[1] > d[2], (name, d)
  za, zb = model.bank_latent(names[0]), model.bank_latent(names[1])
  mix = se.mix_latents(np.stack([za, zb]), [0.5, 0.5])
  for name in names:
    lo, hi = sorted([style_distance(za, name), style_distance(zb, name)])
    assert lo < style_distance(mix, name) < hi, name


@pytest.mark.slow
@pytest.mark.xfail(strict=True, reason="known miss (BUILD_NOTES.md, Stylization network): the zero latent gives a "
                   "desaturated copy, RMSE 0.16 here and 0.125 for the quick config, not the photo")
def test_strength_zero_gives_the_photo_back(trained_longer):
  from jaxstyle.nets import style_encoder as se
  model, names, _, rmse_to_photo = trained_longer
  for name in names:
    assert rmse_to_photo(se.with_strength(model.bank_latent(name), 0.0)) < 0.05, name


@pytest.mark.slow
def test_second_phase_trains_the_encoder_on_a_frozen_generator(trained, tmp_path, shared_data,
                                                               vgg_partial_path):
  """--init_from the tiny run, --freeze=g, encoder latents only: g stays bit-identical, the encoder learns."""
  workdir, _ = trained
  cfg = tiny_config(shared_data, vgg_partial_path, init_from=workdir, freeze=("g",),
                    latent_source="encoder", d_steps=0, adv_weight=0.0, identity_weight=0.0,
                    eval_dir="", sample_every=0, eval_every=0)
  second = str(tmp_path / "phase2")
  train_stylizer.train_and_evaluate(cfg, second)
  first, after = inference.load_stylizer(workdir), inference.load_stylizer(second)
  import jax
  assert jax.tree.all(jax.tree.map(np.array_equal, first.params["g"], after.params["g"]))
  assert not np.array_equal(first.params["encoder"]["out"]["kernel"],
                            after.params["encoder"]["out"]["kernel"])
  bad = dataclasses.replace(cfg, widths=(8, 32))
  from jaxstyle.errors import CheckpointError
  with pytest.raises(CheckpointError, match="is not this run's"):
    train_stylizer.train_and_evaluate(bad, str(tmp_path / "other"))
