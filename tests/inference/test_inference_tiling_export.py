"""Tiled inference with image-wide statistics, and the jax.export artifact (random trained-like weights)."""

import json
import os
import subprocess
import sys
import textwrap

import jax
import numpy as np
import pytest

from jaxstyle import inference
from jaxstyle.errors import CheckpointError, StylizerInputError
from jaxstyle.inference import tiling
from jaxstyle.nets import stylizer as st

CFG = st.StylizerConfig(latent_dim=8, widths=(8, 16, 16), stem_kernel=5, residual_blocks=1)


def _trained_like_params(seed=0):
  """Init params with every leaf perturbed, so the StyleMods depend on the latent (as after training)."""
  p = st.init_stylizer(CFG, jax.random.key(seed))
  rng = np.random.default_rng(seed)
  return jax.tree.map(lambda a: np.asarray(a) + 0.2 * rng.standard_normal(a.shape).astype(np.float32), p)


def _photo_like(h, w, seed=0):
  """A smooth random image with a flat band (like sky), float32 [H, W, 3]."""
  rng = np.random.default_rng(seed)
  small = rng.random((h // 8 + 2, w // 8 + 2, 3)).astype(np.float32)
  img = np.array(jax.image.resize(small, (h, w, 3), "linear"))
  img[: h // 4] = 0.6
  return img


@pytest.fixture(scope="module")
def params():
  return _trained_like_params()


def test_receptive_radius_bounds_the_dependence(params):
  """An output pixel under imposed statistics does not change when inputs beyond the radius change."""
  img = _photo_like(96, 96)
  z = np.linspace(-1, 1, CFG.latent_dim).astype(np.float32)
  stats = tiling.image_statistics(CFG, params, img, z)
  _, _, imposed = tiling._passes(CFG)
  r = st.receptive_radius(CFG)
  base = np.asarray(imposed(params, stats, img[None], z[None])[0])
  far = img.copy()
  far[:, 48 + r + 1:] = 1.0 - far[:, 48 + r + 1:]  # change everything right of column 48 + r
  moved = np.asarray(imposed(params, stats, far[None], z[None])[0])
  assert np.abs(moved[:, :48] - base[:, :48]).max() < 1e-5
  assert np.abs(moved[:, 60 + r:] - base[:, 60 + r:]).max() > 1e-2  # the change does reach its own area


@pytest.mark.parametrize("shape", [(203, 150), pytest.param((130, 257), marks=pytest.mark.slow)])
def test_tiled_equals_whole_image(params, shape):
  """Odd sizes, several tiles: tiled output == one-pass output everywhere (no seams) within 2e-5."""
  img = _photo_like(*shape)
  z = np.linspace(-1, 1, CFG.latent_dim).astype(np.float32)
  whole = inference.stylize_image(CFG, params, img, z)
  done = []
  tiled = inference.stylize_image(CFG, params, img, z, whole_pixels=100, tile=64,
                                  progress=lambda i, n: done.append((i, n)))
  assert tiled.shape == img.shape and tiled.dtype == np.float32
  assert done[-1][0] == done[-1][1] > 4
  assert np.abs(tiled - whole).max() < 2e-5


def test_per_tile_statistics_would_show_seams(params):
  """The control: tiles normalised by their own statistics differ visibly from the whole image."""
  img = _photo_like(128, 128)
  z = np.linspace(-1, 1, CFG.latent_dim).astype(np.float32)
  whole = inference.stylize_image(CFG, params, img, z)
  own = np.concatenate([np.asarray(st.apply_stylizer(CFG, params, img[None, :, :64], z)[0]),
                        np.asarray(st.apply_stylizer(CFG, params, img[None, :, 64:], z)[0])], axis=1)
  assert np.abs(own - whole).max() > 0.05


def test_large_images_use_downscaled_statistics(params):
  """Above stats_side the statistics come from a resized copy; tiles stay seamless (all share them)."""
  img = _photo_like(160, 160)
  z = np.linspace(-1, 1, CFG.latent_dim).astype(np.float32)
  a = inference.stylize_image(CFG, params, img, z, whole_pixels=100, tile=32, stats_side=64)
  b = inference.stylize_image(CFG, params, img, z, whole_pixels=100, tile=64, stats_side=64)
  assert np.abs(a - b).max() < 2e-5  # the tiling does not matter, only the statistics
  assert 0.0 <= a.min() and a.max() <= 1.0


def test_bad_inputs(params):
  z = np.zeros((CFG.latent_dim,), np.float32)
  with pytest.raises(StylizerInputError, match="multiple of 4"):
    inference.stylize_image(CFG, params, _photo_like(64, 64), z, whole_pixels=1, tile=30)
  with pytest.raises(StylizerInputError, match=r"\[H, W, 3\]"):
    inference.stylize_image(CFG, params, np.zeros((2, 64, 64, 3), np.float32), z)
  with pytest.raises(StylizerInputError, match="too small"):
    inference.stylize_image(CFG, params, np.zeros((3, 40, 3), np.float32), z)
  with pytest.raises(StylizerInputError, match="latent"):
    inference.stylize_image(CFG, params, _photo_like(64, 64), np.zeros((5,), np.float32))


def test_memory_estimate_grows_with_area():
  small, big = tiling.memory_estimate(CFG, 512, 512), tiling.memory_estimate(CFG, 1024, 1024)
  assert 3.9 < big / small < 4.1


def test_export_runs_without_jaxstyle(params, tmp_path):
  """The artifact runs in a fresh interpreter where importing jaxstyle fails; outputs match (odd size)."""
  path = str(tmp_path / "st.jaxexport")
  z = np.linspace(-1, 1, CFG.latent_dim).astype(np.float32)
  meta = inference.export_stylizer(CFG, params, path, styles={"mine": z})
  assert meta["latent_dim"] == CFG.latent_dim and list(meta["styles"]) == ["mine"]
  img = _photo_like(37, 50)
  want = np.asarray(st.apply_stylizer(CFG, params, img[None], z))[0]
  np.save(tmp_path / "img.npy", img[None])
  script = textwrap.dedent(f"""
      import sys
      sys.modules["jaxstyle"] = None  # any import of jaxstyle now fails
      try:
        import jaxstyle
        raise SystemExit("jaxstyle importable")
      except ImportError:
        pass
      import json
      import jax, numpy as np
      exp = jax.export.deserialize(bytearray(open({path!r}, "rb").read()))
      meta = json.load(open({path!r} + ".json"))
      img = np.load({str(tmp_path / "img.npy")!r})
      z = np.asarray(meta["styles"]["mine"], np.float32)[None]
      np.save({str(tmp_path / "out.npy")!r}, np.asarray(exp.call(img, z)))
      """)
  env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
  proc = subprocess.run([sys.executable, "-c", script], cwd=tmp_path, env=env, capture_output=True,
                        text=True, timeout=300)
  assert proc.returncode == 0, proc.stderr[-2000:]
  got = np.load(tmp_path / "out.npy")[0]
  assert got.shape == (37, 50, 3)
  assert np.abs(got - want).max() < 1e-5


def test_load_exported_refuses_garbage(tmp_path):
  bad = tmp_path / "x.jaxexport"
  bad.write_bytes(b"not an export")
  (tmp_path / "x.jaxexport.json").write_text(json.dumps({}))
  with pytest.raises(CheckpointError, match="not a readable stylizer export"):
    inference.load_exported(str(bad))
