"""Reader of Keras VGG19 weight files (``.h5``; needs h5py).

``read_h5_params(path)`` returns ``{"conv{b}_{c}": {"kernel": HWIO, "bias":
[C]}}`` from the layer groups ``block{b}_conv{c}``. It reads Keras 2 weight
files (``block1_conv1/block1_conv1/kernel:0`` or ``..._W_1:0``), full-model
files (``model_weights/...``) and Keras 3 ``.weights.h5``
(``layers/block1_conv1/vars/{0,1}``): in each layer group the 4-D dataset is
the kernel and the 1-D one the bias; optimizer groups are skipped. A missing
h5py, an unreadable file or no such layers raises ``WeightsError``. Shapes are
checked by ``jaxstyle.vgg.weights.make_weights``.
"""

from __future__ import annotations

import re
from typing import Any

import numpy as np

from jaxstyle.errors import WeightsError
from jaxstyle.vgg.model import CHANNELS


def read_h5_params(path: str) -> dict[str, dict[str, np.ndarray]]:
  """The VGG conv kernels (HWIO) and biases of a Keras ``.h5`` file; see the module docstring."""
  try:
    import h5py
  except ImportError:
    raise WeightsError(f"{path}: reading Keras .h5 files needs h5py: pip install 'jaxstyle[keras]' "
                       "(or h5py)") from None
  params: dict[str, dict[str, np.ndarray]] = {}
  try:
    with h5py.File(path, "r") as f:
      root = f["model_weights"] if "model_weights" in f else f
      groups: dict[str, Any] = {}

      def visit(name, obj):
        if isinstance(obj, h5py.Group) and "optimizer" not in name.lower():
          m = re.fullmatch(r"block(\d)_conv(\d)", name.rsplit("/", 1)[-1])
          if m and f"conv{m.group(1)}_{m.group(2)}" in CHANNELS:
            groups.setdefault(f"conv{m.group(1)}_{m.group(2)}", obj)

      root.visititems(visit)
      for layer, group in groups.items():
        arrays = []
        group.visititems(lambda _, obj: arrays.append(obj[()]) if isinstance(obj, h5py.Dataset)
                         else None)
        kernels = [a for a in arrays if np.ndim(a) == 4]
        biases = [a for a in arrays if np.ndim(a) == 1]
        if len(kernels) != 1 or len(biases) != 1:
          raise WeightsError(f"{path}: Keras layer {group.name} should hold one 4-D kernel and one "
                             f"1-D bias, found {len(kernels)} and {len(biases)}")
        params[layer] = {"kernel": kernels[0], "bias": biases[0]}
  except WeightsError:
    raise
  except Exception as e:
    raise WeightsError(f"{path}: cannot read this Keras .h5 file ({type(e).__name__}: {e})") from None
  if not params:
    raise WeightsError(f"{path}: no Keras VGG19 layers 'block{{b}}_conv{{c}}' found")
  return params
