"""Tests of jaxstyle.retrieval: descriptors, whitening, top-k, index build/load."""

import dataclasses
import os
import shutil

import numpy as np
import pytest

from jaxstyle import images as images_lib
from jaxstyle import retrieval as R
from jaxstyle import vgg

# Small, fast settings for the real-weight tests (the default preset uses 256 px).
SMALL = dataclasses.replace(R.get_config("default"), scales=(64,), dim=256, whiten_dim=0)


# ----------------------------------------------------------------------------
# Numerical references (float64 NumPy).


def _ref_gram_descriptor(grams, means, config):
  """float64 reference of descriptor_fn for one scale, kind gram."""
  parts = []
  for layer, w in zip(config.layers, config.weights):
    g = grams[layer].astype(np.float64)
    mu = means[layer].astype(np.float64)
    if config.center:
      g = g - mu[:, :, None] * mu[:, None, :]
    iu = np.triu_indices(g.shape[-1])
    v = g[:, iu[0], iu[1]]
    v = np.sign(v) * np.abs(v) ** config.power
    v /= np.linalg.norm(v, axis=1, keepdims=True)
    if config.dim:
      buckets, signs = R.sketch_params(v.shape[1], config.dim, config.seed,
                                       f"s{config.scales[0]}/{layer}")
      out = np.zeros((v.shape[0], config.dim))
      for b in range(v.shape[0]):
        np.add.at(out[b], buckets, v[b] * signs)
      v = out / np.linalg.norm(out, axis=1, keepdims=True)
    parts.append(w * v)
  x = np.concatenate(parts, axis=1)
  return x / np.linalg.norm(x, axis=1, keepdims=True)


def _random_stats(rng, layers, batch):
  grams, means = {}, {}
  for layer in layers:
    c = R._layer_channels(layer)
    f = np.maximum(rng.standard_normal((batch, 50, c)), 0).astype(np.float32)
    grams[layer] = np.einsum("bmi,bmj->bij", f, f) / 50
    means[layer] = f.mean(axis=1)
  return grams, means


@pytest.mark.parametrize("dim,center,power", [(0, True, 0.5), (64, True, 0.5), (32, False, 1.0)])
def test_gram_descriptor_matches_float64_reference(dim, center, power):
  config = R.DescriptorConfig(layers=("relu1_1", "relu2_1"), layer_weights=(1.0, 2.0),
                              scales=(32,), dim=dim, center=center, power=power, whiten_dim=0)
  grams, means = _random_stats(np.random.default_rng(0), config.layers, 3)
  got = R.descriptor_fn(config)([{l: (grams[l], means[l]) for l in config.layers}])
  ref = _ref_gram_descriptor(grams, means, config)
  assert got.shape == (3, R.descriptor_dim(config))
  np.testing.assert_allclose(np.asarray(got), ref, atol=2e-5)


def test_stats_descriptor_matches_reference():
  config = R.DescriptorConfig(kind="stats", layers=("relu1_1", "relu2_1"), scales=(32,), dim=0,
                              power=1.0, whiten_dim=0)
  rng = np.random.default_rng(1)
  feats = {l: np.maximum(rng.standard_normal((2, 40, R._layer_channels(l))), 0)
           for l in config.layers}
  stats = {l: ((np.einsum("bmi,bmj->bij", f, f) / 40).astype(np.float32),
               f.mean(1).astype(np.float32)) for l, f in feats.items()}
  got = np.asarray(R.descriptor_fn(config)([stats]))
  parts = []
  for l in config.layers:
    v = np.concatenate([feats[l].mean(1), feats[l].std(1)], axis=1)
    parts.append(v / np.linalg.norm(v, axis=1, keepdims=True))
  ref = np.concatenate(parts, 1)
  ref /= np.linalg.norm(ref, axis=1, keepdims=True)
  np.testing.assert_allclose(got, ref, atol=1e-4)


def test_count_sketch_is_seeded_and_preserves_inner_products():
  b1, s1 = R.sketch_params(5000, 512, seed=3, salt="x")
  b2, s2 = R.sketch_params(5000, 512, seed=3, salt="x")
  b3, _ = R.sketch_params(5000, 512, seed=4, salt="x")
  assert np.array_equal(b1, b2) and np.array_equal(s1, s2) and not np.array_equal(b1, b3)
  assert b1.min() >= 0 and b1.max() < 512 and set(np.unique(s1)) == {-1.0, 1.0}


