"""The style encoder as a retrieval descriptor, and queries by personal profiles (tiny trained stylizer)."""

import dataclasses
import os
import shutil

import numpy as np
import pytest

from conftest import run_experiment
from jaxstyle import images as images_lib
from jaxstyle import inference, vgg
from jaxstyle import retrieval as R
from jaxstyle.nets import style_encoder as se
from jaxstyle.personalize import profile as profile_lib

PAINTINGS = ("vangogh_starry_night.jpg", "hokusai_great_wave.jpg", "picabia_udnie.jpg",
             "munch_the_scream.jpg", "kandinsky_composition_vii.jpg", "gauguin_te_fare.jpg")


@pytest.fixture(scope="module")
def model(tiny_stylizer_run):
  return inference.load_stylizer(tiny_stylizer_run)


@pytest.fixture(scope="module")
def library(tmp_path_factory, shared_data):
  """Six paintings as small files (64 px shorter side) in a library folder."""
  root = tmp_path_factory.mktemp("enc_library")
  for name in PAINTINGS:
    im = images_lib.load_image(os.path.join(shared_data, "styles", name), 64, side="shorter")
    images_lib.save_image(str(root / (os.path.splitext(name)[0] + ".png")), im)
  return root


def _one_tile_target(library, scale):
  """A library file that is one tile at ``scale``, and the encoder's input image for it."""
  for name in sorted(os.listdir(library)):
    views = R.image_views(images_lib.load_image(str(library / name), scale, side="shorter"), scale)
    if len(views) == 1:
      return name, views
  raise AssertionError("no one-tile painting")


def _np_l2n(x):
  return x / np.linalg.norm(x, axis=-1, keepdims=True)


def _reference_descriptor(model, image, scale):
  """float64 NumPy: VGG features of each tile laid side by side, their mean/std, the encoder MLP."""
  tiles = R.image_views(image, scale)
  taps = model.config.encoder.taps
  feats = vgg.extract(model.weights(), tiles, taps)
  stats = []
  for tap in taps:
    f = np.asarray(feats[tap], np.float64).reshape(-1, feats[tap].shape[-1])  # all tiles' positions
    stats += [f.mean(0), np.sqrt(f.var(0) + se.STD_EPS)]
  x = np.concatenate(stats)
  p = {k: {n: np.asarray(a, np.float64) for n, a in v.items()} if isinstance(v, dict) else
       np.asarray(v, np.float64) for k, v in model.params["encoder"].items()}
  h = np.log1p(np.maximum(x, 0.0))
  if "input_mean" in p:
    h = (h - p["input_mean"]) / p["input_std"]
  for i in range(len(model.config.encoder.hidden)):
    h = np.maximum(h @ p[f"hidden{i}"]["kernel"] + p[f"hidden{i}"]["bias"], 0.0)
  return _np_l2n(h @ p["out"]["kernel"] + p["out"]["bias"])


def test_descriptor_matches_a_float64_reference_over_several_tiles(model, shared_data):
  image = images_lib.load_image(os.path.join(shared_data, "styles", PAINTINGS[1]), 40,
                                side="shorter")  # landscape: 2-3 tiles of 40 x 40
  config = R.encoder_config(model, scale=40, whiten_dim=0)
  assert R.descriptor_dim(config) == model.latent_dim and config.kind == "encoder"
  assert len(R.image_views(image, 40)) >= 2
  (base,) = R.Embedder(model.weights(), config, batch_size=3, encoder=model).embed([image])
  ref = _reference_descriptor(model, image, 40)
  np.testing.assert_allclose(base[0], ref, atol=2e-4)
  assert abs(np.linalg.norm(base[0]) - 1) < 1e-5

  # Two scales: each scale's latent normalised, concatenated, normalised.
  two = dataclasses.replace(config, scales=(40, 56))
  (both,) = R.Embedder(model.weights(), two, encoder=model).embed([image])
  ref2 = _np_l2n(np.concatenate([ref, _reference_descriptor(model, image, 56)]))
  np.testing.assert_allclose(both[0], ref2, atol=2e-4)


def test_configs_remember_the_encoder_and_refuse_another(model, tiny_stylizer_run, tmp_path):
  config = R.encoder_config(model, scale=48)
  assert config.checkpoint == model.path and config.checkpoint_fingerprint == model.fingerprint
  assert R.load_encoder(config).fingerprint == model.fingerprint
  with pytest.raises(R.DescriptorError, match="needs a trained stylizer"):
    dataclasses.replace(config, checkpoint="")
  other = dataclasses.replace(config, checkpoint_fingerprint="0" * 64)
  with pytest.raises(R.RetrievalError, match="not the one this encoder descriptor was made with"):
    R.Embedder(model.weights(), other, encoder=model)
  with pytest.raises(R.DescriptorError, match="needs its stylizer"):
    R.Embedder(model.weights(), config)
  with pytest.raises(R.RetrievalError, match="cannot be loaded"):
    R.load_encoder(dataclasses.replace(config, checkpoint=str(tmp_path / "gone")))
  random_vgg = vgg.VGGWeights(
      params={k: {n: np.asarray(a) * 0.5 for n, a in v.items()}
              for k, v in model.weights().params.items()},
      preprocessing=model.weights().preprocessing, source="halved")
  with pytest.raises(R.RetrievalError, match="not the VGG weights"):
    R.Embedder(random_vgg, config, encoder=model)


