"""Datasets as NumPy arrays and seeded NumPy batch iterators.

``from jaxstyle import data`` gives every public name of the submodules:

* ``mnist``: ``load_mnist`` (IDX files or TFDS), ``load_mnist_idx``,
  ``load_mnist_tfds``, ``read_idx``, ``MNIST_FILES``.
* ``batches``: ``BatchIterator``, ``to_float_nhwc``.
* ``tfds_source``: the one TFDS path (``prepare``, ``data_source``,
  ``read_records``), reached as ``data.tfds_source``.
* ``errors``: ``DataError``.
"""

from __future__ import annotations

from jaxstyle.data import tfds_source
from jaxstyle.data.batches import BatchIterator, to_float_nhwc
from jaxstyle.errors import DataError
from jaxstyle.data.mnist import MNIST_FILES, load_mnist, load_mnist_idx, load_mnist_tfds, read_idx

__all__ = ["BatchIterator", "DataError", "MNIST_FILES", "load_mnist", "load_mnist_idx",
           "load_mnist_tfds", "read_idx", "to_float_nhwc"]
