"""Tests for jaxstyle.losses against float64 NumPy references written here.

Gradients are checked two ways: against closed-form float64 NumPy gradients,
and with finite differences (``jax.test_util.check_grads``) in float64: every
loss accumulates in at least float32 and keeps float64 for float64 inputs (see
``test_float64_inputs_keep_float64``).
"""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from jax.test_util import check_grads

from jaxstyle import losses

# float32 results vs float64 references: a few ulps of accumulated rounding.
RTOL = 2e-5


def _rng(seed=0):
  return np.random.default_rng(seed)


def _feats(shape, seed=0, relu=False):
  x = _rng(seed).standard_normal(shape)
  return np.maximum(x, 0.0) if relu else x


# --------------------------------------------------------------------------- #
# float64 NumPy references
# --------------------------------------------------------------------------- #


def ref_gram_raw(f):
  """Raw Gram FᵀF per batch element: [B, H, W, C] -> [B, C, C], float64."""
  f = np.asarray(f, np.float64)
  b, h, w, c = f.shape
  flat = f.reshape(b, h * w, c)
  return np.stack([flat[k].T @ flat[k] for k in range(b)])


def ref_style_layer(fx, fs, normalization):
  """One layer's style loss written from the papers' raw-Gram formulas.

  gatys: 1/(4 N² M²) ‖G(X) − G(S)‖² (Gatys et al.; needs equal sizes here);
  chw:   ‖G(X)/(C H W) − G(S)/(C H W)‖² (Johnson et al.);
  hw:    ‖G(X)/M − G(S)/M‖².
  """
  _, h, w, c = fx.shape
  m, n = h * w, c
  gx, gs = ref_gram_raw(fx), ref_gram_raw(fs)
  sq = lambda d: np.sum(d * d, axis=(1, 2))
  if normalization == "gatys":
    return sq(gx - gs) / (4.0 * n * n * m * m)
  if normalization == "chw":
    return sq(gx / (c * h * w) - gs / (c * h * w))
  if normalization == "hw":
    return sq(gx / m - gs / m)
  raise AssertionError(normalization)


def ref_content(fx, fc):
  d = np.asarray(fx, np.float64) - np.asarray(fc, np.float64)
  return 0.5 * np.sum(d * d, axis=tuple(range(1, d.ndim)))


def ref_tv(x, kind):
  x = np.asarray(x, np.float64)
  out = np.zeros(x.shape[0])
  for b in range(x.shape[0]):
    for i in range(x.shape[1]):
      for j in range(x.shape[2]):
        for c in range(x.shape[3]):
          for di, dj in ((1, 0), (0, 1)):
            if i + di < x.shape[1] and j + dj < x.shape[2]:
              d = x[b, i + di, j + dj, c] - x[b, i, j, c]
              out[b] += d * d if kind == "l2" else abs(d)
  return out


def ref_tv_grad(x, kind):
  x = np.asarray(x, np.float64)
  g = np.zeros_like(x)
  dy = x[:, 1:] - x[:, :-1]
  dx = x[:, :, 1:] - x[:, :, :-1]
  dfy = 2 * dy if kind == "l2" else np.sign(dy)
  dfx = 2 * dx if kind == "l2" else np.sign(dx)
  g[:, 1:] += dfy
  g[:, :-1] -= dfy
  g[:, :, 1:] += dfx
  g[:, :, :-1] -= dfx
  return g


def softplus(x):
  return np.logaddexp(0.0, x)


def sigmoid(x):
  return 1.0 / (1.0 + np.exp(-x))


def ref_d_loss(r, f, kind):
  r, f = np.asarray(r, np.float64), np.asarray(f, np.float64)
  if kind == "nonsaturating":   # binary cross-entropy with labels 1 (real) and 0 (fake)
    return np.mean(-np.log(sigmoid(r))) + np.mean(-np.log(1.0 - sigmoid(f)))
  if kind == "hinge":
    return np.mean(np.maximum(0.0, 1.0 - r)) + np.mean(np.maximum(0.0, 1.0 + f))
  if kind == "lsgan":
    return 0.5 * np.mean((r - 1.0) ** 2) + 0.5 * np.mean(f ** 2)
  raise AssertionError(kind)


def ref_g_loss(f, kind):
  f = np.asarray(f, np.float64)
  if kind == "nonsaturating":
    return np.mean(-np.log(sigmoid(f)))
  if kind == "hinge":
    return -np.mean(f)
  if kind == "lsgan":
    return 0.5 * np.mean((f - 1.0) ** 2)
  raise AssertionError(kind)


