"""An independent PyTorch implementation of the jaxstyle Gatys step (reference + benchmark).

Same network (VGG-19 convs 3×3/pad 1, ReLU, 2×2 max-pool, floor for odd
sizes), same preprocessing (from the weights' convention), same losses as
``jaxstyle.optimize``:

* content: ``Σ_l w_l · mean(½ (F_l(X) − F_l(C))²)``
* style: ``Σ_l w_l · 1/(4 N_l²) ‖FᵀF/M (X) − Ĝ_l(S)‖²`` (position-averaged Grams)
* TV: ``mean over pixels of Σ_c (Δx² + Δy²)``

and Adam on the pixels followed by clipping to [0, 1]. Written from the
formulas, not from jaxstyle code. Layout: channels_last (NHWC in memory),
measured faster than NCHW for torch on this CPU.
Only imported when torch is installed.
"""

from __future__ import annotations

from typing import Mapping, Sequence

import numpy as np
import torch
import torch.nn.functional as F

_BLOCKS = ((1, 2), (2, 2), (3, 4), (4, 4), (5, 4))
_MEAN_BGR_255 = (103.939, 116.779, 123.68)
_MEAN_RGB = (0.485, 0.456, 0.406)
_STD_RGB = (0.229, 0.224, 0.225)


def tap_order() -> list[str]:
  taps = []
  for b, n in _BLOCKS:
    for c in range(1, n + 1):
      taps += [f"conv{b}_{c}", f"relu{b}_{c}"]
    taps.append(f"pool{b}")
  return taps


class TorchVGG:
  """VGG-19 trunk from HWIO numpy kernels; returns requested taps (NCHW tensors)."""

  def __init__(self, params: Mapping[str, Mapping[str, np.ndarray]], preprocessing: str,
               channels_last: bool = True):
    self.preprocessing = preprocessing
    self.channels_last = channels_last
    self.w, self.b = {}, {}
    for name, p in params.items():
      k = torch.from_numpy(np.ascontiguousarray(np.transpose(np.asarray(p["kernel"]), (3, 2, 0, 1))))
      if channels_last:
        k = k.contiguous(memory_format=torch.channels_last)
      self.w[name] = k
      self.b[name] = torch.from_numpy(np.asarray(p["bias"]).copy())

  def preprocess(self, x: torch.Tensor) -> torch.Tensor:
    """x: [B, 3, H, W] RGB [0, 1]."""
    if self.preprocessing == "caffe":
      mean = torch.tensor(_MEAN_BGR_255, dtype=x.dtype).view(1, 3, 1, 1)
      return x.flip(1) * 255.0 - mean
    mean = torch.tensor(_MEAN_RGB, dtype=x.dtype).view(1, 3, 1, 1)
    std = torch.tensor(_STD_RGB, dtype=x.dtype).view(1, 3, 1, 1)
    return (x - mean) / std

  def __call__(self, x: torch.Tensor, layers: Sequence[str]) -> dict[str, torch.Tensor]:
    wanted = set(layers)
    order = tap_order()
    stop = max(order.index(t) for t in wanted)
    x = self.preprocess(x)
    if self.channels_last:
      x = x.contiguous(memory_format=torch.channels_last)
    out = {}
    for tap in order[:stop + 1]:
      if tap.startswith("conv"):
        x = F.conv2d(x, self.w[tap], self.b[tap], padding=1)
      elif tap.startswith("relu"):
        x = F.relu(x)
      else:
        x = F.max_pool2d(x, 2, 2)
      if tap in wanted:
        out[tap] = x
    return out


def gram(f: torch.Tensor) -> torch.Tensor:
  """[B, C, H, W] -> [B, C, C] position-averaged Gram."""
  b, c, h, w = f.shape
  m = f.reshape(b, c, h * w)
  return m @ m.transpose(1, 2) / (h * w)


class TorchGatys:
  """The loss and one Adam step of the Gatys optimisation in PyTorch."""

  def __init__(self, vgg: TorchVGG, content: np.ndarray, style: np.ndarray,
               content_layers: Mapping[str, float], style_layers: Mapping[str, float],
               alpha: float, beta: float, gamma: float, lr: float):
    self.vgg = vgg
    self.content_layers = dict(content_layers)
    self.style_layers = dict(style_layers)
    self.layers = list(dict.fromkeys(list(self.content_layers) + list(self.style_layers)))
    self.alpha, self.beta, self.gamma = alpha, beta, gamma
    with torch.no_grad():
      c = _to_torch(content)
      s = _to_torch(style)
      fc = vgg(c, self.layers)
      self.content_feats = {k: fc[k].detach() for k in self.content_layers}
      fs = vgg(s, list(self.style_layers))
      self.grams = {k: gram(fs[k]).detach() for k in self.style_layers}
    self.x = c.clone().requires_grad_(True)
    self.opt = torch.optim.Adam([self.x], lr=lr)

  def loss(self, x: torch.Tensor) -> dict[str, torch.Tensor]:
    feats = self.vgg(x, self.layers)
    lc = sum(w * 0.5 * ((feats[k] - self.content_feats[k]) ** 2).mean()
             for k, w in self.content_layers.items())
    ls = 0.0
    for k, w in self.style_layers.items():
      n = feats[k].shape[1]
      ls = ls + w * ((gram(feats[k]) - self.grams[k]) ** 2).sum() / (4.0 * n * n)
    dy = x[:, :, 1:, :] - x[:, :, :-1, :]
    dx = x[:, :, :, 1:] - x[:, :, :, :-1]
    ltv = ((dy ** 2).sum() + (dx ** 2).sum()) / (x.shape[2] * x.shape[3])
    total = self.alpha * lc + self.beta * ls + self.gamma * ltv
    return {"loss": total, "content": lc, "style": ls, "tv": ltv}

  def step(self) -> dict[str, float]:
    self.opt.zero_grad(set_to_none=True)
    parts = self.loss(self.x)
    parts["loss"].backward()
    self.opt.step()
    with torch.no_grad():
      self.x.clamp_(0.0, 1.0)
    return {k: float(v.detach()) if torch.is_tensor(v) else float(v) for k, v in parts.items()}

  def image(self) -> np.ndarray:
    return self.x.detach()[0].permute(1, 2, 0).numpy().copy()


def _to_torch(img: np.ndarray) -> torch.Tensor:
  """[H, W, 3] float32 -> [1, 3, H, W]."""
  return torch.from_numpy(np.ascontiguousarray(np.asarray(img, np.float32).transpose(2, 0, 1)))[None]
