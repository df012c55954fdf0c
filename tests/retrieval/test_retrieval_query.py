"""jaxstyle.retrieval.query: procedural "stylised photos" retrieve their style, not content."""

import dataclasses

import numpy as np
from retrieval_testlib import SMALL

from jaxstyle import images as images_lib
from jaxstyle import retrieval as R


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
