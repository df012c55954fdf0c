"""Seeded NumPy batch iterators over in-memory arrays."""

from __future__ import annotations

import numpy as np

from jaxstyle.errors import DataError


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