def ref_d_loss_grads(r, f, kind):
  r, f = np.asarray(r, np.float64), np.asarray(f, np.float64)
  nr, nf = r.size, f.size
  if kind == "nonsaturating":
    return -sigmoid(-r) / nr, sigmoid(f) / nf
  if kind == "hinge":
    return -(r < 1.0).astype(np.float64) / nr, (f > -1.0).astype(np.float64) / nf
  if kind == "lsgan":
    return (r - 1.0) / nr, f / nf
  raise AssertionError(kind)


def ref_g_loss_grad(f, kind):
  f = np.asarray(f, np.float64)
  if kind == "nonsaturating":
    return -sigmoid(-f) / f.size
  if kind == "hinge":
    return -np.ones_like(f) / f.size
  if kind == "lsgan":
    return (f - 1.0) / f.size
  raise AssertionError(kind)


def f32(x):
  return jnp.asarray(np.asarray(x, np.float32))


# --------------------------------------------------------------------------- #
# Gram matrices
# --------------------------------------------------------------------------- #


def test_gram_matrix_matches_reference():
  f = _feats((2, 5, 6, 4))
  g = losses.gram_matrix(f32(f))
  assert g.shape == (2, 4, 4) and g.dtype == jnp.float32
  np.testing.assert_allclose(g, ref_gram_raw(f) / 30.0, rtol=RTOL, atol=1e-6)
  np.testing.assert_allclose(losses.gram_matrix(f32(f), normalize=False), ref_gram_raw(f),
                             rtol=RTOL, atol=1e-5)
  np.testing.assert_allclose(g, np.swapaxes(np.asarray(g), 1, 2))   # symmetric
  with pytest.raises(ValueError, match="NHWC"):
    losses.gram_matrix(f32(f[0]))


def test_gram_matrix_is_size_independent_for_tiled_features():
  # Tiling a feature map 2x2 keeps the position-averaged Gram unchanged.
  f = _feats((1, 3, 4, 5), seed=3)
  tiled = np.tile(f, (1, 2, 2, 1))
  np.testing.assert_allclose(losses.gram_matrix(f32(tiled)), losses.gram_matrix(f32(f)),
                             rtol=1e-5, atol=1e-6)


# --------------------------------------------------------------------------- #
# Style loss: every normalisation, batches, blends
# --------------------------------------------------------------------------- #


@pytest.mark.parametrize("normalization", ["gatys", "chw", "hw"])
def test_style_layer_loss_each_normalization(normalization):
  fx = _feats((3, 4, 5, 6), seed=1, relu=True)
  fs = _feats((1, 4, 5, 6), seed=2, relu=True)
  target = losses.gram_matrix(f32(fs))[0]                  # [C, C]
  out = losses.style_layer_loss(losses.gram_matrix(f32(fx)), target, normalization)
  assert out.shape == (3,)
  ref = ref_style_layer(fx, np.repeat(fs, 3, axis=0), normalization)
  np.testing.assert_allclose(out, ref, rtol=1e-4)
  # A [B, C, C] target (one per batch element) gives the same numbers when repeated.
  out_b = losses.style_layer_loss(losses.gram_matrix(f32(fx)), jnp.stack([target] * 3),
                                  normalization)
  np.testing.assert_allclose(out_b, out, rtol=1e-6)


def test_style_normalizations_relative_scale():
  fx, fs = _feats((2, 3, 3, 7), seed=4), _feats((1, 3, 3, 7), seed=5)
  gx, t = losses.gram_matrix(f32(fx)), losses.gram_matrix(f32(fs))[0]
  gatys = losses.style_layer_loss(gx, t, "gatys")
  np.testing.assert_allclose(losses.style_layer_loss(gx, t, "chw"), 4 * gatys, rtol=1e-6)
  np.testing.assert_allclose(losses.style_layer_loss(gx, t, "hw"), 4 * 49 * gatys, rtol=1e-6)
  with pytest.raises(ValueError, match="unknown style normalization"):
    losses.style_layer_loss(gx, t, "frobenius")