def test_whitening_matches_svd_reference():
  rng = np.random.default_rng(0)
  for n, d in ((30, 50), (80, 12)):  # kernel-trick path and covariance path
    x = rng.standard_normal((n, d)) @ rng.standard_normal((d, d))
    x /= np.linalg.norm(x, axis=1, keepdims=True)
    config = R.DescriptorConfig(whiten_dim=6, whiten_alpha=0.5, whiten_reg=0.1,
                                whiten_min_images=2)
    w = R.fit_whitening(x.astype(np.float32), config)
    got = R.apply_whitening(x.astype(np.float32), w)
    xc = x - x.mean(0)
    _, s, vt = np.linalg.svd(xc, full_matrices=False)
    var = s[:6] ** 2 / n
    y = xc @ vt[:6].T / (var + 0.1 * var[0]) ** 0.25
    y /= np.linalg.norm(y, axis=1, keepdims=True)
    # Axis signs are a convention: compare the (sign-free) cosine matrices.
    np.testing.assert_allclose(got @ got.T, y @ y.T, atol=1e-4)
  small = R.DescriptorConfig(whiten_dim=6, whiten_min_images=100)
  assert R.fit_whitening(x[:50].astype(np.float32), small) is None


# ----------------------------------------------------------------------------
# Top-k search.


@pytest.mark.parametrize("n,chunk,k", [(1000, 128, 7), (257, 64, 300), (50, 1000, 5)])
def test_topk_streaming_equals_float64_brute_force(n, chunk, k):
  rng = np.random.default_rng(n)
  db = rng.standard_normal((n, 16)).astype(np.float32)
  q = rng.standard_normal((4, 16)).astype(np.float32)
  scores, idx = R.topk_search(q, db, k, chunk_size=chunk)
  ref_scores = q.astype(np.float64) @ db.astype(np.float64).T
  kk = min(k, n)
  ref_idx = np.argsort(-ref_scores, axis=1, kind="stable")[:, :kk]
  assert idx.shape == (4, kk) and scores.shape == (4, kk)
  np.testing.assert_array_equal(idx, ref_idx)
  np.testing.assert_allclose(scores, np.take_along_axis(ref_scores, ref_idx, 1), atol=1e-5)


def test_topk_ties_go_to_lower_index():
  db = np.ones((10, 4), np.float32)
  _, idx = R.topk_search(np.ones((1, 4), np.float32), db, 4, chunk_size=3)
  np.testing.assert_array_equal(idx[0], [0, 1, 2, 3])


def test_leave_one_out_matches_loop_reference():
  rng = np.random.default_rng(0)
  x = rng.standard_normal((30, 5))
  labels = rng.integers(0, 3, 30)
  got = R.leave_one_out(x, labels)
  xn = x / np.linalg.norm(x, axis=1, keepdims=True)
  p1, p5, aps = [], [], []
  for i in range(30):
    sims = [(float(xn[i] @ xn[j]), j) for j in range(30) if j != i]
    ranked = [j for _, j in sorted(sims, key=lambda t: -t[0])]
    rel = [labels[j] == labels[i] for j in ranked]
    p1.append(rel[0])
    p5.append(np.mean(rel[:5]))
    hits, precisions = 0, []
    for r, ok in enumerate(rel, 1):
      if ok:
        hits += 1
        precisions.append(hits / r)
    aps.append(np.mean(precisions))
  assert got["p_at_1"] == pytest.approx(np.mean(p1))
  assert got["p_at_5"] == pytest.approx(np.mean(p5))
  assert got["map"] == pytest.approx(np.mean(aps))


# ----------------------------------------------------------------------------
# Views and invariances (real partial VGG weights, small images).


def test_tiles_cover_the_image():
  im = np.random.default_rng(0).random((50, 130, 3)).astype(np.float32)
  v = R.image_views(im, 40)
  assert v.shape == (3, 40, 40, 3)  # 130/50*40 = 104 px wide -> round(104/40) = 3 tiles
  assert R.tile_starts(104, 40) == [0, 32, 64]


def _texture_paths(shared_data, n):
  root = os.path.join(shared_data, "retrieval", "dtd10")
  out = []
  for cls in sorted(os.listdir(root))[:n]:
    out.append(os.path.join(root, cls, sorted(os.listdir(os.path.join(root, cls)))[0]))
  return out


