"""Tests of jaxstyle.train.stylizer: loss terms against NumPy, learning, D isolation, determinism, devices."""

import dataclasses
import os

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from jaxstyle import parallel, train, vgg
from jaxstyle.data import folders
from jaxstyle.errors import ConfigError, DataError, WeightsError
from jaxstyle.nets import patchgan, style_encoder as se, stylizer as st
from jaxstyle.train import stylizer as ts

CROP, STYLE = 32, 48
# Tiny networks and shallow VGG taps (to relu2_2) keep the CPU compiles short; the code paths are
# those of the full model.
CFG = ts.StylizerTrainConfig(
    generator=st.StylizerConfig(latent_dim=8, widths=(8, 16), residual_blocks=1, stem_kernel=3),
    discriminator=patchgan.PatchGANConfig(latent_dim=8, widths=(8, 16, 32), feature_dim=16),
    encoder=se.StyleEncoderConfig(latent_dim=8, taps=("relu1_1", "relu2_1"), hidden=(16,)),
    content_layers=(("relu2_2", 1.0),), style_layers=(("relu1_1", 1.0), ("relu2_1", 0.5)),
    identity_weight=1e5, tv_weight=10.0, adv_weight=0.1, latent_source="both")
# Bank latents only, no adversarial term: every G term is known from the params.
CFG_BANK = dataclasses.replace(CFG, latent_source="bank", adv_weight=0.0)
ADAM = train.adam(3e-3)


@pytest.fixture(scope="module")
def styles(shared_data):
  files = [os.path.join(shared_data, "styles", f) for f in ("hokusai_great_wave.jpg", "picabia_udnie.jpg")]
  return folders.load_styles(files, STYLE, square=True)[1]


@pytest.fixture(scope="module")
def content(shared_data):
  photos = folders.list_images(os.path.join(shared_data, "photos", "bsds500", "val"))[:2]
  return folders.PhotoCrops(photos, CROP, 2, seed=0).batch(0)


_COMPILED = {}


def _step(cfg, num_styles, weights, styles):
  """The jitted single-device Adam step, compiled once per (config, number of styles)."""
  key = (cfg, num_styles)
  if key not in _COMPILED:
    _COMPILED[key] = jax.jit(ts.make_stylizer_step(cfg, weights, styles[:num_styles], ADAM, ADAM,
                                                   axis_name=None))
  return _COMPILED[key]


def _perturb_stylemods(params, seed, scale=0.3):
  """Random StyleMod kernels (as after training), so the latents get gradients from step 1.

  NumPy noise: eager jax.random calls would compile one PRNG kernel per leaf shape.
  """
  rng = np.random.default_rng(seed)
  leaves, treedef = jax.tree_util.tree_flatten_with_path(params)
  out = [leaf + scale * rng.standard_normal(leaf.shape).astype(np.float32)
         if any(getattr(p, "key", None) == "mod" for p in path) else leaf for path, leaf in leaves]
  return jax.tree_util.tree_unflatten(treedef, out)


def _bytes(tree):
  return [np.asarray(x).tobytes() for x in jax.tree.leaves(tree)]


def _max_diff(a, b):
  return max(jax.tree.leaves(jax.tree.map(
      lambda x, y: float(np.max(np.abs(np.asarray(x, np.float64) - np.asarray(y, np.float64)))), a, b)))


def _np_gram(f):
  f = np.asarray(f, np.float64)
  b, h, w, c = f.shape
  f = f.reshape(b, h * w, c)
  return np.einsum("bmi,bmj->bij", f, f) / (h * w)


