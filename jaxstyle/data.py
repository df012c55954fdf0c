"""Datasets as NumPy arrays and seeded NumPy batch iterators.

MNIST comes from raw IDX files (``.gz`` or uncompressed) in a directory, or
from TFDS for users with the internet.
"""

from __future__ import annotations

import gzip
import os
import struct

import numpy as np

from jaxstyle.errors import JaxstyleError

MNIST_FILES = {
    "train": ("train-images-idx3-ubyte", "train-labels-idx1-ubyte"),
    "test": ("t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte"),
}


class DataError(JaxstyleError):
  """A dataset file is missing or malformed."""


def _find_idx(directory: str, name: str) -> str:
  for candidate in (name, name + ".gz"):
    path = os.path.join(directory, candidate)
    if os.path.exists(path):
      return path
  raise DataError(f"MNIST file {name}[.gz] not found in {directory!r}; point --mnist_dir at a "
                  "folder with the four IDX files (train-images-idx3-ubyte, train-labels-idx1-ubyte, "
                  "t10k-images-idx3-ubyte, t10k-labels-idx1-ubyte; .gz or not)")


def read_idx(path: str) -> np.ndarray:
  """Reads one IDX file (optionally gzip-compressed) into a NumPy array."""
  opener = gzip.open if path.endswith(".gz") else open
  try:
    with opener(path, "rb") as f:
      raw = f.read()
  except (OSError, EOFError) as e:
    raise DataError(f"{path}: cannot read IDX file ({e})") from e
  if len(raw) < 4 or raw[0] != 0 or raw[1] != 0:
    raise DataError(f"{path}: not an IDX file (bad magic number)")
  dtypes = {0x08: np.uint8, 0x09: np.int8, 0x0B: ">i2", 0x0C: ">i4", 0x0D: ">f4", 0x0E: ">f8"}
  if raw[2] not in dtypes:
    raise DataError(f"{path}: unknown IDX element type 0x{raw[2]:02x}")
  ndim = raw[3]
  shape = struct.unpack(">" + "I" * ndim, raw[4:4 + 4 * ndim])
  dtype = np.dtype(dtypes[raw[2]])
  expected = int(np.prod(shape)) * dtype.itemsize
  body = raw[4 + 4 * ndim:]
  if len(body) != expected:
    raise DataError(f"{path}: truncated or oversized IDX file (header says {expected} bytes of "
                    f"data, file has {len(body)})")
  return np.frombuffer(body, dtype=dtype).reshape(shape).astype(dtype.newbyteorder("="))


def load_mnist_idx(directory: str, split: str = "train") -> tuple[np.ndarray, np.ndarray]:
  """MNIST from IDX files: ``images`` uint8 [N, 28, 28], ``labels`` int32 [N]."""
  if split not in MNIST_FILES:
    raise DataError(f"unknown MNIST split {split!r}; expected one of {sorted(MNIST_FILES)}")
  if not os.path.isdir(directory):
    raise DataError(f"--mnist_dir {directory!r} is not a directory")
  img_name, lbl_name = MNIST_FILES[split]
  images = read_idx(_find_idx(directory, img_name))
  labels = read_idx(_find_idx(directory, lbl_name)).astype(np.int32)
  if images.ndim != 3 or labels.ndim != 1 or images.shape[0] != labels.shape[0]:
    raise DataError(f"MNIST {split} files in {directory!r} disagree: images {images.shape}, "
                    f"labels {labels.shape}")
  return images, labels
