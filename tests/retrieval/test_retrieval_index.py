"""jaxstyle.retrieval.index: atomic writes and clear errors for bad inputs."""

import dataclasses
import os

import jax
import numpy as np
import pytest
from retrieval_testlib import SMALL, make_library

from jaxstyle import images as images_lib
from jaxstyle import retrieval as R
from jaxstyle import vgg


def test_failed_write_never_replaces_good_index(vgg_partial, shared_data, tmp_path, monkeypatch):
  lib, out = tmp_path / "lib", str(tmp_path / "lib.idx")
  make_library(lib, shared_data, n=2)
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
  make_library(lib, shared_data, n=2)
  (lib / "broken.png").write_bytes(b"\x89PNG\r\n\x1a\n truncated")
  index, rep = R.build_index(str(lib), out, vgg_partial, SMALL)
  assert [f[0] for f in rep.failed] == ["broken.png"] and len(index) == 2
  assert [f[0] for f in R.load_index(out).failed] == ["broken.png"]
  other = dataclasses.replace(SMALL, power=1.0)
  with pytest.raises(R.RetrievalError, match="another descriptor config"):
    R.build_index(str(lib), out, vgg_partial, other)
  rebuilt, _ = R.build_index(str(lib), out, vgg_partial, other, rebuild=True)
  assert R.load_index(out).config == other
  rand = vgg.random_weights(jax.random.key(0), upto="conv3_4")
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
  with pytest.raises(R.DescriptorError, match="needs a trained stylizer: pass --checkpoint"):
    R.get_config("encoder")
  with pytest.raises(R.RetrievalError, match="--descriptor encoder --checkpoint"):
    R.query_profile(rebuilt, "me.style")
