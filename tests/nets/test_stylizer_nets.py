"""Tests of the stylization networks: generator, style encoder and bank, PatchGAN."""

import dataclasses
import functools
import os

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from jaxstyle import config as cfglib
from jaxstyle import images as imlib
from jaxstyle import vgg
from jaxstyle.errors import ConfigError
from jaxstyle.nets import patchgan, style_encoder as se, stylizer as st
from jaxstyle.nets.layers import instance_norm

# Small widths keep the 2-core CPU runs short; the architecture is the same.
SMALL = st.StylizerConfig(latent_dim=16, widths=(8, 16, 32), residual_blocks=1)
SMALL_D = patchgan.PatchGANConfig(latent_dim=16, widths=(8, 16, 32, 64), feature_dim=32)


@functools.lru_cache(maxsize=None)
def _gen(cfg):
  """Jitted generator apply (one compile per config and shape keeps the CPU runs short)."""
  return jax.jit(st.stylizer_fn(cfg))


@functools.lru_cache(maxsize=None)
def _disc(cfg):
  return jax.jit(functools.partial(patchgan.apply_patchgan, cfg))


def _np_instance_norm(x, eps):
  x = np.asarray(x, np.float64)
  mean = x.mean(axis=(1, 2), keepdims=True)
  var = ((x - mean) ** 2).mean(axis=(1, 2), keepdims=True)
  return (x - mean) / np.sqrt(var + eps)


def _perturb_stylemods(params, key, scale=0.5):
  """Random StyleMod affines (as after training), so the latent changes every layer."""
  leaves, treedef = jax.tree_util.tree_flatten_with_path(params)
  keys = jax.random.split(key, len(leaves))
  out = []
  for (path, leaf), k in zip(leaves, keys):
    is_mod = any(getattr(p, "key", None) == "mod" for p in path)
    out.append(leaf + scale * jax.random.normal(k, leaf.shape) if is_mod else leaf)
  return jax.tree_util.tree_unflatten(treedef, out)


def _trees_equal(a, b):
  la, lb = jax.tree.leaves(a), jax.tree.leaves(b)
  return len(la) == len(lb) and all(
      x.dtype == y.dtype and np.asarray(x).tobytes() == np.asarray(y).tobytes() for x, y in zip(la, lb))


# ---------------------------------------------------------------- generator building blocks

def test_zero_stylemod_is_identity_on_instance_normalised_activations():
  x = 3.0 + 2.0 * jax.random.normal(jax.random.key(0), (2, 7, 5, 6))
  w = jax.random.normal(jax.random.key(1), (2, 16))
  module = st.StyleInstanceNorm(eps=1e-5)
  params = module.init(jax.random.key(2), x, w)
  assert not np.any(np.asarray(params["params"]["mod"]["affine"]["kernel"]))
  y = module.apply(params, x, w)
  np.testing.assert_allclose(np.asarray(y), _np_instance_norm(x, 1e-5), rtol=1e-5, atol=1e-5)
  y2 = module.apply(params, x, -3.0 * w)  # any latent: still the plain instance norm
  np.testing.assert_array_equal(np.asarray(y), np.asarray(y2))


def test_instance_norm_bfloat16_input_is_normalised_in_float32():
  x = 100.0 + jax.random.normal(jax.random.key(3), (1, 9, 9, 4))
  y = instance_norm(x.astype(jnp.bfloat16))
  assert y.dtype == jnp.bfloat16
  ref = _np_instance_norm(np.asarray(x.astype(jnp.bfloat16), np.float64), 1e-5)
  np.testing.assert_allclose(np.asarray(y, np.float64), ref, atol=0.05)


@pytest.mark.parametrize("pad", [1, 4, ((0, 3), (2, 1))])
def test_reflect_pad_matches_numpy(pad):
  x = np.random.default_rng(0).normal(size=(2, 9, 7, 3)).astype(np.float32)
  p = ((pad, pad), (pad, pad)) if isinstance(pad, int) else pad
  ref = np.pad(x, ((0, 0), p[0], p[1], (0, 0)), mode="reflect")
  np.testing.assert_array_equal(np.asarray(st.reflect_pad(jnp.asarray(x), pad)), ref)