def test_style_loss_sums_weighted_layers():
  fx = {"a": _feats((2, 6, 6, 3), 10), "b": _feats((2, 3, 3, 5), 11)}
  fs = {"a": _feats((1, 6, 6, 3), 12), "b": _feats((1, 3, 3, 5), 13)}
  weights = {"a": 0.7, "b": 2.5}
  targets = losses.style_targets([{k: f32(v) for k, v in fs.items()}])
  for norm in ("gatys", "chw", "hw"):
    out = losses.style_loss({k: f32(v) for k, v in fx.items()}, targets, weights, norm)
    ref = sum(w * ref_style_layer(fx[k], np.repeat(fs[k], 2, 0), norm) for k, w in weights.items())
    np.testing.assert_allclose(out, ref, rtol=1e-4)


def test_style_target_of_different_size_uses_averaged_gram():
  # A style image of another size: the loss compares position-averaged Grams.
  fx, fs = _feats((1, 4, 4, 3), 20), _feats((1, 8, 6, 3), 21)
  t = losses.style_targets([{"l": f32(fs)}])["l"]
  out = losses.style_loss({"l": f32(fx)}, {"l": t}, {"l": 1.0})
  d = ref_gram_raw(fx)[0] / 16 - ref_gram_raw(fs)[0] / 48
  np.testing.assert_allclose(out, [np.sum(d * d) / (4 * 9)], rtol=1e-4)


def test_blended_style_targets():
  styles = [_feats((1, h, w, 4), 30 + k) for k, (h, w) in enumerate([(4, 4), (6, 3), (5, 7)])]
  feats = [{"l": f32(s)} for s in styles]
  blend = [1.0, 2.0, 1.0]
  t = losses.style_targets(feats, blend)["l"]
  assert t.shape == (4, 4)
  refs = [ref_gram_raw(s)[0] / (s.shape[1] * s.shape[2]) for s in styles]
  ref = sum(w / 4.0 * g for w, g in zip(blend, refs))
  np.testing.assert_allclose(t, ref, rtol=1e-5, atol=1e-6)
  # Default: equal weights; weights are normalised; a one-hot blend is that style alone.
  np.testing.assert_allclose(losses.style_targets(feats)["l"], sum(refs) / 3, rtol=1e-5, atol=1e-6)
  np.testing.assert_allclose(losses.style_targets(feats, [2.0, 4.0, 2.0])["l"], t, rtol=1e-6)
  np.testing.assert_allclose(losses.style_targets(feats, [0.0, 1.0, 0.0])["l"], refs[1],
                             rtol=1e-5, atol=1e-6)
  # Style loss against the blend, vs NumPy.
  fx = _feats((2, 3, 3, 4), 40)
  out = losses.style_loss({"l": f32(fx)}, {"l": t}, {"l": 1.0}, "gatys")
  gx = ref_gram_raw(fx) / 9
  np.testing.assert_allclose(out, np.sum((gx - ref) ** 2, axis=(1, 2)) / 64, rtol=1e-4)
  with pytest.raises(ValueError, match="blend weights"):
    losses.style_targets(feats, [1.0, 2.0])
  with pytest.raises(ValueError, match="at least one style"):
    losses.style_targets([])


# --------------------------------------------------------------------------- #
# Content, total variation, perceptual
# --------------------------------------------------------------------------- #


def test_content_loss():
  fx, fc = _feats((3, 4, 5, 6), 50), _feats((3, 4, 5, 6), 51)
  out = losses.content_loss(f32(fx), f32(fc))
  assert out.shape == (3,)
  np.testing.assert_allclose(out, ref_content(fx, fc), rtol=RTOL)
  # One content target broadcast over the batch.
  out1 = losses.content_loss(f32(fx), f32(fc[:1]))
  np.testing.assert_allclose(out1, ref_content(fx, np.repeat(fc[:1], 3, 0)), rtol=RTOL)


@pytest.mark.parametrize("kind", ["l2", "l1"])
def test_total_variation(kind):
  x = _rng(60).random((2, 5, 4, 3))
  out = losses.total_variation_loss(f32(x), kind)
  assert out.shape == (2,)
  np.testing.assert_allclose(out, ref_tv(x, kind), rtol=RTOL)
  const = np.full((1, 6, 6, 3), 0.4)
  np.testing.assert_allclose(losses.total_variation_loss(f32(const), kind), [0.0], atol=1e-6)


def test_total_variation_unknown_kind():
  with pytest.raises(ValueError, match="unknown total variation kind"):
    losses.total_variation_loss(jnp.zeros((1, 2, 2, 3)), "l3")