def test_index_query_by_image_and_by_profile(model, library, tmp_path):
  config = R.encoder_config(model, scale=48, whiten_dim=0)
  out = str(tmp_path / "enc.idx")
  index, report = R.build_index(str(library), out, model.weights(), config, encoder=model)
  assert report.embedded == len(index) >= 4 and index.search.shape[1] == model.latent_dim
  loaded = R.load_index(out)
  assert loaded.config == config

  # An image of the library finds itself first (the encoder loaded from the recorded checkpoint).
  target, views = _one_tile_target(library, 48)
  scores, idx = R.query_index(loaded, model.weights(), [str(library / target)], k=3)
  assert loaded.paths[idx[0, 0]] == target and scores[0, 0] > 0.999

  # A profile whose latent is that image's encoder latent finds the same image first.
  latent = np.asarray(model.encode_style(model.params, views))[0]
  prof = profile_lib.StyleProfile(
      latent=latent, provenance={"checkpoint": {"path": model.path,
                                                "fingerprint": model.fingerprint}})
  path = profile_lib.save_profile(str(tmp_path / "me.style"), prof)
  scores, idx = R.query_profile(loaded, path, k=len(loaded))
  assert loaded.paths[idx[0, 0]] == target
  expected = loaded.search @ np.asarray(R.latent_descriptor(latent[None]))[0]
  np.testing.assert_allclose(scores[0], np.sort(expected)[::-1], atol=1e-5)

  # Refusals: a profile of another checkpoint, another latent size, a gram index.
  other = dataclasses.replace(prof, provenance={"checkpoint": {"fingerprint": "f" * 64}})
  with pytest.raises(profile_lib.ProfileError, match="made for another checkpoint"):
    R.query_profile(loaded, profile_lib.save_profile(str(tmp_path / "o.style"), other))
  short = dataclasses.replace(prof, latent=latent[:3])
  with pytest.raises(profile_lib.ProfileError, match="latent size 3"):
    R.query_profile(loaded, profile_lib.save_profile(str(tmp_path / "s.style"), short))
  gram = R.DescriptorConfig(layers=("relu2_1",), scales=(48,), dim=64, whiten_dim=0)
  gram_index, _ = R.build_index(str(library), str(tmp_path / "g.idx"), model.weights(), gram)
  with pytest.raises(R.RetrievalError, match="--descriptor encoder --checkpoint"):
    R.query_profile(gram_index, path)


def test_cli_index_and_query_by_profile(model, library, tiny_stylizer_run, tmp_path):
  run = str(tmp_path / "run")
  shutil.copytree(tiny_stylizer_run, run)  # the index records this copy; it is moved below
  out, sheet = tmp_path / "lib.idx", tmp_path / "sheet.png"
  res = run_experiment("retrieve.py", "index", "--library", library, "--out", out,
                       "--descriptor", "encoder", "--checkpoint", run, "--scales", "48")
  assert "descriptor encoder" in res.stdout
  target, views = _one_tile_target(library, 48)
  latent = np.asarray(model.encode_style(model.params, views))[0]
  prof = profile_lib.save_profile(str(tmp_path / "me.style"), profile_lib.StyleProfile(
      latent=latent, provenance={"checkpoint": {"fingerprint": model.fingerprint}}))
  res = run_experiment("retrieve.py", "query", "--index", out, "--profile", prof, "--k", "3",
                       "--sheet", sheet)
  assert res.stdout.splitlines()[0].split()[-1] == target and sheet.exists()

  moved = str(tmp_path / "moved")
  os.rename(run, moved)
  res = run_experiment("retrieve.py", "query", "--index", out, "--image", library / target,
                       "--k", "1", check=False)
  assert res.returncode == 2 and "cannot be loaded" in res.stderr.strip().splitlines()[-1]
  res = run_experiment("retrieve.py", "query", "--index", out, "--image", library / target,
                       "--k", "1", "--checkpoint", moved)
  assert res.stdout.split()[-1] == target
  res = run_experiment("retrieve.py", "query", "--index", out, "--k", "1", check=False)
  assert res.returncode == 2 and "needs --image Q.jpg or --profile" in res.stderr