@pytest.mark.parametrize("shape", [(37, 52), (8, 9), (64, 64)])
def test_pad_to_multiple_equals_exact_reflect_pad(shape):
  x = np.random.default_rng(1).normal(size=(1, *shape, 2)).astype(np.float32)
  ph, pw = (-shape[0]) % 4, (-shape[1]) % 4
  ref = np.pad(x, ((0, 0), (0, ph), (0, pw), (0, 0)), mode="reflect")
  np.testing.assert_array_equal(np.asarray(st.pad_to_multiple(jnp.asarray(x), 4)), ref)


def test_upsample_2x_nearest_and_bilinear_match_references():
  x = jax.random.uniform(jax.random.key(4), (2, 5, 7, 3))
  near = np.repeat(np.repeat(np.asarray(x), 2, axis=1), 2, axis=2)
  np.testing.assert_array_equal(np.asarray(st.upsample_2x(x, "nearest")), near)
  bil = jax.image.resize(x, (2, 10, 14, 3), method="bilinear")
  np.testing.assert_allclose(np.asarray(st.upsample_2x(x, "bilinear")), np.asarray(bil), atol=1e-6)


# ---------------------------------------------------------------- generator

@pytest.mark.parametrize("upsample", ["nearest", pytest.param("bilinear", marks=pytest.mark.slow)])
def test_generator_is_shape_polymorphic_and_outputs_unit_range(upsample):
  cfg = dataclasses.replace(SMALL, upsample=upsample)
  params = _perturb_stylemods(st.init_stylizer(cfg, jax.random.key(0)), jax.random.key(1))
  fn = _gen(cfg)
  latent = jax.random.normal(jax.random.key(2), (16,))
  for h, w in [(37, 52), (64, 64)]:
    x = jax.random.uniform(jax.random.key(h), (2, h, w, 3))
    y = fn(params, x, latent)
    assert y.shape == (2, h, w, 3) and y.dtype == jnp.float32
    assert np.all(np.isfinite(y)) and float(y.min()) >= 0.0 and float(y.max()) <= 1.0
    assert float(jnp.std(y)) > 1e-3  # not a constant image


@pytest.mark.slow  # jax.export with symbolic shapes (about 10 s)
def test_generator_exports_with_symbolic_height_and_width():
  from jax import export
  params = _perturb_stylemods(st.init_stylizer(SMALL, jax.random.key(21)), jax.random.key(22))
  n = st.min_image_size(SMALL)
  shape = export.symbolic_shape("b, h, w, 3", constraints=(f"h >= {n}", f"w >= {n}"))
  exp = export.deserialize(export.export(_gen(SMALL))(
      params, jax.ShapeDtypeStruct(shape, jnp.float32), jax.ShapeDtypeStruct((16,), jnp.float32)
  ).serialize())
  for h, w in [(37, 52), (8, 9)]:
    x = jax.random.uniform(jax.random.key(h), (1, h, w, 3))
    np.testing.assert_allclose(np.asarray(exp.call(params, x, jnp.ones(16))),
                               np.asarray(_gen(SMALL)(params, x, jnp.ones(16))), atol=1e-6)


def test_generator_output_is_cropped_from_the_padded_computation():
  # 37x52 is padded to 40x52 and cropped back: its output equals the top-left
  # crop of the output on the explicitly reflect-padded 40x52 image.
  params = _perturb_stylemods(st.init_stylizer(SMALL, jax.random.key(5)), jax.random.key(6))
  x = np.asarray(jax.random.uniform(jax.random.key(7), (1, 37, 52, 3)))
  padded = np.pad(x, ((0, 0), (0, 3), (0, 0), (0, 0)), mode="reflect")
  latent = jnp.ones((1, 16))
  y = _gen(SMALL)(params, jnp.asarray(x), latent)
  yp = _gen(SMALL)(params, jnp.asarray(padded), latent)
  np.testing.assert_allclose(np.asarray(y), np.asarray(yp)[:, :37], atol=1e-6)


