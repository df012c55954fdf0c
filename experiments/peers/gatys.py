"""An independent PyTorch implementation of the jaxstyle Gatys step (reference + benchmark).

Same network (VGG-19 convs 3×3/pad 1, ReLU, 2×2 max-pool, floor for odd
sizes), same preprocessing (from the weights' convention), same losses as
``jaxstyle.optimize``:

* content: ``Σ_l w_l · mean(½ (F_l(X) − F_l(C))²)``
* style: ``Σ_l w_l · 1/(4 N_l²) ‖FᵀF/M (X) − Ĝ_l(S)‖²`` (position-averaged Grams)
* TV: ``mean over pixels of Σ_c (Δx² + Δy²)``

and Adam on the pixels followed by clipping to [0, 1]. Written from the
formulas, not from jaxstyle code. Layout: NCHW-shaped tensors, channels_last
in memory by default (``channels_last=False``: contiguous NCHW). Images in:
float32 RGB [0, 1], [H, W, 3] NumPy. Imports torch.
"""

from __future__ import annotations

from typing import Mapping, Sequence

import numpy as np
import torch

from peers import vgg as peer_vgg


class TorchVGG:
  """VGG-19 trunk from jaxstyle's HWIO params (``peers.vgg``); returns requested taps (NCHW)."""

  def __init__(self, params: Mapping[str, Mapping[str, np.ndarray]], preprocessing: str,
               channels_last: bool = True, device: str = "cpu"):
    self.preprocessing = preprocessing
    self.channels_last = channels_last
    self.features = peer_vgg.features_from_params(params, channels_last=channels_last).to(device)

  def __call__(self, x: torch.Tensor, layers: Sequence[str]) -> dict[str, torch.Tensor]:
    """x: [B, 3, H, W] RGB [0, 1]."""
    x = peer_vgg.preprocess(x, self.preprocessing)
    if self.channels_last:
      x = x.contiguous(memory_format=torch.channels_last)
    return peer_vgg.taps(self.features, x, layers)


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