def test_descriptor_invariant_to_resizing_and_order(vgg_partial, shared_data):
  """Resizing the file by 0.6x-1.5x changes the descriptor by < 0.05 in cosine
  distance (the image is resampled to the same working scale), while
  different textures differ by far more; the order of images in a batch does
  not change any descriptor."""
  paths = _texture_paths(shared_data, 3)
  ims = [images_lib.load_image(p, 200) for p in paths]
  emb = R.Embedder(vgg_partial, SMALL, batch_size=2)
  (base,) = emb.embed(ims)
  for factor in (0.6, 1.5):
    resized = [images_lib.resize(im, int(round(200 * factor))) for im in ims]
    (other,) = emb.embed(resized)
    cos = np.sum(base * other, axis=1)
    assert np.all(cos > 0.95), cos
  cross = base @ base.T
  assert np.max(cross[~np.eye(3, dtype=bool)]) < 0.9
  (perm,) = emb.embed([ims[2], ims[0], ims[1]])
  np.testing.assert_allclose(perm, base[[2, 0, 1]], atol=1e-5)


# ----------------------------------------------------------------------------
# Style, not content: procedural "stylised photos".


def _content(kind, n=96):
  y, x = np.mgrid[0:n, 0:n] / n
  if kind == "disk":
    return ((x - 0.5) ** 2 + (y - 0.5) ** 2 < 0.09).astype(np.float32)
  if kind == "bar":
    return ((np.abs(x - y) < 0.2)).astype(np.float32)
  return (x > 0.5).astype(np.float32)  # "half"


