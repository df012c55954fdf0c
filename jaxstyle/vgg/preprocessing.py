"""Preprocessing registry: RGB [0, 1] NHWC images -> what a weight family expects.

Preprocessing is a property of the weights (``VGGWeights.preprocessing``), so
callers never choose it:

* ``caffe``: RGB -> BGR, x255, minus the ImageNet BGR mean
  ``IMAGENET_MEAN_BGR_255`` (Keras/Caffe weights).
* ``torch``: RGB, ``(x - IMAGENET_MEAN_RGB) / IMAGENET_STD_RGB`` (torchvision
  weights).

``preprocess`` keeps shape and dtype; an unknown convention raises
``WeightsError``.
"""

from __future__ import annotations

from typing import Callable

import jax
import jax.numpy as jnp

from jaxstyle.errors import WeightsError

IMAGENET_MEAN_BGR_255 = (103.939, 116.779, 123.68)
IMAGENET_MEAN_RGB = (0.485, 0.456, 0.406)
IMAGENET_STD_RGB = (0.229, 0.224, 0.225)


def _caffe(x: jax.Array) -> jax.Array:
  return x[..., ::-1] * 255.0 - jnp.asarray(IMAGENET_MEAN_BGR_255, x.dtype)


def _torch(x: jax.Array) -> jax.Array:
  return (x - jnp.asarray(IMAGENET_MEAN_RGB, x.dtype)) / jnp.asarray(IMAGENET_STD_RGB, x.dtype)


PREPROCESSING: dict[str, Callable[[jax.Array], jax.Array]] = {"caffe": _caffe, "torch": _torch}


def preprocess(images: jax.Array, convention: str) -> jax.Array:
  """Maps RGB [0, 1] NHWC images to the input convention of a weight family."""
  try:
    return PREPROCESSING[convention](images)
  except KeyError:
    raise WeightsError(f"unknown VGG preprocessing {convention!r}; known: "
                       f"{sorted(PREPROCESSING)}") from None
