"""Style retrieval is about style, not content: real photos stylized by Gatys.

Three real photos (chelsea, astronaut, coffee) are each stylized in two
strongly different paintings (Starry Night, Great Wave) with
``optimize.stylize`` and the real partial VGG-19, at 96 px. Embedded with a
retrieval descriptor, every result must find the other photos in *its* style
before the same photo in the other style, by a stated cosine margin.

Finding (BUILD_NOTES.md, "Style retrieval (issue 3)"): this holds for the
default descriptor when the stylization is strong (``beta`` = 1e-2, used
here and the stylizer's default since the measured trade-off of
``benchmark.py stylize_tradeoff``), but NOT at the gentle ``beta`` = 1e-3
(the default before it), where the result
keeps so much of the photo that the default descriptor (centred relu3_x
covariance) ranks the same photo in the other style above a same-style image
for astronaut × Great Wave. ``test_weak_stylization_known_limitation`` (slow)
pins that down as a strict xfail.
"""

import dataclasses

import jax
import numpy as np
import pytest

from jaxstyle import images as images_lib
from jaxstyle import optimize
from jaxstyle import retrieval as R

SIZE = 96
PHOTOS = ("chelsea", "astronaut", "coffee")
PAINTINGS = {"starry": "vangogh_starry_night.jpg", "wave": "hokusai_great_wave.jpg"}
STRONG = optimize.StylizeConfig(steps=40, learning_rate=0.05, beta=1e-2)
# Minimum of (cosine to a same-style image) - (cosine to the same photo in the
# other style), per descriptor preset, at scale SIZE: about half the margin
# measured in BUILD_NOTES.md ("Style retrieval (issue 3)") is asserted.
MARGINS = {"default": 0.07, "stats": 0.015, "naive": 0.07}


def _square_photo(shared_data, name):
  im = images_lib.load_image(f"{shared_data}/content/skimage_{name}.png", SIZE, side="shorter")
  h, w = im.shape[:2]
  top, left = (h - SIZE) // 2, (w - SIZE) // 2
  return im[top:top + SIZE, left:left + SIZE]


def _stylize_all(vgg, shared_data, config):
  """``{(photo, style): (image, style loss of the result, style loss of the photo)}``."""
  photos = {p: _square_photo(shared_data, p) for p in PHOTOS}
  paintings = {s: images_lib.load_image(f"{shared_data}/styles/{f}", 256)
               for s, f in PAINTINGS.items()}
  out = {}
  for i, (p, photo) in enumerate(photos.items()):
    for j, (s, painting) in enumerate(paintings.items()):
      res = optimize.stylize(vgg, photo, [painting], config=config,
                             key=jax.random.PRNGKey(10 * i + j))
      after = optimize.evaluate(vgg, res.image, photo, [painting], config=config)["style"]
      before = optimize.evaluate(vgg, photo, photo, [painting], config=config)["style"]
      out[(p, s)] = (res.image, after, before)
  return out


@pytest.fixture(scope="module")
def stylized(vgg_partial, shared_data):
  return _stylize_all(vgg_partial, shared_data, STRONG)


@pytest.fixture(scope="module")
def weakly_stylized(vgg_partial, shared_data):
  return _stylize_all(vgg_partial, shared_data, STRONG.replace(beta=1e-3))


def _similarities(vgg, stylized, preset):
  keys = sorted(stylized)
  config = dataclasses.replace(R.get_config(preset), scales=(SIZE,))
  (base,) = R.Embedder(vgg, config, batch_size=6).embed([stylized[k][0] for k in keys])
  # Six images are below whiten_min_images: the search descriptors are the base ones.
  assert R.fit_whitening(base, config) is None
  search = R.apply_whitening(base, None)
  return keys, search.astype(np.float64) @ search.T.astype(np.float64)


def _check_style_not_content(keys, sim, margin):
  for i, (photo, style) in enumerate(keys):
    others = [j for j in range(len(keys)) if j != i]
    top2 = sorted(others, key=lambda j: -sim[i, j])[:2]
    assert [keys[j][1] for j in top2] == [style, style], ((photo, style), [keys[j] for j in top2])
    same_style = min(sim[i, j] for j in others if keys[j][1] == style)
    same_photo = max(sim[i, j] for j in others if keys[j][0] == photo)
    assert same_style - same_photo >= margin, ((photo, style), same_style, same_photo)


def test_stylization_happened(stylized):
  for (photo, style), (image, after, before) in stylized.items():
    assert image.shape == (SIZE, SIZE, 3) and image.dtype == np.float32
    # Measured ratios 0.007-0.018; the photo itself is the reference.
    assert after < 0.05 * before, (photo, style, after, before)


@pytest.mark.parametrize("preset", sorted(MARGINS))
def test_stylized_photos_retrieve_their_style_not_their_photo(vgg_partial, stylized, preset):
  keys, sim = _similarities(vgg_partial, stylized, preset)
  _check_style_not_content(keys, sim, MARGINS[preset])


@pytest.mark.slow
@pytest.mark.parametrize("preset", [
    pytest.param("default", marks=pytest.mark.xfail(
        strict=True, raises=AssertionError,
        reason="known limitation: at the gentle beta=1e-3 the default descriptor"
        " ranks astronaut x Great Wave's other-style twin above a same-style image "
        "(see BUILD_NOTES.md)")),
    "naive",
])
def test_weak_stylization_known_limitation(vgg_partial, weakly_stylized, preset):
  """Gentle stylization (beta=1e-3): naive Gram (the stylizer's own statistic) still passes."""
  keys, sim = _similarities(vgg_partial, weakly_stylized, preset)
  _check_style_not_content(keys, sim, 0.0)
