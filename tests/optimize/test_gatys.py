"""Tests of jaxstyle.optimize on real data (photos, paintings, partial VGG-19 weights)."""

import os

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from jaxstyle import images, optimize, vgg
from jaxstyle.errors import JaxstyleError

CONTENT = "content/skimage_chelsea.png"
STYLE = "styles/vangogh_starry_night.jpg"
STYLE2 = "styles/hokusai_great_wave.jpg"


def _img(shared_data, rel, size):
  return images.load_image(os.path.join(shared_data, rel), size)


def test_stylize_cuts_style_loss_keeps_content(shared_data, vgg_partial):
  """80 Adam steps at 128 px, β = 1e-3: style loss ≥ 10× lower, content bounded."""
  content = _img(shared_data, CONTENT, 128)
  style = _img(shared_data, STYLE, 128)
  # β pinned at the gentle 1e-3 the bounds were stated for (the default is now 1e-2, which moves
  # further from the content: 0.66× the painting's content loss here; see stylize_tradeoff).
  cfg = optimize.StylizeConfig(steps=80, beta=1e-3)
  start = optimize.evaluate(vgg_partial, content, content, [style], None, cfg)
  result = optimize.stylize(vgg_partial, content, [style], None, cfg, jax.random.PRNGKey(0))
  end = optimize.evaluate(vgg_partial, result.image, content, [style], None, cfg)
  # The painting itself, resized to the photo's shape: a "no content at all" reference.
  painting = optimize.evaluate(vgg_partial, images.resize(style, content.shape[:2]), content,
                               [style], None, cfg)
  assert result.image.shape == content.shape and result.image.dtype == np.float32
  assert result.image.min() >= 0.0 and result.image.max() <= 1.0
  assert start["content"] == 0.0
  assert end["style"] <= start["style"] / 10.0, (start, end)
  # Stated bound: the result's relu3_2 content loss is at most half the painting's.
  assert end["content"] <= 0.5 * painting["content"], (end, painting)
  assert np.mean(np.abs(result.image - content)) > 0.03
  assert len(result.history) == 80
  assert [r["step"] for r in result.history] == list(range(1, 81))
  assert result.history[-1]["loss"] < 0.2 * result.history[0]["loss"]


def test_loss_and_gradient_match_torch(shared_data, vgg_partial):
  """Same loss parts and gradient as the independent PyTorch step (experiments/peers/gatys.py)."""
  torch = pytest.importorskip("torch")
  from peers import gatys as peer_gatys
  content = _img(shared_data, CONTENT, 48)
  style = _img(shared_data, STYLE, 48)
  cfg = optimize.StylizeConfig(gamma=5.0, style_scale=1.0)
  x = np.clip(content + 0.1 * np.random.RandomState(0).randn(*content.shape), 0, 1).astype(
      np.float32)
  # Style resized exactly as the library does (longer side 48): it already is.
  assert max(style.shape[:2]) == 48
  ours = optimize.evaluate(vgg_partial, x, content, [style], None, cfg)
  tv = peer_gatys.TorchVGG(vgg_partial.params, vgg_partial.preprocessing)
  tg = peer_gatys.TorchGatys(tv, content, style, dict(cfg.content_layers), dict(cfg.style_layers),
                            cfg.alpha, cfg.beta, cfg.gamma, cfg.learning_rate)
  xt = torch.from_numpy(x.transpose(2, 0, 1)[None].copy()).requires_grad_(True)
  ref = tg.loss(xt)
  for k in ("loss", "content", "style", "tv"):
    np.testing.assert_allclose(ours[k], ref[k].item(), rtol=2e-4, err_msg=k)
  ref["loss"].backward()  # after the .item() reads
  g_ref = xt.grad[0].numpy().transpose(1, 2, 0)
  objective = optimize.Objective(vgg_partial.preprocessing, cfg)
  variables = vgg_partial.variables()
  targets = objective.targets(variables, jnp.asarray(content), [jnp.asarray(style)], [1.0])
  g = jax.grad(lambda im: objective.parts(variables, im, targets)["loss"])(jnp.asarray(x)[None])
  g = np.asarray(g[0])
  assert np.linalg.norm(g - g_ref) <= 1e-3 * np.linalg.norm(g_ref)


def test_same_key_identical_and_init_noise_depends_on_key(shared_data, vgg_partial):
  content = _img(shared_data, CONTENT, 64)
  style = _img(shared_data, STYLE, 64)
  cfg = optimize.StylizeConfig(steps=4, init="noise")
  a = optimize.stylize(vgg_partial, content, [style], None, cfg, jax.random.PRNGKey(3)).image
  b = optimize.stylize(vgg_partial, content, [style], None, cfg, jax.random.PRNGKey(3)).image
  c = optimize.stylize(vgg_partial, content, [style], None, cfg, jax.random.PRNGKey(4)).image
  np.testing.assert_array_equal(a, b)
  assert np.mean(np.abs(a - c)) > 0.01