def test_perceptual_loss_combines_terms():
  layers = {"c1": (2, 6, 6, 3), "s1": (2, 6, 6, 4), "s2": (2, 3, 3, 5)}
  fx = {k: _feats(s, 70 + i) for i, (k, s) in enumerate(layers.items())}
  fc = {"c1": _feats((1, 6, 6, 3), 80)}
  fs = {"s1": _feats((1, 6, 6, 4), 81), "s2": _feats((1, 3, 3, 5), 82)}
  imgs = _rng(83).random((2, 8, 8, 3))
  targets = losses.style_targets([{k: f32(v) for k, v in fs.items()}])
  alpha, beta, gamma = 0.3, 7.0, 0.05
  cw, sw = {"c1": 2.0}, {"s1": 0.5, "s2": 1.5}
  total, parts = losses.perceptual_loss(
      {k: f32(v) for k, v in fx.items()}, images=f32(imgs),
      content_feats={"c1": f32(fc["c1"])}, content_layers=cw, target_grams=targets,
      style_layers=sw, alpha=alpha, beta=beta, gamma=gamma)
  lc = 2.0 * ref_content(fx["c1"], np.repeat(fc["c1"], 2, 0))
  ls = sum(w * ref_style_layer(fx[k], np.repeat(fs[k], 2, 0), "gatys") for k, w in sw.items())
  ltv = ref_tv(imgs, "l2")
  np.testing.assert_allclose(parts["content"], lc, rtol=RTOL)
  np.testing.assert_allclose(parts["style"], ls, rtol=1e-4)
  np.testing.assert_allclose(parts["tv"], ltv, rtol=RTOL)
  np.testing.assert_allclose(total, alpha * lc + beta * ls + gamma * ltv, rtol=1e-4)
  # Without TV weight the images are not needed; asking for TV without them is an error.
  total0, parts0 = losses.perceptual_loss({k: f32(v) for k, v in fx.items()},
                                          target_grams=targets, style_layers=sw, beta=beta)
  np.testing.assert_allclose(total0, beta * ls, rtol=1e-4)
  np.testing.assert_array_equal(parts0["content"], 0.0)
  with pytest.raises(ValueError, match="gamma"):
    losses.perceptual_loss({k: f32(v) for k, v in fx.items()}, gamma=1.0)


# --------------------------------------------------------------------------- #
# GAN losses
# --------------------------------------------------------------------------- #


@pytest.mark.parametrize("kind", losses.GAN_LOSSES)
def test_gan_losses_match_reference(kind):
  r, f = _rng(90).normal(0, 2, (8, 1)), _rng(91).normal(0, 2, (8, 1))
  np.testing.assert_allclose(losses.gan_d_loss(f32(r), f32(f), kind), ref_d_loss(r, f, kind),
                             rtol=RTOL, atol=1e-6)
  np.testing.assert_allclose(losses.gan_g_loss(f32(f), kind), ref_g_loss(f, kind),
                             rtol=RTOL, atol=1e-6)
  gr, gf = jax.grad(losses.gan_d_loss, argnums=(0, 1))(f32(r), f32(f), kind)
  ref_gr, ref_gf = ref_d_loss_grads(r, f, kind)
  np.testing.assert_allclose(gr, ref_gr, rtol=RTOL, atol=1e-7)
  np.testing.assert_allclose(gf, ref_gf, rtol=RTOL, atol=1e-7)
  np.testing.assert_allclose(jax.grad(losses.gan_g_loss)(f32(f), kind), ref_g_loss_grad(f, kind),
                             rtol=RTOL, atol=1e-7)


def test_gan_losses_stable_for_extreme_logits():
  big = jnp.array([80.0, -80.0, 200.0], jnp.float32)
  for kind in losses.GAN_LOSSES:
    d = losses.gan_d_loss(big, -big, kind)
    g = losses.gan_g_loss(big, kind)
    assert np.isfinite(d) and np.isfinite(g), kind
    assert all(np.all(np.isfinite(x)) for x in jax.grad(losses.gan_d_loss, (0, 1))(big, -big, kind))
  # Non-saturating: confident wrong D -> loss ~ |logit|, not inf; G gradient does not vanish.
  np.testing.assert_allclose(losses.gan_d_loss(jnp.array([-80.0]), jnp.array([80.0])), 160.0,
                             rtol=1e-6)
  np.testing.assert_allclose(jax.grad(losses.gan_g_loss)(jnp.array([-80.0])), [-1.0], rtol=1e-6)
  with pytest.raises(ValueError, match="unknown GAN loss"):
    losses.gan_d_loss(big, big, "wgan")
  with pytest.raises(ValueError, match="unknown GAN loss"):
    losses.gan_g_loss(big, "wgan")