def test_loss_terms_match_numpy_float64(vgg_partial, styles, content):
  """The step's metrics at step 0 against NumPy float64 from the same generator output and features."""
  cfg = CFG_BANK
  state = ts.init_stylizer_state(cfg, 0, ADAM, ADAM, 1)
  assert set(state.params) == {"g", "bank", "d"}
  state = state.replace(params={**state.params, "g": _perturb_stylemods(state.params["g"], 9)})
  _, m = _step(cfg, 1, vgg_partial, styles)(state, {"content": content})

  lat = state.params["bank"]["latents"][0]
  out = np.asarray(jax.jit(st.stylizer_fn(cfg.generator))(
      state.params["g"], jnp.concatenate([content, content]), jnp.stack([lat, lat, 0 * lat, 0 * lat])),
      np.float64)
  x, ident = out[:2], out[2:]
  features = jax.jit(lambda w, images: vgg.extract(w, images, ("relu1_1", "relu2_1", "relu2_2")))
  fx, fc, fs = [features(vgg_partial, jnp.asarray(v, jnp.float32)) for v in (x, content, styles[:1])]
  dc = np.asarray(fx["relu2_2"], np.float64) - np.asarray(fc["relu2_2"], np.float64)
  want_content = np.mean(0.5 * dc ** 2)
  want_style = 0.0
  for tap, w in cfg.style_layers:
    n = np.asarray(fx[tap]).shape[-1]
    want_style += w * np.mean(np.sum((_np_gram(fx[tap]) - _np_gram(fs[tap])) ** 2, axis=(1, 2))) / (4 * n * n)
  tv = np.sum(np.diff(x, axis=1) ** 2, axis=(1, 2, 3)) + np.sum(np.diff(x, axis=2) ** 2, axis=(1, 2, 3))
  want_tv = np.mean(tv) / (CROP * CROP)
  want_identity = np.mean((ident - np.asarray(content, np.float64)) ** 2)
  got = {k: float(v) for k, v in m.items()}
  np.testing.assert_allclose(got["content"], want_content, rtol=1e-4)
  np.testing.assert_allclose(got["style"], want_style, rtol=1e-4)
  np.testing.assert_allclose(got["tv"], want_tv, rtol=1e-4)
  np.testing.assert_allclose(got["identity"], want_identity, rtol=1e-4)
  want_total = (cfg.content_weight * want_content + cfg.style_weight * want_style
                + cfg.tv_weight * want_tv + cfg.identity_weight * want_identity)
  np.testing.assert_allclose(got["g_loss"], want_total, rtol=1e-4)
  assert 0.0 <= got["d_acc"] <= 1.0 and np.isfinite(got["d_loss"]) and np.isfinite(got["adv"])


def test_without_adversarial_weight_the_generator_ignores_the_discriminator(vgg_partial, styles, content):
  cfg = CFG_BANK
  state = ts.init_stylizer_state(cfg, 1, ADAM, ADAM, 1)
  other_d = jax.tree.map(lambda p: 3.0 * p + 0.1, state.params["d"])
  changed = state.replace(params={**state.params, "d": other_d})
  step = _step(cfg, 1, vgg_partial, styles)
  a, ma = step(state, {"content": content})
  b, mb = step(changed, {"content": content})
  for k in ("g", "bank"):
    assert _bytes(a.params[k]) == _bytes(b.params[k]), k
    assert _bytes(a.opt_state[k]) == _bytes(b.opt_state[k]), k
  for k in ("g_loss", "content", "style", "tv", "identity"):
    assert float(ma[k]) == float(mb[k]), k
  assert float(ma["d_loss"]) != float(mb["d_loss"])
  assert _max_diff(a.params["d"], state.params["d"]) > 0  # D still trains


@pytest.mark.slow  # compiles the adversarial step (about 20 s)
def test_with_adversarial_weight_the_discriminator_steers_the_generator(vgg_partial, styles, content):
  state = ts.init_stylizer_state(CFG, 1, ADAM, ADAM, 2)
  assert set(state.params) == {"g", "bank", "encoder", "d"}
  changed = state.replace(params={**state.params, "d": jax.tree.map(lambda p: 3.0 * p + 0.1,
                                                                     state.params["d"])})
  step = _step(CFG, 2, vgg_partial, styles)
  a, _ = step(state, {"content": content})
  b, _ = step(changed, {"content": content})
  assert _bytes(a.params["g"]) != _bytes(b.params["g"])


def test_same_seed_gives_bit_identical_state_after_two_steps(vgg_partial, styles, content):
  step = _step(CFG, 2, vgg_partial, styles)

  def run(seed):
    state = ts.init_stylizer_state(CFG, seed, ADAM, ADAM, 2)
    for _ in range(2):
      state, metrics = step(state, {"content": content})
    assert all(np.isfinite(float(v)) for v in metrics.values())
    return state

  a, b = run(4), run(4)
  assert int(a.step) == 2 and _bytes(a) == _bytes(b)
  assert _bytes(run(5).params["g"]) != _bytes(a.params["g"])


@pytest.mark.slow  # 12 Adam steps (about 25 s)
def test_a_few_steps_lower_the_generator_loss(vgg_partial, styles, content):
  evaluate = ts.make_stylizer_eval(CFG, vgg_partial)
  grams = ts.style_grams(CFG, vgg_partial, styles)
  step = _step(CFG, 2, vgg_partial, styles)
  x = jnp.concatenate([content, content])  # each photo under each style
  idx = jnp.array([0, 0, 1, 1])

  def loss(state):
    m = evaluate(state.params["g"], x, state.params["bank"]["latents"][idx],
                 {k: v[idx] for k, v in grams.items()})
    return {k: float(v) for k, v in m.items()}

  state = ts.init_stylizer_state(CFG, 2, ADAM, ADAM, 2)
  before = loss(state)
  for _ in range(12):
    state, _ = step(state, {"content": content})
  after = loss(state)
  assert after["loss"] < 0.7 * before["loss"], (before, after)
  assert after["style"] < before["style"], (before, after)