def test_synthesize_seeds_differ_with_similar_style_loss(shared_data, vgg_partial):
  style = _img(shared_data, STYLE2, 96)
  cfg = optimize.synthesis_config(steps=60)
  outs, losses = [], []
  for seed in (0, 1):
    r = optimize.synthesize(vgg_partial, [style], (64, 96), jax.random.PRNGKey(seed), config=cfg)
    assert r.image.shape == (64, 96, 3)
    outs.append(r.image)
    losses.append(optimize.evaluate(vgg_partial, r.image, None, [style], None, cfg)["style"])
  noise = np.clip(0.5 + 0.1 * np.random.RandomState(0).randn(64, 96, 3), 0, 1).astype(np.float32)
  start = optimize.evaluate(vgg_partial, noise, None, [style], None, cfg)["style"]
  assert np.mean(np.abs(outs[0] - outs[1])) > 0.05  # different images ...
  assert max(losses) <= start / 10.0, (start, losses)  # ... both in the style ...
  assert max(losses) / min(losses) < 2.0, losses  # ... about equally well.


def test_color_preservation_keeps_content_chroma(shared_data, vgg_partial):
  content = _img(shared_data, CONTENT, 96)
  style = _img(shared_data, STYLE, 96)
  cfg = optimize.StylizeConfig(steps=30, preserve_color="luminance")
  r = optimize.stylize(vgg_partial, content, [style], None, cfg, jax.random.PRNGKey(0))
  # Float64 NumPy YIQ, independent of the library's matrices.
  m = np.array([[0.299, 0.587, 0.114], [0.596, -0.274, -0.322], [0.211, -0.523, 0.312]])
  yiq_out = r.image.astype(np.float64) @ m.T
  yiq_c = content.astype(np.float64) @ m.T
  chroma_err = np.abs(yiq_out[..., 1:] - yiq_c[..., 1:])
  assert chroma_err.mean() < 0.005, chroma_err.mean()  # only clipping to [0, 1] changes it
  assert np.quantile(chroma_err, 0.99) < 0.05
  assert np.abs(yiq_out[..., 0] - yiq_c[..., 0]).mean() > 0.02  # luminance was stylised
  # Without preservation, the chroma moves towards the painting's blues and yellows.
  plain = optimize.stylize(vgg_partial, content, [style], None,
                           cfg.replace(preserve_color="none"), jax.random.PRNGKey(0))
  plain_err = np.abs(plain.image.astype(np.float64) @ m.T - yiq_c)[..., 1:].mean()
  assert plain_err > 5 * chroma_err.mean()


def test_blend_of_two_styles(shared_data, vgg_partial):
  content = _img(shared_data, CONTENT, 64)
  s1, s2 = _img(shared_data, STYLE, 64), _img(shared_data, STYLE2, 64)
  cfg = optimize.StylizeConfig(steps=60, alpha=0.0, init="noise")
  key = jax.random.PRNGKey(0)
  r = optimize.stylize(vgg_partial, content, [s1, s2], [0.5, 0.5], cfg, key)
  to_blend = optimize.evaluate(vgg_partial, r.image, content, [s1, s2], [0.5, 0.5], cfg)["style"]
  to_s1 = optimize.evaluate(vgg_partial, r.image, content, [s1], None, cfg)["style"]
  to_s2 = optimize.evaluate(vgg_partial, r.image, content, [s2], None, cfg)["style"]
  # The result sits near the midpoint of the two styles' Grams, not at either style.
  assert to_blend < 0.5 * min(to_s1, to_s2), (to_blend, to_s1, to_s2)
  # Weights (1, 0) are exactly the first style alone.
  short = cfg.replace(steps=3)
  a = optimize.stylize(vgg_partial, content, [s1, s2], [1.0, 0.0], short, key).image
  b = optimize.stylize(vgg_partial, content, [s1], None, short, key).image
  np.testing.assert_array_equal(a, b)


def test_multiscale_sizes_and_steps():
  assert optimize.scale_sizes(512, 384, 3, 2.0) == [(128, 96), (256, 192), (512, 384)]
  assert optimize.scale_sizes(40, 40, 3, 2.0) == [(16, 16), (20, 20), (40, 40)]
  assert optimize.StylizeConfig(steps=10, num_scales=3).steps_per_scale() == (3, 3, 4)
  assert optimize.StylizeConfig(steps=10, num_scales=2,
                                scale_steps=(7, 3)).steps_per_scale() == (7, 3)