# --------------------------------------------------------------------------- #
# Gradients
# --------------------------------------------------------------------------- #


@pytest.mark.parametrize("normalization", ["gatys", "chw", "hw"])
def test_style_loss_gradient_closed_form(normalization):
  # L = s Σ_b ‖FᵀF/M − T‖²  =>  dL/dF_b = (4 s / M) F_b (Ĝ_b − T)   (Ĝ, T symmetric)
  fx = _feats((2, 3, 4, 5), 100)
  fs = _feats((1, 3, 4, 5), 101)
  t = losses.gram_matrix(f32(fs))[0]
  loss = lambda f: jnp.sum(losses.style_layer_loss(losses.gram_matrix(f), t, normalization))
  g = jax.grad(loss)(f32(fx))
  m, n = 12, 5
  s = {"gatys": 1 / (4 * n * n), "chw": 1 / (n * n), "hw": 1.0}[normalization]
  flat = fx.reshape(2, m, n)
  d = ref_gram_raw(fx) / m - np.asarray(t, np.float64)
  ref = np.stack([4 * s / m * flat[b] @ d[b] for b in range(2)]).reshape(fx.shape)
  np.testing.assert_allclose(g, ref, rtol=1e-4, atol=1e-6)


def test_content_and_tv_gradients_closed_form():
  fx, fc = _feats((2, 3, 3, 4), 110), _feats((2, 3, 3, 4), 111)
  g = jax.grad(lambda a: jnp.sum(losses.content_loss(a, f32(fc))))(f32(fx))
  np.testing.assert_allclose(g, fx - fc, rtol=RTOL, atol=1e-6)
  x = _rng(112).random((2, 4, 5, 3))
  for kind in ("l2", "l1"):
    g = jax.grad(lambda a: jnp.sum(losses.total_variation_loss(a, kind)))(f32(x))
    np.testing.assert_allclose(g, ref_tv_grad(x, kind), rtol=RTOL, atol=1e-6)


def test_tv_check_grads_float64():
  with jax.enable_x64(True):
    x = jnp.asarray(_rng(120).random((2, 4, 4, 3)), jnp.float64)
    out = losses.total_variation_loss(x, "l2")
    assert out.dtype == jnp.float64
    check_grads(jax.jit(lambda a: losses.total_variation_loss(a, "l2")), (x,), order=2,
                modes=("fwd", "rev"))
    check_grads(jax.jit(lambda a: losses.total_variation_loss(a, "l1")), (x,), order=1,
                modes=("rev",))


def test_finite_difference_gradients_float64():
  # Every loss keeps float64 for float64 inputs, so central differences run in
  # float64 with tight tolerances.
  with jax.enable_x64(True):
    f64 = lambda a: jnp.asarray(np.asarray(a, np.float64))
    fx = f64(_feats((2, 3, 3, 4), 130))
    fs = f64(_feats((1, 3, 3, 4), 131))
    t = losses.gram_matrix(fs)[0]
    fc = f64(_feats((2, 3, 3, 4), 132))
    imgs = f64(_rng(133).random((2, 3, 3, 3)))
    kw = dict(modes=("rev",), eps=1e-5, atol=1e-6, rtol=1e-6)
    check_grads(jax.jit(lambda f: losses.style_layer_loss(losses.gram_matrix(f), t)), (fx,), 2,
                **kw)
    check_grads(jax.jit(lambda f: losses.content_loss(f, fc)), (fx,), 2, **kw)

    def perceptual(f, x):
      total, _ = losses.perceptual_loss({"l": f}, images=x, content_feats={"l": fc},
                                        content_layers={"l": 1.0}, target_grams={"l": t},
                                        style_layers={"l": 1.0}, alpha=0.5, beta=3.0, gamma=0.1)
      return total

    check_grads(jax.jit(perceptual), (fx, imgs), 1, **kw)
    r, f = f64(_rng(134).normal(0, 1, (6,))), f64(_rng(135).normal(0, 1, (6,)))
    for kind in losses.GAN_LOSSES:
      check_grads(jax.jit(lambda a, b: losses.gan_d_loss(a, b, kind)), (r, f), 1, **kw)
      check_grads(jax.jit(lambda b: losses.gan_g_loss(b, kind)), (f,), 1, **kw)


