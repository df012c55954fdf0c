"""Learning a style from liked images (tiny trained stylizer, real paintings), against NumPy references."""

import os

import numpy as np
import pytest

from jaxstyle import images, inference
from jaxstyle.errors import ConfigError
from jaxstyle.personalize import from_images as fi
from jaxstyle.personalize import gram_match
from jaxstyle.personalize import space as space_lib
from jaxstyle.train.stylizer import style_grams

PAINTINGS = ("vangogh_starry_night.jpg", "hokusai_great_wave.jpg", "picabia_udnie.jpg",
             "munch_the_scream.jpg")


@pytest.fixture(scope="module")
def model(tiny_stylizer_run):
  return inference.load_stylizer(tiny_stylizer_run)


@pytest.fixture(scope="module")
def liked(shared_data):
  return [images.load_image(os.path.join(shared_data, "styles", p), 48, side="shorter")
          for p in PAINTINGS]


def _np_grams(model, ims):
  return {k: np.asarray(v, np.float64) for k, v in style_grams(model.config, model.weights(), ims).items()}


def test_encoder_mean_is_the_mean_of_the_latents(model, liked):
  each = [np.asarray(model.encode_style(model.params, im[None]))[0] for im in liked]
  np.testing.assert_allclose(fi.encoder_mean(model, liked), np.mean(each, axis=0), rtol=1e-6,
                             atol=1e-6)


def test_outlier_scores_match_a_float64_reference_and_find_the_odd_one(model, liked):
  rng = np.random.default_rng(0)
  noise = rng.random((48, 48, 3)).astype(np.float32)  # white noise among paintings
  ims = liked + [noise]
  g = _np_grams(model, ims)
  n = len(ims)
  want = []
  for i in range(n):  # leave-one-out pooled Gram, the run's style loss (gatys: 1/(4C²)·‖ΔĜ‖²)
    total = 0.0
    for layer, w in model.config.style_layers:
      loo = (g[layer].sum(0) - g[layer][i]) / (n - 1)
      c = g[layer].shape[-1]
      total += w * np.sum((g[layer][i] - loo) ** 2) / (4.0 * c * c)
    want.append(total)
  scores, z = fi.outlier_scores(model.config, style_grams(model.config, model.weights(), ims))
  np.testing.assert_allclose(scores, want, rtol=2e-4)
  med = np.median(want)
  np.testing.assert_allclose(z, (want - med) / (1.4826 * np.median(np.abs(want - med))), rtol=2e-3)
  assert int(np.argmax(z)) == n - 1 and z[-1] > 3.0


def test_four_crops_of_one_painting_and_another_painting_rank_the_other_worst(model, shared_data):
  wave = images.load_image(os.path.join(shared_data, "styles", "hokusai_great_wave.jpg"), 96,
                           side="shorter")
  rng = np.random.default_rng(1)
  crops = []
  for _ in range(4):
    y, x = rng.integers(0, wave.shape[0] - 48 + 1), rng.integers(0, wave.shape[1] - 48 + 1)
    crops.append(wave[y:y + 48, x:x + 48])
  other = images.center_crop(images.load_image(
      os.path.join(shared_data, "styles", "kandinsky_composition_vii.jpg"), 48, side="shorter"), 48)
  scores, z = fi.outlier_scores(model.config, style_grams(model.config, model.weights(),
                                                          crops + [other]))
  assert int(np.argmax(scores)) == 4 and int(np.argmax(z)) == 4


def test_gram_fit_lowers_the_loss_deterministically(model, liked):
  photos = np.stack([images.center_crop(im, 40) for im in liked[:2]])
  target = gram_match.pooled_grams(style_grams(model.config, model.weights(), liked))
  start = fi.encoder_mean(model, liked)
  z1, h1 = fi.fit_latent(model, photos, target, start, steps=15, learning_rate=0.05)
  z2, h2 = fi.fit_latent(model, photos, target, start, steps=15, learning_rate=0.05)
  assert np.array_equal(z1, z2) and np.array_equal(h1, h2)
  assert h1.shape == (16,) and h1.min() < 0.98 * h1[0]
  # the returned latent is the best one seen, and evaluate_latents scores it the same way
  np.testing.assert_allclose(fi.evaluate_latents(model, photos, target, np.stack([start, z1])),
                             [h1[0], h1.min()], rtol=1e-4)


def test_learn_from_images_result(model, liked):
  photos = np.stack([images.center_crop(im, 40) for im in liked[:2]])
  cfg = fi.FromImagesConfig(steps=5, style_size=48, photo_size=40)
  res = fi.learn_from_images(model, liked, photos, cfg)
  assert np.array_equal(res.latent, res.latent_fit) and res.scores.shape == (4,)
  res_mean = fi.learn_from_images(model, liked, photos, fi.FromImagesConfig(
      steps=0, method="mean", style_size=48, photo_size=40))
  assert np.array_equal(res_mean.latent, res_mean.latent_mean)
  np.testing.assert_allclose(res_mean.latent, res.latent_mean, rtol=1e-6)
  with pytest.raises(ConfigError, match="3 to 64"):
    fi.learn_from_images(model, liked[:2], photos, cfg)


def test_style_space_of_a_run(model, shared_data):
  files = [os.path.join(shared_data, "paintings", p) for p in sorted(os.listdir(
      os.path.join(shared_data, "paintings"))) if p.endswith(".jpg")][:8]
  bad = os.path.join(shared_data, "paintings", "paintings.csv")  # not an image: skipped
  latents, skipped = space_lib.encode_files(model, files + [bad], 48)
  assert latents.shape == (8, model.latent_dim) and [p for p, _ in skipped] == [bad]
  space = space_lib.build_space(model, files, 3, 48)
  coords = space.to_coords(latents)
  np.testing.assert_allclose(coords.std(axis=0, ddof=1), 1.0, rtol=1e-3)
  np.testing.assert_allclose(coords.mean(axis=0), 0.0, atol=1e-4)
  with pytest.raises(ConfigError, match="at least 9"):
    space_lib.build_space(model, files, 8, 48)
  run_files = space_lib.collection_files(model)
  assert run_files and all(os.path.isfile(p) for p in run_files)
  assert len(space_lib.collection_files(model, include_unseen=False)) == len(run_files) - 1