def test_multiscale_runs_coarse_to_fine(shared_data, vgg_partial):
  content = _img(shared_data, CONTENT, 96)
  style = _img(shared_data, STYLE, 96)
  cfg = optimize.StylizeConfig(steps=12, num_scales=2)
  r = optimize.stylize(vgg_partial, content, [style], None, cfg, jax.random.PRNGKey(0))
  assert r.image.shape == content.shape
  sizes = [(h["height"], h["width"]) for h in r.history]
  h, w = content.shape[:2]
  assert sizes == [(round(h / 2), round(w / 2))] * 6 + [(h, w)] * 6


def test_lbfgs_reduces_loss(shared_data, vgg_partial):
  content = _img(shared_data, CONTENT, 48)
  style = _img(shared_data, STYLE, 48)
  cfg = optimize.StylizeConfig(steps=5, optimizer="lbfgs")
  r = optimize.stylize(vgg_partial, content, [style], None, cfg, jax.random.PRNGKey(0))
  assert r.history[-1]["loss"] < 0.5 * r.history[0]["loss"]
  losses = [h["loss"] for h in r.history]
  assert all(b <= a for a, b in zip(losses, losses[1:]))  # Armijo: every accepted step descends
  assert r.image.min() >= 0 and r.image.max() <= 1


def test_adam_step_compiles_once():
  """The Adam state must keep its types from init to update, or the jitted step traces twice."""
  from jaxstyle.optimize import gatys  # pylint: disable=g-import-not-at-top
  traces = []

  class _Obj:  # the two methods of Objective that a stepper uses
    def parts(self, variables, image, targets):
      traces.append(1)
      loss = jnp.sum((image - targets) ** 2) * variables
      return {"loss": loss, "content": loss, "style": loss, "tv": loss}

  stepper = gatys.make_stepper(_Obj(), optimize.StylizeConfig(optimizer="adam"))
  p, target = jnp.ones((1, 4, 4, 3), jnp.float32), jnp.zeros((1, 4, 4, 3), jnp.float32)
  state = stepper.init(p, 1.0, target)
  for _ in range(3):
    p, state, parts = stepper.step(p, state, 1.0, target)
  assert len(traces) == 1 and float(parts["loss"]) < 48


def test_errors(shared_data, vgg_partial):
  content = _img(shared_data, CONTENT, 32)
  style = _img(shared_data, STYLE, 32)
  key = jax.random.PRNGKey(0)
  with pytest.raises(JaxstyleError, match="no style images"):
    optimize.stylize(vgg_partial, content, [], None, optimize.StylizeConfig(steps=1), key)
  with pytest.raises(JaxstyleError, match="2 style image.*1 style weight"):
    optimize.stylize(vgg_partial, content, [style, style], [1.0], optimize.StylizeConfig(steps=1),
                     key)
  with pytest.raises(JaxstyleError, match="size"):
    optimize.synthesize(vgg_partial, [style], 0, key)
  with pytest.raises(JaxstyleError, match="steps"):
    optimize.stylize(vgg_partial, content, [style], None, optimize.StylizeConfig(steps=0), key)
  with pytest.raises(vgg.WeightsError, match="relu4_1"):
    optimize.stylize(vgg_partial, content, [style], None,
                     optimize.StylizeConfig(style_layers=optimize.CLASSIC_STYLE_LAYERS), key)
  bad = content.copy()
  bad[0, 0, 0] = np.nan
  with pytest.raises(JaxstyleError, match="NaN"):
    optimize.stylize(vgg_partial, bad, [style], None, optimize.StylizeConfig(steps=1), key)
  # A loss that overflows float32 is caught at the first step, with advice.
  with pytest.raises(optimize.OptimizationError, match="not finite at step 1.*learning rate"):
    optimize.stylize(vgg_partial, content, [style], None,
                     optimize.StylizeConfig(steps=2, beta=1e38), key)


@pytest.mark.slow
def test_multiscale_synthesis_beats_single_scale(shared_data, vgg_partial):
  """Same number of steps (VGG evaluations): coarse-to-fine reaches a lower style loss.

  Minutes on a CPU, hence slow; the measured figures are in BUILD_NOTES.md (Multi-scale).
  """
  style = _img(shared_data, STYLE2, 256)
  single = optimize.synthesis_config(steps=120)
  multi = single.replace(num_scales=2)
  key = jax.random.PRNGKey(0)
  ls = optimize.evaluate(vgg_partial, optimize.synthesize(vgg_partial, [style], 256, key,
                                                          config=single).image,
                         None, [style], None, single)["style"]
  lm = optimize.evaluate(vgg_partial, optimize.synthesize(vgg_partial, [style], 256, key,
                                                          config=multi).image,
                         None, [style], None, single)["style"]
  assert lm < 0.95 * ls, (lm, ls)
