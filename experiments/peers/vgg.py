"""An independent PyTorch VGG-19 trunk in torchvision's ``features`` layout.

``vgg19_features(seed)`` is a ``torch.nn.Sequential`` with torchvision's
indices (convs 3×3/pad 1 at 0, 2, 5, 7, 10, …, 34, each followed by a ReLU;
``MaxPool2d(2, 2)`` at 4, 9, 18, 27, 36, floor for odd sizes), so its
``state_dict()`` keys are ``{i}.weight`` (OIHW) / ``{i}.bias`` like
``torchvision.models.vgg19().features``. Weights are random (He-normal kernels,
uniform biases) and deterministic in ``seed``; ``features_from_params`` builds
the same trunk from jaxstyle's HWIO params instead (up to their deepest conv).
``tap_names()`` names each index (``conv{b}_{c}``, ``relu{b}_{c}``,
``pool{b}``). ``preprocess`` maps RGB [0, 1] NCHW to a weight convention's
input (``"torch"``: mean/std; ``"caffe"``: BGR, 0–255, minus the mean).
``taps`` runs a trunk on an NCHW tensor (already preprocessed, differentiable)
and returns the requested taps (NCHW tensors); ``relu_outputs`` returns every
ReLU as NHWC numpy; ``save_torchvision_pth`` writes a random trunk as a
torchvision ``.pth`` file. Written from the architecture, not from jaxstyle
code. Imports torch.
"""

from __future__ import annotations

import collections
from typing import Mapping, Sequence

import numpy as np
import torch

# Output channels of each conv, "M" for a 2x2/2 max-pool (torchvision's configuration "E").
CFG = (64, 64, "M", 128, 128, "M", 256, 256, 256, 256, "M", 512, 512, 512, 512, "M",
       512, 512, 512, 512, "M")
MEAN_RGB = (0.485, 0.456, 0.406)  # "torch" convention: (x - mean) / std
STD_RGB = (0.229, 0.224, 0.225)
MEAN_BGR_255 = (103.939, 116.779, 123.68)  # "caffe" convention: BGR * 255 - mean


def tap_names() -> list[str]:
  """One name per ``Sequential`` index: ``conv1_1, relu1_1, …, pool1, …, pool5``."""
  names, block, conv = [], 1, 0
  for v in CFG:
    if v == "M":
      names.append(f"pool{block}")
      block, conv = block + 1, 0
    else:
      conv += 1
      names += [f"conv{block}_{conv}", f"relu{block}_{conv}"]
  return names


def relu_names() -> list[str]:
  """``relu1_1`` … ``relu5_4`` in network order."""
  return [n for n in tap_names() if n.startswith("relu")]


def preprocess(x: torch.Tensor, convention: str) -> torch.Tensor:
  """[B, 3, H, W] RGB in [0, 1] -> the input of weights with ``convention`` ("torch" or "caffe")."""
  if convention == "caffe":
    return x.flip(1) * 255.0 - torch.tensor(MEAN_BGR_255, dtype=x.dtype, device=x.device).view(
        1, 3, 1, 1)
  if convention == "torch":
    mean = torch.tensor(MEAN_RGB, dtype=x.dtype, device=x.device).view(1, 3, 1, 1)
    return (x - mean) / torch.tensor(STD_RGB, dtype=x.dtype, device=x.device).view(1, 3, 1, 1)
  raise ValueError(f"unknown preprocessing convention {convention!r}; choose torch or caffe")


def vgg19_features(seed: int, dtype: torch.dtype = torch.float64) -> torch.nn.Sequential:
  """A random VGG-19 ``features`` trunk (eval mode) with torchvision's layer indices."""
  torch.manual_seed(seed)
  layers, cin = [], 3
  for v in CFG:
    if v == "M":
      layers.append(torch.nn.MaxPool2d(kernel_size=2, stride=2))
    else:
      conv = torch.nn.Conv2d(cin, v, kernel_size=3, padding=1)
      torch.nn.init.kaiming_normal_(conv.weight, nonlinearity="relu")
      torch.nn.init.uniform_(conv.bias, -0.1, 0.1)
      layers += [conv, torch.nn.ReLU(inplace=False)]
      cin = v
  return torch.nn.Sequential(*layers).to(dtype).eval()


def features_from_params(params: Mapping[str, Mapping[str, np.ndarray]], *,
                         channels_last: bool = False) -> torch.nn.Sequential:
  """The trunk up to the deepest conv of jaxstyle ``params`` ({"conv1_1": {"kernel": HWIO, "bias"}})."""
  names = tap_names()
  deepest = max(names.index(name) for name in params)
  layers, cin = [], 3
  for name in names[:deepest + 2]:  # through the deepest conv's ReLU
    if name.startswith("conv"):
      kernel = np.asarray(params[name]["kernel"], np.float32)
      conv = torch.nn.utils.skip_init(torch.nn.Conv2d, cin, kernel.shape[3], kernel_size=3, padding=1)
      with torch.no_grad():
        conv.weight.copy_(torch.from_numpy(np.ascontiguousarray(kernel.transpose(3, 2, 0, 1))))
        conv.bias.copy_(torch.from_numpy(np.asarray(params[name]["bias"], np.float32)))
      layers.append(conv)
      cin = kernel.shape[3]
    elif name.startswith("relu"):
      layers.append(torch.nn.ReLU(inplace=False))
    else:
      layers.append(torch.nn.MaxPool2d(kernel_size=2, stride=2))
  features = torch.nn.Sequential(*layers).eval().requires_grad_(False)
  if channels_last:
    features = features.to(memory_format=torch.channels_last)
  return features


def taps(features: torch.nn.Sequential, x_nchw: torch.Tensor,
         layers: Sequence[str]) -> dict[str, torch.Tensor]:
  """``{tap: NCHW tensor}`` for each of ``layers``, running ``features`` only as deep as needed."""
  wanted = set(layers)
  names = tap_names()
  stop = max(names.index(t) for t in wanted)
  out = {}
  for name, module in zip(names[:stop + 1], features):
    x_nchw = module(x_nchw)
    if name in wanted:
      out[name] = x_nchw
  return out


def relu_outputs(features: torch.nn.Sequential, x_nchw: torch.Tensor) -> dict[str, np.ndarray]:
  """``{relu tap name: NHWC numpy}`` from running ``features`` on ``x_nchw``."""
  with torch.no_grad():
    out = taps(features, x_nchw, relu_names())
  return {name: t.permute(0, 2, 3, 1).numpy() for name, t in out.items()}


def save_torchvision_pth(path: str, seed: int = 0) -> torch.nn.Sequential:
  """Saves a random ``vgg19_features(seed)`` as torchvision's full-model state dict; returns it.

  Keys are ``features.{i}.weight`` / ``features.{i}.bias`` (float32) plus one
  ``classifier.0.weight`` entry, as in ``torchvision.models.vgg19().state_dict()``
  (the classifier is not a real one: converters must ignore it).
  """
  features = vgg19_features(seed)
  state = collections.OrderedDict(
      (f"features.{k}", v.float()) for k, v in features.state_dict().items())
  state["classifier.0.weight"] = torch.zeros(4, 7)
  torch.save(state, path)
  return features
