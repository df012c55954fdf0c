"""Helpers shared by the tests in tests/retrieval/ (not a test module)."""

import dataclasses
import os

from jaxstyle import images as images_lib
from jaxstyle import retrieval as R

# Small, fast settings for the real-weight tests (the default preset works at 512 px).
SMALL = dataclasses.replace(R.get_config("default"), scales=(64,), dim=256, whiten_dim=0)


def texture_paths(shared_data, n):
  root = os.path.join(shared_data, "retrieval", "dtd10")
  out = []
  for cls in sorted(os.listdir(root))[:n]:
    out.append(os.path.join(root, cls, sorted(os.listdir(os.path.join(root, cls)))[0]))
  return out


def make_library(root, shared_data, n=4):
  os.makedirs(root / "sub", exist_ok=True)
  for i, p in enumerate(texture_paths(shared_data, n)):
    im = images_lib.load_image(p, 72)
    images_lib.save_image(str(root / ("sub" if i % 2 else "") / f"t{i}.png"), im)