@pytest.mark.slow  # compiles the step under shard_map on 4 devices (about 40 s)
def test_four_devices_shard_map_match_one_device_jit(vgg_partial, styles, shared_data):
  # After one Adam step the first moment is (1 - b1) times the global-batch gradient, so comparing
  # the optimizer states compares the gradients; perturbed StyleMods give the latents gradients.
  # Adam's first update is about lr * sign(gradient): where a gradient is at rounding-noise level
  # (|g| < 1e-3 of the network's largest) the sign, and so the update, may differ by up to 2 lr.
  photos = folders.list_images(os.path.join(shared_data, "photos", "bsds500", "val"))[:4]
  batch = {"content": folders.PhotoCrops(photos, CROP, 4, seed=1).batch(0)}
  state = ts.init_stylizer_state(CFG, 3, ADAM, ADAM, 2)
  state = state.replace(params={**state.params, "g": _perturb_stylemods(state.params["g"], 3)})
  ref, ref_m = _step(CFG, 2, vgg_partial, styles)(state, batch)
  runner = parallel.DataParallel("shard_map")
  assert runner.num_devices == 4
  pstep = runner.compile(ts.make_stylizer_step(CFG, vgg_partial, styles, ADAM, ADAM))
  got, got_m = pstep(runner.put_state(jax.tree.map(np.asarray, state)), runner.put_batch(batch))
  got, got_m = runner.get_state(got), runner.get_metrics(got_m)
  for k in ref.params:
    mu_ref, mu_got = ref.opt_state[k][0].mu, got.opt_state[k][0].mu
    scale = max(float(np.max(np.abs(np.asarray(m)))) for m in jax.tree.leaves(mu_ref))
    assert scale > 0, k  # every network got a gradient
    assert _max_diff(mu_ref, mu_got) <= 1e-5 * scale, k
    for m, a, b in zip(jax.tree.leaves(mu_ref), jax.tree.leaves(ref.params[k]),
                       jax.tree.leaves(got.params[k])):
      signal = np.abs(np.asarray(m)) > 1e-3 * scale
      assert np.max(np.abs(np.asarray(a) - np.asarray(b))[signal], initial=0.0) <= 1e-5, k
      assert np.max(np.abs(np.asarray(a) - np.asarray(b))) <= 2.01 * 3e-3, k
  for k, v in ref_m.items():
    np.testing.assert_allclose(got_m[k], float(v), rtol=1e-5, atol=1e-6, err_msg=k)


def test_settings_and_inputs_are_checked(vgg_partial, styles, content):
  with pytest.raises(ConfigError, match="latent_dim"):
    ts.init_stylizer_state(dataclasses.replace(CFG, generator=st.StylizerConfig(latent_dim=4)), 0,
                           ADAM, ADAM, 2)
  with pytest.raises(ConfigError, match="d_steps"):
    ts.make_stylizer_step(dataclasses.replace(CFG, d_steps=0), vgg_partial, styles, ADAM, ADAM)
  with pytest.raises(ConfigError, match="gan_loss"):
    ts.make_stylizer_step(dataclasses.replace(CFG, gan_loss="wasserstein"), vgg_partial, styles, ADAM, ADAM)
  with pytest.raises(WeightsError, match="relu4_2"):
    ts.make_stylizer_step(dataclasses.replace(CFG, content_layers=(("relu4_2", 1.0),)), vgg_partial,
                          styles, ADAM, ADAM)
  small = ts.make_stylizer_step(CFG, vgg_partial, styles[:, :24, :24], ADAM, ADAM, axis_name=None)
  state = ts.init_stylizer_state(CFG, 0, ADAM, ADAM, 2)
  with pytest.raises(DataError, match="smaller than the 32x32 content crops"):
    jax.eval_shape(small, state, {"content": content})
  no_d = dataclasses.replace(CFG, d_steps=0, adv_weight=0.0, latent_source="encoder")
  assert ts.init_stylizer_state(no_d, 0, ADAM, ADAM, 2).params.keys() == {"g", "encoder"}


def _batch_styles(weights, cfg, style, b):
  """A batch's encoder-only styles: ``style`` [CROP, CROP, 3] for all ``b`` examples, with its Grams."""
  grams = ts.style_grams(cfg, weights, style[None])
  return {"style": np.broadcast_to(style, (b,) + style.shape).copy(),
          "style_grams": {k: np.broadcast_to(v, (b,) + v.shape[1:]).copy() for k, v in grams.items()}}