def test_generator_latent_matters_only_through_stylemods():
  params = st.init_stylizer(SMALL, jax.random.key(8))
  x = jax.random.uniform(jax.random.key(9), (1, 24, 24, 3))
  a, b = jnp.zeros(16), jax.random.normal(jax.random.key(10), (16,))
  fresh = [_gen(SMALL)(params, x, z) for z in (a, b)]
  np.testing.assert_array_equal(np.asarray(fresh[0]), np.asarray(fresh[1]))  # identity at init
  trained = _perturb_stylemods(params, jax.random.key(11))
  moved = [_gen(SMALL)(trained, x, z) for z in (a, b)]
  assert float(jnp.abs(moved[0] - moved[1]).max()) > 1e-2


@pytest.mark.slow  # compiles the generator twice more (about 12 s)
def test_generator_bfloat16_keeps_float32_params_and_tracks_float32():
  cfg16 = dataclasses.replace(SMALL, dtype="bfloat16")
  p32 = st.init_stylizer(SMALL, jax.random.key(12))
  p16 = st.init_stylizer(cfg16, jax.random.key(12))
  assert _trees_equal(p32, p16)  # same float32 params whatever the compute dtype
  p = _perturb_stylemods(p32, jax.random.key(13), scale=0.1)
  x = jax.random.uniform(jax.random.key(14), (1, 37, 52, 3))
  z = jax.random.normal(jax.random.key(15), (16,))
  y32, y16 = _gen(SMALL)(p, x, z), _gen(cfg16)(p, x, z)
  assert y16.dtype == jnp.float32 and y16.shape == y32.shape
  assert float(jnp.abs(y16 - y32).max()) < 0.05  # bf16 has 8 mantissa bits