def test_float64_inputs_keep_float64():
  with jax.enable_x64(True):
    f = jnp.ones((1, 2, 2, 3), jnp.float64)
    assert losses.gram_matrix(f).dtype == jnp.float64
    assert losses.content_loss(f, f).dtype == jnp.float64
    assert losses.gan_g_loss(f[..., 0]).dtype == jnp.float64


# --------------------------------------------------------------------------- #
# Batching, vmap, jit
# --------------------------------------------------------------------------- #


def test_vmap_and_jit_match_batched():
  fx = f32(_feats((4, 5, 5, 6), 140))
  fc = f32(_feats((4, 5, 5, 6), 141))
  t = losses.gram_matrix(f32(_feats((1, 5, 5, 6), 142)))[0]
  imgs = f32(_rng(143).random((4, 6, 6, 3)))

  def per_example(f, c, x):
    total, _ = losses.perceptual_loss({"l": f[None]}, images=x[None], content_feats={"l": c[None]},
                                      content_layers={"l": 1.0}, target_grams={"l": t},
                                      style_layers={"l": 2.0}, alpha=1.0, beta=5.0, gamma=0.1)
    return total[0]

  def batched(f, c, x):
    total, _ = losses.perceptual_loss({"l": f}, images=x, content_feats={"l": c},
                                      content_layers={"l": 1.0}, target_grams={"l": t},
                                      style_layers={"l": 2.0}, alpha=1.0, beta=5.0, gamma=0.1)
    return total

  ref = batched(fx, fc, imgs)
  assert ref.shape == (4,)
  np.testing.assert_allclose(jax.jit(jax.vmap(per_example))(fx, fc, imgs), ref, rtol=1e-5)
  np.testing.assert_allclose(jax.jit(batched)(fx, fc, imgs), ref, rtol=1e-5)
  # Each batch element's loss depends on that element only.
  np.testing.assert_allclose(batched(fx[1:2], fc[1:2], imgs[1:2]), ref[1:2], rtol=1e-5)
  # Per-example gradients via vmap(grad) equal the gradient of the batch sum.
  g_vmap = jax.jit(jax.vmap(jax.grad(per_example)))(fx, fc, imgs)
  g_sum = jax.jit(jax.grad(lambda f: jnp.sum(batched(f, fc, imgs))))(fx)
  np.testing.assert_allclose(g_vmap, g_sum, rtol=1e-5, atol=1e-7)
  gram_v = jax.vmap(lambda f: losses.gram_matrix(f[None])[0])(fx)
  np.testing.assert_allclose(gram_v, losses.gram_matrix(fx), rtol=1e-6)


# --------------------------------------------------------------------------- #
# bf16 features
# --------------------------------------------------------------------------- #


def test_bf16_features_gram_error_bound():
  f = _feats((2, 16, 16, 32), 150, relu=True) * 3.0
  fb = jnp.asarray(f, jnp.bfloat16)
  g = losses.gram_matrix(fb)
  assert g.dtype == jnp.float32                     # accumulated in float32
  m = 16 * 16
  ref = ref_gram_raw(f) / m
  abs_gram = ref_gram_raw(np.abs(f)) / m            # (|F|ᵀ|F|)/M
  err = np.abs(np.asarray(g, np.float64) - ref)
  f32_accumulation = m * 2.0**-24                   # γ_M for float32 sums of M products
  bound = (losses.BF16_GRAM_RELATIVE_BOUND + f32_accumulation) * abs_gram
  assert np.all(err <= bound), float(np.max(err / np.maximum(bound, 1e-30)))
  # The bound is about bf16 rounding: the error is really there, and of that order.
  ratio = err / np.maximum(abs_gram, 1e-30)
  assert ratio.max() > losses.BF16_GRAM_RELATIVE_BOUND / 20
  assert losses.BF16_GRAM_RELATIVE_BOUND == pytest.approx(2 * 2.0**-8 + 2.0**-16)
  # Style losses from bf16 features stay close to the float32 ones.
  t = losses.gram_matrix(f32(_feats((1, 16, 16, 32), 151, relu=True) * 3.0))[0]
  l32 = losses.style_layer_loss(losses.gram_matrix(f32(f)), t)
  l16 = losses.style_layer_loss(g, t)
  np.testing.assert_allclose(l16, l32, rtol=0.02)