@pytest.fixture(scope="module")
def painting(shared_data):
  path = os.path.join(shared_data, "paintings", "ivan-aivazovsky_the-ninth-wave.jpg")
  return folders.load_styles([path], CROP, square=True)[1][0]


@pytest.mark.slow  # compiles the encoder-example step twice (about 40 s); the trainer's end-to-end
# tests (experiments/test_train_stylizer.py) run that step with batch styles
def test_batch_styles_replace_the_closed_over_styles_of_encoder_examples(vgg_partial, styles, content,
                                                                         painting):
  """Encoder latents, 2 D updates: a batch carrying painting P == the step closing over P alone.

  With P as the only closed-over style, at the crop size, every crop the step draws is all of P, so
  both paths give the encoder, the losses and the D the same images and targets.
  """
  cfg = dataclasses.replace(CFG, latent_source="encoder", d_steps=2)
  state = ts.init_stylizer_state(cfg, 2, ADAM, ADAM, 1)
  state = state.replace(params={**state.params, "g": _perturb_stylemods(state.params["g"], 2)})
  ref, ref_m = jax.jit(ts.make_stylizer_step(cfg, vgg_partial, painting[None], ADAM, ADAM,
                                             axis_name=None))(state, {"content": content})
  got, got_m = jax.jit(ts.make_stylizer_step(cfg, vgg_partial, styles, ADAM, ADAM, axis_name=None))(
      state, {"content": content, **_batch_styles(vgg_partial, cfg, painting, 2)})
  for k, v in ref_m.items():
    np.testing.assert_allclose(float(got_m[k]), float(v), rtol=2e-5, atol=1e-7, err_msg=k)
  assert _max_diff(ref.params, got.params) <= 1e-6
  # and the batch's style matters: the closed-over styles alone give other losses
  _, other_m = jax.jit(ts.make_stylizer_step(cfg, vgg_partial, styles[:, :CROP, :CROP], ADAM, ADAM,
                                             axis_name=None))(state, {"content": content})
  assert abs(float(other_m["style"]) - float(ref_m["style"])) > 1e-3 * float(ref_m["style"])


def test_batch_styles_are_checked(vgg_partial, styles, content, painting):
  state = ts.init_stylizer_state(CFG_BANK, 0, ADAM, ADAM, 2)
  batch = {"content": content, **_batch_styles(vgg_partial, CFG, painting, 2)}
  bank_step = ts.make_stylizer_step(CFG_BANK, vgg_partial, styles, ADAM, ADAM, axis_name=None)
  with pytest.raises(ConfigError, match="latent_source"):
    jax.eval_shape(bank_step, state, batch)
  step = ts.make_stylizer_step(CFG, vgg_partial, styles, ADAM, ADAM, axis_name=None)
  state = ts.init_stylizer_state(CFG, 0, ADAM, ADAM, 2)
  with pytest.raises(DataError, match="must match the content crops"):
    jax.eval_shape(step, state, {**batch, "style": batch["style"][:, :16]})
  with pytest.raises(DataError, match="style layers"):
    jax.eval_shape(step, state, {**batch, "style_grams": {"relu1_1": batch["style_grams"]["relu1_1"]}})


def test_frozen_networks_stay_bit_identical_while_the_rest_learns(vgg_partial, styles, content):
  cfg = dataclasses.replace(CFG, freeze=("g", "bank"), d_steps=0, adv_weight=0.0)
  state = ts.init_stylizer_state(cfg, 4, ADAM, ADAM, 2)
  state = state.replace(params={**state.params, "g": _perturb_stylemods(state.params["g"], 4)})
  new, m = jax.jit(ts.make_stylizer_step(cfg, vgg_partial, styles, ADAM, ADAM, axis_name=None))(
      state, {"content": content})
  assert _bytes(new.params["g"]) == _bytes(state.params["g"])
  assert _bytes(new.params["bank"]) == _bytes(state.params["bank"])
  assert _max_diff(new.params["encoder"], state.params["encoder"]) > 1e-4  # Adam: about lr
  assert np.isfinite(float(m["g_loss"]))
  with pytest.raises(ConfigError, match="leaves nothing"):
    ts.init_stylizer_state(dataclasses.replace(cfg, freeze=("g", "bank", "encoder")), 0, ADAM, ADAM, 2)
  with pytest.raises(ConfigError, match="unknown networks"):
    ts.init_stylizer_state(dataclasses.replace(cfg, freeze=("d",)), 0, ADAM, ADAM, 2)