def _period2_energy(image):
  """(energy at the period-2 frequencies (row or column index N/2), total energy, AC energy)."""
  f = np.abs(np.fft.fft2(np.asarray(image, np.float64), axes=(0, 1))) ** 2
  h, w = image.shape[:2]
  mask = np.zeros((h, w), bool)
  mask[h // 2, :] = True
  mask[:, w // 2] = True
  return float(f[mask].sum()), float(f.sum()), float(f.sum() - f[0, 0].sum())


# A checkerboard of amplitude a on mid-grey has period-2 energy a^2 / 0.5^2 of the total:
# one 8-bit level (a = 1/255) gives 6e-5. 1e-6 allows at most a = 5e-4 (an eighth of a level),
# far above float32 rounding of a flat image (~1e-14).
CHECKERBOARD_THRESHOLD = 1e-6
# The period-2 rows and columns hold (H + W - 1) / (H W) of a white spectrum's energy (3.1% at
# 64x64) and nearly all of a checkerboard's. Output that is not flat may put at most half the
# white share there: no concentration at period 2.
WHITE_SHARE_64 = (64 + 64 - 1) / (64 * 64)


@pytest.mark.parametrize("upsample", [pytest.param(u, marks=[pytest.mark.slow] if u != "nearest" else [])
                                      for u in st.UPSAMPLES])
def test_flat_grey_input_has_no_checkerboard(upsample):
  cfg = dataclasses.replace(SMALL, upsample=upsample)
  grey = jnp.full((1, 64, 64, 3), 0.5)
  latent = jax.random.normal(jax.random.key(18), (16,))
  params = st.init_stylizer(cfg, jax.random.key(16))
  p2, total, _ = _period2_energy(np.asarray(_gen(cfg)(params, grey, latent)[0]))
  assert p2 / total < CHECKERBOARD_THRESHOLD

  # Random StyleMod affines (as after training): a constant map stays constant through
  # every layer in exact arithmetic, but the convs' threaded summation can differ by an
  # ulp between positions, and each instance norm amplifies such differences on a flat map
  # (by about 1/sqrt(norm_eps)), so the output need not be flat. It must not be a checkerboard.
  params = _perturb_stylemods(params, jax.random.key(17))
  y = _gen(cfg)(params, grey, latent)
  assert abs(float(y.mean()) - 0.5) > 1e-3  # the perturbed affines reach the output
  p2, total, ac = _period2_energy(np.asarray(y[0]))
  assert p2 / total < CHECKERBOARD_THRESHOLD or p2 / ac < 0.5 * WHITE_SHARE_64

  # Control: the measurements do see the artifact of a stride-2 transposed conv.
  deconv = nn.ConvTranspose(3, (3, 3), strides=(2, 2), padding="SAME")
  small = jnp.full((1, 40, 40, 8), 0.5)
  out = deconv.apply(deconv.init(jax.random.key(19), small), small)
  p2, total, ac = _period2_energy(np.asarray(out[0, 8:-8, 8:-8]))
  assert p2 / total > 1e-2 and p2 / ac > 0.5


def test_generator_rejects_bad_inputs():
  params = st.init_stylizer(SMALL, jax.random.key(20))
  small = st.min_image_size(SMALL)
  assert small == 8
  with pytest.raises(st.StylizerInputError, match="too small"):
    st.apply_stylizer(SMALL, params, jnp.zeros((1, small - 1, 20, 3)), jnp.zeros(16))
  with pytest.raises(st.StylizerInputError, match="latent_dim=16"):
    st.apply_stylizer(SMALL, params, jnp.zeros((1, 16, 16, 3)), jnp.zeros(15))
  with pytest.raises(st.StylizerInputError, match="RGB"):
    st.apply_stylizer(SMALL, params, jnp.zeros((1, 16, 16, 1)), jnp.zeros(16))
  with pytest.raises(ConfigError):
    st.init_stylizer(dataclasses.replace(SMALL, widths=()), jax.random.key(0))
  with pytest.raises(ConfigError):
    cfglib.validate(dataclasses.replace(SMALL, stem_kernel=4))


def test_configs_round_trip_through_dicts():
  for cfg in (SMALL, SMALL_D, se.StyleEncoderConfig(taps=("relu1_1", "relu4_1"))):
    assert cfglib.from_dict(type(cfg), cfglib.to_dict(cfg)) == cfg


# ---------------------------------------------------------------- determinism

def test_same_key_gives_bit_identical_params_and_different_keys_differ():
  enc = se.StyleEncoderConfig(latent_dim=16, hidden=(32,))
  inits = [lambda k: st.init_stylizer(SMALL, k), lambda k: patchgan.init_patchgan(SMALL_D, k),
           lambda k: se.init_style_encoder(enc, k), lambda k: se.init_style_bank(4, 16, k)]
  for init in inits:
    a, b, c = init(jax.random.key(1)), init(jax.random.key(1)), init(jax.random.key(2))
    assert _trees_equal(a, b)
    assert not _trees_equal(a, c)


# ---------------------------------------------------------------- style bank, identity, mixing

@pytest.mark.slow  # gradients through the generator for two banks (about 13 s)
def test_style_bank_lookup_and_nonzero_init_gives_stylemod_gradients():
  bank = se.init_style_bank(3, 16, jax.random.key(3))
  table = np.asarray(bank["latents"])
  assert table.shape == (3, 16) and 0.5 < table.std() < 1.5
  got = se.StyleBank(3, 16).apply({"params": bank}, jnp.array([2, 0]))
  np.testing.assert_array_equal(np.asarray(got), table[[2, 0]])

  params = st.init_stylizer(SMALL, jax.random.key(4))
  x = jax.random.uniform(jax.random.key(5), (1, 16, 16, 3))

  def loss(p, table):
    return jnp.mean((_gen(SMALL)(p, x, table[1]) - 0.3) ** 2)

  def mod_kernel_grad_norm(table):
    g = jax.jit(jax.grad(loss))(params, table)["stem_norm"]["mod"]["affine"]["kernel"]
    return float(jnp.abs(g).sum())

  assert mod_kernel_grad_norm(jnp.asarray(table)) > 0
  assert mod_kernel_grad_norm(jnp.zeros_like(table)) == 0  # why the bank is not zero-initialised


def test_strength_and_mix_of_latents():
  a, b = jnp.arange(4.0), jnp.ones(4)
  np.testing.assert_array_equal(np.asarray(se.with_strength(a, 0.0)), np.zeros(4))
  np.testing.assert_array_equal(np.asarray(se.identity_latent(4)), np.zeros(4))
  np.testing.assert_allclose(np.asarray(se.with_strength(a, 0.5)), [0, 0.5, 1, 1.5])
  np.testing.assert_allclose(np.asarray(se.mix_latents([a, b], [0.6, 0.4])),
                             0.6 * np.arange(4.0) + 0.4)
  np.testing.assert_allclose(np.asarray(se.mix_latents(jnp.stack([a, b]), [3, 1])),
                             0.75 * np.arange(4.0) + 0.25)
  with pytest.raises(ValueError, match="one weight per latent"):
    se.mix_latents([a, b], [1.0])
  with pytest.raises(ValueError, match=">= 0"):
    se.mix_latents([a, b], [1.0, -0.5])


# ---------------------------------------------------------------- style encoder (real VGG, paintings)

@pytest.fixture(scope="module")
def paintings(shared_data):
  styles = os.path.join(shared_data, "styles")
  return {name: imlib.load_image(os.path.join(styles, name + ".jpg"), 128)
          for name in ("hokusai_great_wave", "picabia_udnie")}


def test_style_statistics_match_numpy_reference(vgg_partial, paintings):
  img = paintings["hokusai_great_wave"][None]
  stats = np.asarray(se.style_statistics(vgg_partial, jnp.asarray(img), se.DEFAULT_TAPS))
  feats = vgg.extract(vgg_partial, jnp.asarray(img), se.DEFAULT_TAPS)
  ref = []
  for tap in se.DEFAULT_TAPS:
    f = np.asarray(feats[tap], np.float64)[0].reshape(-1, vgg.tap_channels(tap))
    ref += [f.mean(0), np.sqrt(f.var(0) + se.STD_EPS)]
  assert stats.shape == (1, se.stats_dim(se.DEFAULT_TAPS)) == (1, 2 * (64 + 128 + 256))
  np.testing.assert_allclose(stats[0], np.concatenate(ref), rtol=1e-4, atol=1e-3)


def test_style_encoder_separates_paintings_and_ignores_image_size(vgg_partial, paintings):
  cfg = se.StyleEncoderConfig(latent_dim=16, hidden=(64,))
  params = se.init_style_encoder(cfg, jax.random.key(0))
  enc = jax.jit(lambda p, x: se.apply_style_encoder(cfg, p, vgg_partial, x))
  wave, udnie = paintings["hokusai_great_wave"], paintings["picabia_udnie"]
  z_wave, z_udnie = enc(params, wave[None])[0], enc(params, udnie[None])[0]
  assert z_wave.shape == (16,)
  between = float(jnp.linalg.norm(z_wave - z_udnie))
  assert between > 0.05 * float(jnp.linalg.norm(z_wave))
  # Same painting, 2x2 tiled (4x the pixels, same content): the statistics are means,
  # so only the seams change them.
  tiled = enc(params, np.tile(wave, (2, 2, 1))[None])[0]
  assert float(jnp.linalg.norm(tiled - z_wave)) < 0.25 * between
  stats = jax.jit(lambda x: se.style_statistics(vgg_partial, x, cfg.taps))
  s_wave, s_udnie = stats(wave[None]), stats(udnie[None])
  s_tiled = stats(np.tile(wave, (2, 2, 1))[None])
  assert float(jnp.linalg.norm(s_tiled - s_wave)) < 0.25 * float(jnp.linalg.norm(s_udnie - s_wave))
  # Same painting at 3/4 of the resolution (VGG sees its texture at another scale) stays
  # closer than the other painting.
  smaller = enc(params, imlib.resize(wave, 96)[None])[0]
  assert float(jnp.linalg.norm(smaller - z_wave)) < 0.5 * between


def test_standardized_encoder_inputs_and_live_units(vgg_partial, paintings):
  """Moments match NumPy; they get no gradient; the hidden units see both signs across paintings."""
  ims = list(paintings.values())
  cfg = se.StyleEncoderConfig(latent_dim=8, hidden=(64,), standardize=True)
  mean, std = se.input_moments(cfg, vgg_partial, ims)
  h = np.stack([np.log1p(np.maximum(np.asarray(se.style_statistics(vgg_partial, im[None], cfg.taps))[0],
                                    0)) for im in ims]).astype(np.float64)
  np.testing.assert_allclose(mean, h.mean(0), rtol=1e-5, atol=1e-5)
  np.testing.assert_allclose(std, np.maximum(h.std(0), 1e-3), rtol=1e-4, atol=1e-5)
  params = se.with_input_moments(se.init_style_encoder(cfg, jax.random.key(0)), mean, std)
  stats = jnp.stack([se.style_statistics(vgg_partial, im[None], cfg.taps)[0] for im in ims])
  grads = jax.grad(lambda p: jnp.sum(se.StyleEncoder(cfg).apply({"params": p}, stats) ** 2))(params)
  assert not np.any(grads["input_mean"]) and not np.any(grads["input_std"])
  assert np.any(grads["hidden0"]["kernel"])

  def mixed_sign_units(c, p, x):
    z = jnp.log1p(jnp.maximum(x, 0))
    if c.standardize:
      z = (z - p["input_mean"]) / p["input_std"]
    pre = np.asarray(z @ p["hidden0"]["kernel"] + p["hidden0"]["bias"])
    return int(np.sum((pre > 0).any(0) & (pre < 0).any(0)))

  plain = se.StyleEncoderConfig(latent_dim=8, hidden=(64,))
  raw = mixed_sign_units(plain, se.init_style_encoder(plain, jax.random.key(0)), stats)
  standardized = mixed_sign_units(cfg, params, stats)
  assert standardized >= 48 and standardized > 2 * raw, (standardized, raw)
  with pytest.raises(ValueError, match="standardize"):
    se.with_input_moments(se.init_style_encoder(plain, jax.random.key(0)), mean, std)


@pytest.mark.slow  # full random VGG-19 (about 8 s)
def test_style_encoder_accepts_deep_taps_with_full_weights():
  weights = vgg.random_weights(jax.random.key(0))
  cfg = se.StyleEncoderConfig(latent_dim=8, hidden=(16,),
                              taps=("relu1_1", "relu2_1", "relu3_1", "relu4_1", "relu5_1"))
  params = se.init_style_encoder(cfg, jax.random.key(1))
  x = jax.random.uniform(jax.random.key(2), (2, 32, 40, 3))
  z = se.apply_style_encoder(cfg, params, weights, x)
  assert z.shape == (2, 8) and np.all(np.isfinite(z))
  assert se.stats_dim(cfg.taps) == 2 * (64 + 128 + 256 + 512 + 512)


def test_style_encoder_rejects_taps_the_weights_lack(vgg_partial):
  cfg = se.StyleEncoderConfig(latent_dim=8, hidden=(16,), taps=("relu1_1", "relu4_1"))
  params = se.init_style_encoder(cfg, jax.random.key(0))
  with pytest.raises(vgg.WeightsError, match="relu3_4"):
    se.apply_style_encoder(cfg, params, vgg_partial, jnp.zeros((1, 32, 32, 3)))
  with pytest.raises(ConfigError, match="unknown VGG-19 layer"):
    cfglib.validate(se.StyleEncoderConfig(taps=("relu9_1",)))


# ---------------------------------------------------------------- PatchGAN

def _expected_patch_size(n, widths):
  for _ in range(len(widths) - 1):
    n = (n + 2 - 4) // 2 + 1  # 4x4, stride 2, zero padding 1
  for _ in range(2):
    n = n + 2 - 4 + 1  # 4x4, stride 1, zero padding 1
  return n


@pytest.mark.parametrize("size", [64, 70])
def test_patchgan_output_shape(size):
  params = patchgan.init_patchgan(SMALL_D, jax.random.key(0))
  x = jax.random.uniform(jax.random.key(1), (2, size, size, 3))
  logits = _disc(SMALL_D)(params, x, jnp.ones(16))
  n = _expected_patch_size(size, SMALL_D.widths)
  assert logits.shape == (2, n, n) == (2, 6, 6) and logits.dtype == jnp.float32


@pytest.mark.slow  # gradient of every logit (about 10 s)
def test_patchgan_receptive_field_is_70_pixels():
  assert patchgan.receptive_field(SMALL_D) == 70
  cfg = dataclasses.replace(SMALL_D, norm="none")  # instance norm would couple all positions
  params = patchgan.init_patchgan(cfg, jax.random.key(2))
  x = jax.random.uniform(jax.random.key(3), (1, 128, 128, 3))
  g = jax.jit(jax.grad(lambda x: _disc(cfg)(params, x, jnp.ones(16))[0, 7, 7]))(x)
  rows, cols = np.nonzero(np.abs(np.asarray(g[0])).sum(-1))
  assert rows.max() - rows.min() + 1 == 70 and cols.max() - cols.min() + 1 == 70


@pytest.mark.parametrize("norm,spectral", [("instance", False),
                                           pytest.param("none", True, marks=pytest.mark.slow)])
def test_patchgan_projection_conditions_on_the_latent(norm, spectral):
  cfg = dataclasses.replace(SMALL_D, norm=norm, spectral_norm=spectral)
  params = patchgan.init_patchgan(cfg, jax.random.key(4))
  x = jax.random.uniform(jax.random.key(5), (2, 64, 64, 3))
  z1, z2 = jax.random.normal(jax.random.key(6), (2, 16))
  l1, l2 = (_disc(cfg)(params, x, z) for z in (z1, z2))
  assert float(jnp.abs(l1 - l2).mean()) > 1e-3
  # With the embedding zeroed, the latent has no effect: conditioning is the projection only.
  params = dict(params, embed={"kernel": jnp.zeros_like(params["embed"]["kernel"])})
  l1, l2 = (_disc(cfg)(params, x, z) for z in (z1, z2))
  np.testing.assert_array_equal(np.asarray(l1), np.asarray(l2))


def test_spectral_normalize_against_numpy_svd():
  kernel = jax.random.normal(jax.random.key(7), (4, 4, 16, 32))
  for iterations, bounds in [(10, (1.0 - 1e-5, 1.25)), (300, (1.0 - 1e-4, 1.0 + 1e-3))]:
    w = np.asarray(patchgan.spectral_normalize(kernel, iterations)).reshape(-1, 32)
    sigma = np.linalg.svd(w, compute_uv=False)[0]
    assert bounds[0] <= sigma <= bounds[1]


def test_patchgan_rejects_bad_inputs():
  params = patchgan.init_patchgan(SMALL_D, jax.random.key(8))
  assert patchgan.min_image_size(SMALL_D) == 24
  assert patchgan.apply_patchgan(SMALL_D, params, jnp.zeros((1, 24, 24, 3)), jnp.zeros(16)).shape \
      == (1, 1, 1)
  with pytest.raises(st.StylizerInputError, match="too small"):
    patchgan.apply_patchgan(SMALL_D, params, jnp.zeros((1, 23, 64, 3)), jnp.zeros(16))
  with pytest.raises(st.StylizerInputError, match="latent"):
    patchgan.apply_patchgan(SMALL_D, params, jnp.zeros((1, 64, 64, 3)), jnp.zeros((2, 16)))
