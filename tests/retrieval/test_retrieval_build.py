"""jaxstyle.retrieval.build: incremental and resumable index builds."""

import os
import shutil

import numpy as np
import pytest
from retrieval_testlib import SMALL, make_library

from jaxstyle import images as images_lib
from jaxstyle import retrieval as R


def test_incremental_reindex(vgg_partial, shared_data, tmp_path):
  lib, out = tmp_path / "lib", str(tmp_path / "lib.idx")
  make_library(lib, shared_data)
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
  make_library(lib, shared_data)
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
