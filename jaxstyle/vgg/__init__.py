"""VGG-19 for jaxstyle: the network, its preprocessing and its weight files.

``from jaxstyle import vgg`` gives every public name of the submodules:

* ``model``: ``VGG19``, the tap names (``TAPS``, ``CONV_LAYERS``, ``CHANNELS``,
  ``BLOCKS``), pooling (``POOLING``), ``extract``, ``feature_fn``, ``tap_channels`` and
  ``check_taps``.
* ``preprocessing``: the ``PREPROCESSING`` registry and ``preprocess``.
* ``weights``: ``VGGWeights``, ``load_weights`` (npz, pth or h5),
  ``save_weights``, ``resolve_weights_path``, ``convert`` and the rest.
* ``torch_pickle``: ``read_torch_state_dict`` (no pickled code is run).
* ``keras``: the ``.h5`` reader. ``download``: fetch torchvision's weights.
* ``errors``: ``WeightsError``; ``formats``: ``sniff_format`` (format by content).

``python -m jaxstyle.vgg convert|info|download`` is the command line.

Note: ``jaxstyle.vgg.download`` is the function; the module of the same name is
reached with ``from jaxstyle.vgg.download import ...``.
"""

from __future__ import annotations

from jaxstyle.errors import WeightsError
from jaxstyle.vgg.preprocessing import (IMAGENET_MEAN_BGR_255, IMAGENET_MEAN_RGB,
                                        IMAGENET_STD_RGB, PREPROCESSING, preprocess)
from jaxstyle.vgg.model import (BLOCKS, CHANNELS, CONV_LAYERS, POOLING, TAPS, VGG19, avg_pool_2x2,
                                check_taps, deepest_conv, extract, feature_fn, max_pool_2x2,
                                tap_channels)
from jaxstyle.vgg.torch_pickle import read_torch_state_dict
from jaxstyle.vgg.weights import (CACHE_DIR, CACHE_FILE, ENV_VAR, TORCHVISION_INDICES, VGGWeights,
                                  convert, describe, load_h5, load_pth, load_weights,
                                  make_weights, params_from_state_dict, random_weights,
                                  resolve_weights_path, save_weights)
from jaxstyle.vgg.download import TORCHVISION_URL, download