def _style(kind, content, seed):
  n = content.shape[0]
  rng = np.random.default_rng(seed)
  y, x = np.mgrid[0:n, 0:n].astype(np.float32)
  if kind == "stripes":  # thin diagonal red/yellow stripes
    t = 0.5 + 0.5 * np.sin(2 * np.pi * (x + y) / 6 + rng.uniform(0, 6))
    a, b = np.array([0.9, 0.1, 0.1]), np.array([1.0, 0.9, 0.2])
  elif kind == "dots":  # blue/green dots on a grid
    t = ((np.mod(x + rng.integers(8), 8) - 4) ** 2 + (np.mod(y, 8) - 4) ** 2 < 5).astype(np.float32)
    a, b = np.array([0.1, 0.2, 0.8]), np.array([0.2, 0.9, 0.4])
  else:  # "noise": grey blotchy noise
    t = rng.random((n // 4, n // 4)).repeat(4, 0).repeat(4, 1)
    a, b = np.array([0.2, 0.2, 0.2]), np.array([0.8, 0.8, 0.75])
  mix = np.clip(0.65 * t + 0.35 * content, 0, 1)[..., None]
  return (a * (1 - mix) + b * mix).astype(np.float32)


def test_retrieves_style_not_content(vgg_partial, tmp_path):
  """The same content in two styles is never the nearest neighbour of itself;
  images of the same style (other contents) are."""
  lib = tmp_path / "lib"
  lib.mkdir()
  names = {}
  for ci, content in enumerate(("disk", "bar", "half")):
    for si, style in enumerate(("stripes", "dots", "noise")):
      path = lib / f"{content}_{style}.png"
      images_lib.save_image(str(path), _style(style, _content(content), seed=10 * ci + si))
      names[path.name] = (content, style)
  config = dataclasses.replace(SMALL, scales=(96,))
  index, report = R.build_index(str(lib), str(tmp_path / "lib.idx"), vgg_partial, config)
  assert report.embedded == 9 and len(index) == 9
  queries = sorted(names)
  _, idx = R.query_index(index, vgg_partial, [str(lib / name) for name in queries], k=3)
  for name, row in zip(queries, idx):
    content, style = names[name]
    got = [names[index.paths[i]] for i in row]
    assert got[0] == (content, style)  # itself
    assert got[1][1] == style and got[2][1] == style, (name, got)


# ----------------------------------------------------------------------------
# Index: incremental, resumable, atomic; bad input.


def _make_library(root, shared_data, n=4):
  os.makedirs(root / "sub", exist_ok=True)
  for i, p in enumerate(_texture_paths(shared_data, n)):
    im = images_lib.load_image(p, 72)
    images_lib.save_image(str(root / ("sub" if i % 2 else "") / f"t{i}.png"), im)


def test_incremental_reindex(vgg_partial, shared_data, tmp_path):
  lib, out = tmp_path / "lib", str(tmp_path / "lib.idx")
  _make_library(lib, shared_data)
  first, rep = R.build_index(str(lib), out, vgg_partial, SMALL)
  assert rep.embedded == 4 and first.paths == ["sub/t1.png", "sub/t3.png", "t0.png", "t2.png"]
  # change t0, delete sub/t1, add t9, touch t2 (same bytes, new mtime), leave sub/t3.
  images_lib.save_image(str(lib / "t0.png"), images_lib.load_image(str(lib / "t0.png"))[::-1, ::-1] * 0.5)
  os.unlink(lib / "sub" / "t1.png")
  shutil.copy(lib / "sub" / "t3.png", lib / "t9.png")
  shutil.copy(lib / "t2.png", lib / "t2.tmp")
  os.replace(lib / "t2.tmp", lib / "t2.png")
  os.utime(lib / "t2.png", ns=(1, 1))
  second, rep = R.build_index(str(lib), out, vgg_partial, SMALL)
  assert second.paths == ["sub/t3.png", "t0.png", "t2.png", "t9.png"]
  assert rep.embedded == 1 and rep.dropped == 1 and rep.reused == 3  # t9 reused by hash
  fresh, _ = R.build_index(str(lib), str(tmp_path / "fresh.idx"), vgg_partial, SMALL,
                           rebuild=True)
  np.testing.assert_allclose(second.base, fresh.base, atol=1e-5)
  assert not np.allclose(second.base[1], first.base[2], atol=1e-3)  # t0 really re-embedded
  loaded = R.load_index(out)
  assert loaded.paths == second.paths and loaded.sha256 == second.sha256
  np.testing.assert_array_equal(loaded.base, second.base)


def test_resume_after_interruption_and_good_index_survives(vgg_partial, shared_data, tmp_path):
  lib, out = tmp_path / "lib", str(tmp_path / "lib.idx")
  _make_library(lib, shared_data)
  os.makedirs(lib / "more")
  for i in range(2):
    shutil.copy(lib / "t0.png", lib / "more" / f"x{i}.png")  # same content: reused by hash
  images_lib.save_image(str(lib / "more" / "new.png"), np.full((40, 60, 3), 0.3, np.float32))
  calls = []

  def interrupt(done, total):
    calls.append(done)
    if len(calls) == 2:  # after the first group of 2 images was embedded and saved
      raise KeyboardInterrupt

  with pytest.raises(KeyboardInterrupt):
    R.build_index(str(lib), out, vgg_partial, SMALL, group_size=2, save_every=1,
                  progress=interrupt)
  assert not os.path.exists(out) and os.path.exists(R.partial_path(out))
  assert len(R.load_index(R.partial_path(out))) == 2
  index, rep = R.build_index(str(lib), out, vgg_partial, SMALL, group_size=2)
  assert rep.resumed == 2 and rep.embedded == 3 and len(index) == 7
  assert not os.path.exists(R.partial_path(out))
  fresh, _ = R.build_index(str(lib), str(tmp_path / "fresh.idx"), vgg_partial, SMALL)
  np.testing.assert_allclose(index.base, fresh.base, atol=1e-5)
  # An interrupted *update* leaves the good index untouched.
  before = open(out, "rb").read()
  images_lib.save_image(str(lib / "more" / "newer.png"), np.full((40, 60, 3), 0.7, np.float32))
  with pytest.raises(KeyboardInterrupt):
    R.build_index(str(lib), out, vgg_partial, SMALL,
                  progress=lambda d, t: (_ for _ in ()).throw(KeyboardInterrupt()))
  assert open(out, "rb").read() == before


def test_failed_write_never_replaces_good_index(vgg_partial, shared_data, tmp_path, monkeypatch):
  lib, out = tmp_path / "lib", str(tmp_path / "lib.idx")
  _make_library(lib, shared_data, n=2)
  index, _ = R.build_index(str(lib), out, vgg_partial, SMALL)
  before = open(out, "rb").read()

  def broken_savez(f, **arrays):
    f.write(b"PK\x03\x04 half a zip")
    raise OSError(28, "No space left on device")

  monkeypatch.setattr(np, "savez", broken_savez)
  with pytest.raises(OSError):
    R.save_index(index, out)
  assert open(out, "rb").read() == before
  assert sorted(os.listdir(tmp_path)) == ["lib", "lib.idx"]  # no temp file left behind


def test_bad_inputs(vgg_partial, shared_data, tmp_path):
  (tmp_path / "empty" / "sub").mkdir(parents=True)
  (tmp_path / "empty" / "notes.txt").write_text("not an image")
  with pytest.raises(R.RetrievalError, match="no image files"):
    R.build_index(str(tmp_path / "empty"), str(tmp_path / "e.idx"), vgg_partial, SMALL)
  bad = tmp_path / "bad"
  bad.mkdir()
  (bad / "a.jpg").write_bytes(b"garbage")
  with pytest.raises(R.RetrievalError, match="none of the 1 image files"):
    R.build_index(str(bad), str(tmp_path / "b.idx"), vgg_partial, SMALL)
  assert not os.path.exists(tmp_path / "b.idx")

  lib, out = tmp_path / "lib", str(tmp_path / "lib.idx")
  _make_library(lib, shared_data, n=2)
  (lib / "broken.png").write_bytes(b"\x89PNG\r\n\x1a\n truncated")
  index, rep = R.build_index(str(lib), out, vgg_partial, SMALL)
  assert [f[0] for f in rep.failed] == ["broken.png"] and len(index) == 2
  assert [f[0] for f in R.load_index(out).failed] == ["broken.png"]
  other = dataclasses.replace(SMALL, power=1.0)
  with pytest.raises(R.RetrievalError, match="another descriptor config"):
    R.build_index(str(lib), out, vgg_partial, other)
  rebuilt, _ = R.build_index(str(lib), out, vgg_partial, other, rebuild=True)
  assert R.load_index(out).config == other
  rand = vgg.random_weights(__import__("jax").random.key(0), upto="conv3_4")
  with pytest.raises(R.RetrievalError, match="other VGG weights"):
    R.query_index(rebuilt, rand, [str(lib / "t0.png")])
  with pytest.raises(images_lib.ImageError):
    R.query_index(rebuilt, vgg_partial, [str(lib / "broken.png")])

  corrupt = tmp_path / "corrupt.idx"
  corrupt.write_bytes(open(out, "rb").read()[:200])
  with pytest.raises(R.RetrievalError, match="not a readable style index"):
    R.load_index(str(corrupt))
  np.savez(str(tmp_path / "other.npz"), meta=np.asarray('{"format": "x"}'))
  with pytest.raises(R.RetrievalError, match="not a jaxstyle style index"):
    R.load_index(str(tmp_path / "other.npz"))
  with pytest.raises(R.RetrievalError, match="not a readable style index"):
    R.build_index(str(lib), str(corrupt), vgg_partial, SMALL)
  with pytest.raises(R.DescriptorError, match="not available yet"):
    R.get_config("encoder")
  with pytest.raises(R.RetrievalError, match="not available yet"):
    R.query_profile(rebuilt, "me.style")


@pytest.mark.slow
def test_full_dtd_leave_one_out(vgg_partial, shared_data):
  """The default descriptor on all 400 DTD images (~10-20 min on CPU-2c).

  Measured 2026-11-25 (BUILD_NOTES.md): P@1 = 0.755, P@5 = 0.661; the naive
  baseline reaches 0.57 / 0.45. The thresholds leave room for platform
  numerics only.
  """
  import csv
  root = os.path.join(shared_data, "retrieval")
  with open(os.path.join(root, "labels.csv")) as f:
    rows = list(csv.DictReader(f))
  emb = R.Embedder(vgg_partial, R.get_config("default"))
  descs, labels = [], []
  for s in range(0, len(rows), 16):
    chunk = rows[s:s + 16]
    (d,), ok, failed = emb.embed_files([os.path.join(root, r["path"]) for r in chunk])
    assert not failed
    descs.append(d)
    labels += [chunk[i]["label"] for i in ok]
  base = np.concatenate(descs)
  config = R.get_config("default")
  m = R.leave_one_out(R.apply_whitening(base, R.fit_whitening(base, config)), labels)
  assert m["p_at_1"] >= 0.74, m
  assert m["p_at_5"] >= 0.64, m
