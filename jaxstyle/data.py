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


def load_mnist_tfds(split: str = "train", data_dir: str | None = None) -> tuple[np.ndarray, np.ndarray]:
  """MNIST from TFDS (``tfds.data_source``; downloads on first use, needs the internet).

  Args:
    split: "train" or "test".
    data_dir: TFDS data directory (None: the TFDS default, ``~/tensorflow_datasets``).

  Returns:
    ``images`` uint8 [N, 28, 28] and ``labels`` int32 [N], in the source's record order.
  """
  if split not in MNIST_FILES:
    raise DataError(f"unknown MNIST split {split!r}; expected one of {sorted(MNIST_FILES)}")
  try:
    import tensorflow_datasets as tfds  # pylint: disable=g-import-not-at-top
  except ImportError as e:
    raise DataError("MNIST from TFDS needs tensorflow-datasets (pip install tensorflow-datasets), "
                    "or pass --mnist_dir with the IDX files") from e
  try:
    source = tfds.data_source("mnist", split=split, data_dir=data_dir)
    n = len(source)
    images = np.empty((n, 28, 28), np.uint8)
    labels = np.empty((n,), np.int32)
    for i in range(n):  # per record: the batched __getitems__ is not available on every source
      record = source[i]
      images[i] = np.asarray(record["image"]).reshape(28, 28)
      labels[i] = int(record["label"])
  except DataError:
    raise
  except Exception as e:  # network, disk or format problems inside TFDS
    raise DataError(f"cannot load MNIST {split} from TFDS ({type(e).__name__}: {e}); without the "
                    "internet pass --mnist_dir with the IDX files") from e
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


def to_float_nhwc(images: np.ndarray) -> np.ndarray:
  """uint8 [N, H, W] or [N, H, W, C] -> float32 [N, H, W, C] in [0, 1]."""
  images = np.asarray(images)
  if images.ndim == 3:
    images = images[..., None]
  return images.astype(np.float32) / 255.0


class BatchIterator:
  """Seeded, deterministic, random-access batches of in-memory arrays.

  Every epoch is a fresh permutation drawn from ``(seed, epoch)``; the last
  incomplete global batch of an epoch is dropped. Global batch ``step`` is the
  slice ``[step * B, (step + 1) * B)`` of the concatenated epoch permutations,
  so a run that resumes at step ``k`` reads exactly what an uninterrupted run
  reads (the iterator state *is* the step).

  Multi-process: the global batch of ``global_batch_size`` examples is split
  into ``process_count`` contiguous slices and this process gets slice
  ``process_index`` (shape [global_batch_size / process_count, ...]); the
  processes together see the same global batch as one process would.
  """

  def __init__(self, arrays: dict[str, np.ndarray], global_batch_size: int, seed: int,
               process_index: int = 0, process_count: int = 1, shuffle: bool = True):
    lengths = {k: len(v) for k, v in arrays.items()}
    if not arrays or len(set(lengths.values())) != 1:
      raise DataError(f"BatchIterator needs arrays of one common length, got {lengths}")
    self.arrays = arrays
    self.num_examples = next(iter(lengths.values()))
    if global_batch_size <= 0 or global_batch_size > self.num_examples:
      raise DataError(f"batch size {global_batch_size} must be in 1..{self.num_examples} "
                      "(the number of examples)")
    if global_batch_size % process_count:
      raise DataError(f"batch size {global_batch_size} is not divisible by the number of "
                      f"processes ({process_count})")
    if not 0 <= process_index < process_count:
      raise DataError(f"process index {process_index} outside 0..{process_count - 1}")
    self.global_batch_size = global_batch_size
    self.local_batch_size = global_batch_size // process_count
    self.seed = seed
    self.process_index = process_index
    self.process_count = process_count
    self.shuffle = shuffle
    self.steps_per_epoch = self.num_examples // global_batch_size
    self._perm_cache: tuple[int, np.ndarray] | None = None

  def permutation(self, epoch: int) -> np.ndarray:
    """Example order of ``epoch`` (int64 [num_examples])."""
    if self._perm_cache is not None and self._perm_cache[0] == epoch:
      return self._perm_cache[1]
    if self.shuffle:
      perm = np.random.default_rng([self.seed, epoch]).permutation(self.num_examples)
    else:
      perm = np.arange(self.num_examples)
    self._perm_cache = (epoch, perm)
    return perm

  def global_indices(self, step: int) -> np.ndarray:
    """Example indices of global batch ``step`` (int64 [global_batch_size])."""
    epoch, within = divmod(step, self.steps_per_epoch)
    start = within * self.global_batch_size
    return self.permutation(epoch)[start:start + self.global_batch_size]

  def local_indices(self, step: int) -> np.ndarray:
    """This process's slice of global batch ``step`` (int64 [local_batch_size])."""
    start = self.process_index * self.local_batch_size
    return self.global_indices(step)[start:start + self.local_batch_size]

  def batch(self, step: int) -> dict[str, np.ndarray]:
    """This process's part of global batch ``step``: ``{name: array[local_batch_size, ...]}``."""
    idx = self.local_indices(step)
    return {k: v[idx] for k, v in self.arrays.items()}

  def iterate(self, start_step: int = 0, num_steps: int | None = None):
    """Yields ``(step, batch)`` from ``start_step`` (for ``num_steps`` steps, or forever)."""
    step = start_step
    while num_steps is None or step < start_step + num_steps:
      yield step, self.batch(step)
      step += 1
