"""MNIST as NumPy arrays, from raw IDX files or from TFDS.

MNIST comes from raw IDX files (``.gz`` or uncompressed) in a directory, or
from TFDS (``tfds_source``: prepared once, which needs the internet and
TensorFlow, then read without either). Both give ``images`` uint8 [N, 28, 28]
(dark background, bright strokes) and ``labels`` int32 [N] in 0..9; the TFDS
record order differs from the IDX order, the examples are the same.
Splits: "train" (60000) and "test" (10000). Errors are ``DataError``.
"""

from __future__ import annotations

import gzip
import math
import os
import struct
import zlib

import numpy as np

from jaxstyle.data import tfds_source
from jaxstyle.errors import DataError

MNIST_FILES = {
    "train": ("train-images-idx3-ubyte", "train-labels-idx1-ubyte"),
    "test": ("t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte"),
}


def _find_idx(directory: str, name: str) -> str:
  for candidate in (name, name + ".gz"):
    path = os.path.join(directory, candidate)
    if os.path.exists(path):
      return path
  raise DataError(f"MNIST file {name}[.gz] not found in {directory!r}; point --mnist_dir at a "
                  "folder with the four IDX files (train-images-idx3-ubyte, train-labels-idx1-ubyte, "
                  "t10k-images-idx3-ubyte, t10k-labels-idx1-ubyte; .gz or not)")


def read_idx(path: str) -> np.ndarray:
  """Reads one IDX file (optionally gzip-compressed) into a NumPy array.

  The header is checked before the data is read, and the data is read in
  chunks up to the declared size, so a damaged header declaring a huge array
  (or a .gz that inflates without end) costs no more memory than the file holds.
  """
  opener = gzip.open if path.endswith(".gz") else open
  dtypes = {0x08: np.uint8, 0x09: np.int8, 0x0B: ">i2", 0x0C: ">i4", 0x0D: ">f4", 0x0E: ">f8"}
  try:
    with opener(path, "rb") as f:
      head = f.read(4)
      if len(head) < 4 or head[0] != 0 or head[1] != 0:
        raise DataError(f"{path}: not an IDX file (bad magic number)")
      if head[2] not in dtypes:
        raise DataError(f"{path}: unknown IDX element type 0x{head[2]:02x}")
      dims = f.read(4 * head[3])
      if len(dims) != 4 * head[3]:
        raise DataError(f"{path}: truncated IDX header ({head[3]} dimensions declared)")
      shape = struct.unpack(">" + "I" * head[3], dims)
      dtype = np.dtype(dtypes[head[2]])
      expected = math.prod(shape) * dtype.itemsize
      body = bytearray()
      while len(body) <= expected:
        chunk = f.read(min(1 << 24, expected + 1 - len(body)))
        if not chunk:
          break
        body += chunk
  except (OSError, EOFError, zlib.error) as e:  # gzip: BadGzipFile (an OSError), zlib.error
    raise DataError(f"{path}: cannot read IDX file ({type(e).__name__}: {e}); re-download "
                    "it") from None
  if len(body) != expected:
    raise DataError(f"{path}: truncated or oversized IDX file (header says {expected} bytes of "
                    f"data, file has {len(body)}{' or more' if len(body) > expected else ''})")
  return np.frombuffer(bytes(body), dtype=dtype).reshape(shape).astype(dtype.newbyteorder("="))


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


def load_mnist_tfds(split: str = "train", data_dir: str | None = None) -> tuple[np.ndarray, np.ndarray]:
  """MNIST from TFDS (prepared on first use by ``tfds_source``, which needs the internet).

  Args:
    split: "train" or "test".
    data_dir: TFDS data directory (None: the TFDS default, ``~/tensorflow_datasets``).

  Returns:
    ``images`` uint8 [N, 28, 28] and ``labels`` int32 [N], in the source's record order.

  Raises:
    DataError: unknown split, or TFDS cannot prepare or read MNIST (the message
      names the fix, including ``--mnist_dir`` for machines without the internet).
  """
  if split not in MNIST_FILES:
    raise DataError(f"unknown MNIST split {split!r}; expected one of {sorted(MNIST_FILES)}")
  try:
    source = tfds_source.data_source("mnist", split, data_dir)
    n = len(source)
    images = np.empty((n, 28, 28), np.uint8)
    labels = np.empty((n,), np.int32)
    for i, record in enumerate(tfds_source.read_records(source)):
      images[i] = np.asarray(record["image"]).reshape(28, 28)
      labels[i] = int(record["label"])
  except DataError as e:
    raise DataError(f"MNIST from TFDS: {e}; or pass --mnist_dir with the IDX files") from e
  except Exception as e:  # decoding problems inside TFDS
    raise DataError(f"cannot read MNIST {split} from TFDS ({type(e).__name__}: {e}); or pass "
                    "--mnist_dir with the IDX files") from e
  return images, labels


def load_mnist(split: str = "train", mnist_dir: str | None = None,
               tfds_data_dir: str | None = None) -> tuple[np.ndarray, np.ndarray]:
  """MNIST ``split`` from IDX files in ``mnist_dir`` or, when it is None, from TFDS.

  Returns:
    ``images`` uint8 [N, 28, 28] and ``labels`` int32 [N] in 0..9.
  """
  if mnist_dir is not None:
    return load_mnist_idx(mnist_dir, split)
  return load_mnist_tfds(split, tfds_data_dir)
