"""Fuzz: the style index file (``load_index``) loads or raises ``RetrievalError`` naming the file.

Seeds are written by ``save_index`` (one whitened and one plain index, a few
rows each); mutations are byte-, zip-member-, array- and ``meta`` JSON-level
(see tests/fuzz_testlib.py). Hostile object arrays are refused, never unpickled.
"""

import dataclasses

import numpy as np
import pytest

import fuzz_testlib as fz
from jaxstyle import retrieval as R
from jaxstyle.retrieval import index as ix
from jaxstyle.retrieval.descriptors import descriptor_dim

SEED = 13
ALLOWED = (R.RetrievalError,)


def _index(config, n):
  rng = np.random.default_rng(0)
  d = descriptor_dim(config)
  return ix.StyleIndex(
      config=config, vgg={"fingerprint": "ab" * 32, "source": "vgg.npz", "preprocessing": "caffe"},
      paths=[f"sub/t{i}.png" for i in range(n)], sha256=["0" * 64] * n,
      size=np.arange(n, dtype=np.int64) + 100, mtime_ns=np.arange(n, dtype=np.int64),
      base=rng.standard_normal((n, d)).astype(np.float32), library="/lib",
      failed=[("bad.png", "not an image")])


@pytest.fixture(scope="module")
def seeds(tmp_path_factory):
  d = tmp_path_factory.mktemp("index_seeds")
  small = dataclasses.replace(R.get_config("default"), scales=(64,), dim=16, whiten_dim=4,
                              whiten_min_images=2)
  out = {}
  for name, config in (("whitened", small), ("plain", dataclasses.replace(small, whiten_dim=0))):
    path = str(d / f"{name}.npz")
    ix.save_index(_index(config, 6), path)
    assert len(ix.load_index(path)) == 6  # the seed itself is valid
    out[name] = open(path, "rb").read()
  return out


@pytest.mark.parametrize("seed_name", ["whitened", "plain"])
def test_fuzz_load_index(tmp_path, seeds, seed_name):
  fz.fuzz(f"retrieval.load_index[{seed_name}]", 250, SEED, str(tmp_path), ".npz",
          fz.npz_mutators(seeds[seed_name], json_key="meta"), ix.load_index, ALLOWED)


def test_index_pickles_never_run(tmp_path, seeds):
  marker = str(tmp_path / "PWNED")
  files = fz.evil_npz_files(str(tmp_path), seeds["whitened"], marker)
  failures = fz.refusals(files, {"load_index": ix.load_index}, ALLOWED, marker)
  assert not failures, "\n".join(failures)
