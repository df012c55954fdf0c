"""Datasets as NumPy arrays and seeded NumPy batch iterators.

``from jaxstyle import data`` gives every public name of the submodules:

* ``mnist``: ``load_mnist`` (IDX files or TFDS), ``load_mnist_idx``,
  ``load_mnist_tfds``, ``read_idx``, ``MNIST_FILES``.
* ``batches``: ``BatchIterator``, ``to_float_nhwc``.
* ``folders``: image folders: ``list_images``, ``PhotoCrops`` (seeded random crops
  of content photos), ``style_files`` and ``load_styles`` (folder, files or CSV).
* ``style_crops``: ``StyleCrops`` (seeded per-example style crops with their
  target Grams, as batch inputs of the stylizer's step).
* ``tfds_source``: the one TFDS path (``prepare``, ``data_source``,
  ``read_records``), reached as ``data.tfds_source``.
* ``DataError`` (defined in ``jaxstyle.errors``).
"""

from __future__ import annotations

from jaxstyle.data import tfds_source
from jaxstyle.data.batches import BatchIterator, to_float_nhwc
from jaxstyle.data.folders import PhotoCrops, center_crop_file, center_crops, list_images, load_styles, style_files
from jaxstyle.errors import DataError
from jaxstyle.data.style_crops import StyleCrops
from jaxstyle.data.mnist import MNIST_FILES, load_mnist, load_mnist_idx, load_mnist_tfds, read_idx

__all__ = ["BatchIterator", "DataError", "MNIST_FILES", "PhotoCrops", "center_crop_file", "center_crops", "list_images", "load_mnist",
           "load_mnist_idx", "load_mnist_tfds", "load_styles", "read_idx", "StyleCrops", "style_files",
           "to_float_nhwc"]
